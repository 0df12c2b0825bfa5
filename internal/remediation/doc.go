// Package remediation is the decision logic of the nodewarden controller, as
// pure functions: Decide looks at every RemediationPolicy and every Node as
// they are now and returns a Plan (what to write to which node, which Events
// to emit, each policy's status, when to look again). It performs no I/O, so
// the reconciler around it stays thin and every rule below is table-tested.
//
// All per-node state lives in nodewarden.io/* annotations on the Node (see
// the Annotation* constants in api/v1alpha1), so a restart or a leader change
// resumes from what the nodes say.
//
// # State machine
//
// State is the nodewarden.io/state annotation; "-" means absent (not held).
// "Holds" means one of the policy's conditions has its status for at least
// its for: duration; "matches" means it has the status, however briefly.
//
//	state          event                                          action       next state
//	-------------  ---------------------------------------------  -----------  ------------
//	-              no condition holds                             None         -
//	-              a condition holds, budget free, circuit closed Cordon       Cordoned
//	-              a condition holds, budget used up              Defer        -
//	-              a condition holds, circuit open                Defer        -
//	-              holds, but a human uncordoned the node and     None         -
//	               no condition transitioned since
//	Cordoned       still matches, drain enabled, circuit closed   StartDrain   Draining
//	Cordoned       still matches, drain disabled or circuit open  Hold         Cordoned
//	Draining       still matches                                  Hold         Draining (the drainer runs)
//	Draining       drain done / drain timeout (drainer)           -            Drained / DrainFailed
//	Drained        still matches                                  Hold         Drained
//	DrainFailed    still matches                                  Hold         DrainFailed
//	any held       nothing matches any more                       Release      -
//	any held       spec.unschedulable turned false (a human)      Stop         - (+ human-uncordoned)
//	any held       policy deleted or no longer selects the node   Release      -
//	any held       policy invalid                                 Hold         unchanged
//
// Release undoes what nodewarden did (its own cordon, the taints and
// annotations it added) when uncordonOnRecovery is true, and otherwise only
// removes the nodewarden.io/* state. Stop undoes the taints and annotations
// and records nodewarden.io/human-uncordoned. Releasing or stopping a Draining
// node means the reconciler must cancel that node's drain first.
//
// # Rules
//
// Several policies: a held node belongs to the policy named in its
// nodewarden.io/policy annotation until it is released; other policies count
// it (selected, triggered) but never act on it. A node that is not held is
// claimed by the first policy, among those that select it and whose condition
// holds, in this order: policies that are not in dry-run before dry-run ones,
// then by name. If that policy defers it (budget, circuit), it waits; no other
// policy takes it meanwhile, so there is never a fight.
//
// Budgets: maxConcurrent and maxUnhealthy given as a percentage are taken of
// the policy's selected nodes, rounded down, but never below one node when the
// percentage is above zero. Every node the policy holds (Cordoned, Draining,
// Drained, DrainFailed) uses one maxConcurrent slot until it is released; a
// node being released in this very plan still counts, so a failed release can
// never push the policy over its budget. Deleted nodes are simply absent and
// free their slot. When more selected nodes are triggered than maxUnhealthy
// allows, the circuit is open: the policy cordons nothing and starts no drain
// (drains already running finish, releases still happen).
//
// Order when the budget is short: the earliest deadline first (the RFC3339
// time after "not before" at the end of the condition's message), nodes
// without a deadline after all nodes with one, then the oldest trigger
// (lastTransitionTime), then the node name.
//
// Someone else's cordon: a node that is already unschedulable when it is taken
// is recorded as nodewarden.io/cordoned-by=other; it is drained like any other
// but never uncordoned by nodewarden.
//
// Human uncordon: a held node carrying nodewarden.io/cordoned-by whose
// spec.unschedulable is false was uncordoned by someone (nodewarden's own
// writes change both in one patch, so this is never nodewarden mid-way). The
// policy stops, undoes its taints and annotations, and records the newest
// trigger lastTransitionTime in nodewarden.io/human-uncordoned; no policy
// takes the node again until a condition transitions after that time.
//
// Time: for: is measured from the condition's lastTransitionTime, and only
// delays taking a node, never releasing it. Plan.RequeueAfter is the exact
// time until the earliest for: runs out.
package remediation
