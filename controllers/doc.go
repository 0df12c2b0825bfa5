// Package controllers holds nodewarden's reconcilers: thin controller-runtime
// wrappers around the decision logic in internal/remediation.
package controllers
