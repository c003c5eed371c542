#!/usr/bin/env bash
# The demo: sandbox + collector on loopback, the example company, every flow once, then the UI.
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
mkdir -p "$RUN"

stop_servers() {
  for name in router collector sandbox; do
    if [ -f "$RUN/$name.pid" ]; then
      kill "$(cat "$RUN/$name.pid")" 2>/dev/null || true
      rm -f "$RUN/$name.pid"
    fi
  done
}

if [ "${1:-}" = "stop" ]; then stop_servers; exit 0; fi

wait_for() {  # url, name
  for _ in $(seq 1 100); do
    if curl -fsS -o /dev/null "$1" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "The $2 did not start; see $RUN/$2.log" >&2
  exit 1
}

stop_servers
trap stop_servers EXIT
$BIN/growth-stack init >/dev/null
echo "== Starting the SaaS sandbox on 127.0.0.1:8090 and the collector on 127.0.0.1:8080"
$BIN/growth-stack sandbox --host 127.0.0.1 --port 8090 >"$RUN/sandbox.log" 2>&1 &
echo $! >"$RUN/sandbox.pid"
$BIN/growth-stack collector --host 127.0.0.1 --port 8080 >"$RUN/collector.log" 2>&1 &
echo $! >"$RUN/collector.pid"
wait_for http://127.0.0.1:8090/_admin/health sandbox
wait_for http://127.0.0.1:8080/health collector
echo "== Starting the streaming router (routes: growth_stack_dagster/router/routes.yaml)"
$BIN/growth-stack router >"$RUN/router.log" 2>&1 &
echo $! >"$RUN/router.pid"

if [ -f "$GROWTH_STACK_HOME/simulation/summary.json" ]; then
  echo "== The example company is already generated in $GROWTH_STACK_HOME (make clean starts over)"
else
  echo "== Generating the example company: $CUSTOMERS customers, $DAYS days (seed $SEED)"
  $BIN/growth-stack simulate --customers "$CUSTOMERS" --days "$DAYS" --seed "$SEED"
fi
curl -fsS -X POST http://127.0.0.1:8090/_admin/webhooks/flush >/dev/null || true
sleep 6  # let the collector close its open files so today's events are loadable

echo "== Running every flow once (capture, ingest, compute)"
$BIN/growth-stack run

echo "== Serving the Dagster UI on http://127.0.0.1:3000 (Ctrl-C stops it and the servers)"
exec_ui() { $BIN/dagster dev -h 127.0.0.1 -p 3000; }
exec_ui
