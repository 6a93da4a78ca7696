#!/usr/bin/env bash
# make demo: the provider, thingspace-relay and thingspace-sim working together, end to end.
#
#   1. builds the provider, the simulator and the relay into ./bin;
#   2. starts thingspace-sim (60 devices, the first 10 already active) and thingspace-relay
#      (embedded SQLite) on free loopback ports, in a temporary folder;
#   3. runs a real `terraform apply` (or `tofu apply`) of examples/demo: the callback listener,
#      25 eSIM profiles (for_each) and a service plan assignment over 10 other, already active
#      devices;
#   4. shows what was created, checks that a second plan is empty, destroys everything, and
#      shows the carrier actions the simulator accepted (one bulk call per action);
#   5. stops both servers and removes the temporary folder, also on failure or Ctrl-C.
#
# Needs Go and a Terraform (scripts/terraform-path.sh finds one or builds v1.8.5 into ./bin), or
# an OpenTofu with TF=tofu. HTTP GETs go through scripts/httpget, built with the rest, so curl
# is not needed. Works offline once the Go modules are in the module cache. jq or python3 are
# used for JSON when present, and awk otherwise.
#
# Environment: DEMO_KEEP=1 keeps the temporary folder (logs, state, relay.db);
# DEMO_JSON=jq|python3|awk forces a JSON tool; DEMO_CONFIG=<dir> applies another configuration
# than examples/demo (it gets the same variables); TF_LOG=INFO shows the provider's progress;
# TF=<command or path> runs that CLI instead of the Terraform scripts/terraform-path.sh finds:
# TF=tofu, TF=/opt/tofu/tofu, TF=terraform-1.15. Colours only when stdout is a terminal and
# NO_COLOR is unset.
set -euo pipefail

started=$SECONDS
# The terminal's stdout and stderr, for messages from functions whose output is redirected.
exec 3>&1 4>&2
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
# A relative TF path is relative to where the demo was started.
if [[ "${TF:-}" == */* && "$TF" != /* ]]; then
	TF="$PWD/$TF"
fi
cd "$repo"

# The demo's sizes. The simulator activates the first $preactivated devices with its first US
# plan: the plan assignment takes those (it refuses pre-active devices), and the profiles take
# pre-active devices after them.
devices=60
preactivated=10
profiles=25
pool=10
# Terraform's parallelism: every profile and the plan assignment at once (25 + 1, and some
# room), so that all 25 activations are in flight together and the provider can merge them
# into one bulk call. At -parallelism=25 one instance waits for a free slot and goes alone.
parallelism=$((profiles + 5))

# Bold and dim only on a terminal (and not with NO_COLOR set): a log file or a CI log gets plain
# text. The CLI's own colours follow the same rule (-no-color below).
bold="" dim="" plain="" no_color=(-no-color)
if [[ -t 1 && -z "${NO_COLOR:-}" ]]; then
	bold=$'\033[1m' dim=$'\033[2m' plain=$'\033[0m' no_color=()
fi
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$plain"; }
info() { printf '    %s\n' "$*"; }
die() {
	printf '\nmake demo: FAILED: %s\n' "$*" >&4
	exit 1
}
need() { command -v "$1" >/dev/null 2>&1 || die "$1 is not installed; $2"; }

((BASH_VERSINFO[0] >= 4)) || die "needs bash 4 or later (this is bash $BASH_VERSION)"
need go "install Go (the version in go.mod) and retry"

tmp=""
sim_pid=""
relay_pid=""

# stop PID NAME: SIGTERM (both servers shut down gracefully), SIGKILL after 10 seconds.
stop() {
	local pid="$1" name="$2" i
	[[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "make demo: $name did not stop within 10s; killing it" >&4
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if ((rc != 0)) && [[ -n "$tmp" && -d "$tmp" ]]; then
		for log in sim.log relay.log; do
			if [[ -s "$tmp/$log" ]]; then
				echo "--- last lines of $log" >&4
				tail -n 15 "$tmp/$log" >&4
			fi
		done
	fi
	stop "$relay_pid" thingspace-relay
	stop "$sim_pid" thingspace-sim
	if [[ -n "$tmp" && -d "$tmp" ]]; then
		if [[ "${DEMO_KEEP:-}" == 1 ]]; then
			echo "make demo: kept $tmp (DEMO_KEEP=1)" >&4
		else
			rm -rf "$tmp"
		fi
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'printf "\nmake demo: interrupted\n" >&4; exit 130' INT
trap 'echo "make demo: terminated" >&4; exit 143' TERM

# ---------------------------------------------------------------------------------------------
# JSON: jq, else python3, else awk. Only two shapes are read: a top-level array of objects
# (devices, plans), from which json_rows prints chosen top-level string fields tab-separated,
# one object a line; and the simulator's stats.

json_tool="${DEMO_JSON:-}"
if [[ -z "$json_tool" ]]; then
	if command -v jq >/dev/null 2>&1; then
		json_tool=jq
	elif command -v python3 >/dev/null 2>&1; then
		json_tool=python3
	else
		json_tool="awk"
	fi
fi
case "$json_tool" in jq | python3 | awk) need "$json_tool" "unset DEMO_JSON" ;; *) die "DEMO_JSON=$json_tool: want jq, python3 or awk" ;; esac

# json_rows FIELD... < array.json
json_rows() {
	case "$json_tool" in
	jq)
		local fields
		fields="$(printf '.%s // "",' "$@")"
		jq -r ".[] | [${fields%,}] | @tsv"
		;;
	python3)
		python3 -c '
import json, sys
for row in json.load(sys.stdin):
    print("\t".join(str(row.get(f) or "") for f in sys.argv[1:]))
' "$@"
		;;
	awk)
		# A small JSON scanner: depth 1 is the array, depth 2 its objects; string values of
		# depth-2 keys are kept, nested values skipped. Escapes are kept as they are.
		tr -d '\r\n' | awk -v fields="$*" '
			BEGIN { nf = split(fields, want, " ") }
			{ s = s $0 }
			END {
				depth = 0; inq = 0; colon = 0; key = ""; tok = ""
				n = length(s)
				for (i = 1; i <= n; i++) {
					c = substr(s, i, 1)
					if (inq) {
						if (c == "\\") { tok = tok c substr(s, i + 1, 1); i++; continue }
						if (c != "\"") { tok = tok c; continue }
						inq = 0
						if (depth == 2) {
							if (colon) { val[key] = tok; colon = 0 } else { key = tok }
						}
						continue
					}
					if (c == "\"") { inq = 1; tok = ""; continue }
					if (c == "{" || c == "[") {
						depth++
						if (depth == 2) { split("", val); colon = 0 }
						continue
					}
					if (c == "}" || c == "]") {
						if (depth == 2) {
							line = ""
							for (f = 1; f <= nf; f++) line = line (f > 1 ? "\t" : "") val[want[f]]
							print line
						}
						depth--
						continue
					}
					if (depth == 2 && c == ":") { colon = 1; continue }
					if (depth == 2 && c == ",") { colon = 0; key = ""; continue }
				}
			}'
		;;
	esac
}

# stats_summary < stats.json: the accepted actions, with their devices, and the callbacks.
stats_summary() {
	case "$json_tool" in
	jq)
		jq -r '
			(.actions // []) as $a
			| ((.actionCounts // {} | keys[]) as $k
				| "\($k): \(.actionCounts[$k]) request(s) for \([$a[] | select(.action == $k) | .devices | length] | add // 0) device(s)"),
			(.callbacks | "callbacks: \(.sent) sent, \(.acknowledged) acknowledged, \(.retried) retried, \(.dropped) dropped")'
		;;
	python3)
		python3 -c '
import json, sys
s = json.load(sys.stdin)
for k, n in sorted((s.get("actionCounts") or {}).items()):
    d = sum(len(a.get("devices") or []) for a in s.get("actions") or [] if a.get("action") == k)
    print("%s: %d request(s) for %d device(s)" % (k, n, d))
c = s.get("callbacks") or {}
print("callbacks: %s sent, %s acknowledged, %s retried, %s dropped" % (c.get("sent"), c.get("acknowledged"), c.get("retried"), c.get("dropped")))
'
		;;
	awk)
		{
			tr -d '\r\n'
			echo
		} | sed -n 's/.*"actionCounts"[[:space:]]*:[[:space:]]*{\([^}]*\)}.*/\1/p' |
			tr ',' '\n' | sed '/^[[:space:]]*$/d; s/"//g; s/[[:space:]]*:[[:space:]]*/: /; s/$/ request(s)/'
		;;
	esac
}

# wait_for_line FILE PID: prints the first line of FILE once it is complete, waiting at most 30
# seconds. Returns 1 when PID exits first, 2 on time-out.
wait_for_line() {
	local file="$1" pid="$2" i line
	for ((i = 0; i < 300; i++)); do
		if [[ -s "$file" && "$(wc -l <"$file")" -ge 1 ]]; then
			IFS= read -r line <"$file" || true
			printf '%s\n' "$line"
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 2
}

random_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

# The servers run in a session of their own where setsid exists, so that Ctrl-C reaches
# Terraform (which then stops cleanly, the servers still answering) and not them; the trap
# stops them afterwards.
detach=()
if command -v setsid >/dev/null 2>&1; then
	detach=(setsid)
fi

# servers_alive: fails when the simulator or the relay has exited.
servers_alive() {
	kill -0 "$sim_pid" 2>/dev/null || die "thingspace-sim exited unexpectedly (see its log below)"
	kill -0 "$relay_pid" 2>/dev/null || die "thingspace-relay exited unexpectedly (see its log below)"
}

# ---------------------------------------------------------------------------------------------
step "Building the provider, thingspace-sim and thingspace-relay into ./bin"
mkdir -p bin
version="$(git describe --tags --always --dirty 2>/dev/null || echo dev)"
for target in .:terraform-provider-thingspace ./cmd/thingspace-sim:thingspace-sim ./cmd/thingspace-relay:thingspace-relay ./scripts/httpget:httpget; do
	pkg="${target%%:*}" out="${target#*:}"
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$version" -o "bin/$out" "$pkg" ||
		die "go build $pkg failed (offline? the Go modules must be in the module cache: run 'go mod download' once online)"
done
info "built bin/terraform-provider-thingspace, bin/thingspace-sim, bin/thingspace-relay, bin/httpget ($version)"

# The CLI: $TF (a command or a path), else the Terraform scripts/terraform-path.sh finds.
if [[ -n "${TF:-}" ]]; then
	if [[ "$TF" == */* ]]; then
		[[ -x "$TF" && ! -d "$TF" ]] || die "TF=$TF is not an executable file"
		tf="$TF"
	else
		tf="$(command -v "$TF")" || die "TF=$TF: no such command on PATH"
	fi
else
	tf="$(scripts/terraform-path.sh)" || die "no Terraform CLI found or built (scripts/terraform-path.sh)"
fi
export CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1 TF_INPUT=0
# Its name and version: the first "Terraform vX.Y.Z" or "OpenTofu vX.Y.Z" line (a CLI
# configuration file that does not exist puts a warning before it).
cli_version="$(TF_CLI_CONFIG_FILE=/dev/null "$tf" version 2>/dev/null || true)"
cli_version="$(grep -m1 -E '^(Terraform|OpenTofu) v' <<<"$cli_version" || true)"
# The host each CLI gives the examples' bare `source = "fleetform/thingspace"`, which the
# dev_overrides below must name.
case "$cli_version" in
OpenTofu*) cli=tofu provider_host=registry.opentofu.org ;;
Terraform*) cli=terraform provider_host=registry.terraform.io ;;
*) die "$tf is neither Terraform nor OpenTofu: '$tf version' prints no 'Terraform v...' or 'OpenTofu v...' line" ;;
esac
cli_name="${cli_version%% *}"
info "using $cli_version at $tf"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/thingspace-demo.XXXXXX")"
info "temporary folder $tmp"

# ---------------------------------------------------------------------------------------------
step "Starting thingspace-sim: $devices devices, the first $preactivated already active"
${detach[@]+"${detach[@]}"} bin/thingspace-sim -addr 127.0.0.1:0 -devices "$devices" -preactivated "$preactivated" \
	-callback-delay 100ms-600ms >"$tmp/sim.out" 2>"$tmp/sim.log" &
sim_pid=$!
line="$(wait_for_line "$tmp/sim.out" "$sim_pid")" ||
	die "thingspace-sim did not start listening within 30s (see its log below)"
sim="$(sed -n 's|^thingspace-sim listening on \(https\{0,1\}://[^ ]*\)$|\1|p' <<<"$line")"
[[ -n "$sim" ]] || die "unexpected first line from thingspace-sim: $line"
info "$line"

# ---------------------------------------------------------------------------------------------
step "Starting thingspace-relay with embedded SQLite ($tmp/relay.db)"
# The secrets go to the relay through RELAY_*_FILE (not flags, which every local user can read
# in ps) and to Terraform through variables and THINGSPACE_RELAY_TOKEN.
path_token="$(random_hex 16)"
callback_user=thingspace
callback_password="$(random_hex 12)"
api_token="$(random_hex 24)"
(
	umask 077
	mkdir -p "$tmp/secrets"
	printf '%s\n' "$path_token" >"$tmp/secrets/path-token"
	printf '%s:%s\n' "$callback_user" "$callback_password" >"$tmp/secrets/callback-credentials"
	printf '%s\n' "$api_token" >"$tmp/secrets/api-token"
)
# The ingest listener takes a free port among those ThingSpace documents for callback listeners
# (28200-28220), so the listener resource has no port to warn about; port 0 (any free port) if
# none is free. The API and admin listeners take any free port. The relay prints the ports it
# bound. Its public URL, the one registered at ThingSpace, is by default
# http://<ingest-addr>/callbacks/v1/thingspace/<path-token>: exactly what -public-url would say
# here (behind a proxy it would be the proxy's URL); /v1/info below confirms it.
start_relay() {
	: >"$tmp/relay.out"
	RELAY_PATH_TOKEN_FILE="$tmp/secrets/path-token" \
		RELAY_CALLBACK_CREDENTIALS_FILE="$tmp/secrets/callback-credentials" \
		RELAY_API_TOKEN_FILE="$tmp/secrets/api-token" \
		${detach[@]+"${detach[@]}"} bin/thingspace-relay serve -ingest-addr "$1" -api-addr 127.0.0.1:0 -admin-addr 127.0.0.1:0 \
		-store "sqlite:$tmp/relay.db" >"$tmp/relay.out" 2>"$tmp/relay.log" &
	relay_pid=$!
}
line=""
first=$((28200 + RANDOM % 21))
for ((k = 0; k <= 21; k++)); do
	port=$((28200 + (first - 28200 + k) % 21))
	((k < 21)) || port=0
	start_relay "127.0.0.1:$port"
	rc=0
	line="$(wait_for_line "$tmp/relay.out" "$relay_pid")" || rc=$?
	((rc == 0)) && break
	((rc == 2)) && die "thingspace-relay did not start listening within 30s (see its log below)"
	wait "$relay_pid" 2>/dev/null || true # it exited: port taken, or a real error (next try says)
	relay_pid=""
	grep -q "address already in use" "$tmp/relay.log" || die "thingspace-relay exited at start (see its log below)"
done
[[ -n "$relay_pid" ]] || die "thingspace-relay could not start (see its log below)"
# thingspace-relay ingest on http://HOST:PORT, api on http://HOST:PORT, admin on http://HOST:PORT
ingest="$(sed -n 's|.*ingest on \(https\{0,1\}://[^ ,]*\).*|\1|p' <<<"$line")"
relay_api="$(sed -n 's|.*api on \(https\{0,1\}://[^ ,]*\).*|\1|p' <<<"$line")"
relay_admin="$(sed -n 's|.*admin on \(https\{0,1\}://[^ ,]*\).*|\1|p' <<<"$line")"
[[ -n "$ingest" && -n "$relay_api" && -n "$relay_admin" ]] || die "unexpected first line from thingspace-relay: $line"
public_url="$ingest/callbacks/v1/thingspace/$path_token"
info "ingest $ingest, api $relay_api, admin $relay_admin"

ready=""
for ((i = 0; i < 150; i++)); do
	if bin/httpget -max-time 2s "$relay_admin/readyz" >/dev/null 2>&1; then
		ready=1
		break
	fi
	kill -0 "$relay_pid" 2>/dev/null || die "thingspace-relay exited before it was ready"
	sleep 0.2
done
[[ -n "$ready" ]] || die "thingspace-relay was not ready within 30s ($relay_admin/readyz)"
info "ready ($relay_admin/readyz)"

info_json="$(bin/httpget -max-time 5s -H "Authorization: Bearer $api_token" "$relay_api/v1/info")" ||
	die "GET $relay_api/v1/info failed"
if command -v sha256sum >/dev/null 2>&1; then
	url_hash="$(printf '%s' "$public_url" | sha256sum | cut -d' ' -f1)"
	grep -q "$url_hash" <<<"$info_json" ||
		die "the relay's /v1/info does not list the public URL the demo registers ($info_json)"
	info "public ingest URL $ingest/callbacks/v1/thingspace/<path token> (its SHA-256 is in /v1/info)"
fi

# ---------------------------------------------------------------------------------------------
step "Picking devices and plans from the simulator"
bin/httpget -max-time 10s "$sim/sim/v1/devices" >"$tmp/devices.json" || die "GET $sim/sim/v1/devices failed"
bin/httpget -max-time 10s "$sim/sim/v1/plans" >"$tmp/plans.json" || die "GET $sim/sim/v1/plans failed"
json_rows eid state <"$tmp/devices.json" >"$tmp/devices.tsv" || die "could not read the device list ($json_tool)"
json_rows code type <"$tmp/plans.json" >"$tmp/plans.tsv" || die "could not read the plan list ($json_tool)"

# The preactivated devices come first in the inventory: the pool takes active ones from the
# first $preactivated, the profiles pre-active ones after them.
mapfile -t pool_eids < <(head -n "$preactivated" "$tmp/devices.tsv" | awk -F'\t' '$2 == "active" { print $1 }' | head -n "$pool")
mapfile -t profile_eids < <(tail -n +"$((preactivated + 1))" "$tmp/devices.tsv" | awk -F'\t' '$2 == "pre-active" { print $1 }' | head -n "$profiles")
mapfile -t us_plans < <(awk -F'\t' '$2 == "US" { print $1 }' "$tmp/plans.tsv")
((${#pool_eids[@]} == pool)) || die "wanted $pool active devices among the first $preactivated, found ${#pool_eids[@]}"
((${#profile_eids[@]} == profiles)) || die "wanted $profiles pre-active devices, found ${#profile_eids[@]}"
((${#us_plans[@]} >= 2)) || die "wanted at least two US plans from $sim/sim/v1/plans, found ${#us_plans[@]}"
info "$profiles pre-active devices for thingspace_esim_profile (${profile_eids[0]}, ...)"
info "$pool active devices on ${us_plans[0]} for thingspace_service_plan_assignment (${pool_eids[0]}, ...)"
info "US plans: ${us_plans[*]}; the profiles get ${us_plans[0]}, the assignment moves its devices to ${us_plans[1]}"

# JSON list of strings.
json_list() {
	local out="" x
	for x in "$@"; do out+="${out:+, }\"$x\""; done
	printf '[%s]' "$out"
}

work="$tmp/work"
mkdir -p "$work"
config="${DEMO_CONFIG:-examples/demo}"
compgen -G "$config/*.tf" >/dev/null || die "no .tf files in $config"
# What the apply step's header says: the default configuration's contents, or the folder
# DEMO_CONFIG named (whose resources the plan summary then counts).
if [[ -z "${DEMO_CONFIG:-}" ]]; then
	config_label="examples/demo: 1 listener, $profiles profiles, 1 plan assignment over $pool devices"
else
	config_label="$config (DEMO_CONFIG), with the demo's variables"
fi
cp "$config"/*.tf "$work/"
cat >"$work/terraform.tfvars.json" <<EOF
{
  "relay_ingest_url": "$public_url",
  "callback_username": "$callback_user",
  "callback_password": "$callback_password",
  "profile_eids": $(json_list "${profile_eids[@]}"),
  "profile_service_plan": "${us_plans[0]}",
  "pool_eids": $(json_list "${pool_eids[@]}"),
  "pool_service_plan": "${us_plans[1]}"
}
EOF

# The provider from ./bin without `terraform init`; its settings from the environment. The
# override names the full address the CLI resolves the bare source to: registry.terraform.io
# for Terraform, registry.opentofu.org for OpenTofu.
cat >"$tmp/terraformrc" <<EOF
provider_installation {
  dev_overrides {
    "$provider_host/fleetform/thingspace" = "$repo/bin"
  }
  direct {}
}
EOF
export TF_CLI_CONFIG_FILE="$tmp/terraformrc"
export THINGSPACE_BASE_URL="$sim" \
	THINGSPACE_CLIENT_ID=sim-client THINGSPACE_CLIENT_SECRET=sim-secret \
	THINGSPACE_USERNAME=sim-user THINGSPACE_PASSWORD=sim-pass \
	THINGSPACE_ACCOUNT_NAME=0000123456-00001 \
	THINGSPACE_RELAY_URL="$relay_api" THINGSPACE_RELAY_TOKEN="$api_token"

# run_cli ARGS...: the CLI in the work folder, the command shown first.
run_cli() {
	servers_alive
	printf '    %s$ %s %s%s\n' "$dim" "$cli" "$*" "$plain" >&3
	"$tf" -chdir="$work" "$@"
}

# plan_to FILE ARGS...: a saved plan, its text in FILE.txt; shows only its summary (the full plan
# of 36 resources is long: it is in the temporary folder with DEMO_KEEP=1).
plan_to() {
	local out="$1"
	shift
	run_cli plan -input=false -no-color -compact-warnings -out="$out" "$@" >"$out.txt" 2>&1 || {
		sed 's/^/    /' "$out.txt"
		die "$cli plan${*:+ $*} failed"
	}
	grep -E '^(Plan|No changes)' "$out.txt" | sed 's/^/    /'
}

# ---------------------------------------------------------------------------------------------
step "$cli apply ($config_label)"
plan_to "$tmp/apply.tfplan"
apply_started=$SECONDS
run_cli apply -input=false -auto-approve -parallelism="$parallelism" -compact-warnings ${no_color[@]+"${no_color[@]}"} "$tmp/apply.tfplan" ||
	die "$cli apply failed"
info "applied in $((SECONDS - apply_started))s"

step "What $cli_name created (the outputs are above)"
run_cli state list >"$tmp/state.txt" || die "$cli state list failed"
head -n 8 "$tmp/state.txt" | sed 's/^/    /'
info "... $(wc -l <"$tmp/state.txt" | tr -d ' ') resources in the state"

# ---------------------------------------------------------------------------------------------
step "$cli plan -detailed-exitcode: the second plan must be empty"
set +e
run_cli plan -detailed-exitcode -input=false -compact-warnings ${no_color[@]+"${no_color[@]}"} >"$tmp/plan.txt" 2>&1
plan_rc=$?
set -e
case "$plan_rc" in
0) info "exit code 0: no changes. The state matches the devices ThingSpace reports." ;;
2)
	sed 's/^/    /' "$tmp/plan.txt"
	die "the second plan is not empty (exit code 2)"
	;;
*)
	sed 's/^/    /' "$tmp/plan.txt"
	die "$cli plan failed (exit code $plan_rc)"
	;;
esac

# ---------------------------------------------------------------------------------------------
step "$cli destroy"
plan_to "$tmp/destroy.tfplan" -destroy
destroy_started=$SECONDS
run_cli apply -input=false -auto-approve -parallelism="$parallelism" -compact-warnings ${no_color[@]+"${no_color[@]}"} "$tmp/destroy.tfplan" ||
	die "$cli destroy failed"
info "destroyed in $((SECONDS - destroy_started))s"

# ---------------------------------------------------------------------------------------------
step "What the simulated ThingSpace saw ($sim/sim/v1/stats)"
bin/httpget -max-time 10s "$sim/sim/v1/stats" >"$tmp/stats.json" || die "GET $sim/sim/v1/stats failed"
stats_summary <"$tmp/stats.json" | sed 's/^/    /'
info "(concurrent instances with the same action share bulk requests; each device got each action once)"
if metrics="$(bin/httpget -max-time 5s "$relay_admin/metrics" 2>/dev/null)"; then
	# The relay's view: callbacks stored durably (and any duplicates or refusals).
	grep '^thingspace_relay_callbacks_received_total' <<<"$metrics" | grep -v ' 0$' | sed 's/^/    relay: /' || true
fi

step "Stopping the relay and the simulator"
stop "$relay_pid" thingspace-relay
relay_pid=""
stop "$sim_pid" thingspace-sim
sim_pid=""
info "stopped; the temporary folder is removed on exit"

printf '\n%smake demo: OK in %ds with %s%s\n' "$bold" "$((SECONDS - started))" "$cli_version" "$plain"
