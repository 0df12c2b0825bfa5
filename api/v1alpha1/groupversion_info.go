// Package v1alpha1 holds nodewarden's API: the RemediationPolicy CRD that the
// controller reconciles, the RemediationRecord CRD it writes its history to,
// and the AgentConfig file format that the agent reads
// (a versioned config type, not served by the API server).
//
// +kubebuilder:object:generate=true
// +groupName=nodewarden.io
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of every nodewarden type.
	GroupVersion = schema.GroupVersion{Group: "nodewarden.io", Version: "v1alpha1"}

	// SchemeBuilder registers the served types (not AgentConfig, which is a
	// file format). The api package depends on apimachinery only, so that
	// anyone can import it.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the served types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &RemediationPolicy{}, &RemediationPolicyList{}, &RemediationRecord{}, &RemediationRecordList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
