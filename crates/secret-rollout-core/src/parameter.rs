//! Parameter Store parameters as rotation targets: the pure decisions (see
//! `shared/reference/ecs-strategies.md`, "Parameter Store").
//!
//! How a parameter differs from a secret, and what that makes the tool do:
//!
//! - No request token: a retried `PutParameter` makes a second version. The journal records
//!   the intent (previous version, caller, time) before the write; after a crash,
//!   [`resolve_written`] finds the version the write made from `GetParameterHistory`, or
//!   says it cannot tell ([`Written::Ambiguous`]: `resume` stops and asks). Never a second
//!   write.
//! - No movable "current" label: ECS reads the latest version at task launch (and rejects
//!   `name:version` references), so the proof's "current" is the latest version, and
//!   [`look`] turns a `GetParameter` into the [`crate::holding::Look`] the one soundness
//!   rule ([`crate::holding::judge`]) judges, exactly as for Secrets Manager. A parameter's
//!   versions never change once written, so the latest version's `LastModifiedDate` only
//!   moves with a new version (or a delete and re-create, which the rule calls not proven).
//! - An overwrite without `KeyId` switches to the account's default key: [`WriteSpec`]
//!   carries the existing `KeyId`, `Tier` and `DataType` into the write.
//! - Size limits are the parameter's tier's ([`check_size`]); `String` (not encrypted)
//!   parameters are refused unless the operator says so ([`guard_type`]).

use crate::error::{Error, Result};
use crate::holding::Look;

/// How a parameter is named on the command line: `ssm:/path/name` (or `ssm:name`).
pub const SCHEME: &str = "ssm:";
/// Largest value of a standard-tier parameter, in bytes.
pub const STANDARD_MAX_BYTES: usize = 4096;
/// Largest value of an advanced-tier parameter, in bytes.
pub const ADVANCED_MAX_BYTES: usize = 8192;
/// Versions Parameter Store keeps.
pub const MAX_VERSIONS: u64 = 100;

/// The Parameter Store path that reads a Secrets Manager secret: a secret, not a parameter.
const SECRETS_MANAGER_PATH: &str = "/aws/reference/secretsmanager/";

/// Whether a command-line target names a parameter (`ssm:...` or a parameter's ARN)
/// rather than a Secrets Manager secret.
pub fn is_parameter_target(input: &str) -> bool {
    input.starts_with(SCHEME) || arn_resource(input).is_some()
}

/// The `parameter/...` path of an SSM parameter ARN (not the Secrets Manager reference
/// path): `arn:PARTITION:ssm:REGION:ACCOUNT:parameter/NAME` gives `/NAME`.
fn arn_resource(input: &str) -> Option<(&str, &str, &str)> {
    let rest = input.strip_prefix("arn:")?;
    let parts: Vec<&str> = rest.splitn(5, ':').collect();
    if parts.len() != 5 || parts[1] != "ssm" {
        return None;
    }
    let path = parts[4].strip_prefix("parameter")?;
    if !path.starts_with('/') || path.starts_with(SECRETS_MANAGER_PATH) {
        return None;
    }
    Some((parts[2], parts[3], path))
}

/// A parameter the operator named: its name as Parameter Store knows it, and its ARN when
/// one was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterTarget {
    /// `/production/api/db_password` (or a name without `/`).
    pub name: String,
    /// Region and account of a target given as an ARN.
    pub arn_region_account: Option<(String, String)>,
}

/// Parses `ssm:NAME` or a parameter ARN. A relative `ssm:` name gets the environment's
/// `parameter_prefix` (`ssm:db_password` with `/production/` gives
/// `/production/db_password`); a name starting with `/` and an ARN are kept as given.
pub fn parse_target(input: &str, prefix: Option<&str>) -> Result<ParameterTarget> {
    let bad = |why: &str| {
        Error::bad_input(format!("{input:?} is not a parameter: {why}")).hint(
            "name a parameter as ssm:/path/name (or ssm:name with the environment's parameter_prefix) or by its ARN",
        )
    };
    let (name, arn_region_account) = if let Some(name) = input.strip_prefix(SCHEME) {
        let name = match prefix {
            Some(p) if !name.starts_with('/') && !name.starts_with(p) => format!("{p}{name}"),
            _ => name.to_string(),
        };
        (name, None)
    } else if let Some((region, account, path)) = arn_resource(input) {
        (
            path.to_string(),
            Some((region.to_string(), account.to_string())),
        )
    } else {
        return Err(bad(
            "it starts with neither ssm: nor arn:...:ssm:...:parameter/",
        ));
    };
    if name.contains(':') {
        return Err(bad(
            "ECS always reads a parameter's latest version, so a target names the parameter, not a version or label",
        ));
    }
    if name.is_empty() || name.trim_start_matches('/').is_empty() {
        return Err(bad("the name is empty"));
    }
    if name.starts_with(SECRETS_MANAGER_PATH) {
        return Err(bad(
            "/aws/reference/secretsmanager/ reads a Secrets Manager secret: name the secret itself",
        ));
    }
    let valid = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/_.-".contains(c));
    if !valid || name.len() > 2048 {
        return Err(bad(
            "a parameter name is at most 2048 letters, digits and . - _ /",
        ));
    }
    Ok(ParameterTarget {
        name,
        arn_region_account,
    })
}

/// Two spellings of one parameter name: Parameter Store's ARN form drops the difference
/// between `/name` and `name`, so both readings count (over-matching redeploys a service
/// that did not need it; under-matching would leave tasks on the old value).
fn same_name(a: &str, b: &str) -> bool {
    a.trim_start_matches('/') == b.trim_start_matches('/')
}

/// Whether an ECS `valueFrom` reads parameter `name` of this region and account: its name
/// (ECS resolves a bare name in the task's own region) or its ARN.
pub fn reads(value_from: &str, name: &str, region: &str, account: &str) -> bool {
    if value_from.starts_with(SECRETS_MANAGER_PATH) {
        return false;
    }
    if value_from.starts_with("arn:") {
        return arn_resource(value_from)
            .is_some_and(|(r, a, path)| r == region && a == account && same_name(path, name));
    }
    same_name(value_from, name)
}

/// What `PutParameter` must send again so an overwrite keeps the parameter as it is: its
/// type, KMS key (without it AWS switches to the account's default key), tier and data type.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WriteSpec {
    /// `SecureString`, `String` or `StringList`.
    pub kind: String,
    /// The KMS key of a `SecureString`.
    pub key_id: Option<String>,
    /// `Standard` or `Advanced`.
    pub tier: String,
    /// `text`, `aws:ec2:image`, ...
    pub data_type: String,
}

impl WriteSpec {
    /// The largest value the tier takes, in bytes.
    pub fn max_bytes(&self) -> usize {
        if self.tier == "Advanced" {
            ADVANCED_MAX_BYTES
        } else {
            STANDARD_MAX_BYTES
        }
    }
}

/// Refuses a parameter the tool should not write: a `String` (stored and shown in clear
/// text) unless `allow_plaintext`, and a `StringList` (a comma-separated list, not one
/// secret value). Bad input (exit 2), before any write.
pub fn guard_type(name: &str, spec: &WriteSpec, allow_plaintext: bool) -> Result<()> {
    match spec.kind.as_str() {
        "SecureString" => Ok(()),
        "String" if allow_plaintext => Ok(()),
        "String" => Err(Error::bad_input(format!(
            "parameter {name} is a String: its value is stored and shown unencrypted (aws ssm get-parameter prints it to anyone allowed to read it)"
        ))
        .hint("convert it to a SecureString (aws ssm put-parameter --type SecureString --overwrite), or pass --allow-plaintext if a clear-text value is meant")),
        other => Err(Error::bad_input(format!(
            "parameter {name} is a {other}, not one secret value"
        ))
        .hint("secret-rollout replaces SecureString parameters (String with --allow-plaintext)")),
    }
}

/// Refuses a value larger than the parameter's tier takes (bad input, before any write).
pub fn check_size(name: &str, spec: &WriteSpec, value_bytes: usize) -> Result<()> {
    let max = spec.max_bytes();
    if value_bytes <= max {
        return Ok(());
    }
    let hint = if spec.tier == "Advanced" {
        "a parameter holds at most 8 KB; store a larger value in Secrets Manager (64 KB)"
            .to_string()
    } else {
        format!("the {} tier holds at most 4 KB: move parameter {name} to the Advanced tier first (aws ssm put-parameter --tier Advanced, which costs more), or shorten the value", spec.tier)
    };
    Err(Error::bad_input(format!(
        "the new value is {value_bytes} bytes; parameter {name} takes at most {max} ({} tier)",
        spec.tier
    ))
    .hint(hint))
}

/// One version in `GetParameterHistory` (no value).
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    /// The version number.
    pub version: u64,
    /// `LastModifiedDate`, epoch seconds (AWS's clock).
    pub modified: f64,
    /// `LastModifiedUser`: the writer's ARN.
    pub user: Option<String>,
    /// Labels on the version.
    pub labels: Vec<String>,
}

/// What the journal records before `PutParameter`.
#[derive(Debug, Clone, Copy)]
pub struct Intent<'a> {
    /// The latest version when the intent was recorded (what the write overwrites).
    pub previous: u64,
    /// The caller's ARN (`GetCallerIdentity`), which AWS records as `LastModifiedUser`.
    pub caller: &'a str,
    /// When the intent was recorded, epoch seconds (the tool's clock).
    pub at: f64,
}

/// Whether the journaled write happened, from the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// No version after the previous one was written by the caller: the write did not
    /// happen. `others` counts versions others wrote since (a rotation would overwrite
    /// them).
    NotWritten {
        /// Versions after the previous one, by someone else.
        others: usize,
    },
    /// The write made this version.
    Ours(u64),
    /// The history cannot tell; `resume` must stop and ask.
    Ambiguous(String),
}

/// Resolves a journaled intent against `GetParameterHistory`: the version after the
/// journaled previous one written by our caller after our intent. `skew` (seconds) allows
/// for the tool's clock running ahead of AWS's. Two candidates, a previous version that is
/// gone (a delete and re-create), or a window the 100 kept versions no longer cover are
/// [`Written::Ambiguous`].
pub fn resolve_written(intent: &Intent<'_>, history: &[HistoryEntry], skew: f64) -> Written {
    let Some(latest) = history.iter().map(|h| h.version).max() else {
        return Written::Ambiguous(
            "the parameter has no versions now (deleted?); its history cannot say whether the write happened".into(),
        );
    };
    if latest < intent.previous {
        return Written::Ambiguous(format!(
            "the parameter's latest version is {latest}, older than the journaled previous version {}: it was deleted and re-created",
            intent.previous
        ));
    }
    let oldest = history.iter().map(|h| h.version).min().unwrap_or(latest);
    if oldest > intent.previous + 1 {
        return Written::Ambiguous(format!(
            "the history starts at version {oldest}: the versions written right after {} are no longer kept (Parameter Store keeps {MAX_VERSIONS})",
            intent.previous
        ));
    }
    let later: Vec<&HistoryEntry> = history
        .iter()
        .filter(|h| h.version > intent.previous)
        .collect();
    let ours: Vec<&HistoryEntry> = later
        .iter()
        .copied()
        .filter(|h| h.user.as_deref() == Some(intent.caller) && h.modified + skew >= intent.at)
        .collect();
    match ours.as_slice() {
        [] => Written::NotWritten {
            others: later.len(),
        },
        [one] => Written::Ours(one.version),
        many => Written::Ambiguous(format!(
            "versions {} were all written by {} after the intent: the history cannot tell which is this rotation's",
            many.iter()
                .map(|h| h.version.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            intent.caller
        )),
    }
}

/// A `GetParameter` of the latest version as a look for [`crate::holding::judge`]: the
/// latest version is what ECS reads, so it plays `AWSCURRENT`, and its
/// `LastModifiedDate` plays `LastChangedDate`. `at` is the tool's clock when the answer
/// arrived; `latest` is `(version, LastModifiedDate)`, `None` when the parameter is gone.
pub fn look(at: f64, latest: Option<(u64, f64)>) -> Look {
    Look {
        at,
        current: latest.map(|(v, _)| v.to_string()),
        pending: None,
        last_changed: latest.map(|(_, m)| m),
    }
}

/// The commands a person can run to restore a parameter by hand (printed when the restore
/// failed): the previous version's value written again as a new version with the
/// parameter's type, key and tier, through a pipe (never on a command line or on disk).
pub fn manual_restore_commands(
    name: &str,
    previous: &str,
    spec: Option<&WriteSpec>,
) -> Vec<String> {
    let mut put =
        "aws ssm put-parameter --cli-input-json file:///dev/stdin --overwrite".to_string();
    if let Some(spec) = spec {
        put.push_str(&format!(" --type {} --tier {}", spec.kind, spec.tier));
        if let Some(key) = &spec.key_id {
            put.push_str(&format!(" --key-id {key}"));
        }
    }
    vec![format!(
        "aws ssm get-parameter --name {name}:{previous} --with-decryption --query '{{Name: Parameter.Name, Value: Parameter.Value}}' --output json | {put}"
    )]
}

/// Whether Parameter Store accepts `label` (one it does not is returned in
/// `InvalidLabels`, not as an error): 1 to 100 letters, digits, `.`, `-`, `_`, starting
/// with a letter, not with `aws` or `ssm`.
pub fn valid_label(label: &str) -> bool {
    let lower = label.to_ascii_lowercase();
    (1..=100).contains(&label.len())
        && label.starts_with(|c: char| c.is_ascii_alphabetic())
        && !lower.starts_with("aws")
        && !lower.starts_with("ssm")
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::holding::{judge, Holding, Question};

    const ME: &str = "arn:aws:sts::123456789012:assumed-role/operator/alice";
    const OTHER: &str = "arn:aws:iam::123456789012:user/bob";

    fn h(version: u64, modified: f64, user: &str) -> HistoryEntry {
        HistoryEntry {
            version,
            modified,
            user: Some(user.to_string()),
            labels: vec![],
        }
    }

    fn spec(kind: &str, tier: &str) -> WriteSpec {
        WriteSpec {
            kind: kind.into(),
            key_id: Some("alias/production".into()),
            tier: tier.into(),
            data_type: "text".into(),
        }
    }

    #[test]
    fn targets_by_scheme_prefix_and_arn() {
        let t = |s: &str, p: Option<&str>| parse_target(s, p).map(|t| t.name);
        assert_eq!(t("ssm:/a/b", None).unwrap(), "/a/b");
        assert_eq!(t("ssm:db", Some("/production/")).unwrap(), "/production/db");
        assert_eq!(
            t("ssm:/other/db", Some("/production/")).unwrap(),
            "/other/db"
        );
        assert_eq!(
            t("ssm:/production/db", Some("/production/")).unwrap(),
            "/production/db"
        );
        let arn = parse_target(
            "arn:aws:ssm:eu-west-1:123456789012:parameter/production/db",
            Some("/ignored/"),
        )
        .unwrap();
        assert_eq!(arn.name, "/production/db");
        assert_eq!(
            arn.arn_region_account,
            Some(("eu-west-1".into(), "123456789012".into()))
        );
        for bad in [
            "ssm:/a/b:3",
            "ssm:/a/b:label",
            "ssm:",
            "ssm:/",
            "ssm:/aws/reference/secretsmanager/x",
            "ssm:/a b",
            "production/db",
            "arn:aws:secretsmanager:eu-west-1:1:secret:x",
        ] {
            let e = parse_target(bad, None).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}");
        }
        assert!(is_parameter_target("ssm:/a"));
        assert!(is_parameter_target("arn:aws:ssm:eu-west-1:1:parameter/a"));
        assert!(!is_parameter_target(
            "arn:aws:ssm:eu-west-1:1:parameter/aws/reference/secretsmanager/a"
        ));
        assert!(!is_parameter_target("production/db"));
    }

    #[test]
    fn readers_by_name_or_arn_in_this_region_and_account() {
        let (r, a) = ("eu-west-1", "123456789012");
        assert!(reads("/production/db", "/production/db", r, a));
        assert!(reads(
            "arn:aws:ssm:eu-west-1:123456789012:parameter/production/db",
            "/production/db",
            r,
            a
        ));
        // `parameter/plain` is the ARN of `plain` (and of `/plain`): both count.
        assert!(reads(
            "arn:aws:ssm:eu-west-1:123456789012:parameter/plain",
            "plain",
            r,
            a
        ));
        assert!(!reads(
            "arn:aws:ssm:us-east-1:123456789012:parameter/production/db",
            "/production/db",
            r,
            a
        ));
        assert!(!reads(
            "arn:aws:ssm:eu-west-1:999999999999:parameter/production/db",
            "/production/db",
            r,
            a
        ));
        assert!(!reads("/production/db2", "/production/db", r, a));
        assert!(!reads(
            "/aws/reference/secretsmanager/production/db",
            "/aws/reference/secretsmanager/production/db",
            r,
            a
        ));
    }

    #[test]
    fn plaintext_and_lists_are_refused_with_exit_2() {
        assert!(guard_type("/p", &spec("SecureString", "Standard"), false).is_ok());
        let e = guard_type("/p", &spec("String", "Standard"), false).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("unencrypted"), "{e}");
        assert!(guard_type("/p", &spec("String", "Standard"), true).is_ok());
        let e = guard_type("/p", &spec("StringList", "Standard"), true).unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn size_limits_are_the_tiers() {
        let std = spec("SecureString", "Standard");
        assert!(check_size("/p", &std, 4096).is_ok());
        assert_eq!(check_size("/p", &std, 4097).unwrap_err().exit_code(), 2);
        let adv = spec("SecureString", "Advanced");
        assert!(check_size("/p", &adv, 8192).is_ok());
        assert_eq!(check_size("/p", &adv, 8193).unwrap_err().exit_code(), 2);
    }

    #[test]
    fn the_write_is_the_version_after_the_previous_by_our_caller_after_our_intent() {
        let intent = Intent {
            previous: 4,
            caller: ME,
            at: 1000.0,
        };
        let base = vec![h(3, 500.0, OTHER), h(4, 900.0, OTHER)];
        // Nothing after the previous version: not written.
        assert_eq!(
            resolve_written(&intent, &base, 5.0),
            Written::NotWritten { others: 0 }
        );
        // Ours right after.
        let mut ours = base.clone();
        ours.push(h(5, 1001.0, ME));
        assert_eq!(resolve_written(&intent, &ours, 5.0), Written::Ours(5));
        // Someone else wrote after ours: still ours (the proof then says superseded).
        let mut then_other = ours.clone();
        then_other.push(h(6, 1002.0, OTHER));
        assert_eq!(resolve_written(&intent, &then_other, 5.0), Written::Ours(5));
        // Someone else wrote, not us.
        let mut other = base.clone();
        other.push(h(5, 1001.0, OTHER));
        assert_eq!(
            resolve_written(&intent, &other, 5.0),
            Written::NotWritten { others: 1 }
        );
        // A version by our caller before the intent (beyond the skew) is not this write.
        let mut early = base.clone();
        early.push(h(5, 990.0, ME));
        assert_eq!(
            resolve_written(&intent, &early, 5.0),
            Written::NotWritten { others: 1 }
        );
        assert_eq!(resolve_written(&intent, &early, 20.0), Written::Ours(5));
    }

    #[test]
    fn what_the_history_cannot_tell_is_ambiguous() {
        let intent = Intent {
            previous: 4,
            caller: ME,
            at: 1000.0,
        };
        let amb = |hist: &[HistoryEntry]| {
            matches!(resolve_written(&intent, hist, 5.0), Written::Ambiguous(_))
        };
        // Two versions by our caller after the intent (a retried write, or a colleague in
        // the same session).
        assert!(amb(&[
            h(4, 900.0, OTHER),
            h(5, 1001.0, ME),
            h(6, 1002.0, ME)
        ]));
        // Deleted and re-created: the latest version is older than the previous one.
        assert!(amb(&[h(1, 1001.0, ME)]));
        // No versions at all.
        assert!(amb(&[]));
        // The versions right after the previous one are no longer kept.
        let window: Vec<HistoryEntry> = (7..=106).map(|v| h(v, 2000.0, OTHER)).collect();
        assert!(amb(&window));
    }

    #[test]
    fn the_proof_judges_parameter_looks_with_the_one_rule() {
        let looks = vec![look(10.0, Some((5, 1000.0))), look(20.0, Some((5, 1000.0)))];
        let q = Question {
            version: "5",
            created: Some(1000.0),
            looks: &looks,
            listed_at: Some(12.0),
            margin: 5.0,
        };
        assert_eq!(judge(&q), Holding::Holds { since: 1000.0 });
        // A later version by someone else: superseded.
        let looks = vec![look(10.0, Some((5, 1000.0))), look(20.0, Some((6, 1010.0)))];
        let q = Question { looks: &looks, ..q };
        assert!(matches!(judge(&q), Holding::Superseded { ref by, .. } if by == "6"));
        // Deleted and re-created at the same version number: not proven.
        let looks = vec![look(10.0, Some((5, 1000.0))), look(20.0, Some((5, 1500.0)))];
        let q = Question { looks: &looks, ..q };
        assert!(matches!(judge(&q), Holding::NotProven { .. }));
        // Gone: not proven.
        let looks = vec![look(10.0, Some((5, 1000.0))), look(20.0, None)];
        let q = Question { looks: &looks, ..q };
        assert!(matches!(judge(&q), Holding::NotProven { .. }));
    }

    /// The by-hand restore sends the key and tier again and keeps the value in a pipe.
    #[test]
    fn the_manual_restore_keeps_key_and_tier_and_the_value_off_the_command_line() {
        let cmds = manual_restore_commands("/p/db", "4", Some(&spec("SecureString", "Advanced")));
        assert_eq!(cmds.len(), 1);
        assert_eq!(
            cmds[0],
            "aws ssm get-parameter --name /p/db:4 --with-decryption --query '{Name: Parameter.Name, Value: Parameter.Value}' --output json | aws ssm put-parameter --cli-input-json file:///dev/stdin --overwrite --type SecureString --tier Advanced --key-id alias/production"
        );
    }

    #[test]
    fn labels_follow_parameter_stores_rules() {
        for good in ["rotation-1", "secret-rollout.abc_1", "A"] {
            assert!(valid_label(good), "{good}");
        }
        for bad in ["", "1abc", "aws-x", "SSMx", "-x", "a b", &"a".repeat(101)] {
            assert!(!valid_label(bad), "{bad}");
        }
    }
}
