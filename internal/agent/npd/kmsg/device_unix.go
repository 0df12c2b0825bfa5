//go:build unix

package kmsg

import (
	"errors"
	"os"
	"syscall"
	"time"
)

// charDevice is /dev/kmsg opened non-blocking and read through the
// runtime's poller, so that a blocked read ends when it is stopped.
type charDevice struct {
	f  *os.File
	rc syscall.RawConn
}

func openCharDevice(path string) (device, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &charDevice{f: f, rc: rc}, nil
}

func (d *charDevice) read(buf []byte, wait bool) (int, error) {
	var n int
	var rerr error
	err := d.rc.Read(func(fd uintptr) bool {
		n, rerr = syscall.Read(int(fd), buf)
		// false: wait in the poller until the device is readable.
		return !wait || !errors.Is(rerr, syscall.EAGAIN)
	})
	if err != nil {
		return 0, err
	}
	if n < 0 {
		n = 0
	}
	return n, rerr
}

// stop makes a blocked read return.
func (d *charDevice) stop() { _ = d.f.SetReadDeadline(time.Now()) }

func (d *charDevice) close() error { return d.f.Close() }

// openStream opens a file or FIFO without blocking on a FIFO that has no
// writer yet.
func openStream(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
}
