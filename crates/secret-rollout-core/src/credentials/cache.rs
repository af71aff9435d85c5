//! The cache of MFA sessions, so a second command within a session's lifetime does not
//! ask for a code again.
//!
//! Only temporary credentials from `AssumeRole` are stored (they carry a session token
//! and expire); long-term keys never are. The store is chosen by what outlives the
//! process, wherever it runs (a desktop login, tmux or screen, SSH, a container, CI):
//!
//! - **Linux**: the user's kernel *persistent* keyring (persistent-keyring(7)): one per
//!   user, not tied to any login or session keyring, kept until it has been unused for
//!   `/proc/sys/kernel/keys/persistent_keyring_expiry` (3 days by default). Where the
//!   kernel has none, the *user* keyring (user-keyring(7)), which also lives beyond the
//!   process and its session. Never the session keyring: a process without a login
//!   session keyring (a systemd service, a CI job, `keyctl session`) gets one of its own
//!   that is gone when it exits, while it serves the write back within the process.
//!   Each key times out when its session expires.
//! - **macOS / Windows**: the Keychain / Credential Manager (the `keyring` crate).
//! - Elsewhere, or when the keyring refuses (a container whose seccomp profile blocks
//!   `keyctl`, say): a `0600` JSON file in `dirs::cache_dir()/secret-rollout/`
//!   (directory `0700`), as the aws CLI keeps its assumed-role cache in
//!   `~/.aws/cli/cache`.
//!
//! `SECRET_ROLLOUT_CACHE_DIR` names another directory and turns the keyring off: tests
//! use it, and so can a user who wants the file. Keyring entries are named after the
//! cache directory and the profile, so a different `HOME` (`XDG_CACHE_HOME`) is a
//! different sign-in, as it is for the file. Reads and removals look in every store, so
//! `logout` forgets a session wherever it is.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_credential_types::Credentials;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::EnvVars;
use crate::error::{Error, Result};

/// A session is reused until this long before it expires, so a command never starts
/// with credentials that run out while it works.
pub const REUSE_MARGIN: Duration = Duration::from_secs(5 * 60);

/// The keyring service name entries are stored under, and the start of their names.
pub const KEYRING_SERVICE: &str = "secret-rollout";

/// What a cached session is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SessionKind {
    /// A role's credentials from AssumeRole (with the code, or from an MFA session).
    #[default]
    AssumedRole,
    /// An IAM user's MFA session from GetSessionToken (12 hours by default): roles are
    /// assumed from it without a new code. Cached under [`mfa_session_key`].
    MfaSession,
}

/// The cache key of the MFA session of the IAM user whose keys are in `source_profile`.
pub fn mfa_session_key(source_profile: &str) -> String {
    format!("mfa-session@{source_profile}")
}

/// One cached MFA session.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedSession {
    /// The profile it was made for (the cache key; [`mfa_session_key`] for an MFA
    /// session).
    pub profile: String,
    /// A role's credentials, or an MFA session (absent in entries written before MFA
    /// sessions: a role's).
    #[serde(default)]
    pub kind: SessionKind,
    /// The role it is a session of: a cached session for another role is ignored (empty
    /// for an MFA session).
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
    /// When it was issued, epoch seconds (for an MFA session: when the code was typed);
    /// absent in entries written before this was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued: Option<i64>,
}

impl fmt::Debug for CachedSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedSession")
            .field("profile", &self.profile)
            .field("kind", &self.kind)
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
            kind: SessionKind::AssumedRole,
            role_arn: role_arn.to_string(),
            mfa_serial: mfa_serial.to_string(),
            access_key_id: credentials.access_key_id().to_string(),
            secret_access_key: credentials.secret_access_key().to_string(),
            session_token: token.to_string(),
            expiration,
            issued: Some(OffsetDateTime::now_utc().unix_timestamp()),
        })
    }

    /// A cache entry for an MFA session (GetSessionToken) of the IAM user whose keys are
    /// in `source_profile`; `None` for credentials that are not temporary.
    pub fn mfa_session(
        source_profile: &str,
        mfa_serial: &str,
        credentials: &Credentials,
    ) -> Option<Self> {
        let mut s = Self::from_credentials(
            &mfa_session_key(source_profile),
            "",
            mfa_serial,
            credentials,
        )?;
        s.kind = SessionKind::MfaSession;
        Some(s)
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

/// Where a cached session is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Store {
    /// Linux: the user's kernel persistent keyring.
    PersistentKeyring,
    /// Linux: the user's kernel user keyring.
    UserKeyring,
    /// macOS: the login Keychain.
    Keychain,
    /// Windows: the Credential Manager.
    CredentialManager,
    /// A `0600` file.
    File(PathBuf),
}

impl Store {
    /// A stable name for machine-readable output (`whoami --output json`).
    pub fn id(&self) -> &'static str {
        match self {
            Store::PersistentKeyring => "persistent-keyring",
            Store::UserKeyring => "user-keyring",
            Store::Keychain => "keychain",
            Store::CredentialManager => "credential-manager",
            Store::File(_) => "file",
        }
    }
}

impl fmt::Display for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Store::PersistentKeyring => f.write_str("kernel persistent keyring"),
            Store::UserKeyring => f.write_str("kernel user keyring"),
            Store::Keychain => f.write_str("macOS Keychain"),
            Store::CredentialManager => f.write_str("Windows Credential Manager"),
            Store::File(path) => write!(f, "file {}", path.display()),
        }
    }
}

/// Where sessions are stored.
#[derive(Debug, Clone)]
pub struct SessionCache {
    dir: PathBuf,
    use_keyring: bool,
    /// The one store new sessions go to ([`Store::id`]); `None`: the first that works.
    only: Option<&'static str>,
}

/// The variable that names the one store new sessions go to.
pub const STORE_VAR: &str = "SECRET_ROLLOUT_SESSION_STORE";

impl SessionCache {
    /// The cache this environment uses (see the module doc). `SECRET_ROLLOUT_SESSION_STORE`
    /// names the one store new sessions go to (a [`Store::id`] this platform has); reads
    /// and `logout` still look in every store.
    pub fn from_env(env: &EnvVars) -> Result<Self> {
        let mut cache = match env.get("SECRET_ROLLOUT_CACHE_DIR") {
            Some(dir) => Self::in_dir(dir),
            None => Self::with_keyring(cache_home(env).join("secret-rollout")),
        };
        if let Some(wanted) = env.get(STORE_VAR) {
            let known = os::STORES.iter().copied().chain(["file"]);
            let Some(id) = known.clone().find(|id| *id == wanted) else {
                return Err(Error::bad_input(format!(
                    "{STORE_VAR}={wanted} is not a session store on this system"
                ))
                .hint(format!(
                    "use one of {}, or unset it to use the first store that persists",
                    known.collect::<Vec<_>>().join(", ")
                )));
            };
            cache.only = Some(id);
        }
        Ok(cache)
    }

    /// A cache in the OS keyring where one persists, with its files in `dir`.
    pub fn with_keyring(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            use_keyring: os::AVAILABLE,
            only: None,
        }
    }

    /// A file-only cache in `dir`.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            use_keyring: false,
            only: None,
        }
    }

    /// New sessions go only to the store `id` ([`Store::id`]), else to the file.
    pub fn only(mut self, id: &'static str) -> Self {
        self.only = Some(id);
        self
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

    /// The keyring entry name of `profile`: `secret-rollout:DIR:PROFILE`, DIR being the
    /// cache directory, so each cache home has its own entries.
    pub fn keyring_name(&self, profile: &str) -> String {
        format!("{}{profile}", self.keyring_prefix())
    }

    fn keyring_prefix(&self) -> String {
        format!("{KEYRING_SERVICE}:{}:", self.dir.display())
    }

    /// The stored session of `profile`, whatever its age, and where it was found.
    /// Unreadable entries count as absent: the worst outcome is one more MFA prompt.
    pub fn get(&self, profile: &str) -> Option<(CachedSession, Store)> {
        if self.use_keyring {
            if let Some((json, store)) = os::get(&self.keyring_name(profile)) {
                match serde_json::from_str::<CachedSession>(&json) {
                    Ok(s) if s.profile == profile => return Some((s, store)),
                    _ => tracing::debug!(%store, "unreadable keyring entry ignored"),
                }
            }
        }
        let path = self.file_for(profile);
        let text = Zeroizing::new(fs::read_to_string(&path).ok()?);
        serde_json::from_str::<CachedSession>(&text)
            .ok()
            .filter(|s| s.profile == profile)
            .map(|s| (s, Store::File(path)))
    }

    /// Stores `session` in the first store that takes it and serves it back (see the
    /// module doc), and removes it from the others so none shadows it. Returns the store.
    pub fn put(&self, session: &CachedSession) -> Result<Store> {
        if session.session_token.is_empty() || session.access_key_id.starts_with("AKIA") {
            // Defence in depth: from_credentials already refuses these.
            return Err(Error::credentials("refusing to cache long-term AWS keys"));
        }
        let json =
            Zeroizing::new(serde_json::to_string(session).map_err(|e| {
                Error::credentials(format!("cannot encode the session cache: {e}"))
            })?);
        let name = self.keyring_name(&session.profile);
        if self.use_keyring && self.only != Some("file") {
            let left = session.expires_at() - OffsetDateTime::now_utc();
            let ttl = Duration::try_from(left).unwrap_or(Duration::ZERO);
            match os::put(&name, &json, ttl, self.only) {
                Ok(store) => {
                    // A stale file must not outlive a logout of the keyring entry.
                    let _ = fs::remove_file(self.file_for(&session.profile));
                    return Ok(store);
                }
                Err(why) => {
                    tracing::debug!(%why, "no keyring takes the session; caching in a file")
                }
            }
        }
        self.write_file(&session.profile, &json)?;
        if self.use_keyring {
            // An older entry in a keyring that took it then would shadow the file.
            os::remove(&name);
        }
        Ok(Store::File(self.file_for(&session.profile)))
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

    /// Forgets `profile`'s session in every store. Returns the stores it was in.
    pub fn remove(&self, profile: &str) -> Result<Vec<Store>> {
        let mut removed = if self.use_keyring {
            os::remove(&self.keyring_name(profile))
        } else {
            Vec::new()
        };
        let path = self.file_for(profile);
        match fs::remove_file(&path) {
            Ok(()) => removed.push(Store::File(path)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::credentials(format!(
                    "cannot remove the cached session {}: {e}",
                    path.display()
                )))
            }
        }
        Ok(removed)
    }

    /// Forgets every session: all cache files, the keyring entries of this cache that the
    /// keyring can list (the kernel's can), and those of `profiles` (the Keychain and the
    /// Credential Manager cannot be listed, so the caller names the profiles it knows).
    /// Returns how many profiles had a session.
    pub fn remove_all<'a>(&self, profiles: impl IntoIterator<Item = &'a str>) -> Result<usize> {
        let mut names: std::collections::BTreeSet<String> =
            profiles.into_iter().map(str::to_string).collect();
        if let Ok(entries) = fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "json") {
                    if let Some(s) = fs::read_to_string(&path)
                        .ok()
                        .map(Zeroizing::new)
                        .and_then(|t| serde_json::from_str::<CachedSession>(&t).ok())
                    {
                        names.insert(s.profile);
                    }
                }
            }
        }
        if self.use_keyring {
            let prefix = self.keyring_prefix();
            names.extend(
                os::list(&prefix)
                    .into_iter()
                    .filter_map(|n| n.strip_prefix(&prefix).map(str::to_string)),
            );
        }
        let mut count = 0;
        for name in &names {
            if !self.remove(name)?.is_empty() {
                count += 1;
            }
        }
        Ok(count)
    }
}

/// `dirs::cache_dir()` as this environment has it: `XDG_CACHE_HOME`, else `HOME/.cache`
/// on Linux (the env given, not only the process's, so tests can isolate it).
fn cache_home(env: &EnvVars) -> PathBuf {
    #[cfg(target_os = "linux")]
    {
        if let Some(x) = env.get("XDG_CACHE_HOME").filter(|x| x.starts_with('/')) {
            return PathBuf::from(x);
        }
        if let Some(home) = env.get("HOME").filter(|h| h.starts_with('/')) {
            return Path::new(home).join(".cache");
        }
    }
    let _ = env;
    dirs::cache_dir().unwrap_or_else(std::env::temp_dir)
}

/// The Linux kernel keyrings (keyrings(7)) through `linux-keyutils`.
#[cfg(target_os = "linux")]
mod os {
    use std::time::Duration;

    use linux_keyutils::{Key, KeyRing, KeyRingIdentifier};
    use zeroize::Zeroizing;

    use super::Store;

    pub const AVAILABLE: bool = true;
    pub const STORES: &[&str] = &["persistent-keyring", "user-keyring"];

    /// The keyrings that outlive this process, best first: the persistent keyring, then
    /// the user keyring. Both are linked into this process's own keyring (gone at exit),
    /// which makes this process their possessor, with a possessor's rights on the keys
    /// in them, whatever session keyring it has (a fresh one is linked to neither).
    /// Nothing goes to the session keyring, which may be this process's own.
    fn rings() -> Vec<(Store, KeyRing)> {
        let mut rings = Vec::new();
        if let Ok(ring) = KeyRing::get_persistent(KeyRingIdentifier::Process) {
            rings.push((Store::PersistentKeyring, ring));
        }
        let linked = KeyRing::from_special_id(KeyRingIdentifier::Process, true)
            .and_then(|process| process.link_keyring_id(KeyRingIdentifier::User));
        if let (Ok(()), Ok(ring)) = (
            linked,
            KeyRing::from_special_id(KeyRingIdentifier::User, true),
        ) {
            rings.push((Store::UserKeyring, ring));
        }
        rings
    }

    fn read(ring: &KeyRing, name: &str) -> Option<Zeroizing<String>> {
        let key = ring.search(name).ok()?;
        let bytes = Zeroizing::new(key.read_to_vec().ok()?);
        std::str::from_utf8(&bytes)
            .ok()
            .map(|s| Zeroizing::new(s.to_string()))
    }

    pub fn get(name: &str) -> Option<(Zeroizing<String>, Store)> {
        rings()
            .into_iter()
            .find_map(|(store, ring)| read(&ring, name).map(|json| (json, store)))
    }

    pub fn put(name: &str, json: &str, ttl: Duration, only: Option<&str>) -> Result<Store, String> {
        let mut why = String::from("no kernel keyring");
        let mut stored: Option<Store> = None;
        for (store, ring) in rings() {
            if stored.is_some() || only.is_some_and(|id| id != store.id()) {
                // Taken by a better keyring: an older entry here must not linger.
                if let Ok(key) = ring.search(name) {
                    let _ = key.invalidate();
                }
                continue;
            }
            match write(&ring, name, json, ttl) {
                Ok(()) if read(&ring, name).is_some_and(|back| back.as_str() == json) => {
                    stored = Some(store)
                }
                Ok(()) => why = format!("the {store} served another value back"),
                Err(e) => why = format!("the {store} refused: {e:?}"),
            }
        }
        stored.ok_or(why)
    }

    fn write(
        ring: &KeyRing,
        name: &str,
        json: &str,
        ttl: Duration,
    ) -> Result<(), linux_keyutils::KeyError> {
        // add_key replaces an older key of the same name. The kernel's default rights
        // stand: only a possessor (a process that linked the ring, as this one did) reads.
        let key: Key = ring.add_key(name, json.as_bytes())?;
        let secs = usize::try_from(ttl.as_secs()).unwrap_or(usize::MAX).max(1);
        if let Err(e) = key.set_timeout(secs) {
            let _ = key.invalidate();
            return Err(e);
        }
        Ok(())
    }

    pub fn remove(name: &str) -> Vec<Store> {
        let mut removed = Vec::new();
        for (store, ring) in rings() {
            if let Ok(key) = ring.search(name) {
                if key.invalidate().is_ok() {
                    removed.push(store);
                }
            }
        }
        removed
    }

    pub fn list(prefix: &str) -> Vec<String> {
        let mut names = Vec::new();
        for (_, ring) in rings() {
            // Room for far more links than a user's key quota allows (linux-keyutils
            // trusts the kernel's length, so the buffer must hold them all).
            let Ok(links) = ring.get_links(1 << 16) else {
                continue;
            };
            for link in links.iter() {
                if let Some(key) = link.as_key() {
                    if let Ok(meta) = key.metadata() {
                        let d = meta.get_description();
                        if d.starts_with(prefix) && !names.iter().any(|n| n == d) {
                            names.push(d.to_string());
                        }
                    }
                }
            }
        }
        names
    }
}

/// The Keychain and the Credential Manager, through the `keyring` crate.
#[cfg(any(target_os = "macos", target_os = "windows"))]
mod os {
    use std::time::Duration;

    use zeroize::Zeroizing;

    use super::{Store, KEYRING_SERVICE};

    pub const AVAILABLE: bool = true;
    #[cfg(target_os = "macos")]
    pub const STORES: &[&str] = &["keychain"];
    #[cfg(target_os = "windows")]
    pub const STORES: &[&str] = &["credential-manager"];

    #[cfg(target_os = "macos")]
    const STORE: Store = Store::Keychain;
    #[cfg(target_os = "windows")]
    const STORE: Store = Store::CredentialManager;

    fn entry(name: &str) -> Option<keyring::Entry> {
        keyring::Entry::new(KEYRING_SERVICE, name).ok()
    }

    pub fn get(name: &str) -> Option<(Zeroizing<String>, Store)> {
        let json = entry(name)?.get_password().ok()?;
        Some((Zeroizing::new(json), STORE))
    }

    pub fn put(
        name: &str,
        json: &str,
        _ttl: Duration,
        _only: Option<&str>,
    ) -> Result<Store, String> {
        let entry = entry(name).ok_or_else(|| format!("no {STORE}"))?;
        match entry.set_password(json).and_then(|()| entry.get_password()) {
            Ok(back) if Zeroizing::new(back).as_str() == json => Ok(STORE),
            Ok(_) => Err(format!("the {STORE} served another value back")),
            Err(e) => Err(format!("the {STORE} refused: {e}")),
        }
    }

    pub fn remove(name: &str) -> Vec<Store> {
        match entry(name).map(|e| e.delete_credential()) {
            Some(Ok(())) => vec![STORE],
            _ => Vec::new(),
        }
    }

    pub fn list(_prefix: &str) -> Vec<String> {
        Vec::new()
    }
}

/// No OS keyring: the file only.
#[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "windows")))]
mod os {
    use std::time::Duration;

    use zeroize::Zeroizing;

    use super::Store;

    pub const AVAILABLE: bool = false;
    pub const STORES: &[&str] = &[];

    pub fn get(_name: &str) -> Option<(Zeroizing<String>, Store)> {
        None
    }

    pub fn put(
        _name: &str,
        _json: &str,
        _ttl: Duration,
        _only: Option<&str>,
    ) -> Result<Store, String> {
        Err("no OS keyring on this platform".into())
    }

    pub fn remove(_name: &str) -> Vec<Store> {
        Vec::new()
    }

    pub fn list(_prefix: &str) -> Vec<String> {
        Vec::new()
    }
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
            kind: SessionKind::AssumedRole,
            role_arn: "arn:aws:iam::1:role/r".into(),
            mfa_serial: "arn:aws:iam::2:mfa/u".into(),
            access_key_id: "ASIATEMP".into(),
            secret_access_key: "temp-secret".into(),
            session_token: "temp-token".into(),
            expiration,
            issued: None,
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
    fn entries_without_a_kind_are_roles_and_mfa_sessions_have_their_own_key() {
        let old = r#"{"profile":"p","role_arn":"r","mfa_serial":"m","access_key_id":"ASIA1","secret_access_key":"s","session_token":"t","expiration":1}"#;
        let s: CachedSession = serde_json::from_str(old).unwrap();
        assert_eq!((s.kind, s.issued), (SessionKind::AssumedRole, None));
        let creds = Credentials::new(
            "ASIA2",
            "s",
            Some("t".into()),
            Some(std::time::SystemTime::now() + Duration::from_secs(60)),
            "t",
        );
        let m = CachedSession::mfa_session("identity", "arn:aws:iam::1:mfa/a", &creds).unwrap();
        assert_eq!(m.kind, SessionKind::MfaSession);
        assert_eq!(m.profile, mfa_session_key("identity"));
        assert_eq!(m.role_arn, "");
        assert!(m.issued.is_some());
        let dir = tempfile::tempdir().unwrap();
        let cache = SessionCache::in_dir(dir.path());
        assert!(cache
            .file_for(&m.profile)
            .ends_with("session-mfa-session_identity.json"));
        let json = serde_json::to_string(&m).unwrap();
        assert!(json.contains(r#""kind":"mfa-session""#), "{json}");
        let long = Credentials::new("AKIALONG", "s", None, None, "t");
        assert!(CachedSession::mfa_session("identity", "m", &long).is_none());
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
        assert_eq!(
            cache.get("prod/eu").unwrap(),
            (s.clone(), Store::File(file))
        );
        assert!(cache.get("prod_eu").is_none(), "entry of another profile");
        assert!(!format!("{s:?}").contains("temp-secret"));
        assert_eq!(cache.remove_all([]).unwrap(), 1);
        assert!(cache.get("prod/eu").is_none());
        assert!(cache.remove("prod/eu").unwrap().is_empty());
    }

    #[test]
    fn the_cache_home_follows_the_given_environment() {
        let env = EnvVars::from_pairs([("HOME", "/home/alice")]);
        let cache = SessionCache::from_env(&env).unwrap();
        #[cfg(target_os = "linux")]
        assert_eq!(cache.dir(), Path::new("/home/alice/.cache/secret-rollout"));
        assert_eq!(
            cache.keyring_name("prod"),
            format!("secret-rollout:{}:prod", cache.dir().display())
        );
        #[cfg(target_os = "linux")]
        {
            let env = env.with("XDG_CACHE_HOME", "/x/cache");
            let cache = SessionCache::from_env(&env).unwrap();
            assert_eq!(cache.dir(), Path::new("/x/cache/secret-rollout"));
        }
        let env = EnvVars::from_pairs([("HOME", "/h"), ("SECRET_ROLLOUT_CACHE_DIR", "/c")]);
        let cache = SessionCache::from_env(&env).unwrap();
        assert_eq!(cache.dir(), Path::new("/c"));
        let s = session("p", 2_000_000_000);
        assert!(
            matches!(
                SessionCache::in_dir(tempfile::tempdir().unwrap().path()).put(&s),
                Ok(Store::File(_))
            ),
            "SECRET_ROLLOUT_CACHE_DIR means the file"
        );
        // SECRET_ROLLOUT_SESSION_STORE names a store of this system, or is refused.
        let env = EnvVars::from_pairs([("HOME", "/h"), (STORE_VAR, "file")]);
        assert_eq!(SessionCache::from_env(&env).unwrap().only, Some("file"));
        let env = EnvVars::from_pairs([("HOME", "/h"), (STORE_VAR, "gnome-keyring")]);
        let e = SessionCache::from_env(&env).unwrap_err();
        assert_eq!(e.kind, crate::error::Kind::BadInput);
        assert!(
            e.render()
                .contains("SECRET_ROLLOUT_SESSION_STORE=gnome-keyring is not a session store"),
            "{}",
            e.render()
        );
        assert!(e.render().contains("file"), "{}", e.render());
        #[cfg(target_os = "linux")]
        assert!(
            e.render()
                .contains("use one of persistent-keyring, user-keyring, file"),
            "{}",
            e.render()
        );
    }

    /// The user keyring, possessed by this process, if it takes a key here.
    #[cfg(target_os = "linux")]
    fn user_keyring_here() -> Option<linux_keyutils::KeyRing> {
        use linux_keyutils::{KeyRing, KeyRingIdentifier};
        KeyRing::from_special_id(KeyRingIdentifier::Process, true)
            .ok()?
            .link_keyring_id(KeyRingIdentifier::User)
            .ok()?;
        let ring = KeyRing::from_special_id(KeyRingIdentifier::User, true).ok()?;
        let probe = format!("secret-rollout-test-probe-{}", std::process::id());
        ring.add_key(&probe, b"probe").ok()?.invalidate().ok()?;
        Some(ring)
    }

    /// Which kernel keyring outlives a process here, asked of the kernel directly: the
    /// persistent keyring if there is one, else the user keyring if it takes a key.
    #[cfg(target_os = "linux")]
    fn kernel_keyring_here() -> Option<(Store, linux_keyutils::KeyRing)> {
        use linux_keyutils::{KeyRing, KeyRingIdentifier};
        if let Ok(ring) = KeyRing::get_persistent(KeyRingIdentifier::Process) {
            return Some((Store::PersistentKeyring, ring));
        }
        user_keyring_here().map(|ring| (Store::UserKeyring, ring))
    }

    /// Forgets a test's entries even when it fails half-way.
    #[cfg(target_os = "linux")]
    struct Forget<'a>(&'a SessionCache, &'a str);

    #[cfg(target_os = "linux")]
    impl Drop for Forget<'_> {
        fn drop(&mut self) {
            let _ = self.0.remove(self.1);
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn linux_sessions_go_to_a_kernel_keyring_that_outlives_the_process() {
        let dir = tempfile::tempdir().unwrap();
        // The entry is named after this test's own directory: no other test or user
        // entry can be touched.
        let cache = SessionCache::with_keyring(dir.path().join("cache"));
        let _forget = Forget(&cache, "prod");
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let s = session("prod", now + 3600);
        let stored = cache.put(&s).unwrap();
        match kernel_keyring_here() {
            Some((expected, ring)) => {
                assert_eq!(stored, expected);
                // The kernel holds it in that ring, under the cache's name; no file.
                let key = ring.search(&cache.keyring_name("prod")).unwrap();
                let json = Zeroizing::new(key.read_to_vec().unwrap());
                let held: CachedSession = serde_json::from_slice(&json).unwrap();
                assert_eq!(held, s);
                assert!(!cache.file_for("prod").exists());
                assert!(!dir.path().join("cache").exists(), "nothing on disk");
                assert_eq!(cache.get("prod").unwrap(), (s.clone(), expected.clone()));
                // A second cache home has its own entries.
                let other = SessionCache::with_keyring(dir.path().join("other"));
                assert!(other.get("prod").is_none());
                // Listed and forgotten by logout, from every store.
                assert_eq!(cache.remove_all([]).unwrap(), 1);
                assert!(ring.search(&cache.keyring_name("prod")).is_err());
                assert!(cache.get("prod").is_none());
                assert!(cache.remove("prod").unwrap().is_empty());
            }
            None => {
                assert_eq!(stored, Store::File(cache.file_for("prod")));
                assert_eq!(cache.get("prod").unwrap().0, s);
                assert_eq!(cache.remove("prod").unwrap(), vec![stored]);
            }
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_named_store_takes_new_sessions_and_the_others_are_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let any = SessionCache::with_keyring(dir.path().join("cache"));
        let _forget = Forget(&any, "prod");
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let first = any.put(&session("prod", now + 3600)).unwrap();
        // The user keyring when named, if it takes keys here; else the file.
        let user = any.clone().only("user-keyring");
        let mut s = session("prod", now + 3600);
        s.access_key_id = "ASIAUSER".into();
        let stored = user.put(&s).unwrap();
        match user_keyring_here() {
            Some(ring) => {
                assert_eq!(stored, Store::UserKeyring);
                let key = ring.search(&user.keyring_name("prod")).unwrap();
                let held: CachedSession =
                    serde_json::from_slice(&Zeroizing::new(key.read_to_vec().unwrap())).unwrap();
                assert_eq!(held, s);
            }
            None => assert_eq!(stored, Store::File(user.file_for("prod"))),
        }
        // Whatever held the first session no longer serves it.
        assert_eq!(any.get("prod").unwrap(), (s.clone(), stored.clone()));
        if first != stored {
            assert!(any.remove("prod").unwrap() == vec![stored.clone()]);
        } else {
            any.remove("prod").unwrap();
        }
        // "file" writes the file even where a keyring works, and removes keyring entries.
        any.put(&session("prod", now + 3600)).unwrap();
        let file = any.clone().only("file");
        let stored = file.put(&s).unwrap();
        assert_eq!(stored, Store::File(file.file_for("prod")));
        assert_eq!(any.get("prod").unwrap(), (s, stored.clone()));
        assert_eq!(any.remove("prod").unwrap(), vec![stored]);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_stale_file_never_shadows_the_keyring_nor_outlives_a_logout() {
        let dir = tempfile::tempdir().unwrap();
        let file_only = SessionCache::in_dir(dir.path().join("cache"));
        let cache = SessionCache::with_keyring(dir.path().join("cache"));
        let _forget = Forget(&cache, "prod");
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let old = session("prod", now + 600);
        file_only.put(&old).unwrap();
        let mut new = session("prod", now + 3600);
        new.access_key_id = "ASIANEW".into();
        let stored = cache.put(&new).unwrap();
        assert_eq!(cache.get("prod").unwrap(), (new, stored.clone()));
        if stored != Store::File(cache.file_for("prod")) {
            assert!(!cache.file_for("prod").exists(), "the old file was removed");
        }
        file_only.put(&old).unwrap();
        let removed = cache.remove("prod").unwrap();
        assert!(
            removed.contains(&Store::File(cache.file_for("prod"))),
            "{removed:?}"
        );
        assert!(cache.get("prod").is_none(), "gone from every store");
    }
}
