//! The one user-facing error type, and the exit codes it maps to.
//!
//! Every failure a user can meet is an [`Error`]: a one-line headline that names the
//! problem, a hint that names the fix, and the exit code. Messages are lowercase and read
//! after "error: ". They never contain a secret value.

use std::fmt;
use std::sync::Arc;

/// The one table of exit codes (README "Exit codes"). Stable: scripts depend on them. Work
/// that needs a new code adds it here and to the README, nowhere else.
pub mod exit {
    /// Success: written, rolled out and every running task proven new (`status`: nothing
    /// stale).
    pub const OK: i32 = 0;
    /// `status` found stale tasks: some running tasks still hold an old value.
    pub const STALE: i32 = 1;
    /// Bad input or configuration (arguments, config, value). Nothing was written.
    pub const BAD_INPUT: i32 = 2;
    /// Credentials missing, expired, too short-lived, or for the wrong account.
    pub const CREDENTIALS: i32 = 3;
    /// Refused before any write: a guard said no (a consumer in the middle of a deployment
    /// the tool did not start, CODE_DEPLOY consumer, rotation enabled, secret being deleted,
    /// lock held, unfinished rotation, no confirmation).
    pub const REFUSED: i32 = 4;
    /// A deployment failed and the value was kept (`--on-failure keep`), or there was
    /// nothing to restore.
    pub const DEPLOY_FAILED: i32 = 5;
    /// Not proven: a running task was not proven to hold the new value.
    pub const VERIFY_FAILED: i32 = 6;
    /// `--timeout` elapsed; the rotation can be resumed.
    pub const TIMEOUT: i32 = 7;
    /// The rollout failed and the previous version was restored and verified.
    pub const FAILED_RESTORED: i32 = 8;
    /// The rollout failed and restoring the previous version failed too.
    pub const RESTORE_FAILED: i32 = 9;
    /// AWS answered with an error retries did not cure (never a local failure: those are
    /// [`BAD_INPUT`], configuration).
    pub const AWS: i32 = 10;
    /// Superseded: another version became AWSCURRENT during the run and nothing was
    /// restored over it (see `holding`).
    pub const SUPERSEDED: i32 = 11;
    /// Waiting at a `PAUSE` lifecycle hook: nothing failed; once it is continued,
    /// `resume` goes on.
    pub const PAUSED: i32 = 12;
    /// The lock's lease on the team state (S3) was lost mid-run: the run stopped before its
    /// next write and kept its journal locally; `resume` goes on.
    pub const LEASE_LOST: i32 = 13;
    /// Interrupted (Ctrl-C); the rotation can be resumed.
    pub const INTERRUPTED: i32 = 130;
}

/// What kind of failure: decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// See [`exit::BAD_INPUT`].
    BadInput,
    /// See [`exit::CREDENTIALS`].
    Credentials,
    /// See [`exit::REFUSED`].
    Refused,
    /// See [`exit::DEPLOY_FAILED`].
    DeployFailed,
    /// See [`exit::VERIFY_FAILED`].
    VerifyFailed,
    /// See [`exit::TIMEOUT`].
    Timeout,
    /// See [`exit::FAILED_RESTORED`].
    FailedRestored,
    /// See [`exit::RESTORE_FAILED`].
    RestoreFailed,
    /// See [`exit::AWS`].
    Aws,
    /// See [`exit::SUPERSEDED`].
    Superseded,
    /// See [`exit::PAUSED`].
    Paused,
    /// See [`exit::INTERRUPTED`].
    Interrupted,
    /// See [`exit::LEASE_LOST`].
    LeaseLost,
    /// See [`exit::STALE`].
    Stale,
}

impl Kind {
    /// Every kind, for tables and tests.
    pub const ALL: [Kind; 14] = [
        Kind::Stale,
        Kind::BadInput,
        Kind::Credentials,
        Kind::Refused,
        Kind::DeployFailed,
        Kind::VerifyFailed,
        Kind::Timeout,
        Kind::FailedRestored,
        Kind::RestoreFailed,
        Kind::Aws,
        Kind::Superseded,
        Kind::Paused,
        Kind::LeaseLost,
        Kind::Interrupted,
    ];

    /// Its name in JSON (`"outcome"` of an error document): `bad_input`, `credentials`, ...
    pub fn name(self) -> &'static str {
        match self {
            Kind::BadInput => "bad_input",
            Kind::Credentials => "credentials",
            Kind::Refused => "refused",
            Kind::DeployFailed => "deploy_failed",
            Kind::VerifyFailed => "verify_failed",
            Kind::Timeout => "timeout",
            Kind::FailedRestored => "failed_restored",
            Kind::RestoreFailed => "restore_failed",
            Kind::Aws => "aws_error",
            Kind::Superseded => "superseded",
            Kind::Paused => "paused",
            Kind::LeaseLost => "lease_lost",
            Kind::Interrupted => "interrupted",
            Kind::Stale => "stale",
        }
    }

    /// The process exit code.
    pub fn exit_code(self) -> i32 {
        match self {
            Kind::BadInput => exit::BAD_INPUT,
            Kind::Credentials => exit::CREDENTIALS,
            Kind::Refused => exit::REFUSED,
            Kind::DeployFailed => exit::DEPLOY_FAILED,
            Kind::VerifyFailed => exit::VERIFY_FAILED,
            Kind::Timeout => exit::TIMEOUT,
            Kind::FailedRestored => exit::FAILED_RESTORED,
            Kind::RestoreFailed => exit::RESTORE_FAILED,
            Kind::Aws => exit::AWS,
            Kind::Superseded => exit::SUPERSEDED,
            Kind::Paused => exit::PAUSED,
            Kind::Interrupted => exit::INTERRUPTED,
            Kind::LeaseLost => exit::LEASE_LOST,
            Kind::Stale => exit::STALE,
        }
    }
}

/// The options that reach the environment a command acted on, as they were typed
/// (`--config`, `--env`, `--region`, `--cluster`, `--profile`, `--endpoint-url`): every
/// `secret-rollout` command the tool suggests carries them, so it reaches the same
/// environment when pasted in the same shell.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reach(Vec<String>);

impl Reach {
    /// From the words of the options, in order (`["--env", "production"]`).
    pub fn new(words: Vec<String>) -> Self {
        Self(words)
    }

    /// The options as shell words, each quoted where the shell would split or expand it;
    /// empty, or starting with a space.
    pub fn flags(&self) -> String {
        self.0
            .iter()
            .map(|w| {
                let quoted = shlex::try_quote(w).map(|q| q.into_owned());
                format!(" {}", quoted.unwrap_or_else(|_| w.clone()))
            })
            .collect()
    }

    /// `secret-rollout ARGS` followed by the options: `args` are shell words already
    /// (names and ids, or placeholders in capitals such as `SECRET`).
    pub fn command(&self, args: &str) -> String {
        format!("secret-rollout {args}{}", self.flags())
    }

    /// Whether no option was typed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What caused an error: the SDK error, an I/O error. Shown by `-v` as `caused by:` lines.
pub type Cause = Arc<dyn std::error::Error + Send + Sync>;

/// A user-facing error: headline, optional hint (what to do next), exit code, and the
/// underlying cause when there is one.
#[derive(Clone)]
pub struct Error {
    /// What kind of failure.
    pub kind: Kind,
    /// One line naming the problem ("secret production/x not found in eu-west-1").
    pub message: String,
    /// One line naming the fix ("check the name with `aws secretsmanager list-secrets`").
    pub hint: Option<String>,
    /// Extra lines printed after the hint (e.g. the commands to restore by hand).
    pub details: Vec<String>,
    /// The error underneath (an SDK error keeps its code, request id and chain). Its
    /// `Debug` is never printed: only the `Display` of each link (see [`Error::causes`]),
    /// because an SDK error's `Debug` holds the raw HTTP response.
    pub source: Option<Cause>,
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .field("hint", &self.hint)
            .field("details", &self.details)
            .field("causes", &self.causes())
            .finish()
    }
}

/// Equal when everything a user sees is equal, causes compared by their text.
impl PartialEq for Error {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
            && self.message == other.message
            && self.hint == other.hint
            && self.details == other.details
            && self.causes() == other.causes()
    }
}

impl Eq for Error {}

impl Error {
    /// An error of `kind` with a message.
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            hint: None,
            details: Vec::new(),
            source: None,
        }
    }

    /// Keeps `cause` as the source (shown by `-v`).
    pub fn caused_by<E: std::error::Error + Send + Sync + 'static>(self, cause: E) -> Self {
        self.with_cause(Arc::new(cause))
    }

    /// Keeps an already shared cause as the source.
    pub fn with_cause(mut self, cause: Cause) -> Self {
        self.source = Some(cause);
        self
    }

    /// The `Display` of every error in the source chain, outermost first.
    pub fn causes(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut next = std::error::Error::source(self);
        while let Some(e) = next {
            out.push(e.to_string());
            next = e.source();
        }
        out
    }

    /// Adds the hint: what to do next.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Adds a detail line.
    pub fn detail(mut self, line: impl Into<String>) -> Self {
        self.details.push(line.into());
        self
    }

    /// Bad input.
    pub fn bad_input(message: impl Into<String>) -> Self {
        Self::new(Kind::BadInput, message)
    }

    /// Refused before any write.
    pub fn refused(message: impl Into<String>) -> Self {
        Self::new(Kind::Refused, message)
    }

    /// Credentials problem.
    pub fn credentials(message: impl Into<String>) -> Self {
        Self::new(Kind::Credentials, message)
    }

    /// AWS answered an AWS call with an error that retries did not cure (exit 10). Only
    /// for AWS's answers: a local failure is [`Error::local`].
    pub fn aws_call(message: impl Into<String>) -> Self {
        Self::new(Kind::Aws, message)
    }

    /// A local failure (a file, a directory, the runtime, the terminal): configuration,
    /// exit 2. Give a hint naming the path and the fix.
    pub fn local(message: impl Into<String>) -> Self {
        Self::new(Kind::BadInput, message)
    }

    /// A local I/O failure on `path`: configuration (exit 2), the `io::Error` kept as source.
    pub fn local_io(what: &str, path: &std::path::Path, err: std::io::Error) -> Self {
        Self::local(format!("cannot {what} {}: {}", path.display(), err.kind()))
            .hint(format!(
                "check that {} exists and that you may read and write it (or choose another directory)",
                path.display()
            ))
            .caused_by(err)
    }

    /// The process exit code.
    pub fn exit_code(&self) -> i32 {
        self.kind.exit_code()
    }

    /// The error as printed: `error: MESSAGE` then `  hint: HINT` and the details.
    pub fn render(&self) -> String {
        let mut out = format!("error: {}", self.message);
        if let Some(hint) = &self.hint {
            out.push_str("\n  hint: ");
            out.push_str(hint);
        }
        for line in &self.details {
            out.push_str("\n  ");
            out.push_str(line);
        }
        out
    }

    /// [`Error::render`] followed, when `verbose`, by one `  caused by: ...` line per
    /// error in the source chain. Causes are SDK and I/O errors: they never hold a value.
    pub fn render_verbose(&self, verbose: bool) -> String {
        let mut out = self.render();
        if verbose {
            for cause in self.causes() {
                out.push_str("\n  caused by: ");
                out.push_str(&cause);
            }
        }
        out
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " ({hint})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Result with the user-facing error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    /// A suggested command carries the options as typed, quoted where a shell would split
    /// or expand them.
    #[test]
    fn a_command_carries_the_options_that_reach_the_environment() {
        assert_eq!(
            Reach::default().command("history"),
            "secret-rollout history"
        );
        let reach = Reach::new(
            [
                "--config",
                "my dir/x.toml",
                "--env",
                "production",
                "--cluster",
                "c",
            ]
            .map(String::from)
            .to_vec(),
        );
        assert_eq!(
            reach.command("rollback 0123abcd"),
            "secret-rollout rollback 0123abcd --config 'my dir/x.toml' --env production --cluster c"
        );
        assert_eq!(
            reach.flags(),
            " --config 'my dir/x.toml' --env production --cluster c"
        );
    }

    #[test]
    fn exit_codes_are_distinct() {
        let mut codes: Vec<i32> = Kind::ALL.iter().map(|k| k.exit_code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), Kind::ALL.len());
        assert!(!codes.contains(&exit::OK));
        // The table as documented: 1 to 13, and 130.
        let mut table: Vec<i32> = (1..=13).collect();
        table.push(130);
        assert_eq!(codes, table);
    }

    #[test]
    fn the_readme_documents_every_exit_code() {
        let readme = include_str!("../../../README.md");
        let section = readme
            .split("### Exit codes")
            .nth(1)
            .expect("an Exit codes section");
        for code in std::iter::once(exit::OK).chain(Kind::ALL.iter().map(|k| k.exit_code())) {
            assert!(
                section.contains(&format!("\n| {code} | ")),
                "exit code {code} in the README"
            );
        }
    }

    #[test]
    fn render_puts_hint_on_its_own_line() {
        let e = Error::bad_input("no region given").hint("pass --region or set AWS_REGION");
        assert_eq!(
            e.render(),
            "error: no region given\n  hint: pass --region or set AWS_REGION"
        );
        assert_eq!(e.exit_code(), 2);
    }

    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("service error")
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn verbose_render_prints_the_cause_chain() {
        let e = Error::aws_call("DescribeServices failed")
            .hint("rerun")
            .caused_by(Outer(std::io::Error::other("connection reset")));
        assert_eq!(e.render(), "error: DescribeServices failed\n  hint: rerun");
        assert_eq!(
            e.render_verbose(true),
            "error: DescribeServices failed\n  hint: rerun\n  caused by: service error\n  caused by: connection reset"
        );
        assert_eq!(e.render_verbose(false), e.render());
        assert!(format!("{e:?}").contains("connection reset"));
        // Clone keeps the cause; equality compares it by text.
        assert_eq!(e.clone(), e);
        assert_ne!(e, Error::aws_call("DescribeServices failed").hint("rerun"));
    }

    #[test]
    fn local_failures_are_configuration_not_aws() {
        let e = Error::local_io(
            "create the directory",
            std::path::Path::new("/nope/state"),
            std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        );
        assert_eq!(e.exit_code(), exit::BAD_INPUT);
        assert!(e.hint.as_deref().unwrap().contains("/nope/state"));
        assert_eq!(e.causes().len(), 1);
    }
}
