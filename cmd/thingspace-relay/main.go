// Command thingspace-relay is the durable callback listener registered with ThingSpace, and the
// API the provider waits on. cmd/thingspace-relay/README.md is its manual, design/relay.md its design.
//
//	thingspace-relay serve [flags]     run the relay
//	thingspace-relay migrate [flags]   bring the store's schema up to date and exit
//	thingspace-relay healthcheck       GET the admin /readyz; exit 0 when ready
//	thingspace-relay version           print the version
//
// Every flag has a RELAY_* environment fallback (-ingest-addr: RELAY_INGEST_ADDR); the secrets
// (-path-token, -callback-credentials, -api-token, -forward-basic-auth) also a RELAY_*_FILE one. Repeatable flags
// take several values from the environment or a file separated by white space or newlines.
package main

import (
	"context"
	cryptotls "crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/relay"
	"github.com/fleetform/terraform-provider-thingspace/internal/relay/forward"
	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store"
	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store/postgres"
	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store/sqlite"
	"github.com/fleetform/terraform-provider-thingspace/internal/tlsreload"
)

// version is set at build time (-ldflags "-X main.version=v1.2.3", see GNUmakefile).
var version string

func main() {
	if version != "" {
		relay.Version = version
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

const usage = `usage: thingspace-relay <command> [flags]

commands:
  serve        run the relay (ingest, API and admin listeners)
  migrate      bring the store's schema up to date and exit
  healthcheck  GET http://<admin-addr>/readyz; exit 0 when ready, 1 otherwise
  version      print the version

Run "thingspace-relay serve -h" for the flags. Every flag has a RELAY_* environment fallback
(-ingest-addr: RELAY_INGEST_ADDR); secrets also a RELAY_*_FILE variant.
`

func run(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "thingspace-relay", relay.Version)
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	case "serve", "migrate", "healthcheck":
	default:
		fmt.Fprintf(stderr, "thingspace-relay: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	o, err := parseOptions(cmd, rest, stderr, getenv)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "thingspace-relay %s: %v\n", cmd, err)
		return 2
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: o.logLevel}))
	for _, w := range o.warnings {
		log.Warn(w)
	}
	switch cmd {
	case "healthcheck":
		return healthcheck(o, stderr)
	case "migrate":
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		st, err := openStore(ctx, o.store)
		if err != nil {
			log.Error("opening the store failed", "err", err)
			return 1
		}
		defer st.Close()
		if err := st.Migrate(ctx); err != nil {
			log.Error("migration failed", "err", err)
			return 1
		}
		log.Info("store migrated", "store", redactStoreURL(o.store))
		return 0
	}
	if err := serve(o, stdout, log); err != nil {
		log.Error("relay stopped", "err", err)
		return 1
	}
	return 0
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error {
	*m = append(*m, s)
	return nil
}

type options struct {
	ingestAddr, apiAddr, adminAddr string
	store                          string
	pathTokens                     multiFlag
	credentials                    multiFlag
	apiTokens                      multiFlag
	publicURLs                     multiFlag
	allowCIDRs                     multiFlag
	redactFields                   multiFlag
	maxBodyBytes                   int64
	maxWait                        time.Duration
	retention                      time.Duration
	shutdownTimeout                time.Duration
	tlsCert, tlsKey                string
	behindTLSProxy                 bool
	forwardTo                      string
	forwardBasicAuth               string
	forwardTimeout                 time.Duration
	forwardMaxBackoff              time.Duration
	logLevelName                   string

	logLevel slog.Level
	warnings []string
}

// secrets are the flags that also read RELAY_*_FILE and draw a warning when given as flags.
var secrets = map[string]bool{"path-token": true, "callback-credentials": true, "api-token": true, "forward-basic-auth": true}

// envName is the environment fallback of a flag: -ingest-addr → RELAY_INGEST_ADDR.
func envName(flagName string) string {
	return "RELAY_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func parseOptions(cmd string, args []string, stderr io.Writer, getenv func(string) string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("thingspace-relay "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.ingestAddr, "ingest-addr", ":9001", "carrier-facing listen address (POST /callbacks/v1/thingspace/{path-token})")
	fs.StringVar(&o.apiAddr, "api-addr", "127.0.0.1:9090", "provider-facing API listen address")
	fs.StringVar(&o.adminAddr, "admin-addr", "127.0.0.1:9091", "admin listen address (/livez, /readyz, /metrics, /version)")
	fs.StringVar(&o.store, "store", "sqlite:relay-data/relay.db", "sqlite:<path> or a postgres:// URL")
	fs.Var(&o.pathTokens, "path-token", "secret path segment of the ingest URL (repeatable, for rotation; prefer RELAY_PATH_TOKEN_FILE)")
	fs.Var(&o.credentials, "callback-credentials", "accepted callback credentials user:password[;account=LABEL] (repeatable; prefer RELAY_CALLBACK_CREDENTIALS_FILE)")
	fs.Var(&o.apiTokens, "api-token", "API bearer token, token or token=account1,account2 (repeatable; prefer RELAY_API_TOKEN_FILE)")
	fs.Var(&o.publicURLs, "public-url", "ingest URL registered with ThingSpace (repeatable; default http(s)://<ingest-addr>/callbacks/v1/thingspace/<path-token>)")
	fs.Var(&o.allowCIDRs, "allow-cidr", "accept callbacks only from these source networks (repeatable)")
	fs.Var(&o.redactFields, "redact-field", "also remove this field, at any depth and in any case, from callback bodies before hashing and storing (repeatable; username, password and deviceCredential always are)")
	fs.Int64Var(&o.maxBodyBytes, "max-body-bytes", 1<<20, "largest callback body accepted (413 above)")
	fs.DurationVar(&o.maxWait, "max-wait", 5*time.Minute, "longest long-poll wait")
	fs.DurationVar(&o.retention, "retention", 720*time.Hour, "keep requests this long after their last update (0: forever)")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 30*time.Second, "longest graceful shutdown")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "serve ingest and API over TLS with this certificate (PEM)")
	fs.StringVar(&o.tlsKey, "tls-key", "", "private key of -tls-cert (PEM)")
	fs.BoolVar(&o.behindTLSProxy, "behind-tls-proxy", false, "a TLS-terminating proxy is in front: allow plain HTTP on non-loopback addresses")
	fs.StringVar(&o.forwardTo, "forward-to", "", "also deliver every stored callback to this URL (at least once, from a durable outbox; the consumer de-duplicates on the Idempotency-Key header)")
	fs.StringVar(&o.forwardBasicAuth, "forward-basic-auth", "", "user:password sent as Basic auth to -forward-to (prefer RELAY_FORWARD_BASIC_AUTH_FILE)")
	fs.DurationVar(&o.forwardTimeout, "forward-timeout", 30*time.Second, "longest forward attempt")
	fs.DurationVar(&o.forwardMaxBackoff, "forward-max-backoff", 5*time.Minute, "longest wait between forward attempts of a callback (a Retry-After answer may ask for up to 1h)")
	fs.StringVar(&o.logLevelName, "log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		name := f.Name
		if given[name] {
			if secrets[name] {
				o.warnings = append(o.warnings, fmt.Sprintf("-%s given on the command line is visible to every local user (ps, /proc); use %s_FILE", name, envName(name)))
			}
			return
		}
		var values []string
		env := envName(name)
		if secrets[name] {
			if path := getenv(env + "_FILE"); path != "" {
				b, err := os.ReadFile(path)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s_FILE: %w", env, err))
					return
				}
				for _, line := range strings.Split(string(b), "\n") {
					if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
						values = append(values, line)
					}
				}
			}
		}
		if v := getenv(env); v != "" && values == nil {
			if _, repeatable := f.Value.(*multiFlag); repeatable {
				values = strings.Fields(v)
			} else {
				values = []string{v}
			}
		}
		for _, v := range values {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", env, err))
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := o.logLevel.UnmarshalText([]byte(o.logLevelName)); err != nil {
		return nil, fmt.Errorf("-log-level: %w", err)
	}
	return o, nil
}

// isLoopback reports whether a listen address only accepts local connections.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

func openStore(ctx context.Context, spec string) (store.Store, error) {
	switch {
	case strings.HasPrefix(spec, "sqlite:"):
		path := strings.TrimPrefix(spec, "sqlite:")
		path = strings.TrimPrefix(path, "//")
		return sqlite.Open(ctx, path)
	case strings.HasPrefix(spec, "postgres://"), strings.HasPrefix(spec, "postgresql://"):
		return openPostgres(ctx, spec)
	}
	return nil, fmt.Errorf("-store %q: want sqlite:<path> or postgres://<host>/<db>", redactStoreURL(spec))
}

func openPostgres(ctx context.Context, url string) (store.Store, error) {
	return postgres.Open(ctx, url)
}

// redactStoreURL hides a password in a postgres:// URL for logs.
func redactStoreURL(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		rest := s[i+3:]
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if c := strings.Index(rest[:at], ":"); c >= 0 {
				return s[:i+3] + rest[:c] + ":xxxxx" + rest[at:]
			}
		}
	}
	return s
}

func buildConfig(o *options) (relay.Config, error) {
	cfg := relay.Config{
		PathTokens:   o.pathTokens,
		PublicURLs:   o.publicURLs,
		MaxBodyBytes: o.maxBodyBytes,
		MaxWait:      o.maxWait,
		Retention:    o.retention,
	}
	if len(cfg.PathTokens) == 0 {
		return cfg, errors.New("a path token is required (-path-token, RELAY_PATH_TOKEN or RELAY_PATH_TOKEN_FILE)")
	}
	if len(o.redactFields) > 0 {
		// Added to the defaults, never replacing them: a typo must not un-redact a credential.
		cfg.RedactFields = append(slices.Clone(relay.DefaultRedactFields), o.redactFields...)
	}
	for _, s := range o.credentials {
		c, err := relay.ParseCredential(s)
		if err != nil {
			return cfg, fmt.Errorf("-callback-credentials: %w", err)
		}
		cfg.Credentials = append(cfg.Credentials, c)
	}
	for _, s := range o.apiTokens {
		t, err := relay.ParseAPIToken(s)
		if err != nil {
			return cfg, fmt.Errorf("-api-token: %w", err)
		}
		cfg.APITokens = append(cfg.APITokens, t)
	}
	for _, s := range o.allowCIDRs {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return cfg, fmt.Errorf("-allow-cidr %q: %w", s, err)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		cfg.AllowCIDRs = append(cfg.AllowCIDRs, p.Masked())
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return cfg, errors.New("-tls-cert and -tls-key go together")
	}
	if o.forwardBasicAuth != "" && o.forwardTo == "" {
		return cfg, errors.New("-forward-basic-auth without -forward-to")
	}
	if o.forwardTo != "" {
		cfg.Forward = forward.Config{URL: o.forwardTo, Timeout: o.forwardTimeout, MaxBackoff: o.forwardMaxBackoff}
		if o.forwardBasicAuth != "" {
			u, p, ok := strings.Cut(o.forwardBasicAuth, ":")
			if !ok {
				return cfg, errors.New("-forward-basic-auth: want user:password")
			}
			cfg.Forward.Username, cfg.Forward.Password = u, p
		}
	}
	return cfg, nil
}

func serve(o *options, stdout io.Writer, log *slog.Logger) error {
	cfg, err := buildConfig(o)
	if err != nil {
		return err
	}
	tls := o.tlsCert != ""
	if !tls && !o.behindTLSProxy {
		for _, a := range []struct{ flag, addr string }{{"-ingest-addr", o.ingestAddr}, {"-api-addr", o.apiAddr}} {
			if !isLoopback(a.addr) {
				return fmt.Errorf("refusing plain HTTP on the non-loopback address %s %q: serve TLS (-tls-cert, -tls-key) or say a TLS proxy is in front (-behind-tls-proxy)", a.flag, a.addr)
			}
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// SIGHUP reloads the certificate; caught also without TLS, where its default action would
	// stop the relay.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var cert *tlsreload.Certificate
	if tls {
		if cert, err = tlsreload.Load(o.tlsCert, o.tlsKey); err != nil {
			return err
		}
	}

	octx, ocancel := context.WithTimeout(ctx, time.Minute)
	st, err := openStore(octx, o.store)
	ocancel()
	if err != nil {
		return fmt.Errorf("opening the store: %w", err)
	}
	defer st.Close()

	listen := func(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }
	ingestL, err := listen(o.ingestAddr)
	if err != nil {
		return err
	}
	apiL, err := listen(o.apiAddr)
	if err != nil {
		return err
	}
	adminL, err := listen(o.adminAddr)
	if err != nil {
		return err
	}
	scheme := "http"
	if tls {
		scheme = "https"
	}
	if len(cfg.PublicURLs) == 0 {
		// The ingest address as given, with the port actually bound (so that port 0 works).
		host, _, _ := net.SplitHostPort(o.ingestAddr)
		_, port, _ := net.SplitHostPort(ingestL.Addr().String())
		for _, t := range cfg.PathTokens {
			cfg.PublicURLs = append(cfg.PublicURLs, scheme+"://"+net.JoinHostPort(host, port)+relay.IngestPathPrefix+t)
		}
	}
	cfg.Store = st
	cfg.Logger = log
	r, err := relay.New(cfg)
	if err != nil {
		return err
	}
	errLog := slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	ingest := &http.Server{Handler: r.IngestHandler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, ErrorLog: errLog}
	api := &http.Server{Handler: r.APIHandler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
		IdleTimeout: 2 * time.Minute, ErrorLog: errLog} // no WriteTimeout: long-polls last up to -max-wait
	admin := &http.Server{Handler: r.AdminHandler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, ErrorLog: errLog}

	errc := make(chan error, 3)
	if tls {
		// Every handshake asks cert for the pair, so a reload applies to new connections at once.
		for _, srv := range []*http.Server{ingest, api} {
			srv.TLSConfig = &cryptotls.Config{MinVersion: cryptotls.VersionTLS12, GetCertificate: cert.GetCertificate}
		}
	}
	go func() {
		if tls {
			errc <- ingest.ServeTLS(ingestL, "", "")
		} else {
			errc <- ingest.Serve(ingestL)
		}
	}()
	go func() {
		if tls {
			errc <- api.ServeTLS(apiL, "", "")
		} else {
			errc <- api.Serve(apiL)
		}
	}()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
			}
			if cert == nil {
				log.Info("SIGHUP: no certificate to reload (no -tls-cert)")
				continue
			}
			leaf, err := cert.Reload()
			if err != nil {
				log.Error("SIGHUP: certificate reload failed; serving the previous one", "err", err)
				continue
			}
			log.Info("SIGHUP: certificate reloaded", "certificate", tlsreload.Describe(leaf))
		}
	}()
	go func() { errc <- admin.Serve(adminL) }()

	fmt.Fprintf(stdout, "thingspace-relay ingest on %s://%s, api on %s://%s, admin on http://%s\n",
		scheme, ingestL.Addr(), scheme, apiL.Addr(), adminL.Addr())
	if f, ok := stdout.(*os.File); ok {
		// A pipe or terminal cannot be synced; the line is only flushed early for scripts
		// that wait for it, so an error here changes nothing.
		_ = f.Sync()
	}
	log.Info("relay started", "version", relay.Version, "store", redactStoreURL(o.store),
		"ingest", ingestL.Addr().String(), "api", apiL.Addr().String(), "admin", adminL.Addr().String(),
		"tls", tls, "behind_tls_proxy", o.behindTLSProxy, "path_tokens", len(cfg.PathTokens),
		"callback_credentials", len(cfg.Credentials), "api_tokens", len(cfg.APITokens),
		"forward_to", cfg.Forward.URL, "forward_basic_auth", cfg.Forward.Username != "" || cfg.Forward.Password != "")

	var serveErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case serveErr = <-errc:
		log.Error("a listener failed; shutting down", "err", serveErr)
	}
	sctx, cancel := context.WithTimeout(context.Background(), o.shutdownTimeout)
	defer cancel()
	// Readiness off and open long-polls answered first; then the servers stop accepting and wait
	// for their handlers (ingests finish their commit); then the group committer stops.
	r.Drain()
	var wg sync.WaitGroup
	for _, s := range []*http.Server{ingest, api, admin} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Shutdown(sctx); err != nil {
				log.Warn("server shutdown", "err", err)
				s.Close()
			}
		}()
	}
	wg.Wait()
	if err := r.Shutdown(sctx); err != nil {
		log.Warn("relay shutdown", "err", err)
	}
	if err := st.Close(); err != nil {
		log.Warn("closing the store", "err", err)
	}
	log.Info("stopped")
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	return nil
}

func healthcheck(o *options, stderr io.Writer) int {
	host, port, err := net.SplitHostPort(o.adminAddr)
	if err != nil {
		fmt.Fprintf(stderr, "healthcheck: -admin-addr %q: %v\n", o.adminAddr, err)
		return 1
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + net.JoinHostPort(host, port) + "/readyz")
	if err != nil {
		fmt.Fprintf(stderr, "healthcheck: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body) // only the status matters
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "healthcheck: /readyz answered %s\n", resp.Status)
		return 1
	}
	return 0
}
