#!/usr/bin/env bash
# Seeds the fuzz corpora from the repository's examples:
#
#   fuzz/seed.sh DIR    # writes DIR/<target>/ for every fuzz target (existing files are kept)
#
# event_decoders   every event line of tests/scenarios/*/events.jsonl (and the dead-letter
#                  fixtures' lines when present)
# journey_loader   journeys/*.yaml and every journey of tests/fixtures (valid and invalid)
# config_loader    deploy/journeyd.yaml and every configuration of tests/fixtures
# changelog_state  each scenario's events, a NUL, then a few (offset, xor) mutations
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:?usage: fuzz/seed.sh DIR}
mkdir -p "$out"/{event_decoders,journey_loader,config_loader,changelog_state}

n=0
for f in "$root"/tests/scenarios/*/events.jsonl; do
  while IFS= read -r line; do
    [[ -n $line ]] || continue
    n=$((n + 1))
    printf '%s' "$line" >"$out/event_decoders/seed-$n.json"
  done <"$f"
done

for f in "$root"/journeys/*.y*ml "$root"/tests/fixtures/kafka/journeys/*.y*ml \
  "$root"/tests/fixtures/validate/*/journeys/*.y*ml; do
  [[ -f $f ]] || continue
  cp "$f" "$out/journey_loader/$(echo "${f#"$root"/}" | tr '/' '_')"
done

for f in "$root"/deploy/journeyd.yaml "$root"/tests/fixtures/validate/*/journeyd.yaml \
  "$root"/tests/fixtures/kafka/journeyd.yaml.in; do
  [[ -f $f ]] || continue
  cp "$f" "$out/config_loader/$(echo "${f#"$root"/}" | tr '/' '_')"
done

for f in "$root"/tests/scenarios/*/events.jsonl; do
  name=$(basename "$(dirname "$f")")
  { cat "$f"; printf '\0\001\000\377\010\000\001'; } >"$out/changelog_state/$name"
done
echo "fuzz corpora seeded in $out" >&2
