// Command releasecheck checks what `goreleaser release` wrote to dist/ against what the
// Terraform Registry and users' lock files need (`make release-check` runs it after a snapshot
// release):
//
//   - a terraform-provider-thingspace_<version>_<os>_<arch>.zip for each platform of the
//     provider's list, holding terraform-provider-thingspace_v<version> (.exe on Windows) and
//     the license, README and changelog, nothing else, and a thingspace-relay_ and
//     thingspace-sim_ zip for each of theirs, alike;
//   - terraform-provider-thingspace_<version>_SHA256SUMS listing exactly the provider's zips and
//     the _manifest.json, with the right hashes (the manifest's is that of the repository's
//     terraform-registry-manifest.json): the hashes the Registry hands to `terraform init`;
//   - thingspace-tools_<version>_SHA256SUMS listing exactly the relay's and the simulator's
//     zips, with the right hashes;
//   - no other zip in dist/.
//
// It prints a summary and exits 1 with every problem found.
//
//	releasecheck [-dist dist] [-manifest terraform-registry-manifest.json]
package main

import (
	"github.com/fleetform/terraform-provider-thingspace/scripts/internal/checksum"

	"archive/zip"
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The platforms of HashiCorp's provider scaffolding that Go 1.26 builds (darwin/arm and
// windows/arm are not Go targets); keep in step with .goreleaser.yml.
var providerPlatforms = []string{
	"darwin_amd64", "darwin_arm64",
	"freebsd_386", "freebsd_amd64", "freebsd_arm", "freebsd_arm64",
	"linux_386", "linux_amd64", "linux_arm", "linux_arm64",
	"windows_386", "windows_amd64", "windows_arm64",
}

// The files each zip holds besides its binary (the archives' `files` in .goreleaser.yml).
var docFiles = []string{"CHANGELOG.md", "LICENSE", "README.md"}

// The relay's and the simulator's platforms.
var toolPlatforms = []string{
	"darwin_amd64", "darwin_arm64", "linux_amd64", "linux_arm64", "windows_amd64", "windows_arm64",
}

const project = "terraform-provider-thingspace"

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "releasecheck:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("releasecheck", flag.ContinueOnError)
	dist := fs.String("dist", "dist", "GoReleaser's output folder")
	manifest := fs.String("manifest", "terraform-registry-manifest.json", "the registry manifest the release publishes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	version, err := readVersion(filepath.Join(*dist, "metadata.json"))
	if err != nil {
		return err
	}
	c := &checker{dist: *dist}

	providerZips := map[string]string{} // zip name -> the binary it must hold
	for _, p := range providerPlatforms {
		bin := project + "_v" + version
		if strings.HasPrefix(p, "windows_") {
			bin += ".exe"
		}
		providerZips[fmt.Sprintf("%s_%s_%s.zip", project, version, p)] = bin
	}
	toolZips := map[string]string{}
	for _, tool := range []string{"thingspace-relay", "thingspace-sim"} {
		for _, p := range toolPlatforms {
			bin := tool
			if strings.HasPrefix(p, "windows_") {
				bin += ".exe"
			}
			toolZips[fmt.Sprintf("%s_%s_%s.zip", tool, version, p)] = bin
		}
	}

	for name, bin := range providerZips {
		c.zipHolds(name, bin)
	}
	for name, bin := range toolZips {
		c.zipHolds(name, bin)
	}
	found, err := filepath.Glob(filepath.Join(*dist, "*.zip"))
	if err != nil {
		return err
	}
	for _, f := range found {
		name := filepath.Base(f)
		if _, ok := providerZips[name]; !ok {
			if _, ok := toolZips[name]; !ok {
				c.errorf("%s: a zip the release should not have", name)
			}
		}
	}

	manifestName := fmt.Sprintf("%s_%s_manifest.json", project, version)
	manifestSum, err := checksum.File(*manifest)
	if err != nil {
		return err
	}
	providerSums := fmt.Sprintf("%s_%s_SHA256SUMS", project, version)
	c.sums(providerSums, slices.Collect(maps.Keys(providerZips)), map[string]string{manifestName: manifestSum})
	toolSums := fmt.Sprintf("thingspace-tools_%s_SHA256SUMS", version)
	c.sums(toolSums, slices.Collect(maps.Keys(toolZips)), nil)

	sig := "not signed (snapshot, --skip=sign)"
	if _, err := os.Stat(filepath.Join(*dist, providerSums+".sig")); err == nil {
		sig = providerSums + ".sig present"
	}
	fmt.Fprintf(stdout, "releasecheck: version %s in %s\n", version, *dist)
	fmt.Fprintf(stdout, "  provider: %d zips (%s), each holding %s_v%s and %s\n", len(providerZips), strings.Join(providerPlatforms, " "), project, version, strings.Join(docFiles, ", "))
	fmt.Fprintf(stdout, "  relay and simulator: %d zips (%s)\n", len(toolZips), strings.Join(toolPlatforms, " "))
	fmt.Fprintf(stdout, "  %s: %d files expected (the provider zips and %s); %s\n", providerSums, len(providerZips)+1, manifestName, sig)
	fmt.Fprintf(stdout, "  %s: %d files expected (the relay and simulator zips)\n", toolSums, len(toolZips))
	if len(c.problems) > 0 {
		return fmt.Errorf("%d problem(s):\n  %s", len(c.problems), strings.Join(c.problems, "\n  "))
	}
	fmt.Fprintf(stdout, "releasecheck: OK, %d artifacts checked (names, zip contents, both checksum files list exactly their files, every hash matches)\n", len(providerZips)+len(toolZips)+2)
	return nil
}

type checker struct {
	dist     string
	problems []string
}

func (c *checker) errorf(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

// zipHolds checks that dist/name is a zip holding bin and docFiles at its top, and nothing else.
func (c *checker) zipHolds(name, bin string) {
	r, err := zip.OpenReader(filepath.Join(c.dist, name))
	if err != nil {
		c.errorf("%s: %v", name, err)
		return
	}
	defer r.Close()
	var files []string
	for _, f := range r.File {
		if !f.FileInfo().IsDir() {
			files = append(files, f.Name)
		}
	}
	want := append([]string{bin}, docFiles...)
	slices.Sort(files)
	slices.Sort(want)
	if !slices.Equal(files, want) {
		c.errorf("%s: holds %q, want %q", name, files, want)
	}
}

// sums checks that dist/name lists exactly the files zips (whose hashes it computes from
// dist/) and extra (with the hashes given), each once.
func (c *checker) sums(name string, zips []string, extra map[string]string) {
	want := map[string]string{}
	for _, z := range zips {
		sum, err := checksum.File(filepath.Join(c.dist, z))
		if err != nil {
			continue // zipHolds reported it
		}
		want[z] = sum
	}
	maps.Copy(want, extra)

	f, err := os.Open(filepath.Join(c.dist, name))
	if err != nil {
		c.errorf("%s: %v", name, err)
		return
	}
	defer f.Close()
	got := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		sum, file, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			c.errorf("%s: a line not in sha256sum's format: %q", name, sc.Text())
			continue
		}
		if _, dup := got[file]; dup {
			c.errorf("%s: lists %s twice", name, file)
		}
		got[file] = sum
	}
	if err := sc.Err(); err != nil {
		c.errorf("%s: %v", name, err)
	}
	for _, file := range slices.Sorted(maps.Keys(got)) {
		w, ok := want[file]
		switch {
		case !ok:
			c.errorf("%s: lists %s, which does not belong there", name, file)
		case w != got[file]:
			c.errorf("%s: %s has hash %s, the file's is %s", name, file, got[file], w)
		}
	}
	for _, file := range slices.Sorted(maps.Keys(want)) {
		if _, ok := got[file]; !ok {
			c.errorf("%s: does not list %s", name, file)
		}
	}
}

func readVersion(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%w (run goreleaser first)", err)
	}
	var m struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	if m.Version == "" {
		return "", errors.New(path + ": no version")
	}
	return m.Version, nil
}
