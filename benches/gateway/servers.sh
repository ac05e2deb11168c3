# Sourced by scripts/bench and scripts/bench-store: what both need to start the reference
# Pushgateway and cronpush on loopback, stop them, and read their counters. Not a program of its
# own (no shebang, not executable).
#
# The caller sets, before sourcing:
#   out            the directory for logs (server logs go to $out/NAME.log)
#   ready_timeout  seconds a server may take to answer GET /-/ready
#   stop_timeout   seconds a server may take to exit after SIGTERM
# and may set ready_poll (seconds between readiness probes, default 0.1).
#
# Child processes are tracked by PID in `pids` and stopped by the EXIT trap set here.

bench_name=$(basename "$0")
log() { echo "$bench_name: $*" >&2; }
die() {
  echo "$bench_name: error: $*" >&2
  exit 1
}
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# need_packages COMMAND=PACKAGE...: installs, through apt, the Debian packages whose commands
# are missing.
need_packages() {
  local missing=() pair
  for pair in "$@"; do
    command -v "${pair%%=*}" >/dev/null || missing+=("${pair#*=}")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
  fi
}

pids=()
# Run by the EXIT trap after the servers are stopped (scripts/bench-store unmounts its disk).
cleanup_hooks=()

# True while the process exists and is not a zombie (an unreaped child still answers kill -0).
alive() {
  local state
  state=$(awk '/^State:/ { print $2 }' "/proc/$1/status" 2>/dev/null) || return 1
  [[ -n $state && $state != Z ]]
}

# stop PID NAME: SIGTERM, wait (bounded) for the exit, SIGKILL as a last resort.
stop() {
  local pid=$1 name=$2 i
  if alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < stop_timeout * 10; i++)); do
      alive "$pid" || break
      sleep 0.1
    done
    if alive "$pid"; then
      log "$name (pid $pid) ignored SIGTERM for ${stop_timeout}s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  wait "$pid" 2>/dev/null || true
  forget "$pid"
}

forget() {
  local keep=() p
  for p in ${pids[@]+"${pids[@]}"}; do [ "$p" = "$1" ] || keep+=("$p"); done
  pids=(${keep[@]+"${keep[@]}"})
}

cleanup() {
  local p hook
  for p in ${pids[@]+"${pids[@]}"}; do stop "$p" "child process"; done
  for hook in ${cleanup_hooks[@]+"${cleanup_hooks[@]}"}; do "$hook" || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM # run the EXIT trap on Ctrl-C too

# run COMMAND...: as if in the foreground, but interruptible. Bash runs a trap only once its
# foreground child has ended (a wrk run lasts up to a minute), whereas `wait` returns at once,
# so Ctrl-C stops the benchmark, wrk included, without delay.
run() {
  "$@" &
  local pid=$! rc=0
  pids+=("$pid")
  wait "$pid" || rc=$?
  forget "$pid"
  return "$rc"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A free loopback port below the kernel's ephemeral range (where client sockets, wrk's included,
# take their source ports), picked at random so that parallel runs or test suites rarely collide.
free_port() {
  local i p
  for ((i = 0; i < 50; i++)); do
    p=$((20000 + RANDOM % 10000))
    if [ "$p" != "${1:-}" ] && ! port_in_use "$p"; then
      echo "$p"
      return 0
    fi
  done
  die "found no free port in 20000-29999"
}

# start NAME PORT COMMAND...: runs COMMAND in the background with its output in $out/NAME.log,
# waits until GET /-/ready answers 200, and leaves the PID in $started_pid and the seconds from
# the start to the first 200 in $started_seconds. (Not a command substitution: a subshell could
# not own the child we later signal and wait for.)
started_pid=
started_seconds=
start() {
  local name=$1 port=$2 began i
  shift 2
  port_in_use "$port" && die "127.0.0.1:$port is already in use (set the *_PORT knobs)"
  began=$(date +%s.%N)
  "$@" >"$out/$name.log" 2>&1 &
  started_pid=$!
  pids+=("$started_pid")
  local poll=${ready_poll:-0.1}
  local tries
  tries=$(awk -v t="$ready_timeout" -v p="$poll" 'BEGIN { printf "%d", t / p }')
  for ((i = 0; i < tries; i++)); do
    if curl -fsS -o /dev/null --max-time 5 "http://127.0.0.1:$port/-/ready" 2>/dev/null; then
      started_seconds=$(awk -v a="$began" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }')
      return 0
    fi
    alive "$started_pid" || die "$name exited before it was ready; last lines of $out/$name.log:
$(tail -n 20 "$out/$name.log")"
    sleep "$poll"
  done
  die "$name was not ready on 127.0.0.1:$port after ${ready_timeout}s; see $out/$name.log"
}

# Bytes a process has caused to be written to storage so far, and its write system calls (to
# files and sockets alike).
written_bytes() { awk '/^write_bytes:/ { print $2 }' "/proc/$1/io"; }
write_calls() { awk '/^syscw:/ { print $2 }' "/proc/$1/io"; }

# CPU time (user + system, in clock ticks) a process has used so far. Fields 14 and 15 of
# /proc/PID/stat, counted after the ")" that ends the command name (which may hold spaces).
clk_tck=$(getconf CLK_TCK)
cpu_ticks() {
  local stat f
  stat=$(<"/proc/$1/stat")
  read -r -a f <<<"${stat##*) }"
  echo $((f[11] + f[12]))
}

# bench_value KEY FILE: a "BENCH key=value" line printed by the wrk Lua scripts.
bench_value() { awk -F= -v k="BENCH $1" '$1 == k { print $2 }' "$2"; }

num() { [[ $1 =~ ^[0-9.]+ ]] && echo "${BASH_REMATCH[0]}"; }
# Digits grouped by thousands (1234567.8 -> 1,234,567.8), without relying on a locale.
commas() { sed -e ':a' -e 's/^\([0-9]\+\)\([0-9]\{3\}\)/\1,\2/' -e 'ta' <<<"$1"; }
fmt() { commas "$(awk -v v="$(num "$1")" -v f="$2" 'BEGIN { printf f, v }')"; }
