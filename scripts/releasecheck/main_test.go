package main

import (
	"github.com/fleetform/terraform-provider-thingspace/scripts/internal/checksum"

	"archive/zip"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeDist writes what a snapshot release of version 1.2.3 leaves in dist/, checksum files
// included, and returns dist and the manifest's path.
func fakeDist(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	dist := filepath.Join(dir, "dist")
	if err := os.Mkdir(dist, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(path, body string) {
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	manifest := filepath.Join(dir, "terraform-registry-manifest.json")
	write(manifest, `{"version":1}`)
	write(filepath.Join(dist, "metadata.json"), `{"version":"1.2.3"}`)
	mkzip := func(name, bin string) string {
		path := filepath.Join(dist, name)
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		zw := zip.NewWriter(f)
		for _, n := range append([]string{bin}, docFiles...) {
			w, err := zw.Create(n)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprint(w, n)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		sum, err := checksum.File(path)
		if err != nil {
			t.Fatal(err)
		}
		return sum + "  " + name + "\n"
	}
	exe := func(p string) string {
		if strings.HasPrefix(p, "windows_") {
			return ".exe"
		}
		return ""
	}
	var provider, tools strings.Builder
	for _, p := range providerPlatforms {
		provider.WriteString(mkzip("terraform-provider-thingspace_1.2.3_"+p+".zip", "terraform-provider-thingspace_v1.2.3"+exe(p)))
	}
	msum, err := checksum.File(manifest)
	if err != nil {
		t.Fatal(err)
	}
	provider.WriteString(msum + "  terraform-provider-thingspace_1.2.3_manifest.json\n")
	for _, tool := range []string{"thingspace-relay", "thingspace-sim"} {
		for _, p := range toolPlatforms {
			tools.WriteString(mkzip(tool+"_1.2.3_"+p+".zip", tool+exe(p)))
		}
	}
	write(filepath.Join(dist, "terraform-provider-thingspace_1.2.3_SHA256SUMS"), provider.String())
	write(filepath.Join(dist, "thingspace-tools_1.2.3_SHA256SUMS"), tools.String())
	return dist, manifest
}

func TestRun(t *testing.T) {
	dist, manifest := fakeDist(t)
	var out strings.Builder
	if err := run([]string{"-dist", dist, "-manifest", manifest}, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "OK, 27 artifacts checked") {
		t.Fatalf("summary:\n%s", out.String())
	}

	// A relay zip in the provider's checksums, the mistake this check exists for.
	sums := filepath.Join(dist, "terraform-provider-thingspace_1.2.3_SHA256SUMS")
	f, err := os.OpenFile(sums, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, "00  thingspace-relay_1.2.3_linux_amd64.zip")
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// And a zip nobody expects.
	if err := os.WriteFile(filepath.Join(dist, "extra_1.2.3_linux_amd64.zip"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err = run([]string{"-dist", dist, "-manifest", manifest}, &out)
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"lists thingspace-relay_1.2.3_linux_amd64.zip, which does not belong there", "extra_1.2.3_linux_amd64.zip: a zip the release should not have"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
