//! Signing in the way our users do.
//!
//! Which credentials a command uses is decided the way the aws CLI decides it, by the pure
//! [`precedence::decide`] (its module doc has the table): an explicit `--profile` first,
//! then credentials in the environment (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`
//! [/`AWS_SESSION_TOKEN`/`AWS_CREDENTIAL_EXPIRATION`], as CI, aws-vault or another
//! credential helper put them there), then the environment's `profile` from
//! secret-rollout.toml, then `AWS_PROFILE`, then the `default` profile when it needs MFA,
//! else the SDK's default chain (which also covers ECS/EC2 roles). Whatever is passed over
//! is named in a note. Under aws-vault no profile is read unless `--profile` names another
//! one.
//!
//! A profile whose chain (`source_profile` ...) has a role with `mfa_serial` is signed in
//! here, because the SDK cannot: the code is asked once (terminal or `--mfa-code-stdin`)
//! before any AWS client is built. With an IAM user's long-term keys as the source, the
//! code goes to STS `GetSessionToken` (an MFA session, 12 hours by default) and the role
//! is assumed from that session, again whenever its credentials near their end, with no
//! new code ([`renew`]); otherwise `AssumeRole` gets `SerialNumber` and `TokenCode`, and
//! a new code is asked before the role's credentials end. Both are cached ([`cache`])
//! until 5 minutes before they expire. Every other profile (plain `role_arn`,
//! `credential_process`, SSO, static keys) is handed to the SDK's profile provider.

pub mod cache;
pub mod mfa;
pub mod precedence;
pub mod profile;
pub mod renew;
pub mod signin;

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{
    future::ProvideCredentials as ProvideCredentialsFuture, ProvideCredentials,
    SharedCredentialsProvider,
};
use aws_credential_types::Credentials;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::aws::config::{default_chain, profile_provider};
use crate::error::{Error, Result};
use cache::SessionCache;
use profile::{Base, Chain, ProfilePaths, Profiles};

pub use mfa::MfaCodeSource;
pub use precedence::ProfileFrom;
pub use signin::{
    caller, load, load_identified, load_with_env, resolve_region, AwsContext, AwsOptions, Caller,
    DEFAULT_MAX_ATTEMPTS,
};

/// A snapshot of environment variables. Everything here reads the environment through
/// it, so tests can run in parallel with their own variables. Debug shows names only.
#[derive(Clone, Default)]
pub struct EnvVars(BTreeMap<String, String>);

impl fmt::Debug for EnvVars {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl EnvVars {
    /// The process environment (non-UTF-8 variables are skipped).
    pub fn from_process() -> Self {
        Self(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        )
    }

    /// Exactly these variables.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    /// A variable's value; `None` when unset or empty (an empty variable is treated as
    /// unset, like the SDK does).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Sets a variable (builder style, for tests).
    pub fn with(mut self, name: &str, value: &str) -> Self {
        self.0.insert(name.to_string(), value.to_string());
        self
    }
}

/// Where the credentials of a command came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// `AWS_ACCESS_KEY_ID` etc. in the environment, without aws-vault.
    Environment,
    /// Injected by `aws-vault exec PROFILE`.
    AwsVault {
        /// aws-vault's profile (`AWS_VAULT`).
        profile: String,
    },
    /// A profile of the shared config files.
    Profile {
        /// The profile.
        name: String,
        /// The role it assumes, if any.
        assumed_role: Option<String>,
        /// Signed in here with an MFA code (not by the SDK).
        mfa: bool,
        /// The MFA session came from the cache (no code was asked).
        cached: bool,
        /// Where the MFA session is cached (`None`: not an MFA session, or no store took
        /// it and the next command asks again).
        store: Option<cache::Store>,
        /// The profile whose MFA session (GetSessionToken) renews the role without a new
        /// code, if one does.
        renewed_from: Option<String>,
    },
    /// The SDK's default chain (container or instance role, ...).
    Chain,
}

impl CredentialSource {
    /// Where the MFA session of these credentials is cached, if it is.
    pub fn session_store(&self) -> Option<&cache::Store> {
        match self {
            CredentialSource::Profile { store, .. } => store.as_ref(),
            _ => None,
        }
    }
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialSource::Environment => {
                f.write_str("environment variables (AWS_ACCESS_KEY_ID)")
            }
            CredentialSource::AwsVault { profile } => write!(f, "aws-vault (profile {profile})"),
            CredentialSource::Profile {
                name,
                assumed_role,
                mfa,
                cached,
                store,
                renewed_from,
            } => {
                write!(f, "profile {name}")?;
                if let Some(role) = assumed_role {
                    write!(f, ", role {role}")?;
                }
                if *mfa {
                    match (cached, store) {
                        (true, Some(store)) => write!(f, ", cached MFA session from the {store}")?,
                        (true, None) => f.write_str(", cached MFA session")?,
                        (false, Some(store)) => {
                            write!(f, ", new MFA session, cached in the {store}")?
                        }
                        (false, None) => f.write_str(", new MFA session, not cached")?,
                    }
                }
                if let Some(source) = renewed_from {
                    write!(f, ", renewed from the MFA session of profile {source}")?;
                }
                Ok(())
            }
            CredentialSource::Chain => f.write_str("the AWS SDK's default credential chain"),
        }
    }
}

/// What [`resolve`] decided: the SDK provider and what to tell the user.
pub(crate) struct Resolved {
    pub provider: SharedCredentialsProvider,
    pub source: CredentialSource,
    pub expires_at: Option<OffsetDateTime>,
    /// See [`AwsContext::renewed_by_prompt`].
    pub renewed_by_prompt: bool,
    /// The profile the SDK should read for endpoints and such (`None`: the SDK's choice).
    pub sdk_profile: Option<String>,
    pub warnings: Vec<String>,
}

/// Which way to sign in, with the profile chain read when one is used.
pub(crate) enum Plan {
    Env { vault: Option<String> },
    Profile { chain: Chain },
    Chain,
}

impl Plan {
    /// Turns the [`precedence::decide`]d way into a plan; `profiles` is `None` only when
    /// the way is aws-vault's environment (never read there).
    pub fn choose(way: &precedence::Way, profiles: Option<&Profiles>) -> Result<Self> {
        use precedence::Way;
        match (way, profiles) {
            (Way::Environment { vault }, _) => Ok(Plan::Env {
                vault: vault.clone(),
            }),
            (Way::Profile { name, .. }, Some(profiles)) => Ok(Plan::Profile {
                chain: profiles.resolve(name)?,
            }),
            (Way::Default, Some(profiles)) => {
                if profiles.get("default").is_some() {
                    if let Ok(chain) = profiles.resolve("default") {
                        if chain.needs_mfa() {
                            return Ok(Plan::Profile { chain });
                        }
                    }
                }
                Ok(Plan::Chain)
            }
            (_, None) => Ok(Plan::Chain),
        }
    }

    /// The profile whose `region` applies, if any.
    pub fn region_profile<'p>(
        &self,
        profiles: Option<&'p Profiles>,
        env: &EnvVars,
    ) -> Option<&'p str> {
        let profiles = profiles?;
        let name = match self {
            Plan::Profile { chain } => chain.profile.as_str(),
            // Like the SDK: the region of AWS_PROFILE, else of `default`.
            Plan::Chain | Plan::Env { vault: None } => env.get("AWS_PROFILE").unwrap_or("default"),
            Plan::Env { vault: Some(_) } => return None,
        };
        profiles.get(name)?.region()
    }
}

/// Builds the credentials provider for `plan`. Asks for the MFA code if needed; nothing
/// here has built a client for the command yet.
pub(crate) async fn resolve(
    plan: Plan,
    opts: &AwsOptions,
    env: &EnvVars,
    region: &str,
    paths: &ProfilePaths,
) -> Result<Resolved> {
    let mut warnings = Vec::new();
    match plan {
        Plan::Env { vault } => {
            let expires_at = match env.get("AWS_CREDENTIAL_EXPIRATION") {
                Some(raw) => match parse_expiration(raw) {
                    Some(t) => Some(t),
                    None => {
                        warnings.push(format!(
                            "cannot read AWS_CREDENTIAL_EXPIRATION={raw} (expected ISO-8601 like 2026-01-02T15:04:05Z); the time left is unknown"
                        ));
                        None
                    }
                },
                None => None,
            };
            let source = match &vault {
                Some(p) => CredentialSource::AwsVault { profile: p.clone() },
                None => CredentialSource::Environment,
            };
            if let Some(access) = env.get("AWS_ACCESS_KEY_ID") {
                let secret = env.get("AWS_SECRET_ACCESS_KEY").ok_or_else(|| {
                    Error::credentials("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not")
                        .hint("set both, or unset AWS_ACCESS_KEY_ID and use --profile")
                })?;
                let creds = Credentials::new(
                    access,
                    secret,
                    env.get("AWS_SESSION_TOKEN").map(str::to_string),
                    expires_at.map(SystemTime::from),
                    "environment",
                );
                return Ok(Resolved {
                    provider: SharedCredentialsProvider::new(creds),
                    source,
                    expires_at,
                    renewed_by_prompt: false,
                    sdk_profile: None,
                    warnings,
                });
            }
            // `aws-vault exec --server` serves credentials through
            // AWS_CONTAINER_CREDENTIALS_FULL_URI: the SDK's chain reads that.
            let provider = default_chain(&opts.transport(), region).await;
            let (provider, sdk_expiry) = prime(provider, &source).await?;
            Ok(Resolved {
                provider,
                source,
                expires_at: expires_at.or(sdk_expiry),
                renewed_by_prompt: false,
                sdk_profile: None,
                warnings,
            })
        }
        Plan::Profile { chain } => {
            let name = chain.profile.clone();
            if chain.needs_mfa() {
                let cache = SessionCache::from_env(env)?;
                let assumed_role = chain.role_arn().map(str::to_string);
                let signed = renew::sign_in(chain, opts, env, region, paths, cache).await?;
                return Ok(Resolved {
                    provider: SharedCredentialsProvider::new(signed.provider),
                    source: CredentialSource::Profile {
                        name: name.clone(),
                        assumed_role,
                        mfa: true,
                        cached: signed.cached,
                        store: signed.store,
                        renewed_from: signed.renewed_from,
                    },
                    expires_at: signed.expires_at,
                    renewed_by_prompt: signed.renewed_by_prompt,
                    sdk_profile: Some(name),
                    warnings,
                });
            }
            let source = CredentialSource::Profile {
                name: name.clone(),
                assumed_role: chain.role_arn().map(str::to_string),
                mfa: false,
                cached: false,
                store: None,
                renewed_from: None,
            };
            if opts.endpoint_url.is_some()
                && !chain.hops.is_empty()
                && matches!(chain.base, Base::StaticKeys { .. })
            {
                // The SDK's profile provider would send this AssumeRole to real STS, not
                // to --endpoint-url (the sandbox): do the chain here too. Not refreshed,
                // like an MFA session.
                let creds = assume_chain(&chain, None, opts, env, region, paths).await?;
                let expires_at = creds.expiry().map(OffsetDateTime::from);
                return Ok(Resolved {
                    provider: SharedCredentialsProvider::new(creds),
                    source,
                    expires_at,
                    renewed_by_prompt: false,
                    sdk_profile: Some(name),
                    warnings,
                });
            }
            let provider = profile_provider(&opts.transport(), region, paths.files(), &name);
            let (provider, expires_at) = prime(provider, &source).await?;
            Ok(Resolved {
                provider,
                source,
                expires_at,
                renewed_by_prompt: false,
                sdk_profile: Some(name),
                warnings,
            })
        }
        Plan::Chain => {
            let source = CredentialSource::Chain;
            let provider = default_chain(&opts.transport(), region).await;
            let (provider, expires_at) = prime(provider, &source).await?;
            Ok(Resolved {
                provider,
                source,
                expires_at,
                renewed_by_prompt: false,
                sdk_profile: None,
                warnings,
            })
        }
    }
}

/// Parses `AWS_CREDENTIAL_EXPIRATION` (RFC 3339 / ISO-8601, as aws-vault writes it).
pub fn parse_expiration(raw: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(raw.trim(), &Rfc3339).ok()
}

/// Resolves `provider` once now, so a missing or broken credential source fails before
/// any work with a message that says what to do, and the expiry is known. The SDK then
/// gets these credentials first ([`Primed`]) and the provider again once they age.
async fn prime(
    provider: SharedCredentialsProvider,
    source: &CredentialSource,
) -> Result<(SharedCredentialsProvider, Option<OffsetDateTime>)> {
    let creds = provider
        .provide_credentials()
        .await
        .map_err(|e| signin::credentials_error(e, source))?;
    let expires_at = creds.expiry().map(OffsetDateTime::from);
    let primed = Primed {
        first: std::sync::Mutex::new(Some(creds)),
        inner: provider,
    };
    Ok((SharedCredentialsProvider::new(primed), expires_at))
}

/// A provider that hands out credentials already resolved, until they come within the
/// reuse margin of expiry, then asks the real provider (which refreshes, e.g. SSO).
#[derive(Debug)]
struct Primed {
    first: std::sync::Mutex<Option<Credentials>>,
    inner: SharedCredentialsProvider,
}

impl ProvideCredentials for Primed {
    fn provide_credentials<'a>(&'a self) -> ProvideCredentialsFuture<'a>
    where
        Self: 'a,
    {
        let mut first = self.first.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(creds) = first.as_ref() {
            let fresh = creds.expiry().is_none_or(|e| {
                cache::is_reusable(OffsetDateTime::from(e), OffsetDateTime::now_utc())
            });
            if fresh {
                return ProvideCredentialsFuture::ready(Ok(creds.clone()));
            }
            *first = None;
        }
        ProvideCredentialsFuture::new(self.inner.provide_credentials())
    }
}

/// Walks the chain's roles from its base credentials; `code` goes to the first role
/// with `mfa_serial`.
async fn assume_chain(
    chain: &Chain,
    code: Option<String>,
    opts: &AwsOptions,
    env: &EnvVars,
    region: &str,
    paths: &ProfilePaths,
) -> Result<Credentials> {
    let (mut creds, base_profile) = match &chain.base {
        Base::StaticKeys {
            profile,
            credentials,
        } => (credentials.clone(), profile.clone()),
        Base::Sdk { profile } => {
            let provider = profile_provider(&opts.transport(), region, paths.files(), profile);
            let source = CredentialSource::Profile {
                name: profile.clone(),
                assumed_role: None,
                mfa: false,
                cached: false,
                store: None,
                renewed_from: None,
            };
            let creds = provider
                .provide_credentials()
                .await
                .map_err(|e| signin::credentials_error(e, &source))?;
            (creds, profile.clone())
        }
    };
    let mut code = code;
    let mut from_profile = base_profile;
    for hop in &chain.hops {
        // A TOTP code is accepted once: it goes to the first role that wants MFA.
        let mfa = match (&hop.mfa_serial, code.take()) {
            (Some(serial), Some(code)) => Some((serial.as_str(), code)),
            (None, code_back) => {
                code = code_back;
                None
            }
            (Some(_), None) => None,
        };
        creds = signin::assume_role(
            opts,
            region,
            creds,
            hop,
            mfa,
            &session_name(hop, env),
            &from_profile,
        )
        .await?;
        from_profile = hop.profile.clone();
    }
    Ok(creds)
}

/// `role_session_name` of the profile, else `secret-rollout-<user>-<epoch>` (what
/// CloudTrail shows: who, and when the session began).
fn session_name(hop: &profile::RoleHop, env: &EnvVars) -> String {
    if let Some(name) = &hop.role_session_name {
        return name.clone();
    }
    let user = env
        .get("USER")
        .or_else(|| env.get("USERNAME"))
        .or_else(|| env.get("LOGNAME"))
        .unwrap_or("user");
    let user: String = user
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(*c))
        .take(32)
        .collect();
    let epoch = OffsetDateTime::now_utc().unix_timestamp();
    format!("secret-rollout-{user}-{epoch}")
}

/// Time left on the context's credentials (zero when expired); `None` when they do not
/// expire or the expiry is unknown.
pub fn time_left(ctx: &AwsContext) -> Option<Duration> {
    let left = ctx.expires_at? - OffsetDateTime::now_utc();
    Some(Duration::try_from(left).unwrap_or(Duration::ZERO))
}

/// Who the credentials are, for `secret-rollout whoami`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhoAmI {
    /// The AWS account id.
    pub account: String,
    /// The caller's ARN.
    pub arn: String,
    /// When the credentials expire, if known.
    pub expires_at: Option<OffsetDateTime>,
    /// Time left on them, if known.
    pub time_left: Option<Duration>,
    /// Where they came from.
    pub source: CredentialSource,
    /// The account the environment expects (`AwsOptions::expected_account`).
    pub expected_account: Option<String>,
    /// Whether `account` is the expected one (`None` when none is expected).
    pub matches: Option<bool>,
}

/// Asks STS who the credentials of `ctx` are.
pub async fn whoami(ctx: &AwsContext) -> Result<WhoAmI> {
    let caller = caller(ctx).await?;
    let matches = ctx.expected_account.as_ref().map(|a| *a == caller.account);
    Ok(WhoAmI {
        account: caller.account,
        arn: caller.arn,
        expires_at: ctx.expires_at,
        time_left: time_left(ctx),
        source: ctx.source.clone(),
        expected_account: ctx.expected_account.clone(),
        matches,
    })
}

/// `1h 02m`, `4m`, `expired`.
pub fn format_duration(d: Duration) -> String {
    let mins = d.as_secs() / 60;
    match (mins / 60, mins % 60) {
        (0, 0) if d.is_zero() => "expired".to_string(),
        (0, 0) => "less than a minute".to_string(),
        (0, m) => format!("{m}m"),
        (h, m) => format!("{h}h {m:02}m"),
    }
}

/// The `whoami` output:
///
/// ```text
/// account:     123456789012
/// arn:         arn:aws:sts::123456789012:assumed-role/deploy/secret-rollout-alice-1764100000
/// signed in:   profile production, role arn:aws:iam::123456789012:role/deploy, cached MFA session from the kernel persistent keyring
/// expires:     2026-11-25 21:00:00 UTC (47m left)
/// environment: matches account 123456789012
/// ```
impl fmt::Display for WhoAmI {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "account:     {}", self.account)?;
        writeln!(f, "arn:         {}", self.arn)?;
        writeln!(f, "signed in:   {}", self.source)?;
        match (self.expires_at, self.time_left) {
            (Some(at), Some(left)) => {
                let at = at.to_offset(time::UtcOffset::UTC);
                let stamp = format!(
                    "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
                    at.year(),
                    u8::from(at.month()),
                    at.day(),
                    at.hour(),
                    at.minute(),
                    at.second()
                );
                let left = if left.is_zero() {
                    "expired".to_string()
                } else {
                    format!("{} left", format_duration(left))
                };
                write!(f, "expires:     {stamp} ({left})")?;
                if let CredentialSource::Profile {
                    renewed_from: Some(_),
                    ..
                } = &self.source
                {
                    // The role's own credentials are short; no code is needed until then.
                    f.write_str(", the MFA session: the role is renewed from it until then")?;
                }
            }
            _ => write!(
                f,
                "expires:     no expiry known (long-term keys or an SDK source)"
            )?,
        }
        match (&self.expected_account, self.matches) {
            (Some(expected), Some(true)) => write!(f, "\nenvironment: matches account {expected}"),
            (Some(expected), Some(false)) => write!(
                f,
                "\nenvironment: DOES NOT MATCH: it expects account {expected}, these credentials are for {}",
                self.account
            ),
            _ => Ok(()),
        }
    }
}

/// Forgets the cached MFA session of `profile`, or of every profile; returns how many
/// were forgotten. Reads the process environment (`SECRET_ROLLOUT_CACHE_DIR`, config
/// file paths).
pub fn logout(profile: Option<&str>) -> Result<usize> {
    logout_with_env(profile, &EnvVars::from_process())
}

/// [`logout`] with the given environment.
pub fn logout_with_env(profile: Option<&str>, env: &EnvVars) -> Result<usize> {
    let cache = SessionCache::from_env(env)?;
    // A broken config file must not stop a logout, so read errors mean "no profiles".
    let profiles = Profiles::load(&ProfilePaths::from_env(env)).ok();
    match profile {
        Some(name) => {
            let mut forgot = !cache.remove(name)?.is_empty();
            // The MFA session the profile's role is renewed from goes too: logging out
            // means the next command asks for a code.
            let source = profiles
                .as_ref()
                .and_then(|p| p.resolve(name).ok())
                .filter(|chain| chain.needs_mfa())
                .map(|chain| match chain.base {
                    Base::StaticKeys { profile, .. } | Base::Sdk { profile } => profile,
                });
            if let Some(source) = source {
                forgot |= !cache.remove(&cache::mfa_session_key(&source))?.is_empty();
            }
            Ok(usize::from(forgot))
        }
        None => {
            // Not every keyring can be listed (the Keychain cannot): try every profile the
            // config names too, and the MFA session each could hold.
            let names: Vec<String> = profiles
                .as_ref()
                .map(|p| p.names())
                .unwrap_or_default()
                .into_iter()
                .flat_map(|n| [n.to_string(), cache::mfa_session_key(n)])
                .collect();
            cache.remove_all(names.iter().map(String::as_str))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_vault_expiration_parses() {
        let t = parse_expiration("2026-11-25T21:00:00Z").unwrap();
        assert_eq!(t.unix_timestamp(), 1_795_640_400);
        assert_eq!(parse_expiration("2026-11-25T22:00:00+01:00").unwrap(), t);
        assert!(parse_expiration("tomorrow").is_none());
    }

    #[test]
    fn env_vars_hide_values_and_ignore_empty() {
        let env = EnvVars::from_pairs([("AWS_SECRET_ACCESS_KEY", "shh"), ("AWS_PROFILE", "")]);
        assert!(!format!("{env:?}").contains("shh"));
        assert_eq!(env.get("AWS_PROFILE"), None);
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(format_duration(Duration::from_secs(3720)), "1h 02m");
        assert_eq!(format_duration(Duration::from_secs(299)), "4m");
        assert_eq!(format_duration(Duration::ZERO), "expired");
    }

    #[test]
    fn session_name_is_valid_for_sts() {
        let hop = profile::RoleHop {
            profile: "p".into(),
            role_arn: "arn:aws:iam::1:role/r".into(),
            mfa_serial: None,
            duration_seconds: None,
            external_id: None,
            role_session_name: None,
        };
        let name = session_name(&hop, &EnvVars::from_pairs([("USER", "al ice/x")]));
        assert!(name.starts_with("secret-rollout-alicex-"), "{name}");
        assert!(name.len() <= 64);
    }

    #[test]
    fn whoami_display_shows_mismatch() {
        let w = WhoAmI {
            account: "111111111111".into(),
            arn: "arn:aws:sts::111111111111:assumed-role/r/s".into(),
            expires_at: Some(OffsetDateTime::from_unix_timestamp(1_795_640_400).unwrap()),
            time_left: Some(Duration::from_secs(47 * 60 + 5)),
            source: CredentialSource::AwsVault {
                profile: "prod".into(),
            },
            expected_account: Some("222222222222".into()),
            matches: Some(false),
        };
        let text = w.to_string();
        assert!(
            text.contains("expires:     2026-11-25 21:00:00 UTC (47m left)"),
            "{text}"
        );
        assert!(text.contains("signed in:   aws-vault (profile prod)"));
        assert!(text.contains("DOES NOT MATCH: it expects account 222222222222"));
        assert!(!text.contains("renewed"), "{text}");
        let renewed = WhoAmI {
            source: CredentialSource::Profile {
                name: "production".into(),
                assumed_role: Some("arn:aws:iam::1:role/deploy".into()),
                mfa: true,
                cached: true,
                store: None,
                renewed_from: Some("identity".into()),
            },
            ..w
        };
        let text = renewed.to_string();
        assert!(
            text.contains("signed in:   profile production, role arn:aws:iam::1:role/deploy, cached MFA session, renewed from the MFA session of profile identity"),
            "{text}"
        );
        assert!(
            text.contains("(47m left), the MFA session: the role is renewed from it until then"),
            "{text}"
        );
    }
}
