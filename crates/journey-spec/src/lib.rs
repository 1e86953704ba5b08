//! The journey language and the engine configuration: the typed model, YAML loading with
//! positions, validation that reports every error as `FILE:LINE:COLUMN: message`, and the JSON
//! Schema of journey files. No I/O beyond reading the text it is handed (and, for
//! `load_dir`-style helpers, listing a directory).

pub mod model;

pub use model::*;
