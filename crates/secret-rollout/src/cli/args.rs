//! Option groups shared by several commands: clap definitions only. Each command's own
//! arguments live in its module; validation into core types happens there; the core never
//! sees clap. This module uses no command module.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::parse;

/// Options shared by every command.
#[derive(Debug, Args, Clone)]
pub struct Global {
    /// Output format: human text, one JSON document on stdout, or JSON lines as it happens.
    #[arg(long, global = true, value_enum, default_value_t = Output::Text, env = "SECRET_ROLLOUT_OUTPUT")]
    pub output: Output,
    /// Path of secret-rollout.toml (default: ./secret-rollout.toml, then the user's config dir).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// More log output on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// The client's own rate limit per AWS action group, as a fraction of AWS's limits
    /// (0.01 to 1, e.g. 0.5 or 50%), or `off`: calls wait for a token instead of drawing
    /// ThrottlingExceptions; the rest stays free for the account's other users.
    #[arg(long, global = true, value_name = "FRACTION|off", default_value = "0.5", env = "SECRET_ROLLOUT_AWS_RATE", value_parser = secret_rollout_core::aws::rate::RateSetting::parse)]
    pub aws_rate: secret_rollout_core::aws::rate::RateSetting,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Tables and progress for people.
    Text,
    /// One JSON document on stdout.
    Json,
    /// One JSON object per line on stdout: each progress event as it happens, the result
    /// (`"type": "report"` for rollouts) last.
    Ndjson,
}

/// Where to act: an environment from the config, or flags.
#[derive(Debug, Args, Clone, Default)]
pub struct Target {
    /// Environment from secret-rollout.toml (region, profile, account, clusters, prefix).
    #[arg(long, short = 'e', value_name = "NAME", env = "SECRET_ROLLOUT_ENV")]
    pub env: Option<String>,
    /// AWS region (overrides the environment's; default AWS_REGION).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// ECS cluster to search for consumers (repeatable; overrides the environment's).
    #[arg(long = "cluster", value_name = "CLUSTER")]
    pub clusters: Vec<String>,
    /// AWS profile from ~/.aws/config (role_arn + mfa_serial supported).
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// Send AWS calls to this endpoint (a sandbox); AWS_ENDPOINT_URL works too.
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// Read the MFA code from stdin instead of the terminal (scripts).
    #[arg(long)]
    pub mfa_code_stdin: bool,
}

/// How the new value arrives. Never on the command line.
#[derive(Debug, Args, Clone, Default)]
pub struct ValueArgs {
    /// Read the new value from stdin (all of it).
    #[arg(long, conflicts_with_all = ["value_file", "generate"])]
    pub value_stdin: bool,
    /// With --value-stdin or --value-file: drop one trailing newline (a value that ends in
    /// a newline is refused unless --trim-newline or --keep-newline says what is meant).
    #[arg(long, conflicts_with = "keep_newline")]
    pub trim_newline: bool,
    /// With --value-stdin or --value-file: store a trailing newline as part of the value.
    #[arg(long)]
    pub keep_newline: bool,
    /// Read the new value from a file (once per secret, in order).
    #[arg(long, value_name = "PATH", conflicts_with = "generate")]
    pub value_file: Vec<PathBuf>,
    /// Generate a cryptographically secure value (default: 32 random bytes, URL-safe base64).
    #[arg(long)]
    pub generate: bool,
    /// With --generate: bytes for base64url, characters otherwise.
    #[arg(long, value_name = "N", requires = "generate", value_parser = parse::length)]
    pub length: Option<usize>,
    /// With --generate: the alphabet.
    #[arg(long, value_enum, requires = "generate")]
    pub charset: Option<Charset>,
    /// With --generate: accept a value with less than 128 bits of randomness
    /// (length x log2(charset size)), for a reader that cannot take a longer one.
    #[arg(long)]
    pub allow_weak_value: bool,
    /// Replace one key of a JSON secret and keep the others.
    #[arg(long, value_name = "KEY")]
    pub json_key: Option<String>,
}

/// Alphabet of a generated value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Charset {
    /// URL-safe base64 of random bytes (no padding).
    Base64url,
    /// Letters and digits.
    Alphanumeric,
    /// Lowercase hex digits.
    Hex,
}

/// How far a rollout follows a staged deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Until {
    /// Through bake and clean-up.
    Complete,
    /// Until all production traffic is on tasks proven to hold the new value.
    Traffic,
}

/// What to do when the rollout fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnFailure {
    /// Move AWSCURRENT back to the previous version, redeploy and verify.
    Rollback,
    /// Leave the new version in place.
    Keep,
}

/// Options of a rollout (replace, redeploy, rollback, resume).
#[derive(Debug, Args, Clone)]
pub struct RolloutArgs {
    /// Give up after this long, for the whole command (e.g. 30m, 90s, 1h).
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = parse::timeout)]
    pub timeout: std::time::Duration,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Go on even if the credentials expire before --timeout would end.
    #[arg(long)]
    pub allow_short_credentials: bool,
    /// When a service to redeploy is in the middle of a deployment secret-rollout did not
    /// start (someone deploying, another rotation): wait for it to settle before writing,
    /// for at most --timeout (the rollout then has its own --timeout). Without it (or
    /// --allow-concurrent-deploy) such a run is refused before anything is written (exit 4).
    #[arg(long, conflicts_with = "allow_concurrent_deploy")]
    pub wait: bool,
    /// Go on although a service to redeploy is in the middle of a deployment
    /// secret-rollout did not start (its deployment is replaced by ours; a warning says so).
    #[arg(long)]
    pub allow_concurrent_deploy: bool,
    /// Go on although a service to redeploy would also ship a new image: its image tag
    /// (in ECR) points to another digest than its running tasks run, so the forced
    /// deployment resolves it anew. Without it such a run is refused before anything is
    /// written (exit 4); the report names the services that changed image.
    #[arg(long)]
    pub allow_image_change: bool,
    /// Count a new deployment as failed once this many of its tasks failed, stop it (with
    /// ROLLBACK where ECS has service deployments) and restore, instead of waiting out
    /// --timeout (1 to 200). Default: the circuit breaker's threshold (half the desired
    /// tasks, at least 3), for services the breaker does not cover (no breaker, or a
    /// blue/green, linear or canary deployment).
    #[arg(long, value_name = "N", value_parser = parse::max_task_failures)]
    pub max_task_failures: Option<u32>,
    /// At a PAUSE lifecycle hook (blue/green, linear, canary), continue the deployment
    /// once every new task is proven to have started after the new value was current,
    /// and stop it with ROLLBACK (then restore) when not. Without it the run stops there
    /// with exit 12 and the command to continue.
    #[arg(long)]
    pub approve_hooks: bool,
    /// How far to follow a blue/green, linear or canary deployment: `complete` (through
    /// bake and clean-up), or `traffic`: end (exit 0) once every task receiving production
    /// traffic is proven to hold the new value; the bake goes on and `status` shows its
    /// end. With `traffic` a bake longer than --timeout is not refused.
    #[arg(long, value_enum, value_name = "WHEN", default_value = "complete")]
    pub until: Until,
    /// Poll interval ceiling (tests and demos use less).
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse::max_poll, hide = true)]
    pub max_poll: std::time::Duration,
    /// Secrets Manager is eventually consistent: the read of the secret that proves what
    /// the tasks hold counts only this long after the tasks were listed (0s to 5m).
    #[arg(long, value_name = "DURATION", default_value = "5s", env = "SECRET_ROLLOUT_CONSISTENCY_MARGIN", value_parser = parse::consistency_margin)]
    pub consistency_margin: std::time::Duration,
}
