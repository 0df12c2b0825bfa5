// Package unitrestarts counts how often systemd started the container
// runtime's and the kubelet's services (containerd.service, kubelet.service)
// within a time window, from the host's systemd journal. The counts feed
// ContainerRuntimeReady's <Unit>RepeatedRestart reasons (the EKS node
// monitoring agent's ContainerdRepeatedRestart and KubeletRepeatedRestart)
// and match node-problem-detector's FrequentContainerdRestart and
// FrequentKubeletRestart (its systemd-monitor-counter: 5 starts in 20
// minutes).
//
// # Why the journal and not /proc
//
// The agent runs in its own PID namespace, not the host's, so it does not see
// the host's containerd and kubelet processes in its /proc. Even with the
// host's /proc, a process's start time tells only when its latest instance
// started: it cannot tell five restarts in twenty minutes from one. systemd
// logs every start of a unit to the journal, which the agent can read as
// files (package journal), so the journal is the record of how often.
//
// # Which entries are starts
//
// systemd (PID 1; _PID=1) logs a start job of a system unit with the unit's
// name in UNIT= (a user manager writes USER_UNIT= and is not PID 1; its
// entries are ignored) and a MESSAGE_ID from sd-messages.h, as
// src/core/job.c writes them:
//
//   - SD_MESSAGE_UNIT_STARTING 7d4958e842da4a758f6c1cdc7b36dcc5,
//     "Starting <unit>...": the start job began. Logged only when the unit
//     has an activating phase (Type=notify, forking, oneshot: containerd),
//     not for a Type=simple service (the kubelet), which goes straight to
//     active.
//   - SD_MESSAGE_UNIT_STARTED 39f53479d3a045ac8e11786248231fbf,
//     "Started <unit>.": the start job finished successfully. A start job
//     skipped by a failed Condition*= also carries this ID, with the message
//     "Condition check resulted in <unit> being skipped."; it is not a start.
//
// Both carry the job's JOB_ID. One start logs a "Starting" entry, a
// "Started" entry, or both; a start is counted once, at its first entry: a
// "Started" entry of the same job as the unit's preceding "Starting" entry
// (same boot, same JOB_ID) is not counted again. Counting "Starting" entries
// counts the attempts of a service that fails before it is ready (a
// Type=notify containerd that exits at startup logs "Starting" and "Failed
// to start" on every restart, never "Started"), as NPD's containerd pattern
// ("Starting containerd container runtime...") does; counting "Started"
// entries counts the starts of a Type=simple service, as NPD's kubelet
// pattern ("Started Kubernetes kubelet.") does.
//
// Entries without a MESSAGE_ID (an old systemd, or entries relayed from a
// syslog stream) are matched by text as NPD matches them: SYSLOG_IDENTIFIER
// systemd and the message "Starting <unit>..." or "Started <unit>.", where
// <unit> is as systemd's StatusUnitFormat= shows it: the unit's name
// ("containerd.service"), its name and description ("containerd.service -
// containerd container runtime"), or a known description ("containerd
// container runtime", "Kubernetes Kubelet"). They are deduplicated as above
// (without a JOB_ID, a "Started" entry right after a "Starting" entry of the
// unit is taken to be the same start).
//
// The first start of a unit after boot is a start too; callers compare the
// count with a threshold that allows for it.
package unitrestarts

import (
	"cmp"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nodewarden/nodewarden/internal/agent/healthcheck"
	"github.com/nodewarden/nodewarden/internal/journal"
)

// The MESSAGE_IDs of systemd's start job messages (systemd's sd-messages.h
// and catalog/systemd.catalog).
const (
	MessageUnitStarting = "7d4958e842da4a758f6c1cdc7b36dcc5" // SD_MESSAGE_UNIT_STARTING
	MessageUnitStarted  = "39f53479d3a045ac8e11786248231fbf" // SD_MESSAGE_UNIT_STARTED
)

// DefaultUnits are the units NPD's systemd-monitor-counter watches, docker
// aside.
var DefaultUnits = []string{"containerd", "kubelet"}

// DefaultWindow is NPD's lookback (--lookback=20m).
const DefaultWindow = 20 * time.Minute

// MaxStartsPerUnit bounds the start times kept per unit: the oldest are
// dropped beyond it. Thresholds are a handful of starts, so a count capped
// here is as good as the real one.
const MaxStartsPerUnit = 1000

// knownDescriptions maps the lowercased Description= of the tracked units'
// usual unit files to the unit, for entries that name a unit by its
// description only (StatusUnitFormat=description, systemd's default).
var knownDescriptions = map[string]string{
	"containerd container runtime":        "containerd", // containerd's containerd.service
	"kubernetes kubelet":                  "kubelet",    // EKS AMIs ("Kubernetes Kubelet"), GKE ("Kubernetes kubelet")
	"kubelet: the kubernetes node agent":  "kubelet",    // kubeadm's kubelet package
	"kubelet: the kubernetes node agent.": "kubelet",
}

// start is one entry that marks a start of a service.
type start struct {
	unit string // without ".service"
	job  string // JOB_ID; "" if the entry has none
	// begun: "Starting" (the start job began); else "Started" (it finished).
	begun bool
}

// StartOf reports whether e marks a start of a system service by systemd,
// and which (its name without ".service": "containerd"): a "Starting" or
// "Started" entry of PID 1 (see the package doc). One start may log both; a
// Counter counts it once.
func StartOf(e journal.Entry) (unit string, ok bool) {
	s, ok := startOf(e)
	return s.unit, ok
}

func startOf(e journal.Entry) (start, bool) {
	f := e.Fields
	// _PID is a trusted field (journald sets it from the sender's
	// credentials); an entry without it did not come from a local process
	// (journal-remote, an export) and is taken as it is.
	if pid, ok := f["_PID"]; ok && pid != "1" {
		return start{}, false
	}
	if id, ok := f["MESSAGE_ID"]; ok {
		var begun bool
		switch strings.ToLower(strings.TrimSpace(id)) {
		case MessageUnitStarting:
			begun = true
		case MessageUnitStarted:
			if strings.HasPrefix(strings.TrimSpace(f["MESSAGE"]), "Condition check resulted in ") {
				return start{}, false
			}
		default:
			return start{}, false
		}
		unit, ok := serviceName(f["UNIT"])
		if !ok {
			return start{}, false
		}
		return start{unit: unit, job: f["JOB_ID"], begun: begun}, true
	}
	if f["SYSLOG_IDENTIFIER"] != "systemd" {
		return start{}, false
	}
	msg := strings.TrimSpace(f["MESSAGE"])
	var status string
	var begun bool
	if s, ok := cutAffixes(msg, "Starting ", "..."); ok {
		status, begun = s, true
	} else if s, ok := cutAffixes(msg, "Started ", "."); ok {
		status = s
	} else {
		return start{}, false
	}
	unit, ok := unitOfStatus(status)
	if !ok {
		return start{}, false
	}
	return start{unit: unit, job: f["JOB_ID"], begun: begun}, true
}

func cutAffixes(s, prefix, suffix string) (string, bool) {
	if len(s) < len(prefix)+len(suffix) || !strings.HasPrefix(s, prefix) || !strings.HasSuffix(s, suffix) {
		return "", false
	}
	return strings.TrimSpace(s[len(prefix) : len(s)-len(suffix)]), true
}

// serviceName is the name of a service unit without ".service"; ok is false
// for other units (sockets, scopes, mounts...).
func serviceName(unit string) (string, bool) {
	name, ok := strings.CutSuffix(strings.TrimSpace(unit), ".service")
	if !ok || name == "" || strings.ContainsAny(name, " /") {
		return "", false
	}
	return name, true
}

// unitOfStatus is the service a status string names: "NAME.service",
// "NAME.service - DESCRIPTION" or a known description.
func unitOfStatus(status string) (string, bool) {
	name, _, _ := strings.Cut(status, " - ")
	if u, ok := serviceName(name); ok {
		return u, true
	}
	u, ok := knownDescriptions[strings.ToLower(status)]
	return u, ok
}

// Counter counts the starts of a set of units within a window from the
// journal, reading the entries it has not read yet at each Update. Its
// methods may be called from several goroutines.
type Counter struct {
	dirs   []string
	units  []string
	window time.Duration
	now    func() time.Time

	mu     sync.Mutex
	cursor journal.Cursor
	// starts holds each tracked unit's start times, sorted, those within
	// the window (and later ones, if the clock went back), at most
	// MaxStartsPerUnit.
	starts map[string][]time.Time
	// last is each tracked unit's last start entry, to count a start that
	// logs "Starting" and "Started" once.
	last map[string]lastStart
}

type lastStart struct {
	boot  [16]byte
	job   string
	begun bool
}

// New returns a Counter of the starts of units (service names without
// ".service"; DefaultUnits if empty) within window (DefaultWindow if not
// positive) as the journal files under dirs (journal.ReadDirs; for a host:
// /var/log/journal and /run/log/journal) record them. now is the clock
// (time.Now if nil). Nothing is read until Update.
func New(dirs []string, units []string, window time.Duration, now func() time.Time) *Counter {
	if len(units) == 0 {
		units = DefaultUnits
	}
	var us []string
	for _, u := range units {
		u = strings.TrimSuffix(strings.TrimSpace(u), ".service")
		if u != "" {
			us = append(us, u)
		}
	}
	slices.Sort(us)
	us = slices.Compact(us)
	if window <= 0 {
		window = DefaultWindow
	}
	if now == nil {
		now = time.Now
	}
	return &Counter{
		dirs:   slices.Clone(dirs),
		units:  us,
		window: window,
		now:    now,
		starts: map[string][]time.Time{},
		last:   map[string]lastStart{},
	}
}

// Update reads the journal entries after those read before (the whole
// journal at the first call, of which only starts within the window are
// kept) and returns, for each tracked unit sorted by name, the number of its
// starts within the window before now: entries whose realtime stamp is
// after now minus the window and not after now. Zero counts are included.
//
// Directories of dirs that do not exist are skipped (a volatile or a
// persistent journal only); none existing is an error. A read error (a
// corrupt file) is returned with the counts that include every entry read
// before and after it; the next Update goes on from the last entry read.
// Rotation and vacuuming neither repeat nor lose entries (journal.ReadDirs'
// cursor).
//
// each, if not nil, is called with every entry read, so one pass over the
// journal serves other readers too (the kubelet's log lines for the
// health checks).
func (c *Counter) Update(each func(journal.Entry)) ([]healthcheck.UnitRestarts, error) {
	c.mu.Lock()
	defer c.mu.Unlock()

	var dirs []string
	for _, d := range c.dirs {
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			dirs = append(dirs, d)
		}
	}
	var err error
	if len(dirs) == 0 {
		err = fmt.Errorf("reading unit starts: no journal directory exists of %s", strings.Join(c.dirs, ", "))
	} else {
		// Only starts after this are kept: older ones count for nothing.
		// It is taken before reading so that nothing read is newer than
		// the clock read after it.
		horizon := c.now().Add(-c.window)
		c.cursor, err = journal.ReadDirs(dirs, c.cursor, func(e journal.Entry) error {
			c.add(e, horizon)
			if each != nil {
				each(e)
			}
			return nil
		})
		if err != nil {
			err = fmt.Errorf("reading unit starts from the journal: %w", err)
		}
	}
	return c.counts(), err
}

// add records e if it is a start of a tracked unit.
func (c *Counter) add(e journal.Entry, horizon time.Time) {
	s, ok := startOf(e)
	if !ok {
		return
	}
	if _, tracked := slices.BinarySearch(c.units, s.unit); !tracked {
		return
	}
	prev, seen := c.last[s.unit]
	c.last[s.unit] = lastStart{boot: e.BootID, job: s.job, begun: s.begun}
	if !s.begun && seen && prev.begun && prev.boot == e.BootID && prev.job == s.job {
		return // the "Started" entry of a start counted at its "Starting" entry
	}
	if !e.Realtime.After(horizon) {
		return
	}
	ts := c.starts[s.unit]
	i, _ := slices.BinarySearchFunc(ts, e.Realtime, func(a, b time.Time) int { return a.Compare(b) })
	ts = slices.Insert(ts, i, e.Realtime)
	if len(ts) > MaxStartsPerUnit {
		ts = slices.Delete(ts, 0, len(ts)-MaxStartsPerUnit)
	}
	c.starts[s.unit] = ts
}

// counts drops the starts out of the window and counts the rest up to now.
func (c *Counter) counts() []healthcheck.UnitRestarts {
	now := c.now()
	from := now.Add(-c.window)
	out := make([]healthcheck.UnitRestarts, 0, len(c.units))
	for _, u := range c.units {
		ts := c.starts[u]
		// Drop what is at or before from; count what is not after now.
		lo, _ := slices.BinarySearchFunc(ts, from, func(t, target time.Time) int {
			return cmp.Or(t.Compare(target), -1) // first t > from
		})
		ts = slices.Delete(ts, 0, lo)
		if len(ts) == 0 {
			delete(c.starts, u)
		} else {
			c.starts[u] = ts
		}
		hi, _ := slices.BinarySearchFunc(ts, now, func(t, target time.Time) int {
			return cmp.Or(t.Compare(target), -1) // first t > now
		})
		out = append(out, healthcheck.UnitRestarts{Unit: u, Starts: hi, Window: c.window})
	}
	return out
}

// Cursor returns the cursor of the last entry read.
func (c *Counter) Cursor() journal.Cursor {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cursor
}
