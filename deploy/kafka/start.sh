#!/usr/bin/env bash
# Starts a single-node Apache Kafka 4 broker (KRaft, combined broker + controller) for local
# development and the real-broker tests, listening on 127.0.0.1 only.
#
#   deploy/kafka/start.sh [--port N] [--controller-port N] [--dir D] [--fresh]
#                         [--sasl-scram USER:PASSWORD [--sasl-port N]
#                          [--tls-keystore PEM [--sasl-ssl-port N]]]
#
# --port             client (PLAINTEXT) port, default 9092
# --controller-port  KRaft controller port, default port + 1
# --dir              state directory (server.properties, data, server.log, kafka.pid),
#                    default deploy/kafka/run
# --fresh            delete the directory's data first (a new, empty cluster)
# --sasl-scram       also listen for SASL_PLAINTEXT clients with SCRAM-SHA-512 on --sasl-port and
#                    create that SCRAM credential; the credential is written when the data
#                    directory is formatted (first start or --fresh), so changing it needs --fresh
# --sasl-port        SASL_PLAINTEXT port, default port + 2 (only with --sasl-scram)
# --tls-keystore     also listen for SASL_SSL clients (SCRAM-SHA-512 over TLS) on --sasl-ssl-port,
#                    with this PEM file as the broker's key and certificate chain (an unencrypted
#                    PKCS#8 private key, then the certificates; only with --sasl-scram)
# --sasl-ssl-port    SASL_SSL port, default port + 3 (only with --tls-keystore)
#
# Idempotent: if the broker of that directory is already running, it only waits until it serves.
# Prints the bootstrap address (127.0.0.1:PORT) on stdout when the broker answers a metadata
# request; fails with the tail of its log if it does not within KAFKA_START_TIMEOUT seconds
# (default 120). Stop it with deploy/kafka/stop.sh [--dir D].
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
port=9092
controller_port=
dir="$here/run"
fresh=0
sasl_scram=
sasl_port=
tls_keystore=
sasl_ssl_port=
while [[ $# -gt 0 ]]; do
  case "$1" in
    --port) port=$2; shift 2 ;;
    --controller-port) controller_port=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    --fresh) fresh=1; shift ;;
    --sasl-scram) sasl_scram=$2; shift 2 ;;
    --sasl-port) sasl_port=$2; shift 2 ;;
    --tls-keystore) tls_keystore=$2; shift 2 ;;
    --sasl-ssl-port) sasl_ssl_port=$2; shift 2 ;;
    -h|--help) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "start.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
controller_port=${controller_port:-$((port + 1))}
# The PLAINTEXT listener stays the inter-broker listener and the printed bootstrap address; the
# SASL listener is an additional one for clients.
listeners="PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port"
advertised="PLAINTEXT://127.0.0.1:$port"
protocol_map="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
sasl_props=
scram_args=()
if [[ -n $sasl_scram ]]; then
  sasl_user=${sasl_scram%%:*}
  sasl_password=${sasl_scram#*:}
  if [[ $sasl_scram != *:* || -z $sasl_user || -z $sasl_password ]]; then
    echo "start.sh: --sasl-scram takes USER:PASSWORD" >&2
    exit 2
  fi
  sasl_port=${sasl_port:-$((port + 2))}
  listeners="$listeners,SASL_PLAINTEXT://127.0.0.1:$sasl_port"
  advertised="$advertised,SASL_PLAINTEXT://127.0.0.1:$sasl_port"
  protocol_map="$protocol_map,SASL_PLAINTEXT:SASL_PLAINTEXT"
  sasl_props="
# Clients authenticate with SCRAM-SHA-512 on the SASL_PLAINTEXT listener (start.sh --sasl-scram).
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;"
  # kafka-storage format --add-scram: the credential is part of the initial KRaft metadata.
  scram_args=(--add-scram "SCRAM-SHA-512=[name=$sasl_user,password=$sasl_password]")
  if [[ -n $tls_keystore ]]; then
    [[ -f $tls_keystore ]] || { echo "start.sh: no such file: $tls_keystore" >&2; exit 2; }
    tls_keystore=$(cd "$(dirname "$tls_keystore")" && pwd)/$(basename "$tls_keystore")
    sasl_ssl_port=${sasl_ssl_port:-$((port + 3))}
    listeners="$listeners,SASL_SSL://127.0.0.1:$sasl_ssl_port"
    advertised="$advertised,SASL_SSL://127.0.0.1:$sasl_ssl_port"
    protocol_map="$protocol_map,SASL_SSL:SASL_SSL"
    sasl_props="$sasl_props
# SCRAM-SHA-512 over TLS on the SASL_SSL listener (start.sh --tls-keystore).
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PEM
ssl.keystore.location=$tls_keystore"
  elif [[ -n $sasl_ssl_port ]]; then
    echo "start.sh: --sasl-ssl-port needs --tls-keystore" >&2
    exit 2
  fi
elif [[ -n $sasl_port || -n $tls_keystore || -n $sasl_ssl_port ]]; then
  echo "start.sh: --sasl-port, --tls-keystore and --sasl-ssl-port need --sasl-scram" >&2
  exit 2
fi
timeout=${KAFKA_START_TIMEOUT:-120}
bootstrap="127.0.0.1:$port"

"$here/fetch.sh"
classpath="$here/.cache/lib/*"

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
pidfile="$dir/kafka.pid"
log="$dir/server.log"
props="$dir/server.properties"

running_pid() {
  local pid
  [[ -f "$pidfile" ]] || return 1
  pid=$(cat "$pidfile")
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# A metadata round trip (ApiVersions to every broker), not just an open socket: the port opens
# before the broker has caught up with the controller's metadata.
serves() {
  java -cp "$classpath" -Dlog4j2.configurationFile="$here/tools-log4j2.properties" \
    org.apache.kafka.tools.BrokerApiVersionsCommand --bootstrap-server "$bootstrap" \
    >/dev/null 2>&1
}

fail() {
  echo "start.sh: $1" >&2
  if [[ -f "$log" ]]; then
    echo "---- last lines of $log ----" >&2
    tail -n 40 "$log" >&2
  fi
  exit 1
}

if pid=$(running_pid); then
  echo "start.sh: broker already running (pid $pid), waiting until it serves" >&2
else
  for p in "$port" "$controller_port" ${sasl_port:+"$sasl_port"} ${sasl_ssl_port:+"$sasl_ssl_port"}; do
    if port_open "$p"; then
      fail "port $p on 127.0.0.1 is already in use by another process"
    fi
  done
  if [[ $fresh == 1 ]]; then
    rm -rf "$dir/data"
  fi
  cat >"$props" <<PROPS
# Written by deploy/kafka/start.sh; regenerated at every start.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=$listeners
advertised.listeners=$advertised
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=$protocol_map
$sasl_props
log.dirs=$dir/data

# One node: every internal topic has one replica.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=8
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
num.partitions=3
default.replication.factor=1
min.insync.replicas=1

# Tests and local runs: consumers join at once instead of waiting for more members.
group.initial.rebalance.delay.ms=0

# Compaction that actually happens within minutes (the state changelog is compacted): segments
# roll every minute and the cleaner looks often and cleans as soon as anything is dirty.
log.roll.ms=60000
log.segment.bytes=16777216
log.cleaner.enable=true
log.cleaner.backoff.ms=1000
log.cleaner.min.cleanable.ratio=0.01
log.cleaner.min.compaction.lag.ms=0
log.cleaner.delete.retention.ms=60000
log.cleaner.dedupe.buffer.size=16777216
log.retention.hours=24
PROPS

  if [[ ! -f "$dir/data/meta.properties" ]]; then
    # A KRaft cluster id is 16 random bytes, base64url without padding. One that starts with
    # `-` would be read as an option by the format tool (`-t -x...`): draw again.
    cluster_id=-
    while [[ $cluster_id == -* ]]; do
      cluster_id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
    done
    java -cp "$classpath" -Dlog4j2.configurationFile="$here/tools-log4j2.properties" \
      kafka.tools.StorageTool format -t "$cluster_id" -c "$props" ${scram_args[@]+"${scram_args[@]}"} \
      >"$dir/format.log" 2>&1 \
      || { cat "$dir/format.log" >&2; fail "formatting $dir/data failed"; }
  fi

  # setsid: the broker outlives this script and is not hit by the caller's Ctrl-C.
  # shellcheck disable=SC2086
  setsid java ${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g} -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$here/log4j2.properties" \
    -cp "$classpath" kafka.Kafka "$props" >"$log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  echo "start.sh: broker starting (pid $!), log $log" >&2
fi

deadline=$((SECONDS + timeout))
until port_open "$port" && serves; do
  running_pid >/dev/null || fail "the broker exited during startup"
  ((SECONDS < deadline)) || fail "the broker did not serve on $bootstrap within ${timeout}s"
  sleep 1
done
echo "$bootstrap"
