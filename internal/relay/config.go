package relay

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/relay/forward"
	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store"
)

// Version is the relay's version, set at build time (-ldflags "-X .../internal/relay.Version=v1.2.3").
var Version = "dev"

// Credential is one pair of callback credentials, as registered with ThingSpace. Account labels
// the callbacks it authenticates (the label API tokens are scoped to); "" means none.
type Credential struct {
	Username string
	Password string
	Account  string
}

// APIToken is one bearer token of the provider-facing API. A token with Accounts sees and
// registers only requests of those accounts; one without sees everything.
type APIToken struct {
	Token    string
	Accounts []string
}

// Config configures a Relay. Store and PathTokens are required; everything else has a default.
type Config struct {
	// Store is where callbacks are kept. The caller opens and closes it.
	Store store.Store
	// PathTokens are the secret path segments of the ingest URL (several for rotation).
	PathTokens []string
	// Credentials are the callback credentials accepted, in the body (as ThingSpace sends them)
	// or as Basic auth. Empty: the path token alone authenticates.
	Credentials []Credential
	// APITokens are the bearer tokens of the API. Empty: every API call gets 401.
	APITokens []APIToken
	// PublicURLs are the ingest URLs registered with ThingSpace; /v1/info answers their SHA-256.
	PublicURLs []string
	// MaxBodyBytes caps an ingest body (default 1 MiB); larger ones get 413.
	MaxBodyBytes int64
	// MaxWait caps a long-poll's wait (default 5m).
	MaxWait time.Duration
	// DefaultWait is a long-poll's wait when the client gives none (default 30s, capped by MaxWait).
	DefaultWait time.Duration
	// PollInterval is how often a waiting long-poll re-queries the store as a safety net
	// (default 1s, with jitter).
	PollInterval time.Duration
	// Logger receives JSON-able structured logs. Default: discard.
	Logger *slog.Logger
	// AllowCIDRs, when non-empty, restricts ingest to these source addresses (403 otherwise).
	AllowCIDRs []netip.Prefix
	// RedactFields are removed at any depth before hashing and storing (default
	// DefaultRedactFields). The top-level username and password are always removed.
	RedactFields []string
	// MaxBatch caps the callbacks committed in one transaction (default 512).
	MaxBatch int
	// StoreTimeout bounds one store operation of an ingest (default 10s); past it, 503.
	StoreTimeout time.Duration
	// Retention, when positive, purges requests not updated for that long (checked every
	// PurgeInterval, default 10m).
	Retention     time.Duration
	PurgeInterval time.Duration
	// Version is reported by /version and /v1/info (default Version).
	Version string
	// Forward, when Forward.URL is set, queues every new callback in the store's outbox in the
	// transaction that stores it, and delivers the outbox to that URL (at least once, in the
	// background, surviving restarts): an account's existing platform keeps receiving its
	// callbacks although ThingSpace sends them to the relay. Logger and UserAgent default to
	// the relay's.
	Forward forward.Config
}

func (c *Config) setDefaults() error {
	if c.Store == nil {
		return errors.New("relay: Config.Store is required")
	}
	if len(c.PathTokens) == 0 {
		return errors.New("relay: at least one path token is required")
	}
	for _, t := range c.PathTokens {
		if t == "" || strings.Contains(t, "/") {
			return fmt.Errorf("relay: invalid path token (empty or containing '/')")
		}
	}
	for _, t := range c.APITokens {
		if t.Token == "" {
			return errors.New("relay: empty API token")
		}
	}
	for _, cr := range c.Credentials {
		if cr.Username == "" && cr.Password == "" {
			return errors.New("relay: empty callback credentials")
		}
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.MaxWait <= 0 {
		c.MaxWait = 5 * time.Minute
	}
	if c.DefaultWait <= 0 {
		c.DefaultWait = 30 * time.Second
	}
	if c.DefaultWait > c.MaxWait {
		c.DefaultWait = c.MaxWait
	}
	if c.PollInterval <= 0 {
		c.PollInterval = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.RedactFields == nil {
		c.RedactFields = DefaultRedactFields
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 512
	}
	if c.StoreTimeout <= 0 {
		c.StoreTimeout = 10 * time.Second
	}
	if c.PurgeInterval <= 0 {
		c.PurgeInterval = 10 * time.Minute
	}
	if c.Version == "" {
		c.Version = Version
	}
	return nil
}

// ParseAPIToken parses "token" or "token=account1,account2".
func ParseAPIToken(s string) (APIToken, error) {
	tok, accts, scoped := strings.Cut(s, "=")
	if tok == "" {
		return APIToken{}, errors.New("empty API token")
	}
	t := APIToken{Token: tok}
	if scoped {
		for _, a := range strings.Split(accts, ",") {
			if a = strings.TrimSpace(a); a != "" {
				t.Accounts = append(t.Accounts, a)
			}
		}
		if len(t.Accounts) == 0 {
			return APIToken{}, errors.New("API token scoped to no account (\"token=\" with an empty list)")
		}
	}
	return t, nil
}

// credentialLabelSep separates the optional account label in a credential spec.
const credentialLabelSep = ";account="

// ParseCredential parses "user:password" or "user:password;account=LABEL". The user name ends at
// the first ':'; the label, when present, starts after the last ";account=".
func ParseCredential(s string) (Credential, error) {
	var c Credential
	if i := strings.LastIndex(s, credentialLabelSep); i >= 0 {
		c.Account = s[i+len(credentialLabelSep):]
		s = s[:i]
		if c.Account == "" {
			return Credential{}, errors.New("empty account label after \";account=\"")
		}
	}
	u, p, ok := strings.Cut(s, ":")
	if !ok {
		return Credential{}, errors.New("callback credentials must be user:password[;account=LABEL]")
	}
	if u == "" && p == "" {
		return Credential{}, errors.New("empty callback credentials")
	}
	c.Username, c.Password = u, p
	return c, nil
}
