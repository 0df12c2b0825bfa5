// Package cli is the command of the kubectl plugin kubectl-nodewarden:
// status, history and explain over the user's kubeconfig, rendered by
// internal/status.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/internal/status"
	"github.com/nodewarden/nodewarden/internal/version"
)

// NowEnv, set to an RFC 3339 time, replaces the clock (for tests and
// reproducible documentation), as the hidden --now flag does.
const NowEnv = "KUBECTL_NODEWARDEN_NOW"

// historySteps is how many of a node's latest episodes `history NODE`
// shows the steps of.
const historySteps = 3

type options struct {
	kubeconfig string
	context    string
	output     string
	now        string
	color      string
}

// NewRootCommand is `kubectl nodewarden`.
func NewRootCommand() *cobra.Command {
	o := &options{}
	root := &cobra.Command{
		Use:           "kubectl-nodewarden",
		Short:         "Show what nodewarden does with the nodes, and why",
		Long:          "Show what nodewarden does with the nodes (status), what it did (history), and why it does or does not act on a node now (explain).",
		SilenceUsage:  true,
		SilenceErrors: false,
		Version:       version.String(),
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl nodewarden"},
	}
	root.SetVersionTemplate("{{.Version}}\n")
	f := root.PersistentFlags()
	f.StringVar(&o.kubeconfig, "kubeconfig", "", "path to the kubeconfig file (default $KUBECONFIG or ~/.kube/config)")
	f.StringVar(&o.context, "context", "", "the kubeconfig context to use")
	f.StringVarP(&o.output, "output", "o", "", "output format: json or yaml (default: a table for people)")
	f.StringVar(&o.color, "color", "auto", "colour the output: auto (on a terminal, unless NO_COLOR is set), always or never")
	f.StringVar(&o.now, "now", "", "pretend it is this RFC 3339 time (for tests; also $"+NowEnv+")")
	_ = f.MarkHidden("now")

	root.AddCommand(
		&cobra.Command{
			Use:   "status",
			Short: "Every node with a triggered condition or a nodewarden state, by deadline",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return o.run(cmd, func(ctx context.Context, c client.Client, now time.Time, w io.Writer, st status.Style) error {
					policies, nodes, err := liveObjects(ctx, c)
					if err != nil {
						return err
					}
					rows := status.Status(now, policies, nodes)
					if o.output != "" {
						return o.print(w, rows)
					}
					return status.RenderStatus(w, now, rows, st)
				})
			},
		},
		&cobra.Command{
			Use:   "history [NODE]",
			Short: "The remediation episodes (RemediationRecords), newest first; with NODE, also the steps of its latest ones",
			Args:  cobra.MaximumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				node := ""
				if len(args) == 1 {
					node = args[0]
				}
				return o.run(cmd, func(ctx context.Context, c client.Client, now time.Time, w io.Writer, st status.Style) error {
					var list v1alpha1.RemediationRecordList
					var opts []client.ListOption
					if node != "" {
						opts = append(opts, client.MatchingLabels{v1alpha1.LabelRecordNode: node})
					}
					if err := c.List(ctx, &list, opts...); err != nil {
						return fmt.Errorf("list remediationrecords: %w", err)
					}
					if o.output != "" {
						return o.print(w, status.History(now, list.Items, node, -1))
					}
					steps := 0
					if node != "" {
						steps = historySteps
					}
					return status.RenderHistory(w, now, status.History(now, list.Items, node, steps), st)
				})
			},
		},
		&cobra.Command{
			Use:   "explain NODE",
			Short: "Why the controller does or does not act on NODE now (remediation.Decide on the live objects)",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return o.run(cmd, func(ctx context.Context, c client.Client, now time.Time, w io.Writer, st status.Style) error {
					policies, nodes, err := liveObjects(ctx, c)
					if err != nil {
						return err
					}
					e, ok := status.Explain(now, policies, nodes, args[0])
					if !ok {
						return fmt.Errorf("node %q not found", args[0])
					}
					if o.output != "" {
						return o.print(w, e)
					}
					return status.RenderExplain(w, e, st)
				})
			},
		},
	)
	return root
}

func (o *options) run(cmd *cobra.Command, f func(context.Context, client.Client, time.Time, io.Writer, status.Style) error) error {
	switch o.output {
	case "", "json", "yaml":
	default:
		return fmt.Errorf("--output %q: want json or yaml", o.output)
	}
	now, err := o.clock()
	if err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	st, err := o.style(w)
	if err != nil {
		return err
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	return f(cmd.Context(), c, now, w, st)
}

func (o *options) clock() (time.Time, error) {
	s := o.now
	if s == "" {
		s = os.Getenv(NowEnv)
	}
	if s == "" {
		return time.Now().UTC().Truncate(time.Second), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--now: %w", err)
	}
	return t.UTC(), nil
}

// style colours only a terminal, and never with NO_COLOR set
// (https://no-color.org), unless --color=always.
func (o *options) style(w io.Writer) (status.Style, error) {
	switch o.color {
	case "always":
		return status.Style{Color: true}, nil
	case "never":
		return status.Style{}, nil
	case "auto":
	default:
		return status.Style{}, fmt.Errorf("--color %q: want auto, always or never", o.color)
	}
	if _, set := os.LookupEnv("NO_COLOR"); set && os.Getenv("NO_COLOR") != "" {
		return status.Style{}, nil
	}
	f, ok := w.(*os.File)
	if !ok {
		return status.Style{}, nil
	}
	fi, err := f.Stat()
	return status.Style{Color: err == nil && fi.Mode()&os.ModeCharDevice != 0}, nil
}

func (o *options) client() (client.Client, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules,
		&clientcmd.ConfigOverrides{CurrentContext: o.context}).ClientConfig()
	if err != nil {
		return nil, err
	}
	cfg.UserAgent = "kubectl-nodewarden/" + version.Version
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		return nil, err
	}
	return client.New(cfg, client.Options{Scheme: s})
}

func liveObjects(ctx context.Context, c client.Client) ([]v1alpha1.RemediationPolicy, []corev1.Node, error) {
	var policies v1alpha1.RemediationPolicyList
	if err := c.List(ctx, &policies); err != nil {
		return nil, nil, fmt.Errorf("list remediationpolicies: %w", err)
	}
	var nodes corev1.NodeList
	if err := c.List(ctx, &nodes); err != nil {
		return nil, nil, fmt.Errorf("list nodes: %w", err)
	}
	return policies.Items, nodes.Items, nil
}

func (o *options) print(w io.Writer, v any) error {
	switch o.output {
	case "json":
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	case "yaml":
		b, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	return errors.New("unreachable: output " + o.output)
}
