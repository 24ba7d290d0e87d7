//! Command-line subcommands. Each turns arguments into library calls and
//! library errors into messages; no allocation logic lives here.

pub mod assign;
pub mod check;
mod common;
pub mod simulate;
