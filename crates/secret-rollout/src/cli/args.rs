//! Option groups shared by several commands, and the arguments of the commands not yet in
//! their own file: clap definitions only. Validation into core types happens in each
//! command's module; the core never sees clap. This module uses no other command module.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

/// Options shared by every command.
#[derive(Debug, Args, Clone)]
pub struct Global {
    /// Output format: human text, one JSON document on stdout, or JSON lines as it happens.
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
    /// With --value-stdin: drop one trailing newline.
    #[arg(long, requires = "value_stdin")]
    pub trim_newline: bool,
    /// Read the new value from a file (once per secret, in order).
    #[arg(long, value_name = "PATH", conflicts_with = "generate")]
    pub value_file: Vec<PathBuf>,
    /// Generate a cryptographically secure value (default: 32 random bytes, URL-safe base64).
    #[arg(long)]
    pub generate: bool,
    /// With --generate: bytes for base64url, characters otherwise.
    #[arg(long, value_name = "N", requires = "generate")]
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
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Go on even if the credentials expire before --timeout would end.
    #[arg(long)]
    pub allow_short_credentials: bool,
    /// Poll interval ceiling (tests and demos use less).
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration, hide = true)]
    pub max_poll: std::time::Duration,
}

/// `replace`.
#[derive(Debug, Args, Clone)]
pub struct ReplaceArgs {
    /// Secret names (the environment's prefix is added) or ARNs.
    #[arg(required = true, value_name = "SECRET")]
    pub secrets: Vec<String>,
    /// Where.
    #[command(flatten)]
    pub target: Target,
    /// The new value.
    #[command(flatten)]
    pub value: ValueArgs,
    /// Only these consumers (comma-separated service names).
    #[arg(long, value_delimiter = ',', value_name = "A,B")]
    pub services: Vec<String>,
    /// Show the plan and stop.
    #[arg(long)]
    pub dry_run: bool,
    /// What to do when the rollout fails.
    #[arg(long, value_enum, default_value_t = OnFailure::Rollback)]
    pub on_failure: OnFailure,
    /// Write even though the secret has rotation enabled.
    #[arg(long)]
    pub force_with_rotation: bool,
    /// Rollout options.
    #[command(flatten)]
    pub rollout: RolloutArgs,
}

/// `plan`.
#[derive(Debug, Args, Clone)]
pub struct PlanArgs {
    /// Secret names or ARNs.
    #[arg(required = true, value_name = "SECRET")]
    pub secrets: Vec<String>,
    /// Where.
    #[command(flatten)]
    pub target: Target,
    /// Only these consumers.
    #[arg(long, value_delimiter = ',', value_name = "A,B")]
    pub services: Vec<String>,
}

/// `redeploy`.
#[derive(Debug, Args, Clone)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["services", "secret"])))]
pub struct RedeployArgs {
    /// Where.
    #[command(flatten)]
    pub target: Target,
    /// These services (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "A,B")]
    pub services: Vec<String>,
    /// Every service that reads this secret.
    #[arg(long, value_name = "SECRET")]
    pub secret: Option<String>,
    /// Rollout options.
    #[command(flatten)]
    pub rollout: RolloutArgs,
}

/// `rollback`.
#[derive(Debug, Args, Clone)]
pub struct RollbackArgs {
    /// A rotation id (from `history`) or a secret name/ARN (its last rotation).
    #[arg(value_name = "ROTATION_ID|SECRET")]
    pub what: Option<String>,
    /// Where.
    #[command(flatten)]
    pub target: Target,
    /// Restore even though AWSCURRENT has moved on since that rotation.
    #[arg(long)]
    pub force: bool,
    /// Rollout options.
    #[command(flatten)]
    pub rollout: RolloutArgs,
}

/// `resume`.
#[derive(Debug, Args, Clone)]
pub struct ResumeArgs {
    /// The rotation to finish (default: the only unfinished one).
    #[arg(value_name = "ROTATION_ID")]
    pub rotation: Option<String>,
    /// Where (credentials; region and clusters come from the journal).
    #[command(flatten)]
    pub target: Target,
    /// The value, if the write had not happened yet.
    #[command(flatten)]
    pub value: ValueArgs,
    /// What to do when the rollout fails (default: what the interrupted run was told).
    #[arg(long, value_enum)]
    pub on_failure: Option<OnFailure>,
    /// Rollout options.
    #[command(flatten)]
    pub rollout: RolloutArgs,
}

/// Parses `90s`, `30m`, `1h`, `1h30m`, `500ms`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    if let Ok(n) = s.parse::<u64>() {
        return Ok(std::time::Duration::from_secs(n));
    }
    let mut total = 0.0f64;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let unit = if c == 'm' && chars.peek() == Some(&'s') {
            chars.next();
            "ms".to_string()
        } else {
            c.to_string()
        };
        let n: f64 = num
            .parse()
            .map_err(|_| format!("invalid duration {s:?}: use e.g. 90s, 30m, 1h"))?;
        num.clear();
        total += n * match unit.as_str() {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(format!("invalid duration {s:?}: units are ms, s, m, h")),
        };
        any = true;
    }
    if !num.is_empty() || !any {
        return Err(format!("invalid duration {s:?}: use e.g. 90s, 30m, 1h"));
    }
    Ok(std::time::Duration::from_secs_f64(total))
}
