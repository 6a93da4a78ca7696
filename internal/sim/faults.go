package sim

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Fault names accepted by -faults, PUT /sim/v1/faults and SetFaults. Rates are probabilities in
// [0, 1]; the draw for each (fault, key, attempt) is a hash of the seed, so the same run makes the
// same decisions and a retry (a higher attempt) draws again.
const (
	FaultRateLimit      = "429"             // synchronous 429 with Retry-After, request not applied
	FaultServerError    = "5xx"             // synchronous 500, request not applied
	FaultServerAfter    = "5xx-after"       // action accepted and applied, then answered 500
	FaultWarning        = "warning"         // a "warning" callback before the final one
	FaultFail           = "fail"            // the device fails (failure callback, nothing applied)
	FaultDup            = "dup"             // a callback attempt is delivered twice
	FaultDrop           = "drop"            // a callback attempt is not delivered (counts as failed)
	FaultOffline        = "offline"         // the device is unreachable for this attempt
	FaultKindCase       = "kind-case"       // callbacks spell kinds in lower case ("eid") instead of "Eid"
	FaultStatusCase     = "status-case"     // callbacks say "Success" instead of "SUCCESS"
	FaultNoDevices      = "fault-nodevices" // failure callbacks carry no deviceIds
	FaultInline         = "fault-inline"    // failures reported inside deviceProfileResponse
	FaultEnableFailed   = "enable-failed"   // download_enable "succeeds" but profileStatus says the enable failed
	FaultSessionExpiry  = "session-expiry"  // duration: sessions expire this long after login
	FaultTokenExpiry    = "token-expiry"    // duration: OAuth tokens live this long instead of 1 h
	FaultRetryAfter     = "retry-after"     // duration: Retry-After of the 429 fault (default 1s)
	defaultRetryAfter   = time.Second
	maxCallbackAttempts = 4
)

var rateFaults = map[string]bool{
	FaultRateLimit: true, FaultServerError: true, FaultServerAfter: true, FaultWarning: true,
	FaultFail: true, FaultDup: true, FaultDrop: true, FaultOffline: true, FaultKindCase: true,
	FaultStatusCase: true, FaultNoDevices: true, FaultInline: true, FaultEnableFailed: true,
}

var durationFaults = map[string]bool{
	FaultSessionExpiry: true, FaultTokenExpiry: true, FaultRetryAfter: true,
}

// faultSet is a parsed fault specification.
type faultSet struct {
	rates     map[string]float64
	durations map[string]time.Duration
	spec      string
}

// parseFaults parses "429=0.05,5xx=0.02,session-expiry=60s". An empty string means no faults.
func parseFaults(spec string) (faultSet, error) {
	fs := faultSet{rates: map[string]float64{}, durations: map[string]time.Duration{}}
	for part := range strings.SplitSeq(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, val, ok := strings.Cut(part, "=")
		name, val = strings.ToLower(strings.TrimSpace(name)), strings.TrimSpace(val)
		if !ok || val == "" {
			return faultSet{}, fmt.Errorf("fault %q: want name=value", part)
		}
		switch {
		case rateFaults[name]:
			r, err := strconv.ParseFloat(val, 64)
			if err != nil || math.IsNaN(r) || r < 0 || r > 1 {
				return faultSet{}, fmt.Errorf("fault %s: rate %q is not a number in [0,1]", name, val)
			}
			fs.rates[name] = r
		case durationFaults[name]:
			d, err := time.ParseDuration(val)
			if err != nil || d < 0 {
				return faultSet{}, fmt.Errorf("fault %s: %q is not a duration", name, val)
			}
			fs.durations[name] = d
		default:
			return faultSet{}, fmt.Errorf("unknown fault %q (known: %s)", name, strings.Join(knownFaults(), ", "))
		}
	}
	fs.spec = fs.String()
	return fs, nil
}

func knownFaults() []string {
	var out []string
	for k := range rateFaults {
		out = append(out, k)
	}
	for k := range durationFaults {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// String renders the set in the flag syntax, sorted by name.
func (fs faultSet) String() string {
	var parts []string
	for k, v := range fs.rates {
		parts = append(parts, k+"="+strconv.FormatFloat(v, 'g', -1, 64))
	}
	for k, v := range fs.durations {
		parts = append(parts, k+"="+v.String())
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// draw reports whether fault name fires for (key, attempt): a hash of (seed, name, key,
// attempt) mapped onto [0,1) and compared with the rate. No shared RNG, so concurrent requests
// cannot change each other's draws.
func draw(seed int64, rate float64, name, key string, attempt int) bool {
	if rate <= 0 {
		return false
	}
	if rate >= 1 {
		return true
	}
	return unitHash(seed, name, key, attempt) < rate
}

// unitHash maps (seed, name, key, n) onto [0,1).
func unitHash(seed int64, name, key string, n int) float64 {
	h := fnv.New64a()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(seed))
	h.Write(b[:])
	h.Write([]byte(name))
	h.Write([]byte{0})
	h.Write([]byte(key))
	binary.LittleEndian.PutUint64(b[:], uint64(n))
	h.Write(b[:])
	return float64(mix64(h.Sum64())>>11) / (1 << 53)
}

// mix64 is the splitmix64 finaliser: it spreads FNV's weak low bits.
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// fired counts an injected fault when hit, and returns hit.
func (s *Simulator) fired(name string, hit bool) bool {
	if hit {
		s.faultMu.Lock()
		if s.faultHits == nil {
			s.faultHits = map[string]int64{}
		}
		s.faultHits[name]++
		s.faultMu.Unlock()
	}
	return hit
}

// faultsFired returns a copy of the counts of injected faults.
func (s *Simulator) faultsFired() map[string]int64 {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	out := make(map[string]int64, len(s.faultHits))
	for k, v := range s.faultHits {
		out[k] = v
	}
	return out
}
