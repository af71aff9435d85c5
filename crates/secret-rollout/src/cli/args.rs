//! The command line as given: clap definitions only. Validation into core types happens in
//! each command's module; the core never sees clap.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use super::parse;

/// Replace a secret in AWS Secrets Manager, roll it out to every ECS service that reads
/// it, and prove every running task has it.
#[derive(Debug, Parser)]
#[command(
    name = "secret-rollout",
    version,
    propagate_version = true,
    arg_required_else_help = true
)]
#[command(
    after_help = "Start with `secret-rollout demo`: the whole job on a local sandbox, no AWS account needed."
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Options shared by every command.
    #[command(flatten)]
    pub global: Global,
}

/// Options shared by every command.
#[derive(Debug, Args, Clone)]
pub struct Global {
    /// Output format: human text, or JSON on stdout for machines.
    #[arg(long, global = true, value_enum, default_value_t = Output::Text, env = "SECRET_ROLLOUT_OUTPUT")]
    pub output: Output,
    /// Path of secret-rollout.toml (default: ./secret-rollout.toml, then the user's config dir).
    /// (SECRET_ROLLOUT_CONFIG is read by the config module itself: empty there means "none".)
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// More log output on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Tables and progress for people.
    Text,
    /// One JSON document on stdout.
    Json,
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
    /// Poll interval ceiling (tests and demos use less).
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse::max_poll, hide = true)]
    pub max_poll: std::time::Duration,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Replace a secret's value and roll it out to every ECS service that reads it.
    #[command(after_help = "Examples:
  secret-rollout replace opg_lpa_front_csrf_salt --env production --generate
  printf '%s' \"$NEW\" | secret-rollout replace production/api_rds_password --region eu-west-1 --cluster production-online-lpa --value-stdin --yes
  secret-rollout replace production/api_rds_credentials --env production --json-key password --value-file pw.txt
  aws-vault exec prod -- secret-rollout replace notify_key --env production --generate --yes")]
    Replace(super::replace::ReplaceArgs),
    /// Show what `replace` would do, and write nothing (the same as replace --dry-run).
    #[command(
        after_help = "Example:\n  secret-rollout plan opg_lpa_common_account_cleanup_notification_recipients --env production"
    )]
    Plan(super::plan::PlanArgs),
    /// Force a new deployment of services (by name or by the secret they read), follow and verify.
    #[command(
        after_help = "Examples:\n  secret-rollout redeploy --env production --services api,front\n  secret-rollout redeploy --env production --secret api_rds_password"
    )]
    Redeploy(super::redeploy::RedeployArgs),
    /// Restore the previous value of a rotation (or of a secret) and redeploy its consumers.
    #[command(
        after_help = "Examples:\n  secret-rollout rollback 5f0c...  # a rotation id from `history`\n  secret-rollout rollback production/opg_lpa_front_csrf_salt --env production"
    )]
    Rollback(super::rollback::RollbackArgs),
    /// Finish a rotation that was interrupted (Ctrl-C, lost connection, crash).
    #[command(
        after_help = "Examples:\n  secret-rollout resume\n  secret-rollout resume 5f0c3b1e-..."
    )]
    Resume(super::resume::ResumeArgs),
    /// Show which services still run tasks that hold an old value.
    #[command(
        after_help = "Examples:\n  secret-rollout status --env production\n  secret-rollout status --env production opg_lpa_front_csrf_salt --output json"
    )]
    Status(StatusArgs),
    /// List past rotations and secret versions (never values).
    #[command(
        after_help = "Examples:\n  secret-rollout history\n  secret-rollout history opg_lpa_front_csrf_salt --env production"
    )]
    History(HistoryArgs),
    /// Show who the credentials belong to and how long they last.
    #[command(
        after_help = "Examples:\n  secret-rollout whoami --profile production\n  secret-rollout whoami --env production"
    )]
    Whoami(WhoamiArgs),
    /// Forget cached MFA sessions.
    #[command(
        after_help = "Examples:\n  secret-rollout logout\n  secret-rollout logout --profile production"
    )]
    Logout(LogoutArgs),
    /// Run the local AWS sandbox (Secrets Manager, ECS, STS) until Ctrl-C.
    #[command(
        after_help = "Examples:\n  secret-rollout sandbox --port 4566\n  AWS_ENDPOINT_URL=http://127.0.0.1:4566 aws ecs describe-services --cluster production-online-lpa --services api"
    )]
    Sandbox(SandboxArgs),
    /// The whole job on an embedded sandbox: no AWS account needed.
    #[command(after_help = "Example:\n  secret-rollout demo")]
    Demo(DemoArgs),
    /// Print shell completions.
    #[command(
        after_help = "Example:\n  secret-rollout completions bash > /etc/bash_completion.d/secret-rollout"
    )]
    Completions(CompletionsArgs),
    /// Print the man page (roff).
    #[command(after_help = "Example:\n  secret-rollout man | man -l -")]
    Man,
}

/// `status`.
#[derive(Debug, Args, Clone)]
pub struct StatusArgs {
    /// Secrets to check (default: every secret the services read).
    #[arg(value_name = "SECRET")]
    pub secrets: Vec<String>,
    /// Where.
    #[command(flatten)]
    pub target: Target,
    /// Refresh in place every few seconds until Ctrl-C.
    #[arg(long)]
    pub watch: bool,
}

/// `history`.
#[derive(Debug, Args, Clone)]
pub struct HistoryArgs {
    /// Only this secret; with it, its versions are read from Secrets Manager too.
    #[arg(value_name = "SECRET")]
    pub secret: Option<String>,
    /// Where.
    #[command(flatten)]
    pub target: Target,
}

/// `whoami`.
#[derive(Debug, Args, Clone)]
pub struct WhoamiArgs {
    /// Where.
    #[command(flatten)]
    pub target: Target,
}

/// `logout`.
#[derive(Debug, Args, Clone)]
pub struct LogoutArgs {
    /// Only this profile's session (default: all).
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
}

/// `sandbox`.
#[derive(Debug, Args, Clone)]
pub struct SandboxArgs {
    /// Port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 4566)]
    pub port: u16,
    /// Scenario file (TOML); default: the built-in sample environment.
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// Virtual seconds per real second.
    #[arg(long, value_name = "FACTOR", value_parser = parse::speed)]
    pub speed: Option<f64>,
    /// Seed for ids and random rules.
    #[arg(long)]
    pub seed: Option<u64>,
}

/// `demo`.
#[derive(Debug, Args, Clone)]
pub struct DemoArgs {
    /// Virtual seconds per real second (a rollout takes a few seconds at the default).
    #[arg(long, default_value_t = 20.0, value_name = "FACTOR", value_parser = parse::speed)]
    pub speed: f64,
    /// Make api reject the new value, to see the failure and the restore.
    #[arg(long)]
    pub bad_value: bool,
}

/// `completions`.
#[derive(Debug, Args, Clone)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}
