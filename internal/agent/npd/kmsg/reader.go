package kmsg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/go-logr/logr"
)

// DefaultPath is the kernel's log device.
const DefaultPath = "/dev/kmsg"

// maxRecordBytes is the read buffer: larger than any record the kernel
// returns (CONSOLE_EXT_LOG_MAX is 8 KiB).
const maxRecordBytes = 16 << 10

// Options configure Follow.
type Options struct {
	// Path is the device, or a file or FIFO of records. Default DefaultPath.
	Path string
	// PollInterval is how often a stream is checked for new data after it
	// ended. Default 1s. (The device needs no polling.)
	PollInterval time.Duration
	// RetryInterval is how long to wait before opening Path again after it
	// failed. Default 5s, as NPD.
	RetryInterval time.Duration
}

// errStopped is what a device's read returns once it is stopped.
var errStopped = errors.New("stopped")

// device is /dev/kmsg: every read returns one whole record. wait=false
// returns syscall.EAGAIN when there is no record; wait=true blocks until
// there is one or the device is stopped.
type device interface {
	read(buf []byte, wait bool) (int, error)
	stop()
	close() error
}

// openDevice is replaced in tests.
var openDevice = openCharDevice

// Follow reads records from opts.Path until ctx is done, and returns nil
// then. It returns an error only if Path cannot be read at all the first
// time; later failures are logged and retried.
func Follow(ctx context.Context, opts Options, h Handler, log logr.Logger) error {
	if opts.Path == "" {
		opts.Path = DefaultPath
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	if opts.RetryInterval <= 0 {
		opts.RetryInterval = 5 * time.Second
	}
	t := &tracker{h: h}
	replayDone := false
	doneReplay := func() {
		if !replayDone {
			replayDone = true
			if h.ReplayDone != nil {
				h.ReplayDone()
			}
		}
	}
	first := true
	for {
		err := followOnce(ctx, opts, t, doneReplay, log)
		if ctx.Err() != nil {
			return nil
		}
		if first && !replayDone {
			// Nothing could be read at all: the caller reports it, and
			// still gets its replay signal so its state is published.
			doneReplay()
			log.Error(err, "cannot read the kernel log; retrying", "path", opts.Path, "retryIn", opts.RetryInterval)
		} else {
			log.Error(err, "reading the kernel log failed; reopening", "path", opts.Path, "retryIn", opts.RetryInterval)
		}
		first = false
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(opts.RetryInterval):
		}
	}
}

// followOnce opens Path and reads it until ctx is done (nil) or it fails.
func followOnce(ctx context.Context, opts Options, t *tracker, replayDone func(), log logr.Logger) error {
	info, err := os.Stat(opts.Path)
	if err != nil {
		return err
	}
	if info.Mode()&os.ModeCharDevice != 0 {
		dev, err := openDevice(opts.Path)
		if err != nil {
			return err
		}
		defer dev.close()
		return readDevice(ctx, dev, t, replayDone, log)
	}
	return readStream(ctx, opts, t, replayDone, log)
}

// readDevice reads one record per read.
func readDevice(ctx context.Context, dev device, t *tracker, replayDone func(), log logr.Logger) error {
	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
		select {
		case <-ctx.Done():
			dev.stop()
		case <-stopped:
		}
	}()
	buf := make([]byte, maxRecordBytes)
	replaying := true
	for {
		if ctx.Err() != nil {
			return nil
		}
		n, err := dev.read(buf, !replaying)
		switch {
		case err == nil && n > 0:
			t.raw(buf[:n], replaying)
		case err == nil:
			// A zero-length read should not happen on the device.
			return io.ErrUnexpectedEOF
		case errors.Is(err, syscall.EAGAIN):
			if replaying {
				replaying = false
				replayDone()
			}
		case errors.Is(err, syscall.EPIPE):
			// Records were overwritten before we read them; the next read
			// returns the oldest one left, and the gap shows in the
			// sequence numbers.
			log.Info("kernel log records were overwritten before they could be read; continuing with the oldest one left")
		case errors.Is(err, syscall.EINTR):
		case errors.Is(err, errStopped), errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, os.ErrClosed):
			if ctx.Err() != nil {
				return nil
			}
			return err
		default:
			return fmt.Errorf("reading %s: %w", "kmsg", err)
		}
	}
}

// readStream reads records written one per line (plus continuation lines)
// to a file or FIFO.
func readStream(ctx context.Context, opts Options, t *tracker, replayDone func(), log logr.Logger) error {
	f, err := openStream(opts.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	// A FIFO is read through the poller: a deadline ends a blocked read.
	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
		select {
		case <-ctx.Done():
			_ = f.SetReadDeadline(time.Now())
		case <-stopped:
		}
	}()
	var (
		buf     = make([]byte, 64<<10)
		partial []byte // a line without its '\n' yet
		record  []byte // the record being assembled
	)
	replaying := true
	flush := func() {
		if len(record) > 0 {
			t.raw(record, replaying)
			record = record[:0]
		}
	}
	line := func(l []byte) {
		switch {
		case len(l) > 0 && l[0] == ' ' && len(record) > 0:
			record = append(record, '\n')
			record = append(record, l...)
		case len(l) > 0 && l[0] == ' ':
			log.V(1).Info("continuation line without a record; ignored", "line", string(l))
		case len(bytes.TrimSpace(l)) == 0:
		default:
			flush()
			record = append(record, l...)
		}
	}
	for {
		n, err := f.Read(buf)
		data := buf[:n]
		for len(data) > 0 {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				if len(partial)+len(data) > maxRecordBytes {
					log.Info("kernel log stream line too long; skipped")
					partial = partial[:0]
				} else {
					partial = append(partial, data...)
				}
				break
			}
			if len(partial) > 0 {
				partial = append(partial, data[:i]...)
				line(partial)
				partial = partial[:0]
			} else {
				line(data[:i])
			}
			data = data[i+1:]
		}
		if err == nil && n > 0 {
			continue
		}
		if ctx.Err() != nil {
			return nil
		}
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, syscall.EAGAIN) {
			return err
		}
		// The end of the data there is: the last record is complete.
		flush()
		if replaying {
			replaying = false
			replayDone()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(opts.PollInterval):
		}
	}
}
