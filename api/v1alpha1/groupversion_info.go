// Package v1alpha1 holds nodewarden's API: the RemediationPolicy CRD that the
// controller reconciles, and the AgentConfig file format that the agent reads
// (a versioned config type, not served by the API server).
//
// +kubebuilder:object:generate=true
// +groupName=nodewarden.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of every nodewarden type.
	GroupVersion = schema.GroupVersion{Group: "nodewarden.io", Version: "v1alpha1"}

	// SchemeBuilder registers the served types (not AgentConfig, which is a file format).
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the served types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
