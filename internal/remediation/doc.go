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
// "Slot" states (all but Waiting) count against maxConcurrent. Every write
// is Decide's: the drainer only evicts and reports (DrainReport).
//
//	state          event                                          action       next state
//	-------------  ---------------------------------------------  -----------  ------------
//	-              no condition holds                             None         -
//	-              holds, deadline > startBefore away             Wait         Waiting (PreferNoSchedule taint, no slot)
//	-              holds, budget free, circuit closed             Cordon       Cordoned
//	-              holds, budget used up, deadline < timeout away Cordon       Cordoned (over budget, BudgetYielded)
//	-              holds, budget used up                          Defer        -
//	-              holds, circuit open                            Defer        -
//	-              holds, policy paused                           Defer        - (status.deferredNodes: Paused)
//	-              holds, no maintenance window open, deadline    Defer        - (OutsideMaintenanceWindow Event once,
//	               > timeout (+ startBefore) away or none                      status.deferredNodes, nextWindow)
//	-              holds, no maintenance window open, deadline    Wait/Cordon  as above (+ WindowOverridden Event)
//	               timeout (+ startBefore) away or closer
//	-              labelled nodewarden.io/exclude=true            None         - (no policy selects it)
//	-              holds, but a human uncordoned the node and     None         -
//	               no condition transitioned since
//	Waiting        deadline still > startBefore away              Hold         Waiting
//	Waiting        deadline startBefore away                      Cordon/Defer as for "-"
//	Cordoned       matches, drain enabled, circuit closed         StartDrain   Draining (attempt 1)
//	Cordoned       matches, drain disabled or circuit open        Hold         Cordoned
//	Cordoned       matches, paused, or no window open and the     Hold         Cordoned
//	               deadline further than timeout (+ startBefore)
//	Cordoned       matches, no window open, deadline timeout      StartDrain   Draining (+ WindowOverridden Event)
//	               (+ startBefore) away or closer
//	Cordoned       matches, a pre-drain hook on the node,         Hold         Cordoned (HookHolding Event once,
//	               hookTimeout not passed, deadline further                    status.deferredNodes: HookHolding)
//	               than timeout
//	Cordoned       matches, a pre-drain hook, hookTimeout passed  StartDrain   Draining (+ HookTimedOut Event)
//	Cordoned       matches, a pre-drain hook, deadline timeout    StartDrain   Draining (+ HookOverridden Event)
//	               away or closer
//	Draining       matches, no report                             Hold         Draining (the drain runs)
//	Draining       paused, or the window closed                   Hold         Draining (the drain runs on)
//	Draining       report: the attempt finished                   Record       Drained
//	Draining       report: the attempt failed                     Record       DrainFailed (+ blocked-by)
//	Draining       policy turned dryRun                           Hold         Draining (drain cancelled)
//	Draining       policy turned drain.enabled off                Record       Cordoned (drain cancelled)
//	Drained        matches, no repair ladder                      Hold         Drained
//	Drained        matches, first step's after passed, circuit    Repair       Repairing (step 0)
//	               closed, maxRepairsPerHour allows (not Wait)
//	Drained        first step due, a post-drain hook,             Hold         Drained (HookHolding Event once)
//	               hookTimeout not passed
//	Drained        first step due, a post-drain hook,             Repair       Repairing (+ HookTimedOut Event)
//	               hookTimeout passed
//	Repairing      step running, no report                        Hold         Repairing (the step runs)
//	Repairing      report of this step                            Record       Repairing (+ repair-result)
//	Repairing      step ended, next step's after passed           Repair       Repairing (step i+1)
//	Repairing      last step ended                                Hold         Repairing (for a human)
//	Drained/       next step due, paused or no window open        Hold         unchanged (no deadline rule)
//	Repairing
//	DrainFailed    NotReady, drain.outOfServiceTaint              StartDrain   Draining (+ out-of-service taint)
//	DrainFailed    drain.forceAfter passed, not forced yet        StartDrain   Draining (forced: pods deleted)
//	DrainFailed    attempts left, backoff passed                  StartDrain   Draining (attempt n+1)
//	DrainFailed    otherwise                                      Hold         DrainFailed (stuck)
//	DrainFailed    retry or escalation due, a pre-drain hook      Hold         DrainFailed (hookTimeout and deadline
//	                                                                           rules as for Cordoned)
//	DrainFailed    retry or escalation due, paused or no window   Hold         DrainFailed (deadline rule as for
//	               open                                                        Cordoned)
//	any held       labelled nodewarden.io/exclude=true            Release      - (per uncordonOnRecovery or
//	                                                                           keep-on-recovery; drain cancelled)
//	any held       spec.unschedulable turned false (a human)      Stop         - (+ human-uncordoned)
//	any held       nothing matches, for less than recoverFor      Hold         unchanged
//	any slot       nothing matches (recoverFor passed), or        Handover     the other policy's, as it is
//	               policy gone / no longer selects, and another
//	               policy's condition holds and it has a slot
//	any slot       as above, the other policy has no slot         Hold         unchanged (still cordoned)
//	Drained        nothing matches (recoverFor passed), a         Hold         Drained (HookHolding Event once)
//	               post-drain hook, hookTimeout not passed
//	Drained        as above, hookTimeout passed                   Release      - (+ HookTimedOut Event)
//	any held       nothing matches (recoverFor passed)            Release      -
//	any slot       policy gone / no longer selects the node,      Record       unchanged, Draining -> Cordoned
//	               its trigger still matches                                   (+ orphaned, Orphaned Event once)
//	any held       policy gone / no longer selects, recovered     Release      - (per keep-on-recovery)
//	any held       policy invalid                                 Hold         unchanged
//
// Repair: the ladder is the repair of the first rule for the trigger whose
// reasons match the condition when the first step starts, else the
// policy's; it is fixed then (nodewarden.io/repair-ladder). A step starts
// when the node has not recovered for its after since the previous step
// (or the drain) ended; a failed step escalates like a succeeded one. Wait
// ends as it starts. DeleteNode, ClusterAPI and Webhook are carried out by
// the reconciler (NodeDecision.Repair) and count against maxRepairsPerHour
// over a rolling hour, counted from status.recentRepairs and the nodes on
// such a step (a deleted node takes its annotations with it, so the
// reconciler writes the status before it starts a step, and overlays what
// it wrote until its cache shows it: WithRecentRepairs). The node keeps its
// maxConcurrent slot throughout; the circuit breaker starts no step.
//
// Release undoes what nodewarden did (its own cordon, the taints and
// annotations it added) when uncordonOnRecovery is true, and otherwise only
// removes the nodewarden.io/* state. Stop undoes the taints and annotations
// and records nodewarden.io/human-uncordoned. Release, Stop and Handover
// cancel the node's drain (NodeDecision.CancelDrain).
//
// # Rules
//
// Several policies: a held node belongs to the policy named in its
// nodewarden.io/policy annotation until it is released or handed over; other
// policies count it (selected, triggered) but never act on it. A node that is
// not held is claimed by the first policy, among those that select it and
// whose condition holds, in this order: policies that are not in dry-run
// before dry-run ones, then by name. If that policy defers it (budget,
// circuit), it waits; no other policy takes it meanwhile, so there is never a
// fight. When the holder lets go while the claiming policy's condition holds,
// the node is handed over as it is (no uncordon in between), once the new
// policy has a slot; until then the old holder keeps it.
//
// Budgets: maxConcurrent and maxUnhealthy given as a percentage are taken of
// the policy's selected nodes, rounded down, but never below one node when the
// percentage is above zero. Every node the policy holds in a slot state uses
// one maxConcurrent slot until it is released; a node being released in this
// very plan still counts, so a failed release can never push the policy over
// its budget. Deleted nodes are simply absent and free their slot. The
// reconciler decides on its informer cache overlaid with its own writes the
// cache has not shown yet (Writes), so a lagging cache never frees a slot.
//
// Deadlines beat budgets: a node whose deadline is drain.timeout away or
// closer is taken even when every slot is used (nodewarden.io/over-budget, a
// BudgetYielded Event, status.overBudgetNodes): waiting would let the
// disruption happen undrained. The circuit breaker still wins: when more
// selected nodes are triggered than maxUnhealthy allows, the policy cordons
// nothing, starts and retries no drain (drains already running finish,
// releases still happen), whatever the deadlines: a rule that fires on half
// the cluster is more likely wrong than urgent.
//
// Maintenance windows and pause hold back what a policy starts: taking a
// node (a cordon, or the Waiting taint), a drain attempt (the first, a
// retry, an escalation), a repair step. With spec.paused nothing starts;
// with spec.maintenanceWindows it starts only while a window is open (any of
// them: the last activation of its cron schedule, in its timeZone, was less
// than its duration ago). A handover is a take for the policy that receives
// the node: the old holder keeps it meanwhile, as when the budget is short.
// Never held back: releases, recovery, a human's uncordon, drains already
// running and their reports, a repair step already running. A running drain
// finishes even when the policy is paused or its window closes: stopping it
// would leave a half-drained, cordoned node for no gain. The pause and the
// windows come before the budget, so a node they hold back takes no slot;
// the circuit breaker comes before them. Deadlines beat windows as they beat
// budgets: a node whose deadline is drain.timeout plus drain.startBefore
// away or closer is taken and drained outside the windows (a
// WindowOverridden Warning names the next window), since waiting would let
// the disruption happen undrained; a pause has no such exception (a human's
// freeze), nor has a repair step (the node is drained already). A node a
// window holds back gets one OutsideMaintenanceWindow Event
// (status.deferredNodes remembers it), status.deferredNodes lists it with
// its reason (OutsideMaintenanceWindow or Paused) and status.nextWindow says
// when the next window opens.
//
// Drain hooks (after Cluster API's pre-drain.delete.hook.machine.
// cluster.x-k8s.io/<name>: <owner>): other controllers hold a node by
// annotating it pre-drain.hook.nodewarden.io/<name>: <owner> (no drain
// attempt starts: the first, a retry, an escalation) or
// post-drain.hook.nodewarden.io/<name>: <owner> (a Drained node is neither
// released on recovery, nor handed over, nor does its first repair step
// start). They hold for up to drain.hookTimeout (30m by default; 0: for
// ever) counted from nodewarden.io/state-since, the time the node reached
// the state the hook holds (Cordoned or DrainFailed; Drained), so a restart
// resumes the count; then the step starts with a HookTimedOut Warning naming
// the hooks. A pre-drain hook yields to the deadline as a window does, but at
// drain.timeout before it (a HookOverridden Warning): the hook cannot make
// the drain run past the disruption. While held the node gets one
// HookHolding Event (status.deferredNodes remembers it, reason HookHolding)
// and its NodeDecision.Why names the hooks. Hooks are checked last, after
// the circuit, the pause, the windows and maxRepairsPerHour, so the Warning
// fires only when the step starts. Never held: a human's uncordon, the
// exclude label, a policy gone or no longer selecting the node, drains
// already running, a Repairing node's later steps or release.
//
// Opt-out: a node labelled nodewarden.io/exclude=true is selected by no
// policy (nor counted in selected or triggered). A held node that gets the
// label is released at once, as its policy would release it on recovery
// (uncordonOnRecovery, or nodewarden.io/keep-on-recovery with the policy
// gone), even if its trigger still holds and its policy is invalid: unlike
// a policy that stops selecting a node, which keeps it until it recovers,
// the label is a human's explicit order to keep nodewarden off the node.
//
// Order when the budget is short: handovers first, then the earliest
// deadline (the deadline package's "not before" time at the end of the
// condition's message), nodes without a deadline after all nodes with one,
// then the oldest trigger (lastTransitionTime), then the node name.
//
// Drain attempts: an attempt ends at drain.timeout after it started, but
// never after the trigger's deadline (if that is still ahead when it starts),
// and an unforced attempt ends when drain.forceAfter comes. A failed attempt
// is retried after drain.retryBackoff, doubled per failure and capped at an
// hour, never later than the deadline, up to drain.maxAttempts. Escalations
// are opt-in: drain.forceAfter makes one attempt that deletes the remaining
// pods; drain.outOfServiceTaint taints a NotReady node whose drain failed
// node.kubernetes.io/out-of-service so Kubernetes deletes its pods.
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
// delays taking a node, never releasing it; recoverFor delays the release,
// measured from the lastTransitionTime of the rules' conditions once none
// matches. Plan.RequeueAfter is the exact time until the earliest moment
// the answer changes with time alone (a for:, a start time, an urgent
// deadline, a retry, forceAfter, recoverFor, a maintenance window opening
// or closing).
package remediation
