//! A tiny fake STS (query protocol, AssumeRole + GetCallerIdentity) on a free loopback
//! port, and fixture config files, for the credential tests.
//!
//! Stand-in until the sandbox's STS (TOTP-checked MFA) is merged: it accepts one fixed
//! code and records every request so tests can check what was sent and signed with.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use secret_rollout_core::credentials::{AwsOptions, EnvVars, MfaCodeSource};

/// The identity account's long-term key (in the credentials fixture).
pub const SOURCE_KEY: &str = "AKIAIDENTITY0000";
/// Its secret.
pub const SOURCE_SECRET: &str = "identity-secret-long-term";
/// The role the `production` profile assumes.
pub const ROLE: &str = "arn:aws:iam::123456789012:role/deploy";
/// The MFA device.
pub const SERIAL: &str = "arn:aws:iam::111111111111:mfa/alice";
/// The code the fake accepts.
pub const GOOD_CODE: &str = "123456";

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Seen {
    /// `Action`.
    pub action: String,
    /// All form parameters.
    pub params: BTreeMap<String, String>,
    /// The access key id the request was signed with.
    pub access_key: Option<String>,
}

#[derive(Default)]
struct State {
    seen: Vec<Seen>,
    /// Issued temporary key -> role ARN.
    issued: BTreeMap<String, String>,
    /// Extra long-term keys accepted, with the ARN they are.
    users: BTreeMap<String, String>,
    /// Lifetime of issued sessions (seconds), when shorter than DurationSeconds.
    lifetime: Option<i64>,
}

/// The fake STS.
#[derive(Clone)]
pub struct FakeSts {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl FakeSts {
    /// Starts the fake on a free port (on the test's runtime).
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        state.lock().unwrap().users.insert(
            SOURCE_KEY.into(),
            "arn:aws:iam::111111111111:user/alice".into(),
        );
        let st = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let st = st.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(req, st.clone()));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Self { url, state }
    }

    /// Issued sessions expire after `secs` (to test expiry).
    pub fn set_lifetime(&self, secs: i64) {
        self.state.lock().unwrap().lifetime = Some(secs);
    }

    /// Accepts `key` as a long-term or injected key for `arn`.
    pub fn accept_key(&self, key: &str, arn: &str) {
        self.state
            .lock()
            .unwrap()
            .users
            .insert(key.into(), arn.into());
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// The AssumeRole requests so far.
    pub fn assume_roles(&self) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.action == "AssumeRole")
            .collect()
    }
}

async fn handle(
    req: Request<Incoming>,
    state: Arc<Mutex<State>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let access_key = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split("Credential=").nth(1))
        .and_then(|v| v.split('/').next())
        .map(str::to_string);
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let params: BTreeMap<String, String> = serde_urlencoded_pairs(&body);
    let action = params.get("Action").cloned().unwrap_or_default();
    let mut st = state.lock().unwrap();
    st.seen.push(Seen {
        action: action.clone(),
        params: params.clone(),
        access_key: access_key.clone(),
    });
    let key = access_key.unwrap_or_default();
    if key.starts_with("ASIAEXPIRED") {
        return Ok(error(
            400,
            "ExpiredToken",
            "The security token included in the request is expired",
        ));
    }
    let known = st.users.contains_key(&key) || st.issued.contains_key(&key);
    if !known {
        return Ok(error(
            403,
            "InvalidClientTokenId",
            "The security token included in the request is invalid.",
        ));
    }
    match action.as_str() {
        "GetCallerIdentity" => {
            let arn = match st.issued.get(&key) {
                Some(role) => {
                    let name = role.rsplit('/').next().unwrap_or_default();
                    let account = role.split(':').nth(4).unwrap_or_default();
                    format!("arn:aws:sts::{account}:assumed-role/{name}/session")
                }
                None => st.users[&key].clone(),
            };
            let account = arn.split(':').nth(4).unwrap_or_default().to_string();
            Ok(ok(format!(
                "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult><Arn>{arn}</Arn><UserId>AIDAFAKE:session</UserId><Account>{account}</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></GetCallerIdentityResponse>"
            )))
        }
        "AssumeRole" => {
            let role = params.get("RoleArn").cloned().unwrap_or_default();
            if let Some(code) = params.get("TokenCode") {
                if code != GOOD_CODE
                    || params.get("SerialNumber").map(String::as_str) != Some(SERIAL)
                {
                    return Ok(error(
                        403,
                        "AccessDenied",
                        "MultiFactorAuthentication failed with invalid MFA one time pass code. ",
                    ));
                }
            } else if role == ROLE {
                return Ok(error(403, "AccessDenied", &format!("User: arn:aws:iam::111111111111:user/alice is not authorized to perform: sts:AssumeRole on resource: {role}")));
            }
            if role.contains("forbidden") {
                return Ok(error(403, "AccessDenied", &format!("User: arn:aws:iam::111111111111:user/alice is not authorized to perform: sts:AssumeRole on resource: {role}")));
            }
            let n = st.issued.len();
            let akid = format!("ASIAFAKE{n:08}");
            st.issued.insert(akid.clone(), role.clone());
            let duration: i64 = params
                .get("DurationSeconds")
                .and_then(|d| d.parse().ok())
                .unwrap_or(3600);
            let life = st.lifetime.map_or(duration, |l| l.min(duration));
            let exp = time::OffsetDateTime::now_utc() + time::Duration::seconds(life);
            let exp = exp
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap();
            Ok(ok(format!(
                "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleResult><Credentials><AccessKeyId>{akid}</AccessKeyId><SecretAccessKey>temp-secret-{n}</SecretAccessKey><SessionToken>temp-token-{n}</SessionToken><Expiration>{exp}</Expiration></Credentials><AssumedRoleUser><AssumedRoleId>AROAFAKE:s</AssumedRoleId><Arn>{role}/s</Arn></AssumedRoleUser></AssumeRoleResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></AssumeRoleResponse>"
            )))
        }
        other => Ok(error(
            400,
            "InvalidAction",
            &format!("Could not find operation {other}"),
        )),
    }
}

fn serde_urlencoded_pairs(body: &[u8]) -> BTreeMap<String, String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .unwrap_or_default()
        .into_iter()
        .collect()
}

fn ok(xml: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(200)
        .header("content-type", "text/xml")
        .body(Full::new(Bytes::from(xml)))
        .unwrap()
}

fn error(status: u16, code: &str, message: &str) -> Response<Full<Bytes>> {
    let xml = format!(
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>r</RequestId></ErrorResponse>"
    );
    Response::builder()
        .status(status)
        .header("content-type", "text/xml")
        .body(Full::new(Bytes::from(xml)))
        .unwrap()
}

/// The config files of a typical user, in a tempdir.
pub struct Fixture {
    /// Holds the files.
    pub dir: tempfile::TempDir,
}

/// `~/.aws/config` of the fixture.
pub const CONFIG: &str = "\
[default]
region = us-east-1

[profile identity]
region = eu-west-1

[profile production]
region = eu-west-1
role_arn = arn:aws:iam::123456789012:role/deploy
source_profile = identity
mfa_serial = arn:aws:iam::111111111111:mfa/alice

[profile forbidden]
region = eu-west-1
role_arn = arn:aws:iam::123456789012:role/forbidden
source_profile = identity
mfa_serial = arn:aws:iam::111111111111:mfa/alice

[profile readonly]
region = eu-north-1
role_arn = arn:aws:iam::123456789012:role/readonly
source_profile = identity
";

impl Fixture {
    /// Writes the fixture files.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config"), CONFIG).unwrap();
        std::fs::write(
            dir.path().join("credentials"),
            format!("[identity]\naws_access_key_id = {SOURCE_KEY}\naws_secret_access_key = {SOURCE_SECRET}\n"),
        )
        .unwrap();
        Self { dir }
    }

    /// The cache directory.
    pub fn cache_dir(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    /// Environment: fixture files, cache dir, home, user; nothing else.
    pub fn env(&self) -> EnvVars {
        let p = |f: &str| self.dir.path().join(f).display().to_string();
        EnvVars::from_pairs([
            ("HOME", p("home").as_str()),
            ("USER", "alice"),
            ("AWS_CONFIG_FILE", p("config").as_str()),
            ("AWS_SHARED_CREDENTIALS_FILE", p("credentials").as_str()),
            ("SECRET_ROLLOUT_CACHE_DIR", p("cache").as_str()),
            // The fake answers AssumeRole only: these tests sign in with the code in
            // AssumeRole. MFA sessions (GetSessionToken) are tested on the sandbox's STS
            // (tests/long_session.rs).
            ("SECRET_ROLLOUT_MFA_SESSION_DURATION", "off"),
        ])
    }

    /// The files in the cache dir.
    pub fn cache_files(&self) -> Vec<PathBuf> {
        files_in(&self.cache_dir())
    }
}

/// Files directly in `dir` (none if it does not exist).
pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// An MFA code source that answers `code` and counts how often it was asked.
pub fn counting_code(code: &'static str) -> (MfaCodeSource, Arc<AtomicUsize>) {
    let asked = Arc::new(AtomicUsize::new(0));
    let a = asked.clone();
    let src = MfaCodeSource::Callback(Arc::new(move |serial: &str| {
        assert_eq!(serial, SERIAL, "asked for the wrong device");
        a.fetch_add(1, Ordering::SeqCst);
        Ok(code.to_string())
    }));
    (src, asked)
}

/// Options for `profile` against the fake.
pub fn options(sts: &FakeSts, profile: Option<&str>, mfa: MfaCodeSource) -> AwsOptions {
    AwsOptions {
        profile: profile.map(str::to_string),
        endpoint_url: Some(sts.url.clone()),
        mfa_code: mfa,
        // The fake never fails transiently: one attempt keeps error tests fast.
        max_attempts: Some(1),
        ..AwsOptions::default()
    }
}
