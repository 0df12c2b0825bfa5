package kmsg

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/google/go-cmp/cmp"

	"github.com/nodewarden/nodewarden/test/cluster"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want Record
	}{
		{"6,339,5140900,-;NET: Registered protocol family 10\n",
			Record{Priority: 6, Seq: 339, Time: 5140900 * time.Microsecond, Flags: "-", Message: "NET: Registered protocol family 10"}},
		{"6,339,5140900,-,caller=T1;NET: Registered protocol family 10\n SUBSYSTEM=net\n DEVICE=+net:lo\n",
			Record{Priority: 6, Seq: 339, Time: 5140900 * time.Microsecond, Flags: "-", Message: "NET: Registered protocol family 10",
				Dict: []string{"SUBSYSTEM=net", "DEVICE=+net:lo"}}},
		{"30,1,0;no flags, a ; in the text", Record{Priority: 30, Seq: 1, Message: "no flags, a ; in the text"}},
		{"4,2,3,c;      Tainted: G         C    3.16.0-4-amd64 #1\n",
			Record{Priority: 4, Seq: 2, Time: 3 * time.Microsecond, Flags: "c", Message: "      Tainted: G         C    3.16.0-4-amd64 #1"}},
	}
	for _, tt := range tests {
		got, err := Parse([]byte(tt.in))
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Parse(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
	if r, _ := Parse([]byte("14,1,1,-;x")); r.Level() != 6 {
		t.Errorf("level of priority 14 = %d, want 6", r.Level())
	}
	for _, bad := range []string{"no semicolon", "6,1;two fields", "x,1,1,-;bad prio", "6,x,1,-;bad seq", "6,1,-5,-;bad ts", ""} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%q) succeeded", bad)
		}
	}
}

// collector is a Handler that keeps what it gets.
type collector struct {
	mu        sync.Mutex
	records   []Record
	replayed  []bool
	gaps      [][2]uint64
	malformed []string
	replay    chan struct{}
}

func newCollector() *collector { return &collector{replay: make(chan struct{})} }

func (c *collector) handler() Handler {
	return Handler{
		Record: func(r Record, replay bool) {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.records = append(c.records, r)
			c.replayed = append(c.replayed, replay)
		},
		ReplayDone: func() { close(c.replay) },
		Gap: func(after, lost uint64) {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.gaps = append(c.gaps, [2]uint64{after, lost})
		},
		Malformed: func(raw []byte, err error) {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.malformed = append(c.malformed, string(raw))
		},
	}
}

func (c *collector) messages() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, r := range c.records {
		out = append(out, r.Message)
	}
	return out
}

func follow(t *testing.T, opts Options, c *collector) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := Follow(ctx, opts, c.handler(), testr.New(t)); err != nil {
			t.Error(err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// A stream of records with continuation lines and a sequence gap (records
// overwritten before they were read): every record is delivered whole, the
// gap is reported with how many records were lost, and reading goes on.
func TestStreamContinuationLinesAndGap(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kmsg")
	initial := "" +
		"6,10,1000,-;first\n" +
		"3,11,2000,-;EXT4-fs (sda1): Remounting filesystem read-only\n" +
		" SUBSYSTEM=block\n" +
		" DEVICE=b8:1\n" +
		"not a record\n" +
		// 12..14 were overwritten.
		"4,15,3000,-;after the gap\n"
	if err := os.WriteFile(path, []byte(initial), 0o644); err != nil {
		t.Fatal(err)
	}
	c := newCollector()
	follow(t, Options{Path: path, PollInterval: 20 * time.Millisecond}, c)
	select {
	case <-c.replay:
	case <-time.After(5 * time.Second):
		t.Fatal("no end of replay")
	}
	if diff := cmp.Diff([]string{"first", "EXT4-fs (sda1): Remounting filesystem read-only", "after the gap"}, c.messages()); diff != "" {
		t.Errorf("replayed (-want +got):\n%s", diff)
	}
	c.mu.Lock()
	if diff := cmp.Diff([]string{"SUBSYSTEM=block", "DEVICE=b8:1"}, c.records[1].Dict); diff != "" {
		t.Errorf("dictionary (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([][2]uint64{{11, 3}}, c.gaps); diff != "" {
		t.Errorf("gaps (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"not a record"}, c.malformed); diff != "" {
		t.Errorf("malformed (-want +got):\n%s", diff)
	}
	c.mu.Unlock()

	// New records, a partial line first: nothing is delivered until its end.
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fmt.Fprint(f, "6,16,4000,-;new rec")
	time.Sleep(100 * time.Millisecond)
	fmt.Fprint(f, "ord\n SUBSYSTEM=x\n6,20,5000,-;last\n")
	cluster.Eventually(t, 5*time.Second, func() error {
		if got := c.messages(); len(got) != 5 || got[3] != "new record" || got[4] != "last" {
			return fmt.Errorf("messages %q", got)
		}
		return nil
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	if diff := cmp.Diff([]bool{true, true, true, false, false}, c.replayed); diff != "" {
		t.Errorf("replay flags (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([][2]uint64{{11, 3}, {16, 3}}, c.gaps); diff != "" {
		t.Errorf("gaps (-want +got):\n%s", diff)
	}
}

// fakeDevice returns scripted reads, as /dev/kmsg would.
type fakeDevice struct {
	mu      sync.Mutex
	reads   []fakeRead
	stopped chan struct{}
	once    sync.Once
}

type fakeRead struct {
	record string
	err    error
}

func (d *fakeDevice) read(buf []byte, wait bool) (int, error) {
	for {
		d.mu.Lock()
		if len(d.reads) > 0 {
			r := d.reads[0]
			d.reads = d.reads[1:]
			d.mu.Unlock()
			return copy(buf, r.record), r.err
		}
		d.mu.Unlock()
		if !wait {
			return 0, syscall.EAGAIN
		}
		select {
		case <-d.stopped:
			return 0, errStopped
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (d *fakeDevice) push(r ...fakeRead) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reads = append(d.reads, r...)
}

func (d *fakeDevice) stop()        { d.once.Do(func() { close(d.stopped) }) }
func (d *fakeDevice) close() error { return nil }

// The device: one record per read, EAGAIN ends the replay, EPIPE (records
// overwritten) is logged and reading goes on, with the lost records counted
// from the jump in sequence numbers.
func TestDeviceEPIPE(t *testing.T) {
	dev := &fakeDevice{stopped: make(chan struct{})}
	dev.push(
		fakeRead{record: "6,1,10,-;one\n"},
		fakeRead{record: "6,2,20,-;two\n SUBSYSTEM=x\n"},
	)
	old := openDevice
	openDevice = func(string) (device, error) { return dev, nil }
	t.Cleanup(func() { openDevice = old })

	// Follow only opens a character device through openDevice.
	path := "/dev/null"
	if info, err := os.Stat(path); err != nil || info.Mode()&os.ModeCharDevice == 0 {
		t.Skip("no character device to stand for /dev/kmsg")
	}
	c := newCollector()
	follow(t, Options{Path: path}, c)
	select {
	case <-c.replay:
	case <-time.After(5 * time.Second):
		t.Fatal("no end of replay")
	}
	dev.push(
		fakeRead{err: syscall.EPIPE},
		fakeRead{record: "6,7,70,-;seven\n"},
		fakeRead{record: "6,8,80,-;eight\n"},
	)
	cluster.Eventually(t, 5*time.Second, func() error {
		if got := c.messages(); len(got) != 4 {
			return fmt.Errorf("messages %q", got)
		}
		return nil
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	if diff := cmp.Diff([]string{"one", "two", "seven", "eight"}, []string{c.records[0].Message, c.records[1].Message, c.records[2].Message, c.records[3].Message}); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]bool{true, true, false, false}, c.replayed); diff != "" {
		t.Errorf("replay flags (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([][2]uint64{{2, 4}}, c.gaps); diff != "" {
		t.Errorf("gaps (-want +got):\n%s", diff)
	}
}

// The real /dev/kmsg, where the test may read it: the buffer is replayed
// and the end of the replay is reported.
func TestRealDevice(t *testing.T) {
	f, err := os.Open(DefaultPath)
	if err != nil {
		t.Skipf("cannot read %s: %v", DefaultPath, err)
	}
	f.Close()
	c := newCollector()
	follow(t, Options{}, c)
	select {
	case <-c.replay:
	case <-time.After(10 * time.Second):
		t.Fatal("no end of replay on the real device")
	}
}
