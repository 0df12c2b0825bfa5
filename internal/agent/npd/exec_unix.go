//go:build unix

package npd

import (
	"os/exec"
	"syscall"
)

// killProcessGroup runs the plugin in its own process group and, on
// timeout, kills the whole group, as NPD does: a plugin's children
// (a shell's pipeline) must not outlive it.
func killProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		if cmd.Process == nil {
			return nil
		}
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
