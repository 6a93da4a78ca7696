#!/usr/bin/env bash
# Prints the absolute path of a Terraform CLI for acceptance tests and tfplugindocs.
#
# Looks, in order, at:
#   1. $TF_ACC_TERRAFORM_PATH, when it names an executable;
#   2. `terraform` on PATH;
#   3. /usr/local/bin/terraform;
#   4. ./bin/terraform, built by an earlier run of this script;
#   5. otherwise it builds Terraform v1.8.5 from source into ./bin with `go install` (about 6
#      minutes the first time on 2 CPUs with an empty module cache; 1.9 and later no longer
#      build with `go install`), saying so on stderr.
#
# Messages go to stderr; stdout has only the path, so `tf="$(scripts/terraform-path.sh)"`
# works. Exits non-zero when no Terraform can be found or built.
#
# Environment:
#   TERRAFORM_SYSTEM_PATH    the fallback of step 3 (default /usr/local/bin/terraform);
#   TERRAFORM_BUILD_VERSION  the version step 5 builds (default 1.8.5, the newest that builds
#                            with `go install`).
# To see what a machine with only Go gets, in a fresh clone:
#   env -i HOME="$HOME" PATH=/usr/local/go/bin:/usr/bin:/bin TERRAFORM_SYSTEM_PATH=/nonexistent make test
# Terraform v1.8.5 runs every acceptance test, `import` blocks with for_each, `removed` blocks
# (1.7) and provider functions (1.8) included, but those of write-only attributes, which need
# 1.11 and say so when they skip. It reports itself as "Terraform v1.8.5-dev": `go install`
# builds leave the pre-release mark. For OpenTofu, see scripts/opentofu-path.sh and
# `make test-opentofu`.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
build_version="${TERRAFORM_BUILD_VERSION:-1.8.5}"
system_terraform="${TERRAFORM_SYSTEM_PATH:-/usr/local/bin/terraform}"

# absolute prints $1 as an absolute path (relative to the current directory).
absolute() {
	case "$1" in
	/*) printf '%s\n' "$1" ;;
	*) printf '%s/%s\n' "$(pwd -P)" "$1" ;;
	esac
}

if [[ -n "${TF_ACC_TERRAFORM_PATH:-}" ]]; then
	if [[ -x "${TF_ACC_TERRAFORM_PATH}" && ! -d "${TF_ACC_TERRAFORM_PATH}" ]]; then
		absolute "${TF_ACC_TERRAFORM_PATH}"
		exit 0
	fi
	echo "terraform-path: TF_ACC_TERRAFORM_PATH=${TF_ACC_TERRAFORM_PATH} is not an executable file; looking elsewhere" >&2
fi

if found="$(command -v terraform 2>/dev/null)" && [[ -n "$found" && -x "$found" ]]; then
	absolute "$found"
	exit 0
fi

if [[ -x "$system_terraform" && ! -d "$system_terraform" ]]; then
	absolute "$system_terraform"
	exit 0
fi

if [[ -x "$repo/bin/terraform" ]]; then
	printf '%s\n' "$repo/bin/terraform"
	exit 0
fi

if ! command -v go >/dev/null 2>&1; then
	echo "terraform-path: no terraform on PATH or at $system_terraform, and no Go to build one; install Terraform (>= 1.5) and retry" >&2
	exit 1
fi

echo "terraform-path: no terraform on PATH or at $system_terraform;" \
	"building Terraform v$build_version into $repo/bin with 'go install' (about 6 minutes the first time)" >&2
mkdir -p "$repo/bin"
# Outside the repository's module, so its go.mod and GOFLAGS do not get in the way.
if ! (cd / && GOBIN="$repo/bin" go install "github.com/hashicorp/terraform@v$build_version" >&2); then
	echo "terraform-path: building Terraform v$build_version failed; install Terraform (>= 1.5) on PATH and retry" >&2
	exit 1
fi
if [[ ! -x "$repo/bin/terraform" ]]; then
	echo "terraform-path: 'go install' succeeded but $repo/bin/terraform is missing" >&2
	exit 1
fi
echo "terraform-path: built $(CHECKPOINT_DISABLE=1 TF_CLI_CONFIG_FILE=/dev/null "$repo/bin/terraform" version | sed -n 1p) at $repo/bin/terraform" >&2
printf '%s\n' "$repo/bin/terraform"
