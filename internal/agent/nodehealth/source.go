package nodehealth

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/internal/agent/condition"
	"github.com/nodewarden/nodewarden/internal/agent/healthcheck"
	"github.com/nodewarden/nodewarden/internal/agent/nodeevent"
	"github.com/nodewarden/nodewarden/internal/agent/npd/kmsg"
	"github.com/nodewarden/nodewarden/internal/agent/runtimestatus"
	"github.com/nodewarden/nodewarden/internal/agent/source"
	"github.com/nodewarden/nodewarden/internal/agent/unitrestarts"
	"github.com/nodewarden/nodewarden/internal/journal"
)

// maxKernelLines bounds the kernel log lines kept between runs. Only lines
// a detector uses are kept, so this is a storm, not a normal day.
const maxKernelLines = 1000

// Options are what the source needs besides its configuration.
type Options struct {
	// Config is the defaulted, valid configuration.
	Config v1alpha1.HealthChecksConfig
	// BootTime dates replayed kernel log records; zero dates them on arrival.
	BootTime time.Time
	// Pods lists this node's pods, metadata only, for PodStuckTerminating;
	// nil means the check is not made.
	Pods func(ctx context.Context) ([]metav1.PartialObjectMetadata, error)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	Log logr.Logger
}

// Source runs the health checks. New returns nil when every check is off.
type Source struct {
	opts  Options
	cfg   v1alpha1.HealthChecksConfig
	host  fs.FS
	types []string

	mu     sync.Mutex
	kernel []kernelLine
}

type kernelLine struct {
	at   time.Time
	text string
}

var _ source.Source = (*Source)(nil)

// New builds the source, or returns nil if no check is enabled.
func New(opts Options) *Source {
	cfg := opts.Config
	if !cfg.AnyOn() {
		return nil
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Source{opts: opts, cfg: cfg, host: hostFS{proc: os.DirFS(cfg.ProcPath), sys: os.DirFS(cfg.SysPath)}}
	eks := s.eksTypes()
	if slices.Contains(cfg.Profiles, v1alpha1.ProfileEKS) {
		s.types = append(s.types, eks...)
	}
	if slices.Contains(cfg.Profiles, v1alpha1.ProfileAKS) {
		s.types = append(s.types, healthcheck.AKSTypes(eks)...)
	}
	return s
}

func (s *Source) eksTypes() []string {
	var t []string
	if s.cfg.Kernel.On() {
		t = append(t, healthcheck.TypeKernelReady)
	}
	if s.cfg.Networking.On() {
		t = append(t, healthcheck.TypeNetworkingReady)
	}
	if s.cfg.StorageOn() {
		t = append(t, healthcheck.TypeStorageReady)
	}
	if s.cfg.RuntimeOn() {
		t = append(t, healthcheck.TypeContainerRuntimeReady)
	}
	return t
}

func (s *Source) Name() string { return "health-checks" }

func (s *Source) ConditionTypes() []string { return s.types }

// Run publishes the checks' conditions at start and then every interval.
func (s *Source) Run(ctx context.Context, out source.Sink) {
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if p := kernelLogPath(s.cfg.KernelLog.Path, s.opts.Log); p != "" {
		wg.Go(func() { s.followKernelLog(ctx, p) })
	}
	var restarts *unitrestarts.Counter
	if r := s.cfg.ContainerRuntime; s.cfg.RuntimeOn() && r.JournalPath != "" {
		restarts = unitrestarts.New(journal.DirsFor(r.JournalPath), []string{"containerd", "kubelet"}, r.RestartWindow.Duration, s.opts.Now)
	}
	d := newDamper(int(s.cfg.Confirmations))
	transitions := 0
	t := time.NewTicker(s.cfg.Interval.Duration)
	defer t.Stop()
	for {
		start := time.Now()
		results := s.check(ctx, restarts)
		if took := time.Since(start); took > s.cfg.Interval.Duration {
			s.opts.Log.Info("a run of the health checks took longer than the interval", "took", took, "interval", s.cfg.Interval.Duration)
		}
		if log := s.opts.Log.V(1); log.Enabled() {
			for _, r := range results {
				log.Info("checked", "type", r.Type, "status", r.Status, "reason", r.Reason, "message", r.Message, "took", time.Since(start))
			}
		}
		changes := d.observe(results)
		wants := make([]condition.Want, 0, len(changes))
		for _, c := range changes {
			r := c.result
			wants = append(wants, condition.Want{Type: corev1.NodeConditionType(r.Type), Status: r.Status, Reason: r.Reason, Message: r.Message})
			if c.statusChanged {
				transitions++
				out.Record(transitionEvent(r, transitions))
			}
		}
		if len(wants) > 0 {
			out.SetConditions(wants...)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// transitionEvent is the Event of a published status change; n keeps the
// key of each transition unique for the recorder.
func transitionEvent(r healthcheck.Result, n int) nodeevent.Event {
	typ, verb := corev1.EventTypeNormal, "recovered"
	if !healthcheck.Healthy(r) {
		typ, verb = corev1.EventTypeWarning, "is unhealthy"
	}
	if r.Status == corev1.ConditionUnknown {
		verb = "is unknown"
	}
	return nodeevent.Event{
		Key:     fmt.Sprintf("health-check/%d/%s/%s", n, r.Type, r.Status),
		Type:    typ,
		Reason:  r.Reason,
		Message: fmt.Sprintf("%s %s: %s", r.Type, verb, r.Message),
	}
}

// check runs every enabled detector once and maps the results onto the
// profiles. The journal is read first: the kubelet's lines in it feed
// KernelReady in the same run.
func (s *Source) check(ctx context.Context, restarts *unitrestarts.Counter) []healthcheck.Result {
	var jr journalReading
	if restarts != nil {
		jr.counts, jr.err = restarts.Update(s.keepKubeletLine)
	}
	kernel := s.kernelLines()
	var eks []healthcheck.Result
	if s.cfg.Kernel.On() {
		eks = append(eks, healthcheck.KernelReady(s.host, kernel))
	}
	if s.cfg.Networking.On() {
		eks = append(eks, healthcheck.NetworkingReady(s.host))
	}
	if s.cfg.StorageOn() {
		eks = append(eks, healthcheck.StorageReady(s.host, kernel, s.cfg.Storage.Paths))
	}
	if s.cfg.RuntimeOn() {
		eks = append(eks, healthcheck.ContainerRuntimeReady(s.runtimeInput(ctx, restarts != nil, jr)))
	}
	var out []healthcheck.Result
	if slices.Contains(s.cfg.Profiles, v1alpha1.ProfileEKS) {
		out = append(out, eks...)
	}
	if slices.Contains(s.cfg.Profiles, v1alpha1.ProfileAKS) {
		out = append(out, healthcheck.AKS(eks)...)
	}
	return out
}

// journalReading is one pass of the restart counter.
type journalReading struct {
	counts []healthcheck.UnitRestarts
	err    error
}

func (s *Source) runtimeInput(ctx context.Context, counting bool, jr journalReading) healthcheck.RuntimeInput {
	r := s.cfg.ContainerRuntime
	in := healthcheck.RuntimeInput{Endpoint: r.Endpoint}
	snap, err := runtimestatus.Query(ctx, r.Endpoint, r.Timeout.Duration)
	if err != nil {
		in.StatusErr = err
	} else {
		in.Conditions = snap.Conditions
		if s.opts.Pods != nil {
			pctx, cancel := context.WithTimeout(ctx, r.Timeout.Duration)
			pods, err := s.opts.Pods(pctx)
			cancel()
			if err != nil {
				in.Errs = append(in.Errs, "this node's pods: "+err.Error())
			} else {
				in.Stuck = runtimestatus.StuckPods(pods, snap, s.opts.Now(), r.PodStuckTerminatingAfter.Duration)
			}
		}
	}
	if counting {
		if jr.err != nil {
			in.Errs = append(in.Errs, fmt.Sprintf("journal %s: %v", r.JournalPath, jr.err))
		}
		for _, c := range jr.counts {
			if c.Starts >= int(r.RestartThreshold) {
				in.Restarts = append(in.Restarts, c)
			}
		}
	}
	return in
}

// keepKubeletLine keeps the kubelet's journal lines that a detector uses
// (fork failures: "fork/exec ... resource temporarily unavailable").
func (s *Source) keepKubeletLine(e journal.Entry) {
	if e.Fields["SYSLOG_IDENTIFIER"] != "kubelet" && e.Fields["_SYSTEMD_UNIT"] != "kubelet.service" {
		return
	}
	s.keepKernelLine(e.Realtime, e.Fields["MESSAGE"])
}

// kernelLines are the kept lines within the window, oldest first.
func (s *Source) kernelLines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	cutoff := s.opts.Now().Add(-s.cfg.KernelLog.Window.Duration)
	i := 0
	for i < len(s.kernel) && s.kernel[i].at.Before(cutoff) {
		i++
	}
	s.kernel = slices.Delete(s.kernel, 0, i)
	lines := make([]string, len(s.kernel))
	for i, l := range s.kernel {
		lines[i] = l.text
	}
	return lines
}

func (s *Source) keepKernelLine(at time.Time, text string) {
	if !healthcheck.Relevant(text) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.kernel) == maxKernelLines {
		s.kernel = slices.Delete(s.kernel, 0, 1)
	}
	s.kernel = append(s.kernel, kernelLine{at: at, text: text})
}

// kernelLogPath resolves the configured kernel log: "auto" is /dev/kmsg
// when it can be opened (mounted into the pod, and readable: root, or
// dmesg_restrict off), else none.
func kernelLogPath(p *string, log logr.Logger) string {
	if p == nil || *p != v1alpha1.KernelLogAuto {
		return ptr.Deref(p, "")
	}
	f, err := os.Open(kmsg.DefaultPath)
	if err != nil {
		log.Info("no kernel log: kernel log findings (soft lockups, hung tasks, I/O errors) are off", "path", kmsg.DefaultPath, "reason", err.Error())
		return ""
	}
	f.Close()
	return kmsg.DefaultPath
}

// followKernelLog keeps the relevant kernel log records; replayed records
// are dated by the boot time, so the window drops old ones.
func (s *Source) followKernelLog(ctx context.Context, p string) {
	h := kmsg.Handler{Record: func(r kmsg.Record, replay bool) {
		at := s.opts.Now()
		if replay && !s.opts.BootTime.IsZero() {
			at = s.opts.BootTime.Add(r.Time)
		}
		s.keepKernelLine(at, r.Message)
	}}
	if err := kmsg.Follow(ctx, kmsg.Options{Path: p}, h, s.opts.Log.WithName("kmsg")); err != nil {
		s.opts.Log.Error(err, "kernel log unreadable; kernel log findings are off", "path", p)
	}
}

// hostFS serves "proc/..." from the host's /proc and "sys/..." from its
// /sys, the layout the detectors read. It passes ReadFile and ReadDir on:
// fs.ReadFile's fallback reads a file of stat size 0 one byte first, and a
// sysctl read at a non-zero offset ends the file, so /proc/sys/kernel/pid_max
// would read as its first digit.
type hostFS struct{ proc, sys fs.FS }

var (
	_ fs.ReadFileFS = hostFS{}
	_ fs.ReadDirFS  = hostFS{}
)

// route returns the file system and the name in it for a host path.
func (h hostFS) route(op, name string) (fs.FS, string, error) {
	if !fs.ValidPath(name) {
		return nil, "", &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	top, rest, _ := strings.Cut(name, "/")
	if rest == "" {
		rest = "."
	}
	switch top {
	case "proc":
		return h.proc, rest, nil
	case "sys":
		return h.sys, rest, nil
	}
	return nil, "", &fs.PathError{Op: op, Path: path.Clean(name), Err: fs.ErrNotExist}
}

func (h hostFS) Open(name string) (fs.File, error) {
	fsys, rest, err := h.route("open", name)
	if err != nil {
		return nil, err
	}
	return fsys.Open(rest)
}

func (h hostFS) ReadFile(name string) ([]byte, error) {
	fsys, rest, err := h.route("readfile", name)
	if err != nil {
		return nil, err
	}
	return fs.ReadFile(fsys, rest)
}

func (h hostFS) ReadDir(name string) ([]fs.DirEntry, error) {
	fsys, rest, err := h.route("readdir", name)
	if err != nil {
		return nil, err
	}
	return fs.ReadDir(fsys, rest)
}
