package cluster

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Process is a program a test runs beside the control plane: a component
// envtest does not know (controller-manager, scheduler, kwok), or
// bin/nodewarden itself. Its output is appended to a log file that a
// failing test can point at.
type Process struct {
	Name    string
	LogPath string
	cmd     *exec.Cmd
	done    chan struct{}
	err     error
}

// StartProcess runs path with args, its output appended to dir/name.log.
func StartProcess(dir, name, path string, args ...string) (*Process, error) {
	logFile, err := os.OpenFile(filepath.Join(dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return StartCommand(name, exec.Command(path, args...), logFile)
}

// StartCommand is StartProcess for a command the caller has set up further
// (its environment, say), its output written to logFile, which the Process
// closes when the command ends.
func StartCommand(name string, cmd *exec.Cmd, logFile *os.File) (*Process, error) {
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Pdeathsig: if the test binary dies (a -timeout panic, kill -9), the
	// kernel kills the process too, so no orphan keeps ports or CPU.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{Name: name, LogPath: logFile.Name(), cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process's id, e.g. to read its memory from /proc.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended; Err is then why.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err is how the process ended (nil while it runs or after a clean exit).
func (p *Process) Err() error {
	if !p.Exited() {
		return nil
	}
	return p.err
}

// Stop asks politely (SIGTERM), then insists after 10 s.
func (p *Process) Stop() {
	if p.Exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.Kill()
	}
}

// Kill is kill -9 of the process and its group; it waits until they are gone.
func (p *Process) Kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// waitHealthy polls url until it answers 200, the process exits, or ctx ends.
func (p *Process) waitHealthy(ctx context.Context, url string) error {
	client := &http.Client{
		Timeout: 2 * time.Second,
		// The components serve /healthz on self-signed certificates.
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it was healthy (%w); see %s", p.Name, p.err, p.LogPath)
		case <-ctx.Done():
			return fmt.Errorf("%s not healthy at %s: %w; see %s", p.Name, url, ctx.Err(), p.LogPath)
		case <-tick.C:
		}
	}
}

// freePort asks the kernel for an unused loopback port. Another process can
// take it before we use it; the window is small and each component fails
// loudly if it happens.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func portString(p int) string { return strconv.Itoa(p) }
