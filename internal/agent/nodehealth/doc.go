// Package nodehealth runs the built-in node health checks as an agent
// source: every interval it gathers what the detectors of package
// healthcheck read (the host's /proc and /sys, kernel log lines kept since
// the last runs, the container runtime's CRI status, this node's pods that
// are being deleted, systemd's record of unit starts), runs them, maps the
// results onto the configured profiles (EKS, AKS) and publishes them damped.
//
// # Damping
//
// A condition's status changes only when Confirmations runs in a row agree
// on the new status (2 by default: a reading must hold for one whole
// interval), so an interface that bounces or a runtime that restarts once
// does not flap the condition and, through it, cordon the node. The first
// run after start is published as it is: the agent must declare every
// condition it owns at start. While the status holds, the condition is
// republished only when its reason changes: messages carry live figures
// (PID usage, counts) that would otherwise patch the Node every interval.
//
// The damping is a pure state machine (damper) with its own table tests;
// Run only wires it to a ticker.
//
// # Events
//
// A status change that is published records one Event on the Node: Warning
// when the condition turns unhealthy, Normal when it recovers.
package nodehealth
