//! librdkafka client properties of the runtime's four clients (group consumer, transactional
//! producer, changelog restore consumer, admin client).
//!
//! The user's `kafka.client` properties (security, tuning) are passed through to every client;
//! the properties exactly-once depends on are then forced, because a user value for them would
//! silently break the guarantees (e.g. `enable.auto.commit=true` commits offsets outside the
//! transaction). A conflicting user value is reported with a warning.

use journey_spec::KafkaConfig;
use rdkafka::ClientConfig;

/// How often librdkafka reports statistics (consumer lag, broker states) to the runtime, from
/// the group consumer and the transactional producer.
pub const STATISTICS_INTERVAL_MS: &str = "5000";

/// The producer's `transactional.id`: configured, or `<group_id>-<hostname>` so that it is
/// stable across restarts of the same instance (a StatefulSet pod keeps its name), which lets
/// a restarted instance fence its own previous incarnation.
pub fn transactional_id(kafka: &KafkaConfig) -> String {
    match &kafka.transactional_id {
        Some(id) => id.clone(),
        None => {
            let host = hostname::get()
                .ok()
                .and_then(|h| h.into_string().ok())
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "localhost".to_owned());
            format!("{}-{}", kafka.group_id, host)
        }
    }
}

/// The group consumer's `group.instance.id` (static membership): `kafka.group_instance_id`, or
/// the instance's `transactional.id`, which is already stable per instance; `None` when
/// `kafka.static_membership` is off. A static member that restarts within
/// `session.timeout.ms` takes its partitions back without a rebalance (docs/operations.md,
/// "Recovery").
pub fn group_instance_id(kafka: &KafkaConfig) -> Option<String> {
    if !kafka.static_membership {
        return None;
    }
    Some(
        kafka
            .group_instance_id
            .clone()
            .unwrap_or_else(|| transactional_id(kafka)),
    )
}

/// The id of stream thread `worker` derived from an instance-wide id (`transactional.id`,
/// `group.instance.id`): worker 0 keeps it unchanged, so that going from one worker to several
/// leaves the existing ids (and their fencing and group membership) in place; worker `i > 0`
/// appends `-w<i>`. Both are stable across restarts as long as `workers` is not lowered, so a
/// restarted worker fences its own previous incarnation and takes its static membership back.
/// ACLs must cover the prefix (a `PREFIXED` transactional-id ACL on the instance's id;
/// docs/operations.md, "Workers").
pub fn worker_id(instance_id: &str, worker: usize) -> String {
    if worker == 0 {
        instance_id.to_owned()
    } else {
        format!("{instance_id}-w{worker}")
    }
}

/// Stream thread `worker`'s `transactional.id` ([`transactional_id`] through [`worker_id`]).
pub fn worker_transactional_id(kafka: &KafkaConfig, worker: usize) -> String {
    worker_id(&transactional_id(kafka), worker)
}

/// Stream thread `worker`'s `group.instance.id` ([`group_instance_id`] through
/// [`worker_id`]); `None` for a dynamic member.
pub fn worker_group_instance_id(kafka: &KafkaConfig, worker: usize) -> Option<String> {
    group_instance_id(kafka).map(|id| worker_id(&id, worker))
}

/// Partition assignment strategy. With one input topic, cooperative-sticky moves only the
/// partitions that must move. With several input topics, partition `p` of every input topic
/// must land on the same instance (they share the changelog partition `p` and the customers);
/// only the range assignor guarantees that co-partitioning, so it is used then.
pub fn assignment_strategy(kafka: &KafkaConfig) -> &'static str {
    if kafka.input_topics.len() > 1 {
        "range"
    } else {
        "cooperative-sticky"
    }
}

/// Properties of stream thread `worker`'s group consumer (every worker is a member of the
/// same group, with a `group.instance.id` of its own).
///
/// `group.instance.id` is owned by `kafka.static_membership`/`kafka.group_instance_id`: a value
/// written in `kafka.client` is overridden (or, with static membership off, dropped) with a
/// warning, like the other forced properties.
pub fn consumer_properties(kafka: &KafkaConfig, worker: usize) -> Vec<(String, String)> {
    let instance = worker_group_instance_id(kafka, worker);
    let mut forced = vec![
        ("bootstrap.servers", kafka.bootstrap_servers.as_str()),
        ("group.id", kafka.group_id.as_str()),
        ("isolation.level", "read_committed"),
        ("enable.auto.commit", "false"),
        ("enable.auto.offset.store", "false"),
        ("partition.assignment.strategy", assignment_strategy(kafka)),
    ];
    if let Some(id) = &instance {
        forced.push(("group.instance.id", id.as_str()));
    }
    // heartbeat.interval.ms: a member learns of a rebalance from its next heartbeat, and the
    // whole group waits for it; 1 s instead of librdkafka's 3 s shortens every rebalance (the
    // workers of a fresh group joining one after the other, a scale-out, a member leaving) by
    // up to 2 s, for one small request per worker and second (docs/reference/configuration.md).
    let defaults = [
        ("auto.offset.reset", "earliest"),
        ("statistics.interval.ms", STATISTICS_INTERVAL_MS),
        ("heartbeat.interval.ms", "1000"),
    ];
    let mut props = merge(kafka, &defaults, &forced);
    if instance.is_none() && kafka.client.contains_key("group.instance.id") {
        tracing::warn!(
            property = "group.instance.id",
            "kafka.client property ignored: kafka.static_membership is false"
        );
        props.retain(|(k, _)| k != "group.instance.id");
    }
    props
}

/// Properties of the transactional producer.
pub fn producer_properties(kafka: &KafkaConfig, transactional_id: &str) -> Vec<(String, String)> {
    let forced = [
        ("bootstrap.servers", kafka.bootstrap_servers.as_str()),
        ("transactional.id", transactional_id),
        ("enable.idempotence", "true"),
    ];
    // Statistics tell readiness that the brokers are back (see `txn::TxnProducerContext`).
    let defaults = [
        ("linger.ms", "5"),
        ("statistics.interval.ms", STATISTICS_INTERVAL_MS),
    ];
    let mut props = merge(kafka, &defaults, &forced);
    props.retain(|(k, _)| k != "group.instance.id");
    props
}

/// Properties of the changelog restore consumer: partitions are assigned by hand and nothing is
/// committed, committed data only, and an end-of-partition signal. librdkafka refuses `assign`
/// without a `group.id`, so it gets one of its own that never joins (no `subscribe`) and never
/// commits: the service's group is left untouched.
pub fn restore_properties(kafka: &KafkaConfig) -> Vec<(String, String)> {
    let group = format!("{}.restore", kafka.group_id);
    let forced = [
        ("bootstrap.servers", kafka.bootstrap_servers.as_str()),
        ("group.id", group.as_str()),
        ("isolation.level", "read_committed"),
        ("enable.auto.commit", "false"),
        ("enable.auto.offset.store", "false"),
        ("enable.partition.eof", "true"),
    ];
    // A restore drains the prefetched records far faster than the `queued.min.messages` a
    // fetch stops at: with librdkafka's default backoff (1 s) before the next fetch, a replay
    // spends most of its time waiting (benches/README.md, "Restore").
    let defaults = [("fetch.queue.backoff.ms", "10")];
    let mut props = merge(kafka, &defaults, &forced);
    // A static membership id belongs to the service's group member only.
    props.retain(|(k, _)| k != "group.instance.id");
    props
}

/// Properties of the admin client.
pub fn admin_properties(kafka: &KafkaConfig) -> Vec<(String, String)> {
    let mut props = merge(
        kafka,
        &[],
        &[("bootstrap.servers", kafka.bootstrap_servers.as_str())],
    );
    props.retain(|(k, _)| k != "group.instance.id");
    props
}

/// Builds a librdkafka configuration from properties.
pub fn client_config(props: &[(String, String)]) -> ClientConfig {
    let mut config = ClientConfig::new();
    for (k, v) in props {
        config.set(k, v);
    }
    config
}

/// Defaults, then the user's properties, then the forced ones (with a warning when the user
/// asked for something else).
fn merge(
    kafka: &KafkaConfig,
    defaults: &[(&str, &str)],
    forced: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut props: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: &str| {
        if let Some(slot) = props.iter_mut().find(|(key, _)| key == k) {
            slot.1 = v.to_owned();
        } else {
            props.push((k.to_owned(), v.to_owned()));
        }
    };
    for (k, v) in defaults {
        set(k, v);
    }
    for (k, v) in &kafka.client {
        set(k, v);
    }
    for (k, v) in forced {
        if let Some(user) = kafka.client.get(*k) {
            if user != v && *k != "bootstrap.servers" {
                tracing::warn!(
                    property = *k,
                    configured = %user,
                    used = *v,
                    "kafka.client property overridden: exactly-once processing requires this value"
                );
            }
        }
        set(k, v);
    }
    props
}

// -------------------------------------------------------------------------------------------
// What the linked librdkafka can do, and checks of `kafka.client` against it (`validate`).
// -------------------------------------------------------------------------------------------

/// The builtin features journeyd needs from librdkafka: TLS, SASL with SCRAM and OAUTHBEARER
/// (OIDC token fetching included) and zstd compression. See docs/operations.md, "Secured
/// clusters".
pub const REQUIRED_FEATURES: &[&str] = &[
    "ssl",
    "sasl",
    "sasl_plain",
    "sasl_scram",
    "sasl_oauthbearer",
    "oidc",
    "zstd",
    "gzip",
    "snappy",
    "lz4",
];

/// librdkafka's version string and `builtin.features` of the linked build.
pub fn librdkafka_build() -> (String, Vec<String>) {
    let (_, version) = rdkafka::util::get_rdkafka_version();
    let features = ClientConfig::new()
        .create_native_config()
        .and_then(|c| c.get("builtin.features"))
        .unwrap_or_default();
    let features = features
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(str::to_owned)
        .collect();
    (version, features)
}

/// Whether a property holds a secret: its value is never logged nor echoed in a message.
pub fn is_secret_property(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.contains("password")
        || name.contains("secret")
        || name.contains("private.key")
        || name == "ssl.key.pem"
        || name == "ssl_key"
        || name == "sasl.oauthbearer.config"
        || name == "sasl.jaas.config"
}

/// Every property name librdkafka knows (global and topic level), for suggestions: the first
/// column of the property table librdkafka prints (`rd_kafka_conf_properties_show`), the only
/// listing that includes properties without a default (like `sasl.username`).
fn known_properties() -> Vec<String> {
    let mut table = Vec::new();
    // SAFETY: `tmpfile` gives a FILE that librdkafka writes to and that is read back and
    // closed here; nothing else holds it.
    unsafe {
        let fp = libc::tmpfile();
        if fp.is_null() {
            return Vec::new();
        }
        rdkafka::bindings::rd_kafka_conf_properties_show(fp);
        libc::rewind(fp);
        let mut buf = [0u8; 8192];
        loop {
            let n = libc::fread(buf.as_mut_ptr().cast(), 1, buf.len(), fp);
            if n == 0 {
                break;
            }
            table.extend_from_slice(&buf[..n]);
        }
        libc::fclose(fp);
    }
    let mut names: Vec<String> = String::from_utf8_lossy(&table)
        .lines()
        .filter_map(|line| line.split_once('|'))
        .map(|(name, _)| name.trim())
        .filter(|name| {
            !name.is_empty()
                && name != &"Property"
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ".-_".contains(c))
        })
        .map(str::to_owned)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The SASL mechanisms librdkafka implements and the builtin feature each needs.
const SASL_MECHANISMS: &[(&str, &str)] = &[
    ("GSSAPI", "sasl_gssapi"),
    ("PLAIN", "sasl_plain"),
    ("SCRAM-SHA-256", "sasl_scram"),
    ("SCRAM-SHA-512", "sasl_scram"),
    ("OAUTHBEARER", "sasl_oauthbearer"),
];

/// Problems with the user's `kafka.client` properties for the linked librdkafka, as
/// `(property, message)`: unknown names (with a suggestion), values librdkafka rejects
/// (including a `security.protocol` this build cannot speak) and a SASL mechanism this build
/// lacks. Each property is set on a configuration object of its own (librdkafka's own check,
/// which knows every property of the build); no client is created and nothing connects.
pub fn property_problems(props: &[(String, String)]) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    let mut known: Option<Vec<String>> = None;
    for (name, value) in props {
        let mut one = ClientConfig::new();
        one.set(name, value);
        let Err(err) = one.create_native_config() else {
            continue;
        };
        let message = match err {
            rdkafka::error::KafkaError::ClientConfig(
                rdkafka::types::RDKafkaConfRes::RD_KAFKA_CONF_UNKNOWN,
                ..,
            ) => {
                let known = known.get_or_insert_with(known_properties);
                format!(
                    "unknown Kafka client property `{name}`{}",
                    did_you_mean(name, known)
                )
            }
            rdkafka::error::KafkaError::ClientConfig(_, description, ..) => {
                format!(
                    "Kafka client property `{name}`: {}",
                    redacted(name, value, description)
                )
            }
            other => format!("Kafka client property `{name}`: {other}"),
        };
        problems.push((name.clone(), message));
    }
    let get = |key: &str| props.iter().rev().find(|(k, _)| k == key);
    let protocol = get("security.protocol").map(|(_, v)| v.to_ascii_lowercase());
    let protocol_rejected = problems.iter().any(|(k, _)| k == "security.protocol");
    if !protocol_rejected && protocol.as_deref().is_some_and(|p| p.starts_with("sasl_")) {
        let (_, features) = librdkafka_build();
        let configured = get("sasl.mechanism").or_else(|| get("sasl.mechanisms"));
        let mechanism = configured.map_or("GSSAPI", |(_, v)| v.as_str());
        let at = configured.map_or("security.protocol", |(k, _)| k.as_str());
        let default_note = if configured.is_none() {
            " (librdkafka's default when `sasl.mechanism` is not set)"
        } else {
            ""
        };
        match SASL_MECHANISMS
            .iter()
            .find(|(m, _)| m.eq_ignore_ascii_case(mechanism.trim()))
        {
            None => problems.push((
                at.to_owned(),
                format!(
                    "unknown SASL mechanism `{mechanism}`: expected one of {}",
                    SASL_MECHANISMS
                        .iter()
                        .map(|(m, _)| *m)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
            Some((m, feature)) if !features.iter().any(|f| f == feature) => problems.push((
                at.to_owned(),
                format!(
                    "SASL mechanism {m}{default_note} is not supported by this build of \
                     librdkafka (builtin features: {}); supported: {}",
                    features.join(","),
                    SASL_MECHANISMS
                        .iter()
                        .filter(|(_, f)| features.iter().any(|x| x == f))
                        .map(|(m, _)| *m)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
            Some(_) => {}
        }
    }
    problems
}

/// Collects what librdkafka reports while a client tries the cluster: error events and
/// error-level log lines (authentication and TLS failures are reported only there).
#[derive(Default)]
struct Reports(std::sync::Mutex<Vec<String>>);

impl rdkafka::ClientContext for Reports {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        if (level as i32) <= rdkafka::config::RDKafkaLogLevel::Error as i32 {
            if let Ok(mut r) = self.0.lock() {
                r.push(format!("{fac}: {message}"));
            }
        }
    }
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        if let Ok(mut r) = self.0.lock() {
            r.push(format!("{error}: {reason}"));
        }
    }
}

impl rdkafka::consumer::ConsumerContext for Reports {}

/// Why the cluster cannot be reached with these settings, as librdkafka explains it (e.g.
/// "SASL authentication error: Authentication failed during authentication due to invalid
/// credentials with SASL mechanism SCRAM-SHA-512"), or `None` if it can be, or if librdkafka
/// says nothing more precise. Meant for the failure path of a first metadata request, whose
/// own error ("broker transport failure") does not say why: a throwaway consumer that never
/// joins a group asks for metadata and its error events are served.
pub fn connection_problem(kafka: &KafkaConfig, timeout: std::time::Duration) -> Option<String> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let mut props = admin_properties(kafka);
    props.retain(|(k, _)| k != "group.id" && k != "group.instance.id");
    let mut config = client_config(&props);
    config.set_log_level(rdkafka::config::RDKafkaLogLevel::Error);
    let consumer: BaseConsumer<Reports> = config.create_with_context(Reports::default()).ok()?;
    let reachable = consumer.fetch_metadata(None, timeout).is_ok();
    // Error events and logs wait in the queue until served.
    let _ = consumer.poll(std::time::Duration::from_millis(200));
    let reports = std::mem::take(&mut *consumer.context().0.lock().ok()?);
    if reachable {
        return None;
    }
    let secrets: Vec<&str> = props
        .iter()
        .filter(|(k, v)| is_secret_property(k) && !v.is_empty())
        .map(|(_, v)| v.as_str())
        .collect();
    let precise = |r: &&String| is_definitive_connection_problem(r);
    let reason = reports
        .iter()
        .find(precise)
        .or_else(|| reports.first())?
        .clone();
    Some(
        secrets
            .iter()
            .fold(reason, |text, secret| text.replace(secret, "[redacted]")),
    )
}

/// Whether a connection problem reported by librdkafka is one that waiting will not fix
/// (credentials, TLS trust, an unsupported mechanism), as opposed to a broker that is down or
/// slow to answer.
pub fn is_definitive_connection_problem(reason: &str) -> bool {
    let lower = reason.to_ascii_lowercase();
    ["authentication", "ssl", "certificate", "handshake", "sasl"]
        .iter()
        .any(|w| lower.contains(w))
}

/// `text` with a secret property's value replaced by `[redacted]` (librdkafka's messages quote
/// rejected values).
pub fn redacted(name: &str, value: &str, text: String) -> String {
    if is_secret_property(name) && !value.is_empty() {
        text.replace(value, "[redacted]")
    } else {
        text
    }
}

/// `; did you mean `x`?` for the closest known property name, if any is close.
fn did_you_mean(name: &str, known: &[String]) -> String {
    let best = known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(name, k), k))
        .min_by_key(|(d, _)| *d);
    match best {
        Some((d, k)) if d <= 3.max(name.len() / 4) => format!("; did you mean `{k}`?"),
        _ => String::new(),
    }
}

#[cfg(test)]
#[path = "clients_tests.rs"]
mod tests;
