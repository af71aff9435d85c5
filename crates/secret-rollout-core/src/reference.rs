//! Parsing the `valueFrom` strings of ECS task definitions that point at Secrets Manager.
//!
//! ECS accepts a secret in several spellings (see `shared/reference/aws-behaviour.md`):
//!
//! | form | example |
//! | --- | --- |
//! | full ARN | `arn:aws:secretsmanager:eu-west-1:123456789012:secret:production/x-AbCdEf` |
//! | full ARN + selectors | `...:secret:production/x-AbCdEf:password:AWSPREVIOUS:` |
//! | partial ARN | `arn:aws:secretsmanager:eu-west-1:123456789012:secret:production/x` |
//! | Parameter Store path | `/aws/reference/secretsmanager/production/x` |
//! | Parameter Store ARN | `arn:aws:ssm:eu-west-1:123456789012:parameter/aws/reference/secretsmanager/production/x` |
//!
//! Anything else (a plain Parameter Store parameter by name or ARN, another service) is not
//! a Secrets Manager reference and [`parse_value_from`] returns `None`.
//!
//! ## The suffix ambiguity
//!
//! Secrets Manager appends `-` and six random alphanumeric characters to a secret's name to
//! make its ARN. A partial ARN omits them. Secret names may themselves contain `-`, so
//! `...:secret:db-pass-abcdef` is either the full ARN of `db-pass` or the partial ARN of a
//! secret named `db-pass-abcdef`; the string alone cannot tell. We parse it as a full ARN
//! (`name = "db-pass"`, `suffix = Some("abcdef")`), which is what Secrets Manager itself
//! does first, and [`SecretRef::matches`] accepts *both* readings against a concrete
//! secret: it matches the secret whose ARN is exactly this one, and it also matches a secret
//! whose name is the whole `db-pass-abcdef`. Over-matching at worst redeploys a service that
//! did not need it; under-matching would leave tasks on the old value, which is the failure
//! this tool exists to prevent.

use std::fmt;

/// The stage a reference reads when it names none.
pub const AWSCURRENT: &str = "AWSCURRENT";

/// The Parameter Store path that proxies Secrets Manager.
const SSM_REFERENCE_PREFIX: &str = "/aws/reference/secretsmanager/";

/// How a reference was spelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefForm {
    /// `arn:PARTITION:secretsmanager:...:secret:NAME-XXXXXX` (possibly with selectors).
    FullArn,
    /// `arn:PARTITION:secretsmanager:...:secret:NAME` without the 6-character suffix.
    PartialArn,
    /// `/aws/reference/secretsmanager/NAME`.
    ParameterStorePath,
    /// `arn:PARTITION:ssm:REGION:ACCOUNT:parameter/aws/reference/secretsmanager/NAME`.
    ParameterStoreArn,
}

/// A reference that will not follow `AWSCURRENT`, so it will not pick up a new value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pin {
    /// Pinned to one version id.
    VersionId(String),
    /// Pinned to a staging label other than `AWSCURRENT` (e.g. `AWSPREVIOUS`).
    Stage(String),
}

impl fmt::Display for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pin::VersionId(id) => write!(f, "version id {id}"),
            Pin::Stage(stage) => write!(f, "stage {stage}"),
        }
    }
}

/// A parsed Secrets Manager reference from a task definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    /// The `valueFrom` string as written (it holds no secret value, only a name).
    pub raw: String,
    /// `aws`, `aws-cn`, `aws-us-gov`, when the reference is an ARN.
    pub partition: Option<String>,
    /// Region, when the reference is an ARN.
    pub region: Option<String>,
    /// Account id, when the reference is an ARN.
    pub account: Option<String>,
    /// The secret's name, without the 6-character suffix when one was recognised.
    pub name: String,
    /// The 6-character random suffix of a full ARN.
    pub suffix: Option<String>,
    /// JSON key selector (`...:KEY::`).
    pub json_key: Option<String>,
    /// Staging label selector (`...::AWSPREVIOUS:`).
    pub version_stage: Option<String>,
    /// Version id selector (`...:::VERSION_ID`).
    pub version_id: Option<String>,
    /// How it was spelled.
    pub form: RefForm,
}

/// Parses a `valueFrom` (or `credentialsParameter`). `None` when it does not point at
/// Secrets Manager (plain Parameter Store parameters, malformed ARNs).
pub fn parse_value_from(s: &str) -> Option<SecretRef> {
    let s = s.trim();
    if let Some(name) = s.strip_prefix(SSM_REFERENCE_PREFIX) {
        return ssm_reference(s, None, None, None, name, RefForm::ParameterStorePath);
    }
    let rest = s.strip_prefix("arn:")?;
    // arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE...
    let mut head = rest.splitn(5, ':');
    let partition = head.next()?;
    let service = head.next()?;
    let region = head.next()?;
    let account = head.next()?;
    let resource = head.next()?;
    if !matches!(partition, "aws" | "aws-cn" | "aws-us-gov") || region.is_empty() {
        return None;
    }
    match service {
        "ssm" => {
            // `parameter/aws/reference/...`: the leading `/` of the path is the one after
            // `parameter`.
            let name = resource
                .strip_prefix("parameter")?
                .strip_prefix(SSM_REFERENCE_PREFIX)?;
            ssm_reference(
                s,
                Some(partition),
                Some(region),
                Some(account),
                name,
                RefForm::ParameterStoreArn,
            )
        }
        "secretsmanager" => {
            let resource = resource.strip_prefix("secret:")?;
            // Secret names cannot contain `:`, so the name is everything up to the first
            // colon and the selectors follow. ECS wants all three selector fields with their
            // colons; we also accept them cut short (missing ones are empty) because ECS's
            // rejection of such a task definition is not our business: it still names the
            // secret, and reporting it beats ignoring it.
            let mut parts = resource.split(':');
            let name_part = parts.next()?;
            let json_key = non_empty(parts.next());
            let version_stage = non_empty(parts.next());
            let version_id = non_empty(parts.next());
            if parts.next().is_some() || name_part.is_empty() || !valid_account(account) {
                return None;
            }
            let (name, suffix, form) = match split_suffix(name_part) {
                Some((name, suffix)) => (name, Some(suffix.to_string()), RefForm::FullArn),
                None => (name_part, None, RefForm::PartialArn),
            };
            Some(SecretRef {
                raw: s.to_string(),
                partition: Some(partition.to_string()),
                region: Some(region.to_string()),
                account: Some(account.to_string()),
                name: name.to_string(),
                suffix,
                json_key,
                version_stage,
                version_id,
                form,
            })
        }
        _ => None,
    }
}

fn ssm_reference(
    raw: &str,
    partition: Option<&str>,
    region: Option<&str>,
    account: Option<&str>,
    name: &str,
    form: RefForm,
) -> Option<SecretRef> {
    if name.is_empty() || name.contains(':') || account.is_some_and(|a| !valid_account(a)) {
        // A `:` would be a Parameter Store version selector, which ECS does not accept for
        // this path; a secret name never contains one.
        return None;
    }
    Some(SecretRef {
        raw: raw.to_string(),
        partition: partition.map(str::to_string),
        region: region.map(str::to_string),
        account: account.map(str::to_string),
        name: name.to_string(),
        suffix: None,
        json_key: None,
        version_stage: None,
        version_id: None,
        form,
    })
}

fn non_empty(s: Option<&str>) -> Option<String> {
    s.filter(|s| !s.is_empty()).map(str::to_string)
}

fn valid_account(account: &str) -> bool {
    account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())
}

/// Splits `NAME-XXXXXX` into `(NAME, XXXXXX)` when it ends in `-` + 6 alphanumerics and
/// leaves a non-empty name.
fn split_suffix(name_part: &str) -> Option<(&str, &str)> {
    let bytes = name_part.as_bytes();
    if bytes.len() < 8 || bytes[bytes.len() - 7] != b'-' {
        return None;
    }
    let suffix = &name_part[name_part.len() - 6..];
    if !suffix.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    Some((&name_part[..name_part.len() - 7], suffix))
}

/// The parts of a concrete secret ARN we compare against.
struct ArnParts<'a> {
    partition: &'a str,
    region: &'a str,
    account: &'a str,
}

fn secret_arn_parts(arn: &str) -> Option<ArnParts<'_>> {
    let mut it = arn.strip_prefix("arn:")?.splitn(5, ':');
    let partition = it.next()?;
    let service = it.next()?;
    let region = it.next()?;
    let account = it.next()?;
    (service == "secretsmanager").then_some(ArnParts {
        partition,
        region,
        account,
    })
}

impl SecretRef {
    /// The name as written in the reference: the name plus `-SUFFIX` when a suffix was
    /// recognised (so the reading "partial ARN of a name ending in a suffix-like part").
    pub fn written_name(&self) -> String {
        match &self.suffix {
            Some(suffix) => format!("{}-{suffix}", self.name),
            None => self.name.clone(),
        }
    }

    /// The secret's ARN as referenced, without selectors, when the reference is a full ARN.
    pub fn base_arn(&self) -> Option<String> {
        if self.form != RefForm::FullArn {
            return None;
        }
        Some(format!(
            "arn:{}:secretsmanager:{}:{}:secret:{}",
            self.partition.as_deref()?,
            self.region.as_deref()?,
            self.account.as_deref()?,
            self.written_name()
        ))
    }

    /// Whether this reference reads the secret with this full ARN and name.
    ///
    /// Partition, region and account must agree when the reference names them. Then: the
    /// full ARN is equal, or the name is equal (a suffix-like ending counted as part of the
    /// name, see the module docs), or, for a reference without suffix, the name equals the
    /// secret's name. A full ARN whose name matches but whose suffix differs is a deleted
    /// and recreated secret of the same name: not this one.
    pub fn matches(&self, secret_arn: &str, secret_name: &str) -> bool {
        if let Some(parts) = secret_arn_parts(secret_arn) {
            let agree =
                |mine: &Option<String>, theirs: &str| mine.as_deref().is_none_or(|m| m == theirs);
            if !agree(&self.partition, parts.partition)
                || !agree(&self.region, parts.region)
                || !agree(&self.account, parts.account)
            {
                return false;
            }
        }
        if self.base_arn().as_deref() == Some(secret_arn) {
            return true;
        }
        self.written_name() == secret_name
    }

    /// `Some` when the reference will not pick up a new `AWSCURRENT` value. A version id
    /// wins over a stage when (invalidly) both are given: either way it is pinned.
    pub fn pin(&self) -> Option<Pin> {
        if let Some(id) = &self.version_id {
            return Some(Pin::VersionId(id.clone()));
        }
        match &self.version_stage {
            Some(stage) if stage != AWSCURRENT => Some(Pin::Stage(stage.clone())),
            _ => None,
        }
    }

    /// The stage this reference reads (`AWSCURRENT` unless it names another).
    pub fn stage(&self) -> &str {
        self.version_stage.as_deref().unwrap_or(AWSCURRENT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:production/x-AbC1eF";

    struct Case {
        input: &'static str,
        form: RefForm,
        partition: Option<&'static str>,
        region: Option<&'static str>,
        account: Option<&'static str>,
        name: &'static str,
        suffix: Option<&'static str>,
        json_key: Option<&'static str>,
        stage: Option<&'static str>,
        id: Option<&'static str>,
    }

    fn case(input: &'static str, form: RefForm, name: &'static str) -> Case {
        let arn = input.starts_with("arn:");
        Case {
            input,
            form,
            partition: arn.then_some("aws"),
            region: arn.then_some("eu-west-1"),
            account: arn.then_some("123456789012"),
            name,
            suffix: None,
            json_key: None,
            stage: None,
            id: None,
        }
    }

    #[test]
    fn parses_every_form() {
        use RefForm::*;
        let cases = vec![
            Case { suffix: Some("AbC1eF"), ..case(ARN, FullArn, "production/x") },
            Case {
                suffix: Some("AbC1eF"),
                json_key: Some("password"),
                ..case(
                    "arn:aws:secretsmanager:eu-west-1:123456789012:secret:production/x-AbC1eF:password::",
                    FullArn,
                    "production/x",
                )
            },
            Case {
                suffix: Some("AbC1eF"),
                stage: Some("AWSPREVIOUS"),
                ..case(
                    "arn:aws:secretsmanager:eu-west-1:123456789012:secret:production/x-AbC1eF::AWSPREVIOUS:",
                    FullArn,
                    "production/x",
                )
            },
            Case {
                suffix: Some("AbC1eF"),
                id: Some("6a1f0000-0000-4000-8000-000000000001"),
                ..case(
                    "arn:aws:secretsmanager:eu-west-1:123456789012:secret:production/x-AbC1eF:::6a1f0000-0000-4000-8000-000000000001",
                    FullArn,
                    "production/x",
                )
            },
            Case {
                suffix: Some("AbC1eF"),
                json_key: Some("username"),
                stage: Some("AWSCURRENT"),
                ..case(
                    "arn:aws:secretsmanager:eu-west-1:123456789012:secret:production/x-AbC1eF:username:AWSCURRENT:",
                    FullArn,
                    "production/x",
                )
            },
            // Partial ARNs: no suffix, names with dashes that are not a suffix.
            case(
                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:production/x",
                PartialArn,
                "production/x",
            ),
            case(
                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:mock-onelogin-client-id",
                PartialArn,
                "mock-onelogin-client-id",
            ),
            // `-abcde_` is not 6 alphanumerics; `-abcdefg` is 7.
            case(
                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-abcde_",
                PartialArn,
                "db-abcde_",
            ),
            case(
                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-abcdefg",
                PartialArn,
                "db-abcdefg",
            ),
            // Only a suffix, no name before it: a name, not a suffix.
            case(
                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:-abcdef",
                PartialArn,
                "-abcdef",
            ),
            Case {
                json_key: Some("password"),
                ..case(
                    "arn:aws:secretsmanager:eu-west-1:123456789012:secret:production/x:password::",
                    PartialArn,
                    "production/x",
                )
            },
            // Selectors cut short are read leniently.
            Case {
                json_key: Some("password"),
                ..case(
                    "arn:aws:secretsmanager:eu-west-1:123456789012:secret:production/x:password",
                    PartialArn,
                    "production/x",
                )
            },
            // Parameter Store reference.
            case(
                "/aws/reference/secretsmanager/production/opg_lpa_front_csrf_salt",
                ParameterStorePath,
                "production/opg_lpa_front_csrf_salt",
            ),
            case(
                "arn:aws:ssm:eu-west-1:123456789012:parameter/aws/reference/secretsmanager/production/x",
                ParameterStoreArn,
                "production/x",
            ),
            // Other partitions.
            Case {
                partition: Some("aws-cn"),
                region: Some("cn-north-1"),
                suffix: Some("AbC1eF"),
                ..case(
                    "arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:x-AbC1eF",
                    FullArn,
                    "x",
                )
            },
            Case {
                partition: Some("aws-us-gov"),
                region: Some("us-gov-west-1"),
                ..case(
                    "arn:aws-us-gov:ssm:us-gov-west-1:123456789012:parameter/aws/reference/secretsmanager/x",
                    ParameterStoreArn,
                    "x",
                )
            },
        ];
        for c in cases {
            let r =
                parse_value_from(c.input).unwrap_or_else(|| panic!("{} did not parse", c.input));
            assert_eq!(r.form, c.form, "{}", c.input);
            assert_eq!(r.partition.as_deref(), c.partition, "{}", c.input);
            assert_eq!(r.region.as_deref(), c.region, "{}", c.input);
            assert_eq!(r.account.as_deref(), c.account, "{}", c.input);
            assert_eq!(r.name, c.name, "{}", c.input);
            assert_eq!(r.suffix.as_deref(), c.suffix, "{}", c.input);
            assert_eq!(r.json_key.as_deref(), c.json_key, "{}", c.input);
            assert_eq!(r.version_stage.as_deref(), c.stage, "{}", c.input);
            assert_eq!(r.version_id.as_deref(), c.id, "{}", c.input);
            assert_eq!(r.raw, c.input);
        }
    }

    #[test]
    fn rejects_what_is_not_a_secrets_manager_reference() {
        for input in [
            "",
            "production/x",
            "/production/db_password",
            "db_password",
            "arn:aws:ssm:eu-west-1:123456789012:parameter/production/db_password",
            "arn:aws:ssm:eu-west-1:123456789012:parameter/aws/reference/other/x",
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:",
            "arn:aws:secretsmanager:eu-west-1:123456789012:other:x",
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:x:a:b:c:d",
            "arn:aws:secretsmanager:eu-west-1:1234:secret:x",
            "arn:aws:secretsmanager::123456789012:secret:x",
            "arn:aws-xx:secretsmanager:eu-west-1:123456789012:secret:x",
            "arn:aws:s3:::bucket",
            "arn:aws:secretsmanager",
            "/aws/reference/secretsmanager/",
            "/aws/reference/secretsmanager/x:1",
        ] {
            assert_eq!(parse_value_from(input), None, "{input:?}");
        }
    }

    #[test]
    fn matching_against_a_concrete_secret() {
        let name = "production/x";
        let other_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:production/x-ZZZZZZ";
        let cases: &[(&str, &str, &str, bool)] = &[
            (ARN, ARN, name, true),
            ("arn:aws:secretsmanager:eu-west-1:123456789012:secret:production/x-AbC1eF:password::", ARN, name, true),
            // Same name, another incarnation of the secret.
            (ARN, other_arn, name, false),
            ("arn:aws:secretsmanager:eu-west-1:123456789012:secret:production/x", ARN, name, true),
            ("/aws/reference/secretsmanager/production/x", ARN, name, true),
            ("arn:aws:ssm:eu-west-1:123456789012:parameter/aws/reference/secretsmanager/production/x", ARN, name, true),
            // Another region or account.
            ("arn:aws:secretsmanager:eu-west-2:123456789012:secret:production/x", ARN, name, false),
            ("arn:aws:secretsmanager:eu-west-1:999999999999:secret:production/x", ARN, name, false),
            ("arn:aws:ssm:eu-west-2:123456789012:parameter/aws/reference/secretsmanager/production/x", ARN, name, false),
            // Another name, including prefixes of the name.
            ("/aws/reference/secretsmanager/production/xy", ARN, name, false),
            ("/aws/reference/secretsmanager/production", ARN, name, false),
            ("arn:aws:secretsmanager:eu-west-1:123456789012:secret:production/x-y", ARN, name, false),
        ];
        for (input, arn, name, expected) in cases {
            let r = parse_value_from(input).unwrap();
            assert_eq!(r.matches(arn, name), *expected, "{input} vs {arn}");
        }
    }

    #[test]
    fn a_suffix_like_name_matches_both_readings() {
        // Partial ARN of a secret literally named `db-pass-abcdef`.
        let r =
            parse_value_from("arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-pass-abcdef")
                .unwrap();
        assert_eq!(r.form, RefForm::FullArn);
        assert_eq!(r.written_name(), "db-pass-abcdef");
        assert!(r.matches(
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-pass-abcdef-Q1w2E3",
            "db-pass-abcdef"
        ));
        // Full ARN of `db-pass` with suffix `abcdef`.
        assert!(r.matches(
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-pass-abcdef",
            "db-pass"
        ));
        // `db-pass` with another suffix is a different secret.
        assert!(!r.matches(
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-pass-Q1w2E3",
            "db-pass"
        ));
    }

    #[test]
    fn pins() {
        let cases: &[(&str, Option<Pin>)] = &[
            (ARN, None),
            ("/aws/reference/secretsmanager/production/x", None),
            ("arn:aws:secretsmanager:eu-west-1:123456789012:secret:production/x-AbC1eF:password::", None),
            (
                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:production/x-AbC1eF::AWSCURRENT:",
                None,
            ),
            (
                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:production/x-AbC1eF::AWSPREVIOUS:",
                Some(Pin::Stage("AWSPREVIOUS".into())),
            ),
            (
                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:production/x:k:AWSPENDING:",
                Some(Pin::Stage("AWSPENDING".into())),
            ),
            (
                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:production/x-AbC1eF:::v1",
                Some(Pin::VersionId("v1".into())),
            ),
            (
                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:production/x-AbC1eF::AWSCURRENT:v1",
                Some(Pin::VersionId("v1".into())),
            ),
        ];
        for (input, pin) in cases {
            assert_eq!(parse_value_from(input).unwrap().pin(), *pin, "{input}");
        }
        assert_eq!(parse_value_from(ARN).unwrap().stage(), AWSCURRENT);
        assert_eq!(
            Pin::Stage("AWSPREVIOUS".into()).to_string(),
            "stage AWSPREVIOUS"
        );
    }

    #[test]
    fn base_arn_drops_selectors() {
        let r = parse_value_from(&format!("{ARN}:password::")).unwrap();
        assert_eq!(r.base_arn().as_deref(), Some(ARN));
        let partial =
            parse_value_from("arn:aws:secretsmanager:eu-west-1:123456789012:secret:x").unwrap();
        assert_eq!(partial.base_arn(), None);
    }
}
