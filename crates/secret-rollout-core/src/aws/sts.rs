//! STS: AssumeRole (for the sign-in) and GetCallerIdentity, their failures classified.
//! What a failure means for the user is decided by the sign-in ([`crate::credentials`]).

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_types::SdkConfig;

use super::config::{base_loader, Transport};
use super::errors::{AwsError, Fault};

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

/// One AssumeRole request.
#[derive(Debug, Clone)]
pub struct AssumeRole<'a> {
    /// The role.
    pub role_arn: &'a str,
    /// `RoleSessionName`.
    pub session_name: &'a str,
    /// `DurationSeconds` (default 3600).
    pub duration_seconds: Option<i32>,
    /// `ExternalId`.
    pub external_id: Option<&'a str>,
    /// The MFA device's serial, and its code.
    pub mfa: Option<(&'a str, String)>,
}

/// One STS AssumeRole with `creds`.
pub async fn assume_role(
    t: &Transport,
    region: &str,
    creds: Credentials,
    req: &AssumeRole<'_>,
) -> Result<Credentials, AwsError> {
    // Built with only the source credentials and no profile, so nothing in the config
    // files can redirect this call; endpoint from --endpoint-url or the SDK's env rules.
    let config = base_loader(t, region, None)
        .credentials_provider(creds)
        .load()
        .await;
    let sts = aws_sdk_sts::Client::new(&config);
    let mut call = sts
        .assume_role()
        .role_arn(req.role_arn)
        .role_session_name(req.session_name)
        .duration_seconds(req.duration_seconds.unwrap_or(3600));
    if let Some(id) = req.external_id {
        call = call.external_id(id);
    }
    if let Some((serial, code)) = &req.mfa {
        call = call.serial_number(*serial).token_code(code);
    }
    let what = format!("STS AssumeRole of {}", req.role_arn);
    let out = call.send().await.map_err(|e| {
        AwsError::from_sdk("AssumeRole", &what, e, |e| {
            e.is_expired_token_exception()
                .then_some(Fault::CredentialsRefused)
        })
    })?;
    let c = out
        .credentials()
        .ok_or_else(|| AwsError::answer("AssumeRole", format!("{what} returned no credentials")))?;
    let expiry = SystemTime::try_from(*c.expiration()).ok();
    Ok(Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_string()),
        expiry,
        "secret-rollout-assume-role",
    ))
}

/// One STS GetSessionToken with an IAM user's long-term `creds`: a session of
/// `duration_seconds` that carries the MFA context of `serial` and `code`.
pub async fn get_session_token(
    t: &Transport,
    region: &str,
    creds: Credentials,
    duration_seconds: i32,
    serial: &str,
    code: &str,
) -> Result<Credentials, AwsError> {
    let config = base_loader(t, region, None)
        .credentials_provider(creds)
        .load()
        .await;
    let sts = aws_sdk_sts::Client::new(&config);
    let what = "STS GetSessionToken";
    let out = sts
        .get_session_token()
        .duration_seconds(duration_seconds)
        .serial_number(serial)
        .token_code(code)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("GetSessionToken", what, e, |_| None))?;
    let c = out.credentials().ok_or_else(|| {
        AwsError::answer("GetSessionToken", format!("{what} returned no credentials"))
    })?;
    let expiry = SystemTime::try_from(*c.expiration()).ok();
    Ok(Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_string()),
        expiry,
        "secret-rollout-mfa-session",
    ))
}

/// STS GetCallerIdentity with the credentials of `config`.
pub async fn caller_identity(config: &SdkConfig) -> Result<Caller, AwsError> {
    let sts = aws_sdk_sts::Client::new(config);
    let out = sts.get_caller_identity().send().await.map_err(|e| {
        AwsError::from_sdk("GetCallerIdentity", "STS GetCallerIdentity", e, |_| None)
    })?;
    Ok(Caller {
        account: out.account().unwrap_or_default().to_string(),
        arn: out.arn().unwrap_or_default().to_string(),
        user_id: out.user_id().unwrap_or_default().to_string(),
    })
}
