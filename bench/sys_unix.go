//go:build unix

package main

import (
	"os"
	"os/exec"
	"runtime"
	"syscall"
)

// ownProcessGroup starts cmd in a process group of its own. A Ctrl-C at the terminal then
// reaches only the harness, which stops Terraform itself (SIGINT first, so that it saves its
// state) and stops the servers last, while they still answer Terraform.
func ownProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// signalGroup sends sig to the process group that cmd leads (ownProcessGroup): Terraform and
// the provider processes it started. Call it only before cmd has been waited for, while the
// group id is still ours.
func signalGroup(cmd *exec.Cmd, sig syscall.Signal) {
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, sig)
	}
}

// usageOf returns the CPU seconds (user and system) and the peak resident set size in bytes
// of an exited child.
func usageOf(ps *os.ProcessState) (user, sys float64, maxRSS int64, ok bool) {
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0, 0, 0, false
	}
	// Maxrss is an int32 on 32-bit platforms: the conversions are needed there.
	maxRSS = int64(ru.Maxrss) * 1024 //nolint:unconvert // KiB on Linux and the BSDs
	if runtime.GOOS == "darwin" {
		maxRSS = int64(ru.Maxrss) //nolint:unconvert // bytes on macOS
	}
	return tv(ru.Utime), tv(ru.Stime), maxRSS, true
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
