// Command thingspace-sim runs the ThingSpace simulator of internal/sim: a local stand-in for
// Verizon ThingSpace's eSIM profile API (OAuth, session, callbacks, profile actions, device
// lists) with an admin API under /sim/v1/. cmd/thingspace-sim/README.md is its manual.
//
// Its first line on stdout is "thingspace-sim listening on http://HOST:PORT"; logs go to
// stderr. SIGINT and SIGTERM stop it cleanly.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/fleetform/terraform-provider-thingspace/internal/sim"
)

// version is set at build time (-ldflags "-X main.version=v1.2.3", see GNUmakefile).
var version = "dev"

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, stop))
}

// run is the command: it serves until stop delivers a signal, then shuts down cleanly.
func run(args []string, stdout, stderr io.Writer, stop <-chan os.Signal) int {
	d := sim.DefaultOptions()
	fl := flag.NewFlagSet("thingspace-sim", flag.ContinueOnError)
	fl.SetOutput(stderr)
	o := d
	fl.StringVar(&o.Addr, "addr", d.Addr, "listen address (port 0 picks a free port)")
	fl.IntVar(&o.Devices, "devices", d.Devices, "number of devices in the inventory")
	fl.IntVar(&o.Preactivated, "preactivated", 0, "activate the first K devices with the first US plan")
	fl.StringVar(&o.Account, "account", d.Account, "the simulated billing account")
	fl.StringVar(&o.ClientID, "client-id", d.ClientID, "OAuth client id")
	fl.StringVar(&o.ClientSecret, "client-secret", d.ClientSecret, "OAuth client secret")
	fl.StringVar(&o.Username, "username", d.Username, "M2M session username")
	fl.StringVar(&o.Password, "password", d.Password, "M2M session password")
	delay := fl.String("callback-delay", "500ms", "delay before a device's callback: a duration or a range such as 200ms-2s")
	fl.DurationVar(&o.CallbackRetryInterval, "callback-retry-interval", d.CallbackRetryInterval, "wait between attempts of an unacknowledged callback")
	fl.DurationVar(&o.SessionIdleTimeout, "session-idle-timeout", d.SessionIdleTimeout, "M2M session idle expiry")
	fl.IntVar(&o.BulkLimit, "bulk-limit", d.BulkLimit, "most devices per action (MaxRequestsExceeded above)")
	fl.Int64Var(&o.Seed, "seed", d.Seed, "seed of the inventory, request ids and fault draws")
	fl.StringVar(&o.Faults, "faults", "", "fault settings, e.g. 429=0.05,5xx=0.02,warning=0.1,session-expiry=60s")
	fl.IntVar(&o.Workers, "workers", d.Workers, "callback worker pool size")
	fl.BoolVar(&o.CallbackInsecureTLS, "callback-insecure-tls", false, "do not verify the certificates of https callback listeners")
	logFormat := fl.String("log-format", "text", "log format on stderr: text or json")
	logLevel := fl.String("log-level", "info", "log level: debug, info, warn, error")
	showVersion := fl.Bool("version", false, "print the version and exit")
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0 // asked for: the flags were printed
		}
		return 2
	}
	if fl.NArg() > 0 {
		fmt.Fprintf(stderr, "thingspace-sim: unexpected arguments %q\n", fl.Args())
		return 2
	}
	if *showVersion {
		fmt.Fprintln(stdout, "thingspace-sim", version)
		return 0
	}
	var err error
	if o.CallbackDelayMin, o.CallbackDelayMax, err = sim.ParseDelayRange(*delay); err != nil {
		fmt.Fprintln(stderr, "thingspace-sim:", err)
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintln(stderr, "thingspace-sim: -log-level:", err)
		return 2
	}
	hopts := &slog.HandlerOptions{Level: level}
	switch *logFormat {
	case "json":
		o.Logger = slog.New(slog.NewJSONHandler(stderr, hopts))
	case "text":
		o.Logger = slog.New(slog.NewTextHandler(stderr, hopts))
	default:
		fmt.Fprintln(stderr, "thingspace-sim: -log-format must be text or json")
		return 2
	}
	s, err := sim.New(o)
	if err != nil {
		fmt.Fprintln(stderr, "thingspace-sim:", err)
		return 1
	}
	base, err := s.Start()
	if err != nil {
		fmt.Fprintln(stderr, "thingspace-sim:", err)
		s.Close()
		return 1
	}
	fmt.Fprintf(stdout, "thingspace-sim listening on %s\n", base)
	sig := <-stop
	o.Logger.Info("stopping", "signal", sig.String())
	if err := s.Close(); err != nil {
		o.Logger.Error("close", "err", err)
		return 1
	}
	return 0
}
