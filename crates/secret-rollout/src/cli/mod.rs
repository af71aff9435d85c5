//! The command-line layer: parse, set up logging, dispatch, render, map errors to exit
//! codes. Everything else lives in the library.

pub mod account;
pub mod args;
pub mod demo;
pub mod history;
pub mod output;
pub mod parse;
pub mod plan;
pub mod redeploy;
pub mod render;
pub mod replace;
pub mod resume;
pub mod rollback;
pub mod rotating;
pub mod session;
pub mod status;

use std::io::IsTerminal;

use clap::{CommandFactory, Parser};
use secret_rollout_core::error::{exit, Error};
use secret_rollout_core::progress::Reporter;

use args::{Cli, Command, Output};

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
        Err(e) => {
            // clap prints help/version to stdout (exit 0) and usage errors to stderr (2).
            let _ = e.print();
            return if e.use_stderr() {
                exit::BAD_INPUT
            } else {
                exit::OK
            };
        }
    };
    init_logging(cli.global.verbose);
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
            // `-v`: one `caused by:` line per error underneath (the SDK's error chain).
            eprintln!("{}", e.render_verbose(verbose));
            e.exit_code()
        }
    }
}

async fn dispatch(cli: Cli) -> Result<i32, Error> {
    let global = cli.global;
    match cli.command {
        Command::Sandbox(a) => sandbox(a).await,
        Command::Completions(a) => {
            let mut cmd = Cli::command();
            clap_complete::generate(a.shell, &mut cmd, "secret-rollout", &mut std::io::stdout());
            Ok(exit::OK)
        }
        Command::Man => {
            let mut out = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut out)
                .map_err(|e| {
                    Error::local(format!("cannot render the man page: {e}")).caused_by(e)
                })?;
            use std::io::Write;
            let _ = std::io::stdout().write_all(&out);
            Ok(exit::OK)
        }
        Command::Demo(a) => demo::run(&global, &a, reporter(global.output).as_ref()).await,
        Command::Plan(a) => plan::run(&global, &a).await,
        Command::Replace(a) => replace::run(&global, &a, reporter(global.output).as_ref()).await,
        Command::Redeploy(a) => redeploy::run(&global, &a, reporter(global.output).as_ref()).await,
        Command::Rollback(a) => rollback::run(&global, &a, reporter(global.output).as_ref()).await,
        Command::Resume(a) => resume::run(&global, &a, reporter(global.output).as_ref()).await,
        Command::Status(a) => status::status(&global, &a).await,
        Command::History(a) => history::history(&global, &a).await,
        Command::Whoami(a) => account::whoami(&global, &a).await,
        Command::Logout(a) => account::logout(&global, &a),
    }
}

/// The reporter for this run: bars on an interactive terminal, lines otherwise.
pub fn reporter(output: Output) -> Box<dyn Reporter> {
    let term = std::env::var("TERM").ok();
    let ci = std::env::var_os("CI").is_some();
    if output == Output::Text
        && render::use_bars(std::io::stderr().is_terminal(), ci, term.as_deref())
    {
        Box::new(render::Bars::default())
    } else {
        Box::new(render::Lines)
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

async fn sandbox(a: args::SandboxArgs) -> Result<i32, Error> {
    let scenario = match &a.scenario {
        Some(path) => sandbox::Scenario::load(path).map_err(|e| {
            Error::bad_input(e).hint("fix the scenario file (see crates/sandbox/SCENARIOS.md)")
        })?,
        None => sandbox::Scenario::sample(),
    };
    let options = sandbox::SandboxOptions {
        port: a.port,
        scenario,
        speed: a.speed,
        seed: a.seed,
    };
    let sb = sandbox::Sandbox::start(options).await.map_err(|e| {
        Error::bad_input(format!("cannot start the sandbox: {e}"))
            .hint("pick another port with --port (0 picks a free one)")
    })?;
    let state = sb.snapshot();
    println!("sandbox listening on {}", sb.endpoint());
    println!(
        "  region:      {}",
        state["region"].as_str().unwrap_or_default()
    );
    println!(
        "  account:     {}",
        state["account"].as_str().unwrap_or_default()
    );
    println!("  credentials: any access key (unless the scenario lists some)");
    println!();
    println!("  export AWS_ENDPOINT_URL={}", sb.endpoint());
    println!(
        "  export AWS_REGION={} AWS_ACCESS_KEY_ID=sandbox AWS_SECRET_ACCESS_KEY=sandbox",
        state["region"].as_str().unwrap_or_default()
    );
    println!("  state: curl {}/_sandbox/state", sb.endpoint());
    println!("Ctrl-C stops it.");
    let _ = tokio::signal::ctrl_c().await;
    Ok(exit::OK)
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
