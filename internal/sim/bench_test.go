package sim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

// benchClient logs in to a started simulator and returns a function that posts a JSON body.
func benchClient(b *testing.B, s *Simulator, base string) func(path string, body []byte) (int, []byte) {
	b.Helper()
	req, _ := http.NewRequest("POST", base+"/api/ts/v1/oauth2/token", strings.NewReader("grant_type=client_credentials"))
	req.SetBasicAuth(s.opts.ClientID, s.opts.ClientSecret)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	var tr tsapi.TokenResponse
	json.NewDecoder(resp.Body).Decode(&tr)
	resp.Body.Close()
	post := func(path string, body []byte, session string) (int, []byte) {
		req, _ := http.NewRequest("POST", base+path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tr.AccessToken)
		req.Header.Set("Content-Type", "application/json")
		if session != "" {
			req.Header.Set("VZ-M2M-Token", session)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, out
	}
	code, out := post("/api/m2m/v1/session/login", []byte(`{"username":"`+s.opts.Username+`","password":"`+s.opts.Password+`"}`), "")
	if code != 200 {
		b.Fatalf("login %d %s", code, out)
	}
	var lr tsapi.LoginResponse
	json.Unmarshal(out, &lr)
	return func(path string, body []byte) (int, []byte) { return post(path, body, lr.SessionToken) }
}

// BenchmarkBulkActivate10k: one activate of 10,000 devices. Reports how long the POST took to
// answer (answer-ms) and the rate at which the 10,000 callbacks reached a local listener
// (callbacks/s, from the answer to the last acknowledged callback).
func BenchmarkBulkActivate10k(b *testing.B) {
	const n = 10000
	var got atomic.Int64
	done := make(chan struct{}, 1)
	lis := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if got.Add(1) == n {
			done <- struct{}{}
		}
	}))
	defer lis.Close()
	o := DefaultOptions()
	o.Addr = "127.0.0.1:0"
	o.Devices = n
	o.CallbackDelayMin, o.CallbackDelayMax = 0, 0
	s, err := New(o)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	base, err := s.Start()
	if err != nil {
		b.Fatal(err)
	}
	post := benchClient(b, s, base)
	reg, _ := json.Marshal(tsapi.RegisterCallbackRequest{Name: "DeviceProfileService", URL: lis.URL, Username: "u", Password: "p"})
	if code, out := post("/api/m2m/v1/callbacks/"+o.Account, reg); code != 200 {
		b.Fatalf("register %d %s", code, out)
	}
	var answer, deliver time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		s.Reset(false)
		got.Store(0)
		req := tsapi.ProfileRequest{AccountName: o.Account, ServicePlan: "M2M4GB", Devices: make([]tsapi.DeviceEntry, 0, n)}
		for _, d := range s.Devices() {
			req.Devices = append(req.Devices, ids("eid", d.EID, "iccid", d.ICCID, "imei", d.IMEI))
		}
		body, _ := json.Marshal(req)
		b.StartTimer()
		t0 := time.Now()
		code, out := post("/api/m2m/v1/devices/profile/actions/activate", body)
		t1 := time.Now()
		if code != 200 {
			b.Fatalf("activate %d %s", code, out)
		}
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			b.Fatalf("only %d of %d callbacks arrived", got.Load(), n)
		}
		answer += t1.Sub(t0)
		deliver += time.Since(t1)
	}
	b.ReportMetric(float64(answer.Milliseconds())/float64(b.N), "answer-ms")
	b.ReportMetric(float64(n*b.N)/deliver.Seconds(), "callbacks/s")
}

// BenchmarkInventory100k: the heap a 100,000-device inventory takes (inventory-MB).
func BenchmarkInventory100k(b *testing.B) {
	var before, after runtime.MemStats
	var total uint64
	for i := 0; i < b.N; i++ {
		runtime.GC()
		runtime.ReadMemStats(&before)
		o := DefaultOptions()
		o.Devices = 100000
		o.Preactivated = 50000
		s, err := New(o)
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		total += after.HeapAlloc - before.HeapAlloc
		if len(s.Devices()) != o.Devices {
			b.Fatal("inventory size")
		}
		s.Close()
	}
	b.ReportMetric(float64(total)/float64(b.N)/(1<<20), "inventory-MB")
	b.ReportMetric(float64(total)/float64(b.N)/100000, "bytes/device")
}
