//! The AWS adapter: the one place that speaks the SDK.
//!
//! - [`config`]: the SDK's configuration and credential providers (retries, timeouts,
//!   endpoint, profile files); the sign-in that uses them is [`crate::credentials`].
//! - [`ecs`], [`ecr`], [`secrets`], [`ssm`], [`sts`]: the calls, batched as the APIs allow, answering in
//!   [`model`] observations made by [`convert`] (the only reader of SDK output shapes).
//! - [`rate`]: the client's own rate limiter, per AWS action group, in every client's HTTP
//!   client.
//! - [`errors`]: the one classifier of SDK errors; the SDK error stays the source.
//!
//! Nothing here imports the rest of the core except `error` and `value`, so every other
//! module can use it without a cycle.

pub mod config;
pub mod convert;
pub mod ecr;
pub mod ecs;
pub mod errors;
pub mod model;
pub mod rate;
pub mod secrets;
pub mod ssm;
pub mod sts;

pub use config::{Transport, DEFAULT_MAX_ATTEMPTS};
pub use errors::{AwsError, Fault};
