#!/usr/bin/env bash
# Prints the absolute path of an OpenTofu CLI for `make test-opentofu`.
#
# Looks, in order, at:
#   1. $TOFU, a path or a command name (TOFU=tofu-1.12, TOFU=/opt/tofu/tofu); when set, it
#      must be an OpenTofu, or this script fails;
#   2. `tofu` on PATH.
# Unlike scripts/terraform-path.sh it builds nothing: OpenTofu is optional for this repository.
#
# Messages go to stderr; stdout has only the path, so `tofu="$(scripts/opentofu-path.sh)"`
# works. Exit status: 0 found; 3 no OpenTofu found (the message says how to get one);
# 1 $TOFU names something that is not an OpenTofu CLI.
set -euo pipefail

# absolute prints $1 as an absolute path (relative to the current directory).
absolute() {
	case "$1" in
	/*) printf '%s\n' "$1" ;;
	*) printf '%s/%s\n' "$(pwd -P)" "$1" ;;
	esac
}

# is_opentofu PATH: `PATH version` prints an "OpenTofu vX.Y.Z" line (not necessarily the first:
# a CLI configuration file that does not exist puts a warning before it).
# The output is read whole before grep: `| grep -q` would stop reading at the match, and under
# pipefail the CLI's SIGPIPE would then fail the test at random.
is_opentofu() {
	local out
	out="$(CHECKPOINT_DISABLE=1 TF_CLI_CONFIG_FILE=/dev/null "$1" version 2>/dev/null)" || return 1
	grep -q '^OpenTofu v' <<<"$out"
}

if [[ -n "${TOFU:-}" ]]; then
	found=""
	if [[ "$TOFU" == */* ]]; then
		[[ -x "$TOFU" && ! -d "$TOFU" ]] && found="$(absolute "$TOFU")"
	else
		found="$(command -v "$TOFU" 2>/dev/null || true)"
		[[ -n "$found" ]] && found="$(absolute "$found")"
	fi
	if [[ -z "$found" ]]; then
		echo "opentofu-path: TOFU=$TOFU is not an executable file or a command on PATH" >&2
		exit 1
	fi
	if ! is_opentofu "$found"; then
		echo "opentofu-path: TOFU=$TOFU ($found) is not OpenTofu: '$found version' prints no 'OpenTofu v...' line" >&2
		exit 1
	fi
	printf '%s\n' "$found"
	exit 0
fi

if found="$(command -v tofu 2>/dev/null)" && [[ -n "$found" && -x "$found" ]]; then
	if ! is_opentofu "$found"; then
		echo "opentofu-path: $found is not OpenTofu: '$found version' prints no 'OpenTofu v...' line" >&2
		exit 1
	fi
	absolute "$found"
	exit 0
fi

cat >&2 <<'EOF'
opentofu-path: no OpenTofu found: no `tofu` on PATH and TOFU is not set.
  Get one from https://github.com/opentofu/opentofu/releases (a single binary: unzip it
  anywhere and run `make test-opentofu TOFU=/path/to/tofu`), or from a package manager
  (https://opentofu.org/docs/intro/install/: Homebrew `brew install opentofu`, Snap, the
  .deb and .rpm repositories, winget, and more).
EOF
exit 3
