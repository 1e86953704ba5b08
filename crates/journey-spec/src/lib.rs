//! The journey language and the engine configuration: the typed model, YAML loading with
//! positions, validation that reports every error as `FILE:LINE:COLUMN: message`, and the JSON
//! Schema of journey files. No I/O beyond reading the files it is pointed at (and listing the
//! journeys directory).
//!
//! Entry points: [`load_config`] / [`parse_config`] for the configuration, [`load_journeys_dir`]
//! / [`parse_journey`] for journeys, [`json_schema`] for editors, [`contracts`] for the JSON
//! Schemas of the configuration, events, commands and decisions.

mod catalog_check;
mod check;
mod client_check;
mod condition;
mod config;
pub mod contracts;
mod diagnostic;
mod journey;
pub mod model;
mod schema;
pub mod testfile;
pub mod values;
mod yaml;

pub use client_check::{
    check_client_properties, check_client_properties_file, ClientPropertyCheck,
};
pub use config::{load_config, parse_config, EXAMPLE_CONFIG};
pub use diagnostic::{Diagnostic, Diagnostics};
pub use journey::{is_test_file, load_journeys_dir, parse_journey, parse_journey_lenient};
pub use model::*;
pub use schema::json_schema;
pub use yaml::yaml_to_json;
