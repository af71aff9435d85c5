//! secret-rollout: replace a secret in AWS Secrets Manager, roll it out to every ECS
//! service that reads it, prove every running task has it, and undo it cleanly.
//!
//! The core never draws and never parses command lines: it takes plain types, reports
//! progress as [`progress::Event`]s, and fails with [`error::Error`]. The CLI (`cli`)
//! parses, renders and maps errors to exit codes.

pub mod aws;
pub mod clients;
pub mod config;
pub mod consumers;
pub mod credentials;
pub mod discovery;
pub mod error;
pub mod history;
pub mod holding;
pub mod images;
pub mod journal;
pub mod lock;
pub mod parameter;
pub mod plan;
pub mod progress;
pub mod reference;
pub mod rollout;
pub mod rotation;
pub mod secret;
pub mod state;
pub mod status;
pub mod store;
pub mod value;
pub mod verdict;
