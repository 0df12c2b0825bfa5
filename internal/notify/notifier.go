package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
)

// Results of nodewarden_controller_notifications_total.
const (
	ResultSent    = "sent"
	ResultFailed  = "failed"
	ResultDropped = "dropped"
)

// Defaults of Options.
const (
	DefaultQueueSize = 1000
	DefaultAttempts  = 5
	DefaultBackoff   = time.Second
	DefaultTimeout   = 10 * time.Second
)

// Options configure a Notifier; zero values take the defaults.
type Options struct {
	Receivers Receivers
	// Results counts notifications by receiver and result (sent, failed,
	// dropped); nil counts nothing.
	Results *prometheus.CounterVec
	Log     logr.Logger
	// QueueSize bounds the queue; when it is full the oldest notification
	// is dropped (and counted) to make room.
	QueueSize int
	// Attempts per notification (the first included); Backoff is the wait
	// after the first failure, doubled after each further one, with ±25%
	// jitter; Timeout bounds each request.
	Attempts int
	Backoff  time.Duration
	Timeout  time.Duration
	// Client sends the requests; nil uses a client of its own.
	Client *http.Client
}

// Notifier queues notifications and sends them from one worker (Start),
// so a slow, failing or hanging receiver never holds up the caller.
type Notifier struct {
	opts Options

	mu    sync.Mutex
	queue []Notification
	wake  chan struct{}
}

// New returns a Notifier; Start runs its worker.
func New(opts Options) *Notifier {
	if opts.QueueSize <= 0 {
		opts.QueueSize = DefaultQueueSize
	}
	if opts.Attempts <= 0 {
		opts.Attempts = DefaultAttempts
	}
	if opts.Backoff <= 0 {
		opts.Backoff = DefaultBackoff
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Client == nil {
		opts.Client = &http.Client{}
	}
	return &Notifier{opts: opts, wake: make(chan struct{}, 1)}
}

// Enqueue queues n and returns at once: it never waits for the worker or
// the network. On a full queue the oldest notification is dropped.
func (q *Notifier) Enqueue(n Notification) {
	q.mu.Lock()
	var dropped *Notification
	if len(q.queue) >= q.opts.QueueSize {
		d := q.queue[0]
		dropped = &d
		q.queue = q.queue[1:]
	}
	q.queue = append(q.queue, n)
	q.mu.Unlock()
	if dropped != nil {
		q.count(dropped.Receiver, ResultDropped)
		q.opts.Log.Info("notification queue full: dropped the oldest", "receiver", dropped.Receiver,
			"reason", dropped.Reason, "node", dropped.Node, "policy", dropped.Policy)
	}
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Len is the number of notifications waiting (the one being sent excluded).
func (q *Notifier) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.queue)
}

func (q *Notifier) next() (Notification, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.queue) == 0 {
		return Notification{}, false
	}
	n := q.queue[0]
	q.queue[0] = Notification{}
	q.queue = q.queue[1:]
	return n, true
}

// Start sends queued notifications until ctx ends (a manager.Runnable).
// What is still queued then is lost: notifications are best effort.
func (q *Notifier) Start(ctx context.Context) error {
	for {
		n, ok := q.next()
		if !ok {
			select {
			case <-ctx.Done():
				return nil
			case <-q.wake:
				continue
			}
		}
		q.deliver(ctx, n)
		if ctx.Err() != nil {
			return nil
		}
	}
}

// deliver sends n, retrying, and counts how it ended.
func (q *Notifier) deliver(ctx context.Context, n Notification) {
	var err error
	wait := q.opts.Backoff
	for attempt := 1; ; attempt++ {
		var retry bool
		retry, err = q.send(ctx, n)
		if err == nil {
			q.count(n.Receiver, ResultSent)
			return
		}
		if !retry || attempt >= q.opts.Attempts || ctx.Err() != nil {
			q.count(n.Receiver, ResultFailed)
			q.opts.Log.Error(err, "notification not sent", "receiver", n.Receiver, "reason", n.Reason,
				"node", n.Node, "policy", n.Policy, "attempts", attempt)
			return
		}
		q.opts.Log.V(1).Info("notification failed, retrying", "receiver", n.Receiver, "reason", n.Reason,
			"attempt", attempt, "error", err.Error())
		t := time.NewTimer(jitter(wait))
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		wait *= 2
	}
}

// jitter spreads d by ±25%.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.75 + 0.5*rand.Float64())) //nolint:gosec // G404: jitter needs no unpredictability
}

// send makes one attempt; retry says whether another may succeed.
func (q *Notifier) send(ctx context.Context, n Notification) (retry bool, err error) {
	r, err := q.opts.Receivers.Receiver(ctx, n.Receiver)
	if err != nil {
		var tmp TemporaryError
		return errors.As(err, &tmp), err
	}
	body, err := Body(r.Type, n)
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(ctx, q.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader(body))
	if err != nil {
		return false, errors.New("cannot make a request of the receiver's url")
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := q.opts.Client.Do(req)
	if err != nil {
		// url.Error's text has the URL, a credential: keep it out of logs.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return true, fmt.Errorf("%s receiver: %w", r.Type, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 == 2 {
		return false, nil
	}
	err = fmt.Errorf("%s receiver answered %s", r.Type, resp.Status)
	// A 4xx other than a timeout or a rate limit will answer the same again.
	permanent := resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests
	return !permanent, err
}

func (q *Notifier) count(receiver, result string) {
	if q.opts.Results != nil {
		q.opts.Results.WithLabelValues(receiver, result).Inc()
	}
}
