//! STS: identities, roles (with MFA by TOTP), issued sessions, accepted access keys.
//!
//! Session expiry and TOTP codes use real wall-clock time (`SystemTime`), not the virtual
//! clock: the credentials and MFA codes a user types belong to the real world.

use std::collections::{BTreeMap, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

use crate::error::xml_escape;
use crate::{AwsError, Ctx, Service};

const XMLNS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
const INVALID_TOKEN: &str = "The security token included in the request is invalid.";
const EXPIRED_TOKEN: &str = "The security token included in the request is expired";
const MFA_FAILED: &str = "MultiFactorAuthentication failed with invalid MFA one time pass code.";

/// An access key the scenario lists (an IAM user's long-term key).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessKey {
    /// `AKIA...`.
    pub access_key_id: String,
    /// The secret half (the sandbox does not verify signatures; kept so tools can be
    /// configured with it).
    #[serde(default)]
    pub secret_access_key: String,
    /// The caller's ARN (`arn:aws:iam::ACCOUNT:user/NAME`); a user `sandbox` of the
    /// account when absent.
    #[serde(default)]
    pub arn: Option<String>,
    /// The caller's account; taken from `arn` (or the sandbox's) when absent.
    #[serde(default)]
    pub account: Option<String>,
}

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKey")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("arn", &self.arn)
            .finish()
    }
}

/// A role that `AssumeRole` can assume.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Role {
    /// `arn:aws:iam::ACCOUNT:role/NAME`.
    pub arn: String,
    /// The MFA device ARN callers must pass as `SerialNumber`; MFA required when set.
    #[serde(default)]
    pub mfa_serial: Option<String>,
    /// Base32 TOTP seed of that device (what an authenticator app is given).
    #[serde(default)]
    pub totp_seed: Option<String>,
    /// The role's MaxSessionDuration (default 3600).
    #[serde(default)]
    pub max_session_seconds: Option<u64>,
    /// Caller ARNs or account ids allowed to assume it; anyone when absent.
    #[serde(default)]
    pub allowed_callers: Option<Vec<String>>,
    /// The trust policy's `aws:MultiFactorAuthAge` limit, in seconds: a caller whose MFA
    /// sign-in (GetSessionToken with a code) is older is denied, as AWS denies it, with
    /// the generic "not authorized" message. A code in the AssumeRole itself is age 0.
    #[serde(default)]
    pub max_mfa_age_seconds: Option<u64>,
}

impl std::fmt::Debug for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Role")
            .field("arn", &self.arn)
            .field("mfa_serial", &self.mfa_serial)
            .field("totp_seed", &self.totp_seed.as_ref().map(|_| "<redacted>"))
            .field("max_session_seconds", &self.max_session_seconds)
            .field("allowed_callers", &self.allowed_callers)
            .field("max_mfa_age_seconds", &self.max_mfa_age_seconds)
            .finish()
    }
}

/// STS settings of a scenario.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StsConfig {
    /// Accepted long-term keys; when empty, any key is accepted.
    #[serde(default)]
    pub keys: Vec<AccessKey>,
    /// Assumable roles.
    #[serde(default)]
    pub roles: Vec<Role>,
    /// Smallest `DurationSeconds` accepted (AWS: 900). Tests lower it to get sessions
    /// that expire quickly.
    #[serde(default)]
    pub min_session_seconds: Option<u64>,
}

/// Credentials issued by AssumeRole or GetSessionToken.
#[derive(Clone)]
struct Session {
    arn: String,
    user_id: String,
    account: String,
    /// Real epoch seconds.
    expires: u64,
    /// When the MFA code of the sign-in this session carries was checked (real epoch
    /// seconds): GetSessionToken with a code. `None`: no MFA context.
    mfa_at: Option<u64>,
}

/// Who a request comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The caller's ARN.
    pub arn: String,
    /// `UserId` as GetCallerIdentity reports it.
    pub user_id: String,
    /// The caller's account.
    pub account: String,
}

/// STS state.
#[derive(Default)]
pub struct Sts {
    config: StsConfig,
    sessions: HashMap<String, Session>,
    /// The access key id of the last session issued (for the call log).
    last_issued: Option<String>,
}

impl std::fmt::Debug for Sts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sts")
            .field("config", &self.config)
            .field("sessions", &self.sessions.len())
            .finish()
    }
}

/// Real wall-clock now, epoch seconds.
pub fn wall_clock_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The RFC 6238 TOTP code (HMAC-SHA1, 30-second steps, 6 digits) of a base32 seed at a
/// time. `Err` if the seed is not base32.
pub fn totp_code(seed_base32: &str, unix_secs: u64) -> Result<String, String> {
    let cleaned: String = seed_base32
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '=')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let key = data_encoding::BASE32_NOPAD
        .decode(cleaned.as_bytes())
        .map_err(|e| format!("TOTP seed is not base32: {e}"))?;
    let mut mac = Hmac::<Sha1>::new_from_slice(&key).map_err(|e| format!("bad TOTP key: {e}"))?;
    mac.update(&(unix_secs / 30).to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = (digest[19] & 0x0f) as usize;
    let bin = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    Ok(format!("{:06}", bin % 1_000_000))
}

/// A stable IAM-style unique id (`AIDA...`, `AROA...`) derived from an ARN.
fn unique_id(prefix: &str, arn: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let digest = Sha1::digest(arn.as_bytes());
    let tail: String = digest
        .iter()
        .take(17)
        .map(|b| ALPHABET[(*b as usize) % 32] as char)
        .collect();
    format!("{prefix}{tail}")
}

fn account_of_arn(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| !a.is_empty())
}

fn random_string(ctx: &mut Ctx<'_>, alphabet: &[u8], len: usize) -> String {
    (0..len)
        .map(|_| alphabet[ctx.rng.random_range(0..alphabet.len())] as char)
        .collect()
}

fn iso8601(secs: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs as i64)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// What the call log shows of an STS request: the role, the MFA device, the duration,
/// whether a code was sent (never the code), and the access key id it was signed with
/// (an id, not a secret: CloudTrail shows it too). The key a call issued is added as
/// `issued` once it succeeds.
pub fn call_subject(
    params: &BTreeMap<String, String>,
    access_key: Option<&str>,
) -> serde_json::Value {
    let mut subject = serde_json::Map::new();
    for key in ["RoleArn", "SerialNumber", "DurationSeconds"] {
        if let Some(v) = params.get(key) {
            subject.insert(key.to_string(), v.clone().into());
        }
    }
    subject.insert(
        "mfa_code".to_string(),
        params.contains_key("TokenCode").into(),
    );
    if let Some(k) = access_key {
        subject.insert("signed_with".to_string(), k.into());
    }
    serde_json::Value::Object(subject)
}

/// A temporary key id, secret and session token.
fn new_keys(ctx: &mut Ctx<'_>) -> (String, String, String) {
    const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    const SECRET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let key_id = format!("ASIA{}", random_string(ctx, UPPER, 16));
    let secret = random_string(ctx, SECRET, 40);
    let token = format!("FwoGZXIvYXdzE{}", random_string(ctx, SECRET, 200));
    (key_id, secret, token)
}

/// Whether `code` is the device's code now (±1 step, as AWS tolerates small clock drift);
/// a device without a seed accepts any 6-digit code.
fn code_ok(seed: Option<&str>, code: Option<&String>, wall_secs: u64) -> bool {
    match (seed, code) {
        (Some(seed), Some(code)) => [wall_secs.saturating_sub(30), wall_secs, wall_secs + 30]
            .iter()
            .any(|t| totp_code(seed, *t).is_ok_and(|c| &c == code)),
        (None, Some(code)) => code.len() == 6 && code.chars().all(|c| c.is_ascii_digit()),
        (_, None) => false,
    }
}

fn access_denied(message: impl Into<String>) -> AwsError {
    AwsError::with_status("AccessDenied", message, 403)
}

fn validation(message: impl Into<String>) -> AwsError {
    AwsError::new("ValidationError", message)
}

impl Sts {
    /// STS configured from a scenario.
    pub fn new(config: StsConfig) -> Self {
        Self {
            config,
            sessions: HashMap::new(),
            last_issued: None,
        }
    }

    /// The configuration (keys, roles).
    pub fn config(&self) -> &StsConfig {
        &self.config
    }

    /// Makes every issued session expired (tests of credential expiry).
    pub fn expire_sessions(&mut self) {
        for s in self.sessions.values_mut() {
            s.expires = 0;
        }
    }

    /// Number of sessions issued so far.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Makes the MFA sign-in of every issued session `secs` older (tests of a trust
    /// policy's `aws:MultiFactorAuthAge`, without waiting).
    pub fn age_mfa(&mut self, secs: u64) {
        for s in self.sessions.values_mut() {
            if let Some(at) = s.mfa_at.as_mut() {
                *at = at.saturating_sub(secs);
            }
        }
    }

    /// Checks the request's access key against the real clock. `Err` is the AWS error to
    /// answer with, named as `service` names it.
    pub fn authenticate(
        &self,
        service: Service,
        access_key: Option<&str>,
    ) -> Result<Caller, AwsError> {
        self.authenticate_at(service, access_key, wall_clock_secs())
    }

    /// [`Sts::authenticate`] at a given real time (epoch seconds).
    pub fn authenticate_at(
        &self,
        service: Service,
        access_key: Option<&str>,
        wall_secs: u64,
    ) -> Result<Caller, AwsError> {
        let sts = service == Service::Sts;
        let invalid = || {
            if sts {
                AwsError::with_status("InvalidClientTokenId", INVALID_TOKEN, 403)
            } else {
                AwsError::new("UnrecognizedClientException", INVALID_TOKEN)
            }
        };
        let Some(key) = access_key else {
            if self.config.keys.is_empty() {
                return Ok(Self::unnamed_caller());
            }
            return Err(if sts {
                AwsError::with_status(
                    "MissingAuthenticationToken",
                    "Request is missing Authentication Token",
                    403,
                )
            } else {
                AwsError::new(
                    "MissingAuthenticationTokenException",
                    "Missing Authentication Token",
                )
            });
        };
        if let Some(s) = self.sessions.get(key) {
            if s.expires <= wall_secs {
                return Err(if sts {
                    AwsError::with_status("ExpiredToken", EXPIRED_TOKEN, 403)
                } else {
                    AwsError::new("ExpiredTokenException", EXPIRED_TOKEN)
                });
            }
            return Ok(Caller {
                arn: s.arn.clone(),
                user_id: s.user_id.clone(),
                account: s.account.clone(),
            });
        }
        if self.config.keys.is_empty() {
            return Ok(Self::unnamed_caller());
        }
        match self.config.keys.iter().find(|k| k.access_key_id == key) {
            Some(k) => {
                let account = k
                    .account
                    .clone()
                    .or_else(|| {
                        k.arn
                            .as_deref()
                            .and_then(account_of_arn)
                            .map(str::to_string)
                    })
                    .unwrap_or_default();
                let arn = k
                    .arn
                    .clone()
                    .unwrap_or_else(|| format!("arn:aws:iam::{account}:user/sandbox"));
                Ok(Caller {
                    user_id: unique_id("AIDA", &arn),
                    arn,
                    account,
                })
            }
            None => Err(invalid()),
        }
    }

    /// The identity of any key when no keys are listed: empty fields, filled in by
    /// `caller` with the sandbox's account (`user/sandbox`).
    fn unnamed_caller() -> Caller {
        Caller {
            arn: String::new(),
            user_id: String::new(),
            account: String::new(),
        }
    }

    /// The ARN of whoever signs with `access_key` (`user/sandbox` of the sandbox's account
    /// when keys are not checked); empty when the key is not accepted.
    pub fn caller_arn(&self, ctx: &Ctx<'_>, access_key: Option<&str>) -> String {
        self.caller(ctx, access_key)
            .map(|c| c.arn)
            .unwrap_or_default()
    }

    fn caller(&self, ctx: &Ctx<'_>, access_key: Option<&str>) -> Result<Caller, AwsError> {
        let mut c = self.authenticate(Service::Sts, access_key)?;
        if c.account.is_empty() {
            c.account = ctx.account.to_string();
        }
        if c.arn.is_empty() {
            c.arn = format!(
                "arn:{}:iam::{}:user/sandbox",
                crate::secrets::partition_for(ctx.region),
                c.account
            );
        }
        if c.user_id.is_empty() {
            c.user_id = unique_id("AIDA", &c.arn);
        }
        Ok(c)
    }

    /// Runs one STS action; `Ok` is the XML response document.
    pub fn handle(
        &mut self,
        ctx: &mut Ctx<'_>,
        access_key: Option<&str>,
        action: &str,
        params: &BTreeMap<String, String>,
    ) -> Result<String, AwsError> {
        let request_id = crate::secrets::uuid_from(ctx);
        let result = match action {
            "GetCallerIdentity" => {
                let c = self.caller(ctx, access_key)?;
                format!(
                    "<GetCallerIdentityResult><Arn>{}</Arn><UserId>{}</UserId><Account>{}</Account></GetCallerIdentityResult>",
                    xml_escape(&c.arn),
                    xml_escape(&c.user_id),
                    xml_escape(&c.account)
                )
            }
            "AssumeRole" => self.assume_role(ctx, access_key, params, wall_clock_secs())?,
            "GetSessionToken" => {
                self.get_session_token(ctx, access_key, params, wall_clock_secs())?
            }
            _ => {
                return Err(AwsError::new(
                    "InvalidAction",
                    format!("Could not find operation {action} for version 2011-06-15"),
                ))
            }
        };
        Ok(format!(
            "<{action}Response xmlns=\"{XMLNS}\">{result}<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{action}Response>"
        ))
    }

    /// The access key id of the last session issued, taken (the call log names it).
    pub fn take_last_issued(&mut self) -> Option<String> {
        self.last_issued.take()
    }

    /// The TOTP seed of the MFA device `serial`, from the roles that name it.
    fn seed_of(&self, serial: &str) -> Option<String> {
        self.config
            .roles
            .iter()
            .filter(|r| r.mfa_serial.as_deref() == Some(serial))
            .find_map(|r| r.totp_seed.clone())
    }

    /// STS GetSessionToken: an IAM user's long-term key gets a session (12 hours by
    /// default, 15 minutes to 36 hours) that carries the MFA context when a code is given.
    fn get_session_token(
        &mut self,
        ctx: &mut Ctx<'_>,
        access_key: Option<&str>,
        params: &BTreeMap<String, String>,
        wall_secs: u64,
    ) -> Result<String, AwsError> {
        let caller = self.caller(ctx, access_key)?;
        if access_key.is_some_and(|k| self.sessions.contains_key(k)) {
            return Err(access_denied(
                "Cannot call GetSessionToken with session credentials",
            ));
        }
        let min = self.config.min_session_seconds.unwrap_or(900);
        let duration = match params.get("DurationSeconds") {
            None => 43_200,
            Some(d) => {
                let d: u64 = d.parse().map_err(|_| {
                    validation(format!(
                        "1 validation error detected: Value '{}' at 'durationSeconds' failed to satisfy constraint: Member must be a number",
                        xml_escape(d)
                    ))
                })?;
                if d < min || d > 129_600 {
                    return Err(validation(format!(
                        "1 validation error detected: Value '{d}' at 'durationSeconds' failed to satisfy constraint: Member must have value between {min} and 129600"
                    )));
                }
                d
            }
        };
        let mfa_at = match (params.get("SerialNumber"), params.get("TokenCode")) {
            (None, None) => None,
            (Some(serial), code) => {
                if !code_ok(self.seed_of(serial).as_deref(), code, wall_secs) {
                    return Err(access_denied(MFA_FAILED));
                }
                Some(wall_secs)
            }
            (None, Some(_)) => return Err(access_denied(MFA_FAILED)),
        };
        let (key_id, secret, token) = new_keys(ctx);
        let expires = wall_secs + duration;
        self.sessions.insert(
            key_id.clone(),
            Session {
                arn: caller.arn,
                user_id: caller.user_id,
                account: caller.account,
                expires,
                mfa_at,
            },
        );
        self.last_issued = Some(key_id.clone());
        Ok(format!(
            "<GetSessionTokenResult><Credentials><AccessKeyId>{key_id}</AccessKeyId><SecretAccessKey>{}</SecretAccessKey><SessionToken>{}</SessionToken><Expiration>{}</Expiration></Credentials></GetSessionTokenResult>",
            xml_escape(&secret),
            xml_escape(&token),
            iso8601(expires)
        ))
    }

    fn assume_role(
        &mut self,
        ctx: &mut Ctx<'_>,
        access_key: Option<&str>,
        params: &BTreeMap<String, String>,
        wall_secs: u64,
    ) -> Result<String, AwsError> {
        let caller = self.caller(ctx, access_key)?;
        let role_arn = params.get("RoleArn").ok_or_else(|| {
            validation("1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null")
        })?;
        let session_name = params.get("RoleSessionName").ok_or_else(|| {
            validation("1 validation error detected: Value null at 'roleSessionName' failed to satisfy constraint: Member must not be null")
        })?;
        if !(2..=64).contains(&session_name.len())
            || !session_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
        {
            return Err(validation(format!(
                "1 validation error detected: Value '{}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*",
                xml_escape(session_name)
            )));
        }
        let denied = || {
            access_denied(format!(
                "User: {} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
                caller.arn
            ))
        };
        let role = self
            .config
            .roles
            .iter()
            .find(|r| &r.arn == role_arn)
            .cloned()
            .ok_or_else(denied)?;
        if let Some(allowed) = &role.allowed_callers {
            if !allowed
                .iter()
                .any(|a| *a == caller.arn || *a == caller.account)
            {
                return Err(denied());
            }
        }
        let min = self.config.min_session_seconds.unwrap_or(900);
        let max = role.max_session_seconds.unwrap_or(3600);
        let duration = match params.get("DurationSeconds") {
            None => 3600.min(max).max(min),
            Some(d) => {
                let d: u64 = d.parse().map_err(|_| {
                    validation(format!(
                        "1 validation error detected: Value '{}' at 'durationSeconds' failed to satisfy constraint: Member must be a number",
                        xml_escape(d)
                    ))
                })?;
                if d < min {
                    return Err(validation(format!(
                        "1 validation error detected: Value '{d}' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to {min}"
                    )));
                }
                if d > max {
                    return Err(validation(
                        "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
                    ));
                }
                d
            }
        };
        // The MFA context of the caller's session (GetSessionToken with a code), if any.
        let session_mfa_at = access_key
            .and_then(|k| self.sessions.get(k))
            .and_then(|s| s.mfa_at);
        let mut mfa_at = session_mfa_at;
        if params.contains_key("TokenCode") || params.contains_key("SerialNumber") {
            // A code in the request is checked whatever the role wants, as AWS does.
            let serial = params.get("SerialNumber").map(String::as_str);
            let serial_ok = match (&role.mfa_serial, serial) {
                (Some(want), Some(got)) => want == got,
                (None, _) => true,
                (Some(_), None) => false,
            };
            let seed = role
                .totp_seed
                .clone()
                .or_else(|| serial.and_then(|s| self.seed_of(s)));
            if !serial_ok || !code_ok(seed.as_deref(), params.get("TokenCode"), wall_secs) {
                return Err(access_denied(MFA_FAILED));
            }
            mfa_at = Some(wall_secs);
        } else if role.mfa_serial.is_some() || role.totp_seed.is_some() {
            // The trust policy wants MFA: the caller's session must carry it.
            if session_mfa_at.is_none() {
                return Err(access_denied(MFA_FAILED));
            }
        }
        if let Some(max_age) = role.max_mfa_age_seconds {
            // aws:MultiFactorAuthAge: AWS says only "not authorized", never why.
            match mfa_at {
                Some(at) if wall_secs.saturating_sub(at) <= max_age => {}
                _ => return Err(denied()),
            }
        }
        let role_name = role_arn.rsplit('/').next().unwrap_or(role_arn);
        let role_account = account_of_arn(role_arn).unwrap_or(ctx.account).to_string();
        let assumed_arn = format!(
            "arn:{}:sts::{role_account}:assumed-role/{role_name}/{session_name}",
            crate::secrets::partition_for(ctx.region)
        );
        let role_id = format!("{}:{session_name}", unique_id("AROA", role_arn));
        let (key_id, secret, token) = new_keys(ctx);
        let expires = wall_secs + duration;
        self.sessions.insert(
            key_id.clone(),
            Session {
                arn: assumed_arn.clone(),
                user_id: role_id.clone(),
                account: role_account,
                expires,
                // A role session carries no MFA context onwards (role chaining).
                mfa_at: None,
            },
        );
        self.last_issued = Some(key_id.clone());
        Ok(format!(
            "<AssumeRoleResult><AssumedRoleUser><Arn>{}</Arn><AssumedRoleId>{}</AssumedRoleId></AssumedRoleUser>\
<Credentials><AccessKeyId>{key_id}</AccessKeyId><SecretAccessKey>{}</SecretAccessKey><SessionToken>{}</SessionToken><Expiration>{}</Expiration></Credentials>\
<PackedPolicySize>0</PackedPolicySize></AssumeRoleResult>",
            xml_escape(&assumed_arn),
            xml_escape(&role_id),
            xml_escape(&secret),
            xml_escape(&token),
            iso8601(expires)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totp_matches_rfc6238_vectors() {
        // RFC 6238 appendix B, SHA1 key "12345678901234567890" (base32 below), 8 digits
        // there; the low 6 digits are what a 6-digit authenticator shows.
        let seed = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        assert_eq!(totp_code(seed, 59).unwrap(), "287082");
        assert_eq!(totp_code(seed, 1_111_111_109).unwrap(), "081804");
        assert_eq!(totp_code(seed, 1_234_567_890).unwrap(), "005924");
        assert_eq!(totp_code(seed, 2_000_000_000).unwrap(), "279037");
        assert!(totp_code("not base32!", 0).is_err());
    }

    #[test]
    fn listed_keys_only_and_expiry() {
        let mut sts = Sts::new(StsConfig {
            keys: vec![AccessKey {
                access_key_id: "AKIAEXAMPLE".into(),
                secret_access_key: "s".into(),
                arn: Some("arn:aws:iam::111122223333:user/alice".into()),
                account: None,
            }],
            ..Default::default()
        });
        let c = sts.authenticate(Service::Ecs, Some("AKIAEXAMPLE")).unwrap();
        assert_eq!(c.account, "111122223333");
        let e = sts
            .authenticate(Service::Ecs, Some("AKIAOTHER"))
            .unwrap_err();
        assert_eq!(e.code, "UnrecognizedClientException");
        let e = sts
            .authenticate(Service::Sts, Some("AKIAOTHER"))
            .unwrap_err();
        assert_eq!((e.code.as_str(), e.status), ("InvalidClientTokenId", 403));
        sts.sessions.insert(
            "ASIAX".into(),
            Session {
                arn: "a".into(),
                user_id: "u".into(),
                account: "1".into(),
                expires: 100,
                mfa_at: None,
            },
        );
        assert!(sts.authenticate_at(Service::Ecs, Some("ASIAX"), 99).is_ok());
        let e = sts
            .authenticate_at(Service::Ecs, Some("ASIAX"), 100)
            .unwrap_err();
        assert_eq!(e.code, "ExpiredTokenException");
        let e = sts
            .authenticate_at(Service::Sts, Some("ASIAX"), 100)
            .unwrap_err();
        assert_eq!((e.code.as_str(), e.status), ("ExpiredToken", 403));
    }

    #[test]
    fn any_key_accepted_when_none_listed() {
        let sts = Sts::default();
        assert!(sts.authenticate(Service::Ecs, Some("AKIAANY")).is_ok());
        assert!(sts.authenticate(Service::Ecs, None).is_ok());
    }
}
