//! Unit tests of configuration loading: defaults, every check with its exact message, and
//! environment overrides.

use super::*;

const CHANNELS: &str = "channels:\n  email: { address: email, consent: opt_out }\n";

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn load(text: &str, vars: &[(&str, &str)]) -> Result<Config, Vec<String>> {
    parse_config(text, FsPath::new("conf/journeyd.yaml"), &env(vars))
        .map_err(|ds| ds.iter().map(ToString::to_string).collect())
}

fn errors(text: &str) -> Vec<String> {
    load(text, &[]).unwrap_err()
}

#[test]
fn defaults() {
    let c = load(CHANNELS, &[]).unwrap();
    assert_eq!(c.journeys_dir, PathBuf::from("conf/journeys"));
    assert_eq!(c.state_dir, PathBuf::from("conf/state"));
    assert!(c.kafka.static_membership);
    assert_eq!(c.kafka.group_instance_id, None);
    assert_eq!(c.kafka.bootstrap_servers, "127.0.0.1:9092");
    assert_eq!(c.kafka.group_id, "journeyd");
    assert_eq!(c.kafka.input_topics, ["events"]);
    assert_eq!(c.kafka.dead_letter_topic, "events.dead_letter");
    assert_eq!(c.kafka.decisions_topic, "journey.decisions");
    assert_eq!(c.kafka.state_topic, "journeyd.state");
    assert!(c.kafka.client.is_empty());
    assert_eq!(c.kafka.commit_interval_ms, 100);
    assert_eq!(c.kafka.max_event_bytes, 65_536);
    assert_eq!(c.kafka.transactional_id, None);
    assert_eq!(c.metrics.listen, "127.0.0.1:9464");
    assert_eq!(
        c.channels["email"],
        ChannelConfig {
            topic: "actions.email".into(),
            address: "email".into(),
            consent: ConsentMode::OptOut,
            quiet_hours: false,
        }
    );
    assert!(c.frequency_caps.is_empty());
    assert_eq!(
        c.quiet_hours.start,
        TimeOfDay {
            hour: 21,
            minute: 0
        }
    );
    assert_eq!(c.quiet_hours.end, TimeOfDay { hour: 8, minute: 0 });
    assert_eq!(c.quiet_hours.default_timezone, chrono_tz::UTC);
    assert_eq!(c.inspect, InspectConfig::default());
    assert_eq!(c.log.format, LogFormat::Text);
    assert_eq!(c.log.level, "info");
}

#[test]
fn example_configuration() {
    let c = Config::example();
    assert_eq!(c.journeys_dir, PathBuf::from("journeys"));
    let names: Vec<&str> = c.channels.keys().map(String::as_str).collect();
    assert_eq!(names, ["email", "sms", "push"]);
    assert_eq!(c.channels["sms"].consent, ConsentMode::OptIn);
    assert!(c.channels["sms"].quiet_hours);
    assert_eq!(c.channels["push"].address, "push_token");
    assert_eq!(
        c.frequency_caps,
        [
            FrequencyCap {
                name: "email_weekly".into(),
                channels: CapChannels::List(vec!["email".into()]),
                max: 3,
                per: Duration::from_secs(7 * 86_400),
            },
            FrequencyCap {
                name: "sms_daily".into(),
                channels: CapChannels::List(vec!["sms".into()]),
                max: 1,
                per: Duration::from_secs(86_400),
            },
            FrequencyCap {
                name: "all_weekly".into(),
                channels: CapChannels::All,
                max: 5,
                per: Duration::from_secs(7 * 86_400),
            },
        ]
    );
}

#[test]
fn paths_resolve_against_the_file() {
    let c = parse_config(CHANNELS, FsPath::new("journeyd.yaml"), &[]).unwrap();
    assert_eq!(c.journeys_dir, PathBuf::from("journeys"));
    let text = format!("journeys_dir: ../j\n{CHANNELS}");
    let c = parse_config(&text, FsPath::new("deploy/journeyd.yaml"), &[]).unwrap();
    assert_eq!(c.journeys_dir, PathBuf::from("j"));
    let c = parse_config(&text, FsPath::new("journeyd.yaml"), &[]).unwrap();
    assert_eq!(c.journeys_dir, PathBuf::from("../j"));
    let text = format!("journeys_dir: /srv/journeys\n{CHANNELS}");
    let c = parse_config(&text, FsPath::new("deploy/journeyd.yaml"), &[]).unwrap();
    assert_eq!(c.journeys_dir, PathBuf::from("/srv/journeys"));
    assert_eq!(c.state_dir, PathBuf::from("deploy/state"));
    let text = format!("state_dir: ../var/state\n{CHANNELS}");
    let c = parse_config(&text, FsPath::new("deploy/journeyd.yaml"), &[]).unwrap();
    assert_eq!(c.state_dir, PathBuf::from("var/state"));
    let text = format!("state_dir: /var/lib/journeyd\n{CHANNELS}");
    let c = parse_config(&text, FsPath::new("deploy/journeyd.yaml"), &[]).unwrap();
    assert_eq!(c.state_dir, PathBuf::from("/var/lib/journeyd"));
}

#[test]
fn state_dir_and_static_membership() {
    let text = format!(
        "state_dir: \"\"\nkafka:\n  static_membership: maybe\n  group_instance_id: \"\"\n{CHANNELS}"
    );
    assert_eq!(
        errors(&text),
        [
            "conf/journeyd.yaml:1:12: `state_dir` must not be empty",
            "conf/journeyd.yaml:3:22: `static_membership` must be true or false",
            "conf/journeyd.yaml:4:22: `group_instance_id` must not be empty",
        ]
    );
    let text =
        format!("kafka:\n  static_membership: false\n  group_instance_id: journeyd-0\n{CHANNELS}");
    assert_eq!(
        errors(&text),
        ["conf/journeyd.yaml:3:22: `group_instance_id` is set but `static_membership` is false: remove one of them"]
    );
    let text = format!("kafka:\n  static_membership: false\n{CHANNELS}");
    let c = load(&text, &[]).unwrap();
    assert!(!c.kafka.static_membership);
    let text = format!("kafka:\n  group_instance_id: pod-1\n{CHANNELS}");
    let c = load(&text, &[]).unwrap();
    assert!(c.kafka.static_membership);
    assert_eq!(c.kafka.group_instance_id.as_deref(), Some("pod-1"));
    let c = load(
        CHANNELS,
        &[
            ("JOURNEYD_STATE_DIR", "/data/state"),
            ("JOURNEYD_KAFKA__GROUP_INSTANCE_ID", "journeyd-2"),
        ],
    )
    .unwrap();
    assert_eq!(c.state_dir, PathBuf::from("/data/state"));
    assert_eq!(c.kafka.group_instance_id.as_deref(), Some("journeyd-2"));
    let c = load(CHANNELS, &[("JOURNEYD_KAFKA__STATIC_MEMBERSHIP", "false")]).unwrap();
    assert!(!c.kafka.static_membership);
    assert_eq!(
        load(CHANNELS, &[("JOURNEYD_KAFKA__STATIC_MEMBERSHIP", "no")]).unwrap_err(),
        ["conf/journeyd.yaml: `static_membership` must be true or false (from JOURNEYD_KAFKA__STATIC_MEMBERSHIP)"]
    );
}

#[test]
fn channels_are_required() {
    assert_eq!(
        errors(""),
        ["conf/journeyd.yaml:1:1: missing required key `channels` in configuration"]
    );
    assert_eq!(
        errors("channels: {}\n"),
        ["conf/journeyd.yaml:1:11: `channels` must declare at least one channel"]
    );
    assert_eq!(
        errors("channels:\n"),
        ["conf/journeyd.yaml:1:1: `channels` must declare at least one channel"]
    );
    assert_eq!(
        errors("channels:\n  E-mail: { address: email, consent: opt_out }\n  sms: { topic: t, adress: phone, consent: maybe, quiet_hours: 1 }\n"),
        [
            "conf/journeyd.yaml:2:3: bad channel name `E-mail`: use only lowercase letters, digits and `_`",
            "conf/journeyd.yaml:3:8: missing required key `address` in channel `sms`",
            "conf/journeyd.yaml:3:20: unknown key `adress` in channel `sms`; did you mean `address`?",
            "conf/journeyd.yaml:3:44: bad consent `maybe`: expected `opt_in` or `opt_out`",
            "conf/journeyd.yaml:3:64: `quiet_hours` must be true or false",
        ]
    );
}

#[test]
fn unknown_keys_everywhere() {
    let text = format!(
        "jouneys_dir: x\nkafka: {{ bootstrap_server: x }}\nmetrics: {{ port: 1 }}\n{CHANNELS}quiet_hours: {{ stop: \"08:00\" }}\ninspect: {{ enable: true }}\nlog: {{ formatt: json }}\n"
    );
    assert_eq!(
        errors(&text),
        [
            "conf/journeyd.yaml:1:1: unknown key `jouneys_dir` in configuration; did you mean `journeys_dir`?",
            "conf/journeyd.yaml:2:10: unknown key `bootstrap_server` in kafka; did you mean `bootstrap_servers`?",
            "conf/journeyd.yaml:3:12: unknown key `port` in metrics",
            "conf/journeyd.yaml:6:16: unknown key `stop` in quiet_hours",
            "conf/journeyd.yaml:7:12: unknown key `enable` in inspect; did you mean `enabled`?",
            "conf/journeyd.yaml:8:8: unknown key `formatt` in log; did you mean `format`?",
        ]
    );
}

#[test]
fn frequency_caps() {
    let text = format!(
        "{CHANNELS}frequency_caps:\n  - {{ name: a, channels: [email, sms], max: 0, per: 1x }}\n  - {{ name: a, channels: every, max: 1, per: 1d }}\n  - {{ name: b, channels: [], max: 1, per: 1d }}\n  - {{ name: c, channels: [emial], max: 1 }}\n"
    );
    assert_eq!(
        errors(&text),
        [
            "conf/journeyd.yaml:4:34: channel `sms` is not declared in `channels`",
            "conf/journeyd.yaml:4:45: `max` must be a positive integer",
            "conf/journeyd.yaml:4:53: bad duration `1x`: expected a whole positive number and a unit (s, m, h, d, w), like `30s`, `2h` or `7d`",
            "conf/journeyd.yaml:5:13: duplicate frequency cap name `a`",
            "conf/journeyd.yaml:5:26: `channels` must be `all` or a list of channels",
            "conf/journeyd.yaml:6:26: `channels` must list at least one channel",
            "conf/journeyd.yaml:7:5: missing required key `per` in frequency cap",
            "conf/journeyd.yaml:7:27: channel `emial` is not declared in `channels`; did you mean `email`?",
        ]
    );
}

#[test]
fn quiet_hours_and_timezones() {
    let text = format!("{CHANNELS}quiet_hours: {{ start: \"22:00\", end: \"7:00\", default_timezone: Europe/Londn }}\n");
    assert_eq!(
        errors(&text),
        [
            "conf/journeyd.yaml:3:37: bad time of day `7:00`: expected HH:MM (24-hour), like `09:30`",
            "conf/journeyd.yaml:3:63: bad time zone `Europe/Londn`: expected an IANA name like `Europe/London`; did you mean `Europe/London`?",
        ]
    );
    let text = format!(
        "{CHANNELS}quiet_hours: {{ start: \"22:30\", default_timezone: America/New_York }}\n"
    );
    let c = load(&text, &[]).unwrap();
    assert_eq!(
        c.quiet_hours.start,
        TimeOfDay {
            hour: 22,
            minute: 30
        }
    );
    assert_eq!(c.quiet_hours.end, TimeOfDay { hour: 8, minute: 0 });
    assert_eq!(c.quiet_hours.default_timezone, chrono_tz::America::New_York);
}

#[test]
fn kafka_values() {
    let text = format!(
        "kafka:\n  input_topics: []\n  commit_interval_ms: 0\n  max_event_bytes: lots\n  client: {{ security.protocol: SASL_SSL, linger.ms: 5, enable.idempotence: true, bad: [1] }}\n  group_id: \"\"\nmetrics: {{ listen: localhost }}\n{CHANNELS}"
    );
    assert_eq!(
        errors(&text),
        [
            "conf/journeyd.yaml:2:17: `input_topics` must list at least one topic",
            "conf/journeyd.yaml:3:23: `commit_interval_ms` must be a positive integer",
            "conf/journeyd.yaml:4:20: `max_event_bytes` must be a positive integer",
            "conf/journeyd.yaml:5:87: kafka client property `bad` must be a string, number or boolean",
            "conf/journeyd.yaml:6:13: `group_id` must not be empty",
            "conf/journeyd.yaml:7:20: bad listen address `localhost`: expected HOST:PORT, like `127.0.0.1:9464`",
        ]
    );
    let text = format!(
        "kafka:\n  input_topics: [a, b]\n  client: {{ security.protocol: SASL_SSL, linger.ms: 5 }}\n  transactional_id: journeyd-0\nmetrics: {{ listen: \"[::]:9464\" }}\n{CHANNELS}"
    );
    let c = load(&text, &[]).unwrap();
    assert_eq!(c.kafka.input_topics, ["a", "b"]);
    assert_eq!(c.kafka.client["security.protocol"], "SASL_SSL");
    assert_eq!(c.kafka.client["linger.ms"], "5");
    assert_eq!(c.kafka.transactional_id.as_deref(), Some("journeyd-0"));
    assert_eq!(c.metrics.listen, "[::]:9464");
}

#[test]
fn inspect_and_log() {
    let text = format!("{CHANNELS}inspect: {{ enabled: true }}\nlog: {{ format: yaml }}\n");
    assert_eq!(
        errors(&text),
        [
            "conf/journeyd.yaml:3:10: `inspect.enabled` needs a `token`",
            "conf/journeyd.yaml:4:16: bad log format `yaml`: expected `text` or `json`",
        ]
    );
    let text = format!("{CHANNELS}inspect: {{ enabled: true, token: t0k }}\nlog: {{ format: json, level: \"journeyd=debug\" }}\n");
    let c = load(&text, &[]).unwrap();
    assert_eq!(
        c.inspect,
        InspectConfig {
            enabled: true,
            token: Some("t0k".into())
        }
    );
    assert_eq!(c.log.format, LogFormat::Json);
    assert_eq!(c.log.level, "journeyd=debug");
}

#[test]
fn syntax_errors_and_duplicates() {
    assert_eq!(
        errors("channels: [\n"),
        ["conf/journeyd.yaml:2:1: invalid YAML: while parsing a node, did not find expected node content"]
    );
    assert_eq!(
        errors(&format!("{CHANNELS}channels: {{}}\n")),
        ["conf/journeyd.yaml:3:1: duplicate key `channels`"]
    );
    assert_eq!(
        errors("- a\n"),
        ["conf/journeyd.yaml:1:1: the configuration file must be a mapping"]
    );
}

#[test]
fn environment_overrides() {
    let c = load(
        CHANNELS,
        &[
            (
                "JOURNEYD_KAFKA__BOOTSTRAP_SERVERS",
                "kafka-0:9092,kafka-1:9092",
            ),
            ("JOURNEYD_KAFKA__CLIENT__SASL_PASSWORD", "p@ss: #word"),
            ("JOURNEYD_KAFKA__CLIENT__SECURITY_PROTOCOL", "SASL_SSL"),
            ("JOURNEYD_KAFKA__COMMIT_INTERVAL_MS", "250"),
            ("JOURNEYD_KAFKA__TRANSACTIONAL_ID", "journeyd-3"),
            ("JOURNEYD_KAFKA__INPUT_TOPICS", "[a, b]"),
            ("JOURNEYD_METRICS__LISTEN", "0.0.0.0:9000"),
            ("JOURNEYD_INSPECT__ENABLED", "true"),
            ("JOURNEYD_INSPECT__TOKEN", "s3cret"),
            ("JOURNEYD_CHANNELS__EMAIL__TOPIC", "mail.out"),
            ("JOURNEYD_JOURNEYS_DIR", "/srv/j"),
            ("JOURNEYD_CONFIG", "ignored: not an override"),
            ("OTHER__KAFKA__GROUP_ID", "ignored"),
        ],
    )
    .unwrap();
    assert_eq!(c.kafka.bootstrap_servers, "kafka-0:9092,kafka-1:9092");
    assert_eq!(c.kafka.client["sasl.password"], "p@ss: #word");
    assert_eq!(c.kafka.client["security.protocol"], "SASL_SSL");
    assert_eq!(c.kafka.commit_interval_ms, 250);
    assert_eq!(c.kafka.transactional_id.as_deref(), Some("journeyd-3"));
    assert_eq!(c.kafka.input_topics, ["a", "b"]);
    assert_eq!(c.kafka.group_id, "journeyd");
    assert_eq!(c.metrics.listen, "0.0.0.0:9000");
    assert!(c.inspect.enabled);
    assert_eq!(c.inspect.token.as_deref(), Some("s3cret"));
    assert_eq!(c.channels["email"].topic, "mail.out");
    assert_eq!(c.journeys_dir, PathBuf::from("/srv/j"));

    // An override replaces the file's value, and keeps its other keys.
    let text = format!("kafka:\n  group_id: g\n  client: {{ linger.ms: 5 }}\n{CHANNELS}");
    let c = load(
        &text,
        &[
            ("JOURNEYD_KAFKA__CLIENT__LINGER_MS", "10"),
            ("JOURNEYD_KAFKA__GROUP_ID", "h"),
        ],
    )
    .unwrap();
    assert_eq!(c.kafka.group_id, "h");
    assert_eq!(c.kafka.client["linger.ms"], "10");
    assert_eq!(c.kafka.input_topics, ["events"]);
    let c = load(CHANNELS, &[("JOURNEYD_KAFKA__INPUT_TOPICS", "a, b")]).unwrap();
    assert_eq!(c.kafka.input_topics, ["a", "b"]);
}

#[test]
fn bad_overrides_name_the_variable() {
    assert_eq!(
        load(
            CHANNELS,
            &[
                ("JOURNEYD_KAFKA__COMMIT_INTERVAL_MS", "soon"),
                ("JOURNEYD_KAFKA__BOGUS", "1"),
                ("JOURNEYD_INSPECT__ENABLED", "true"),
                ("JOURNEYD_LOG____LEVEL", "x"),
            ]
        )
        .unwrap_err(),
        [
            "conf/journeyd.yaml: environment variable JOURNEYD_LOG____LEVEL names no setting (empty name between `__`)",
            "conf/journeyd.yaml: unknown key `bogus` in kafka (from JOURNEYD_KAFKA__BOGUS)",
            "conf/journeyd.yaml: `commit_interval_ms` must be a positive integer (from JOURNEYD_KAFKA__COMMIT_INTERVAL_MS)",
            "conf/journeyd.yaml: `inspect.enabled` needs a `token` (from JOURNEYD_INSPECT__ENABLED)",
        ]
    );
    // Even with no `channels` anywhere, the environment can provide one.
    let c = load(
        "",
        &[
            ("JOURNEYD_CHANNELS__SMS__ADDRESS", "phone"),
            ("JOURNEYD_CHANNELS__SMS__CONSENT", "opt_in"),
        ],
    )
    .unwrap();
    assert_eq!(c.channels["sms"].topic, "actions.sms");
}

#[test]
fn load_config_reads_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("journeyd.yaml");
    std::fs::write(&file, CHANNELS).unwrap();
    let c = load_config(&file).unwrap();
    assert_eq!(c.journeys_dir, dir.path().join("journeys"));
    let missing = dir.path().join("absent.yaml");
    let err = load_config(&missing).unwrap_err();
    assert_eq!(err.len(), 1);
    assert!(err[0].to_string().starts_with(&format!(
        "{}: cannot read configuration: ",
        missing.display()
    )));
}

#[test]
fn event_catalog_is_optional_and_parsed() {
    assert_eq!(load(CHANNELS, &[]).unwrap().event_catalog, None);
    let c = load(
        &format!(
            "{CHANNELS}event_catalog:\n  unknown_events: dead_letter\n  events:\n    cart_updated: {{ properties: [cart_value, sku] }}\n    account_closed: {{}}\n    app_opened:\n"
        ),
        &[],
    )
    .unwrap();
    let catalog = c.event_catalog.unwrap();
    assert_eq!(catalog.unknown_events, UnknownEvents::DeadLetter);
    assert_eq!(catalog.events["cart_updated"], ["cart_value", "sku"]);
    assert!(catalog.events["account_closed"].is_empty());
    assert!(catalog.events["app_opened"].is_empty());
    assert!(catalog.knows("profile_updated") && catalog.knows("consent_updated"));
    assert!(!catalog.knows("order_completed"));
    assert_eq!(
        catalog.properties("consent_updated"),
        Some(vec!["channel", "status"])
    );
    assert_eq!(catalog.properties("profile_updated"), None);
    let c = load(
        &format!("{CHANNELS}event_catalog:\n  events:\n    a: {{}}\n"),
        &[],
    )
    .unwrap();
    assert_eq!(
        c.event_catalog.unwrap().unknown_events,
        UnknownEvents::Count
    );
}

#[test]
fn event_catalog_errors() {
    assert_eq!(
        errors(&format!(
            "{CHANNELS}event_catalog:\n  unknown_events: drop\n  events:\n    a: {{ properties: [x, x], propertise: [] }}\n    b: {{ properties: x }}\n"
        )),
        [
            "conf/journeyd.yaml:4:19: bad unknown_events `drop`: expected `count` or `dead_letter`",
            "conf/journeyd.yaml:6:26: property `x` is listed twice",
            "conf/journeyd.yaml:6:30: unknown key `propertise` in event type `a`; did you mean `properties`?",
            "conf/journeyd.yaml:7:22: `properties` must be a list",
        ]
    );
    assert_eq!(
        errors(&format!(
            "{CHANNELS}event_catalog: {{ unknown_events: count }}\n"
        )),
        ["conf/journeyd.yaml:3:16: missing required key `events` in event_catalog"]
    );
}

#[test]
fn input_topics_with_formats() {
    let c = load(
        &format!(
            "{CHANNELS}kafka:\n  input_topics:\n    - events\n    - {{ name: web-events, format: segment }}\n    - {{ name: crm, format: cloudevents }}\n    - {{ name: partner, format: cloudevents, customer_id_attribute: partnerid }}\n    - {{ name: plain, format: native }}\n"
        ),
        &[],
    )
    .unwrap();
    assert_eq!(
        c.kafka.input_topics,
        ["events", "web-events", "crm", "partner", "plain"]
    );
    assert_eq!(c.kafka.input_format("events"), &InputFormat::Native);
    assert_eq!(c.kafka.input_format("plain"), &InputFormat::Native);
    assert_eq!(c.kafka.input_format("web-events"), &InputFormat::Segment);
    assert_eq!(
        c.kafka.input_format("crm"),
        &InputFormat::CloudEvents {
            customer_id_attribute: "subject".into()
        }
    );
    assert_eq!(
        c.kafka.input_format("partner"),
        &InputFormat::CloudEvents {
            customer_id_attribute: "partnerid".into()
        }
    );
    assert_eq!(c.kafka.input_formats.len(), 3);
    // The plain list and the environment override keep meaning the native format.
    let c = load(CHANNELS, &[("JOURNEYD_KAFKA__INPUT_TOPICS", "a,b")]).unwrap();
    assert_eq!(c.kafka.input_topics, ["a", "b"]);
    assert!(c.kafka.input_formats.is_empty());
    assert_eq!(
        errors(&format!(
            "{CHANNELS}kafka:\n  input_topics:\n    - {{ name: a, format: json }}\n    - {{ name: b, format: segment, customer_id_attribute: x }}\n    - {{ name: c, format: cloudevents, customer_id_attribute: Customer-Id }}\n    - {{ format: segment }}\n    - {{ name: e, fromat: segment }}\n    - e\n"
        )),
        [
            "conf/journeyd.yaml:5:26: bad format `json`: expected `native`, `segment` or `cloudevents`",
            "conf/journeyd.yaml:6:58: `customer_id_attribute` only applies to `format: cloudevents`",
            "conf/journeyd.yaml:7:62: bad CloudEvents attribute name `Customer-Id`: use only lowercase letters and digits",
            "conf/journeyd.yaml:8:7: missing required key `name` in input topic",
            "conf/journeyd.yaml:9:18: unknown key `fromat` in input topic; did you mean `format`?",
            "conf/journeyd.yaml:10:7: input topic `e` is listed twice",
        ]
    );
}

#[test]
fn workers_default_to_the_cores_and_must_be_positive() {
    let c = load(CHANNELS, &[]).unwrap();
    assert_eq!(c.workers, None);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(c.workers(), cores);
    let c = load(&format!("workers: 3\n{CHANNELS}"), &[]).unwrap();
    assert_eq!((c.workers, c.workers()), (Some(3), 3));
    let c = load(&format!("workers: null\n{CHANNELS}"), &[]).unwrap();
    assert_eq!(c.workers, None);
    for (value, message) in [
        ("0", "`workers` must be a positive integer"),
        ("-2", "`workers` must be a positive integer"),
        ("two", "`workers` must be a positive integer"),
        ("1.5", "`workers` must be a positive integer"),
        ("5000", "`workers` must be at most 1024"),
    ] {
        assert_eq!(
            errors(&format!("workers: {value}\n{CHANNELS}")),
            [format!("conf/journeyd.yaml:1:10: {message}")],
            "workers: {value}"
        );
    }
    let c = load(CHANNELS, &[("JOURNEYD_WORKERS", "2")]).unwrap();
    assert_eq!(c.workers, Some(2));
    assert_eq!(
        load(CHANNELS, &[("JOURNEYD_WORKERS", "0")]).unwrap_err(),
        ["conf/journeyd.yaml: `workers` must be a positive integer (from JOURNEYD_WORKERS)"]
    );
}
