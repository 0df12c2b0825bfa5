package draino

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
)

// The DataDog fork's node replacement defaults: once a node's drain had
// completed and no pod it would evict was left, it asked for a replacement
// after --duration-before-replacement, at most --max-node-replacement-per-hour
// times an hour.
const (
	drainoDurationBeforeReplacement = time.Hour
	drainoReplacementsPerHour       = 2
)

// maxRepairsPerHourLimit is the CRD's maximum of spec.maxRepairsPerHour.
const maxRepairsPerHourLimit = 1000

// replaceLabel is how the fork asked for a replacement: it labelled the Node
// and left the rest to node group tooling of its own (not part of Draino).
const replaceLabel = "node.datadoghq.com/replace=requested"

// replacement maps the fork's node replacement after the drain
// (--duration-before-replacement, --max-node-replacement-per-hour) to a
// repair ladder of one DeleteNode step and spec.maxRepairsPerHour, when the
// command line asks for it explicitly. The fork replaced by default, but
// only through tooling that read its label; a ladder that deletes Node
// objects is written only for a command line that shows it relied on
// replacement, and otherwise reported.
func (c *converter) replacement() error {
	perHourGiven, afterGiven := c.cl.has("max-node-replacement-per-hour"), c.cl.has("duration-before-replacement")
	given := func(format string, args ...any) {
		for _, f := range []string{"max-node-replacement-per-hour", "duration-before-replacement"} {
			if c.cl.has(f) {
				c.warnf("--%s: "+format, append([]any{f}, args...)...)
			}
		}
	}
	legacyOff := c.cl.boolean("no-legacy-node-handler", false)
	if !perHourGiven && !afterGiven {
		// --config-name is required by the fork, and only the fork replaced.
		if c.cl.has("config-name") && c.drainEnabled() && !legacyOff && !c.cl.boolean("dry-run", false) {
			c.warnf("--duration-before-replacement, --max-node-replacement-per-hour not given: Draino's DataDog fork (it needs --config-name) by default asked for a replacement of a node drained %s earlier, at most %d an hour, by labelling it %s for node group tooling of its own; not converted, because nodewarden's equivalent deletes the Node object (spec.repair, DeleteNode). "+
				"If something in your cluster acted on that label, give the two flags to convert them, or write spec.repair by hand (docs/policy.md)",
				drainoDurationBeforeReplacement, drainoReplacementsPerHour, replaceLabel)
		}
		return nil
	}

	perHour := drainoReplacementsPerHour
	if perHourGiven {
		v := c.cl.last("max-node-replacement-per-hour")
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 {
			return fmt.Errorf("--max-node-replacement-per-hour=%s: not a whole number of at least 0", v)
		}
		perHour = n
	}
	after, err := c.duration("duration-before-replacement", drainoDurationBeforeReplacement)
	if err != nil {
		return err
	}

	switch {
	case legacyOff:
		given("not needed: --no-legacy-node-handler turned off the handler that asked for replacements after the drain")
		return nil
	case !c.drainEnabled():
		given("not expressible with --skip-drain: nodewarden repairs only drained nodes (state Drained), and with drain.enabled: false a node is never drained; Draino counted the skipped drain as completed")
		return nil
	case perHour == 0:
		// NewNodeReplacementLimiter divides 60 by it when Draino starts.
		c.spec().MaxRepairsPerHour = ptr.To(int32(0))
		c.warnf("--max-node-replacement-per-hour=0: Draino crashed on this value (an integer division by zero as it started); read as no replacement: no repair ladder, and maxRepairsPerHour: 0")
		if afterGiven {
			c.warnf("--duration-before-replacement: not needed: --max-node-replacement-per-hour=0")
		}
		return nil
	}
	limit := forkSetting(c.cl, "max-node-replacement-per-hour", perHour)
	if perHour > maxRepairsPerHourLimit {
		c.warnf("--max-node-replacement-per-hour=%d: maxRepairsPerHour is at most %d", perHour, maxRepairsPerHourLimit)
	}
	c.spec().MaxRepairsPerHour = ptr.To(int32(min(perHour, maxRepairsPerHourLimit)))
	c.spec().Repair = &v1alpha1.RepairSpec{Steps: []v1alpha1.RepairStep{{
		Action: v1alpha1.RepairDeleteNode,
		After:  metav1.Duration{Duration: after},
	}}}

	c.warnf("repair: DeleteNode %s after the drain (%s) if the node has not recovered by then. Draino did not delete the node: it labelled it %s for node group tooling of its own, for when the cluster autoscaler would not remove the drained node (its node group at minimum size). "+
		"DeleteNode deletes the Node object: Karpenter then replaces the machine, but cluster-autoscaler removes an instance left without a Node only above the node group's minimum size, so in that very case the instance stays; to ask your own tooling instead, make the step a Webhook (docs/policy.md). "+
		"DeleteNode needs the optional RBAC in docs/security.md and, as in Draino, acts only on a drained node; but in nodewarden a pod that blocks the drain (protected, emptyDir, unreplicated) blocks the replacement too",
		after, forkSetting(c.cl, "duration-before-replacement", after), replaceLabel)
	c.warnf("maxRepairsPerHour: %d (%s): Draino let one replacement through every %s%s, counted in memory; nodewarden starts at most that many DeleteNode steps of this policy in any rolling hour, back to back if nodes are waiting, and counts them in the policy status across restarts",
		*c.spec().MaxRepairsPerHour, limit, time.Hour/time.Duration(perHour), startupDelay(perHour))
	return nil
}

// startupDelay describes the fork's wait before its first replacement after
// it started: 60/n whole minutes (none from 61 an hour).
func startupDelay(n int) string {
	if d := time.Duration(60/n) * time.Minute; d > 0 {
		return fmt.Sprintf(" and none in the first %s after it started", d)
	}
	return ""
}

// forkSetting names a setting of the fork for a warning: the flag as given,
// or its default.
func forkSetting(cl *cmdline, flag string, v any) string {
	if cl.has(flag) {
		return fmt.Sprintf("--%s=%v", flag, v)
	}
	return fmt.Sprintf("--%s not given: the fork's default, %v", flag, v)
}
