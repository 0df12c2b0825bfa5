package npd

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/nodewarden/nodewarden/internal/agent/condition"
	"github.com/nodewarden/nodewarden/internal/agent/source"
)

// pluginStatus is a custom plugin's result, by exit code as NPD reads it.
type pluginStatus int

const (
	pluginOK      pluginStatus = 0 // exit 0
	pluginProblem pluginStatus = 1 // exit 1
	pluginUnknown pluginStatus = 2 // any other exit, a timeout, a failure to run
)

// maxPluginOutputBytes is how much of a plugin's stdout (and stderr) is
// kept, as NPD: the rest is read and discarded.
const maxPluginOutputBytes = 4 << 10

// pluginWaitDelay bounds how long a plugin's output is waited for after it
// was killed (a child it started may hold its stdout open).
const pluginWaitDelay = 2 * time.Second

type pluginResult struct {
	status   pluginStatus
	message  string
	timedOut bool
	stderr   string
}

// runPlugin runs r's program with r's timeout and returns NPD's result: the
// status by exit code, and stdout with spaces trimmed and cut to
// maxOutput bytes as the message.
func runPlugin(ctx context.Context, r *Rule, maxOutput int) pluginResult {
	tctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	cmd := exec.CommandContext(tctx, r.Path, r.Args...)
	killProcessGroup(cmd)
	cmd.WaitDelay = pluginWaitDelay
	var stdout, stderr capped
	stdout.max, stderr.max = maxPluginOutputBytes, maxPluginOutputBytes
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if cmd.ProcessState == nil {
		// It never ran: not found, not executable, a bad interpreter.
		return pluginResult{status: pluginUnknown, message: cut(fmt.Sprintf("Error in starting plugin %q: %v", r.Path, err), maxOutput)}
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) && !errors.Is(err, exec.ErrWaitDelay) {
		return pluginResult{status: pluginUnknown, message: cut(fmt.Sprintf("Error in waiting for plugin %q: %v", r.Path, err), maxOutput)}
	}
	out := strings.TrimSpace(stdout.String())
	res := pluginResult{stderr: stderr.String()}
	if errors.Is(tctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
		res.timedOut = true
		out = fmt.Sprintf("Timeout when running plugin %q: state - %s. output - %q", r.Path, cmd.ProcessState.String(), out)
	}
	res.message = cut(out, maxOutput)
	switch cmd.ProcessState.ExitCode() {
	case 0:
		res.status = pluginOK
	case 1:
		res.status = pluginProblem
	default:
		res.status = pluginUnknown
	}
	if res.timedOut {
		res.status = pluginUnknown
	}
	return res
}

// cut cuts s to n bytes, as NPD does (which may split a UTF-8 sequence;
// the API server would then store U+FFFD, so cut before it instead).
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for i := 0; i < 3 && len(s) > 0; i++ {
		if r := s[len(s)-1]; r < 0x80 || r >= 0xC0 {
			if r >= 0xC0 {
				s = s[:len(s)-1] // a sequence's first byte without the rest
			}
			break
		}
		s = s[:len(s)-1]
	}
	return s
}

// capped keeps the first max bytes written to it and discards the rest.
type capped struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.max - len(c.b); room > 0 {
		c.b = append(c.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (c *capped) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.b)
}

// pluginSource is NPD's custom plugin monitor.
type pluginSource struct {
	baseSource
	// run is runPlugin; tests replace it.
	run func(ctx context.Context, r *Rule, maxOutput int) pluginResult
}

// Run declares the conditions at their defaults (unless
// skip_initial_status), then runs every rule at once and then every
// invoke_interval (the rule's, else the global one), at most `concurrency`
// plugins of the file at a time; a rule never overlaps itself, and a run
// that overruns its interval is followed by one catch-up run, not several.
func (s *pluginSource) Run(ctx context.Context, out source.Sink) {
	s.logWarnings()
	s.log.Info("starting NPD custom plugin monitor", "conditions", s.cfg.ConditionTypes(), "rules", len(s.cfg.Rules),
		"concurrency", s.cfg.Concurrency)
	s.metrics.initRules(s.cfg)
	run := s.run
	if run == nil {
		run = runPlugin
	}
	st := &pluginState{src: s, out: out, conds: newConditions(s.cfg, s.opts.Now()),
		published: map[string]bool{}, episodes: map[int]string{}}
	if !s.cfg.SkipInitialStatus {
		st.publishAll()
	}
	sem := make(chan struct{}, s.cfg.Concurrency)
	var wg sync.WaitGroup
	for i := range s.cfg.Rules {
		r := &s.cfg.Rules[i]
		wg.Go(func() {
			ticker := time.NewTicker(r.InvokeInterval)
			defer ticker.Stop()
			for {
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					return
				}
				res := run(ctx, r, s.cfg.MaxOutputLength)
				<-sem
				if ctx.Err() != nil {
					return
				}
				st.handle(r, res)
				select {
				case <-ctx.Done():
					return
				case <-ticker.C:
				}
			}
		})
	}
	wg.Wait()
}

// pluginState is the monitor's conditions and what it has reported.
type pluginState struct {
	src   *pluginSource
	out   source.Sink
	mu    sync.Mutex
	conds conditions
	// published: conditions published at least once (skip_initial_status).
	published map[string]bool
	// episodes: for each temporary rule with a problem, when it began.
	episodes map[int]string
}

func (st *pluginState) publishAll() {
	st.out.SetConditions(st.conds.wants()...)
	for _, c := range st.conds {
		st.published[c.def.Type] = true
	}
	st.src.publishGauges(st.conds)
}

// publishKnown publishes the conditions published before (all of them,
// unless skip_initial_status kept some back until their first result).
func (st *pluginState) publishKnown() {
	var wants []condition.Want
	for _, w := range st.conds.wants() {
		if st.published[string(w.Type)] {
			wants = append(wants, w)
		}
	}
	st.out.SetConditions(wants...)
}

func (st *pluginState) handle(r *Rule, res pluginResult) {
	s := st.src
	now := s.opts.Now()
	result := map[pluginStatus]string{pluginOK: "ok", pluginProblem: "problem", pluginUnknown: "unknown"}[res.status]
	if res.timedOut {
		result = "timeout"
	}
	s.metrics.pluginRun(s.cfg.File, result)
	if res.status != pluginOK {
		s.log.Info("plugin reported a problem", "rule", r.name(), "path", r.Path, "result", result,
			"message", res.message, "stderr", truncate(res.stderr, 1024))
	} else {
		s.log.V(1).Info("plugin ok", "rule", r.name(), "path", r.Path)
	}

	st.mu.Lock()
	defer st.mu.Unlock()
	if r.Type == Temporary {
		// As NPD: an Event whenever the plugin does not say OK. NPD makes
		// one per run, which the API server's aggregation folds into a
		// count; here it is one Event per episode of the problem, and
		// problem_counter still counts every run.
		if res.status == pluginOK {
			delete(st.episodes, r.Index)
			return
		}
		ep, ok := st.episodes[r.Index]
		if !ok {
			ep = now.UTC().Format(time.RFC3339Nano)
			st.episodes[r.Index] = ep
		}
		p := problem{kind: fmt.Sprintf("temporary/%d", r.Index), warning: true, reason: r.Reason, message: res.message, time: now, episode: ep}
		s.emit(st.out, p)
		if s.cfg.MetricsReporting {
			s.metrics.countProblem(p.key(s.cfg.File)+"/"+now.Format(time.RFC3339Nano), r.Reason)
		}
		return
	}

	c := st.conds.get(r.Condition)
	status := map[pluginStatus]corev1.ConditionStatus{
		pluginOK: corev1.ConditionFalse, pluginProblem: corev1.ConditionTrue, pluginUnknown: corev1.ConditionUnknown,
	}[res.status]
	var reason, message string
	update := true
	switch {
	case status != corev1.ConditionTrue && status != c.status:
		// No problem (any more), or its state is unknown: the default
		// reason; the plugin's message matters only when Unknown.
		reason, message = c.def.Reason, c.def.Message
		if status == corev1.ConditionUnknown {
			message = res.message
		}
	case status == corev1.ConditionTrue && (c.status != corev1.ConditionTrue || c.reason != r.Reason ||
		(s.cfg.MessageChangeBasedConditionUpdate && c.message != res.message)):
		reason, message = r.Reason, res.message
	default:
		update = false
	}
	if update {
		c.status, c.reason, c.message, c.since = status, reason, message, now
		s.emit(st.out, conditionChange(c, now))
	}
	if update || !st.published[c.def.Type] {
		st.published[c.def.Type] = true
		st.publishKnown()
	}
	s.publishGauges(st.conds)
}

// emit records one problem, counting it if it is a problem NPD counts.
func (s *pluginSource) emit(sink source.Sink, p problem) {
	s.record(sink, []problem{p})
}
