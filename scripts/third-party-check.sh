#!/usr/bin/env bash
# Checks that third_party/terraform-plugin-framework is exactly the upstream module at the
# version go.mod requires, plus third_party/terraform-plugin-framework.patch, and nothing
# else: it rebuilds the copy from the Go module cache (downloading the module if needed) into
# a temporary folder, applies the patch, and compares. With -w it rewrites the copy instead,
# which is how the copy is refreshed after an upgrade (then re-apply or update the patch).
# See third_party/README.md for why the copy exists.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$repo"
mod=github.com/hashicorp/terraform-plugin-framework
version="$(go list -m -f '{{.Version}}' "$mod")"
dest=third_party/terraform-plugin-framework
patchfile=third_party/terraform-plugin-framework.patch

src="$(GOFLAGS=-mod=mod go mod download -json "$mod@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
[[ -d "$src" ]] || { echo "third-party-check: cannot download $mod@$version" >&2; exit 1; }

tmp="$(mktemp -d "${TMPDIR:-/tmp}/third-party.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
# The module's sources without its tests and test fixtures: what a build of the provider reads.
(cd "$src" && find . -type f \( -name '*.go' ! -name '*_test.go' -o -name go.mod -o -name go.sum -o -name LICENSE \) |
	grep -v -e '/testdata/' -e '/internal/testing/' | tar cf - -T -) | (cd "$tmp" && tar xf -)
chmod -R u+w "$tmp"
(cd "$tmp" && patch -s -p1 <"$repo/$patchfile")

if [[ "${1:-}" == "-w" ]]; then
	rm -rf "$dest"
	mkdir -p "$dest"
	cp -R "$tmp/." "$dest/"
	echo "third-party-check: $dest rewritten from $mod@$version and $patchfile"
	exit 0
fi
if ! diff -r -q "$tmp" "$dest"; then
	echo "third-party-check: $dest is not $mod@$version with $patchfile applied (differences above); run scripts/third-party-check.sh -w" >&2
	exit 1
fi
echo "third-party-check: $dest is $mod@$version with $patchfile applied"
