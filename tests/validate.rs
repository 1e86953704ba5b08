//! Black-box tests of `journeyd validate` and `journeyd schema`: the binary run on the fixture
//! files in tests/fixtures/validate, asserting exact output and exit codes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/validate")
}

/// Runs `journeyd ARGS` in `dir` with the given `JOURNEYD_*` variables only.
fn journeyd(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_journeyd"));
    command.args(args).current_dir(dir);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("JOURNEYD_") {
            command.env_remove(name);
        }
    }
    command.envs(env.iter().copied());
    command.output().expect("journeyd runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("utf-8 output")
}

#[test]
fn valid_directory() {
    let out = journeyd(&fixtures().join("valid"), &["validate"], &[]);
    assert_eq!(stdout(&out), "ok: 3 journeys valid (journeys/)\n");
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stderr.is_empty());
}

#[test]
fn config_given_from_another_directory() {
    let out = journeyd(
        &fixtures(),
        &["validate", "--config", "valid/journeyd.yaml"],
        &[],
    );
    assert_eq!(stdout(&out), "ok: 3 journeys valid (valid/journeys/)\n");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn journeys_dir_argument_overrides_the_configuration() {
    let out = journeyd(
        &fixtures(),
        &[
            "validate",
            "--config",
            "valid/journeyd.yaml",
            "invalid/journeys",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).starts_with("invalid/journeys/graph.yaml:"));
    let out = journeyd(&fixtures().join("valid"), &["validate", "journeys/"], &[]);
    assert_eq!(stdout(&out), "ok: 3 journeys valid (journeys/)\n");
}

#[test]
fn every_error_of_every_file() {
    let out = journeyd(&fixtures().join("invalid"), &["validate"], &[]);
    let expected = "\
journeys/graph.yaml:5:5: loop without a wait: `hello` -> `check` -> `hello`; put a `wait`, `wait_until` or `wait_for` step in it
journeys/graph.yaml:12:5: step `orphan` cannot be reached from the first step
journeys/many_errors.yaml:1:5: bad journey id `Many-Errors`: use only lowercase letters, digits and `_`
journeys/many_errors.yaml:2:10: `version` must be a positive integer
journeys/many_errors.yaml:3:9: bad status `actve`: expected `active`, `paused` or `draining`; did you mean `active`?
journeys/many_errors.yaml:6:18: bad path `event.cart_value`: expected `event.type` or `event.properties.<name>`
journeys/many_errors.yaml:6:41: `gte` needs a number or a string
journeys/many_errors.yaml:8:12: bad reentry `sometimes`: expected `once`, `always` or `{ after: DURATION }`
journeys/many_errors.yaml:9:12: bad percentage `12.345%`: expected 0% to 100% with at most two decimals, like `10%` or `12.5%`
journeys/many_errors.yaml:10:19: path `event.type` is not allowed here: `event.` paths only work in trigger, exit_when, goal and wait_for conditions
journeys/many_errors.yaml:13:11: bad duration `7 days`: expected a whole positive number and a unit (s, m, h, d, w), like `30s`, `2h` or `7d`
journeys/many_errors.yaml:16:11: bad duration `1.5h`: expected a whole positive number and a unit (s, m, h, d, w), like `30s`, `2h` or `7d`
journeys/many_errors.yaml:19:24: channel `emial` is not declared in the configuration; did you mean `email`?
journeys/many_errors.yaml:20:7: unknown key `tempalte` in send; did you mean `template`?
journeys/many_errors.yaml:21:17: `template` must not be empty
journeys/many_errors.yaml:22:9: duplicate step id `reminder` (first at line 17)
journeys/many_errors.yaml:23:25: bad time of day `25:00`: expected HH:MM (24-hour), like `09:30`
journeys/many_errors.yaml:24:9: step id `end` is reserved
journeys/many_errors.yaml:26:7: missing required key `timeout` in wait_for
journeys/many_errors.yaml:29:5: step has more than one action (`wait` and `send`); a step does exactly one thing
journeys/many_errors.yaml:32:9: only the last branch case may omit `when`
journeys/many_errors.yaml:33:41: `in` needs a list of values
journeys/many_errors.yaml:33:59: `starts_with` needs a string
journeys/many_errors.yaml:33:70: `exists` needs true or false
journeys/many_errors.yaml:34:15: `next` names unknown step `vip`
journeys/many_errors.yaml:37:7: split percentages add up to 90%, not 100%
journeys/syntax.yaml:4:6: invalid YAML: while parsing a flow mapping, did not find expected ',' or '}'
journeys/two.yaml:1:5: duplicate journey id `shared_id` (first defined in journeys/one.yaml)
";
    assert_eq!(stdout(&out), expected);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn configuration_errors() {
    let out = journeyd(&fixtures().join("bad_config"), &["validate"], &[]);
    let expected = "\
journeyd.yaml:2:3: unknown key `bootstrap_server` in kafka; did you mean `bootstrap_servers`?
journeyd.yaml:3:23: `commit_interval_ms` must be a positive integer
journeyd.yaml:6:55: bad consent `maybe`: expected `opt_in` or `opt_out`
journeyd.yaml:8:39: channel `fax` is not declared in `channels`
journeyd.yaml:8:50: `max` must be a positive integer
journeyd.yaml:11:8: bad time of day `8:00`: expected HH:MM (24-hour), like `09:30`
journeyd.yaml:12:21: bad time zone `Europe/Londn`: expected an IANA name like `Europe/London`; did you mean `Europe/London`?
journeyd.yaml:14:3: `inspect.enabled` needs a `token`
";
    assert_eq!(stdout(&out), expected);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn environment_overrides_are_validated() {
    let dir = fixtures().join("valid");
    let out = journeyd(
        &dir,
        &["validate"],
        &[("JOURNEYD_KAFKA__COMMIT_INTERVAL_MS", "never")],
    );
    assert_eq!(
        stdout(&out),
        "journeyd.yaml: `commit_interval_ms` must be a positive integer (from JOURNEYD_KAFKA__COMMIT_INTERVAL_MS)\n"
    );
    assert_eq!(out.status.code(), Some(1));
    let out = journeyd(
        &dir,
        &["validate"],
        &[
            ("JOURNEYD_KAFKA__CLIENT__SASL_PASSWORD", "secret"),
            ("JOURNEYD_JOURNEYS_DIR", "../invalid/journeys"),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).starts_with("../invalid/journeys/graph.yaml:5:5: loop without a wait"));
}

#[test]
fn missing_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let out = journeyd(dir.path(), &["validate"], &[]);
    assert_eq!(
        stdout(&out),
        "journeyd.yaml: no configuration file in the current directory; pass one with --config FILE\n"
    );
    assert_eq!(out.status.code(), Some(1));
    let out = journeyd(dir.path(), &["validate", "--config", "elsewhere.yaml"], &[]);
    assert!(stdout(&out).starts_with("elsewhere.yaml: cannot read configuration: "));
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn missing_journeys_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixtures().join("valid/journeyd.yaml"),
        dir.path().join("journeyd.yaml"),
    )
    .unwrap();
    let out = journeyd(dir.path(), &["validate"], &[]);
    assert!(stdout(&out).starts_with("journeys: cannot read journeys directory: "));
    assert_eq!(out.status.code(), Some(1));
    std::fs::create_dir(dir.path().join("journeys")).unwrap();
    let out = journeyd(dir.path(), &["validate"], &[]);
    assert_eq!(stdout(&out), "ok: 0 journeys valid (journeys/)\n");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn schema_is_printed() {
    let out = journeyd(&fixtures(), &["schema"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(
        schema["required"],
        serde_json::json!(["id", "version", "trigger", "steps"])
    );
    assert!(schema["$defs"]["condition"].is_object());
}
