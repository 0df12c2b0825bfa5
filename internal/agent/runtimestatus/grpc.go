package runtimestatus

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A unary gRPC call is an HTTP/2 POST of one length-prefixed message to
// /<service>/<method>, answered by one length-prefixed message and the
// call's status in the trailers (grpc-status, grpc-message), or by the
// status alone in the headers ("trailers-only"). See
// https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md.

// conn makes unary calls to the RuntimeService on one unix socket.
type conn struct {
	// tr is this conn's own: the connection it opens is closed with it.
	// A shared transport would keep the connection between queries (see
	// Query).
	tr      *http.Transport
	timeout time.Duration

	mu sync.Mutex
	// dialErr is why the last dial failed, nil if it did not: the call
	// reports it as it is, not wrapped in the transport's words.
	dialErr error
	// conns are the connections dialled, for close.
	conns  []net.Conn
	closed bool
}

func newConn(path string, timeout time.Duration) *conn {
	c := &conn{timeout: timeout}
	c.tr = &http.Transport{
		// The socket is the only address: the URL's host is a name for
		// the :authority header, never resolved.
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			nc, err := (&net.Dialer{}).DialContext(ctx, "unix", path)
			c.mu.Lock()
			defer c.mu.Unlock()
			c.dialErr = err
			if err != nil {
				return nil, err
			}
			if c.closed {
				// A dial that the transport let finish after close.
				_ = nc.Close()
				return nil, net.ErrClosed
			}
			c.conns = append(c.conns, nc)
			return nc, nil
		},
		// No Accept-Encoding: gzip: gRPC compresses messages, not bodies.
		DisableCompression: true,
		// Proxy is nil: no HTTP(S)_PROXY for a unix socket.
	}
	// HTTP/2 without TLS and without an upgrade from HTTP/1 ("prior
	// knowledge"), as gRPC speaks it.
	c.tr.Protocols = new(http.Protocols)
	c.tr.Protocols.SetUnencryptedHTTP2(true)
	return c
}

// close closes the connection, once every call has returned.
//
// CloseIdleConnections alone would not do. net/http hands a new HTTP/2
// connection to the request that dialled it first and puts it in its pool
// only after that, so a call can be over before its connection is in the
// pool; and a connection that comes too late to a closed pool is dropped
// but, being HTTP/2, not closed: it would stay open with its reader
// goroutine for good. (That race also makes the second call dial a second
// connection now and then; close closes both.)
func (c *conn) close() {
	c.tr.CloseIdleConnections()
	c.mu.Lock()
	conns := c.conns
	c.conns, c.closed = nil, true
	c.mu.Unlock()
	for _, nc := range conns {
		// Already closed, as a rule: the error says nothing.
		_ = nc.Close()
	}
}

// call calls RuntimeService.<method> with the encoded request and returns
// the encoded answer. Its errors read "RuntimeService.<method>: ..." with
// the runtime's message, or are the dial's error.
func (c *conn) call(ctx context.Context, method string, req []byte) ([]byte, error) {
	name := "RuntimeService." + method
	callCtx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	msg, err := c.roundTrip(callCtx, "/runtime.v1.RuntimeService/"+method, req)
	if err == nil {
		return msg, nil
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("%s: %w", name, context.Cause(ctx))
	}
	c.mu.Lock()
	dialErr := c.dialErr
	c.mu.Unlock()
	var st *statusError
	isStatus := errors.As(err, &st)
	switch {
	case dialErr != nil && !isStatus:
		return nil, dialErr
	case isStatus && st.code == codeDeadlineExceeded, !isStatus && callCtx.Err() != nil:
		return nil, fmt.Errorf("%s: no answer within %v", name, c.timeout)
	}
	return nil, fmt.Errorf("%s: %w", name, err)
}

// roundTrip makes the call: it returns the answer's message, or the call's
// status as a *statusError, or why the answer is not one.
func (c *conn) roundTrip(ctx context.Context, path string, msg []byte) ([]byte, error) {
	body := make([]byte, 5+len(msg))
	// body[0] = 0: not compressed.
	binary.BigEndian.PutUint32(body[1:5], uint32(len(msg)))
	copy(body[5:], msg)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://localhost"+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header = http.Header{
		"Content-Type": {"application/grpc"},
		"Te":           {"trailers"},
		"User-Agent":   {"nodewarden-agent"},
	}
	// No grpc-timeout: when ctx ends, net/http resets the stream, which
	// cancels the runtime's handler all the same. A deadline of the
	// runtime's own would race the agent's: grpc-go's server resets the
	// stream when it passes, which could beat ctx to ending the call and
	// turn "no answer within" into a stream error.
	resp, err := c.tr.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	// Closing a body not read to its end resets the stream.
	defer resp.Body.Close()

	// Trailers-only: the headers end the stream and hold the status, an
	// error as a rule (an OK would mean an answer without a message).
	if _, ok := resp.Header["Grpc-Status"]; ok {
		if err := status(resp.Header); err != nil {
			return nil, err
		}
		return nil, errors.New("the answer holds no message")
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("the answer is HTTP %s without a gRPC status", resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/grpc" &&
		!strings.HasPrefix(ct, "application/grpc+") && !strings.HasPrefix(ct, "application/grpc;") {
		return nil, fmt.Errorf("the answer's content-type is %q, not application/grpc", ct)
	}

	msg, malformed, err := readMessage(resp)
	if err != nil {
		return nil, err
	}
	// The body has been read to its end: the trailers are in. A status
	// other than OK says what went wrong better than a malformed body.
	err = status(resp.Trailer)
	var st *statusError
	switch {
	case errors.As(err, &st):
		return nil, err
	case malformed != nil:
		return nil, malformed
	case err != nil:
		return nil, err
	}
	return msg, nil
}

// readMessage reads the one message of a unary answer, at most maxMsgSize
// bytes, and the body to its end. A body that ends too soon (or holds no
// message) comes back as malformed, for the caller to weigh against the
// status in the trailers; err is any other failure, after which the body
// has not been read to its end.
func readMessage(resp *http.Response) (msg []byte, malformed, err error) {
	var prefix [5]byte
	switch _, err := io.ReadFull(resp.Body, prefix[:]); {
	case err == io.EOF:
		return nil, errors.New("the answer holds no message"), nil
	case err == io.ErrUnexpectedEOF:
		return nil, errors.New("the answer ends inside a message's length prefix"), nil
	case err != nil:
		return nil, nil, err
	}
	switch prefix[0] {
	case 0:
	case 1:
		// Only a server that ignores the absent grpc-accept-encoding
		// compresses.
		return nil, nil, fmt.Errorf("the answer's message is compressed (grpc-encoding %q), which this client does not offer", resp.Header.Get("Grpc-Encoding"))
	default:
		return nil, nil, fmt.Errorf("the answer's message has flags %#x, not 0 or 1", prefix[0])
	}
	size := binary.BigEndian.Uint32(prefix[1:])
	if size > maxMsgSize {
		return nil, nil, fmt.Errorf("the answer's message of %d bytes exceeds the limit of %d", size, maxMsgSize)
	}
	// Read, not allocated up front: the memory follows the bytes that
	// come, not the size the prefix claims.
	msg, err = io.ReadAll(io.LimitReader(resp.Body, int64(size)))
	if err != nil {
		return nil, nil, err
	}
	if len(msg) < int(size) {
		return nil, fmt.Errorf("the answer ends after %d of its message's %d bytes", len(msg), size), nil
	}
	var more [1]byte
	switch n, err := io.ReadFull(resp.Body, more[:]); {
	case n > 0:
		return nil, nil, errors.New("the answer holds more than one message")
	case err != io.EOF:
		return nil, nil, err
	}
	return msg, nil, nil
}

// statusError is a gRPC status other than OK.
type statusError struct {
	code    int
	message string
}

func (e *statusError) Error() string {
	if e.code == codeUnknown {
		// What the runtime's handler returned, as it said it.
		return e.message
	}
	return codeName(e.code) + ": " + e.message
}

// status reads grpc-status and grpc-message from h: nil for OK, a
// *statusError for another code, another error when h holds no valid
// grpc-status.
func status(h http.Header) error {
	s := h.Get("Grpc-Status")
	if s == "" {
		return errors.New("the answer ends without a grpc-status")
	}
	code, err := strconv.ParseUint(s, 10, 31)
	if err != nil {
		return fmt.Errorf("the answer's grpc-status %q is not a status code", s)
	}
	if code == codeOK {
		return nil
	}
	return &statusError{code: int(code), message: percentDecode(h.Get("Grpc-Message"))}
}

// percentDecode undoes grpc-message's percent-encoding. Like grpc-go, it
// keeps a '%' that does not start two hex digits as it is.
func percentDecode(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// gRPC status codes (google.golang.org/grpc/codes).
const (
	codeOK               = 0
	codeUnknown          = 2
	codeDeadlineExceeded = 4
)

// codeNames are the codes' names as grpc-go writes them.
var codeNames = [...]string{
	"OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded",
	"NotFound", "AlreadyExists", "PermissionDenied", "ResourceExhausted",
	"FailedPrecondition", "Aborted", "OutOfRange", "Unimplemented",
	"Internal", "Unavailable", "DataLoss", "Unauthenticated",
}

func codeName(code int) string {
	if code >= 0 && code < len(codeNames) {
		return codeNames[code]
	}
	return "Code(" + strconv.Itoa(code) + ")"
}
