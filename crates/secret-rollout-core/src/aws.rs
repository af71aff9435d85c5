//! The one place that builds the AWS [`SdkConfig`] every client is made from.
//!
//! Precedence, highest first:
//! - **Region**: `--region` > `AWS_REGION` > `AWS_DEFAULT_REGION` > the `region` of the
//!   profile in use (the `default` profile when none is named; no profile is read under
//!   aws-vault). None of them: bad input naming all three.
//! - **Endpoint**: `--endpoint-url` for every service; without it the SDK's own rules
//!   (`AWS_ENDPOINT_URL_<SERVICE>` > `AWS_ENDPOINT_URL` > the profile's `endpoint_url`),
//!   untouched, so the sandbox can be reached per service.
//! - **Credentials**: see [`crate::credentials`] (aws-vault > `--profile` > env keys >
//!   `AWS_PROFILE` > default).
//!
//! Every client retries throttling, transient and 5xx errors in standard mode, 5 attempts
//! with exponential backoff and jitter.

use std::time::{Duration, SystemTime};

#[allow(deprecated)]
use aws_config::profile::profile_file::{ProfileFileKind, ProfileFiles};
use aws_config::provider_config::ProviderConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader};
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_types::region::Region;
use aws_types::SdkConfig;
use time::OffsetDateTime;

use crate::credentials::profile::{ProfilePaths, Profiles, RoleHop};
use crate::credentials::{self, CredentialSource, EnvVars, MfaCodeSource, Plan};
use crate::error::{Error, Result};

/// Attempts per call (first try included) unless [`AwsOptions::max_attempts`] says otherwise.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// What the command line (and `secret-rollout.toml`) say about AWS.
#[derive(Debug, Clone, Default)]
pub struct AwsOptions {
    /// `--region` (or the environment's region from the config file).
    pub region: Option<String>,
    /// `--profile` (or the environment's profile from the config file).
    pub profile: Option<String>,
    /// `--endpoint-url`: one endpoint for every service (the sandbox).
    pub endpoint_url: Option<String>,
    /// Where an MFA code comes from (`--mfa-code-stdin` -> [`MfaCodeSource::Stdin`]).
    pub mfa_code: MfaCodeSource,
    /// The account the environment lives in, for `whoami` and the account check.
    pub expected_account: Option<String>,
    /// Attempts per AWS call; `None` is [`DEFAULT_MAX_ATTEMPTS`].
    pub max_attempts: Option<u32>,
}

/// The signed-in AWS configuration of one command.
#[derive(Debug, Clone)]
pub struct AwsContext {
    /// Make every client from this: `aws_sdk_ecs::Client::new(&ctx.sdk_config)`.
    pub sdk_config: SdkConfig,
    /// Where the credentials came from.
    pub source: CredentialSource,
    /// When the credentials expire, if known.
    pub expires_at: Option<OffsetDateTime>,
    /// The region in use.
    pub region: String,
    /// [`AwsOptions::expected_account`], carried for `whoami`.
    pub expected_account: Option<String>,
    /// Things the CLI should print as warnings (e.g. `--profile` ignored under aws-vault).
    pub warnings: Vec<String>,
}

/// Who the credentials are (STS GetCallerIdentity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Account id.
    pub account: String,
    /// ARN of the user or assumed role.
    pub arn: String,
    /// Unique id (`AROA...:session`).
    pub user_id: String,
}

/// Signs in and builds the SDK config, from the process environment. Asks for an MFA
/// code if the profile needs one and no cached session is good. Region, endpoint and
/// credential precedence: see the module doc. Print [`AwsContext::warnings`].
pub async fn load(opts: &AwsOptions) -> Result<AwsContext> {
    load_with_env(opts, &EnvVars::from_process()).await
}

/// [`load`] reading `env` instead of the process environment for everything this crate
/// decides (the SDK itself still sees the process environment for endpoints).
pub async fn load_with_env(opts: &AwsOptions, env: &EnvVars) -> Result<AwsContext> {
    let paths = ProfilePaths::from_env(env);
    let vault = env.get("AWS_VAULT").is_some();
    // Under aws-vault the profiles are never read: aws-vault already chose and its
    // credentials are the ones to use.
    let profiles = if vault {
        None
    } else {
        Some(Profiles::load(&paths)?)
    };
    let plan = Plan::choose(opts, env, profiles.as_ref())?;
    let region = resolve_region(
        opts.region.as_deref(),
        env,
        plan.region_profile(profiles.as_ref(), env),
        &paths,
    )?;
    let files = if vault { None } else { Some(&paths) };
    let resolved = credentials::resolve(plan, opts, env, &region, &paths).await?;
    let mut loader = base_loader(opts, &region, files).credentials_provider(resolved.provider);
    if let Some(profile) = &resolved.sdk_profile {
        loader = loader.profile_name(profile);
    }
    let sdk_config = loader.load().await;
    Ok(AwsContext {
        sdk_config,
        source: resolved.source,
        expires_at: resolved.expires_at,
        region,
        expected_account: opts.expected_account.clone(),
        warnings: resolved.warnings,
    })
}

/// The region by the precedence in the module doc.
pub fn resolve_region(
    flag: Option<&str>,
    env: &EnvVars,
    profile_region: Option<&str>,
    paths: &ProfilePaths,
) -> Result<String> {
    flag.map(str::trim)
        .filter(|r| !r.is_empty())
        .or_else(|| env.get("AWS_REGION"))
        .or_else(|| env.get("AWS_DEFAULT_REGION"))
        .or(profile_region)
        .map(str::to_string)
        .ok_or_else(|| {
            Error::bad_input("no AWS region given").hint(format!(
                "pass --region, set AWS_REGION, set the environment's region in secret-rollout.toml, or add `region = ...` to the profile in {}",
                paths.config.display()
            ))
        })
}

/// Profile files for the SDK: ours, or none at all (aws-vault).
#[allow(deprecated)]
fn sdk_profile_files(paths: Option<&ProfilePaths>) -> ProfileFiles {
    let builder = ProfileFiles::builder()
        .include_default_config_file(false)
        .include_default_credentials_file(false);
    match paths {
        Some(p) => builder
            .with_file(ProfileFileKind::Config, &p.config)
            .with_file(ProfileFileKind::Credentials, &p.credentials)
            .build(),
        None => builder.with_contents(ProfileFileKind::Config, "").build(),
    }
}

fn retry_config(opts: &AwsOptions) -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(opts.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS).max(1))
        .with_initial_backoff(Duration::from_millis(500))
        .with_max_backoff(Duration::from_secs(20))
}

fn timeout_config() -> TimeoutConfig {
    // A dead endpoint fails in seconds instead of hanging; calls themselves may be slow.
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()
}

fn base_loader(opts: &AwsOptions, region: &str, paths: Option<&ProfilePaths>) -> ConfigLoader {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .retry_config(retry_config(opts))
        .timeout_config(timeout_config())
        .profile_files(sdk_profile_files(paths));
    if let Some(url) = &opts.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader
}

fn provider_config(opts: &AwsOptions, region: &str) -> ProviderConfig {
    ProviderConfig::without_region()
        .with_region(Some(Region::new(region.to_string())))
        .with_retry_config(retry_config(opts))
        .with_timeout_config(timeout_config())
}

/// The SDK's provider for a profile that does not need MFA (plain role, SSO,
/// credential_process, static keys).
pub(crate) fn profile_provider(
    opts: &AwsOptions,
    region: &str,
    paths: &ProfilePaths,
    profile: &str,
) -> SharedCredentialsProvider {
    let provider = aws_config::profile::ProfileFileCredentialsProvider::builder()
        .configure(&provider_config(opts, region))
        .profile_files(sdk_profile_files(Some(paths)))
        .profile_name(profile)
        .build();
    SharedCredentialsProvider::new(provider)
}

/// The SDK's default chain (env, profile, web identity, ECS, IMDS).
pub(crate) async fn default_chain(opts: &AwsOptions, region: &str) -> SharedCredentialsProvider {
    let chain = aws_config::default_provider::credentials::DefaultCredentialsChain::builder()
        .configure(provider_config(opts, region))
        .region(Region::new(region.to_string()))
        .build()
        .await;
    SharedCredentialsProvider::new(chain)
}

/// One STS AssumeRole with `creds`, with the MFA serial and code when given.
pub(crate) async fn assume_role(
    opts: &AwsOptions,
    region: &str,
    creds: Credentials,
    hop: &RoleHop,
    mfa: Option<(&str, String)>,
    session_name: &str,
    from_profile: &str,
) -> Result<Credentials> {
    // Built with only the source credentials and no profile, so nothing in the config
    // files can redirect this call; endpoint from --endpoint-url or the SDK's env rules.
    let config = base_loader(opts, region, None)
        .credentials_provider(creds)
        .load()
        .await;
    let sts = aws_sdk_sts::Client::new(&config);
    let mut req = sts
        .assume_role()
        .role_arn(&hop.role_arn)
        .role_session_name(session_name)
        .duration_seconds(hop.duration_seconds.unwrap_or(3600));
    if let Some(id) = &hop.external_id {
        req = req.external_id(id);
    }
    if let Some((serial, code)) = mfa {
        req = req.serial_number(serial).token_code(code);
    }
    let out = req
        .send()
        .await
        .map_err(|e| assume_role_error(&e, hop, from_profile))?;
    let c = out.credentials().ok_or_else(|| {
        Error::aws(format!(
            "STS AssumeRole of {} returned no credentials",
            hop.role_arn
        ))
    })?;
    let expiry = SystemTime::try_from(*c.expiration()).ok();
    Ok(Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_string()),
        expiry,
        "secret-rollout-assume-role",
    ))
}

/// What an STS error says, boiled down.
struct StsFailure {
    code: Option<String>,
    message: String,
    /// No answer at all (connection, timeout).
    unreachable: bool,
}

fn sts_failure<E, R>(err: &SdkError<E, R>) -> StsFailure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match err {
        SdkError::ServiceError(se) => StsFailure {
            code: se.err().code().map(str::to_string),
            message: se.err().message().unwrap_or_default().to_string(),
            unreachable: false,
        },
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => StsFailure {
            code: None,
            message: DisplayErrorContext(err).to_string(),
            unreachable: true,
        },
        _ => StsFailure {
            code: None,
            message: DisplayErrorContext(err).to_string(),
            unreachable: false,
        },
    }
}

const EXPIRED_HINT: &str = "your AWS session has expired: sign in again (`aws-vault exec PROFILE -- secret-rollout ...`, or `secret-rollout logout` and rerun)";

fn assume_role_error<R: std::fmt::Debug>(
    err: &SdkError<aws_sdk_sts::operation::assume_role::AssumeRoleError, R>,
    hop: &RoleHop,
    from_profile: &str,
) -> Error {
    let f = sts_failure(err);
    let role = &hop.role_arn;
    match f.code.as_deref() {
        Some("AccessDenied") if f.message.contains("MultiFactorAuthentication") => {
            Error::credentials(format!(
                "the MFA code was not accepted for {} (assuming {role})",
                hop.mfa_serial.as_deref().unwrap_or("the MFA device")
            ))
            .hint("wait for the next code and try again; check that mfa_serial names your device")
        }
        Some("AccessDenied") => Error::credentials(format!(
            "not allowed to assume role {role} (profile `{}`, from profile `{from_profile}`): {}",
            hop.profile, f.message
        ))
        .hint("check that the role's trust policy allows your identity, and that role_arn and mfa_serial in the profile are right"),
        Some("ExpiredToken") | Some("RequestExpired") => Error::credentials(format!(
            "the credentials of profile `{from_profile}` have expired (assuming {role})"
        ))
        .hint(EXPIRED_HINT),
        Some("InvalidClientTokenId") | Some("SignatureDoesNotMatch") | Some("UnrecognizedClientException") => {
            Error::credentials(format!(
                "AWS rejected the keys of profile `{from_profile}` ({}) while assuming {role}",
                f.code.as_deref().unwrap_or_default()
            ))
            .hint(format!(
                "check aws_access_key_id / aws_secret_access_key of [{from_profile}] in your credentials file (`aws configure --profile {from_profile}`)"
            ))
        }
        Some("ValidationError") => Error::credentials(format!(
            "STS refused the AssumeRole request for {role}: {}",
            f.message
        ))
        .hint("check duration_seconds (at most the role's maximum session duration), role_arn and role_session_name in the profile"),
        _ if f.unreachable => Error::aws(format!("cannot reach AWS STS to assume {role}: {}", f.message))
            .hint("check the network, --region and any AWS_ENDPOINT_URL / --endpoint-url"),
        _ => Error::aws(format!(
            "STS AssumeRole of {role} failed: {}{}",
            f.code.map(|c| format!("{c}: ")).unwrap_or_default(),
            f.message
        )),
    }
}

/// Maps a credential provider failure to a message that says how to sign in.
pub(crate) fn credentials_error(err: &CredentialsError, source: &CredentialSource) -> Error {
    let detail = DisplayErrorContext(err).to_string();
    match err {
        CredentialsError::CredentialsNotLoaded(_) => Error::credentials(format!(
            "no AWS credentials found (tried {source})"
        ))
        .hint("sign in with `--profile NAME` (a profile in ~/.aws/config), run under `aws-vault exec PROFILE -- secret-rollout ...`, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
        _ if detail.contains("ExpiredToken") => {
            Error::credentials(format!("cannot get AWS credentials from {source}: {detail}")).hint(EXPIRED_HINT)
        }
        _ => Error::credentials(format!("cannot get AWS credentials from {source}: {detail}"))
            .hint("check the profile in ~/.aws/config (for SSO: `aws sso login --profile NAME`)"),
    }
}

/// Signs in ([`load`]) and asks STS who that is ([`caller`]). A cached MFA session that AWS
/// no longer accepts (revoked, or expired early) is forgotten and the sign-in done again,
/// which asks for a fresh code, instead of failing until someone runs `logout`.
pub async fn load_identified(opts: &AwsOptions) -> Result<(AwsContext, Caller)> {
    let ctx = load(opts).await?;
    match caller(&ctx).await {
        Ok(who) => Ok((ctx, who)),
        Err(e) if e.kind == crate::error::Kind::Credentials => {
            let CredentialSource::Profile {
                name, cached: true, ..
            } = &ctx.source
            else {
                return Err(e);
            };
            let _ = credentials::logout(Some(name));
            eprintln!(
                "note: the cached session was refused ({}); signing in again",
                e.message
            );
            let ctx = load(opts).await?;
            let who = caller(&ctx).await?;
            Ok((ctx, who))
        }
        Err(e) => Err(e),
    }
}

/// STS GetCallerIdentity with the context's credentials.
pub async fn caller(ctx: &AwsContext) -> Result<Caller> {
    let sts = aws_sdk_sts::Client::new(&ctx.sdk_config);
    let out = sts.get_caller_identity().send().await.map_err(|e| {
        let f = sts_failure(&e);
        match f.code.as_deref() {
            Some("ExpiredToken") | Some("RequestExpired") => Error::credentials(format!(
                "your AWS session has expired ({})",
                ctx.source
            ))
            .hint(EXPIRED_HINT),
            Some("InvalidClientTokenId") | Some("SignatureDoesNotMatch") | Some("UnrecognizedClientException") => {
                Error::credentials(format!(
                    "AWS rejected the credentials from {} ({})",
                    ctx.source,
                    f.code.as_deref().unwrap_or_default()
                ))
                .hint("the access key or session token is wrong or was revoked: sign in again, or run `secret-rollout logout` and rerun")
            }
            Some("AccessDenied") => Error::credentials(format!(
                "AWS denied GetCallerIdentity for the credentials from {}: {}",
                ctx.source, f.message
            )),
            _ if f.unreachable => Error::aws(format!("cannot reach AWS STS: {}", f.message))
                .hint("check the network, --region and any AWS_ENDPOINT_URL / --endpoint-url"),
            _ if f.message.contains("credentials") => Error::credentials(format!(
                "no usable AWS credentials ({}): {}",
                ctx.source, f.message
            ))
            .hint("sign in with `--profile NAME`, `aws-vault exec PROFILE -- secret-rollout ...`, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"),
            _ => Error::aws(format!(
                "STS GetCallerIdentity failed: {}{}",
                f.code.map(|c| format!("{c}: ")).unwrap_or_default(),
                f.message
            )),
        }
    })?;
    Ok(Caller {
        account: out.account().unwrap_or_default().to_string(),
        arn: out.arn().unwrap_or_default().to_string(),
        user_id: out.user_id().unwrap_or_default().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths() -> ProfilePaths {
        ProfilePaths {
            config: "/home/u/.aws/config".into(),
            credentials: "/home/u/.aws/credentials".into(),
        }
    }

    #[test]
    fn region_precedence() {
        let all = EnvVars::from_pairs([
            ("AWS_REGION", "eu-central-1"),
            ("AWS_DEFAULT_REGION", "us-west-2"),
        ]);
        let p = paths();
        assert_eq!(
            resolve_region(Some("ap-south-1"), &all, Some("eu-west-1"), &p).unwrap(),
            "ap-south-1"
        );
        assert_eq!(
            resolve_region(None, &all, Some("eu-west-1"), &p).unwrap(),
            "eu-central-1"
        );
        let default_only = EnvVars::from_pairs([("AWS_DEFAULT_REGION", "us-west-2")]);
        assert_eq!(
            resolve_region(None, &default_only, Some("eu-west-1"), &p).unwrap(),
            "us-west-2"
        );
        assert_eq!(
            resolve_region(None, &EnvVars::default(), Some("eu-west-1"), &p).unwrap(),
            "eu-west-1"
        );
        assert_eq!(
            resolve_region(Some(" "), &EnvVars::default(), Some("eu-west-1"), &p).unwrap(),
            "eu-west-1"
        );
    }

    #[test]
    fn no_region_is_bad_input_naming_the_ways() {
        let err = resolve_region(None, &EnvVars::default(), None, &paths()).unwrap_err();
        assert_eq!(err.exit_code(), crate::error::exit::BAD_INPUT);
        let hint = err.hint.unwrap();
        assert!(
            hint.contains("--region")
                && hint.contains("AWS_REGION")
                && hint.contains("/home/u/.aws/config")
        );
    }
}
