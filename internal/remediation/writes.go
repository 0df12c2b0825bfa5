package remediation

import (
	corev1 "k8s.io/api/core/v1"
)

// Writes remembers the controller's own Node writes until its informer
// cache shows them, the way the ReplicaSet controller's expectations do.
// Without it a pass that runs before the cache caught up sees a node it just
// cordoned as free, and takes one node too many.
//
// It is exact because every write carries the resourceVersion it was
// computed from as a precondition: the API server applies it only on top of
// that version, so the write is that version's direct successor, and a cache
// that shows any other version of the node has seen the write (or something
// later, which supersedes it).
type Writes struct {
	pending map[string]write
}

type write struct {
	base string // resourceVersion the write was computed from
	node corev1.Node
}

// Record notes that the Node written (as the API server returned it) was
// computed from resourceVersion base.
func (w *Writes) Record(base string, written *corev1.Node) {
	if w.pending == nil {
		w.pending = map[string]write{}
	}
	w.pending[written.Name] = write{base: base, node: *written.DeepCopy()}
}

// View returns cached with each node the cache has not yet seen written
// replaced by what was written, and forgets the writes the cache has caught
// up with (or whose node is gone). cached is not modified.
func (w *Writes) View(cached []corev1.Node) []corev1.Node {
	if len(w.pending) == 0 {
		return cached
	}
	out := make([]corev1.Node, len(cached))
	seen := map[string]bool{}
	for i := range cached {
		out[i] = cached[i]
		name := cached[i].Name
		wr, ok := w.pending[name]
		if !ok {
			continue
		}
		seen[name] = true
		if cached[i].ResourceVersion == wr.base {
			out[i] = wr.node
			continue
		}
		delete(w.pending, name)
	}
	for name := range w.pending {
		if !seen[name] {
			delete(w.pending, name) // deleted: nothing to wait for
		}
	}
	return out
}

// Pending counts the writes the cache has not shown yet.
func (w *Writes) Pending() int { return len(w.pending) }
