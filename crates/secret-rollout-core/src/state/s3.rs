//! The S3 side of the team state: the client, conditional writes, the lock objects and
//! their renewal.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::date_time::Format;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_smithy_types::retry::ProvideErrorKind;
use aws_smithy_types::DateTime;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::aws::errors::{AwsError, Fault};
use crate::error::{Error, Reach, Result};

use super::lease::{lease_expired, s3_age, Lease, LeaseSettings};
use super::S3Location;

/// The environment variable naming S3's endpoint (moto in tests), as the SDK spells it.
pub const ENDPOINT_ENV: &str = "AWS_ENDPOINT_URL_S3";

/// The bucket, the client, and who this process is.
pub struct S3State {
    /// Where.
    pub location: S3Location,
    /// The environment (for messages and lock names).
    pub environment: String,
    /// The caller's ARN, recorded in locks.
    pub caller_arn: String,
    /// The lease of locks taken.
    pub lease: LeaseSettings,
    /// The options that reach the environment, carried by the commands a refusal or a lost
    /// lock suggests (`--env` alone unless [`S3State::with_reach`] gives what was typed).
    pub reach: Reach,
    client: aws_sdk_s3::Client,
}

/// What an endpoint setting says, for S3: `AWS_ENDPOINT_URL_S3`, else the tool's
/// `--endpoint-url`, else the SDK's own rules.
fn endpoint(flag: Option<&str>) -> Option<String> {
    std::env::var(ENDPOINT_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .or_else(|| flag.map(str::to_string))
}

impl std::fmt::Debug for S3State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3State")
            .field("location", &self.location)
            .field("environment", &self.environment)
            .field("lease", &self.lease)
            .finish()
    }
}

impl S3State {
    /// The team state at `location` for `environment`, with a client built from `sdk`
    /// (credentials, retries) in the bucket's region (`?region=`, else `region`).
    pub fn new(
        sdk: &aws_types::SdkConfig,
        endpoint_flag: Option<&str>,
        location: S3Location,
        environment: &str,
        region: &str,
        caller_arn: &str,
    ) -> Result<S3State> {
        let lease = LeaseSettings::from_env()?;
        let mut b = aws_sdk_s3::config::Builder::from(sdk)
            .region(aws_types::region::Region::new(
                location
                    .region
                    .clone()
                    .unwrap_or_else(|| region.to_string()),
            ))
            // Checksums only where S3 requires them: emulators differ in the rest.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .retry_config(
                aws_smithy_types::retry::RetryConfig::standard()
                    .with_max_attempts(3)
                    .with_initial_backoff(Duration::from_millis(200))
                    .with_max_backoff(Duration::from_secs(2)),
            )
            .timeout_config(
                aws_smithy_types::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_attempt_timeout(Duration::from_secs(10))
                    .operation_timeout(Duration::from_secs(25))
                    .build(),
            );
        let explicit = endpoint(endpoint_flag);
        let any_endpoint = explicit.is_some()
            || sdk.endpoint_url().is_some()
            || std::env::var("AWS_ENDPOINT_URL").is_ok_and(|v| !v.is_empty());
        if let Some(url) = explicit {
            crate::aws::config::check_endpoint_url(&url).map_err(|e| Error {
                message: format!("{ENDPOINT_ENV}: {}", e.message),
                ..e
            })?;
            b = b.endpoint_url(url);
        }
        if any_endpoint {
            // Emulators (moto) answer on one host: bucket in the path.
            b = b.force_path_style(true);
        }
        Ok(S3State {
            location,
            environment: environment.to_string(),
            caller_arn: caller_arn.to_string(),
            lease,
            reach: Reach::new(vec!["--env".to_string(), environment.to_string()]),
            client: aws_sdk_s3::Client::from_conf(b.build()),
        })
    }

    /// With the options the command was given that reach the environment (`--config`,
    /// `--env`, ...), for the commands its refusals and lost locks suggest.
    pub fn with_reach(mut self, reach: Reach) -> Self {
        self.reach = reach;
        self
    }

    /// The key of the lock of `secret` (its ARN) in `environment`.
    pub fn lock_key(&self, environment: &str, secret: &str) -> String {
        format!(
            "{}locks/{}.json",
            self.location.prefix,
            crate::lock::lock_name(environment, secret)
        )
    }

    /// The prefix of every journal object.
    pub fn journal_prefix(&self) -> String {
        format!("{}journal/", self.location.prefix)
    }

    /// The key of record `seq` of a rotation.
    pub fn journal_key(&self, rotation_id: Uuid, seq: usize) -> String {
        format!("{}{rotation_id}/{seq:06}.json", self.journal_prefix())
    }

    /// An S3 failure as the user sees it: a missing bucket is configuration (exit 2),
    /// access denied is credentials (exit 3), the rest an AWS error.
    fn error<E>(&self, op: &str, key: &str, err: SdkError<E, HttpResponse>) -> Error
    where
        E: ProvideErrorMetadata + ProvideErrorKind + std::error::Error + Send + Sync + 'static,
    {
        let status = err.raw_response().map(|r| r.status().as_u16());
        let aws = AwsError::from_sdk(op, &format!("{op} {key}"), err, |_| None);
        let loc = &self.location;
        let env = &self.environment;
        if aws.code.as_deref() == Some("NoSuchBucket") {
            return aws.attach(
                Error::bad_input(format!(
                    "the state bucket {} of environment {env} does not exist",
                    loc.bucket
                ))
                .hint(format!(
                    "create it (aws s3 mb s3://{}) or fix state = \"{loc}\" in secret-rollout.toml",
                    loc.bucket
                )),
            );
        }
        if aws.fault == Fault::AccessDenied
            || (status == Some(403) && aws.fault != Fault::CredentialsRefused)
        {
            return aws.attach(
                Error::credentials(format!("access denied to the state bucket {loc} ({op})"))
                    .hint("grant s3:GetObject, s3:PutObject, s3:DeleteObject and s3:ListBucket on it (README, Team use), or sign in as someone who has them"),
            );
        }
        let message = format!("the team state {loc} failed: {}", aws.detail);
        aws.into_error(
            message,
            &format!("check state in environment {env} of secret-rollout.toml, and {ENDPOINT_ENV} if set"),
        )
    }

    /// PUT `body` at `key` on a condition; `Ok(Put::Conflict)` when it did not hold.
    pub async fn put(&self, key: &str, body: Vec<u8>, cond: Cond<'_>) -> Result<Put> {
        let date = DateCapture::default();
        let req = self
            .client
            .put_object()
            .bucket(&self.location.bucket)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(body));
        let req = match cond {
            Cond::IfNoneMatch => req.if_none_match("*"),
            Cond::IfMatch(etag) => req.if_match(etag),
        };
        match req.customize().interceptor(date.clone()).send().await {
            Ok(out) => Ok(Put::Done {
                etag: out.e_tag().unwrap_or_default().to_string(),
                date: date.get(),
            }),
            Err(e) if precondition_failed(&e) => Ok(Put::Conflict),
            Err(e) => Err(self.error("PutObject", key, e)),
        }
    }

    /// GET `key`: its bytes, ETag, Last-Modified and S3's Date; `None` if absent.
    pub async fn get(&self, key: &str) -> Result<Option<Got>> {
        let date = DateCapture::default();
        let out = match self
            .client
            .get_object()
            .bucket(&self.location.bucket)
            .key(key)
            .customize()
            .interceptor(date.clone())
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|x| x.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(self.error("GetObject", key, e)),
        };
        let etag = out.e_tag().unwrap_or_default().to_string();
        let last_modified = out.last_modified().copied();
        let body = out.body.collect().await.map_err(|e| {
            Error::aws_call(format!("GetObject {key}: the answer broke off: {e}"))
                .hint("check the network and run the command again")
        })?;
        Ok(Some(Got {
            body: body.into_bytes().to_vec(),
            etag,
            last_modified,
            date: date.get(),
        }))
    }

    /// DELETE `key` if its ETag is still `etag`; false if it changed or is gone.
    pub async fn delete_if(&self, key: &str, etag: &str) -> Result<bool> {
        match self
            .client
            .delete_object()
            .bucket(&self.location.bucket)
            .key(key)
            .if_match(etag)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if precondition_failed(&e) => Ok(false),
            Err(e) => Err(self.error("DeleteObject", key, e)),
        }
    }

    /// Every key under `prefix`.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.location.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        let mut keys = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.error("ListObjectsV2", prefix, e))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
        }
        Ok(keys)
    }
}

/// A condition on a PUT.
#[derive(Debug, Clone, Copy)]
pub enum Cond<'a> {
    /// Only if no object has the key.
    IfNoneMatch,
    /// Only if the object's ETag is this.
    IfMatch(&'a str),
}

/// What a conditional PUT did.
#[derive(Debug, Clone, PartialEq)]
pub enum Put {
    /// Written: the new ETag, and S3's Date on the answer.
    Done {
        /// The object's new ETag.
        etag: String,
        /// S3's clock.
        date: Option<DateTime>,
    },
    /// The condition did not hold: nothing written.
    Conflict,
}

/// An object read.
#[derive(Debug, Clone)]
pub struct Got {
    /// Its bytes.
    pub body: Vec<u8>,
    /// Its ETag.
    pub etag: String,
    /// When S3 last wrote it.
    pub last_modified: Option<DateTime>,
    /// S3's clock when it answered.
    pub date: Option<DateTime>,
}

/// A condition that did not hold (412), a concurrent conditional write (409), or an
/// `If-Match` on a key that is gone (404).
fn precondition_failed<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    let Some(service) = e.as_service_error() else {
        return false;
    };
    matches!(
        ProvideErrorMetadata::code(service),
        Some("PreconditionFailed" | "ConditionalRequestConflict" | "NoSuchKey")
    )
}

/// Keeps S3's `Date` response header: the clock leases are judged on.
#[derive(Debug, Clone, Default)]
struct DateCapture(Arc<Mutex<Option<DateTime>>>);

impl DateCapture {
    fn get(&self) -> Option<DateTime> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Intercept for DateCapture {
    fn name(&self) -> &'static str {
        "S3DateCapture"
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(date) = context.response().headers().get("date") {
            if let Ok(t) = DateTime::from_str(date, Format::HttpDate) {
                *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(t);
            }
        }
        Ok(())
    }
}

/// What a lock object holds: who, for which rotation, since when, for how long. Never a
/// value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// The rotation.
    pub rotation_id: Uuid,
    /// The secret locked.
    pub secret_arn: String,
    /// The environment.
    pub environment: String,
    /// Who.
    pub caller_arn: String,
    /// The machine.
    pub host: String,
    /// The process.
    pub pid: u32,
    /// When the lock was taken (the holder's clock: for people only).
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// The lease, in milliseconds.
    pub lease_ms: u64,
    /// This process's lock, so a renewal is told from a takeover.
    pub holder_id: Uuid,
    /// Renewals so far.
    #[serde(default)]
    pub renewals: u64,
}

/// A lock object found in the bucket.
#[derive(Debug, Clone)]
pub struct FoundLock {
    /// Its key.
    pub key: String,
    /// Its contents (`None`: unreadable).
    pub holder: Option<Holder>,
    /// Its ETag.
    pub etag: String,
    /// S3's time of its last write.
    pub last_modified: Option<DateTime>,
    /// S3's time when it was read.
    pub s3_now: Option<DateTime>,
}

impl FoundLock {
    fn lease(&self) -> Duration {
        self.holder
            .as_ref()
            .map_or(LeaseSettings::default().lease, |h| {
                Duration::from_millis(h.lease_ms)
            })
    }

    /// Expired on S3's clock. Without S3's times it counts as live.
    pub fn expired(&self) -> bool {
        match (self.last_modified, self.s3_now) {
            (Some(lm), Some(now)) => lease_expired(lm, now, self.lease()),
            _ => false,
        }
    }

    /// Since its last renewal, on S3's clock.
    pub fn age(&self) -> Option<Duration> {
        Some(s3_age(self.last_modified?, self.s3_now?))
    }

    /// "CALLER on HOST (pid N), rotation ID, last renewed Ns ago, lease Ls".
    pub fn describe(&self) -> String {
        let age = self.age().map_or("at an unknown time".to_string(), |a| {
            format!("{}s ago", a.as_secs())
        });
        match &self.holder {
            Some(h) => format!(
                "{} on {} (pid {}), rotation {}, started {}, last renewed {age} (S3's clock), lease {}s{}",
                h.caller_arn,
                h.host,
                h.pid,
                h.rotation_id,
                h.started_at
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default(),
                self.lease().as_secs(),
                if self.expired() { ", expired" } else { "" }
            ),
            None => format!("an unreadable lock object {}, written {age}", self.key),
        }
    }
}

/// Reads the lock of `secret` in `environment`, if any.
pub async fn find_lock(s3: &S3State, environment: &str, secret: &str) -> Result<Option<FoundLock>> {
    let key = s3.lock_key(environment, secret);
    Ok(s3.get(&key).await?.map(|got| FoundLock {
        holder: serde_json::from_slice(&got.body).ok(),
        key,
        etag: got.etag,
        last_modified: got.last_modified,
        s3_now: got.date,
    }))
}

/// Removes a lock found by [`find_lock`], unless it changed since (then refused).
pub async fn remove_lock(s3: &S3State, found: &FoundLock) -> Result<()> {
    if s3.delete_if(&found.key, &found.etag).await? {
        Ok(())
    } else {
        Err(Error::refused(format!(
            "the lock {} changed while you were asked: it was renewed or taken, so it stays",
            found.key
        ))
        .hint("run unlock again to see the holder now"))
    }
}

/// A lock held in the bucket, renewed in the background; removed when dropped.
pub struct RemoteLock {
    s3: Arc<S3State>,
    key: String,
    /// The lease, checked before every write.
    pub lease: Arc<Lease>,
    holder_id: Uuid,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for RemoteLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteLock")
            .field("key", &self.key)
            .finish()
    }
}

fn host() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// Takes the lock of `secret` in `environment` for `rotation_id`, or refuses naming its
/// holder. An expired lock (on S3's clock) is taken over with `If-Match` on its ETag.
pub async fn acquire(
    s3: &Arc<S3State>,
    environment: &str,
    secret: &str,
    rotation_id: Uuid,
) -> Result<RemoteLock> {
    let key = s3.lock_key(environment, secret);
    let holder = Holder {
        rotation_id,
        secret_arn: secret.to_string(),
        environment: environment.to_string(),
        caller_arn: s3.caller_arn.clone(),
        host: host(),
        pid: std::process::id(),
        started_at: OffsetDateTime::now_utc(),
        lease_ms: u64::try_from(s3.lease.lease.as_millis()).unwrap_or(u64::MAX),
        holder_id: Uuid::new_v4(),
        renewals: 0,
    };
    let body = encode(&holder)?;
    let mut put = s3.put(&key, body.clone(), Cond::IfNoneMatch).await?;
    if put == Put::Conflict {
        let found = find_lock(s3, environment, secret).await?;
        put = match found {
            // Removed between our PUT and our GET: one more try.
            None => s3.put(&key, body, Cond::IfNoneMatch).await?,
            Some(found) if found.expired() => {
                s3.put(&key, body, Cond::IfMatch(&found.etag)).await?
            }
            Some(found) => return Err(refusal(&s3.reach, environment, secret, &found)),
        };
        if put == Put::Conflict {
            let now = find_lock(s3, environment, secret).await?;
            return Err(match now {
                Some(found) => refusal(&s3.reach, environment, secret, &found),
                None => Error::refused(format!(
                    "another secret-rollout took and released the lock of {secret} in {environment} while this one tried"
                ))
                .hint("run the command again"),
            });
        }
    }
    let Put::Done { etag, date } = put else {
        unreachable!("conflicts returned above")
    };
    let lease = Arc::new(Lease::new(
        s3.lease,
        secret,
        environment,
        s3.reach.clone(),
        rotation_id,
        etag,
        date,
    ));
    let holder_id = holder.holder_id;
    let task = tokio::spawn(renew(s3.clone(), key.clone(), holder, lease.clone()));
    Ok(RemoteLock {
        s3: s3.clone(),
        key,
        lease,
        holder_id,
        task,
    })
}

fn encode(holder: &Holder) -> Result<Vec<u8>> {
    serde_json::to_vec(holder).map_err(|e| {
        Error::local(format!("cannot encode the lock: {e}"))
            .hint("this is a bug in secret-rollout: please report it")
    })
}

/// `secret` is the ARN: the `unlock` suggested names it whole (its last part carries the
/// ARN's random suffix, which is not the secret's name).
fn refusal(reach: &Reach, environment: &str, secret: &str, found: &FoundLock) -> Error {
    Error::refused(format!(
        "another secret-rollout holds the lock of {secret} in {environment}: {}",
        found.describe()
    ))
    .hint(held_hint(reach, secret, found))
}

/// What to do about a live lock in the bucket: the hint of the refusal, and of `plan`'s
/// line saying so. `secret` is the ARN.
pub fn held_hint(reach: &Reach, secret: &str, found: &FoundLock) -> String {
    format!(
        "wait for it to finish or for its lease to run out, then `{}`; if its holder is gone for good, `{}`",
        reach.command(&format!(
            "resume {}",
            found.holder.as_ref().map_or("ROTATION_ID".to_string(), |h| h.rotation_id.to_string())
        )),
        reach.command(&format!("unlock {secret}")),
    )
}

/// Renews the lease every `renew` until the lock is dropped or lost.
async fn renew(s3: Arc<S3State>, key: String, mut holder: Holder, lease: Arc<Lease>) {
    loop {
        tokio::time::sleep(s3.lease.renew).await;
        if lease.is_lost() {
            return;
        }
        holder.renewals += 1;
        let Ok(body) = encode(&holder) else { return };
        let previous = lease.s3_renewed_at();
        match s3.put(&key, body, Cond::IfMatch(&lease.etag())).await {
            Ok(Put::Done { etag, date }) => {
                if let (Some(before), Some(now)) = (previous, date) {
                    if lease_expired(before, now, s3.lease.lease) {
                        // Slept through it: someone may have judged it expired meanwhile.
                        lease.lose(format!(
                            "the lease ran out before it could be renewed ({}s between renewals on S3's clock)",
                            s3_age(before, now).as_secs()
                        ));
                        return;
                    }
                }
                lease.renewed(etag, date);
            }
            Ok(Put::Conflict) => {
                lease.lose("the lock object was changed or removed behind this run's back (unlock, or a takeover of an expired lease)");
                return;
            }
            Err(e) => lease.renewal_failed(e.message),
        }
    }
}

impl Drop for RemoteLock {
    fn drop(&mut self) {
        self.task.abort();
        // Only our own object: If-Match on the ETag we last wrote.
        let etag = self.lease.etag();
        let _ = super::blocking(release(&self.s3, &self.key, &etag, self.holder_id));
    }
}

/// Deletes our own lock object. A renewal cancelled while its PUT was in flight may still
/// have reached S3 and changed the ETag: then the object is read again and deleted if it
/// still carries our `holder_id` (a takeover's object carries another, and stays).
async fn release(s3: &S3State, key: &str, etag: &str, holder_id: Uuid) -> Result<()> {
    if s3.delete_if(key, etag).await? {
        return Ok(());
    }
    if let Some(got) = s3.get(key).await? {
        let ours =
            serde_json::from_slice::<Holder>(&got.body).is_ok_and(|h| h.holder_id == holder_id);
        if ours {
            s3.delete_if(key, &got.etag).await?;
        }
    }
    Ok(())
}
