package main

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The first stdout line is "thingspace-sim listening on http://HOST:PORT"; the simulator answers
// there; a signal stops it with exit code 0.
func TestRunListensAndStops(t *testing.T) {
	pr, pw := io.Pipe()
	stop := make(chan os.Signal, 1)
	code := make(chan int, 1)
	go func() {
		code <- run([]string{"-addr", "127.0.0.1:0", "-devices", "3", "-preactivated", "1", "-callback-delay", "1ms-5ms", "-faults", "warning=0.1"}, pw, io.Discard, stop)
		pw.Close()
	}()
	lineCh := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(pr).ReadString('\n')
		lineCh <- line
		io.Copy(io.Discard, pr)
	}()
	var line string
	select {
	case line = <-lineCh:
	case <-time.After(20 * time.Second):
		t.Fatal("no listening line")
	}
	base, ok := strings.CutPrefix(strings.TrimSpace(line), "thingspace-sim listening on ")
	if !ok || !strings.HasPrefix(base, "http://127.0.0.1:") {
		t.Fatalf("first line %q", line)
	}
	resp, err := http.Get(base + "/sim/v1/devices")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.Count(string(b), `"eid"`) != 3 || !strings.Contains(string(b), `"state":"active"`) {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	stop <- syscall.SIGTERM
	select {
	case c := <-code:
		if c != 0 {
			t.Fatalf("exit code %d", c)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("did not stop")
	}
}

// -h is a question answered, not a usage error: scripts and package checks run it and expect 0.
func TestRunHelpAndVersion(t *testing.T) {
	for _, h := range []string{"-h", "-help", "--help"} {
		var errOut strings.Builder
		if c := run([]string{h}, io.Discard, &errOut, nil); c != 0 || !strings.Contains(errOut.String(), "-callback-delay") {
			t.Errorf("%s: exit %d, output %q", h, c, errOut.String())
		}
	}
	var out strings.Builder
	if c := run([]string{"-version"}, &out, io.Discard, nil); c != 0 || out.String() != "thingspace-sim "+version+"\n" {
		t.Errorf("-version: exit %d, output %q", c, out.String())
	}
}

func TestRunBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-callback-delay", "soon"}, {"-faults", "nope=1"}, {"-log-format", "xml"}, {"-nosuchflag"}, {"extra"},
		{"-addr", "127.0.0.1:0", "-devices", "3", "-preactivated", "4"}} {
		if c := run(args, io.Discard, io.Discard, nil); c == 0 {
			t.Errorf("%v: exit 0", args)
		}
	}
}
