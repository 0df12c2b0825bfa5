//go:build !unix

package kmsg

import (
	"errors"
	"os"
)

func openCharDevice(string) (device, error) {
	return nil, errors.New("kmsg: reading a character device is supported on Linux only")
}

func openStream(path string) (*os.File, error) { return os.Open(path) }
