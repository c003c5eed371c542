#!/usr/bin/env bash
# Times `make demo` from its start until the Dagster UI serves the code location, then stops what it started.
# Run it twice with the same GROWTH_STACK_HOME: the first run sets everything up, the second is the rerun
# a user meets on a machine where the demo already ran, and prints a baseline measured right after it: a bare
# `dagster dev` on the same instance. Defaults keep clear of the demo's own ports and home:
#   GROWTH_STACK_HOME (default /tmp/growth-stack-demo-measure), DEMO_*_PORT (18090, 18080, 13001, 13000),
#   MEASURE_TIMEOUT_SECONDS (1800: a first run builds the example company).
set -euo pipefail
cd "$(dirname "$0")/.."
export GROWTH_STACK_HOME=${GROWTH_STACK_HOME:-/tmp/growth-stack-demo-measure}
export DAGSTER_HOME=${DAGSTER_HOME:-$GROWTH_STACK_HOME/dagster_home}
export DEMO_SANDBOX_PORT=${DEMO_SANDBOX_PORT:-18090} DEMO_COLLECTOR_PORT=${DEMO_COLLECTOR_PORT:-18080}
export DEMO_CONSOLE_PORT=${DEMO_CONSOLE_PORT:-13001} DEMO_DAGSTER_PORT=${DEMO_DAGSTER_PORT:-13000}
TIMEOUT=${MEASURE_TIMEOUT_SECONDS:-1800}
mkdir -p "$GROWTH_STACK_HOME"
LOG=$GROWTH_STACK_HOME/measure-demo.log
rerun=no
[ -f "$GROWTH_STACK_HOME/run/flows.done" ] && rerun=yes

# Up means usable: the webserver answers and its code location has loaded (Dagster's GraphQL says LOADED).
QUERY='{"query": "{ workspaceOrError { ... on Workspace { locationEntries { loadStatus } } } }"}'
ui_up() {
  local answer
  answer=$(curl -fsS -H 'Content-Type: application/json' -d "$QUERY" \
    "http://127.0.0.1:$DEMO_DAGSTER_PORT/graphql" 2>/dev/null) || return 1
  [[ $answer == *'"loadStatus":"LOADED"'* && $answer != *'"loadStatus":"LOADING"'* ]]
}
wait_for_ui() {  # pid of what was started: seconds from $start until the UI serves the code location
  while ! ui_up; do
    if ! kill -0 "$1" 2>/dev/null; then echo "it ended before the UI answered; see $LOG" >&2; exit 1; fi
    if (( $(date +%s) - ${start%.*} > TIMEOUT )); then echo "the UI did not answer within $TIMEOUT s; see $LOG" >&2; exit 1; fi
    sleep 0.2
  done
  echo "$(date +%s.%N) - $start" | bc
}

start=$(date +%s.%N)
setsid make demo >"$LOG" 2>&1 </dev/null &
MAKE_PID=$!
stop_demo() {
  bash scripts/demo.sh stop || true
  kill -TERM -- "-$MAKE_PID" 2>/dev/null || true
  wait "$MAKE_PID" 2>/dev/null || true
}
trap stop_demo EXIT
elapsed=$(wait_for_ui "$MAKE_PID")
printf 'make demo (%s) until the Dagster UI served the code location on :%s: %.1f s (load: %s)\n' \
  "$([ $rerun = yes ] && echo rerun || echo first run)" "$DEMO_DAGSTER_PORT" "$elapsed" "$(cut -d' ' -f1-3 /proc/loadavg)"
stop_demo
trap - EXIT

# Baseline, same run: `dagster dev` alone on the same instance and port, the floor a rerun cannot beat.
[ "$rerun" = yes ] || exit 0
start=$(date +%s.%N)
setsid .venv/bin/dagster dev -h 127.0.0.1 -p "$DEMO_DAGSTER_PORT" >"$GROWTH_STACK_HOME/measure-baseline.log" 2>&1 </dev/null &
DEV_PID=$!
stop_dev() {  # dagster dev can hang after its daemon has stopped: 10 s, then its whole group is killed
  kill -TERM -- "-$DEV_PID" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$DEV_PID" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL -- "-$DEV_PID" 2>/dev/null || true
}
trap stop_dev EXIT
baseline=$(wait_for_ui "$DEV_PID")
printf 'baseline, bare dagster dev on the same instance until it served the code location: %.1f s (load: %s)\n' \
  "$baseline" "$(cut -d' ' -f1-3 /proc/loadavg)"
