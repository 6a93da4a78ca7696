//go:build !unix

package main

import (
	"os"
	"os/exec"
	"syscall"
)

// The harness measures and stops process groups with Unix calls; elsewhere it builds, but
// reports no provider usage and stops Terraform only, not the provider processes it started.

func ownProcessGroup(*exec.Cmd) {}

func signalGroup(cmd *exec.Cmd, _ syscall.Signal) {
	if cmd.Process != nil {
		_ = cmd.Process.Kill()
	}
}

func usageOf(*os.ProcessState) (user, sys float64, maxRSS int64, ok bool) { return 0, 0, 0, false }
