#!/bin/sh
# Checks journeyd's Prometheus artifacts:
#   1. alerts.yml parses and its expressions are valid PromQL (promtool check rules);
#   2. the alerts and recording rules behave as alerts_test.yml says (promtool test rules), and
#      the example prometheus.yml is valid (promtool check config);
#   3. every query of the Grafana dashboard is valid PromQL (its Grafana variables replaced by
#      sample values and the queries checked as recording rules).
# promtool ships with Prometheus (Debian/Ubuntu: the `prometheus` package); step 3 needs jq.
# Run from anywhere; exits non-zero on the first failure.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dashboard="$here/../grafana/journeyd.json"
if ! command -v promtool >/dev/null 2>&1; then
    echo "check.sh: promtool not found (apt-get install prometheus, or put promtool on PATH)" >&2
    exit 2
fi
promtool check rules "$here/alerts.yml"
promtool test rules "$here/alerts_test.yml"
promtool check config "$here/prometheus.yml"

if ! command -v jq >/dev/null 2>&1; then
    echo "check.sh: jq not found, dashboard queries not checked" >&2
    exit 2
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Each query becomes a recording rule; Grafana's variables get values of the right shape.
jq -r '
  [.panels[] | select(.targets) | .targets[] | .expr] | to_entries
  | "groups:\n  - name: dashboard\n    rules:\n"
    + (map("      - record: dashboard:query_\(.key)\n        expr: \(.value | tojson)\n") | join(""))
' "$dashboard" \
  | sed -e 's/\$__rate_interval/5m/g' -e 's/\$lift_window/7d/g' \
        -e 's/\$instance/.*/g' -e 's/\$journey/.*/g' >"$tmp/dashboard-rules.yml"
echo "Checking dashboard queries of $dashboard"
promtool check rules "$tmp/dashboard-rules.yml"
