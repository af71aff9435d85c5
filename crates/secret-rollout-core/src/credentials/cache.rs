//! The cache of MFA sessions, so a second command within a session's lifetime does not
//! ask for a code again.
//!
//! Only temporary credentials from `AssumeRole` are stored (they carry a session token
//! and expire); long-term keys never are. Each session goes to the OS keyring when one
//! works (Keychain, Windows Credential Manager, Linux kernel keyutils), otherwise to a
//! `0600` JSON file in `dirs::cache_dir()/secret-rollout/` (directory `0700`).
//! `SECRET_ROLLOUT_CACHE_DIR` names another directory and turns the keyring off: tests
//! use it, and so can a user who wants the file.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_credential_types::Credentials;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::EnvVars;
use crate::error::{Error, Result};

/// A session is reused until this long before it expires, so a command never starts
/// with credentials that run out while it works.
pub const REUSE_MARGIN: Duration = Duration::from_secs(5 * 60);

/// The keyring service name entries are stored under (account = profile name).
pub const KEYRING_SERVICE: &str = "secret-rollout";

/// One cached MFA session.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedSession {
    /// The profile it was made for (the cache key).
    pub profile: String,
    /// The role it is a session of: a cached session for another role is ignored.
    pub role_arn: String,
    /// The MFA device used.
    pub mfa_serial: String,
    /// Temporary access key id (`ASIA...`).
    pub access_key_id: String,
    /// Temporary secret key.
    pub secret_access_key: String,
    /// Session token.
    pub session_token: String,
    /// Expiry, epoch seconds.
    pub expiration: i64,
}

impl fmt::Debug for CachedSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedSession")
            .field("profile", &self.profile)
            .field("role_arn", &self.role_arn)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"** redacted **")
            .field("session_token", &"** redacted **")
            .field("expiration", &self.expiration)
            .finish()
    }
}

impl CachedSession {
    /// A cache entry for `credentials` (from AssumeRole). `None` for credentials that are
    /// not temporary (no session token or no expiry): those are never stored.
    pub fn from_credentials(
        profile: &str,
        role_arn: &str,
        mfa_serial: &str,
        credentials: &Credentials,
    ) -> Option<Self> {
        let token = credentials.session_token()?;
        let expiry = credentials.expiry()?;
        let expiration = OffsetDateTime::from(expiry).unix_timestamp();
        if credentials.access_key_id().starts_with("AKIA") {
            return None;
        }
        Some(Self {
            profile: profile.to_string(),
            role_arn: role_arn.to_string(),
            mfa_serial: mfa_serial.to_string(),
            access_key_id: credentials.access_key_id().to_string(),
            secret_access_key: credentials.secret_access_key().to_string(),
            session_token: token.to_string(),
            expiration,
        })
    }

    /// The expiry as a time.
    pub fn expires_at(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(self.expiration).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// The SDK credentials.
    pub fn credentials(&self) -> Credentials {
        Credentials::new(
            &self.access_key_id,
            &self.secret_access_key,
            Some(self.session_token.clone()),
            Some(self.expires_at().into()),
            "secret-rollout-cache",
        )
    }

    /// Whether it may still be used at `now` (more than [`REUSE_MARGIN`] left).
    pub fn is_reusable(&self, now: OffsetDateTime) -> bool {
        is_reusable(self.expires_at(), now)
    }
}

/// Whether credentials expiring at `expires_at` may be reused at `now`.
pub fn is_reusable(expires_at: OffsetDateTime, now: OffsetDateTime) -> bool {
    expires_at - now > REUSE_MARGIN
}

/// Where sessions are stored.
#[derive(Debug, Clone)]
pub struct SessionCache {
    dir: PathBuf,
    use_keyring: bool,
}

impl SessionCache {
    /// The cache this environment uses (see the module doc).
    pub fn from_env(env: &EnvVars) -> Self {
        if let Some(dir) = env.get("SECRET_ROLLOUT_CACHE_DIR") {
            return Self::in_dir(dir);
        }
        let dir = dirs::cache_dir()
            .unwrap_or_else(std::env::temp_dir)
            .join("secret-rollout");
        Self {
            dir,
            // Without a native backend the keyring crate falls back to an in-memory mock
            // that would silently lose the session at exit: only use it where compiled in.
            use_keyring: cfg!(any(
                target_os = "linux",
                target_os = "macos",
                target_os = "windows"
            )),
        }
    }

    /// A file-only cache in `dir`.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            use_keyring: false,
        }
    }

    /// The directory of the file cache.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cache file of `profile`.
    pub fn file_for(&self, profile: &str) -> PathBuf {
        let safe: String = profile
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.dir.join(format!("session-{safe}.json"))
    }

    /// The stored session of `profile`, whatever its age. Unreadable entries count as
    /// absent: the worst outcome is one more MFA prompt.
    pub fn get(&self, profile: &str) -> Option<CachedSession> {
        if self.use_keyring {
            if let Some(s) = keyring_entry(profile)
                .and_then(|e| e.get_password().ok())
                .and_then(|json| serde_json::from_str::<CachedSession>(&json).ok())
                .filter(|s| s.profile == profile)
            {
                return Some(s);
            }
        }
        let text = fs::read_to_string(self.file_for(profile)).ok()?;
        serde_json::from_str::<CachedSession>(&text)
            .ok()
            .filter(|s| s.profile == profile)
    }

    /// Stores `session`: in the keyring if it works, else in the file.
    pub fn put(&self, session: &CachedSession) -> Result<()> {
        if session.session_token.is_empty() || session.access_key_id.starts_with("AKIA") {
            // Defence in depth: from_credentials already refuses these.
            return Err(Error::credentials("refusing to cache long-term AWS keys"));
        }
        let json = serde_json::to_string(session)
            .map_err(|e| Error::credentials(format!("cannot encode the session cache: {e}")))?;
        if self.use_keyring {
            if let Some(entry) = keyring_entry(&session.profile) {
                // Read back: some keyrings accept a write they cannot serve back (a
                // kernel keyring without a session, say); then the file is the store.
                match entry
                    .set_password(&json)
                    .and_then(|()| entry.get_password())
                    .map(|back| back == json)
                {
                    Ok(true) => {
                        // A stale file must not shadow a newer keyring entry's removal.
                        let _ = fs::remove_file(self.file_for(&session.profile));
                        return Ok(());
                    }
                    Ok(false) => {
                        tracing::debug!("keyring returned another value; caching in a file")
                    }
                    Err(e) => tracing::debug!(error = %e, "keyring unavailable; caching in a file"),
                }
            }
        }
        self.write_file(&session.profile, &json)
    }

    fn write_file(&self, profile: &str, json: &str) -> Result<()> {
        let fail = |e: std::io::Error| {
            Error::credentials(format!(
                "cannot write the session cache in {}: {e}",
                self.dir.display()
            ))
            .hint("set SECRET_ROLLOUT_CACHE_DIR to a writable directory")
        };
        create_private_dir(&self.dir).map_err(fail)?;
        let path = self.file_for(profile);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            // Created 0600 from the start: the secret is never readable by others, not
            // even between create and chmod.
            options.mode(0o600);
        }
        let mut file = options.open(&tmp).map_err(fail)?;
        file.write_all(json.as_bytes()).map_err(fail)?;
        file.sync_all().map_err(fail)?;
        drop(file);
        fs::rename(&tmp, &path).map_err(fail)?;
        Ok(())
    }

    /// Forgets `profile`'s session. Returns whether there was one.
    pub fn remove(&self, profile: &str) -> Result<bool> {
        let mut removed = false;
        if self.use_keyring {
            if let Some(entry) = keyring_entry(profile) {
                removed |= entry.delete_credential().is_ok();
            }
        }
        match fs::remove_file(self.file_for(profile)) {
            Ok(()) => removed = true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::credentials(format!(
                    "cannot remove the cached session {}: {e}",
                    self.file_for(profile).display()
                )))
            }
        }
        Ok(removed)
    }

    /// Forgets every session: all cache files, and the keyring entries of `profiles`
    /// (a keyring cannot be listed, so the caller names the profiles it knows).
    pub fn remove_all<'a>(&self, profiles: impl IntoIterator<Item = &'a str>) -> Result<usize> {
        let mut names: std::collections::BTreeSet<String> =
            profiles.into_iter().map(str::to_string).collect();
        if let Ok(entries) = fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "json") {
                    if let Some(s) = fs::read_to_string(&path)
                        .ok()
                        .and_then(|t| serde_json::from_str::<CachedSession>(&t).ok())
                    {
                        names.insert(s.profile);
                    }
                }
            }
        }
        let mut count = 0;
        for name in &names {
            if self.remove(name)? {
                count += 1;
            }
        }
        Ok(count)
    }
}

fn keyring_entry(profile: &str) -> Option<keyring::Entry> {
    keyring::Entry::new(KEYRING_SERVICE, profile).ok()
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(profile: &str, expiration: i64) -> CachedSession {
        CachedSession {
            profile: profile.into(),
            role_arn: "arn:aws:iam::1:role/r".into(),
            mfa_serial: "arn:aws:iam::2:mfa/u".into(),
            access_key_id: "ASIATEMP".into(),
            secret_access_key: "temp-secret".into(),
            session_token: "temp-token".into(),
            expiration,
        }
    }

    #[test]
    fn reused_until_five_minutes_before_expiry() {
        let now = OffsetDateTime::from_unix_timestamp(1_000_000).unwrap();
        let s = |left: i64| session("p", 1_000_000 + left);
        assert!(s(3600).is_reusable(now));
        assert!(s(301).is_reusable(now));
        assert!(!s(300).is_reusable(now));
        assert!(!s(60).is_reusable(now));
        assert!(!s(-10).is_reusable(now));
    }

    #[test]
    fn long_term_keys_are_never_cached() {
        let long = Credentials::new("AKIALONG", "s", None, None, "t");
        assert!(CachedSession::from_credentials("p", "r", "m", &long).is_none());
        let no_expiry = Credentials::new("ASIA1", "s", Some("tok".into()), None, "t");
        assert!(CachedSession::from_credentials("p", "r", "m", &no_expiry).is_none());
        let dir = tempfile::tempdir().unwrap();
        let cache = SessionCache::in_dir(dir.path());
        let mut bad = session("p", 1);
        bad.access_key_id = "AKIALONG".into();
        assert!(cache.put(&bad).is_err());
        assert!(!cache.file_for("p").exists());
    }

    #[cfg(unix)]
    #[test]
    fn file_is_0600_in_a_0700_dir_and_round_trips() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let cache = SessionCache::in_dir(dir.path().join("cache"));
        let s = session("prod/eu", 2_000_000_000);
        cache.put(&s).unwrap();
        let file = cache.file_for("prod/eu");
        assert_eq!(file.parent().unwrap(), dir.path().join("cache"));
        let mode = fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dmode = fs::metadata(dir.path().join("cache"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dmode, 0o700);
        assert_eq!(cache.get("prod/eu").unwrap(), s);
        assert!(cache.get("prod_eu").is_none(), "entry of another profile");
        assert!(!format!("{s:?}").contains("temp-secret"));
        assert_eq!(cache.remove_all([]).unwrap(), 1);
        assert!(cache.get("prod/eu").is_none());
        assert!(!cache.remove("prod/eu").unwrap());
    }
}
