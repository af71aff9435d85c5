//! The lease on an S3 lock: how long it lasts, when it counts as expired, and the state a
//! run checks before every write.
//!
//! A lock object is live while `Date - Last-Modified <= lease`, both on S3's clock (the
//! `Date` header of S3's answer and the object's `Last-Modified`), never the laptop's. The
//! holder renews it every `renew` with `If-Match` on its ETag, and counts itself out once
//! it has gone a lease (less a margin) without a successful renewal, measured from S3's
//! answer to the last renewal: by then another process may judge the lock expired and take
//! it over. The time is measured with the monotonic clock and with the wall clock, and the
//! longer of the two counts: a laptop that slept has a monotonic clock that stood still.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use aws_smithy_types::DateTime;
use uuid::Uuid;

use crate::error::{Error, Kind, Reach, Result};

/// The environment variable that sets the lease (a duration: `120s`, `2m`).
pub const LEASE_ENV: &str = "SECRET_ROLLOUT_LOCK_LEASE";
/// The environment variable that sets how often the lease is renewed.
pub const RENEW_ENV: &str = "SECRET_ROLLOUT_LOCK_RENEW";

/// How long a lock's lease lasts and how often it is renewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseSettings {
    /// Without renewal for this long the lock is expired (default 2 minutes).
    pub lease: Duration,
    /// Renewed this often (default 30 s).
    pub renew: Duration,
}

impl Default for LeaseSettings {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(120),
            renew: Duration::from_secs(30),
        }
    }
}

impl LeaseSettings {
    /// The defaults, changed by [`LEASE_ENV`] and [`RENEW_ENV`] (tests use short ones).
    pub fn from_env() -> Result<Self> {
        Self::from_values(
            std::env::var(LEASE_ENV).ok().as_deref(),
            std::env::var(RENEW_ENV).ok().as_deref(),
        )
    }

    fn from_values(lease: Option<&str>, renew: Option<&str>) -> Result<Self> {
        let parse = |name: &str, v: &str| {
            humantime::parse_duration(v.trim()).map_err(|e| {
                Error::bad_input(format!("{name}={v:?} is not a duration: {e}")).hint(format!(
                    "set {name} to a duration such as 2m or 30s, or unset it"
                ))
            })
        };
        let mut s = Self::default();
        if let Some(v) = lease.filter(|v| !v.trim().is_empty()) {
            s.lease = parse(LEASE_ENV, v)?;
        }
        if let Some(v) = renew.filter(|v| !v.trim().is_empty()) {
            s.renew = parse(RENEW_ENV, v)?;
        }
        if s.lease < Duration::from_secs(2) || s.renew.is_zero() || s.renew * 2 > s.lease {
            return Err(Error::bad_input(format!(
                "a lock lease of {:?} renewed every {:?} cannot work",
                s.lease, s.renew
            ))
            .hint(format!(
                "the lease must be at least 2s and at least twice the renewal period ({LEASE_ENV}, {RENEW_ENV})"
            )));
        }
        Ok(s)
    }

    /// How long before the lease runs out the holder counts itself out: S3 stamps
    /// `Last-Modified` in whole seconds before its answer reaches us.
    pub fn margin(&self) -> Duration {
        (self.lease / 10).clamp(Duration::from_secs(1), Duration::from_secs(5))
    }
}

/// Whether a lock last written at `last_modified` has expired at `s3_now` (S3's `Date`),
/// for a holder that asked for `lease`. Both times are S3's.
pub fn lease_expired(last_modified: DateTime, s3_now: DateTime, lease: Duration) -> bool {
    let age_ms =
        s3_now.to_millis().unwrap_or(i64::MAX) - last_modified.to_millis().unwrap_or(i64::MIN / 2);
    age_ms > i64::try_from(lease.as_millis()).unwrap_or(i64::MAX)
}

/// How long since S3's clock said `then`, now that it says `now` (zero if it went back).
pub fn s3_age(then: DateTime, now: DateTime) -> Duration {
    let ms = now.to_millis().unwrap_or(0) - then.to_millis().unwrap_or(0);
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// Whether a holder whose last renewal was answered `since` ago has lost its lease.
pub fn holder_out(since: Duration, settings: &LeaseSettings) -> bool {
    since + settings.margin() >= settings.lease
}

#[derive(Debug)]
struct Inner {
    etag: String,
    /// S3's `Date` on the answer to the last successful renewal (or the creation).
    s3_at: Option<DateTime>,
    local_at: Instant,
    wall_at: SystemTime,
    lost: Option<String>,
    last_error: Option<String>,
}

/// A held lease: fed by the renewal task, checked before every write.
#[derive(Debug)]
pub struct Lease {
    /// The lease's settings.
    pub settings: LeaseSettings,
    /// The secret locked (for messages).
    pub secret: String,
    /// The environment.
    pub environment: String,
    /// The options that reach it, for the `resume` a lost lease suggests.
    pub reach: Reach,
    /// The rotation holding it.
    pub rotation_id: Uuid,
    inner: Mutex<Inner>,
}

impl Lease {
    /// A lease just taken: the lock object has `etag`, S3 answered at `s3_at`.
    pub fn new(
        settings: LeaseSettings,
        secret: &str,
        environment: &str,
        reach: Reach,
        rotation_id: Uuid,
        etag: String,
        s3_at: Option<DateTime>,
    ) -> Self {
        Self {
            settings,
            secret: secret.to_string(),
            environment: environment.to_string(),
            reach,
            rotation_id,
            inner: Mutex::new(Inner {
                etag,
                s3_at,
                local_at: Instant::now(),
                wall_at: SystemTime::now(),
                lost: None,
                last_error: None,
            }),
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The lock object's current ETag.
    pub fn etag(&self) -> String {
        self.inner().etag.clone()
    }

    /// S3's time of the last successful renewal.
    pub fn s3_renewed_at(&self) -> Option<DateTime> {
        self.inner().s3_at
    }

    /// A renewal succeeded: the object now has `etag`, S3 answered at `s3_at`.
    pub fn renewed(&self, etag: String, s3_at: Option<DateTime>) {
        let mut i = self.inner();
        if i.lost.is_some() {
            return;
        }
        i.etag = etag;
        i.s3_at = s3_at.or(i.s3_at);
        i.local_at = Instant::now();
        i.wall_at = SystemTime::now();
        i.last_error = None;
    }

    /// A renewal failed in a way that may heal (S3 unreachable): remembered for the message.
    pub fn renewal_failed(&self, why: String) {
        self.inner().last_error = Some(why);
    }

    /// The lease is gone for good (the object changed behind our back).
    pub fn lose(&self, why: impl Into<String>) {
        let mut i = self.inner();
        if i.lost.is_none() {
            i.lost = Some(why.into());
        }
    }

    /// Whether it was lost (by [`Lease::lose`] or by running out).
    pub fn is_lost(&self) -> bool {
        self.why_lost().is_some()
    }

    fn why_lost(&self) -> Option<String> {
        let i = self.inner();
        if let Some(why) = &i.lost {
            return Some(why.clone());
        }
        let since = i
            .local_at
            .elapsed()
            .max(i.wall_at.elapsed().unwrap_or_default());
        if holder_out(since, &self.settings) {
            let mut why = format!(
                "the lease was last renewed {}s ago, and it lasts {}s",
                since.as_secs(),
                self.settings.lease.as_secs()
            );
            if let Some(e) = &i.last_error {
                why.push_str(&format!(" (the last renewal failed: {e})"));
            }
            return Some(why);
        }
        None
    }

    /// Before a write: still ours? A lost lease is [`Kind::LeaseLost`] (exit 13).
    pub fn check(&self) -> Result<()> {
        match self.why_lost() {
            None => Ok(()),
            Some(why) => Err(Error::new(
                Kind::LeaseLost,
                format!(
                    "lost the lock on {} in {}: {why}; stopped before the next write",
                    self.secret, self.environment
                ),
            )
            .hint(format!(
                "the journal is kept locally; once the lock is free, go on with `{}`",
                self.reach.command(&format!("resume {}", self.rotation_id))
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime {
        DateTime::from_secs(1_790_000_000 + secs)
    }

    #[test]
    fn expiry_is_judged_on_s3_times_only() {
        let lease = Duration::from_secs(120);
        // (last modified, S3 date, expired?)
        for (lm, now, expired) in [
            (0, 0, false),
            (0, 119, false),
            (0, 120, false),
            (0, 121, true),
            (0, 3600, true),
            // S3's clock behind the object (another region's skew): live.
            (10, 0, false),
        ] {
            assert_eq!(lease_expired(at(lm), at(now), lease), expired, "{lm} {now}");
        }
        assert!(!lease_expired(at(0), at(2), Duration::from_secs(3)));
        assert!(lease_expired(at(0), at(4), Duration::from_secs(3)));
        assert_eq!(s3_age(at(5), at(65)), Duration::from_secs(60));
        assert_eq!(s3_age(at(65), at(5)), Duration::ZERO);
    }

    #[test]
    fn the_holder_counts_itself_out_a_margin_before_others_may_take_over() {
        let s = LeaseSettings::default();
        assert_eq!(s.margin(), Duration::from_secs(5));
        assert!(!holder_out(Duration::from_secs(30), &s));
        assert!(!holder_out(Duration::from_secs(114), &s));
        assert!(holder_out(Duration::from_secs(115), &s));
        let short = LeaseSettings {
            lease: Duration::from_secs(4),
            renew: Duration::from_secs(1),
        };
        assert_eq!(short.margin(), Duration::from_secs(1));
        assert!(holder_out(Duration::from_secs(3), &short));
        assert!(!holder_out(Duration::from_millis(2500), &short));
    }

    #[test]
    fn settings_come_from_the_environment_and_must_make_sense() {
        assert_eq!(
            LeaseSettings::from_values(None, None).unwrap(),
            LeaseSettings::default()
        );
        let s = LeaseSettings::from_values(Some("6s"), Some("1s")).unwrap();
        assert_eq!(s.lease, Duration::from_secs(6));
        assert_eq!(s.renew, Duration::from_secs(1));
        for (lease, renew) in [("1s", "100ms"), ("10s", "6s"), ("x", "1s"), ("10s", "0s")] {
            let e = LeaseSettings::from_values(Some(lease), Some(renew)).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{lease} {renew}");
        }
    }

    #[test]
    fn a_lease_is_held_until_lost_or_run_out() {
        let s = LeaseSettings {
            lease: Duration::from_secs(2),
            renew: Duration::from_secs(1),
        };
        let l = Lease::new(
            s,
            "x",
            "production",
            Reach::new(
                ["--config", "conf/prod.toml", "--env", "production"]
                    .map(String::from)
                    .to_vec(),
            ),
            Uuid::nil(),
            "\"e1\"".into(),
            Some(at(0)),
        );
        l.check().unwrap();
        l.renewed("\"e2\"".into(), Some(at(1)));
        assert_eq!(l.etag(), "\"e2\"");
        assert_eq!(l.s3_renewed_at(), Some(at(1)));
        l.lose("the lock object was removed");
        let e = l.check().unwrap_err();
        assert_eq!(e.exit_code(), 13);
        assert!(
            e.message.contains("the lock object was removed"),
            "{}",
            e.message
        );
        // The resume it suggests names the rotation and carries --config and --env.
        assert_eq!(
            e.hint.as_deref(),
            Some("the journal is kept locally; once the lock is free, go on with `secret-rollout resume 00000000-0000-0000-0000-000000000000 --config conf/prod.toml --env production`")
        );
        // Once lost, a late renewal does not bring it back.
        l.renewed("\"e3\"".into(), Some(at(2)));
        assert!(l.is_lost());

        let run_out = Lease::new(s, "x", "p", Reach::default(), Uuid::nil(), "e".into(), None);
        run_out.renewal_failed("S3 unreachable".into());
        std::thread::sleep(Duration::from_millis(1100));
        let e = run_out.check().unwrap_err();
        assert!(e.message.contains("last renewed 1s ago"), "{}", e.message);
        assert!(e.message.contains("S3 unreachable"), "{}", e.message);
    }
}
