package status

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"
)

// Widths bound the long columns so that a row fits a terminal; a longer
// value ends in "…".
const (
	widthNode    = 32
	widthPolicy  = 24
	widthTrigger = 60
	widthBlocked = 40
	widthMessage = 100
)

// Style says how to render for people.
type Style struct {
	// Color: ANSI colours (only on a terminal, never with NO_COLOR).
	Color bool
}

const (
	ansiReset  = "\x1b[0m"
	ansiRed    = "\x1b[31m"
	ansiYellow = "\x1b[33m"
	ansiGreen  = "\x1b[32m"
	ansiBold   = "\x1b[1m"
	// ansiPlain is as long as the colours, for the cells of a coloured
	// column that keep the default colour.
	ansiPlain = "\x1b[39m"
)

func (s Style) paint(code, text string) string {
	if !s.Color || text == "" {
		return text
	}
	return code + text + ansiReset
}

func (s Style) state(v string) string {
	switch v {
	case "DrainFailed":
		return s.paint(ansiRed, v)
	case "Cordoned", "Draining", "Repairing", "Waiting", StateTriggered:
		return s.paint(ansiYellow, v)
	case "Drained":
		return s.paint(ansiGreen, v)
	}
	return s.paint(ansiPlain, v)
}

func (s Style) outcome(v string) string {
	switch v {
	case "Open":
		return s.paint(ansiYellow, v)
	case "Repaired", "Released":
		return s.paint(ansiGreen, v)
	case "HumanUncordoned", "NodeDeleted":
		return s.paint(ansiRed, v)
	}
	return s.paint(ansiPlain, v)
}

// Truncate shortens s to at most n runes, ending in "…" when it cut.
func Truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// newTable writes aligned columns. Colour codes are zero-width for the
// terminal but not for tabwriter, so every cell of a coloured column is
// painted (or not) alike and the alignment holds.
func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0) }

// RenderStatus writes the rows of `kubectl nodewarden status`.
func RenderStatus(w io.Writer, now time.Time, rows []NodeStatus, st Style) error {
	if len(rows) == 0 {
		_, err := fmt.Fprintln(w, "No node has a triggered condition or a nodewarden state.")
		return err
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "NODE\tSTATE\tPOLICY\tTRIGGER\tDEADLINE\tLEFT\tBLOCKED BY")
	for _, r := range rows {
		deadline, left := "-", "-"
		if r.Deadline != nil {
			deadline = r.Deadline.UTC().Format(time.RFC3339)
			left = HumanDuration(r.Deadline.Sub(now))
			if !r.Deadline.After(now) {
				left = "overdue " + HumanDuration(now.Sub(*r.Deadline))
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			Truncate(r.Node, widthNode), st.state(r.State), dash(Truncate(r.Policy, widthPolicy)),
			dash(Truncate(r.Trigger.String(), widthTrigger)), deadline, left,
			dash(Truncate(strings.Join(r.BlockedBy, ", "), widthBlocked)))
	}
	return tw.Flush()
}

// RenderHistory writes the episodes of `kubectl nodewarden history`, then
// the steps of those that carry them.
func RenderHistory(w io.Writer, now time.Time, eps []Episode, st Style) error {
	if len(eps) == 0 {
		_, err := fmt.Fprintln(w, "No remediation records.")
		return err
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "NODE\tPOLICY\tTRIGGER\tOUTCOME\tSTARTED\tDURATION\tSTEPS")
	for _, e := range eps {
		steps := fmt.Sprint(e.StepCount)
		if e.DroppedSteps > 0 {
			steps += fmt.Sprintf(" (+%d dropped)", e.DroppedSteps)
		}
		started := e.Started.Format(time.RFC3339) + " (" + HumanDuration(now.Sub(e.Started)) + " ago)"
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			Truncate(e.Node, widthNode), Truncate(e.Policy, widthPolicy), dash(Truncate(e.Trigger.String(), widthTrigger)),
			st.outcome(e.Outcome), started, dash(e.Duration), steps)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, e := range eps {
		if len(e.Steps) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s %s/%s (%s, started %s):\n", st.paint(ansiBold, "Episode"), e.Node, e.Policy, e.Outcome, e.Started.Format(time.RFC3339))
		tw := newTable(w)
		for _, s := range e.Steps {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", s.Time.Format(time.RFC3339), s.Reason, Truncate(s.Message, widthMessage))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if e.DroppedSteps > 0 {
			fmt.Fprintf(w, "  (%d more steps not kept: a record keeps the first ones and the last one)\n", e.DroppedSteps)
		}
	}
	return nil
}

// RenderExplain writes `kubectl nodewarden explain NODE`.
func RenderExplain(w io.Writer, e Explanation, st Style) error {
	b := &strings.Builder{}
	line := func(k, v string) { fmt.Fprintf(b, "%-18s %s\n", k+":", v) }
	line("Node", e.Node)
	line("State", st.state(dash(e.State)))
	line("Policy", dash(e.Policy))
	action := e.Action
	if e.DryRun {
		action += " (dry-run: reported, not written)"
	}
	line("Action", st.paint(ansiBold, action))
	line("Why", e.Why)
	if e.OverBudget {
		line("Over budget", "taken beyond maxConcurrent for its deadline")
	}
	if e.Trigger != nil {
		line("Trigger", e.Trigger.String())
	}
	if e.Deadline != nil {
		left := HumanDuration(e.Deadline.Sub(e.Now))
		if !e.Deadline.After(e.Now) {
			left = "passed " + HumanDuration(e.Now.Sub(*e.Deadline)) + " ago"
		} else {
			left += " left"
		}
		line("Deadline", e.Deadline.Format(time.RFC3339)+" ("+left+")")
	}
	if len(e.BlockedBy) > 0 {
		line("Blocked by", strings.Join(e.BlockedBy, ", "))
	}
	if e.HumanUncordoned != "" {
		line("Human uncordon", e.HumanUncordoned+" (left alone until a condition transitions)")
	}
	for _, p := range e.Policies {
		fmt.Fprintf(b, "\nPolicy %s:\n", p.Name)
		pl := func(k, v string) { fmt.Fprintf(b, "  %-16s %s\n", k+":", v) }
		if p.Invalid != "" {
			pl("Invalid", p.Invalid)
		}
		pl("Budget", fmt.Sprintf("%d of %d held (maxConcurrent)", p.BudgetUsed, p.BudgetAllowed))
		circuit := "closed"
		if p.CircuitOpen {
			circuit = st.paint(ansiRed, "OPEN")
		}
		pl("Circuit", fmt.Sprintf("%s: %d of %d selected nodes triggered, maxUnhealthy %d", circuit, p.Triggered, p.Selected, p.MaxUnhealthy))
		switch {
		case p.Windows == 0:
			pl("Windows", "none (any time)")
		case p.WindowOpen:
			pl("Windows", fmt.Sprintf("%d, one is open now", p.Windows))
		case p.NextWindow != nil:
			pl("Windows", fmt.Sprintf("%d, all closed; next opens %s (in %s)", p.Windows, p.NextWindow.Format(time.RFC3339), HumanDuration(p.NextWindow.Sub(e.Now))))
		default:
			pl("Windows", fmt.Sprint(p.Windows))
		}
		paused := "no"
		if p.Paused {
			paused = st.paint(ansiYellow, "yes: starts nothing new")
		}
		pl("Paused", paused)
		if p.DryRun {
			pl("Dry-run", "yes")
		}
		for _, c := range p.Pending {
			pl("Pending", fmt.Sprintf("%s=%s: for: runs out at %s (%s remaining)", c.Type, c.Status, c.Until.Format(time.RFC3339), c.Remaining))
		}
	}
	if len(e.Policies) == 0 {
		fmt.Fprintf(b, "\nNo policy selects the node.\n")
	}
	fmt.Fprintf(b, "\nNote: %s.\n", e.Note)
	_, err := io.WriteString(w, b.String())
	return err
}
