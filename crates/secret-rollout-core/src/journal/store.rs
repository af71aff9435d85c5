//! Where the journal lives and how it is written and read: the private state directory,
//! one fsynced JSON-lines file per rotation, and listing the rotations in it.

use super::*;

/// A local failure of the state directory: configuration (exit 2), not a refusal.
pub(super) fn io_error(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::local(format!("cannot {what} {}: {}", path.display(), e.kind()))
        .hint(format!("check the permissions of the state directory, or point {STATE_DIR_ENV} at a writable directory"))
        .caused_by(e)
}

/// The state directory (created 0700 if missing; permissions narrowed if wider).
pub fn state_dir() -> Result<PathBuf> {
    let dir = match std::env::var_os(STATE_DIR_ENV).filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => dirs::state_dir()
            .or_else(dirs::data_local_dir)
            .ok_or_else(|| {
                Error::refused("cannot find a state directory for the journal")
                    .hint(format!("set {STATE_DIR_ENV} to a private directory"))
            })?
            .join("secret-rollout"),
    };
    ensure_private_dir(&dir)?;
    Ok(dir)
}

/// Creates `dir` (and parents) if needed and makes it 0700.
pub fn ensure_private_dir(dir: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| io_error("create the directory", dir, e))?;
    restrict(dir, 0o700)
}

/// Narrows `path`'s permissions to `mode` when they are anything else.
fn restrict(path: &Path, mode: u32) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|e| io_error("inspect", path, e))?;
        if meta.permissions().mode() & 0o777 != mode {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                .map_err(|e| io_error("restrict the permissions of", path, e))?;
        }
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

pub(super) fn rotations_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("rotations")
}

/// The journal file of a rotation.
pub fn journal_path(state_dir: &Path, rotation_id: Uuid) -> PathBuf {
    rotations_dir(state_dir).join(format!("{rotation_id}.jsonl"))
}

/// An open journal, appending to one rotation's file.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
    rotation_id: Uuid,
    // For a team state: pushes each record to the bucket after it is on disk here.
    mirror: Option<crate::state::Mirror>,
}

impl Journal {
    /// Creates the rotation's file with its `Started` record, durably.
    pub fn create(state_dir: &Path, started: &Started) -> Result<Journal> {
        let dir = rotations_dir(state_dir);
        ensure_private_dir(state_dir)?;
        ensure_private_dir(&dir)?;
        let path = journal_path(state_dir, started.rotation_id);
        let mut options = OpenOptions::new();
        options.append(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options
            .open(&path)
            .map_err(|e| io_error("create the journal", &path, e))?;
        restrict(&path, 0o600)?;
        let mut journal = Journal {
            path,
            file,
            rotation_id: started.rotation_id,
            mirror: None,
        };
        journal.append(&Record::Started(started.clone()))?;
        // The new directory entry must survive a crash too, or the file could vanish.
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_error("sync the directory", &dir, e))?;
        Ok(journal)
    }

    /// Opens an existing rotation's journal for appending, cutting off a torn last line.
    pub fn open(state_dir: &Path, rotation_id: Uuid) -> Result<Journal> {
        let path = journal_path(state_dir, rotation_id);
        if !path.is_file() {
            return Err(
                Error::bad_input(format!("no rotation {rotation_id} in the journal"))
                    .hint("list rotations with `secret-rollout history`"),
            );
        }
        restrict(&path, 0o600)?;
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&path)
            .map_err(|e| io_error("open the journal", &path, e))?;
        let mut text = Vec::new();
        file.read_to_end(&mut text)
            .map_err(|e| io_error("read the journal", &path, e))?;
        if !text.is_empty() && !text.ends_with(b"\n") {
            // A torn append: drop the partial line so the next record starts on its own.
            let keep = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            file.set_len(keep as u64)
                .and_then(|_| file.seek(SeekFrom::End(0)).map(|_| ()))
                .and_then(|_| file.sync_all())
                .map_err(|e| io_error("repair the journal", &path, e))?;
        }
        Ok(Journal {
            path,
            file,
            rotation_id,
            mirror: None,
        })
    }

    /// From now on, pushes every record to the team state too (nothing for the local
    /// backend), starting with those the bucket does not have yet. `locks`: the run's; once
    /// one loses its lease nothing more is pushed.
    pub fn mirror_to(
        &mut self,
        backend: &crate::state::Backend,
        state_dir: &Path,
        locks: &[crate::lock::Lock],
    ) -> Result<()> {
        let leases = locks.iter().filter_map(crate::lock::Lock::lease).collect();
        self.mirror = crate::state::Mirror::new(backend, state_dir, self, leases)?;
        if let Some(m) = &mut self.mirror {
            m.flush(self.rotation_id);
        }
        Ok(())
    }

    /// Appends one record as one line and syncs it to disk.
    pub fn append(&mut self, record: &Record) -> Result<()> {
        let mut line = serde_json::to_vec(record).map_err(|e| {
            Error::refused(format!("cannot encode a journal record: {e}"))
                .hint("this is a bug in secret-rollout: please report it")
        })?;
        line.push(b'\n');
        // One write on an O_APPEND file: a crash leaves at worst a torn last line.
        self.file
            .write_all(&line)
            .and_then(|_| self.file.sync_data())
            .map_err(|e| io_error("write the journal", &self.path, e))?;
        if let Some(m) = &mut self.mirror {
            m.appended(self.rotation_id, record);
        }
        Ok(())
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The rotation id.
    pub fn rotation_id(&self) -> Uuid {
        self.rotation_id
    }

    /// Everything recorded so far, folded.
    pub fn summary(&self) -> Result<RotationSummary> {
        read_summary(&self.path)?.ok_or_else(|| {
            Error::refused(format!(
                "the journal {} has no start record",
                self.path.display()
            ))
            .hint("it was damaged: move it aside and run the command again")
        })
    }
}

/// Reads a journal file's records. A last line that does not parse (a torn append) is
/// ignored; a bad line before it is an error naming the file and line.
pub fn read_records(path: &Path) -> Result<Vec<Record>> {
    let text = std::fs::read(path).map_err(|e| io_error("read the journal", path, e))?;
    let lines: Vec<&[u8]> = text.split(|b| *b == b'\n').collect();
    let mut records = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Record>(line) {
            Ok(r) => records.push(r),
            // `split` yields a final element after the last `\n`: the torn line, if any, is
            // that one (or the last non-empty one).
            Err(_)
                if lines[i + 1..]
                    .iter()
                    .all(|l| l.iter().all(u8::is_ascii_whitespace)) => {}
            Err(e) => {
                return Err(Error::refused(format!(
                    "the journal {} is damaged at line {}: {e}",
                    path.display(),
                    i + 1
                ))
                .hint("move the file aside (it is one past rotation) and run the command again"))
            }
        }
    }
    Ok(records)
}

fn read_summary(path: &Path) -> Result<Option<RotationSummary>> {
    Ok(fold(path, &read_records(path)?))
}

/// Every rotation in the state directory, oldest first.
pub fn list(state_dir: &Path) -> Result<Vec<RotationSummary>> {
    let dir = rotations_dir(state_dir);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error("read the directory", &dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| io_error("read the directory", &dir, e))?
            .path();
        if path.extension().is_some_and(|e| e == "jsonl") {
            if let Some(summary) = read_summary(&path)? {
                out.push(summary);
            }
        }
    }
    out.sort_by(|a, b| {
        (a.started.started_at, a.rotation_id()).cmp(&(b.started.started_at, b.rotation_id()))
    });
    Ok(out)
}

/// The most recent resumable rotation of `secret_arn` in `environment`, if any: `replace`
/// points to `resume` instead of starting a second one.
pub fn unfinished(
    state_dir: &Path,
    environment: &str,
    secret_arn: &str,
) -> Result<Option<RotationSummary>> {
    Ok(list(state_dir)?.into_iter().rev().find(|r| {
        r.started.environment == environment && r.touches(secret_arn) && r.is_resumable()
    }))
}
