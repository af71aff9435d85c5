//! secret-rollout: replace a secret in AWS Secrets Manager, roll it out to every ECS
//! service that reads it, prove every running task has it, and undo it cleanly.
//!
//! The core never draws and never parses command lines: it takes plain types, reports
//! progress as [`progress::Event`]s, and fails with [`error::Error`]. The CLI (`cli`)
//! parses, renders and maps errors to exit codes.

pub mod aws;
pub mod credentials;
pub mod error;
