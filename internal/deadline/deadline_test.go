package deadline

import (
	"strings"
	"testing"
	"time"
)

func TestSuffix(t *testing.T) {
	tests := []struct {
		t    time.Time
		want string
	}{
		{time.Date(2024, 1, 10, 2, 0, 0, 0, time.UTC), "not before 2024-01-10T02:00:00Z"},
		{time.Date(2024, 1, 10, 10, 0, 0, 0, time.FixedZone("CST", 8*3600)), "not before 2024-01-10T02:00:00Z"},
		{time.Date(2024, 1, 10, 2, 0, 0, 120_000_000, time.UTC), "not before 2024-01-10T02:00:00.12Z"},
	}
	for _, tc := range tests {
		if got := Suffix(tc.t); got != tc.want {
			t.Errorf("Suffix(%v) = %q, want %q", tc.t, got, tc.want)
		}
	}
}

func TestParse(t *testing.T) {
	tests := map[string]string{ // message: the deadline in RFC 3339 UTC, "" for none
		// What the agent writes.
		"SystemMaintenance.Reboot is Scheduled, not before 2024-01-10T02:00:00Z":       "2024-01-10T02:00:00Z",
		"AWS.SpotTerminate is Scheduled, not before 2024-01-10T02:00:00.123456789Z":    "2024-01-10T02:00:00.123456789Z",
		"not before 2024-01-10T02:00:00Z":                                              "2024-01-10T02:00:00Z",
		"GCP.Preempted is Scheduled, not before 2024-01-10T02:00:00.5Z":                "2024-01-10T02:00:00.5Z",
		"fraction longer than nanoseconds, not before 2024-01-10T02:00:00.1234567891Z": "2024-01-10T02:00:00.123456789Z",
		// What humans write.
		"rebooting; NOT BEFORE 2024-01-10T02:00:00+08:00.  ":         "2024-01-09T18:00:00Z",
		"Not Before 2024-01-10T02:00:00-05:30.":                      "2024-01-10T07:30:00Z",
		"reboot\tnot  before\n2024-01-10T02:00:00Z\n":                "2024-01-10T02:00:00Z",
		"no-break spaces, not\u00a0before\u00a02024-01-10T02:00:00Z": "2024-01-10T02:00:00Z",
		"lower-case t and z, not before 2024-01-10t02:00:00z":        "2024-01-10T02:00:00Z",
		"leap day, not before 2024-02-29T23:59:59Z":                  "2024-02-29T23:59:59Z",
		// No deadline.
		"":                                         "",
		"no host event seen":                       "",
		"not before":                               "",
		"not before ":                              "",
		"not before soon":                          "",
		"2024-01-10T02:00:00Z":                     "",
		"before 2024-01-10T02:00:00Z":              "",
		"notbefore 2024-01-10T02:00:00Z":           "",
		"not after 2024-01-10T02:00:00Z":           "",
		"not before2024-01-10T02:00:00Z":           "",
		"not before 2024-01-10T02:00:00Z, maybe":   "",
		"not before 2024-01-10T02:00:00Z..":        "",
		"not before 2024-01-10T02:00:00":           "", // no zone
		"not before 2024-01-10 02:00:00Z":          "", // a space for T
		"not before 2024-01-10T2:00:00Z":           "", // one-digit hour
		"not before 2024-1-10T02:00:00Z":           "", // one-digit month
		"not before 2024-01-10T02:00:00,5Z":        "", // comma before the fraction
		"not before 2024-01-10T02:00:00.Z":         "", // empty fraction
		"not before 2024-01-10T02:00:00+0800":      "", // offset without colon
		"not before 2024-01-10T02:00:00+24:00":     "", // offset out of range
		"not before 2024-01-10T02:00:00+08:60":     "", // offset minutes out of range
		"not before 2024-13-10T02:00:00Z":          "", // month out of range
		"not before 2023-02-29T02:00:00Z":          "", // no such day
		"not before 2024-01-10T24:00:00Z":          "", // hour out of range
		"not before 2024-01-10T02:00:60Z":          "", // leap second
		"not before 1704852000":                    "", // Unix time
		"not before Wed, 10 Jan 2024 02:00:00 GMT": "", // RFC 1123
	}
	for msg, want := range tests {
		got, ok := Parse(msg)
		if ok != (want != "") || ok && got.Format(time.RFC3339Nano) != want || ok && got.Location() != time.UTC {
			t.Errorf("Parse(%q) = %v, %v; want %q", msg, got, ok, want)
		}
	}
}

// FuzzParse: Parse never panics, whatever a condition message holds, and
// reads back every deadline Suffix writes, whatever comes before it.
func FuzzParse(f *testing.F) {
	f.Add("SystemMaintenance.Reboot is Scheduled, ", int64(1704852000), int64(0))
	f.Add("", int64(0), int64(999_999_999))
	f.Add("NOT BEFORE 2024-01-10T02:00:00+08:00. ", int64(-62167219200), int64(1))
	f.Add("not before\t", int64(253402300799), int64(5))
	f.Fuzz(func(t *testing.T, prefix string, sec, nsec int64) {
		Parse(prefix)
		// Every instant RFC 3339 can write: years 0000 to 9999.
		const first, last = -62167219200, 253402300799
		sec = first + int64(uint64(sec)%uint64(last-first+1))
		nsec = int64(uint64(nsec) % 1e9)
		want := time.Unix(sec, nsec)
		msg := prefix + Suffix(want)
		got, ok := Parse(msg)
		if !ok || !got.Equal(want) {
			t.Fatalf("Parse(%q) = %v, %v; want %v", msg, got, ok, want.UTC())
		}
		if !strings.HasSuffix(msg, got.Format(time.RFC3339Nano)) {
			t.Fatalf("Parse(%q) = %v: not the time the message ends with", msg, got)
		}
	})
}
