// Command sha256sums writes a checksum file in the format of `sha256sum` ("<hex>  <name>", one
// line a file, sorted by name, names without their folder) for the files that match the given
// patterns. GoReleaser writes one checksum file per release, and that one must hold only the
// provider's zips; .goreleaser.yml runs this for the relay's and the simulator's zips, in Go so
// that a release needs no sha256sum or shell.
//
//	sha256sums -o FILE PATTERN...
package main

import (
	"github.com/fleetform/terraform-provider-thingspace/scripts/internal/checksum"

	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "sha256sums:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("sha256sums", flag.ContinueOnError)
	out := fs.String("o", "", "the checksum file to write (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() == 0 {
		return errors.New("usage: sha256sums -o FILE PATTERN")
	}
	var files []string
	for _, pattern := range fs.Args() {
		matches, err := filepath.Glob(pattern)
		if err != nil {
			return fmt.Errorf("pattern %q: %w", pattern, err)
		}
		// A pattern that matches nothing is a build that did not happen: fail rather than
		// publish a checksum file that silently lacks it.
		if len(matches) == 0 {
			return fmt.Errorf("pattern %q matches no file", pattern)
		}
		files = append(files, matches...)
	}
	slices.SortFunc(files, func(a, b string) int { return strings.Compare(filepath.Base(a), filepath.Base(b)) })
	files = slices.Compact(files)

	var b strings.Builder
	for _, f := range files {
		sum, err := checksum.File(f)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s  %s\n", sum, filepath.Base(f))
	}
	return os.WriteFile(*out, []byte(b.String()), 0o644)
}
