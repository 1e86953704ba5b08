//! `journeyd leave-group --instance-id ID [--workers N] [--config FILE]`: hands the partitions of
//! an instance that was removed for good (scale-in) to the remaining instances at once, instead
//! of after `session.timeout.ms` (docs/operations.md, "Scaling in"). Every worker of the
//! instance is a member of its own (`ID`, `ID-w1`, ...): all of them leave.
//!
//! Exits 0 once the member is removed (printing the partitions it held), 1 on a configuration
//! error, 2 when the group could not be reached.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Configuration file (its Kafka connection and group are used).
    #[arg(long, value_name = "FILE", default_value_os_t = crate::default_config_path())]
    config: PathBuf,
    /// The `group.instance.id` of the removed instance (by default its transactional id,
    /// e.g. the pod name `journeyd-2`).
    #[arg(long, value_name = "ID")]
    instance_id: String,
    /// The removed instance's number of workers [default: the configuration's `workers`]: its
    /// members `ID`, `ID-w1`, ... `ID-w<N-1>` leave together.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    workers: Option<u16>,
    /// How long to wait for the group coordinator, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    timeout: u64,
}

pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    let config = match journey_spec::load_config(&args.config) {
        Ok(config) => config,
        Err(diagnostics) => {
            for d in diagnostics {
                eprintln!("{d}");
            }
            return Ok(ExitCode::from(1));
        }
    };
    if args.instance_id.trim().is_empty() {
        eprintln!("journeyd: --instance-id must not be empty");
        return Ok(ExitCode::from(1));
    }
    let workers = args.workers.map_or_else(|| config.workers(), usize::from);
    let ids: Vec<String> = (0..workers)
        .map(|w| journey_kafka::clients::worker_id(&args.instance_id, w))
        .collect();
    let partitions = journey_kafka::leave::leave_group_members(
        &config.kafka,
        &ids,
        Duration::from_secs(args.timeout),
    )?;
    let list: Vec<String> = partitions
        .iter()
        .map(|(topic, p)| format!("{topic}[{p}]"))
        .collect();
    println!(
        "{} left group {}; its partitions move to the other members: [{}]",
        ids.join(", "),
        config.kafka.group_id,
        list.join(", ")
    );
    Ok(ExitCode::SUCCESS)
}
