//go:build unix

package logfile

import (
	"os"
	"syscall"
)

// deleted tells whether file has no name left in the file system.
func deleted(file *os.File) bool {
	info, err := file.Stat()
	if err != nil {
		return false
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	return ok && st.Nlink == 0
}
