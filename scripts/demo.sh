#!/usr/bin/env bash
# The demo: sandbox + collector + console on loopback, the example company, every flow once, then the
# Dagster UI with its daemon while a small live simulation keeps events arriving. Ctrl-C stops it all.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
export PATH="$PWD/.venv/bin:$PATH"
export GROWTH_STACK_HOME=${GROWTH_STACK_HOME:-$PWD/.growth_stack}
export DAGSTER_HOME=${DAGSTER_HOME:-$GROWTH_STACK_HOME/dagster_home}
RUN=$GROWTH_STACK_HOME/run
CUSTOMERS=${DEMO_CUSTOMERS:-1000}
DAYS=${DEMO_DAYS:-120}
SEED=${DEMO_SEED:-42}
LIVE_RATE=${DEMO_LIVE_EVENTS_PER_MINUTE:-60}
# Ports on 127.0.0.1; another set lets a second demo (or a measurement) run beside the default one.
SANDBOX_PORT=${DEMO_SANDBOX_PORT:-8090}
COLLECTOR_PORT=${DEMO_COLLECTOR_PORT:-8080}
CONSOLE_PORT=${DEMO_CONSOLE_PORT:-3001}
DAGSTER_PORT=${DEMO_DAGSTER_PORT:-3000}
# The pipelines, the simulator and the router reach the sandbox and the collector through these.
export GROWTH_STACK_SANDBOX_URL=${GROWTH_STACK_SANDBOX_URL:-http://127.0.0.1:$SANDBOX_PORT}
export GROWTH_STACK_COLLECTOR_URL=${GROWTH_STACK_COLLECTOR_URL:-http://127.0.0.1:$COLLECTOR_PORT}
export GROWTH_STACK_CONSOLE_URL=${GROWTH_STACK_CONSOLE_URL:-http://127.0.0.1:$CONSOLE_PORT}
export GROWTH_STACK_DAGSTER_URL=${GROWTH_STACK_DAGSTER_URL:-http://127.0.0.1:$DAGSTER_PORT}
mkdir -p "$RUN"

# Each process the demo starts runs in its own process group (setsid), so that stopping it stops
# everything it started (dagster dev's webserver, daemon and code servers too).
stop_servers() {
  local pids=()
  for name in live dagster console router collector sandbox; do
    if [ -f "$RUN/$name.pid" ]; then
      pid=$(cat "$RUN/$name.pid")
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
      rm -f "$RUN/$name.pid"
    fi
  done
  # a few seconds to finish cleanly, then whatever is left is killed
  for _ in $(seq 1 50); do
    alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && return 0
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true; done
}

if [ "${1:-}" = "stop" ]; then stop_servers; exit 0; fi

start() {  # name, command...: in its own process group, output to $RUN/<name>.log
  local name=$1; shift
  setsid "$@" >"$RUN/$name.log" 2>&1 < /dev/null &
  echo $! >"$RUN/$name.pid"
}

wait_for() {  # url, name
  for _ in $(seq 1 300); do
    if curl -fsS -o /dev/null "$1" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "The $2 did not start; see $RUN/$2.log" >&2
  exit 1
}

stop_servers
trap 'echo; echo "== Stopping"; stop_servers; exit 130' INT TERM
trap stop_servers EXIT
$BIN/growth-stack init >/dev/null
summary() {  # a read-only look at the warehouse; a run writing it at that moment only costs the summary
  echo "== What the stack holds"
  $BIN/python -c "from growth_stack_dagster.run_all import print_summary; print_summary()" ||
    echo "  (no summary: a run is writing the warehouse; the Dagster UI shows what it holds)"
}
# A rerun (company generated, every flow run once) builds nothing first, so the Dagster UI, the slowest part
# to start (it loads the code location), starts at once, beside the servers.
UI_STARTED=no
if [ -f "$GROWTH_STACK_HOME/simulation/summary.json" ] && [ -f "$RUN/flows.done" ]; then
  start dagster $BIN/dagster dev -h 127.0.0.1 -p "$DAGSTER_PORT"
  UI_STARTED=yes
  summary
fi
echo "== Starting the SaaS sandbox on 127.0.0.1:$SANDBOX_PORT, the collector on 127.0.0.1:$COLLECTOR_PORT, the console on 127.0.0.1:$CONSOLE_PORT"
start sandbox $BIN/growth-stack sandbox --host 127.0.0.1 --port "$SANDBOX_PORT"
start collector $BIN/growth-stack collector --host 127.0.0.1 --port "$COLLECTOR_PORT"
start console $BIN/growth-stack console --host 127.0.0.1 --port "$CONSOLE_PORT"
wait_for "http://127.0.0.1:$SANDBOX_PORT/_admin/health" sandbox
wait_for "http://127.0.0.1:$COLLECTOR_PORT/health" collector
echo "== Starting the streaming router (routes: growth_stack_dagster/router/routes.yaml)"
start router $BIN/growth-stack router
wait_for "http://127.0.0.1:$CONSOLE_PORT/health" console

if [ -f "$GROWTH_STACK_HOME/simulation/summary.json" ]; then
  echo "== The example company is already generated in $GROWTH_STACK_HOME (make clean starts over)"
else
  echo "== Generating the example company: $CUSTOMERS customers, $DAYS days (seed $SEED)"
  $BIN/growth-stack simulate --customers "$CUSTOMERS" --days "$DAYS" --seed "$SEED"
  rm -f "$RUN/flows.done"
fi

if [ -f "$RUN/flows.done" ]; then
  # A rerun: the warehouse is there; the sensors and schedules catch up with what arrived since.
  echo "== Every flow already ran once here; the daemon catches up with new events (make clean starts over)"
else
  curl -fsS -X POST "http://127.0.0.1:$SANDBOX_PORT/_admin/webhooks/flush" >/dev/null || true
  sleep 6  # let the collector close its open files so today's events are loadable
  echo "== Running every flow once (capture, ingest, compute)"
  $BIN/growth-stack run --no-summary
  touch "$RUN/flows.done"
fi
[ "$UI_STARTED" = yes ] || summary

echo "== Live: about $LIVE_RATE new events a minute from the example company's shoppers, through the collector"
start live $BIN/growth-stack simulate --live --live-events-per-minute "$LIVE_RATE"
echo "== Serving the Dagster UI on http://127.0.0.1:$DAGSTER_PORT and the console on http://127.0.0.1:$CONSOLE_PORT (Ctrl-C stops everything)"
[ "$UI_STARTED" = yes ] || start dagster $BIN/dagster dev -h 127.0.0.1 -p "$DAGSTER_PORT"
tail -n +1 -f "$RUN/dagster.log" &
TAIL=$!
# wait returns when dagster dev ends or a signal arrives (the INT/TERM trap then stops everything)
wait "$(cat "$RUN/dagster.pid")" || true
kill "$TAIL" 2>/dev/null || true
