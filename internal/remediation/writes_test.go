package remediation

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestWrites(t *testing.T) {
	at := func(name, rv string, unschedulable bool) corev1.Node {
		n := node(name)
		n.ResourceVersion, n.Spec.Unschedulable = rv, unschedulable
		return n
	}
	tests := []struct {
		name        string
		cached      []corev1.Node
		want        []bool // unschedulable per node in the view
		wantPending int
	}{
		{"the cache has not seen the write: the write shows", []corev1.Node{at("a", "1", false), at("b", "1", false)}, []bool{true, false}, 1},
		{"the cache shows the write", []corev1.Node{at("a", "2", true), at("b", "1", false)}, []bool{true, false}, 0},
		{"the cache shows a later change: it wins", []corev1.Node{at("a", "3", false), at("b", "1", false)}, []bool{false, false}, 0},
		{"the node is gone: the write is forgotten", []corev1.Node{at("b", "1", false)}, []bool{false}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var w Writes
			written := at("a", "2", true)
			w.Record("1", &written)
			written.Spec.Unschedulable = false // the caller's copy, not the record
			view := w.View(tc.cached)
			for i, want := range tc.want {
				if view[i].Spec.Unschedulable != want {
					t.Errorf("%s: unschedulable %v, want %v", view[i].Name, view[i].Spec.Unschedulable, want)
				}
			}
			if w.Pending() != tc.wantPending {
				t.Errorf("pending %d, want %d", w.Pending(), tc.wantPending)
			}
			if tc.cached[0].Name == "a" && tc.cached[0].ResourceVersion == "1" && tc.cached[0].Spec.Unschedulable {
				t.Error("View modified the cached nodes")
			}
		})
	}
}

// Two writes in a row, the second computed from the first (the cache had
// shown neither): while the cache shows the base or the first write, the
// second is what the node is.
func TestWritesChain(t *testing.T) {
	at := func(rv string, state string) corev1.Node {
		n := node("a")
		n.ResourceVersion = rv
		n.Annotations = map[string]string{"s": state}
		return n
	}
	var w Writes
	first, second := at("2", "Cordoned"), at("3", "Draining")
	w.Record("1", &first)
	w.Record("2", &second)
	for _, rv := range []string{"1", "2"} {
		if got := w.View([]corev1.Node{at(rv, "")})[0]; got.ResourceVersion != "3" {
			t.Errorf("cache at %s: view shows %s, want the last write", rv, got.ResourceVersion)
		}
	}
	if got := w.View([]corev1.Node{at("4", "x")})[0]; got.ResourceVersion != "4" || w.Pending() != 0 {
		t.Errorf("cache past the chain: view %s, pending %d", got.ResourceVersion, w.Pending())
	}
}
