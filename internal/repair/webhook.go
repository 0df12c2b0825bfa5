package repair

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/internal/remediation"
	"github.com/nodewarden/nodewarden/internal/version"
)

// The body of a Webhook step's POST.
const (
	RequestAPIVersion = "nodewarden.io/v1alpha1"
	RequestKind       = "RepairRequest"
)

// Defaults of v1alpha1.WebhookRepair, for a spec the API server did not
// default (the CRD defaults both).
const (
	DefaultWebhookTimeout = 10 * time.Second
	DefaultWebhookRetries = 3
)

// The waits between a webhook's attempts: 1s, doubling, at most 30s.
const (
	firstBackoff = time.Second
	maxBackoff   = 30 * time.Second
)

// maxBodyExcerpt bounds how much of a failed answer an error quotes: it ends
// up in a node annotation and an Event.
const maxBodyExcerpt = 256

// Request is the JSON body a Webhook step POSTs (docs/policy.md,
// "RepairRequest"), e.g.:
//
//	{
//	  "apiVersion": "nodewarden.io/v1alpha1",
//	  "kind": "RepairRequest",
//	  "idempotencyKey": "node-2/1/2026-11-24T17:34:49Z",
//	  "node": {"name": "node-2", "uid": "5c1f...", "providerID": "aws:///eu-west-1a/i-0abc", "labels": {...}},
//	  "policy": "host-maintenance",
//	  "step": 1,
//	  "action": "Webhook",
//	  "trigger": {"type": "KernelDeadlock", "status": "True", "reason": "DockerHung",
//	              "message": "...", "deadline": null},
//	  "started": "2026-11-24T17:34:49Z"
//	}
//
// Every attempt of one step sends the same body; idempotencyKey (also sent
// as the Idempotency-Key header) tells the receiver a retry, or a step
// started again after a controller restart, from a new step.
type Request struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// IdempotencyKey is "<node>/<step>/<started>": the same for every
	// attempt of one step, different for any other step.
	IdempotencyKey string      `json:"idempotencyKey"`
	Node           RequestNode `json:"node"`
	// Policy is the RemediationPolicy whose ladder the step belongs to.
	Policy string `json:"policy"`
	// Step is the step's index in its ladder, from 0.
	Step   int                   `json:"step"`
	Action v1alpha1.RepairAction `json:"action"`
	// Trigger is the condition that made the policy take the node, as it
	// stands when the step starts.
	Trigger RequestTrigger `json:"trigger"`
	// Started is when the step started (RFC 3339, UTC).
	Started metav1.Time `json:"started"`
}

// RequestNode identifies the node to repair; providerID is what a cloud's
// API knows the instance by.
type RequestNode struct {
	Name       string            `json:"name"`
	UID        types.UID         `json:"uid"`
	ProviderID string            `json:"providerID"`
	Labels     map[string]string `json:"labels"`
}

// RequestTrigger is the node condition behind the repair.
type RequestTrigger struct {
	Type    corev1.NodeConditionType `json:"type"`
	Status  corev1.ConditionStatus   `json:"status"`
	Reason  string                   `json:"reason"`
	Message string                   `json:"message"`
	// Deadline is the "not before" time the condition's message names
	// (a scheduled reboot's), null when it names none.
	Deadline metav1.Time `json:"deadline"`
}

// NewRequest is the body of step o of policy's ladder on node.
func NewRequest(node *corev1.Node, policy string, o remediation.RepairOrder) Request {
	labels := map[string]string{}
	for k, v := range node.Labels {
		labels[k] = v
	}
	started := metav1.NewTime(o.Started.UTC().Truncate(time.Second))
	return Request{
		APIVersion:     RequestAPIVersion,
		Kind:           RequestKind,
		IdempotencyKey: fmt.Sprintf("%s/%d/%s", node.Name, o.Step, started.Format(time.RFC3339)),
		Node: RequestNode{
			Name:       node.Name,
			UID:        node.UID,
			ProviderID: node.Spec.ProviderID,
			Labels:     labels,
		},
		Policy: policy,
		Step:   o.Step,
		Action: o.Action,
		Trigger: RequestTrigger{
			Type:     o.Trigger.Type,
			Status:   o.Trigger.Status,
			Reason:   o.Reason,
			Message:  o.Message,
			Deadline: metav1.NewTime(o.Trigger.Deadline),
		},
		Started: started,
	}
}

// WebhookTimeout and WebhookRetries are spec's, or their defaults.
func WebhookTimeout(spec v1alpha1.WebhookRepair) time.Duration {
	if spec.Timeout != nil && spec.Timeout.Duration > 0 {
		return spec.Timeout.Duration
	}
	return DefaultWebhookTimeout
}

// WebhookRetries: see WebhookTimeout.
func WebhookRetries(spec v1alpha1.WebhookRepair) int {
	if spec.Retries != nil && *spec.Retries >= 0 {
		return int(*spec.Retries)
	}
	return DefaultWebhookRetries
}

// Backoff is the wait before retry n (from 0): 1s, doubling, at most 30s.
func Backoff(n int) time.Duration {
	d := firstBackoff
	for range n {
		d *= 2
		if d >= maxBackoff {
			return maxBackoff
		}
	}
	return d
}

// WebhookBudget is the longest Webhook can take with spec: every attempt
// timing out, and every wait between them.
func WebhookBudget(spec v1alpha1.WebhookRepair) time.Duration {
	retries := WebhookRetries(spec)
	total := time.Duration(retries+1) * WebhookTimeout(spec)
	for n := range retries {
		total += Backoff(n)
	}
	return total
}

// Webhook POSTs req as JSON to spec.URL until an answer is 2xx: each attempt
// bounded by spec.timeout, up to spec.retries retries after the first, with
// Backoff between them. It returns nil on a 2xx; otherwise an error that
// says how many attempts failed and how the last one did (the status and
// the start of the body, or the transport's error). URLs in errors keep only
// their scheme and host: webhook URLs often carry a token in the path or
// query, and errors end up in node annotations and Events. A nil hc is
// http.DefaultClient. Redirects are not followed (a 3xx is a failure): a
// POST redirected with 301-303 becomes a GET, whose 2xx would be taken for a
// repair the receiver never saw. Ending ctx stops it, during an attempt or a
// wait.
func Webhook(ctx context.Context, hc *http.Client, spec v1alpha1.WebhookRepair, req Request) error {
	if hc == nil {
		hc = http.DefaultClient
	}
	noRedirects := *hc // a copy shares the transport, and with it the connections
	noRedirects.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	hc = &noRedirects
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("encode the RepairRequest: %w", err)
	}
	where := redact(spec.URL)
	if u, err := url.Parse(spec.URL); err != nil || u.Host == "" || u.Scheme != "http" && u.Scheme != "https" {
		// Not worth a retry: no attempt can succeed (the CRD refuses such
		// a URL; a policy from before that rule could still have one).
		return fmt.Errorf("webhook %s: the URL must be http:// or https:// with a host", where)
	}
	timeout, retries := WebhookTimeout(spec), WebhookRetries(spec)
	for attempt := 0; ; attempt++ {
		err := post(ctx, hc, spec.URL, timeout, req.IdempotencyKey, body)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("webhook %s: stopped after %d attempt(s): %w (last: %w)", where, attempt+1, ctx.Err(), err)
		}
		if attempt == retries {
			return fmt.Errorf("webhook %s: %d attempt(s) failed, the last: %w", where, attempt+1, err)
		}
		t := time.NewTimer(Backoff(attempt))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("webhook %s: stopped after %d attempt(s): %w (last: %w)", where, attempt+1, ctx.Err(), err)
		}
	}
}

// post makes one attempt.
func post(ctx context.Context, hc *http.Client, target string, timeout time.Duration, key string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return err // Webhook checked the URL: it cannot be the URL
	}
	req.Header.Set("Content-Type", "application/json")
	// The header some APIs take instead of reading the body
	// (draft-ietf-httpapi-idempotency-key-header).
	req.Header.Set("Idempotency-Key", key)
	req.Header.Set("User-Agent", "nodewarden/"+version.Version)
	resp, err := hc.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			return fmt.Errorf("no answer within %s", timeout)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message repeats the whole URL
		}
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, 4*maxBodyExcerpt))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	msg := "answered " + resp.Status
	if s := oneLine(string(excerpt)); s != "" {
		msg += ": " + s
	}
	return errors.New(msg)
}

// redact keeps a URL's scheme and host.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(invalid URL)"
	}
	if u.Path == "" && u.RawQuery == "" {
		return u.Scheme + "://" + u.Host
	}
	return u.Scheme + "://" + u.Host + "/..."
}

// oneLine makes s one line of at most maxBodyExcerpt bytes.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= maxBodyExcerpt {
		return s
	}
	return strings.ToValidUTF8(s[:maxBodyExcerpt-3], "") + "..."
}
