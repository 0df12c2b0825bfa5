// Package bench holds the agent's end-to-end benchmarks, run against a real
// control plane from test/cluster (level 1: etcd + kube-apiserver):
//
//	BenchmarkLineToCondition  time from a host event line being appended to
//	                          the Node condition it causes arriving on a watch
//	BenchmarkAgentNoiseLine   the agent's cost (time, allocations) of a log
//	                          line that is not a host event
//	BenchmarkAgentRSS         resident memory of the real bin/nodewarden agent,
//	                          idle and while noise is appended to its log
//
// They only run with -bench; `go test ./...` compiles the package and runs
// nothing, and -short skips them. One control plane is started for the whole
// test binary, on first use, and stopped by TestMain. docs/performance.md
// has the commands and the figures.
//
// The measuring helpers (proc.go: a process's memory and CPU time from
// /proc; stats.go: percentiles of latencies) are exported: the controller's
// benchmarks in test/bench/controller use them too.
package bench
