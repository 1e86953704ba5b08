#!/usr/bin/env bash
# Fetches the Apache Kafka broker's jars from Maven Central into deploy/kafka/.cache/lib, once.
#
# The classpath is whatever `mvn dependency:copy-dependencies` resolves for pom.xml (the broker,
# its tools and a log4j2 backend). A stamp holding the pom's checksum marks a complete fetch, so
# an interrupted download or a changed pom is fetched again and anything else is a no-op.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache="$here/.cache"
lib="$cache/lib"
stamp="$lib/.complete"
want=$(sha256sum "$here/pom.xml" | cut -d' ' -f1)

if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi

command -v java >/dev/null || { echo "fetch.sh: java (17 or later) is required" >&2; exit 1; }
command -v mvn >/dev/null || { echo "fetch.sh: mvn (Apache Maven) is required" >&2; exit 1; }

echo "fetching the Kafka broker's jars into $lib" >&2
rm -rf "$lib"
mkdir -p "$cache"
mvn -q -B -Dstyle.color=never -f "$here/pom.xml" \
  -Dmaven.repo.local="$cache/m2" \
  dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$lib" >&2
echo "$want" >"$stamp"
