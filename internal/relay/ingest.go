package relay

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store"
	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

// IngestPathPrefix is the path of the ingest endpoint, followed by the path token.
const IngestPathPrefix = "/callbacks/v1/thingspace/"

// IngestHandler serves POST /callbacks/v1/thingspace/{pathToken}, the URL registered with
// ThingSpace.
func (r *Relay) IngestHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+IngestPathPrefix+"{token}", r.serveIngest)
	return mux
}

// ctEqual compares two secrets in constant time (hashing first, so lengths leak nothing either).
func ctEqual(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

func (r *Relay) pathTokenOK(tok string) bool {
	ok := 0
	for _, t := range r.cfg.PathTokens {
		if ctEqual(tok, t) {
			ok = 1
		}
	}
	return ok == 1
}

// matchCredential returns the account label of the pair matching user and password.
func (r *Relay) matchCredential(user, pass string) (string, bool) {
	account, found := "", false
	for _, c := range r.cfg.Credentials {
		// Both compared every time: no early exit on a wrong user name.
		u, p := ctEqual(user, c.Username), ctEqual(pass, c.Password)
		if u && p && !found {
			account, found = c.Account, true
		}
	}
	return account, found
}

func (r *Relay) sourceAllowed(req *http.Request) bool {
	if len(r.cfg.AllowCIDRs) == 0 {
		return true
	}
	host, _, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		host = req.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	for _, p := range r.cfg.AllowCIDRs {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

type ingestAnswer struct {
	Result string `json:"result"`
	Seq    int64  `json:"seq,omitempty"`
	Error  string `json:"error,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error":"encoding the answer failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

func (r *Relay) serveIngest(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	result := "stored"
	defer func() {
		r.m.callbacks.WithLabelValues(result).Inc()
		r.m.ingestDuration.Observe(time.Since(start).Seconds())
	}()
	remote := req.RemoteAddr
	// The path token and the source address are checked before a byte of the body is read.
	if !r.sourceAllowed(req) {
		result = "forbidden"
		r.log.Warn("ingest refused: source address not allowed", "remote", remote)
		writeJSON(w, http.StatusForbidden, ingestAnswer{Result: "forbidden"})
		return
	}
	if !r.pathTokenOK(req.PathValue("token")) {
		result = "unauthorized"
		r.log.Warn("ingest refused: wrong path token", "remote", remote)
		writeJSON(w, http.StatusUnauthorized, ingestAnswer{Result: "unauthorized"})
		return
	}
	if !r.beginIngest() {
		result = "draining"
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, ingestAnswer{Result: "unavailable", Error: "shutting down"})
		return
	}
	defer r.inflight.Done()
	if req.ContentLength > r.cfg.MaxBodyBytes {
		result = "too_large"
		writeJSON(w, http.StatusRequestEntityTooLarge, ingestAnswer{Result: "too_large"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, r.cfg.MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			result = "too_large"
			writeJSON(w, http.StatusRequestEntityTooLarge, ingestAnswer{Result: "too_large"})
			return
		}
		result = "read_error"
		writeJSON(w, http.StatusBadRequest, ingestAnswer{Result: "bad_request", Error: "reading the body failed"})
		return
	}
	received := time.Now().UTC()
	basicUser, basicPass, hasBasic := req.BasicAuth()

	p, jerr := prepareBody(body, r.cfg.RedactFields)
	isObject := false
	if jerr == nil {
		_, isObject = p.value.(map[string]any)
	}

	// Authentication. A JSON object carries the credentials in its body (as ThingSpace sends
	// them) or in Basic auth. Anything else can only be authenticated by the path token, and
	// by Basic auth when it is sent.
	account := ""
	if len(r.cfg.Credentials) > 0 {
		ok := false
		if isObject && p.hasCreds {
			account, ok = r.matchCredential(p.username, p.password)
		}
		if !ok && hasBasic {
			account, ok = r.matchCredential(basicUser, basicPass)
		}
		if !ok && !isObject && !hasBasic {
			ok = true // not a JSON object, no Basic auth: the path token authenticated it
		}
		if !ok {
			result = "unauthorized"
			r.log.Warn("ingest refused: wrong callback credentials", "remote", remote,
				"body_credentials", isObject && p.hasCreds, "basic_auth", hasBasic)
			writeJSON(w, http.StatusUnauthorized, ingestAnswer{Result: "unauthorized"})
			return
		}
	}

	var cb *tsapi.Callback
	reason := ""
	switch {
	case jerr != nil:
		reason = "not JSON"
	case !isObject:
		reason = "not a JSON object"
	default:
		var perr error
		cb, perr = tsapi.ParseCallback(body)
		switch {
		case errors.Is(perr, tsapi.ErrNotCallback):
			reason = "no requestId"
		case perr != nil:
			reason = "not a callback: " + perr.Error()
		}
	}
	if cb == nil {
		result = "quarantined"
		q := store.Quarantined{ReceivedAt: received, Account: account, Reason: reason}
		// No credential may reach the store, whatever the body's shape: the configured ones, the
		// Basic-auth password and the body's own top-level password are removed wherever they
		// appear, and so is any value that looks like a password, before hashing and storing.
		var decoded *preparedBody
		var sent []string
		if hasBasic {
			sent = append(sent, basicPass)
		}
		if jerr == nil {
			decoded = p
			if p.hasCreds {
				sent = append(sent, p.password)
			}
		}
		stored, ok := newSecretSet(r.cfg.Credentials, sent...).quarantineForm(body, decoded)
		if !ok {
			stored = nil
			q.Reason += " (body withheld: a credential could not be removed from it)"
		}
		sum := sha256.Sum256(stored)
		q.Body, q.ContentHash = stored, hex.EncodeToString(sum[:])
		ctx, cancel := context.WithTimeout(context.Background(), r.cfg.StoreTimeout)
		qstart := time.Now()
		err := r.st.Quarantine(ctx, q)
		cancel()
		r.m.storeDuration.WithLabelValues("quarantine").Observe(time.Since(qstart).Seconds())
		if err != nil {
			result = "store_error"
			r.log.Error("quarantine failed", "err", err, "remote", remote)
			w.Header().Set("Retry-After", "5")
			writeJSON(w, http.StatusServiceUnavailable, ingestAnswer{Result: "unavailable", Error: "store unavailable"})
			return
		}
		r.log.Info("ingest quarantined", "reason", reason, "account", account, "remote", remote, "bytes", len(body))
		writeJSON(w, http.StatusAccepted, ingestAnswer{Result: "quarantined"})
		return
	}

	action := r.lookupAction(req.Context(), cb.RequestID)
	status, _ := cb.Outcome(tsapi.Action(action))
	var keys []store.DeviceKey
	for _, id := range cb.Identifiers() {
		k := store.DeviceKey{Kind: tsapi.NormalizeKind(id.Kind), ID: id.ID}
		if k.ID == "" {
			continue
		}
		dup := false
		for _, e := range keys {
			if e == k {
				dup = true
				break
			}
		}
		if !dup {
			keys = append(keys, k)
		}
	}
	res, err := r.batch.append(store.Callback{
		RequestID:   cb.RequestID,
		Account:     account,
		ReceivedAt:  received,
		Status:      string(status),
		Terminal:    status.Terminal(),
		ContentHash: p.hash,
		Devices:     keys,
		Body:        p.stored, // redacted: what is forwarded too (see cmd/thingspace-relay/README.md, Forwarding)
		Forward:     r.fwd != nil,
	})
	if err != nil {
		result = "store_error"
		if errors.Is(err, errDraining) {
			result = "draining"
		} else {
			r.log.Error("storing a callback failed", "err", err, "request_id", cb.RequestID)
		}
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, ingestAnswer{Result: "unavailable", Error: "store unavailable"})
		return
	}
	if res.Duplicate {
		result = "duplicate"
		r.log.Debug("ingest duplicate", "request_id", cb.RequestID, "seq", res.Seq, "callback_count", int(cb.CallbackCount))
		writeJSON(w, http.StatusOK, ingestAnswer{Result: "duplicate", Seq: res.Seq})
		return
	}
	if cb.CallbackCount > 0 {
		r.m.carrierAttempt.Observe(float64(cb.CallbackCount))
	}
	r.log.Debug("ingest stored", "request_id", cb.RequestID, "seq", res.Seq, "status", string(status),
		"terminal", status.Terminal(), "account", account)
	writeJSON(w, http.StatusOK, ingestAnswer{Result: "stored", Seq: res.Seq})
}
