//! librdkafka client properties of the runtime's four clients (group consumer, transactional
//! producer, changelog restore consumer, admin client).
//!
//! The user's `kafka.client` properties (security, tuning) are passed through to every client;
//! the properties exactly-once depends on are then forced, because a user value for them would
//! silently break the guarantees (e.g. `enable.auto.commit=true` commits offsets outside the
//! transaction). A conflicting user value is reported with a warning.

use journey_spec::KafkaConfig;
use rdkafka::ClientConfig;

/// How often librdkafka reports statistics (consumer lag, broker states) to the runtime.
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

/// Properties of the group consumer.
///
/// `group.instance.id` is owned by `kafka.static_membership`/`kafka.group_instance_id`: a value
/// written in `kafka.client` is overridden (or, with static membership off, dropped) with a
/// warning, like the other forced properties.
pub fn consumer_properties(kafka: &KafkaConfig) -> Vec<(String, String)> {
    let instance = group_instance_id(kafka);
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
    let defaults = [
        ("auto.offset.reset", "earliest"),
        ("statistics.interval.ms", STATISTICS_INTERVAL_MS),
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
    let defaults = [("linger.ms", "5")];
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
    let mut props = merge(kafka, &[], &forced);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn kafka() -> KafkaConfig {
        KafkaConfig {
            bootstrap_servers: "127.0.0.1:9092".into(),
            group_id: "journeyd".into(),
            input_topics: vec!["events".into()],
            input_formats: Default::default(),
            dead_letter_topic: "events.dead_letter".into(),
            decisions_topic: "journey.decisions".into(),
            state_topic: "journeyd.state".into(),
            client: Default::default(),
            commit_interval_ms: 100,
            max_event_bytes: 65536,
            transactional_id: None,
            static_membership: true,
            group_instance_id: None,
        }
    }

    fn get<'a>(props: &'a [(String, String)], key: &str) -> Option<&'a str> {
        props
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn consumer_is_read_committed_without_auto_commit() {
        let mut k = kafka();
        k.client.insert("enable.auto.commit".into(), "true".into());
        k.client
            .insert("security.protocol".into(), "SASL_SSL".into());
        k.client.insert("auto.offset.reset".into(), "latest".into());
        let p = consumer_properties(&k);
        assert_eq!(get(&p, "isolation.level"), Some("read_committed"));
        assert_eq!(get(&p, "enable.auto.commit"), Some("false"));
        assert_eq!(get(&p, "security.protocol"), Some("SASL_SSL"));
        // Not forced: the user may choose where a brand-new group starts.
        assert_eq!(get(&p, "auto.offset.reset"), Some("latest"));
        assert_eq!(
            get(&p, "partition.assignment.strategy"),
            Some("cooperative-sticky")
        );
        assert_eq!(
            p.iter().filter(|(k, _)| k == "enable.auto.commit").count(),
            1
        );
    }

    #[test]
    fn several_input_topics_use_the_co_partitioning_assignor() {
        let mut k = kafka();
        k.input_topics.push("app_events".into());
        assert_eq!(
            get(&consumer_properties(&k), "partition.assignment.strategy"),
            Some("range")
        );
    }

    #[test]
    fn transactional_id_is_configured_or_group_and_host() {
        let mut k = kafka();
        let id = transactional_id(&k);
        assert!(id.starts_with("journeyd-") && id.len() > "journeyd-".len());
        k.transactional_id = Some("journeyd-0".into());
        assert_eq!(transactional_id(&k), "journeyd-0");
        let p = producer_properties(&k, "journeyd-0");
        assert_eq!(get(&p, "transactional.id"), Some("journeyd-0"));
    }

    #[test]
    fn static_membership_defaults_to_the_transactional_id() {
        let mut k = kafka();
        k.transactional_id = Some("journeyd-1".into());
        let p = consumer_properties(&k);
        assert_eq!(get(&p, "group.instance.id"), Some("journeyd-1"));
        k.group_instance_id = Some("member-1".into());
        // A value written among the client properties is overridden, once.
        k.client.insert("group.instance.id".into(), "other".into());
        let p = consumer_properties(&k);
        assert_eq!(get(&p, "group.instance.id"), Some("member-1"));
        assert_eq!(
            p.iter().filter(|(k, _)| k == "group.instance.id").count(),
            1
        );
        // Off: no static membership at all, even when written among the client properties.
        k.static_membership = false;
        k.group_instance_id = None;
        assert_eq!(group_instance_id(&k), None);
        assert_eq!(get(&consumer_properties(&k), "group.instance.id"), None);
        // The producer and the admin client never carry it.
        assert_eq!(
            get(&producer_properties(&k, "t"), "group.instance.id"),
            None
        );
        assert_eq!(get(&admin_properties(&k), "group.instance.id"), None);
    }

    #[test]
    fn restore_consumer_is_outside_the_service_group() {
        let mut k = kafka();
        k.client.insert("group.instance.id".into(), "pod-0".into());
        let p = restore_properties(&k);
        assert_eq!(get(&p, "group.id"), Some("journeyd.restore"));
        assert_eq!(get(&p, "group.instance.id"), None);
        assert_eq!(get(&p, "enable.auto.commit"), Some("false"));
        assert_eq!(get(&p, "enable.partition.eof"), Some("true"));
        assert_eq!(get(&p, "isolation.level"), Some("read_committed"));
    }
}
