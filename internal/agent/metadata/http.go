package metadata

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxBodyBytes bounds what is read of one response; metadata documents are
// a few hundred bytes.
const maxBodyBytes = 1 << 20

// Error reasons, the values of the metric label reason besides http_<code>.
const (
	reasonTimeout     = "timeout"
	reasonUnreachable = "unreachable"
	reasonBadResponse = "bad_response"
	reasonToken       = "token"
)

// fetchError is a failed read, with the metric label that says why.
type fetchError struct {
	// endpoint overrides the feed's endpoint label when the failing request
	// was a helper one (the Azure VM name, the GCP maintenance policy).
	endpoint string
	reason   string
	err      error
}

func (e *fetchError) Error() string { return e.err.Error() }
func (e *fetchError) Unwrap() error { return e.err }

// badResponse is the error for a body that does not parse.
func badResponse(format string, args ...any) error {
	return &fetchError{reason: reasonBadResponse, err: fmt.Errorf(format, args...)}
}

// reasonOf is the metric label of err.
func reasonOf(err error) string {
	var fe *fetchError
	if errors.As(err, &fe) {
		return fe.reason
	}
	return "other"
}

// endpointOf is the endpoint label of err, or def.
func endpointOf(err error, def string) string {
	var fe *fetchError
	if errors.As(err, &fe) && fe.endpoint != "" {
		return fe.endpoint
	}
	return def
}

// response is what a request returned.
type response struct {
	status int
	header http.Header
	body   []byte
}

// client talks to one metadata service.
type client struct {
	base    string // scheme://host, no trailing slash
	hc      *http.Client
	timeout time.Duration
	header  http.Header  // sent with every request
	token   *tokenSource // nil: no session token
	// check vets every response before its status is looked at, e.g. GCP's
	// Metadata-Flavor reply header, which tells the real server from a
	// captive portal or a proxy answering in its place.
	check func(*http.Response) error
}

// newHTTPClient is the HTTP client for metadata services: never through a
// proxy ($HTTP_PROXY in a pod's environment must not capture link-local
// requests), never following redirects (a metadata server does not
// redirect; something else answering might).
func newHTTPClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     90 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func newClient(hc *http.Client, endpoint string, timeout time.Duration) *client {
	return &client{base: strings.TrimRight(endpoint, "/"), hc: hc, timeout: timeout, header: http.Header{}}
}

// get reads path. A status other than 200 and those in also is an error
// with reason http_<code>.
func (c *client) get(ctx context.Context, path string, query url.Values, timeout time.Duration, also ...int) (*response, error) {
	return c.do(ctx, http.MethodGet, path, query, nil, timeout, also...)
}

// do sends one request, with the session token if the service uses one; a
// 401 makes it fetch a new token and try once more.
func (c *client) do(ctx context.Context, method, path string, query url.Values, body []byte, timeout time.Duration, also ...int) (*response, error) {
	if timeout <= 0 {
		timeout = c.timeout
	}
	for attempt := 0; ; attempt++ {
		var extra http.Header
		var tok string
		if c.token != nil {
			var err error
			if tok, err = c.token.get(ctx, c); err != nil {
				return nil, err
			}
			extra = http.Header{c.token.header: {tok}}
		}
		resp, err := c.send(ctx, method, path, query, body, timeout, extra)
		if err != nil {
			return nil, err
		}
		if resp.status == http.StatusUnauthorized && c.token != nil && attempt == 0 {
			// The token expired or the service restarted: get a new one.
			c.token.invalidate(tok)
			continue
		}
		if resp.status != http.StatusOK && !slices.Contains(also, resp.status) {
			return resp, &fetchError{reason: "http_" + strconv.Itoa(resp.status),
				err: fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.status, snippet(resp.body))}
		}
		return resp, nil
	}
}

// send is one HTTP exchange with a deadline, its failures classified.
func (c *client) send(ctx context.Context, method, path string, query url.Values, body []byte, timeout time.Duration, extra http.Header) (*response, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, &fetchError{reason: "other", err: err}
	}
	for k, vs := range c.header {
		req.Header[k] = vs
	}
	for k, vs := range extra {
		req.Header[k] = vs
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, classify(ctx, method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes+1))
	if err != nil {
		return nil, classify(ctx, method, path, err)
	}
	if len(data) > maxBodyBytes {
		return nil, badResponse("%s %s: response larger than %d bytes", method, path, maxBodyBytes)
	}
	if c.check != nil {
		if err := c.check(resp); err != nil {
			return nil, &fetchError{reason: reasonBadResponse, err: fmt.Errorf("%s %s: %w", method, path, err)}
		}
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: data}, nil
}

func classify(ctx context.Context, method, path string, err error) error {
	reason := reasonUnreachable
	var ne net.Error
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		reason = reasonTimeout
	}
	return &fetchError{reason: reason, err: fmt.Errorf("%s %s: %w", method, path, err)}
}

// tokenSource holds a session token (AWS IMDSv2, Alibaba hardened mode):
// PUT path with ttlHeader, then send the token in header. The token is
// renewed when a tenth of its lifetime is left, or after a 401.
type tokenSource struct {
	path, ttlHeader, header string
	ttl                     time.Duration

	mu      sync.Mutex
	value   string
	expires time.Time
}

func (t *tokenSource) get(ctx context.Context, c *client) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.value != "" && time.Until(t.expires) > t.ttl/10 {
		return t.value, nil
	}
	start := time.Now()
	resp, err := c.send(ctx, http.MethodPut, t.path, nil, nil, c.timeout,
		http.Header{t.ttlHeader: {strconv.Itoa(int(t.ttl / time.Second))}})
	if err != nil {
		return "", &fetchError{reason: reasonToken, err: fmt.Errorf("session token: %w", err)}
	}
	if resp.status != http.StatusOK {
		return "", &fetchError{reason: reasonToken,
			err: fmt.Errorf("session token: PUT %s: HTTP %d: %s", t.path, resp.status, snippet(resp.body))}
	}
	tok := strings.TrimSpace(string(resp.body))
	if tok == "" || strings.ContainsAny(tok, "\r\n") {
		return "", &fetchError{reason: reasonToken, err: fmt.Errorf("session token: PUT %s: empty or malformed token", t.path)}
	}
	t.value, t.expires = tok, start.Add(t.ttl)
	return tok, nil
}

// invalidate forgets tok if it is still the current token; a token another
// request has already renewed is kept.
func (t *tokenSource) invalidate(tok string) {
	t.mu.Lock()
	if t.value == tok {
		t.value = ""
	}
	t.mu.Unlock()
}

// snippet is the start of a body, for an error message.
func snippet(b []byte) string {
	const n = 200
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
