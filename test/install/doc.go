// Package install tests the two ways nodewarden is installed — kustomize
// (config/default) and Helm (charts/nodewarden) — and the security they
// promise (SPEC §4, docs/security.md):
//
//   - both render, and render the same objects and the same RBAC;
//   - both are accepted by a real API server (server-side apply, `helm
//     install`, `helm upgrade`), starting from a cluster without the CRD;
//   - the agent's RBAC and the admission policy confine an agent, holding a
//     real token bound to its pod, to its own Node's own conditions;
//   - the controller can evict pods but not delete them;
//   - the opt-in grants (config/rbac/optional, the chart's controller.rbac.*)
//     add the same permissions in both installs, and exactly what the repair
//     steps DeleteNode and ClusterAPI need, as the controller's
//     ServiceAccount, against Cluster API's real CRDs;
//   - the chart's copies of config/ files are in sync, `helm lint` is clean,
//     and every metric the alerts and the dashboard use exists.
//
// Tests that start a control plane or run bin/ tools are skipped with -short.
package install
