package hostevent

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nodewarden/nodewarden/internal/deadline"
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func hostTime(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04:05", s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestParseAccepts(t *testing.T) {
	reboot := Event{
		Type:       "SystemMaintenance.Reboot",
		Status:     StatusScheduled,
		ActionTime: utc("2024-01-10T02:00:00Z"),
		LoggedAt:   hostTime("2024-01-08 17:02:01"),
	}
	const canonical = "2024-01-08 17:02:01 - WARNING - Ecs event type is: SystemMaintenance.Reboot,event status is: Scheduled,action ISO 8601 time is 2024-01-10T02:00:00Z"
	with := func(f func(*Event)) Event {
		e := reboot
		f(&e)
		return e
	}

	tests := []struct {
		name string
		line string
		want Event
	}{
		{"canonical", canonical, reboot},
		{"spaces after commas (fixture)", "2024-01-08 17:02:01 - WARNING - Ecs event type is: SystemMaintenance.Reboot, event status is: Scheduled, action ISO 8601 time is 2024-01-10T02:00:00Z", reboot},
		{"upper-case ECS (fixture)", strings.Replace(canonical, "Ecs", "ECS", 1), reboot},
		{"CRLF (fixture)", canonical + "\r\n", reboot},
		{"LF", canonical + "\n", reboot},
		{"bare CR", canonical + "\r", reboot},
		{"no spaces at all", "2024-01-08 17:02:01-WARNING-Ecs event type is:SystemMaintenance.Reboot,event status is:Scheduled,action ISO 8601 time is2024-01-10T02:00:00Z", reboot},
		{"extra blanks and tabs", " 2024-01-08  17:02:01 \t-  WARNING\t-   ecs  event\ttype is  :  SystemMaintenance.Reboot  ,  event status is :  Scheduled  ,  action ISO 8601 time is   2024-01-10T02:00:00Z  ", reboot},
		{"other level", strings.Replace(canonical, "WARNING", "INFO", 1), reboot},
		{"two-word level", strings.Replace(canonical, "WARNING", "Level 5", 1), reboot},
		{"keywords in any case", "2024-01-08 17:02:01 - WARNING - eCS EVENT TYPE IS: SystemMaintenance.Reboot,EVENT STATUS IS: scheduled,ACTION iso 8601 TIME IS 2024-01-10T02:00:00Z", reboot},
		{"colon before action time", strings.Replace(canonical, "time is ", "time is: ", 1), reboot},
		{"trailing junk", canonical + " (retry 3) trailing junk", reboot},
		{"junk glued to the time", canonical + "xyz,1", reboot},
		{"lower-case t and z", strings.Replace(canonical, "2024-01-10T02:00:00Z", "2024-01-10t02:00:00z", 1), reboot},
		{"action time with offset", strings.Replace(canonical, "2024-01-10T02:00:00Z", "2024-01-10T10:00:00+08:00", 1), reboot},
		{"negative offset across midnight", strings.Replace(canonical, "2024-01-10T02:00:00Z", "2024-01-09T21:30:00-04:30", 1), reboot},
		{"action time with fraction", strings.Replace(canonical, "2024-01-10T02:00:00Z", "2024-01-10T02:00:00.25Z", 1),
			with(func(e *Event) { e.ActionTime = utc("2024-01-10T02:00:00.25Z") })},
		{"python millis on log time", strings.Replace(canonical, "17:02:01", "17:02:01,123", 1),
			with(func(e *Event) { e.LoggedAt = e.LoggedAt.Add(123 * time.Millisecond) })},
		{"leap day", strings.Replace(canonical, "2024-01-08", "2024-02-29", 1),
			with(func(e *Event) { e.LoggedAt = hostTime("2024-02-29 17:02:01") })},
		{"unknown but well-formed type", strings.Replace(canonical, "SystemMaintenance.Reboot", "Future2.Thing9", 1),
			with(func(e *Event) { e.Type = "Future2.Thing9" })},
		{"status Inquiring", strings.Replace(canonical, "Scheduled", "Inquiring", 1), with(func(e *Event) { e.Status = StatusInquiring })},
		{"status Executing", strings.Replace(canonical, "Scheduled", "Executing", 1), with(func(e *Event) { e.Status = StatusExecuting })},
		{"status Executed", strings.Replace(canonical, "Scheduled", "Executed", 1), with(func(e *Event) { e.Status = StatusExecuted })},
		{"status Avoided", strings.Replace(canonical, "Scheduled", "Avoided", 1), with(func(e *Event) { e.Status = StatusAvoided })},
		{"status Canceled", strings.Replace(canonical, "Scheduled", "Canceled", 1), with(func(e *Event) { e.Status = StatusCanceled })},
		{"status Failed", strings.Replace(canonical, "Scheduled", "Failed", 1), with(func(e *Event) { e.Status = StatusFailed })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.line))
			if err != nil {
				t.Fatalf("Parse(%q) error: %v", tt.line, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse(%q) mismatch (-want +got):\n%s", tt.line, diff)
			}
			if got.ActionTime.Location() != time.UTC {
				t.Errorf("ActionTime location = %v, want UTC", got.ActionTime.Location())
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	const canonical = "2024-01-08 17:02:01 - WARNING - Ecs event type is: SystemMaintenance.Reboot,event status is: Scheduled,action ISO 8601 time is 2024-01-10T02:00:00Z"
	replace := func(old, new string) string {
		if !strings.Contains(canonical, old) {
			panic(old)
		}
		return strings.Replace(canonical, old, new, 1)
	}

	tests := []struct {
		name string
		line string
		want error
	}{
		// Other text in the file (fixture noise lines) and blank lines.
		{"empty", "", ErrNotEvent},
		{"blank line", "   \r\n", ErrNotEvent},
		{"prose (fixture)", "this line is not an event and must be ignored", ErrNotEvent},
		{"other log message (fixture)", "2024-01-09 06:14:44 - INFO - something else wrote here", ErrNotEvent},
		{"no level", replace("- WARNING -", "-"), ErrNotEvent},
		{"empty level", replace("WARNING", " "), ErrNotEvent},
		{"no timestamp", replace("2024-01-08 17:02:01 ", ""), ErrNotEvent},
		{"short timestamp", replace("17:02:01", "17:02"), ErrNotEvent},
		{"missing Ecs", replace("Ecs ", ""), ErrNotEvent},
		{"truncated in marker", "2024-01-08 17:02:01 - WARNING - Ecs event ty", ErrNotEvent},

		// Announced as an event, but broken.
		{"log time out of range", replace("17:02:01", "25:02:01"), ErrBadTime},
		{"log date Feb 30", replace("2024-01-08", "2024-02-30"), ErrBadTime},
		{"log date Feb 29 non-leap", replace("2024-01-08", "2023-02-29"), ErrBadTime},
		{"log month 13", replace("2024-01-08", "2024-13-08"), ErrBadTime},
		{"action time missing", replace("2024-01-10T02:00:00Z", ""), ErrBadTime},
		{"action time without zone", replace("2024-01-10T02:00:00Z", "2024-01-10T02:00:00"), ErrBadTime},
		{"action time with space", replace("2024-01-10T02:00:00Z", "2024-01-10 02:00:00Z"), ErrBadTime},
		{"action time seconds 60", replace("02:00:00Z", "02:00:60Z"), ErrBadTime},
		{"action time day 32", replace("2024-01-10T", "2024-01-32T"), ErrBadTime},
		{"action time bad offset", replace("02:00:00Z", "02:00:00+24:00"), ErrBadTime},
		{"action time offset without colon", replace("02:00:00Z", "02:00:00+0800"), ErrBadTime},
		{"action time too fine", replace("02:00:00Z", "02:00:00.1234567890Z"), ErrBadTime},
		{"action time leaves year range", replace("2024-01-10T02:00:00Z", "9999-12-31T23:00:00-02:00"), ErrBadTime},
		{"action time truncated", "2024-01-08 17:02:01 - WARNING - Ecs event type is: SystemMaintenance.Reboot,event status is: Scheduled,action ISO 8601 time is 2024-01-1", ErrBadTime},
		{"unknown status", replace("Scheduled", "Postponed"), ErrUnknownStatus},
		{"status with suffix", replace("Scheduled", "Scheduled2"), ErrUnknownStatus},
		{"missing status", replace("Scheduled", ""), ErrMalformed},
		{"missing type", replace("SystemMaintenance.Reboot", ""), ErrBadType},
		{"type without dot", replace("SystemMaintenance.Reboot", "SystemMaintenanceReboot"), ErrBadType},
		{"type with two dots", replace("SystemMaintenance.Reboot", "System.Maintenance.Reboot"), ErrBadType},
		{"type with empty word", replace("SystemMaintenance.Reboot", "SystemMaintenance."), ErrBadType},
		{"type word starting with digit", replace("SystemMaintenance.Reboot", "SystemMaintenance.2Reboot"), ErrBadType},
		{"type with punctuation", replace("SystemMaintenance.Reboot", "SystemMaintenance.Re-boot"), ErrBadType},
		{"type with non-ASCII", replace("SystemMaintenance.Reboot", "SystemMaintenance.Rébootage"), ErrBadType},
		{"missing colon after type is", replace("type is:", "type is"), ErrMalformed},
		{"missing comma after type", replace("Reboot,event", "Reboot event"), ErrMalformed},
		{"missing status field", replace(",event status is: Scheduled", ""), ErrMalformed},
		{"missing action field", replace(",action ISO 8601 time is 2024-01-10T02:00:00Z", ""), ErrMalformed},
		{"truncated after type", "2024-01-08 17:02:01 - WARNING - Ecs event type is: SystemMaintenance.Reboot", ErrMalformed},
		{"huge line", canonical + strings.Repeat("x", MaxLineLength), ErrTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.line))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse(%.120q) error = %v, want %v (event %+v)", tt.line, err, tt.want, got)
			}
			if got != (Event{}) {
				t.Errorf("Parse returned a non-zero event with an error: %+v", got)
			}
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Reason() == "" {
				t.Errorf("error %v is not a *ParseError with a reason", err)
			}
		})
	}
}

func TestParseLineAtLengthLimit(t *testing.T) {
	line := []byte("2024-01-08 17:02:01 - WARNING - Ecs event type is: SystemMaintenance.Reboot,event status is: Scheduled,action ISO 8601 time is 2024-01-10T02:00:00Z ")
	line = append(line, bytes.Repeat([]byte("x"), MaxLineLength-len(line))...)
	if _, err := Parse(line); err != nil {
		t.Errorf("line of exactly MaxLineLength: %v", err)
	}
	// The line ending does not count towards the limit.
	if _, err := Parse(append(line, '\r', '\n')); err != nil {
		t.Errorf("line of MaxLineLength plus CRLF: %v", err)
	}
}

func TestParseErrorReasonsAreDistinct(t *testing.T) {
	seen := map[string]bool{}
	for _, err := range []*ParseError{ErrNotEvent, ErrMalformed, ErrBadType, ErrUnknownStatus, ErrBadTime, ErrTooLong} {
		if seen[err.Reason()] {
			t.Errorf("reason %q used twice", err.Reason())
		}
		seen[err.Reason()] = true
		if !strings.HasPrefix(err.Error(), "hostevent: ") {
			t.Errorf("error %q lacks the package prefix", err.Error())
		}
	}
}

func TestEventStringRoundTrips(t *testing.T) {
	for _, line := range fixtureLines(t) {
		e, err := Parse(line)
		if err != nil {
			continue
		}
		back, err := Parse([]byte(e.String()))
		if err != nil {
			t.Fatalf("Parse(%q) of String(): %v", e.String(), err)
		}
		if diff := cmp.Diff(e, back); diff != "" {
			t.Errorf("round trip of %q (-want +got):\n%s", line, diff)
		}
	}
}

func TestEventReasonAndMessage(t *testing.T) {
	tests := []struct {
		e           Event
		wantReason  string
		wantMessage string
	}{
		{
			Event{Type: "SystemMaintenance.Reboot", Status: StatusScheduled, ActionTime: utc("2024-01-10T02:00:00Z"), LoggedAt: hostTime("2024-01-08 17:02:01")},
			"SystemMaintenanceRebootScheduled",
			"SystemMaintenance.Reboot is Scheduled, not before 2024-01-10T02:00:00Z",
		},
		{
			Event{Type: "SystemMaintenance.Reboot", Status: StatusExecuted, ActionTime: utc("2024-01-11T02:00:00Z"), LoggedAt: hostTime("2024-01-11 02:09:41")},
			"SystemMaintenanceRebootExecuted",
			"SystemMaintenance.Reboot scheduled for 2024-01-11T02:00:00Z was Executed (logged 2024-01-11 02:09:41 host time)",
		},
		{
			// A zone other than UTC is rendered in UTC: the controller parses the message.
			Event{Type: "SystemFailure.Reboot", Status: StatusExecuting, ActionTime: utc("2024-01-12T18:58:00+08:00"), LoggedAt: hostTime("2024-01-12 11:00:00")},
			"SystemFailureRebootExecuting",
			"SystemFailure.Reboot is Executing, not before 2024-01-12T10:58:00Z",
		},
	}
	for _, tt := range tests {
		if got := tt.e.Reason(); got != tt.wantReason {
			t.Errorf("Reason() = %q, want %q", got, tt.wantReason)
		}
		if got := tt.e.Message(); got != tt.wantMessage {
			t.Errorf("Message() = %q, want %q", got, tt.wantMessage)
		}
		// What the controller reads: the action time while the event is
		// active, nothing once it is over.
		at, ok := deadline.Parse(tt.e.Message())
		if ok != tt.e.Status.Active() || ok && !at.Equal(tt.e.ActionTime) {
			t.Errorf("deadline.Parse(%q) = %v, %v; want %v only if active", tt.e.Message(), at, ok, tt.e.ActionTime)
		}
	}
}

func TestStatusClasses(t *testing.T) {
	for _, s := range statuses {
		if s.Active() == s.Terminal() {
			t.Errorf("%s: Active() = %v, Terminal() = %v; want exactly one", s, s.Active(), s.Terminal())
		}
	}
	if Status("Postponed").Active() || Status("Postponed").Terminal() {
		t.Error("an unknown status must be neither active nor terminal")
	}
}

func TestParseDoesNotAllocate(t *testing.T) {
	line := []byte("2024-01-08 17:02:01 - WARNING - Ecs event type is: SystemMaintenance.Reboot,event status is: Scheduled,action ISO 8601 time is 2024-01-10T02:00:00Z\r\n")
	noise := []byte("2024-01-09 06:14:44 - INFO - something else wrote here")
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := Parse(line); err != nil {
			t.Fatal(err)
		}
		if _, err := Parse(noise); err == nil {
			t.Fatal("noise parsed")
		}
	})
	if allocs != 0 {
		t.Errorf("Parse allocated %v times per known-type line, want 0", allocs)
	}
}

// fixtureLines returns the lines of testdata/host_event.log, endings intact.
func fixtureLines(tb testing.TB) [][]byte {
	tb.Helper()
	data, err := os.ReadFile("testdata/host_event.log")
	if err != nil {
		tb.Fatal(err)
	}
	var lines [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Split(scanLinesKeepCR)
	for sc.Scan() {
		lines = append(lines, bytes.Clone(sc.Bytes()))
	}
	return lines
}

// scanLinesKeepCR splits on '\n' only, leaving any '\r' for Parse to deal
// with, as the agent's reader does.
func scanLinesKeepCR(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

func FuzzParse(f *testing.F) {
	for _, line := range fixtureLines(f) {
		f.Add(line)
	}
	for _, s := range []string{
		"",
		"2024-01-08 17:02:01,5 - x - ecs event type is:A.B,event status is:failed,action iso 8601 time is:0000-01-01T00:00:00+00:01junk",
		"9999-12-31 23:59:59 - WARNING - Ecs event type is: A1.B2, event status is: Avoided, action ISO 8601 time is 9999-12-31T23:59:59.999999999-23:59",
		"2024-01-08 17:02:01 - WARNING - Ecs event type is: SystemMaintenance.Reboot,event status is: Scheduled,action ISO 8601 time is 2024-01-10T02:00:00",
	} {
		f.Add([]byte(s))
	}

	f.Fuzz(func(t *testing.T, line []byte) {
		e, err := Parse(line)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *ParseError", err)
			}
			if e != (Event{}) {
				t.Fatalf("non-zero event %+v with error %v", e, err)
			}
			return
		}
		if !validType(e.Type) {
			t.Fatalf("accepted type %q is not Word.Word", e.Type)
		}
		if !e.Status.Active() && !e.Status.Terminal() {
			t.Fatalf("accepted unknown status %q", e.Status)
		}
		if e.ActionTime.Location() != time.UTC || e.LoggedAt.Location() != time.UTC {
			t.Fatalf("times not in UTC: %+v", e)
		}
		canonical := e.String()
		back, err := Parse([]byte(canonical))
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", canonical, line, err)
		}
		if diff := cmp.Diff(e, back); diff != "" {
			t.Fatalf("round trip of %q via %q (-want +got):\n%s", line, canonical, diff)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	var events [][]byte
	for _, line := range fixtureLines(b) {
		if _, err := Parse(line); err == nil {
			events = append(events, line)
		}
	}
	bench := func(b *testing.B, lines [][]byte) {
		size := 0
		for _, l := range lines {
			size += len(l)
		}
		b.SetBytes(int64(size / len(lines)))
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			Parse(lines[i%len(lines)])
			i++
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
	}
	b.Run("events", func(b *testing.B) { bench(b, events) })
	b.Run("noise", func(b *testing.B) {
		bench(b, [][]byte{[]byte("2024-01-09 06:14:44 - INFO - something else wrote here"), []byte("this line is not an event and must be ignored")})
	})
	b.Run("unknown-type", func(b *testing.B) {
		bench(b, [][]byte{[]byte("2024-01-08 17:02:01 - WARNING - Ecs event type is: Future.Thing,event status is: Scheduled,action ISO 8601 time is 2024-01-10T02:00:00Z")})
	})
}
