package relay

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store"
	"github.com/fleetform/terraform-provider-thingspace/internal/relayapi"
	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

// Long-poll limits.
const (
	DefaultLimit = 1000
	MaxLimit     = 10000
	// maxRegistrationBytes caps a PUT body: 10,000 devices with a few identifiers each.
	maxRegistrationBytes = 16 << 20
)

// APIHandler serves the provider-facing API. Every endpoint needs a bearer token.
func (r *Relay) APIHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/requests/{id}", r.auth(r.getRequest))
	mux.HandleFunc("PUT /v1/requests/{id}", r.auth(r.putRequest))
	mux.HandleFunc("GET /v1/requests/{id}/callbacks", r.auth(r.getCallbacks))
	mux.HandleFunc("GET /v1/devices/{key}/requests", r.auth(r.getDeviceRequests))
	mux.HandleFunc("GET /v1/devices/{key}", r.auth(r.getDevice))
	mux.HandleFunc("POST /v1/devices/lookup", r.auth(r.postLookup))
	mux.HandleFunc("PUT /v1/intents/{id}", r.auth(r.putIntent))
	mux.HandleFunc("PATCH /v1/intents/{id}", r.auth(r.patchIntent))
	mux.HandleFunc("GET /v1/intents/{id}", r.auth(r.getIntent))
	mux.HandleFunc("GET /v1/info", r.auth(r.getInfo))
	return mux
}

type apiFunc func(w http.ResponseWriter, req *http.Request, accounts []string)

// auth checks the bearer token and passes its account scope (nil: every account).
func (r *Relay) auth(h apiFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		h2 := req.Header.Get("Authorization")
		tok, ok := strings.CutPrefix(h2, "Bearer ")
		if !ok {
			tok, ok = strings.CutPrefix(h2, "bearer ")
		}
		var scope []string
		found := false
		if ok && tok != "" {
			for _, t := range r.cfg.APITokens {
				if ctEqual(tok, t.Token) && !found {
					scope, found = t.Accounts, true
				}
			}
		}
		if !found {
			w.Header().Set("WWW-Authenticate", `Bearer realm="thingspace-relay"`)
			writeJSON(w, http.StatusUnauthorized, relayapi.ErrorBody{Error: "missing or wrong bearer token"})
			return
		}
		h(w, req, scope)
	}
}

func (r *Relay) storeUnavailable(w http.ResponseWriter, op string, err error) {
	r.log.Error("store operation failed", "op", op, "err", err)
	w.Header().Set("Retry-After", "1")
	writeJSON(w, http.StatusServiceUnavailable, relayapi.ErrorBody{Error: "store unavailable"})
}

// request reads a request's summary; ErrNotFound becomes an "unknown" summary.
func (r *Relay) request(ctx context.Context, id string, accounts []string) (*store.Request, error) {
	start := time.Now()
	rq, err := r.st.Request(ctx, id, accounts)
	r.m.storeDuration.WithLabelValues("request").Observe(time.Since(start).Seconds())
	if errors.Is(err, store.ErrNotFound) {
		return &store.Request{RequestID: id, State: store.StateUnknown}, nil
	}
	return rq, err
}

// summarizer is implemented by stores that can read a request's summary without its devices
// (sqlite.Store.RequestSummary).
type summarizer interface {
	RequestSummary(ctx context.Context, requestID string, accounts []string) (*store.Request, error)
}

// summary is request without the devices when the store can skip them.
func (r *Relay) summary(ctx context.Context, id string, accounts []string) (*store.Request, error) {
	sm, ok := r.st.(summarizer)
	if !ok {
		return r.request(ctx, id, accounts)
	}
	start := time.Now()
	rq, err := sm.RequestSummary(ctx, id, accounts)
	r.m.storeDuration.WithLabelValues("request").Observe(time.Since(start).Seconds())
	if errors.Is(err, store.ErrNotFound) {
		return &store.Request{RequestID: id, State: store.StateUnknown}, nil
	}
	return rq, err
}

func toRequestSummary(rq *store.Request) relayapi.RequestSummary {
	out := relayapi.RequestSummary{
		RequestID: rq.RequestID, Account: rq.Account, Action: rq.Action, State: rq.State,
		Expected: rq.Expected, TerminalCount: rq.TerminalCount, LastSeq: rq.LastSeq,
		Devices: make([]relayapi.RequestDevice, len(rq.Devices)),
	}
	for i, d := range rq.Devices {
		out.Devices[i] = relayapi.RequestDevice{IDs: wireIDs(d.IDs), Status: d.Status, Terminal: d.Terminal}
	}
	return out
}

func (r *Relay) getRequest(w http.ResponseWriter, req *http.Request, accounts []string) {
	id := req.PathValue("id")
	rq, err := r.request(req.Context(), id, accounts)
	switch {
	case errors.Is(err, store.ErrGone):
		writeJSON(w, http.StatusGone, relayapi.ErrorBody{Error: "request purged by retention"})
		return
	case err != nil:
		r.storeUnavailable(w, "request", err)
		return
	}
	w.Header().Set("X-Relay-Index", strconv.FormatInt(rq.LastSeq, 10))
	writeJSON(w, http.StatusOK, toRequestSummary(rq))
}

func (r *Relay) putRequest(w http.ResponseWriter, req *http.Request, accounts []string) {
	id := req.PathValue("id")
	var body relayapi.Registration
	dec := json.NewDecoder(http.MaxBytesReader(w, req.Body, maxRegistrationBytes))
	if err := dec.Decode(&body); err != nil {
		writeJSON(w, http.StatusBadRequest, relayapi.ErrorBody{Error: "invalid registration body: " + err.Error()})
		return
	}
	devices := storeDevices(body.Devices)
	if strings.TrimSpace(id) == "" {
		writeJSON(w, http.StatusBadRequest, relayapi.ErrorBody{Error: "empty request id"})
		return
	}
	if len(devices) == 0 {
		writeJSON(w, http.StatusBadRequest, relayapi.ErrorBody{Error: "a registration needs at least one device"})
		return
	}
	for i, d := range devices {
		ok := false
		for j := range d {
			d[j].Kind = tsapi.NormalizeKind(d[j].Kind)
			if d[j].Kind == "" {
				writeJSON(w, http.StatusBadRequest, relayapi.ErrorBody{Error: "device " + strconv.Itoa(i) + ": identifier without kind"})
				return
			}
			if d[j].ID != "" {
				ok = true
			}
		}
		if !ok {
			writeJSON(w, http.StatusBadRequest, relayapi.ErrorBody{Error: "device " + strconv.Itoa(i) + " has no identifier"})
			return
		}
	}
	if len(accounts) > 0 && !slices.Contains(accounts, body.Account) {
		writeJSON(w, http.StatusForbidden, relayapi.ErrorBody{Error: "this token may not register requests of account " + strconv.Quote(body.Account)})
		return
	}
	if len(accounts) > 0 {
		// Callbacks authenticated by another account's credentials may have created the request
		// already: registering it would hand that account's callbacks to this token.
		rq, err := r.summary(req.Context(), id, nil)
		switch {
		case errors.Is(err, store.ErrGone):
		case err != nil:
			r.storeUnavailable(w, "request", err)
			return
		case rq.State != store.StateUnknown && rq.Account != "" && !slices.Contains(accounts, rq.Account):
			writeJSON(w, http.StatusForbidden, relayapi.ErrorBody{Error: "request " + strconv.Quote(id) + " belongs to an account this token may not see"})
			return
		}
	}
	start := time.Now()
	err := r.st.Register(req.Context(), store.Registration{
		RequestID: id, Account: body.Account, Action: body.Action, Devices: devices, CreatedAt: time.Now().UTC(),
	})
	r.m.storeDuration.WithLabelValues("register").Observe(time.Since(start).Seconds())
	switch {
	case errors.Is(err, store.ErrConflict):
		writeJSON(w, http.StatusConflict, relayapi.ErrorBody{Error: "request " + strconv.Quote(id) + " is registered with another account, action or devices"})
		return
	case err != nil:
		r.storeUnavailable(w, "register", err)
		return
	}
	r.actions.put(id, body.Action, true)
	r.hub.notify(id) // the registration may have made the request terminal
	rq, err := r.request(req.Context(), id, accounts)
	if err != nil {
		r.storeUnavailable(w, "request", err)
		return
	}
	w.Header().Set("X-Relay-Index", strconv.FormatInt(rq.LastSeq, 10))
	writeJSON(w, http.StatusOK, toRequestSummary(rq))
}

// parseWait accepts a Go duration ("30s", "2m") or a number of seconds.
func parseWait(s string) (time.Duration, error) {
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		if n < 0 {
			return 0, errors.New("negative wait")
		}
		return time.Duration(n * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, errors.New("wait must be a duration like 30s")
	}
	return d, nil
}

// getCallbacks is the long-poll, with Consul blocking-query semantics: it answers at once when
// callbacks with seq > after exist (or when after is beyond the request's last seq, so that a
// client of a reset store starts over), and otherwise blocks until one is committed, the wait
// (capped by MaxWait, plus up to wait/16 of jitter) passes, or the relay shuts down.
func (r *Relay) getCallbacks(w http.ResponseWriter, req *http.Request, accounts []string) {
	id := req.PathValue("id")
	q := req.URL.Query()
	var after int64
	if s := q.Get("after"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			writeJSON(w, http.StatusBadRequest, relayapi.ErrorBody{Error: "after must be a sequence number >= 0"})
			return
		}
		after = n
	}
	wait := r.cfg.DefaultWait
	if s := q.Get("wait"); s != "" {
		d, err := parseWait(s)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, relayapi.ErrorBody{Error: err.Error()})
			return
		}
		wait = d
	}
	wait = min(wait, r.cfg.MaxWait)
	if wait > 0 {
		wait += time.Duration(rand.Int64N(int64(wait/16) + 1))
	}
	limit := DefaultLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			writeJSON(w, http.StatusBadRequest, relayapi.ErrorBody{Error: "limit must be a positive integer"})
			return
		}
		limit = min(n, MaxLimit)
	}

	ctx := req.Context()
	start := time.Now()
	outcome := "data"
	defer func() { r.m.waitDuration.WithLabelValues(outcome).Observe(time.Since(start).Seconds()) }()

	gone := func() {
		outcome = "gone"
		writeJSON(w, http.StatusGone, relayapi.ErrorBody{Error: "request purged by retention; read again from after=0"})
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	waiting := false
	defer func() {
		if waiting {
			r.m.waiters.Dec()
		}
	}()
	for first := true; ; first = false {
		// Watch before querying: a commit between the query and the wait still wakes us.
		ch, release := r.hub.watch(id)
		cstart := time.Now()
		cbs, err := r.st.Callbacks(ctx, id, after, limit)
		r.m.storeDuration.WithLabelValues("callbacks").Observe(time.Since(cstart).Seconds())
		if errors.Is(err, store.ErrGone) {
			release()
			gone()
			return
		}
		if err != nil {
			release()
			outcome = "error"
			r.storeUnavailable(w, "callbacks", err)
			return
		}
		if len(cbs) > 0 || first {
			// The summary: state, last seq, and whether this token may see the request at all.
			rq, err := r.summary(ctx, id, accounts)
			switch {
			case errors.Is(err, store.ErrGone):
				release()
				gone()
				return
			case err != nil:
				release()
				outcome = "error"
				r.storeUnavailable(w, "request", err)
				return
			}
			visible := rq.State != store.StateUnknown
			switch {
			case len(cbs) > 0 && visible:
				release()
				r.answerCallbacks(w, rq, cbs, cbs[len(cbs)-1].Seq)
				return
			case after > rq.LastSeq:
				// The index went backwards (a restored store): answer at once with the lower
				// index, so that the client starts over (Consul's rule).
				release()
				r.answerCallbacks(w, rq, nil, rq.LastSeq)
				return
			}
		}
		if r.Draining() {
			outcome = "shutdown"
		} else {
			if !waiting {
				waiting = true
				r.m.waiters.Inc()
			}
			// Safety net: re-query periodically even without a wake-up (lost hints).
			poll := time.NewTimer(r.cfg.PollInterval + time.Duration(rand.Int64N(int64(r.cfg.PollInterval/4)+1)))
			select {
			case <-ch:
			case <-poll.C:
			case <-deadline.C:
				outcome = "timeout"
			case <-r.shutdown:
				outcome = "shutdown"
			case <-ctx.Done():
				outcome = "canceled"
			}
			poll.Stop()
		}
		release()
		switch outcome {
		case "canceled":
			return
		case "timeout", "shutdown":
			final, err := r.summary(context.WithoutCancel(ctx), id, accounts)
			switch {
			case errors.Is(err, store.ErrGone):
				gone()
			case err != nil:
				r.storeUnavailable(w, "request", err)
			default:
				r.answerCallbacks(w, final, nil, after)
			}
			return
		}
	}
}

func (r *Relay) answerCallbacks(w http.ResponseWriter, rq *store.Request, cbs []store.Callback, next int64) {
	out := relayapi.CallbackPage{Callbacks: make([]relayapi.Callback, 0, len(cbs)), State: rq.State, NextAfter: next}
	for _, c := range cbs {
		body := json.RawMessage(c.Body)
		if !json.Valid(body) {
			b, _ := json.Marshal(string(c.Body))
			body = b
		}
		out.Callbacks = append(out.Callbacks, relayapi.Callback{
			Seq: c.Seq, ReceivedAt: c.ReceivedAt.UTC(), Status: c.Status, Terminal: c.Terminal, Body: body,
		})
	}
	index := max(rq.LastSeq, next)
	w.Header().Set("X-Relay-Index", strconv.FormatInt(index, 10))
	writeJSON(w, http.StatusOK, out)
}

func (r *Relay) getDeviceRequests(w http.ResponseWriter, req *http.Request, accounts []string) {
	kind, id, ok := strings.Cut(req.PathValue("key"), ":")
	if !ok || kind == "" || id == "" {
		writeJSON(w, http.StatusBadRequest, relayapi.ErrorBody{Error: "device must be kind:id, e.g. eid:8904..."})
		return
	}
	open := false
	if s := req.URL.Query().Get("open"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, relayapi.ErrorBody{Error: "open must be true or false"})
			return
		}
		open = b
	}
	start := time.Now()
	refs, err := r.st.DeviceRequests(req.Context(), store.DeviceKey{Kind: tsapi.NormalizeKind(kind), ID: id}, open, accounts)
	r.m.storeDuration.WithLabelValues("device_requests").Observe(time.Since(start).Seconds())
	if err != nil {
		r.storeUnavailable(w, "device_requests", err)
		return
	}
	out := relayapi.DeviceRequests{Requests: make([]relayapi.RequestRef, 0, len(refs))}
	for _, f := range refs {
		out.Requests = append(out.Requests, relayapi.RequestRef(f))
	}
	writeJSON(w, http.StatusOK, out)
}

// URLHash is the lowercase hex SHA-256 of a public ingest URL, byte for byte, as /v1/info
// reports it.
func URLHash(u string) string {
	sum := sha256.Sum256([]byte(u))
	return hex.EncodeToString(sum[:])
}

func (r *Relay) getInfo(w http.ResponseWriter, req *http.Request, _ []string) {
	out := relayapi.Info{Version: r.cfg.Version, IngestURLSHA256: []string{}}
	for _, u := range r.cfg.PublicURLs {
		out.IngestURLSHA256 = append(out.IngestURLSHA256, URLHash(u))
	}
	writeJSON(w, http.StatusOK, out)
}

// AdminHandler serves /livez, /readyz (and its alias /healthz), /metrics and /version.
func (r *Relay) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	ready := func(w http.ResponseWriter, req *http.Request) {
		if r.Draining() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "draining"})
			return
		}
		ctx, cancel := context.WithTimeout(req.Context(), 2*time.Second)
		defer cancel()
		start := time.Now()
		err := r.st.Ping(ctx)
		r.m.storeDuration.WithLabelValues("ping").Observe(time.Since(start).Seconds())
		if err != nil {
			r.log.Warn("readiness: store ping failed", "err", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "store unavailable"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}
	mux.HandleFunc("GET /readyz", ready)
	mux.HandleFunc("GET /healthz", ready)
	mux.Handle("GET /metrics", promhttpHandler(r.m))
	mux.HandleFunc("GET /version", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"version": r.cfg.Version, "go": goVersion()})
	})
	return mux
}
