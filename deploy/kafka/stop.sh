#!/usr/bin/env bash
# Stops the broker started by deploy/kafka/start.sh: SIGTERM (a clean, controlled shutdown),
# then SIGKILL if it is still running after KAFKA_STOP_TIMEOUT seconds (default 30).
# Idempotent: nothing running is not an error.
#
#   deploy/kafka/stop.sh [--dir D]      (the same --dir as given to start.sh)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dir="$here/run"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dir) dir=$2; shift 2 ;;
    -h|--help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "stop.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
pidfile="$dir/kafka.pid"
timeout=${KAFKA_STOP_TIMEOUT:-30}

if [[ ! -f "$pidfile" ]]; then
  echo "stop.sh: no broker running for $dir" >&2
  exit 0
fi
pid=$(cat "$pidfile")
if [[ -z "$pid" ]] || ! kill -0 "$pid" 2>/dev/null; then
  echo "stop.sh: no broker running for $dir (stale pid file)" >&2
  rm -f "$pidfile"
  exit 0
fi

kill -TERM "$pid"
deadline=$((SECONDS + timeout))
while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
  sleep 0.5
done
if kill -0 "$pid" 2>/dev/null; then
  echo "stop.sh: broker (pid $pid) still running after ${timeout}s, killing it" >&2
  kill -KILL "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
fi
rm -f "$pidfile"
echo "stop.sh: broker stopped (pid $pid)" >&2
