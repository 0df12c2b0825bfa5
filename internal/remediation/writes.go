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
// that version, so the write is that version's direct successor. A node's
// writes form a chain from the version the cache last showed: while the
// cache shows any version of that chain but the last, the last write is what
// the node is; any other version comes after the chain (the cache never goes
// back), so the cache has caught up.
type Writes struct {
	pending map[string]chain
}

// chain is one node's writes the cache has not fully shown yet.
type chain struct {
	// earlier are the resourceVersions the chain went through: the one the
	// first write was computed from, and every write but the last.
	earlier map[string]bool
	last    corev1.Node
}

// Record notes that the Node written (as the API server returned it) was
// computed from resourceVersion base.
func (w *Writes) Record(base string, written *corev1.Node) {
	if w.pending == nil {
		w.pending = map[string]chain{}
	}
	c, ok := w.pending[written.Name]
	if !ok || c.last.ResourceVersion != base {
		// Computed from the cache, not from our last write: a new chain.
		c = chain{earlier: map[string]bool{}}
	}
	c.earlier[base] = true
	c.last = *written.DeepCopy()
	w.pending[written.Name] = c
}

// View returns cached with each node the cache has not yet seen written
// replaced by what was written last, and forgets the chains the cache has
// caught up with (or whose node is gone). cached is not modified.
func (w *Writes) View(cached []corev1.Node) []corev1.Node {
	if len(w.pending) == 0 {
		return cached
	}
	out := make([]corev1.Node, len(cached))
	seen := map[string]bool{}
	for i := range cached {
		out[i] = cached[i]
		name := cached[i].Name
		c, ok := w.pending[name]
		if !ok {
			continue
		}
		seen[name] = true
		if c.earlier[cached[i].ResourceVersion] {
			out[i] = c.last
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

// Pending counts the nodes whose writes the cache has not shown yet.
func (w *Writes) Pending() int { return len(w.pending) }
