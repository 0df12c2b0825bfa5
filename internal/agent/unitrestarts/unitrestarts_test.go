package unitrestarts

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nodewarden/nodewarden/internal/agent/healthcheck"
	"github.com/nodewarden/nodewarden/internal/journal"
	"github.com/nodewarden/nodewarden/internal/journal/journaltest"
)

const (
	msgStopping = "de5b426a63be47a7b6ac3eaac82e2f6f" // SD_MESSAGE_UNIT_STOPPING
	msgStopped  = "9d1aaa27d60140bd96365438aad20286" // SD_MESSAGE_UNIT_STOPPED
	msgFailed   = "be02cf6855d2428ba40df7e9d022f03d" // SD_MESSAGE_UNIT_FAILED
)

// pid1 is an entry of systemd (PID 1) about a system unit, as job.c logs it.
func pid1(msgID, unit, job, msg string) map[string]string {
	return map[string]string{
		"_PID": "1", "_COMM": "systemd", "SYSLOG_IDENTIFIER": "systemd",
		"MESSAGE_ID": msgID, "UNIT": unit, "JOB_ID": job, "MESSAGE": msg,
	}
}

// text is an entry of systemd without a MESSAGE_ID (an old systemd).
func text(msg string) map[string]string {
	return map[string]string{"SYSLOG_IDENTIFIER": "systemd", "MESSAGE": msg}
}

func with(f map[string]string, kv ...string) map[string]string {
	f = maps(f)
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(f, kv[i])
		} else {
			f[kv[i]] = kv[i+1]
		}
	}
	return f
}

func maps(f map[string]string) map[string]string {
	g := make(map[string]string, len(f))
	for k, v := range f {
		g[k] = v
	}
	return g
}

func TestStartOf(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fields map[string]string
		unit   string // "" = not a start
	}{
		{"started containerd", pid1(MessageUnitStarted, "containerd.service", "12", "Started containerd container runtime."), "containerd"},
		{"started kubelet", pid1(MessageUnitStarted, "kubelet.service", "13", "Started Kubernetes Kubelet."), "kubelet"},
		{"starting containerd", pid1(MessageUnitStarting, "containerd.service", "12", "Starting containerd container runtime..."), "containerd"},
		{"message ID in upper case", pid1(strings.ToUpper(MessageUnitStarted), "containerd.service", "12", "Started containerd container runtime."), "containerd"},
		{"no _PID (imported)", with(pid1(MessageUnitStarted, "kubelet.service", "13", "Started kubelet."), "_PID", ""), "kubelet"},
		{"another service", pid1(MessageUnitStarted, "sshd.service", "14", "Started OpenSSH Daemon."), "sshd"},
		{"StatusUnitFormat=name", pid1(MessageUnitStarted, "kubelet.service", "13", "Started kubelet.service."), "kubelet"},

		{"user unit", with(pid1(MessageUnitStarted, "", "5", "Started containerd container runtime."),
			"UNIT", "", "USER_UNIT", "containerd.service", "_PID", "2345"), ""},
		{"user unit without _PID", with(pid1(MessageUnitStarted, "", "5", "Started containerd."), "UNIT", "", "USER_UNIT", "containerd.service", "_PID", ""), ""},
		{"not PID 1", with(pid1(MessageUnitStarted, "containerd.service", "12", "Started containerd container runtime."), "_PID", "4242"), ""},
		{"socket unit", pid1(MessageUnitStarted, "containerd.socket", "15", "Listening on containerd socket."), ""},
		{"scope unit", pid1(MessageUnitStarted, "session-1.scope", "16", "Started Session 1 of User root."), ""},
		{"no UNIT", with(pid1(MessageUnitStarted, "", "12", "Started containerd container runtime."), "UNIT", ""), ""},
		{"stopping containerd", pid1(msgStopping, "containerd.service", "20", "Stopping containerd container runtime..."), ""},
		{"stopped containerd", pid1(msgStopped, "containerd.service", "20", "Stopped containerd container runtime."), ""},
		{"failed to start containerd", pid1(msgFailed, "containerd.service", "21", "Failed to start containerd container runtime."), ""},
		{"condition skipped", pid1(MessageUnitStarted, "kubelet.service", "22", "Condition check resulted in Kubernetes Kubelet being skipped."), ""},
		{"other message ID, start text", pid1("fc2e22bc6ee647b6b90729ab34a250b1", "containerd.service", "", "Started containerd container runtime."), ""},

		{"text: started kubelet", text("Started Kubernetes Kubelet."), "kubelet"},
		{"text: started kubelet (GKE)", text("Started Kubernetes kubelet."), "kubelet"},
		{"text: starting containerd", text("Starting containerd container runtime..."), "containerd"},
		{"text: started containerd", text("Started containerd container runtime."), "containerd"},
		{"text: name", text("Started kubelet.service."), "kubelet"},
		{"text: combined", text("Starting containerd.service - containerd container runtime..."), "containerd"},
		{"text: trailing newline", text("Started Kubernetes Kubelet.\n"), "kubelet"},
		{"text: unknown description", text("Started Daily apt download activities."), ""},
		{"text: stopped", text("Stopped containerd container runtime."), ""},
		{"text: stopping", text("Stopping containerd container runtime..."), ""},
		{"text: failed", text("Failed to start containerd container runtime."), ""},
		{"text: not systemd", with(text("Started Kubernetes Kubelet."), "SYSLOG_IDENTIFIER", "kubelet"), ""},
		{"text: user manager", with(text("Started containerd.service."), "_PID", "2345"), ""},
		{"text: PID 1", with(text("Started containerd.service."), "_PID", "1"), "containerd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			unit, ok := StartOf(journal.Entry{Fields: tc.fields})
			if ok != (tc.unit != "") || unit != tc.unit {
				t.Errorf("StartOf = %q, %v; want %q, %v", unit, ok, tc.unit, tc.unit != "")
			}
		})
	}
}

var (
	base   = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	bootA  = [16]byte{0xa0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	bootB  = [16]byte{0xb0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	nextMo = uint64(1_000_000) // the last monotonic stamp written, in µs
)

type ent struct {
	at     time.Duration // after base
	boot   [16]byte      // bootA if zero
	fields map[string]string
}

// write appends ents to the journal file out with journal-remote, each with
// the next monotonic stamp of the test binary.
func write(t *testing.T, out string, ents ...ent) {
	t.Helper()
	es := make([]journaltest.Entry, 0, len(ents))
	for _, e := range ents {
		boot := e.boot
		if boot == ([16]byte{}) {
			boot = bootA
		}
		nextMo++
		es = append(es, journaltest.Entry{Realtime: base.Add(e.at), Monotonic: time.Duration(nextMo) * time.Microsecond, BootID: boot, Fields: e.fields})
	}
	journaltest.Write(t, out, nil, nil, es...)
}

// notifyStart is a start of a Type=notify service (containerd): "Starting"
// then "Started", one job.
func notifyStart(at time.Duration, job int) []ent {
	j := fmt.Sprint(job)
	return []ent{
		{at: at, fields: pid1(MessageUnitStarting, "containerd.service", j, "Starting containerd container runtime...")},
		{at: at + 2*time.Second, fields: pid1(MessageUnitStarted, "containerd.service", j, "Started containerd container runtime.")},
	}
}

// simpleStart is a start of a Type=simple service (the kubelet): "Started" only.
func simpleStart(at time.Duration, job int) ent {
	return ent{at: at, fields: pid1(MessageUnitStarted, "kubelet.service", fmt.Sprint(job), "Started Kubernetes Kubelet.")}
}

func noise(at time.Duration) []ent {
	return []ent{
		{at: at, fields: map[string]string{"_PID": "812", "SYSLOG_IDENTIFIER": "kubelet", "MESSAGE": "Started kubelet.service."}},
		{at: at, fields: pid1(MessageUnitStarted, "sshd.service", "900", "Started OpenSSH Daemon.")},
		{at: at, fields: with(pid1(MessageUnitStarted, "", "7", "Started containerd container runtime."), "UNIT", "", "USER_UNIT", "containerd.service", "_PID", "2345")},
		{at: at, fields: pid1(msgStopping, "containerd.service", "901", "Stopping containerd container runtime...")},
		{at: at, fields: pid1(msgStopped, "containerd.service", "901", "Stopped containerd container runtime.")},
	}
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func check(t *testing.T, got []healthcheck.UnitRestarts, err error, containerd, kubelet int) {
	t.Helper()
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	checkCounts(t, got, containerd, kubelet)
}

func checkCounts(t *testing.T, got []healthcheck.UnitRestarts, containerd, kubelet int) {
	t.Helper()
	want := []healthcheck.UnitRestarts{
		{Unit: "containerd", Starts: containerd, Window: DefaultWindow},
		{Unit: "kubelet", Starts: kubelet, Window: DefaultWindow},
	}
	if !slices.Equal(got, want) {
		t.Errorf("Update = %+v, want %+v", got, want)
	}
}

// Against journal files written by systemd-journal-remote: counts within
// the window, counts that drop as the window passes, appended entries counted
// once, a rotated journal followed, a vacuumed file and a corrupt file.
func TestCounterRealJournal(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "var", "0123456789abcdef0123456789abcdef")
	run := filepath.Join(root, "run") // volatile journal: missing, skipped
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	live := filepath.Join(dir, "system.journal")

	// An old start (out of the window), then 6 starts of containerd in 10
	// minutes (one of which fails before it is ready: "Starting" and
	// "Failed to start") and 1 of the kubelet, with noise.
	ents := append([]ent{}, notifyStart(-2*time.Hour, 1)...)
	ents = append(ents, simpleStart(-time.Hour, 2))
	ents = append(ents, noise(-time.Minute)...)
	job := 10
	for i := range 6 {
		at := time.Duration(2*i) * time.Minute
		if i == 3 {
			ents = append(ents,
				ent{at: at, fields: pid1(MessageUnitStarting, "containerd.service", fmt.Sprint(job), "Starting containerd container runtime...")},
				ent{at: at + time.Second, fields: pid1(msgFailed, "containerd.service", fmt.Sprint(job), "Failed to start containerd container runtime.")})
		} else {
			ents = append(ents, notifyStart(at, job)...)
		}
		job++
	}
	ents = append(ents, simpleStart(time.Minute, 50))
	ents = append(ents, ent{at: 3 * time.Minute, fields: pid1(MessageUnitStarted, "kubelet.service", "51", "Condition check resulted in Kubernetes Kubelet being skipped.")})
	ents = append(ents, noise(9*time.Minute)...)
	write(t, live, ents...)

	clk := &clock{base.Add(10*time.Minute + 30*time.Second)}
	c := New([]string{dir, run}, []string{"kubelet", "containerd.service"}, 0, clk.now)
	got, err := c.Update(nil)
	check(t, got, err, 6, 1)
	// Nothing new: the same counts.
	got, err = c.Update(nil)
	check(t, got, err, 6, 1)

	// The window passes: the window starts at 3m, then at 11m.
	clk.t = base.Add(23 * time.Minute)
	got, err = c.Update(nil)
	check(t, got, err, 4, 0)
	clk.t = base.Add(31 * time.Minute)
	got, err = c.Update(nil)
	check(t, got, err, 0, 0)

	// Entries appended to the file: only these count. The start at 34m
	// logs "Starting" now and "Started" after the rotation below.
	var more []ent
	more = append(more, notifyStart(32*time.Minute, 60)...)
	more = append(more, notifyStart(33*time.Minute, 61)...)
	more = append(more, ent{at: 34 * time.Minute, fields: pid1(MessageUnitStarting, "containerd.service", "62", "Starting containerd container runtime...")})
	write(t, live, more...)
	clk.t = base.Add(34*time.Minute + time.Second)
	got, err = c.Update(nil)
	check(t, got, err, 3, 0)
	got, err = c.Update(nil)
	check(t, got, err, 3, 0)

	// Rotation: journald archives system.journal and opens a new one.
	// (journal-remote gives the new file a new seqnum ID, which the cursor
	// crosses by the realtime stamp.)
	archived := filepath.Join(dir, "system@0123456789abcdef0123456789abcdef-0000000000000001-0006129a0c2d4f00.journal")
	if err := os.Rename(live, archived); err != nil {
		t.Fatal(err)
	}
	write(t, live,
		ent{at: 34*time.Minute + 2*time.Second, fields: pid1(MessageUnitStarted, "containerd.service", "62", "Started containerd container runtime.")},
		simpleStart(35*time.Minute, 63),
		// An old systemd's text entries: one start.
		ent{at: 36 * time.Minute, fields: text("Starting containerd container runtime...")},
		ent{at: 36*time.Minute + time.Second, fields: text("Started containerd container runtime.")},
	)
	clk.t = base.Add(37 * time.Minute)
	got, err = c.Update(nil)
	check(t, got, err, 4, 1)

	// The archived file is vacuumed: nothing lost or repeated.
	if err := os.Remove(archived); err != nil {
		t.Fatal(err)
	}
	got, err = c.Update(nil)
	check(t, got, err, 4, 1)

	// A corrupt file: an error, and the counts with what could be read.
	bad := filepath.Join(dir, "system@bad.journal")
	if err := os.WriteFile(bad, []byte("LPKSHHRH but not a journal file"), 0o600); err != nil {
		t.Fatal(err)
	}
	write(t, live, simpleStart(38*time.Minute, 64))
	clk.t = base.Add(39 * time.Minute)
	got, err = c.Update(nil)
	if err == nil {
		t.Error("a corrupt file: no error")
	}
	checkCounts(t, got, 4, 2)
	if err := os.Remove(bad); err != nil {
		t.Fatal(err)
	}
	got, err = c.Update(nil)
	check(t, got, err, 4, 2)

	// No directory at all: an error, the counts kept.
	c.dirs = []string{run}
	got, err = c.Update(nil)
	if err == nil || !strings.Contains(err.Error(), "no journal directory") {
		t.Errorf("no directory: %v", err)
	}
	checkCounts(t, got, 4, 2)
}

// The first Update reads the whole journal through ReadDirs; a Counter over
// a second tree (/run/log/journal holding the same entries) counts once.
func TestCounterTwoTrees(t *testing.T) {
	run, persistent := t.TempDir(), t.TempDir()
	var ents []ent
	for i := range 5 {
		ents = append(ents, notifyStart(time.Duration(i)*time.Minute, 100+i)...)
	}
	write(t, filepath.Join(run, "system.journal"), ents...)
	b, err := os.ReadFile(filepath.Join(run, "system.journal"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(persistent, "system.journal"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	clk := &clock{base.Add(5 * time.Minute)}
	var seen int
	each := func(journal.Entry) { seen++ }
	c := New([]string{persistent, run}, nil, 0, clk.now)
	got, err := c.Update(each)
	check(t, got, err, 5, 0)
	// each sees every entry once, the copy in the second tree included
	// once, and nothing again on the next pass.
	if seen != len(ents) {
		t.Errorf("each saw %d entries, the journal has %d", seen, len(ents))
	}
	if _, err := c.Update(each); err != nil || seen != len(ents) {
		t.Errorf("a second pass saw %d more entries (%v)", seen-len(ents), err)
	}
}

// add, without journal files: pairs by job and boot, order, the cap, the
// clock going back.
func TestCounterAdd(t *testing.T) {
	clk := &clock{base.Add(time.Hour)}
	c := New(nil, []string{"containerd"}, time.Hour, clk.now)
	horizon := base
	e := func(at time.Duration, boot [16]byte, f map[string]string) journal.Entry {
		return journal.Entry{Realtime: base.Add(at), BootID: boot, Fields: f}
	}
	starting := func(job string) map[string]string {
		return pid1(MessageUnitStarting, "containerd.service", job, "Starting containerd container runtime...")
	}
	started := func(job string) map[string]string {
		return pid1(MessageUnitStarted, "containerd.service", job, "Started containerd container runtime.")
	}
	for _, x := range []journal.Entry{
		e(1*time.Minute, bootA, starting("5")),
		e(2*time.Minute, bootA, started("5")),  // same start: not counted
		e(3*time.Minute, bootA, started("6")),  // another job: counted
		e(4*time.Minute, bootA, starting("7")), // fails; counted
		e(5*time.Minute, bootB, started("7")),  // reboot: job 7 of another boot
		e(6*time.Minute, bootB, started("8")),
		e(7*time.Minute, bootB, starting("9")),
		e(8*time.Minute, bootB, started("9")), // same start
		e(9*time.Minute, bootB, text("Starting containerd container runtime...")),
		e(10*time.Minute, bootB, text("Started containerd container runtime.")),                         // same start
		e(11*time.Minute, bootB, text("Started containerd container runtime.")),                         // another (no "Starting")
		e(-time.Minute, bootB, started("10")),                                                           // before the horizon
		e(30*time.Second, bootB, started("11")),                                                         // out of order
		e(12*time.Minute, bootB, pid1(MessageUnitStarted, "kubelet.service", "12", "Started kubelet.")), // not tracked
	} {
		c.add(x, horizon)
	}
	got := c.counts()
	// Counted: 0:30, 1, 3, 4, 5, 6, 7, 9, 11.
	if len(got) != 1 || got[0].Unit != "containerd" || got[0].Starts != 9 {
		t.Fatalf("counts = %+v, want containerd 9", got)
	}
	if ts := c.starts["containerd"]; !slices.IsSortedFunc(ts, time.Time.Compare) {
		t.Errorf("start times not sorted: %v", ts)
	}

	// The clock goes back: later starts are kept but not counted yet.
	clk.t = base.Add(5*time.Minute + 30*time.Second)
	if got := c.counts(); got[0].Starts != 5 { // 0:30, 1, 3, 4, 5
		t.Errorf("clock back: %+v", got)
	}

	// The cap: the oldest go.
	clk.t = base.Add(10 * 24 * time.Hour)
	c = New(nil, []string{"containerd"}, 24*time.Hour, clk.now)
	for i := range MaxStartsPerUnit + 10 {
		c.add(e(9*24*time.Hour+time.Duration(i)*time.Second, bootA, started(fmt.Sprint(i))), clk.t.Add(-48*time.Hour))
	}
	if got := c.counts(); got[0].Starts != MaxStartsPerUnit {
		t.Errorf("cap: %+v", got)
	}
	if first := c.starts["containerd"][0]; !first.Equal(base.Add(9*24*time.Hour + 10*time.Second)) {
		t.Errorf("cap kept %v first", first)
	}
}

func TestNewDefaults(t *testing.T) {
	c := New(nil, nil, 0, nil)
	if !slices.Equal(c.units, []string{"containerd", "kubelet"}) || c.window != DefaultWindow || c.now == nil {
		t.Errorf("defaults: %v %v", c.units, c.window)
	}
	c = New(nil, []string{"kubelet.service", " containerd ", "kubelet", ""}, time.Minute, nil)
	if !slices.Equal(c.units, []string{"containerd", "kubelet"}) || c.window != time.Minute {
		t.Errorf("units %q window %v", c.units, c.window)
	}
}
