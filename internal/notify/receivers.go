package notify

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"
)

// Receiver is one entry of the notifications Secret: its key is the name,
// its value a small YAML or JSON document {type: webhook|slack|teams, url: ...}.
type Receiver struct {
	Type string `json:"type"`
	URL  string `json:"url"`
}

// ParseReceiver reads one Secret value.
func ParseReceiver(data []byte) (Receiver, error) {
	var r Receiver
	if err := yaml.UnmarshalStrict(data, &r); err != nil {
		return Receiver{}, err
	}
	if !slices.Contains([]string{TypeWebhook, TypeSlack, TypeTeams}, r.Type) {
		return Receiver{}, fmt.Errorf("type %q: want %s, %s or %s", r.Type, TypeWebhook, TypeSlack, TypeTeams)
	}
	u, err := url.Parse(r.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		// Never print the URL: it is a credential.
		return Receiver{}, fmt.Errorf("url: want an http:// or https:// URL")
	}
	return r, nil
}

// Receivers looks a receiver up by name.
type Receivers interface {
	// Receiver returns the named receiver. A missing or malformed one is a
	// permanent error (no retry helps until someone edits the Secret);
	// one marked Temporary (the Secret could not be read) is worth a retry.
	Receiver(ctx context.Context, name string) (Receiver, error)
}

// TemporaryError is an error a retry may cure.
type TemporaryError struct{ Err error }

func (e TemporaryError) Error() string { return e.Err.Error() }
func (e TemporaryError) Unwrap() error { return e.Err }

// SecretReceivers reads receivers from one Secret with a GET by name (the
// only access its RBAC grants: a Role with get on that resourceName; a
// watch or list could not be narrowed to one Secret). It keeps what it read
// for TTL, so a burst of notifications costs one request, and an edited
// Secret is used within TTL.
type SecretReceivers struct {
	Client          kubernetes.Interface
	Namespace, Name string
	TTL             time.Duration
	Now             func() time.Time

	mu      sync.Mutex
	read    time.Time
	secret  *corev1.Secret // nil: not found
	fetched bool
}

func (s *SecretReceivers) load(ctx context.Context) (*corev1.Secret, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	if s.fetched && now().Sub(s.read) < s.TTL {
		return s.secret, nil
	}
	sec, err := s.Client.CoreV1().Secrets(s.Namespace).Get(ctx, s.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		sec = nil
	case err != nil:
		return nil, TemporaryError{fmt.Errorf("secret %s/%s: %w", s.Namespace, s.Name, err)}
	}
	s.secret, s.read, s.fetched = sec, now(), true
	return sec, nil
}

// Receiver implements Receivers.
func (s *SecretReceivers) Receiver(ctx context.Context, name string) (Receiver, error) {
	sec, err := s.load(ctx)
	if err != nil {
		return Receiver{}, err
	}
	if sec == nil {
		return Receiver{}, fmt.Errorf("secret %s/%s not found", s.Namespace, s.Name)
	}
	data, ok := sec.Data[name]
	if !ok {
		return Receiver{}, fmt.Errorf("receiver %q: no such key in secret %s/%s", name, s.Namespace, s.Name)
	}
	r, err := ParseReceiver(data)
	if err != nil {
		return Receiver{}, fmt.Errorf("receiver %q in secret %s/%s: %w", name, s.Namespace, s.Name, err)
	}
	return r, nil
}

// StaticReceivers are receivers known in advance (tests, a fixed config).
type StaticReceivers map[string]Receiver

// Receiver implements Receivers.
func (s StaticReceivers) Receiver(_ context.Context, name string) (Receiver, error) {
	r, ok := s[name]
	if !ok {
		return Receiver{}, fmt.Errorf("receiver %q: not configured", name)
	}
	return r, nil
}
