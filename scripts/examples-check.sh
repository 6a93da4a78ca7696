#!/usr/bin/env bash
# The fast checks of CI that need no test run: `go mod tidy` leaves go.mod and go.sum as they
# are, examples/ is formatted (`terraform fmt -check`), and `terraform validate` passes in every
# folder of examples/ with the provider built from this checkout (through dev_overrides, so
# without `terraform init` and without a registry). Well under a minute once the build cache is
# warm.
#
# The examples of a single resource, data source or function are fragments the docs show, and
# most do not declare the provider: a copy of such a folder gets the `required_providers` of
# examples/provider before it is validated, so that `thingspace` means fleetform/thingspace and
# not hashicorp/thingspace. Folders that call local modules get `terraform init -backend=false`
# first (modules only: the provider is overridden). `import-by-identity.tf` files (`import`
# blocks with `identity`) need Terraform 1.12 or OpenTofu 1.12: with an older CLI they are left
# out of the validated copy, saying so. The list resources' `.tfquery.hcl` examples are neither
# formatted nor validated here (`terraform fmt` and `validate` before 1.14 do not read them).
# Exits non-zero at the first failure.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$repo"

tf="$(scripts/terraform-path.sh)"
export CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1 TF_INPUT=0
tmp="$(mktemp -d "${TMPDIR:-/tmp}/thingspace-examples.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

echo "examples-check: go mod tidy -diff"
if ! go mod tidy -diff; then
	echo "examples-check: 'go mod tidy' would change go.mod or go.sum (above): run it and commit the result" >&2
	exit 1
fi

echo "examples-check: terraform fmt -check -recursive examples/"
if ! TF_CLI_CONFIG_FILE=/dev/null "$tf" fmt -check -recursive -diff examples/; then
	echo "examples-check: examples/ is not formatted: run 'make generate' (or terraform fmt -recursive examples/) and commit" >&2
	exit 1
fi

CGO_ENABLED=0 go build -o "$tmp/bin/terraform-provider-thingspace" .
cat >"$tmp/terraformrc" <<CONF
provider_installation {
  dev_overrides {
    "registry.terraform.io/fleetform/thingspace" = "$tmp/bin"
  }
  direct {}
}
CONF
export TF_CLI_CONFIG_FILE="$tmp/terraformrc"

# A copy of the whole tree, so that relative module sources still resolve.
cp -R examples "$tmp/examples"
# The CLI's major and minor version: import blocks with identity need 1.12.
read -r tf_major tf_minor < <("$tf" version | grep -m1 -oE '^(Terraform|OpenTofu) v[0-9]+\.[0-9]+' |
	sed -E 's/.* v([0-9]+)\.([0-9]+)/\1 \2/')
if ((tf_major == 1 && tf_minor < 12)); then
	while IFS= read -r f; do
		rm -f "$tmp/$f"
		echo "examples-check: $f not validated: import blocks with identity need Terraform 1.12 or later"
	done < <(find examples -name 'import-by-identity.tf' | sort)
fi
mapfile -t dirs < <(find examples -name '*.tf' -exec dirname {} \; | sort -u)
for dir in "${dirs[@]}"; do
	work="$tmp/$dir"
	if ! grep -qE '^[[:space:]]*source[[:space:]]*=[[:space:]]*"([^"]*/)?fleetform/thingspace"' "$dir"/*.tf; then
		cat >"$work/zz_examples_check_providers.tf" <<'TF'
terraform {
  required_providers {
    thingspace = {
      source = "fleetform/thingspace"
    }
  }
}
TF
	fi
	if grep -qE '^[[:space:]]*module[[:space:]]+"' "$dir"/*.tf; then
		if ! "$tf" -chdir="$work" init -backend=false -input=false -no-color >"$tmp/init.log" 2>&1; then
			cat "$tmp/init.log" >&2
			echo "examples-check: terraform init (modules) failed in $dir" >&2
			exit 1
		fi
	fi
	if ! "$tf" -chdir="$work" validate -no-color >"$tmp/validate.log" 2>&1; then
		cat "$tmp/validate.log" >&2
		echo "examples-check: terraform validate failed in $dir" >&2
		exit 1
	fi
	echo "examples-check: terraform validate $dir: ok"
done
echo "examples-check: ${#dirs[@]} example folders valid with $("$tf" version | grep -m1 -E '^(Terraform|OpenTofu) v')"
