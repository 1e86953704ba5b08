//! Commands read from Kafka against the ones `journeyd simulate` printed for the same events:
//! none missing, none extra, no `command_id` twice, every field equal but the clock's.

use crate::kafka::Record;
use serde_json::Value;
use std::collections::BTreeMap;

/// Parses JSON lines (blank lines ignored).
pub fn parse_json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// A send command read from an action topic, as simulate prints it: the JSON body plus a
/// `"topic"` field with the topic it was read from.
pub fn command_with_topic(record: &Record) -> Value {
    let mut v = record.json();
    if let Value::Object(map) = &mut v {
        map.insert("topic".to_string(), Value::String(record.topic.clone()));
    }
    v
}

/// Removes the clock-dependent fields (`issued_at` of commands; `at` and `until` of decisions)
/// so outputs under the wall clock and the virtual clock compare equal.
pub fn without_clock(v: &Value) -> Value {
    let mut v = v.clone();
    if let Value::Object(map) = &mut v {
        map.remove("issued_at");
        map.remove("at");
        map.remove("until");
    }
    v
}

/// Commands by `command_id`, each with the number of times it was seen; panics on a command
/// without an id.
pub fn by_command_id(commands: &[Value]) -> BTreeMap<String, (Value, usize)> {
    let mut out: BTreeMap<String, (Value, usize)> = BTreeMap::new();
    for c in commands {
        let id = c["command_id"]
            .as_str()
            .unwrap_or_else(|| panic!("command without command_id: {c}"))
            .to_string();
        out.entry(id)
            .and_modify(|(_, n)| *n += 1)
            .or_insert((without_clock(c), 1));
    }
    out
}

/// A multiset of JSON values (as canonical strings) with their counts.
pub fn multiset(values: &[Value]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for v in values {
        *out.entry(canonical(&without_clock(v))).or_insert(0) += 1;
    }
    out
}

/// JSON text with object keys sorted, so equal values print equally whatever their key order.
pub fn canonical(v: &Value) -> String {
    fn sort(v: &Value) -> Value {
        match v {
            Value::Object(map) => {
                let sorted: BTreeMap<&String, Value> =
                    map.iter().map(|(k, v)| (k, sort(v))).collect();
                serde_json::to_value(sorted).expect("re-serialize")
            }
            Value::Array(items) => Value::Array(items.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    sort(v).to_string()
}

/// Asserts that the commands read from Kafka are exactly the simulated ones: every command id
/// once, equal in every field but `issued_at`.
pub fn assert_same_commands(kafka: &[Value], simulated: &[Value], context: &str) {
    let got = by_command_id(kafka);
    let want = by_command_id(simulated);
    let mut problems = Vec::new();
    for (id, (cmd, n)) in &got {
        if *n != 1 {
            problems.push(format!("command {id} seen {n} times: {cmd}"));
        }
        match want.get(id) {
            None => problems.push(format!("unexpected command {id}: {cmd}")),
            Some((w, _)) if canonical(w) != canonical(cmd) => problems.push(format!(
                "command {id} differs:\n  kafka:    {}\n  simulate: {}",
                canonical(cmd),
                canonical(w)
            )),
            Some(_) => {}
        }
    }
    for (id, (cmd, _)) in &want {
        if !got.contains_key(id) {
            problems.push(format!("missing command {id}: {cmd}"));
        }
    }
    assert!(
        problems.is_empty(),
        "{context}: {} commands from Kafka, {} from simulate; {} problem(s):\n{}",
        kafka.len(),
        simulated.len(),
        problems.len(),
        problems.join("\n")
    );
}
