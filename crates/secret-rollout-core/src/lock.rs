//! One rotation per secret and environment on this machine.
//!
//! An exclusive, non-blocking OS file lock (`fs2`: `flock` on Unix, `LockFileEx` on
//! Windows) on `STATE_DIR/locks/<environment>--<secret>-<hash>.lock`. The operating system
//! releases it when the holding process exits, however it exits, so a crashed or
//! `kill -9`ed run never leaves the secret locked. The file itself stays (deleting it while
//! another process opens it would let two processes lock two different files); it holds
//! the holder's pid, for the message.
//!
//! With a team state in S3 ([`crate::state`]) a lock object in the bucket is taken too,
//! with a lease renewed in the background; [`Lock::check`] says whether it is still ours.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::journal::ensure_private_dir;

/// A held lock; released on drop.
#[derive(Debug)]
pub struct Lock {
    path: PathBuf,
    // Held for its lock: closing the file releases it.
    _file: File,
    // The lock in the bucket, for a team state; released on drop too.
    remote: Option<crate::state::s3::RemoteLock>,
}

/// FNV-1a: a stable short name for arbitrary secret ids (not for security: it only
/// keeps two different secrets whose sanitised names collide apart).
fn fnv1a(data: &str) -> u64 {
    data.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn sanitize(s: &str, max: usize) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(max)
        .collect()
}

/// The name of the lock of `secret` in `environment`, without extension.
pub fn lock_name(environment: &str, secret: &str) -> String {
    // The secret's name, not its whole ARN, keeps the file name readable and short.
    let short = secret.rsplit(':').next().unwrap_or(secret);
    let hash = fnv1a(&format!("{environment}\0{secret}"));
    format!(
        "{}--{}-{hash:016x}",
        sanitize(environment, 60),
        sanitize(short, 100)
    )
}

/// The lock file for `secret` in `environment`.
pub fn lock_path(state_dir: &Path, environment: &str, secret: &str) -> PathBuf {
    state_dir
        .join("locks")
        .join(format!("{}.lock", lock_name(environment, secret)))
}

/// What to do about a local lock held by another process: the hint of the refusal, and of
/// `plan`'s line saying so.
pub const LOCAL_HELD_HINT: &str =
    "wait for it to finish; the lock goes away by itself when that process exits";

/// A secret's local lock, as seen without taking it ([`peek`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// No process holds it (or it was never taken here).
    Free,
    /// A process holds it: the pid its file names, and how long ago the file was last
    /// written (when the lock was taken).
    Held {
        /// The holder's pid, as its file says.
        pid: Option<u32>,
        /// Seconds since the lock was taken.
        taken_secs_ago: Option<u64>,
    },
    /// The file is there but whether a process holds it cannot be told without taking it
    /// (no `/proc/locks` on this system): the pid it names is the last holder's.
    Unknown {
        /// The last holder's pid, as its file says.
        pid: Option<u32>,
    },
}

/// Whether another process holds the lock of `secret` in `environment`, read without
/// taking it: `plan` must never take, renew or remove a lock, not even for a moment (a
/// `replace` starting in that moment would be refused for nothing), so this neither opens
/// the file for writing nor `flock`s it. On Linux the kernel's table of locks
/// (`/proc/locks`) says whether a `FLOCK ... WRITE` is held on the file's device and
/// inode; elsewhere an existing file is [`Seen::Unknown`].
pub fn peek(state_dir: &Path, environment: &str, secret: &str) -> Seen {
    let path = lock_path(state_dir, environment, secret);
    let Ok(meta) = std::fs::metadata(&path) else {
        return Seen::Free;
    };
    let pid = std::fs::read_to_string(&path)
        .ok()
        .and_then(|s| s.trim().parse().ok());
    match held_in_kernel(&meta) {
        Some(false) => Seen::Free,
        Some(true) => Seen::Held {
            pid,
            taken_secs_ago: meta
                .modified()
                .ok()
                .and_then(|t| t.elapsed().ok())
                .map(|d| d.as_secs()),
        },
        None => Seen::Unknown { pid },
    }
}

/// Whether `/proc/locks` lists a held (not a waiting: `->`) `FLOCK` on the file; `None`
/// when that table cannot be read.
#[cfg(target_os = "linux")]
fn held_in_kernel(meta: &std::fs::Metadata) -> Option<bool> {
    use std::os::unix::fs::MetadataExt;
    let table = std::fs::read_to_string("/proc/locks").ok()?;
    let dev = meta.dev();
    // glibc's gnu_dev_major/minor: the numbers /proc/locks prints in hex.
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    let want = format!("{major:02x}:{minor:02x}:{}", meta.ino());
    Some(table.lines().any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // "1: FLOCK ADVISORY WRITE PID MAJ:MIN:INODE START END"; a waiter has "->" second.
        fields.get(1) == Some(&"FLOCK") && fields.get(5) == Some(&want.as_str())
    }))
}

#[cfg(not(target_os = "linux"))]
fn held_in_kernel(_: &std::fs::Metadata) -> Option<bool> {
    None
}

impl Lock {
    /// Takes the lock for `secret` (its ARN) in `environment`, or refuses naming the pid
    /// that holds it.
    pub fn acquire(state_dir: &Path, environment: &str, secret: &str) -> Result<Lock> {
        let path = lock_path(state_dir, environment, secret);
        let io = |what: &str, e: std::io::Error| {
            // A local failure: configuration (exit 2); a lock held by someone else is the
            // refusal (exit 4) below.
            Error::local(format!("cannot {what} the lock file {}: {}", path.display(), e.kind()))
                .hint("check the permissions of the state directory, or point SECRET_ROLLOUT_STATE_DIR at a writable directory")
                .caused_by(e)
        };
        if let Some(dir) = path.parent() {
            ensure_private_dir(dir)?;
        }
        let mut options = OpenOptions::new();
        // Not truncated on open: the holder's pid must stay readable by the loser.
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&path).map_err(|e| io("open", e))?;
        if let Err(e) = fs2::FileExt::try_lock_exclusive(&file) {
            if e.kind() != fs2::lock_contended_error().kind() {
                return Err(io("lock", e));
            }
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = match pid.trim() {
                "" => "pid unknown".to_string(),
                p => format!("pid {p}"),
            };
            return Err(Error::refused(format!(
                "another secret-rollout is rotating {secret} in {environment} ({pid})"
            ))
            .hint(LOCAL_HELD_HINT));
        }
        file.set_len(0)
            .and_then(|_| file.seek(SeekFrom::Start(0)))
            .and_then(|_| writeln!(file, "{}", std::process::id()))
            .map_err(|e| io("write", e))?;
        Ok(Lock {
            path,
            _file: file,
            remote: None,
        })
    }

    /// Takes the local lock and, for a team state, the lock in the bucket for
    /// `rotation_id`; refuses naming the holder of either.
    pub fn acquire_in(
        state_dir: &Path,
        backend: &crate::state::Backend,
        environment: &str,
        secret: &str,
        rotation_id: uuid::Uuid,
    ) -> Result<Lock> {
        let mut lock = Lock::acquire(state_dir, environment, secret)?;
        if let Some(s3) = backend.s3() {
            lock.remote = Some(crate::state::blocking(crate::state::s3::acquire(
                s3,
                environment,
                secret,
                rotation_id,
            ))??);
        }
        Ok(lock)
    }

    /// Before a write: is the lock still ours? Always for a local lock; for a lock in the
    /// bucket, while its lease holds (a lost lease is exit 13).
    pub fn check(&self) -> Result<()> {
        match &self.remote {
            Some(r) => r.lease.check(),
            None => Ok(()),
        }
    }

    /// The lease of the lock in the bucket, if any.
    pub fn lease(&self) -> Option<std::sync::Arc<crate::state::Lease>> {
        self.remote.as_ref().map(|r| r.lease.clone())
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Kind;

    const ARN: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:production/x-AbCdEf";

    #[test]
    fn second_acquire_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = Lock::acquire(dir.path(), "production", ARN).unwrap();
        let e = Lock::acquire(dir.path(), "production", ARN).unwrap_err();
        assert_eq!(e.kind, Kind::Refused);
        assert_eq!(
            e.message,
            format!(
                "another secret-rollout is rotating {ARN} in production (pid {})",
                std::process::id()
            )
        );
        assert!(e.hint.is_some());
        drop(first);
        let again = Lock::acquire(dir.path(), "production", ARN).unwrap();
        assert!(again.path().exists());
    }

    #[test]
    fn other_secrets_and_environments_are_independent() {
        let dir = tempfile::tempdir().unwrap();
        let _a = Lock::acquire(dir.path(), "production", ARN).unwrap();
        let _b = Lock::acquire(dir.path(), "development", ARN).unwrap();
        let _c = Lock::acquire(dir.path(), "production", "production/y").unwrap();
    }

    #[test]
    fn lock_paths_are_readable_distinct_and_stable() {
        let d = Path::new("/state");
        let p = lock_path(d, "production", ARN);
        let name = p.file_name().unwrap().to_str().unwrap();
        assert!(
            name.starts_with("production--production_x-AbCdEf-"),
            "{name}"
        );
        assert!(name.ends_with(".lock"));
        assert_eq!(p, lock_path(d, "production", ARN));
        // Names that sanitise alike still get different files.
        assert_ne!(lock_path(d, "p", "a/b"), lock_path(d, "p", "a_b"));
        assert_ne!(
            lock_path(d, "eu-west-1/c", "x"),
            lock_path(d, "eu-west-1_c", "x")
        );
        let long = "x".repeat(600);
        assert!(lock_path(d, &long, &long).file_name().unwrap().len() < 255);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn peek_sees_a_held_lock_without_taking_it() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(peek(dir.path(), "production", ARN), Seen::Free);
        let lock = Lock::acquire(dir.path(), "production", ARN).unwrap();
        let before = std::fs::read(lock.path()).unwrap();
        let modified = std::fs::metadata(lock.path()).unwrap().modified().unwrap();
        match peek(dir.path(), "production", ARN) {
            Seen::Held { pid, .. } => assert_eq!(pid, Some(std::process::id())),
            other => panic!("held: {other:?}"),
        }
        // Another secret's lock is not this one.
        assert_eq!(peek(dir.path(), "production", "production/y"), Seen::Free);
        assert_eq!(
            std::fs::read(lock.path()).unwrap(),
            before,
            "file untouched"
        );
        assert_eq!(
            std::fs::metadata(lock.path()).unwrap().modified().unwrap(),
            modified
        );
        let path = lock.path().to_path_buf();
        drop(lock);
        assert_eq!(peek(dir.path(), "production", ARN), Seen::Free);
        assert!(path.exists(), "the file stays, unlocked");
    }

    #[cfg(unix)]
    #[test]
    fn lock_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let lock = Lock::acquire(dir.path(), "production", ARN).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(lock.path()), 0o600);
        assert_eq!(mode(lock.path().parent().unwrap()), 0o700);
    }
}
