// Command httpget GETs a URL and writes the body to standard output, failing on any answer
// that is not 2xx: what scripts/demo.sh needs from curl, so that `make demo` runs on a machine
// that has only Go.
//
//	httpget [-max-time 5s] [-H 'Name: value']... URL
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

type headers []string

func (h *headers) String() string     { return strings.Join(*h, ", ") }
func (h *headers) Set(v string) error { *h = append(*h, v); return nil }

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "httpget:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("httpget", flag.ContinueOnError)
	maxTime := fs.Duration("max-time", 10*time.Second, "time limit of the whole request")
	var hdrs headers
	fs.Var(&hdrs, "H", "a request header, `Name: value` (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("want exactly one URL")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *maxTime)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fs.Arg(0), nil)
	if err != nil {
		return err
	}
	for _, h := range hdrs {
		name, value, ok := strings.Cut(h, ":")
		if !ok {
			return fmt.Errorf("-H %q: want Name: value", h)
		}
		req.Header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("GET %s: %s", req.URL.Redacted(), resp.Status)
	}
	_, err = io.Copy(out, resp.Body)
	return err
}
