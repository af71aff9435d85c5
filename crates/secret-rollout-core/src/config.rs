//! `secret-rollout.toml`: named environments, and resolving what a command targets.
//!
//! One table per environment under `[environments.NAME]` (the only spelling accepted;
//! unknown keys are rejected so a typo never silently drops a setting):
//!
//! ```toml
//! [environments.production]
//! region = "eu-west-1"
//! profile = "production-operator"        # optional: AWS profile for credentials
//! account_id = "123456789012"            # optional but recommended: refuse other accounts
//! clusters = ["production-online-lpa"]
//! services = ["front", "api", "admin"]   # optional: only these services are considered
//! secret_prefix = "production/"          # optional: `replace csrf_salt` -> production/csrf_salt
//! state = "s3://team-secret-rollout/production" # optional: lock and journal shared in S3
//!
//! [environments.development]
//! region = "eu-west-1"
//! account_id = "210987654321"
//! clusters = ["development-online-lpa"]
//! secret_prefix = "development/"
//! ```
//!
//! Where it is read from, first match wins:
//! 1. `--config PATH` (an error if that file does not exist);
//! 2. `$SECRET_ROLLOUT_CONFIG` when set (the only place looked at then; empty means "no
//!    config file"; used by tests to stay away from the user's files);
//! 3. `./secret-rollout.toml`;
//! 4. `CONFIG_DIR/secret-rollout/config.toml` (`~/.config/...` on Linux,
//!    `~/Library/Application Support/...` on macOS).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// The file name looked for in the current directory.
pub const FILE_NAME: &str = "secret-rollout.toml";
/// The environment variable that replaces the search (tests).
pub const CONFIG_ENV: &str = "SECRET_ROLLOUT_CONFIG";

/// A parsed configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The file it came from.
    pub path: PathBuf,
    /// Environments by name.
    pub environments: BTreeMap<String, Environment>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    environments: BTreeMap<String, Environment>,
}

/// One `[environments.NAME]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// The table's name (filled in after parsing).
    #[serde(skip)]
    pub name: String,
    /// AWS region.
    pub region: String,
    /// AWS profile for credentials; the SDK's default chain when absent.
    #[serde(default)]
    pub profile: Option<String>,
    /// The account the credentials must belong to.
    #[serde(default)]
    pub account_id: Option<String>,
    /// ECS clusters to look for consumers in.
    pub clusters: Vec<String>,
    /// When set, only these services are redeployed; readers outside the list are named in
    /// the plan and in `status`, never hidden.
    #[serde(default)]
    pub services: Option<Vec<String>>,
    /// Prefix added to bare secret names.
    #[serde(default)]
    pub secret_prefix: Option<String>,
    /// Prefix added to relative Parameter Store names: `ssm:db_password` with
    /// `/production/` means the parameter `/production/db_password`.
    #[serde(default)]
    pub parameter_prefix: Option<String>,
    /// Where the lock and journal live for the team: `s3://BUCKET/PREFIX` (see
    /// [`crate::state`]); the local state directory when absent.
    #[serde(default)]
    pub state: Option<String>,
}

/// Adds `prefix` to `name` unless it is an ARN or already has it.
fn prefixed(prefix: Option<&str>, name: &str) -> String {
    match prefix {
        Some(p) if !name.starts_with("arn:") && !name.starts_with(p) => format!("{p}{name}"),
        _ => name.to_string(),
    }
}

impl Environment {
    /// The secret id to ask Secrets Manager for: `csrf_salt` with prefix `production/`
    /// gives `production/csrf_salt`; ARNs and already-prefixed names are kept.
    pub fn secret_id(&self, name: &str) -> String {
        target_id(
            self.secret_prefix.as_deref(),
            self.parameter_prefix.as_deref(),
            name,
        )
    }
}

/// The id of a command-line target: a parameter (`ssm:NAME` or a parameter ARN) as
/// `ssm:/FULL/NAME` with `parameter_prefix` (see [`crate::parameter::parse_target`]), a
/// secret with `secret_prefix`. A malformed parameter is kept as typed, so the describe that
/// follows refuses it with the parser's message.
fn target_id(secret_prefix: Option<&str>, parameter_prefix: Option<&str>, name: &str) -> String {
    if crate::parameter::is_parameter_target(name) {
        return match crate::parameter::parse_target(name, parameter_prefix) {
            Ok(t) if t.arn_region_account.is_none() => {
                format!("{}{}", crate::parameter::SCHEME, t.name)
            }
            _ => name.to_string(),
        };
    }
    prefixed(secret_prefix, name)
}

fn config_error(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::bad_input(format!("config {}: {what}", path.display()))
}

/// The files looked for without `--config`, in order (module doc, steps 2-4).
fn candidates(env_override: Option<OsString>, local: &Path, user: Option<PathBuf>) -> Vec<PathBuf> {
    match env_override {
        Some(p) if p.is_empty() => vec![],
        Some(p) => vec![PathBuf::from(p)],
        None => std::iter::once(local.to_path_buf()).chain(user).collect(),
    }
}

fn user_config() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("secret-rollout").join("config.toml"))
}

/// The error for `--env NAME` without a config file: it names every place looked.
pub fn no_config_error(name: &str) -> Error {
    no_config_error_in(
        name,
        &candidates(
            std::env::var_os(CONFIG_ENV),
            Path::new(FILE_NAME),
            user_config(),
        ),
    )
}

fn no_config_error_in(name: &str, looked: &[PathBuf]) -> Error {
    let places: Vec<String> = looked
        .iter()
        .map(|p| match p.to_str() {
            Some(FILE_NAME) => format!("./{FILE_NAME}"),
            _ => p.display().to_string(),
        })
        .collect();
    let looked = if places.is_empty() {
        format!("{CONFIG_ENV} is set empty, which means no config file")
    } else {
        format!("looked in {}", places.join(" and "))
    };
    Error::bad_input(format!(
        "--env {name} given but no config file was found ({looked})"
    ))
    .hint(format!(
        "create one of those with an [environments.{name}] table, or pass --config PATH"
    ))
}

impl Config {
    /// Loads the configuration (see the module docs for where from). `Ok(None)` when there
    /// is no file and none was asked for.
    pub fn load(explicit: Option<&Path>) -> Result<Option<Config>> {
        Self::load_from(
            explicit,
            std::env::var_os(CONFIG_ENV),
            Path::new(FILE_NAME),
            user_config(),
        )
    }

    fn load_from(
        explicit: Option<&Path>,
        env_override: Option<OsString>,
        local: &Path,
        user: Option<PathBuf>,
    ) -> Result<Option<Config>> {
        if let Some(path) = explicit {
            if !path.is_file() {
                return Err(
                    Error::bad_input(format!("config file {} not found", path.display()))
                        .hint("check the path given to --config"),
                );
            }
            return Self::read(path).map(Some);
        }
        for path in candidates(env_override, local, user) {
            if path.is_file() {
                return Self::read(&path).map(Some);
            }
        }
        Ok(None)
    }

    /// Reads and parses one file.
    pub fn read(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            config_error(path, format!("cannot read it: {}", e.kind()))
                .hint("check the file's permissions")
        })?;
        Self::parse(path, &text)
    }

    /// Parses `text` as the contents of `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Config> {
        let file: File = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            // The parser's message can span lines (it quotes the source); keep one line.
            let message = e.message().lines().next().unwrap_or("invalid toml").trim();
            let message = message.trim_end_matches('.');
            match line {
                Some(line) => config_error(path, format!("line {line}: {message}")),
                None => config_error(path, message),
            }
            .hint("fix the file: each [environments.NAME] takes region, profile, account_id, clusters, services, secret_prefix, parameter_prefix, state")
        })?;
        let mut environments = file.environments;
        for (name, env) in &mut environments {
            env.name = name.clone();
            if env.region.trim().is_empty() {
                return Err(
                    config_error(path, format!("environment {name} has an empty region"))
                        .hint("set region, e.g. region = \"eu-west-1\""),
                );
            }
            if env.clusters.is_empty() {
                return Err(
                    config_error(path, format!("environment {name} lists no clusters"))
                        .hint("set clusters, e.g. clusters = [\"production-online-lpa\"]"),
                );
            }
            if let Some(state) = &env.state {
                crate::state::S3Location::parse(state).map_err(|e| Error {
                    message: format!(
                        "config {}: environment {name}: {}",
                        path.display(),
                        e.message
                    ),
                    ..e
                })?;
            }
            if let Some(account) = &env.account_id {
                if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(config_error(
                        path,
                        format!("environment {name}: account_id {account:?} is not 12 digits"),
                    )
                    .hint("use the account id shown by `aws sts get-caller-identity`"));
                }
            }
        }
        Ok(Config {
            path: path.to_path_buf(),
            environments,
        })
    }

    /// The environment called `name`; bad input listing the known ones otherwise.
    pub fn environment(&self, name: &str) -> Result<&Environment> {
        self.environments.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.environments.keys().map(String::as_str).collect();
            Error::bad_input(format!(
                "unknown environment {name} in {}",
                self.path.display()
            ))
            .hint(if known.is_empty() {
                "the file defines no [environments.NAME] table yet".to_string()
            } else {
                format!("known environments: {}", known.join(", "))
            })
        })
    }
}

/// What the command line says about the target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetFlags {
    /// `--env NAME`.
    pub env: Option<String>,
    /// `--region`.
    pub region: Option<String>,
    /// `--profile`.
    pub profile: Option<String>,
    /// `--cluster` (repeatable).
    pub clusters: Vec<String>,
}

/// Where a command acts: the environment (if any) with the flags applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The environment name when `--env` was given.
    pub environment: Option<String>,
    /// Region.
    pub region: String,
    /// Profile, when one was configured or given.
    pub profile: Option<String>,
    /// Expected account id.
    pub account_id: Option<String>,
    /// Clusters.
    pub clusters: Vec<String>,
    /// Services configured for the environment (a default `--services`).
    pub services: Option<Vec<String>>,
    /// Secret-name prefix.
    pub secret_prefix: Option<String>,
    /// Parameter-name prefix (see [`Environment::parameter_prefix`]).
    pub parameter_prefix: Option<String>,
}

impl Target {
    /// A name for journals, locks and messages: the environment's name, else
    /// `REGION/CLUSTER[,CLUSTER...]`.
    pub fn label(&self) -> String {
        match &self.environment {
            Some(name) => name.clone(),
            None => format!("{}/{}", self.region, self.clusters.join(",")),
        }
    }

    /// See [`Environment::secret_id`].
    pub fn secret_id(&self, name: &str) -> String {
        target_id(
            self.secret_prefix.as_deref(),
            self.parameter_prefix.as_deref(),
            name,
        )
    }
}

/// The region from the process environment (`AWS_REGION`, then `AWS_DEFAULT_REGION`), as
/// the SDK and aws-vault set them.
pub fn ambient_region() -> Option<String> {
    ["AWS_REGION", "AWS_DEFAULT_REGION"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|r| !r.trim().is_empty())
}

/// Resolves the target: `--env` from the config, then flags override its fields. The
/// region falls back to `ambient_region` (pass [`ambient_region()`]) only when neither
/// the flag nor the environment sets it. At least one cluster is required.
pub fn resolve_target(
    config: Option<&Config>,
    flags: &TargetFlags,
    ambient_region: Option<String>,
) -> Result<Target> {
    let target = resolve_account_target(config, flags, ambient_region)?;
    if target.clusters.is_empty() {
        return Err(Error::bad_input("no cluster given")
            .hint("pass --cluster NAME (repeatable) or --env NAME from secret-rollout.toml"));
    }
    Ok(target)
}

/// [`resolve_target`] for commands that only talk to the account (Secrets Manager, STS):
/// no cluster is needed.
pub fn resolve_account_target(
    config: Option<&Config>,
    flags: &TargetFlags,
    ambient_region: Option<String>,
) -> Result<Target> {
    let env = match &flags.env {
        Some(name) => Some(
            config
                .ok_or_else(|| no_config_error(name))?
                .environment(name)?,
        ),
        None => None,
    };
    let region = flags
        .region
        .clone()
        .or_else(|| env.map(|e| e.region.clone()))
        .or(ambient_region)
        .filter(|r| !r.trim().is_empty())
        .ok_or_else(|| {
            Error::bad_input("no region given").hint("pass --region or --env, or set AWS_REGION")
        })?;
    let clusters = if flags.clusters.is_empty() {
        env.map(|e| e.clusters.clone()).unwrap_or_default()
    } else {
        flags.clusters.clone()
    };
    Ok(Target {
        environment: env.map(|e| e.name.clone()),
        region,
        profile: flags
            .profile
            .clone()
            .or_else(|| env.and_then(|e| e.profile.clone())),
        account_id: env.and_then(|e| e.account_id.clone()),
        clusters,
        services: env.and_then(|e| e.services.clone()),
        secret_prefix: env.and_then(|e| e.secret_prefix.clone()),
        parameter_prefix: env.and_then(|e| e.parameter_prefix.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Item 13 of issue 21: the no-config error names every place looked, not only ./.
    #[test]
    fn no_config_error_names_every_place_looked() {
        let user = PathBuf::from("/home/u/.config/secret-rollout/config.toml");
        let e = no_config_error_in(
            "production",
            &candidates(None, Path::new(FILE_NAME), Some(user)),
        );
        assert_eq!(e.kind, Kind::BadInput);
        assert_eq!(
            e.message,
            "--env production given but no config file was found (looked in ./secret-rollout.toml and /home/u/.config/secret-rollout/config.toml)"
        );
        assert_eq!(
            e.hint.as_deref(),
            Some("create one of those with an [environments.production] table, or pass --config PATH")
        );
        let e = no_config_error_in(
            "p",
            &candidates(Some("/etc/x.toml".into()), Path::new(FILE_NAME), None),
        );
        assert!(
            e.message.ends_with("(looked in /etc/x.toml)"),
            "{}",
            e.message
        );
        let e = no_config_error_in(
            "p",
            &candidates(Some("".into()), Path::new(FILE_NAME), None),
        );
        assert!(
            e.message.contains("SECRET_ROLLOUT_CONFIG is set empty"),
            "{}",
            e.message
        );
    }
    use crate::error::Kind;

    const EXAMPLE: &str = r#"
[environments.production]
region = "eu-west-1"
profile = "production-operator"
account_id = "123456789012"
clusters = ["production-online-lpa"]
services = ["front", "api", "admin"]
secret_prefix = "production/"

[environments.development]
region = "eu-west-1"
clusters = ["development-online-lpa", "76-lpa3435bug-online-lpa"]
"#;

    fn example() -> Config {
        Config::parse(Path::new("/etc/x.toml"), EXAMPLE).unwrap()
    }

    #[test]
    fn parses_the_documented_example() {
        // The module docs' example must stay valid.
        let doc = include_str!("config.rs")
            .lines()
            .skip_while(|l| !l.starts_with("//! ```toml"))
            .skip(1)
            .take_while(|l| !l.starts_with("//! ```"))
            .map(|l| l.trim_start_matches("//!").trim_start_matches(' '))
            .collect::<Vec<_>>()
            .join("\n");
        let c = Config::parse(Path::new("doc.toml"), &doc).unwrap();
        assert_eq!(c.environments.len(), 2);

        let c = example();
        let p = c.environment("production").unwrap();
        assert_eq!(p.name, "production");
        assert_eq!(p.region, "eu-west-1");
        assert_eq!(p.profile.as_deref(), Some("production-operator"));
        assert_eq!(p.account_id.as_deref(), Some("123456789012"));
        assert_eq!(p.clusters, ["production-online-lpa"]);
        assert_eq!(p.services.as_deref().unwrap(), ["front", "api", "admin"]);
        let d = c.environment("development").unwrap();
        assert_eq!(d.profile, None);
        assert_eq!(d.secret_prefix, None);
    }

    #[test]
    fn unknown_environment_lists_known_ones() {
        let e = example().environment("prod").unwrap_err();
        assert_eq!(e.kind, Kind::BadInput);
        assert_eq!(e.message, "unknown environment prod in /etc/x.toml");
        assert_eq!(
            e.hint.as_deref(),
            Some("known environments: development, production")
        );
    }

    #[test]
    fn secret_ids_get_the_prefix_once() {
        let c = example();
        let p = c.environment("production").unwrap();
        assert_eq!(p.secret_id("csrf_salt"), "production/csrf_salt");
        assert_eq!(p.secret_id("production/csrf_salt"), "production/csrf_salt");
        let arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:other/x-AbCdEf";
        assert_eq!(p.secret_id(arn), arn);
        assert_eq!(c.environment("development").unwrap().secret_id("x"), "x");
    }

    /// A parameter gets `parameter_prefix`, never `secret_prefix`; its ARN is kept.
    #[test]
    fn parameter_ids_get_the_parameter_prefix() {
        let toml = "[environments.p]\nregion = \"eu-west-1\"\nclusters = [\"c\"]\nsecret_prefix = \"production/\"\nparameter_prefix = \"/production/\"\n";
        let c = Config::parse(Path::new("p.toml"), toml).unwrap();
        let p = c.environment("p").unwrap();
        assert_eq!(p.secret_id("ssm:db"), "ssm:/production/db");
        assert_eq!(p.secret_id("ssm:/other/db"), "ssm:/other/db");
        let arn = "arn:aws:ssm:eu-west-1:123456789012:parameter/other/db";
        assert_eq!(p.secret_id(arn), arn);
        assert_eq!(p.secret_id("db"), "production/db");
        // Malformed: kept as typed, for the describe to refuse with the parser's message.
        assert_eq!(p.secret_id("ssm:/a:3"), "ssm:/a:3");
    }

    #[test]
    fn malformed_files_give_one_line_with_file_and_line() {
        let cases = [
            (
                "[environments.p]\nregion = \"eu-west-1\"\nclusters = [\"c\"]\nregoin = \"x\"\n",
                "line 4",
                "unknown field",
            ),
            ("[environments.p]\nregion = eu-west-1\n", "line 2", ""),
            ("[env.p]\nregion = \"x\"\n", "line 1", "unknown field"),
            (
                "[environments.p]\nclusters = [\"c\"]\n",
                "",
                "missing field `region`",
            ),
            (
                "[environments.p]\nregion = \"r\"\nclusters = []\n",
                "",
                "lists no clusters",
            ),
            (
                "[environments.p]\nregion = \"r\"\nclusters = [\"c\"]\naccount_id = \"12\"\n",
                "",
                "not 12 digits",
            ),
            (
                "[environments.p]\nregion = \"\"\nclusters = [\"c\"]\n",
                "",
                "empty region",
            ),
        ];
        for (text, line, what) in cases {
            let e = Config::parse(Path::new("/x/secret-rollout.toml"), text).unwrap_err();
            assert_eq!(e.kind, Kind::BadInput, "{text}");
            assert!(
                e.message.starts_with("config /x/secret-rollout.toml: "),
                "{}",
                e.message
            );
            assert!(e.message.contains(line), "{text}: {}", e.message);
            assert!(e.message.contains(what), "{text}: {}", e.message);
            assert!(!e.message.contains('\n'), "{}", e.message);
            assert!(e.hint.is_some());
        }
    }

    #[test]
    fn search_order() {
        let dir = tempfile::tempdir().unwrap();
        let local = dir.path().join("local.toml");
        let user = dir.path().join("user.toml");
        let other = dir.path().join("other.toml");
        let write = |p: &Path, env: &str| {
            std::fs::write(
                p,
                format!("[environments.{env}]\nregion = \"r\"\nclusters = [\"c\"]\n"),
            )
            .unwrap()
        };
        // Nothing anywhere.
        assert_eq!(
            Config::load_from(None, None, &local, Some(user.clone())).unwrap(),
            None
        );
        write(&user, "user");
        let c = Config::load_from(None, None, &local, Some(user.clone()))
            .unwrap()
            .unwrap();
        assert!(c.environments.contains_key("user"));
        write(&local, "local");
        let c = Config::load_from(None, None, &local, Some(user.clone()))
            .unwrap()
            .unwrap();
        assert!(c.environments.contains_key("local"));
        assert_eq!(c.path, local);
        // The env var replaces the search; empty means none.
        write(&other, "other");
        let c = Config::load_from(None, Some(other.clone().into()), &local, Some(user.clone()))
            .unwrap()
            .unwrap();
        assert!(c.environments.contains_key("other"));
        assert_eq!(
            Config::load_from(None, Some("".into()), &local, Some(user.clone())).unwrap(),
            None
        );
        // --config wins over everything, and must exist.
        let c = Config::load_from(Some(&user), Some(other.clone().into()), &local, None)
            .unwrap()
            .unwrap();
        assert!(c.environments.contains_key("user"));
        let missing = dir.path().join("missing.toml");
        let e = Config::load_from(Some(&missing), None, &local, None).unwrap_err();
        assert_eq!(e.kind, Kind::BadInput);
        assert!(e.message.contains("missing.toml"));
        assert!(e.hint.unwrap().contains("--config"));
    }

    #[test]
    fn target_from_env_and_flags() {
        let c = example();
        let flags = TargetFlags {
            env: Some("production".into()),
            ..Default::default()
        };
        let t = resolve_target(Some(&c), &flags, Some("us-east-1".into())).unwrap();
        assert_eq!(
            t.region, "eu-west-1",
            "the environment's region beats AWS_REGION"
        );
        assert_eq!(t.clusters, ["production-online-lpa"]);
        assert_eq!(t.profile.as_deref(), Some("production-operator"));
        assert_eq!(t.account_id.as_deref(), Some("123456789012"));
        assert_eq!(t.label(), "production");
        assert_eq!(t.secret_id("csrf_salt"), "production/csrf_salt");

        let flags = TargetFlags {
            env: Some("production".into()),
            region: Some("eu-west-2".into()),
            profile: Some("other".into()),
            clusters: vec!["a".into(), "b".into()],
        };
        let t = resolve_target(Some(&c), &flags, None).unwrap();
        assert_eq!(
            (t.region.as_str(), t.profile.as_deref()),
            ("eu-west-2", Some("other"))
        );
        assert_eq!(t.clusters, ["a", "b"]);
        assert_eq!(t.account_id.as_deref(), Some("123456789012"));

        let flags = TargetFlags {
            clusters: vec!["c".into()],
            ..Default::default()
        };
        let t = resolve_target(None, &flags, Some("eu-west-1".into())).unwrap();
        assert_eq!(t.label(), "eu-west-1/c");
        assert_eq!(t.secret_id("x"), "x");
        assert_eq!(t.account_id, None);
    }

    #[test]
    fn target_errors() {
        let c = example();
        let e = resolve_target(
            None,
            &TargetFlags {
                clusters: vec!["c".into()],
                ..Default::default()
            },
            None,
        )
        .unwrap_err();
        assert_eq!(e.message, "no region given");
        assert!(e.hint.as_deref().unwrap().contains("--region"));
        assert!(e.hint.as_deref().unwrap().contains("AWS_REGION"));

        let e = resolve_target(Some(&c), &TargetFlags::default(), Some("eu-west-1".into()))
            .unwrap_err();
        assert_eq!(e.message, "no cluster given");
        assert_eq!(e.kind, Kind::BadInput);

        let flags = TargetFlags {
            env: Some("staging".into()),
            ..Default::default()
        };
        let e = resolve_target(Some(&c), &flags, None).unwrap_err();
        assert!(e.message.starts_with("unknown environment staging"));
        let e = resolve_target(None, &flags, None).unwrap_err();
        assert!(e.message.contains("no config file"));
    }
}
