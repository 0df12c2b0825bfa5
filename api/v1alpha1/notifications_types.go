package v1alpha1

// NotificationRule sends some of a policy's steps to one receiver. The
// receivers (their type and URL, which is a credential) live in the
// controller's notifications Secret, never in the policy
// (docs/operations.md, "Notifications").
type NotificationRule struct {
	// receiver names a key of the controller's notifications Secret
	// (nodewarden-notifications in the controller's namespace by default).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	// +required
	Receiver string `json:"receiver"`

	// events limits the rule to these steps (Event reasons). Empty: every
	// step but Deferred, which repeats while a node waits for a slot and
	// is sent only when listed.
	// +kubebuilder:validation:MaxItems=32
	// +listType=set
	// +optional
	Events []NotificationEvent `json:"events,omitempty"`
}

// NotificationEvent is the reason of an Event the controller emits
// (docs/policy.md, "Events").
// +kubebuilder:validation:Enum=Cordoned;WaitingForDeadline;DrainStarted;DrainSucceeded;DrainFailed;DrainEscalated;DrainCancelled;RepairStarted;RepairSucceeded;RepairFailed;Released;Uncordoned;RemediationStopped;Orphaned;HandedOver;BudgetYielded;Deferred;CircuitOpen;CircuitClosed;HookHolding;HookTimedOut;HookOverridden;OutsideMaintenanceWindow;WindowOverridden
type NotificationEvent string
