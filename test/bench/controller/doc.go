// Package controller holds the controller's end-to-end benchmarks, run
// against a real control plane from test/cluster:
//
//	BenchmarkConditionToCordon  time from a trigger condition's nodes/status
//	                            patch returning to a watch seeing the Node
//	                            cordoned with nodewarden's state annotation,
//	                            over -cordon.nodes nodes: one trigger at a time
//	                            (isolated, back-to-back) and all at once (burst)
//	BenchmarkControllerRSS      resident memory of the real bin/nodewarden
//	                            controller with thousands of kwok nodes and
//	                            tens of thousands of pods: idle after the sync,
//	                            and after rounds of triggers, drains and releases
//	BenchmarkBurst              every node of a maxConcurrent: 10% policy
//	                            triggered at once, as a rolling wave: time to
//	                            the first slots and to every node cordoned
//	                            once, and the most nodes held at any instant
//	                            (fails above maxConcurrent)
//	BenchmarkControllerChurnCPU the controller's CPU at 5 000 nodes while
//	                            another client rewrites an unrelated Node
//	                            annotation, optionally comparing builds
//
// They are opt-in twice: they only run with -bench, and only when
// NODEWARDEN_BENCH=1 (so `go test -bench . ./...` for micro-benchmarks does
// not start a 5 000-node cluster); -short skips them. The package has no
// Test, so a plain `go test ./...` compiles it and runs nothing.
// docs/performance.md (section "Controller") has the commands and figures.
package controller
