#!/usr/bin/env bash
# Turnout's benchmark (issue 6). Installs what it needs, then runs bench/bench.py on core 0.
#
#   bash bench/run.sh            full run (< 10 min): tables on stdout, bench/out/results.json
#   bash bench/run.sh --smoke    one short wrk run against Turnout only (< 30 s)
#   bash bench/run.sh --profile  py-spy flame graph of Turnout under load (bench/out/profile.svg);
#                                add --stream to load it with 500-chunk streams instead of wrk
#   bash bench/run.sh --soak     RSS over 10 minutes of mixed load (~11 min; --minutes N for less)
#   bash bench/run.sh --apis-only --only turnout-20
#                                chat vs Anthropic Messages vs OpenAI Responses on one Turnout (~2 min)
#   taskset -c 1 .venv/bin/python bench/strategies.py
#                                CPU per request of each routing strategy (pick + feed), no server (~30 s)
#
# Other options (bench/bench.py --help): --ref REV measures a commit instead of the work tree,
# --src DIR a scratch copy, --only KEYS some targets, --quick non-streaming runs only,
# --env NAME=VALUE extra environment for Turnout, --duration S per wrk run.
#
# Needs root or sudo-less apt for nginx and wrk (Debian), and PyPI for the LiteLLM proxy's venv.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
OUT="$HERE/out"
PROXY_VENV="$HERE/.venv-litellm-proxy"
TOOLS_VENV="$HERE/.venv-tools"
# The LiteLLM proxy compared against: 1.102.4, its last release whose [proxy] extra installs here
# (1.110 needs litellm-proxy==1.110.x, which the registry does not serve). The gateway pins 1.110.2.
LITELLM_VERSION="1.102.4"
MODE="full"
for arg in "$@"; do
  case "$arg" in
    --smoke) MODE="smoke" ;;
    --profile) MODE="profile" ;;
    --soak) MODE="soak" ;;
    --apis-only) MODE="apis" ;;
  esac
done

mkdir -p "$OUT"
: > "$OUT/pgids"

# Whatever happens, every process group the driver started goes away with us.
cleanup() {
  local pgid
  while read -r pgid; do
    [ -n "$pgid" ] && kill -TERM -- "-$pgid" 2>/dev/null || true
  done < "$OUT/pgids"
  sleep 0.3
  while read -r pgid; do
    [ -n "$pgid" ] && kill -KILL -- "-$pgid" 2>/dev/null || true
  done < "$OUT/pgids"
}
DRIVER=""
stop_driver() {
  # bash runs traps only between commands, so the driver runs in the background and we `wait`.
  if [ -n "$DRIVER" ] && kill -0 "$DRIVER" 2>/dev/null; then
    kill -TERM "$DRIVER" 2>/dev/null || true
    wait "$DRIVER" 2>/dev/null || true
  fi
  exit 130
}
trap cleanup EXIT
trap stop_driver INT TERM

log() { printf 'bench: %s\n' "$*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

need_debian_packages() {
  local missing=()
  command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
  command -v wrk >/dev/null 2>&1 || missing+=(wrk)
  command -v taskset >/dev/null 2>&1 || missing+=(util-linux)
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]} with apt-get"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq "${missing[@]}" >/dev/null
}

need_turnout() {
  if [ ! -x "$REPO/.venv/bin/turnout" ]; then
    log "setting up Turnout's venv (make install)"
    make -C "$REPO" install >/dev/null
  fi
}

# The LiteLLM proxy gets its own venv so its extras never touch Turnout's.
need_litellm_proxy() {
  local stamp="$PROXY_VENV/.installed-$LITELLM_VERSION"
  [ -f "$stamp" ] && return 0
  log "installing litellm[proxy]==$LITELLM_VERSION into ${PROXY_VENV#$REPO/} (one time)"
  local logfile="$OUT/litellm-proxy-install.log"
  if python3 -m venv "$PROXY_VENV" >"$logfile" 2>&1 \
    && "$PROXY_VENV/bin/python" -m pip install -q --upgrade pip >>"$logfile" 2>&1 \
    && "$PROXY_VENV/bin/python" -m pip install -q "litellm[proxy]==$LITELLM_VERSION" >>"$logfile" 2>&1; then
    touch "$stamp"
  else
    export BENCH_PROXY_SKIP="litellm[proxy]==$LITELLM_VERSION did not install (see ${logfile#$REPO/})"
    log "$BENCH_PROXY_SKIP"
  fi
}

need_pyspy() {
  [ -x "$TOOLS_VENV/bin/py-spy" ] && return 0
  log "installing py-spy into ${TOOLS_VENV#$REPO/}"
  python3 -m venv "$TOOLS_VENV"
  "$TOOLS_VENV/bin/python" -m pip install -q py-spy >/dev/null 2>&1
}

need_debian_packages
need_turnout
case "$MODE" in
  full) need_litellm_proxy ;;
  profile) need_pyspy ;;
esac

export LITELLM_LOCAL_MODEL_COST_MAP=True
# The driver, wrk, nginx and the streaming client live on core 0; each target is started on core 1.
taskset -c 0 "$REPO/.venv/bin/python" "$HERE/bench.py" "$@" &
DRIVER=$!
wait "$DRIVER"
