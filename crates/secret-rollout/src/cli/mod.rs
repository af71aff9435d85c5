//! The command-line layer: parse, set up logging, dispatch, render, map errors to exit
//! codes. Everything else lives in the library.
//!
//! Modules depend downwards only, never in a circle: this root holds the command line
//! ([`Cli`], [`Command`]) and dispatches to one module per subcommand (its arguments and
//! its `run`); those use the shared pieces (`args`, `session`, `output`, `render`,
//! `ndjson`), which use no command module.

pub mod args;
pub mod completions;
pub mod demo;
pub mod history;
pub mod logout;
pub mod man;
pub mod ndjson;
pub mod output;
pub mod parse;
pub mod plan;
pub mod redeploy;
pub mod render;
pub mod replace;
pub mod resume;
pub mod rollback;
pub mod rotating;
pub mod sandbox;
pub mod session;
pub mod status;
pub mod unlock;
pub mod whoami;

use std::io::IsTerminal;

use clap::{CommandFactory, Parser, Subcommand};
use secret_rollout_core::error::{exit, Error};
use secret_rollout_core::progress::Reporter;

use args::{Global, Output};
use completions::CompletionsArgs;
use demo::DemoArgs;
use history::HistoryArgs;
use logout::LogoutArgs;
use plan::PlanArgs;
use redeploy::RedeployArgs;
use replace::ReplaceArgs;
use resume::ResumeArgs;
use rollback::RollbackArgs;
use sandbox::SandboxArgs;
use status::StatusArgs;
use unlock::UnlockArgs;
use whoami::WhoamiArgs;

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

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Replace a secret's value and roll it out to every ECS service that reads it.
    #[command(after_help = "Examples:
  secret-rollout replace opg_lpa_front_csrf_salt --env production --generate
  printf '%s' \"$NEW\" | secret-rollout replace production/api_rds_password --region eu-west-1 --cluster production-online-lpa --value-stdin --yes
  secret-rollout replace production/api_rds_credentials --env production --json-key password --value-file pw.txt
  aws-vault exec prod -- secret-rollout replace notify_key --env production --generate --yes")]
    Replace(ReplaceArgs),
    /// Show what `replace` would do, and write nothing (the same as replace --dry-run).
    #[command(
        after_help = "Example:\n  secret-rollout plan opg_lpa_common_account_cleanup_notification_recipients --env production"
    )]
    Plan(PlanArgs),
    /// Force a new deployment of services (by name or by the secret they read), follow and verify.
    #[command(
        after_help = "Examples:\n  secret-rollout redeploy --env production --services api,front\n  secret-rollout redeploy --env production --secret api_rds_password"
    )]
    Redeploy(RedeployArgs),
    /// Restore the previous value of a rotation (or of a secret) and redeploy its consumers.
    #[command(
        after_help = "Examples:\n  secret-rollout rollback 5f0c...  # a rotation id from `history`\n  secret-rollout rollback production/opg_lpa_front_csrf_salt --env production"
    )]
    Rollback(RollbackArgs),
    /// Finish a rotation that was interrupted (Ctrl-C, lost connection, crash).
    #[command(
        after_help = "Examples:\n  secret-rollout resume\n  secret-rollout resume 5f0c3b1e-..."
    )]
    Resume(ResumeArgs),
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
    /// Remove a secret's lock left by a run that is gone, after showing its holder and age.
    #[command(
        after_help = "Examples:\n  secret-rollout unlock opg_lpa_front_csrf_salt --env production\n  secret-rollout unlock production/api_rds_password --env production --yes"
    )]
    Unlock(UnlockArgs),
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

/// Runs the command line and returns the exit code.
pub fn main() -> i32 {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // Before clap: a value given on the command line is refused with its own message
    // (clap would only say "unexpected argument"), and never echoed.
    if let Err(e) = secret_rollout_core::value::reject_value_flags(&argv[1.min(argv.len())..]) {
        eprintln!("{}", e.render());
        return e.exit_code();
    }
    let cli = match Cli::try_parse_from(&argv) {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // Help and version go to stdout, exit 0.
            let _ = e.print();
            return exit::OK;
        }
        Err(e) => {
            // A usage error: one line naming the problem and a hint, like every other bad
            // input (clap's own layout adds a usage block and blank lines).
            eprintln!("{}", usage_error(&e.render().to_string(), &argv));
            return exit::BAD_INPUT;
        }
    };
    init_logging(cli.global.verbose);
    let output = cli.global.output;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit::BAD_INPUT;
        }
    };
    let verbose = cli.global.verbose > 0;
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            if output == Output::Ndjson {
                ndjson::print_error(&e);
            }
            // `-v`: one `caused by:` line per error underneath (the SDK's error chain).
            eprintln!("{}", e.render_verbose(verbose));
            e.exit_code()
        }
    }
}

/// clap's rendered usage error as `error: ...` and `  hint: ...`: its first line, then its
/// own tip when it has one, else where the accepted forms are listed.
fn usage_error(rendered: &str, argv: &[std::ffi::OsString]) -> String {
    let mut lines = rendered.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("error: invalid command line");
    let tip = lines.find_map(|l| l.strip_prefix("tip: "));
    let command = argv
        .get(1)
        .and_then(|a| a.to_str())
        .filter(|a| !a.starts_with('-'))
        .map(|a| format!(" {a}"))
        .unwrap_or_default();
    let hint = tip.map_or_else(
        || format!("see `secret-rollout{command} --help`"),
        str::to_string,
    );
    format!("{first}\n  hint: {hint}")
}

async fn dispatch(cli: Cli) -> Result<i32, Error> {
    let global = cli.global;
    match cli.command {
        Command::Sandbox(a) => sandbox::run(&a).await,
        Command::Completions(a) => completions::run(&a, Cli::command()),
        Command::Man => man::run(Cli::command()),
        Command::Demo(a) => demo::run(&global, &a, reporter(global.output).as_ref()).await,
        Command::Plan(a) => plan::run(&global, &a).await,
        Command::Replace(a) => replace::run(&global, &a, reporter(global.output).as_ref()).await,
        Command::Redeploy(a) => redeploy::run(&global, &a, reporter(global.output).as_ref()).await,
        Command::Rollback(a) => rollback::run(&global, &a, reporter(global.output).as_ref()).await,
        Command::Resume(a) => resume::run(&global, &a, reporter(global.output).as_ref()).await,
        Command::Status(a) => status::run(&global, &a).await,
        Command::History(a) => history::run(&global, &a).await,
        Command::Unlock(a) => unlock::run(&global, &a).await,
        Command::Whoami(a) => whoami::run(&global, &a).await,
        Command::Logout(a) => logout::run(&global, &a),
    }
}

/// The reporter for this run: JSON lines on stdout with `--output ndjson`; else bars on an
/// interactive terminal, timestamped lines otherwise (both on stderr).
pub fn reporter(output: Output) -> Box<dyn Reporter> {
    let term = std::env::var("TERM").ok();
    let ci = std::env::var_os("CI").is_some();
    match output {
        Output::Ndjson => Box::new(ndjson::Ndjson),
        Output::Text if render::use_bars(std::io::stderr().is_terminal(), ci, term.as_deref()) => {
            Box::new(render::Bars::default())
        }
        Output::Text | Output::Json => Box::new(render::Lines),
    }
}

/// Targets whose TRACE output includes raw HTTP bodies: a PutSecretValue request or a
/// GetSecretValue response holds a secret value.
const BODY_LOGGING_TARGETS: [&str; 10] = [
    "aws_smithy_runtime",
    "aws_smithy_http_client",
    "aws_smithy_http",
    "aws_sigv4",
    "aws_runtime",
    "hyper",
    "hyper_util",
    "h2",
    "rustls",
    "reqwest",
];

/// Whether an event may be logged whatever RUST_LOG asks: nothing at TRACE from the HTTP
/// and SDK internals (a per-module RUST_LOG directive must not reopen them either).
pub fn loggable(level: &tracing::Level, target: &str) -> bool {
    *level != tracing::Level::TRACE
        || !BODY_LOGGING_TARGETS
            .iter()
            .any(|t| target == *t || target.starts_with(&format!("{t}::")))
}

/// Logging to stderr: warnings by default, `-v` info, `-vv` debug, RUST_LOG overrides,
/// except that HTTP and SDK internals never log at TRACE ([`loggable`]).
fn init_logging(verbose: u8) {
    use tracing_subscriber::filter::{filter_fn, EnvFilter};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let default = match verbose {
        // aws-config warns about a missing ~/.aws/config, which is normal here.
        0 => "warn,aws_config=error",
        1 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(true)
        .with_filter(filter)
        .with_filter(filter_fn(|meta| loggable(meta.level(), meta.target())));
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_and_sdk_internals_never_log_at_trace() {
        use tracing::Level;
        assert!(!loggable(
            &Level::TRACE,
            "aws_smithy_runtime::client::orchestrator"
        ));
        assert!(!loggable(&Level::TRACE, "hyper"));
        assert!(loggable(
            &Level::DEBUG,
            "aws_smithy_runtime::client::orchestrator"
        ));
        assert!(loggable(&Level::TRACE, "secret_rollout_core::rotation"));
        assert!(loggable(&Level::TRACE, "hyperlocal_other_crate"));
    }

    #[test]
    fn usage_errors_are_one_line_and_a_hint() {
        let argv: Vec<std::ffi::OsString> = ["secret-rollout", "replace", "x", "--timeout", "0s"]
            .iter()
            .map(Into::into)
            .collect();
        let e = Cli::try_parse_from(&argv).unwrap_err();
        let text = usage_error(&e.render().to_string(), &argv);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].starts_with("error: invalid value '0s' for '--timeout"),
            "{text}"
        );
        assert!(
            lines[0].ends_with("the timeout must be from 10s to 7days"),
            "{text}"
        );
        assert_eq!(lines[1], "  hint: see `secret-rollout replace --help`");
        // clap's own tip becomes the hint.
        let argv: Vec<std::ffi::OsString> = ["secret-rollout", "replace", "x", "--value-fil", "f"]
            .iter()
            .map(Into::into)
            .collect();
        let e = Cli::try_parse_from(&argv).unwrap_err();
        let text = usage_error(&e.render().to_string(), &argv);
        assert!(
            text.contains("  hint: a similar argument exists: '--value-file'"),
            "{text}"
        );
        assert_eq!(text.lines().count(), 2, "{text}");
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Command lines clap must accept (`true`) or reject (`false`), one per row.
    #[test]
    fn command_lines_accepted_and_rejected() {
        let table: &[(&str, bool)] = &[
            ("status --env production", true),
            (
                "status --region eu-west-1 --cluster c a b --watch --output json",
                true,
            ),
            ("status --output yaml", false),
            ("status --output ndjson", true),
            ("replace x --generate --yes --output ndjson", true),
            ("status --watch=yes", false),
            ("history", true),
            ("history production/x --env production --output json", true),
            ("history a b", false),
            (
                "whoami --profile p --endpoint-url http://127.0.0.1:1 --mfa-code-stdin",
                true,
            ),
            ("whoami --env production", true),
            ("whoami extra", false),
            ("logout", true),
            ("logout --profile production", true),
            ("logout --env production", false),
            ("completions bash", true),
            ("completions zsh", true),
            ("completions fish", true),
            ("completions tcsh", false),
            ("man", true),
            ("man page", false),
            ("replace x --cluster c --generate --yes", true),
            ("replace --cluster c --generate", false),
            ("replace x --value-stdin --generate", false),
            // Parsed, then refused by session::check_value_flags before any AWS call
            // (its own test): clap cannot say "requires --value-stdin or --value-file".
            ("replace x --trim-newline", true),
            ("replace x --keep-newline", true),
            ("replace x --value-file f --trim-newline", true),
            ("replace x --value-stdin --keep-newline", true),
            (
                "replace x --value-stdin --keep-newline --trim-newline",
                false,
            ),
            ("replace x --generate --timeout 0s", false),
            (
                "replace x --generate --timeout 18446744073709551616s",
                false,
            ),
            ("replace x --generate --length 0", false),
            ("sandbox --speed 1e308", false),
            ("redeploy --services , --cluster c", false),
            ("redeploy --services a,,b --cluster c", false),
            ("replace x --length 10", false),
            (
                "replace x --generate --charset hex --length 10 --timeout 1h30m",
                true,
            ),
            ("replace x --generate --timeout soon", false),
            ("plan x --cluster c", true),
            ("plan", false),
            ("redeploy --services a,b --cluster c", true),
            ("redeploy --secret x", true),
            ("redeploy --cluster c", false),
            ("rollback", true),
            (
                "rollback 5f0c3b1e-0000-0000-0000-000000000000 --force",
                true,
            ),
            ("resume --on-failure keep", true),
            ("resume --on-failure maybe", false),
            ("sandbox --port 0 --speed 100 --seed 3", true),
            ("sandbox --port http", false),
            ("demo", true),
            ("frobnicate", false),
        ];
        for (line, ok) in table {
            let argv = std::iter::once("secret-rollout").chain(line.split_whitespace());
            let parsed = Cli::try_parse_from(argv);
            assert_eq!(
                parsed.is_ok(),
                *ok,
                "`{line}`: {:?}",
                parsed.err().map(|e| e.to_string())
            );
        }
    }

    #[test]
    fn status_arguments_reach_their_fields() {
        let cli = Cli::try_parse_from([
            "secret-rollout",
            "status",
            "--region",
            "eu-west-1",
            "--cluster",
            "a",
            "--cluster",
            "b",
            "s1",
            "s2",
            "--watch",
            "--output",
            "json",
        ])
        .unwrap();
        assert_eq!(cli.global.output, Output::Json);
        let Command::Status(a) = cli.command else {
            panic!("status expected");
        };
        assert_eq!(a.secrets, ["s1", "s2"]);
        assert_eq!(a.target.clusters, ["a", "b"]);
        assert!(a.watch);
    }
}
