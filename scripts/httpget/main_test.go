package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte("token=" + r.Header.Get("Authorization")))
	}))
	defer srv.Close()

	var out strings.Builder
	if err := run([]string{"-H", "Authorization: Bearer t1", srv.URL + "/ok"}, &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != "token=Bearer t1" {
		t.Fatalf("body = %q", out.String())
	}
	// A non-2xx answer is a failure (curl -f), so the demo stops instead of parsing an error page.
	if err := run([]string{srv.URL + "/missing"}, &out); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("404: err = %v", err)
	}
	if err := run([]string{"-H", "no-colon", srv.URL}, &out); err == nil {
		t.Fatal("a header without a colon was accepted")
	}
}
