//! The sign-in: builds the AWS [`SdkConfig`] every client is made from, with the
//! credentials [`super::resolve`] chose, and says what STS answers mean for the user.
//!
//! Precedence, highest first:
//! - **Region**: `--region` > `AWS_REGION` > `AWS_DEFAULT_REGION` > the `region` of the
//!   profile in use (the `default` profile when none is named; no profile is read under
//!   aws-vault). None of them: bad input naming all three.
//! - **Endpoint**: `--endpoint-url` for every service; without it the SDK's own rules
//!   (`AWS_ENDPOINT_URL_<SERVICE>` > `AWS_ENDPOINT_URL` > the profile's `endpoint_url`),
//!   untouched, so the sandbox can be reached per service.
//! - **Credentials**: see [`crate::credentials::precedence`] (`--profile` > keys in the
//!   environment, aws-vault's included > the config's `profile` > `AWS_PROFILE` > default).

use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::Credentials;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_types::SdkConfig;
use time::OffsetDateTime;

pub use crate::aws::config::DEFAULT_MAX_ATTEMPTS;
pub use crate::aws::sts::Caller;

use super::profile::{ProfilePaths, Profiles, RoleHop};
use super::{precedence, CredentialSource, EnvVars, MfaCodeSource, Plan, ProfileFrom};
use crate::aws::config::{base_loader, Transport};
use crate::aws::errors::{AwsError, Fault};
use crate::aws::sts;
use crate::error::{Error, Result};

/// What the command line (and `secret-rollout.toml`) say about AWS.
#[derive(Debug, Clone, Default)]
pub struct AwsOptions {
    /// `--region` (or the environment's region from the config file).
    pub region: Option<String>,
    /// `--profile` (or the environment's profile from the config file).
    pub profile: Option<String>,
    /// Where [`AwsOptions::profile`] came from: a typed `--profile` wins over credentials
    /// in the environment, the config's `profile` does not.
    pub profile_from: ProfileFrom,
    /// `--endpoint-url`: one endpoint for every service (the sandbox).
    pub endpoint_url: Option<String>,
    /// Where an MFA code comes from (`--mfa-code-stdin` -> [`MfaCodeSource::Stdin`]).
    pub mfa_code: MfaCodeSource,
    /// The account the environment lives in, for `whoami` and the account check.
    pub expected_account: Option<String>,
    /// Attempts per AWS call; `None` is [`DEFAULT_MAX_ATTEMPTS`].
    pub max_attempts: Option<u32>,
}

impl AwsOptions {
    /// Where calls go and how often they are tried.
    pub fn transport(&self) -> Transport {
        Transport {
            endpoint_url: self.endpoint_url.clone(),
            max_attempts: self.max_attempts,
        }
    }
}

/// The signed-in AWS configuration of one command.
#[derive(Debug, Clone)]
pub struct AwsContext {
    /// Make every client from this: `aws_sdk_ecs::Client::new(&ctx.sdk_config)`.
    pub sdk_config: SdkConfig,
    /// Where the credentials came from.
    pub source: CredentialSource,
    /// When the credentials expire, if known: for an MFA sign-in whose role is renewed
    /// from an MFA session, that session's end (until then no code is asked).
    pub expires_at: Option<OffsetDateTime>,
    /// The credentials are renewed in flight with a new MFA code asked at the terminal
    /// (a source that cannot hold an MFA session): a run may outlive
    /// [`AwsContext::expires_at`], asking then.
    pub renewed_by_prompt: bool,
    /// The region in use.
    pub region: String,
    /// [`AwsOptions::expected_account`], carried for `whoami`.
    pub expected_account: Option<String>,
    /// Things the CLI should print as warnings (e.g. an unreadable expiry).
    pub warnings: Vec<String>,
    /// What the sign-in passed over and why (e.g. the config's profile, because keys are
    /// in the environment): the CLI prints them as `note: ...`.
    pub notes: Vec<String>,
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
    if let Some(url) = &opts.endpoint_url {
        crate::aws::config::check_endpoint_url(url)?;
    }
    let paths = ProfilePaths::from_env(env);
    let decision = precedence::decide(
        opts.profile.as_deref().map(|p| (p, &opts.profile_from)),
        env,
    );
    // Under aws-vault the profiles are never read (unless --profile names another one):
    // aws-vault already chose, and its credentials are the ones to use.
    let vault = matches!(
        decision.way,
        precedence::Way::Environment { vault: Some(_) }
    );
    let profiles = if vault {
        None
    } else {
        Some(Profiles::load(&paths)?)
    };
    let plan = Plan::choose(&decision.way, profiles.as_ref())?;
    let region = resolve_region(
        opts.region.as_deref(),
        env,
        plan.region_profile(profiles.as_ref(), env),
        &paths,
    )?;
    crate::aws::config::check_region(&region)?;
    let files = if vault { None } else { Some(paths.files()) };
    let resolved = super::resolve(plan, opts, env, &region, &paths).await?;
    let mut loader =
        base_loader(&opts.transport(), &region, files).credentials_provider(resolved.provider);
    if let Some(profile) = &resolved.sdk_profile {
        loader = loader.profile_name(profile);
    }
    let sdk_config = loader.load().await;
    Ok(AwsContext {
        sdk_config,
        source: resolved.source,
        expires_at: resolved.expires_at,
        renewed_by_prompt: resolved.renewed_by_prompt,
        region,
        expected_account: opts.expected_account.clone(),
        warnings: resolved.warnings,
        notes: decision.notes,
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

const EXPIRED_HINT: &str = "your AWS session has expired: sign in again (`aws-vault exec PROFILE -- secret-rollout ...`, or `secret-rollout logout` and rerun)";

/// What AWS said, or the whole chain of the SDK error when AWS said nothing (a failed
/// credential provider shows there).
fn said(e: &AwsError) -> String {
    e.aws_message.clone().unwrap_or_else(|| match &e.source {
        Some(source) => DisplayErrorContext(&**source).to_string(),
        None => e.message.clone(),
    })
}

/// One STS AssumeRole for `hop` with `creds`, its failure said in sign-in terms.
pub(crate) async fn assume_role(
    opts: &AwsOptions,
    region: &str,
    creds: Credentials,
    hop: &RoleHop,
    mfa: Option<(&str, String)>,
    session_name: &str,
    from_profile: &str,
) -> Result<Credentials> {
    let req = sts::AssumeRole {
        role_arn: &hop.role_arn,
        session_name,
        duration_seconds: hop.duration_seconds,
        external_id: hop.external_id.as_deref(),
        mfa,
    };
    sts::assume_role(&opts.transport(), region, creds, &req)
        .await
        .map_err(|e| assume_role_error(e, hop, from_profile))
}

/// One STS GetSessionToken for the IAM user of `source_profile`, with the MFA code,
/// its failure said in sign-in terms.
pub(crate) async fn get_session_token(
    opts: &AwsOptions,
    region: &str,
    creds: Credentials,
    duration_seconds: i32,
    serial: &str,
    code: &str,
    source_profile: &str,
) -> Result<Credentials> {
    sts::get_session_token(&opts.transport(), region, creds, duration_seconds, serial, code)
        .await
        .map_err(|e| {
            let message = said(&e);
            let err = match (e.fault, e.code.as_deref()) {
                (Fault::AccessDenied, _) if message.contains("MultiFactorAuthentication") => {
                    Error::credentials(format!(
                        "the MFA code was not accepted for {serial} (GetSessionToken of profile `{source_profile}`)"
                    ))
                    .hint("wait for the next code and try again; check that mfa_serial names your device")
                }
                (Fault::AccessDenied, _) => Error::credentials(format!(
                    "the IAM user of profile `{source_profile}` may not call GetSessionToken: {message}"
                ))
                .hint("allow sts:GetSessionToken for the user, or set SECRET_ROLLOUT_MFA_SESSION_DURATION=off to give the code to AssumeRole"),
                (Fault::CredentialsRefused, code) => Error::credentials(format!(
                    "AWS rejected the keys of profile `{source_profile}` ({}) in GetSessionToken",
                    code.unwrap_or_default()
                ))
                .hint(format!(
                    "check aws_access_key_id / aws_secret_access_key of [{source_profile}] in your credentials file (`aws configure --profile {source_profile}`)"
                )),
                (_, Some("ValidationError")) => Error::bad_input(format!(
                    "STS refused the GetSessionToken request: {message}"
                ))
                .hint("SECRET_ROLLOUT_MFA_SESSION_DURATION must be from 15m to 36h"),
                (Fault::Unreachable, _) => Error::aws_call(format!("cannot reach AWS STS for GetSessionToken: {message}"))
                    .hint("check the network, --region and any AWS_ENDPOINT_URL / --endpoint-url"),
                (_, code) => Error::aws_call(format!(
                    "STS GetSessionToken failed: {}{message}",
                    code.map(|c| format!("{c}: ")).unwrap_or_default(),
                )),
            };
            e.attach(err)
        })
}

pub(crate) fn assume_role_error(e: AwsError, hop: &RoleHop, from_profile: &str) -> Error {
    let role = &hop.role_arn;
    let message = said(&e);
    let err = match (e.fault, e.code.as_deref()) {
        (Fault::AccessDenied, _) if message.contains("MultiFactorAuthentication") => {
            Error::credentials(format!(
                "the MFA code was not accepted for {} (assuming {role})",
                hop.mfa_serial.as_deref().unwrap_or("the MFA device")
            ))
            .hint("wait for the next code and try again; check that mfa_serial names your device")
        }
        (Fault::AccessDenied, _) => Error::credentials(format!(
            "not allowed to assume role {role} (profile `{}`, from profile `{from_profile}`): {message}",
            hop.profile
        ))
        .hint("check that the role's trust policy allows your identity, and that role_arn and mfa_serial in the profile are right"),
        (Fault::CredentialsRefused, Some("ExpiredToken" | "RequestExpired" | "ExpiredTokenException")) => {
            Error::credentials(format!(
                "the credentials of profile `{from_profile}` have expired (assuming {role})"
            ))
            .hint(EXPIRED_HINT)
        }
        (Fault::CredentialsRefused, code) => Error::credentials(format!(
            "AWS rejected the keys of profile `{from_profile}` ({}) while assuming {role}",
            code.unwrap_or_default()
        ))
        .hint(format!(
            "check aws_access_key_id / aws_secret_access_key of [{from_profile}] in your credentials file (`aws configure --profile {from_profile}`)"
        )),
        (_, Some("ValidationError")) => Error::credentials(format!(
            "STS refused the AssumeRole request for {role}: {message}"
        ))
        .hint("check duration_seconds (at most the role's maximum session duration), role_arn and role_session_name in the profile"),
        (Fault::Unreachable, _) => Error::aws_call(format!("cannot reach AWS STS to assume {role}: {message}"))
            .hint("check the network, --region and any AWS_ENDPOINT_URL / --endpoint-url"),
        (_, code) => Error::aws_call(format!(
            "STS AssumeRole of {role} failed: {}{message}",
            code.map(|c| format!("{c}: ")).unwrap_or_default(),
        )),
    };
    e.attach(err)
}

/// Maps a credential provider failure to a message that says how to sign in.
pub(crate) fn credentials_error(err: CredentialsError, source: &CredentialSource) -> Error {
    let detail = DisplayErrorContext(&err).to_string();
    match &err {
        CredentialsError::CredentialsNotLoaded(_) => Error::credentials(format!(
            "no AWS credentials found (tried {source})"
        ))
        .hint("sign in with `--profile NAME` (a profile in ~/.aws/config), run under `aws-vault exec PROFILE -- secret-rollout ...`, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
        _ if detail.contains("ExpiredToken") => {
            Error::credentials(format!("cannot get AWS credentials from {source}: {detail}")).hint(EXPIRED_HINT)
        }
        // The default chain ends with the instance metadata service, whose refusal (or
        // time-out) off EC2 is the error it reports; the SDK's dump of it is a kilobyte of
        // debug output about a source the operator never meant to use. Name what was tried,
        // in one line, and keep the SDK's error for `-v`.
        _ if matches!(source, CredentialSource::Chain) => Error::credentials(format!(
            "no AWS credentials found: tried {CHAIN_SOURCES}"
        ))
        .hint("sign in with `--profile NAME` (a profile in ~/.aws/config), run under `aws-vault exec PROFILE -- secret-rollout ...`, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
        .caused_by(err),
        _ => Error::credentials(format!("cannot get AWS credentials from {source}: {err}"))
            .hint("check the profile in ~/.aws/config (for SSO: `aws sso login --profile NAME`)")
            .caused_by(err),
    }
}

/// The sources of the SDK's default credential chain, in its order.
const CHAIN_SOURCES: &str = "the environment (AWS_ACCESS_KEY_ID), the shared config and credentials files, a web identity token, the ECS container endpoint and the EC2 instance metadata service";

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
            let _ = super::logout(Some(name));
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
    sts::caller_identity(&ctx.sdk_config).await.map_err(|e| {
        let message = said(&e);
        let err = match (e.fault, e.code.as_deref()) {
            (Fault::CredentialsRefused, Some("ExpiredToken" | "RequestExpired" | "ExpiredTokenException")) => {
                Error::credentials(format!("your AWS session has expired ({})", ctx.source))
                    .hint(EXPIRED_HINT)
            }
            (Fault::CredentialsRefused, code) => Error::credentials(format!(
                "AWS rejected the credentials from {} ({})",
                ctx.source,
                code.unwrap_or_default()
            ))
            .hint("the access key or session token is wrong or was revoked: sign in again, or run `secret-rollout logout` and rerun"),
            (Fault::AccessDenied, _) => Error::credentials(format!(
                "AWS denied GetCallerIdentity for the credentials from {}: {message}",
                ctx.source
            )),
            (Fault::Unreachable, _) => Error::aws_call(format!("cannot reach AWS STS: {message}"))
                .hint("check the network, --region and any AWS_ENDPOINT_URL / --endpoint-url"),
            _ if message.contains("credentials") => Error::credentials(format!(
                "no usable AWS credentials ({}): {message}",
                ctx.source
            ))
            .hint("sign in with `--profile NAME`, `aws-vault exec PROFILE -- secret-rollout ...`, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"),
            (_, code) => Error::aws_call(format!(
                "STS GetCallerIdentity failed: {}{message}",
                code.map(|c| format!("{c}: ")).unwrap_or_default(),
            )),
        };
        e.attach(err)
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
