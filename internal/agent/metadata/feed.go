package metadata

import (
	"context"
	"net/http"
	"time"
)

// feed is one endpoint of a provider, read in its own loop.
type feed struct {
	// endpoint is the metric label and log key, e.g. "spot/instance-action".
	endpoint string
	// interval is the time between reads. Zero marks a long poll: the
	// server holds the request until the value changes, and the next one
	// is sent at once; fetch paces itself.
	interval time.Duration
	// retry is the first delay after a failure; zero means interval.
	retry time.Duration
	// fetch reads the endpoint and returns every event it lists now. An
	// error leaves the source's state as it was.
	fetch func(ctx context.Context) (snapshot, error)
}

// polled is the feed of an endpoint read every interval whose body parse
// turns into the events it lists. With noneIf404, a 404 means there is
// nothing to report (no spot interruption pending) rather than a failure.
func polled(cl *client, endpoint, path string, interval time.Duration, noneIf404 bool, parse func(body []byte) ([]feedEvent, error)) *feed {
	var also []int
	if noneIf404 {
		also = []int{http.StatusNotFound}
	}
	return &feed{endpoint: endpoint, interval: interval, fetch: func(ctx context.Context) (snapshot, error) {
		resp, err := cl.get(ctx, path, nil, 0, also...)
		if err != nil || resp.status == http.StatusNotFound {
			return snapshot{}, err
		}
		evs, err := parse(resp.body)
		return snapshot{events: evs}, err
	}}
}

// runFeed reads f until ctx ends and sends each successful read to out.
// Failures are counted and logged (the first of a run of failures at info
// level, the rest at debug) and retried with backoff; they send nothing.
func (s *Source) runFeed(ctx context.Context, f *feed, out chan<- result) {
	bo := newBackoff(f.interval, f.retry)
	failing := false
	for {
		snap, err := f.fetch(ctx)
		if ctx.Err() != nil {
			return
		}
		var wait time.Duration
		if err != nil {
			endpoint, reason := endpointOf(err, f.endpoint), reasonOf(err)
			s.metrics.failed(string(s.provider), endpoint, reason)
			wait = bo.next()
			if failing {
				s.log.V(1).Info("metadata endpoint still failing; keeping the last known state",
					"endpoint", endpoint, "reason", reason, "error", err.Error(), "retryIn", wait)
			} else {
				s.log.Error(err, "reading the metadata endpoint failed; keeping the last known state",
					"endpoint", endpoint, "reason", reason, "retryIn", wait)
			}
			failing = true
		} else {
			s.metrics.succeeded(string(s.provider), f.endpoint, time.Now())
			if failing {
				s.log.Info("metadata endpoint answers again", "endpoint", f.endpoint)
				failing = false
			}
			bo.reset()
			select {
			case out <- result{feed: f, snapshot: snap}:
			case <-ctx.Done():
				return
			}
			wait = f.interval
		}
		if !sleep(ctx, wait) {
			return
		}
	}
}

// backoff spaces retries after failures: the poll interval, doubling on
// every further failure up to 4 × the interval and at most 5 min. A long
// poll retries after its request timeout (retry), doubling up to 30 s: its
// notices come a minute ahead.
type backoff struct {
	base, max, cur time.Duration
}

func newBackoff(interval, retry time.Duration) *backoff {
	if interval <= 0 {
		base := retry
		if base <= 0 {
			base = time.Second
		}
		return &backoff{base: base, max: max(base, 30*time.Second)}
	}
	return &backoff{base: interval, max: min(4*interval, 5*time.Minute)}
}

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.base
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	return b.cur
}

func (b *backoff) reset() { b.cur = 0 }

// sleep waits d or until ctx ends, and reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
