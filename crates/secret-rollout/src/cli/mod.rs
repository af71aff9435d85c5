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
pub mod sync;
pub mod timeline;
pub mod unlock;
pub mod whoami;
pub mod width;

use std::io::{IsTerminal, Write};

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
use sync::SyncArgs;
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
    /// Roll out values changed outside secret-rollout: redeploy exactly the services whose tasks may hold an older value, follow and prove.
    #[command(
        after_help = "Examples:\n  secret-rollout sync --env production\n  secret-rollout sync api_rds_password --env production --yes"
    )]
    Sync(SyncArgs),
    /// Restore the previous value of a rotation (or of a secret) and redeploy its consumers.
    #[command(
        after_help = "Examples:\n  secret-rollout rollback 5f0c...  # a rotation id from `history`\n  secret-rollout rollback production/opg_lpa_front_csrf_salt --env production"
    )]
    Rollback(RollbackArgs),
    /// Finish a rotation that was interrupted (Ctrl-C, lost connection, crash).
    #[command(
        after_help = "Examples:\n  secret-rollout resume\n  secret-rollout resume 5f0c3b1e-...\n  secret-rollout resume 5f0c3b1e-... --written 4 --env production  # a parameter write the history cannot place: you name its version"
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
        output::print_error(requested_output(&argv), &e);
        eprintln!("{}", e.render());
        return e.exit_code();
    }
    let cli = match Cli::try_parse_from(&argv) {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // Help and version go to stdout, exit 0.
            print_help(&e, &argv);
            return exit::OK;
        }
        Err(e) => {
            // A usage error: one line naming the problem and a hint, like every other bad
            // input (clap's own layout adds a usage block and blank lines).
            let text = usage_error(&e.render().to_string(), &argv);
            output::print_error(requested_output(&argv), &usage_as_error(&text));
            eprintln!("{text}");
            return exit::BAD_INPUT;
        }
    };
    init_logging(cli.global.verbose);
    secret_rollout_core::aws::rate::set_process_setting(cli.global.aws_rate);
    secret_rollout_core::state::task_defs::enable();
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
            // Scripts parse stdout: with --output json or ndjson the error is a document
            // there too, besides the line on stderr.
            output::print_error(output, &e);
            // `-v`: one `caused by:` line per error underneath (the SDK's error chain).
            eprintln!("{}", e.render_verbose(verbose));
            e.exit_code()
        }
    }
}

/// Prints help (or the version) on stdout. clap wraps `after_help` to the terminal's
/// width like prose, which would cut an example command in two so that pasting it runs
/// half of it: the examples are put back exactly as written ([`unwrap_examples`]).
fn print_help(e: &clap::Error, argv: &[std::ffi::OsString]) {
    if e.kind() != clap::error::ErrorKind::DisplayHelp {
        let _ = e.print();
        return;
    }
    let rendered = e.render();
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let text = if color {
        rendered.ansi().to_string()
    } else {
        rendered.to_string()
    };
    let examples = help_subcommand(argv).and_then(|name| {
        Cli::command()
            .find_subcommand(&name)
            .and_then(|c| c.get_after_help().map(ToString::to_string))
    });
    let mut out = std::io::stdout().lock();
    let _ = write!(out, "{}", unwrap_examples(&text, examples.as_deref()));
    let _ = out.flush();
}

/// The subcommand whose help was asked for: the first argument naming one
/// (`secret-rollout replace --help`, `secret-rollout help replace`).
fn help_subcommand(argv: &[std::ffi::OsString]) -> Option<String> {
    let cmd = Cli::command();
    argv.iter()
        .skip(1)
        .filter_map(|a| a.to_str())
        .filter(|a| *a != "help")
        .find(|a| cmd.find_subcommand(a).is_some())
        .map(str::to_string)
}

/// `rendered` help with its examples section (from the last blank line before
/// `Example`) replaced by `examples` as written, one command per line whatever the width.
fn unwrap_examples(rendered: &str, examples: Option<&str>) -> String {
    let (Some(examples), Some(at)) = (examples, rendered.rfind("\n\nExample")) else {
        return rendered.to_string();
    };
    format!("{}\n\n{}\n", &rendered[..at], examples.trim_end())
}

/// The `--output` of a command line clap refused (`--output json`, `--output=ndjson`, or
/// `SECRET_ROLLOUT_OUTPUT`), so even a usage error reaches a script as JSON. Text when
/// none or an unknown one is given.
fn requested_output(argv: &[std::ffi::OsString]) -> Output {
    let parse = |v: &str| match v {
        "json" => Some(Output::Json),
        "ndjson" => Some(Output::Ndjson),
        _ => None,
    };
    let mut from_argv = None;
    let mut args = argv.iter().skip(1).filter_map(|a| a.to_str());
    while let Some(a) = args.next() {
        if a == "--" {
            break;
        }
        if a == "--output" {
            from_argv = args.next().map(parse);
        } else if let Some(v) = a.strip_prefix("--output=") {
            from_argv = Some(parse(v));
        }
    }
    from_argv
        .unwrap_or_else(|| {
            std::env::var("SECRET_ROLLOUT_OUTPUT")
                .ok()
                .and_then(|v| parse(&v))
        })
        .unwrap_or(Output::Text)
}

/// A rendered usage error ([`usage_error`]) as an [`Error`], for the JSON document.
fn usage_as_error(text: &str) -> Error {
    let mut lines = text.lines();
    let message = lines
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .to_string();
    let e = Error::bad_input(message);
    match lines.next().and_then(|l| l.trim().strip_prefix("hint: ")) {
        Some(hint) => e.hint(hint),
        None => e,
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
        Command::Sync(a) => sync::run(&global, &a, reporter(global.output).as_ref()).await,
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
        Output::Text | Output::Json => Box::new(render::Lines {
            width: width::stderr(),
        }),
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

    /// Item 13 of issue 21: examples never wrap, however narrow the terminal.
    #[test]
    fn help_examples_are_put_back_as_written() {
        let mut sub = Cli::command()
            .find_subcommand("replace")
            .unwrap()
            .clone()
            .term_width(40);
        let wrapped = sub.render_help().to_string();
        let raw = sub.get_after_help().unwrap().to_string();
        let long = raw.lines().max_by_key(|l| l.len()).unwrap();
        assert!(long.len() > 40 && !wrapped.contains(long), "clap wraps it");
        let fixed = unwrap_examples(&wrapped, Some(&raw));
        assert!(fixed.contains(long), "{fixed}");
        assert!(fixed.ends_with(&format!("{}\n", raw.trim_end())));
        assert!(fixed.starts_with(&wrapped[..wrapped.rfind("\n\nExample").unwrap()]));
        assert_eq!(
            unwrap_examples("no examples\n", Some(&raw)),
            "no examples\n"
        );
        let argv = |line: &str| -> Vec<std::ffi::OsString> {
            line.split_whitespace().map(Into::into).collect()
        };
        assert_eq!(
            help_subcommand(&argv("secret-rollout --output json replace --help")).as_deref(),
            Some("replace")
        );
        assert_eq!(
            help_subcommand(&argv("secret-rollout help status")).as_deref(),
            Some("status")
        );
        assert_eq!(help_subcommand(&argv("secret-rollout --help")), None);
    }

    /// Item 9 of issue 21: the `--output` of a refused command line is still found.
    #[test]
    fn requested_output_of_a_refused_command_line() {
        let table: &[(&str, Output)] = &[
            ("replace x --output json --timeout 0s", Output::Json),
            ("replace x --timeout 0s --output=ndjson", Output::Ndjson),
            ("--output json frobnicate", Output::Json),
            ("replace x --output yaml", Output::Text),
            ("replace x --output", Output::Text),
            ("replace x -- --output json", Output::Text),
        ];
        for (line, want) in table {
            let argv: Vec<std::ffi::OsString> = std::iter::once("secret-rollout")
                .chain(line.split_whitespace())
                .map(Into::into)
                .collect();
            // SECRET_ROLLOUT_OUTPUT is not set by the test runner.
            if std::env::var_os("SECRET_ROLLOUT_OUTPUT").is_none() {
                assert_eq!(requested_output(&argv), *want, "{line}");
            }
        }
        let e = usage_as_error(
            "error: unexpected argument 'x' found\n  hint: see `secret-rollout --help`",
        );
        assert_eq!(e.message, "unexpected argument 'x' found");
        assert_eq!(e.hint.as_deref(), Some("see `secret-rollout --help`"));
        assert_eq!(e.exit_code(), exit::BAD_INPUT);
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
