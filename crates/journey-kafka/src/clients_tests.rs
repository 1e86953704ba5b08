//! Unit tests of the client properties (forced and default values, ids per worker, property
//! checks, redaction).

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
    let p = consumer_properties(&k, 0);
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
        get(&consumer_properties(&k, 0), "partition.assignment.strategy"),
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
fn members_heartbeat_every_second_unless_told_otherwise() {
    let mut k = kafka();
    assert_eq!(
        get(&consumer_properties(&k, 0), "heartbeat.interval.ms"),
        Some("1000")
    );
    k.client
        .insert("heartbeat.interval.ms".into(), "3000".into());
    let p = consumer_properties(&k, 1);
    assert_eq!(get(&p, "heartbeat.interval.ms"), Some("3000"));
    assert_eq!(
        p.iter()
            .filter(|(k, _)| k == "heartbeat.interval.ms")
            .count(),
        1
    );
}

#[test]
fn static_membership_defaults_to_the_transactional_id() {
    let mut k = kafka();
    k.transactional_id = Some("journeyd-1".into());
    let p = consumer_properties(&k, 0);
    assert_eq!(get(&p, "group.instance.id"), Some("journeyd-1"));
    k.group_instance_id = Some("member-1".into());
    // A value written among the client properties is overridden, once.
    k.client.insert("group.instance.id".into(), "other".into());
    let p = consumer_properties(&k, 0);
    assert_eq!(get(&p, "group.instance.id"), Some("member-1"));
    assert_eq!(
        p.iter().filter(|(k, _)| k == "group.instance.id").count(),
        1
    );
    // Off: no static membership at all, even when written among the client properties.
    k.static_membership = false;
    k.group_instance_id = None;
    assert_eq!(group_instance_id(&k), None);
    assert_eq!(get(&consumer_properties(&k, 0), "group.instance.id"), None);
    // The producer and the admin client never carry it.
    assert_eq!(
        get(&producer_properties(&k, "t"), "group.instance.id"),
        None
    );
    assert_eq!(get(&admin_properties(&k), "group.instance.id"), None);
}

#[test]
fn worker_zero_keeps_the_instance_ids_and_the_others_append_their_index() {
    let mut k = kafka();
    k.transactional_id = Some("journeyd-1".into());
    assert_eq!(worker_transactional_id(&k, 0), "journeyd-1");
    assert_eq!(worker_transactional_id(&k, 3), "journeyd-1-w3");
    assert_eq!(
        get(&consumer_properties(&k, 0), "group.instance.id"),
        Some("journeyd-1")
    );
    assert_eq!(
        get(&consumer_properties(&k, 2), "group.instance.id"),
        Some("journeyd-1-w2")
    );
    k.group_instance_id = Some("member-1".into());
    assert_eq!(
        worker_group_instance_id(&k, 1).as_deref(),
        Some("member-1-w1")
    );
    k.static_membership = false;
    assert_eq!(worker_group_instance_id(&k, 1), None);
    assert_eq!(get(&consumer_properties(&k, 1), "group.instance.id"), None);
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
    assert_eq!(get(&p, "fetch.queue.backoff.ms"), Some("10"));
    assert_eq!(get(&p, "isolation.level"), Some("read_committed"));
}

#[test]
fn the_build_has_tls_sasl_scram_oauthbearer_and_zstd() {
    let (version, features) = librdkafka_build();
    let missing: Vec<&str> = REQUIRED_FEATURES
        .iter()
        .copied()
        .filter(|f| !features.iter().any(|x| x == f))
        .collect();
    assert!(
        missing.is_empty(),
        "librdkafka {version} lacks {missing:?} (builtin.features: {features:?})"
    );
}

fn props(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn known_properties_include_the_security_ones() {
    let known = known_properties();
    for name in ["sasl.username", "sasl.password", "ssl.ca.location", "acks"] {
        assert!(known.iter().any(|k| k == name), "{name} missing");
    }
}

#[test]
fn secured_cluster_settings_pass() {
    let p = props(&[
        ("security.protocol", "SASL_SSL"),
        ("sasl.mechanism", "SCRAM-SHA-512"),
        ("sasl.username", "journeyd"),
        ("sasl.password", "s3cret"),
        ("compression.type", "zstd"),
        ("session.timeout.ms", "6000"),
    ]);
    assert_eq!(property_problems(&p), Vec::<(String, String)>::new());
    let oidc = props(&[
        ("security.protocol", "SASL_SSL"),
        ("sasl.mechanism", "OAUTHBEARER"),
        ("sasl.oauthbearer.method", "oidc"),
        ("sasl.oauthbearer.client.id", "journeyd"),
        ("sasl.oauthbearer.client.secret", "s3cret"),
        (
            "sasl.oauthbearer.token.endpoint.url",
            "https://login.example.com/oauth2/token",
        ),
    ]);
    assert_eq!(property_problems(&oidc), Vec::<(String, String)>::new());
}

#[test]
fn unknown_property_gets_a_suggestion() {
    let p = props(&[("sasl.usernme", "journeyd")]);
    assert_eq!(
        property_problems(&p),
        vec![(
            "sasl.usernme".to_string(),
            "unknown Kafka client property `sasl.usernme`; did you mean `sasl.username`?"
                .to_string()
        )]
    );
}

#[test]
fn bad_values_and_unknown_mechanisms_are_reported() {
    let p = props(&[
        ("security.protocol", "SASL_TLS"),
        ("session.timeout.ms", "soon"),
    ]);
    let problems = property_problems(&p);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert_eq!(problems[0].0, "security.protocol");
    assert!(problems[0].1.contains("sasl_tls") || problems[0].1.contains("SASL_TLS"));
    assert_eq!(problems[1].0, "session.timeout.ms");

    let p = props(&[
        ("security.protocol", "SASL_SSL"),
        ("sasl.mechanism", "SCRAM-SHA-1024"),
    ]);
    let problems = property_problems(&p);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].0, "sasl.mechanism");
    assert!(problems[0]
        .1
        .starts_with("unknown SASL mechanism `SCRAM-SHA-1024`"));
}

#[test]
fn gssapi_default_is_not_in_this_build() {
    // No `sasl.mechanism`: librdkafka would use GSSAPI (Kerberos), which needs Cyrus SASL,
    // not linked here.
    let p = props(&[("security.protocol", "SASL_SSL")]);
    let problems = property_problems(&p);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].0, "security.protocol");
    assert!(problems[0].1.contains("GSSAPI"), "{}", problems[0].1);
}

#[test]
fn secret_values_are_redacted_from_messages() {
    let text = || "Invalid value \"hunter2\" for configuration property".to_string();
    assert_eq!(
        redacted("sasl.password", "hunter2", text()),
        "Invalid value \"[redacted]\" for configuration property"
    );
    assert_eq!(redacted("sasl.username", "hunter2", text()), text());
    assert!(is_secret_property("ssl.key.password"));
    assert!(is_secret_property("sasl.oauthbearer.client.secret"));
    assert!(is_secret_property("ssl.keystore.password"));
    assert!(!is_secret_property("sasl.username"));
}

/// A log sink for the tests: every line written, shared.
#[derive(Clone, Default)]
struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn forced_property_warnings_carry_no_secret() {
    let sink = Sink::default();
    let writer = sink.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::TRACE)
        .finish();
    let mut k = kafka();
    for (name, value) in [
        ("sasl.password", "pw-8c1f"),
        ("ssl.key.password", "kp-77ae"),
        ("sasl.oauthbearer.client.secret", "cs-19d0"),
        ("enable.auto.commit", "true"),
        ("isolation.level", "read_uncommitted"),
        ("enable.idempotence", "false"),
        ("transactional.id", "other"),
        ("enable.partition.eof", "false"),
    ] {
        k.client.insert(name.into(), value.into());
    }
    tracing::subscriber::with_default(subscriber, || {
        consumer_properties(&k, 0);
        producer_properties(&k, "journeyd-0");
        restore_properties(&k);
        admin_properties(&k);
    });
    let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("enable.auto.commit"),
        "no warning logged: {text}"
    );
    for secret in ["pw-8c1f", "kp-77ae", "cs-19d0"] {
        assert!(!text.contains(secret), "a secret is logged: {text}");
    }
}
