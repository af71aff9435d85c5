//! The journal in the bucket: one object per record, pushed as it is written
//! ([`Mirror`]), and both ways by [`sync`] before a command reads the journal.
//!
//! `rotations/<id>.jsonl.synced` holds how many of a rotation's records are known to be
//! the same locally and in the bucket, so a sync reads only what is new.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use uuid::Uuid;

use crate::error::{Error, Result};
use crate::journal::{self, Record};

use super::lease::Lease;
use super::s3::{Cond, Put, S3State};
use super::Backend;

fn synced_path(state_dir: &Path, id: Uuid) -> PathBuf {
    let mut p = journal::journal_path(state_dir, id).into_os_string();
    p.push(".synced");
    PathBuf::from(p)
}

fn read_synced(state_dir: &Path, id: Uuid) -> usize {
    std::fs::read_to_string(synced_path(state_dir, id))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

fn write_synced(state_dir: &Path, id: Uuid, n: usize) {
    // A cache: losing it costs one more read next time, nothing else.
    let _ = std::fs::write(synced_path(state_dir, id), n.to_string());
}

fn encode(record: &Record) -> Result<Vec<u8>> {
    serde_json::to_vec(record).map_err(|e| {
        Error::local(format!("cannot encode a journal record: {e}"))
            .hint("this is a bug in secret-rollout: please report it")
    })
}

/// Pushes record `seq`; true if the bucket now has it (written, or already there alike).
/// A different record under the key is divergence: `Ok(false)`.
async fn push(s3: &S3State, id: Uuid, seq: usize, record: &Record) -> Result<bool> {
    let key = s3.journal_key(id, seq);
    match s3.put(&key, encode(record)?, Cond::IfNoneMatch).await? {
        Put::Done { .. } => Ok(true),
        Put::Conflict => {
            let there = s3.get(&key).await?;
            Ok(there
                .and_then(|g| serde_json::from_slice::<Record>(&g.body).ok())
                .is_some_and(|r| &r == record))
        }
    }
}

async fn fetch(s3: &S3State, id: Uuid, seq: usize) -> Result<Option<Record>> {
    let key = s3.journal_key(id, seq);
    match s3.get(&key).await? {
        None => Ok(None),
        Some(g) => serde_json::from_slice(&g.body).map(Some).map_err(|e| {
            Error::refused(format!(
                "the journal object {key} in the team state is damaged: {e}"
            ))
            .hint("move it aside in the bucket and run the command again")
        }),
    }
}

/// The rotations in the bucket: id -> how many records (a contiguous run from 0).
async fn remote_counts(s3: &S3State) -> Result<BTreeMap<Uuid, usize>> {
    let prefix = s3.journal_prefix();
    let mut seqs: BTreeMap<Uuid, Vec<usize>> = BTreeMap::new();
    for key in s3.list(&prefix).await? {
        let Some(rest) = key.strip_prefix(&prefix) else {
            continue;
        };
        let Some((id, name)) = rest.split_once('/') else {
            continue;
        };
        let (Ok(id), Some(Ok(seq))) = (
            id.parse::<Uuid>(),
            name.strip_suffix(".json").map(str::parse::<usize>),
        ) else {
            continue;
        };
        seqs.entry(id).or_default().push(seq);
    }
    Ok(seqs
        .into_iter()
        .map(|(id, mut s)| {
            s.sort_unstable();
            let n = s.iter().enumerate().take_while(|(i, x)| i == *x).count();
            (id, n)
        })
        .collect())
}

fn local_ids(state_dir: &Path) -> Vec<Uuid> {
    let dir = state_dir.join("rotations");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".jsonl")?.parse().ok()
        })
        .collect()
}

/// Appends `records` to the local journal of `id` (created if missing).
fn append_local(state_dir: &Path, id: Uuid, records: &[Record]) -> Result<()> {
    let path = journal::journal_path(state_dir, id);
    let (mut j, rest) = if path.is_file() {
        (journal::Journal::open(state_dir, id)?, records)
    } else {
        let Some(Record::Started(s)) = records.first() else {
            return Ok(());
        };
        (journal::Journal::create(state_dir, s)?, &records[1..])
    };
    for r in rest {
        j.append(r)?;
    }
    Ok(())
}

/// Sets the local journal aside and takes the bucket's, record by record.
async fn adopt_remote(state_dir: &Path, s3: &S3State, id: Uuid) -> Result<()> {
    set_aside(state_dir, id)?;
    let mut all = Vec::new();
    while let Some(r) = fetch(s3, id, all.len()).await? {
        all.push(r);
    }
    append_local(state_dir, id, &all)?;
    write_synced(state_dir, id, all.len());
    Ok(())
}

/// Moves a local journal that disagrees with the bucket aside (`.jsonl.diverged-N`): the
/// bucket's is the shared truth; the local one is kept for a person to read.
fn set_aside(state_dir: &Path, id: Uuid) -> Result<()> {
    let path = journal::journal_path(state_dir, id);
    for n in 1.. {
        let mut aside = path.clone().into_os_string();
        aside.push(format!(".diverged-{n}"));
        let aside = PathBuf::from(aside);
        if !aside.exists() {
            std::fs::rename(&path, &aside).map_err(|e| Error::local_io("move aside", &path, e))?;
            tracing::warn!(
                "the local journal of rotation {id} disagrees with the team state: kept as {}",
                aside.display()
            );
            break;
        }
    }
    let _ = std::fs::remove_file(synced_path(state_dir, id));
    Ok(())
}

async fn sync_one(state_dir: &Path, s3: &S3State, id: Uuid, remote: usize) -> Result<()> {
    let path = journal::journal_path(state_dir, id);
    let local = if path.is_file() {
        journal::read_records(&path)?
    } else {
        Vec::new()
    };
    let synced = read_synced(state_dir, id).min(local.len()).min(remote);
    if local.len() == remote && synced == remote {
        return Ok(());
    }
    // Is the local copy still the bucket's up to the shorter of the two?
    let common = local.len().min(remote);
    if common > synced && fetch(s3, id, common - 1).await?.as_ref() != Some(&local[common - 1]) {
        return adopt_remote(state_dir, s3, id).await;
    }
    if remote > local.len() {
        let mut new = Vec::new();
        for seq in local.len()..remote {
            new.extend(fetch(s3, id, seq).await?);
        }
        append_local(state_dir, id, &new)?;
        write_synced(state_dir, id, remote);
    } else {
        for (seq, record) in local.iter().enumerate().skip(remote) {
            if !push(s3, id, seq, record).await? {
                // Someone else wrote this rotation's next record meanwhile.
                return adopt_remote(state_dir, s3, id).await;
            }
            write_synced(state_dir, id, seq + 1);
        }
        write_synced(state_dir, id, local.len());
    }
    Ok(())
}

/// Brings the local state directory and the bucket level: rotations recorded elsewhere
/// are copied in, records that could not be pushed are pushed. Never overwrites an
/// object; a local journal that disagrees with the bucket is set aside.
pub async fn sync(state_dir: &Path, s3: &S3State) -> Result<()> {
    let remote = remote_counts(s3).await?;
    let mut ids: Vec<Uuid> = local_ids(state_dir);
    ids.extend(remote.keys().copied());
    ids.sort_unstable();
    ids.dedup();
    for id in ids {
        sync_one(state_dir, s3, id, remote.get(&id).copied().unwrap_or(0)).await?;
    }
    Ok(())
}

/// Pushes a journal's records to the bucket as they are appended. A record S3 does not
/// take stays local (pending) and goes with the next one, or with the next [`sync`].
/// Once a lease of the run is lost, nothing more is pushed: the journal stays local.
#[derive(Debug)]
pub struct Mirror {
    s3: Arc<S3State>,
    state_dir: PathBuf,
    leases: Vec<Arc<Lease>>,
    /// Records not in the bucket yet, from `pushed` on.
    pending: Vec<Record>,
    pushed: usize,
}

impl Mirror {
    /// A mirror of `journal` for `backend` (`None` for the local backend), seeded with the
    /// records of the journal the bucket may not have.
    pub fn new(
        backend: &Backend,
        state_dir: &Path,
        journal: &journal::Journal,
        leases: Vec<Arc<Lease>>,
    ) -> Result<Option<Mirror>> {
        let Backend::S3(s3) = backend else {
            return Ok(None);
        };
        let id = journal.rotation_id();
        let records = journal::read_records(journal.path())?;
        let pushed = read_synced(state_dir, id).min(records.len());
        Ok(Some(Mirror {
            s3: s3.clone(),
            state_dir: state_dir.to_path_buf(),
            leases,
            pending: records[pushed..].to_vec(),
            pushed,
        }))
    }

    /// After `record` was appended locally: push everything pending.
    pub fn appended(&mut self, id: Uuid, record: &Record) {
        self.pending.push(record.clone());
        self.flush(id);
    }

    /// Pushes everything pending (unless a lease of the run is lost).
    pub fn flush(&mut self, id: Uuid) {
        if self.pending.is_empty() || self.leases.iter().any(|l| l.is_lost()) {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        let mut done = 0;
        let result = super::blocking(async {
            for (i, r) in pending.iter().enumerate() {
                match push(&self.s3, id, self.pushed + i, r).await {
                    Ok(true) => done += 1,
                    Ok(false) => {
                        return Err(format!(
                            "record {} of rotation {id} is already in the team state and differs",
                            self.pushed + i
                        ))
                    }
                    Err(e) => return Err(e.message),
                }
            }
            Ok(())
        });
        self.pushed += done;
        self.pending = pending[done..].to_vec();
        write_synced(&self.state_dir, id, self.pushed);
        match result {
            Ok(Ok(())) => {}
            Ok(Err(why)) => tracing::warn!(
                "journal kept locally, {} record(s) not in the team state yet: {why}",
                self.pending.len()
            ),
            Err(e) => tracing::warn!("journal kept locally: {}", e.message),
        }
    }
}
