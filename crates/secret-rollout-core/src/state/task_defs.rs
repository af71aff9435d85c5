//! The task-definition cache: the parsed secret references of every task definition
//! revision described so far, by ARN, in `task-definitions.json` of the state directory.
//!
//! A revision never changes once registered (a new one gets a new ARN), so what
//! DescribeTaskDefinition said about an ARN stays true: the second `plan` of an environment
//! reads its revisions here instead of asking ECS once per revision (a thousand calls on a
//! thousand-service environment, against a bucket of 50 and 20/s). The ARN names the region
//! and account, so environments never mix.
//!
//! Only the references are kept: family, revision, per reference the container, where
//! it is read (`secrets[]` with its variable's name, a log option, repository credentials)
//! and the `valueFrom` as written, and each container's image reference (for the image
//! check of `images.rs`). Never anything else of the task definition: its
//! `environment` may hold plaintext that must not land on disk. A reference of any kind
//! (Secrets Manager, Parameter Store) is kept the same way, so the record needs no new
//! field for parameter references. The file is written 0600 through a temporary file and a
//! rename; a file that cannot be read or parsed, or of another `version`, is ignored, and a
//! failure to write only costs the next run its calls: the cache is never needed for a
//! right answer.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::aws::model::{Place, RefSite, TaskDef};

/// The file in the state directory.
pub const FILE: &str = "task-definitions.json";

/// The format's version: a file of another one is ignored (and replaced).
const VERSION: u32 = 2;

#[derive(Debug, Default, Serialize, Deserialize)]
struct CacheFile {
    version: u32,
    task_definitions: BTreeMap<String, Record>,
}

/// What is kept of one revision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Record {
    family: String,
    revision: i32,
    refs: Vec<CachedRef>,
    /// Each container's name and image reference, as written (version 2 on).
    images: Vec<(String, String)>,
}

/// One reference, as [`RefSite`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct CachedRef {
    container: String,
    /// `secret` (with `name`: the variable), `log_option` (with `name`), or
    /// `repository_credentials`.
    place: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    value_from: String,
}

impl From<&TaskDef> for Record {
    fn from(td: &TaskDef) -> Self {
        Record {
            family: td.family.clone(),
            revision: td.revision,
            refs: td
                .refs
                .iter()
                .map(|r| {
                    let (place, name) = match &r.place {
                        Place::Secret { env } => ("secret", Some(env.clone())),
                        Place::LogOption { name } => ("log_option", Some(name.clone())),
                        Place::RepositoryCredentials => ("repository_credentials", None),
                    };
                    CachedRef {
                        container: r.container.clone(),
                        place: place.to_string(),
                        name,
                        value_from: r.value_from.clone(),
                    }
                })
                .collect(),
            images: td.images.clone(),
        }
    }
}

impl Record {
    /// The task definition, or `None` for a reference of a kind this build does not know
    /// (written by a newer one): then the revision is described again.
    fn task_def(&self, arn: &str) -> Option<TaskDef> {
        let refs = self
            .refs
            .iter()
            .map(|r| {
                let place = match (r.place.as_str(), &r.name) {
                    ("secret", Some(env)) => Place::Secret { env: env.clone() },
                    ("log_option", Some(name)) => Place::LogOption { name: name.clone() },
                    ("repository_credentials", None) => Place::RepositoryCredentials,
                    _ => return None,
                };
                Some(RefSite {
                    container: r.container.clone(),
                    place,
                    value_from: r.value_from.clone(),
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(TaskDef {
            arn: arn.to_string(),
            family: self.family.clone(),
            revision: self.revision,
            refs,
            images: self.images.clone(),
        })
    }
}

static ENABLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Turns the cache on for this process, in the state directory (`SECRET_ROLLOUT_STATE_DIR`
/// or the user's): the command line does. A program embedding the core (or an in-process
/// test, whose state directory is its own) describes every revision unless it calls this.
pub fn enable() {
    ENABLED.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// The process's cache, when [`enable`]d and the state directory is usable.
pub fn process_cache() -> Option<TaskDefCache> {
    if !ENABLED.load(std::sync::atomic::Ordering::Relaxed) {
        return None;
    }
    crate::journal::state_dir()
        .ok()
        .map(|dir| TaskDefCache::load(&dir))
}

/// The cache of one state directory.
#[derive(Debug)]
pub struct TaskDefCache {
    path: PathBuf,
    file: CacheFile,
}

impl TaskDefCache {
    /// Reads the cache of `state_dir` (empty when missing, unreadable or of another version).
    pub fn load(state_dir: &Path) -> TaskDefCache {
        let path = state_dir.join(FILE);
        let file = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<CacheFile>(&b).ok())
            .filter(|f| f.version == VERSION)
            .unwrap_or_default();
        TaskDefCache { path, file }
    }

    /// The cached task definition of `arn`, if any.
    pub fn get(&self, arn: &str) -> Option<TaskDef> {
        self.file.task_definitions.get(arn)?.task_def(arn)
    }

    /// Adds `task_defs` and writes the file if anything was new. A write failure is only
    /// logged: the next run describes those revisions again.
    pub fn store<'a>(&mut self, task_defs: impl IntoIterator<Item = &'a TaskDef>) {
        let mut changed = false;
        for td in task_defs {
            // Only revision ARNs: a family name or `family:rev` text is no key.
            if crate::aws::ecs::family_revision(&td.arn).is_none() {
                continue;
            }
            let record = Record::from(td);
            if self.file.task_definitions.get(&td.arn) != Some(&record) {
                self.file.task_definitions.insert(td.arn.clone(), record);
                changed = true;
            }
        }
        if changed {
            if let Err(e) = self.write() {
                tracing::warn!(path = %self.path.display(), error = %e, "task-definition cache not written");
            }
        }
    }

    fn write(&mut self) -> std::io::Result<()> {
        use std::io::Write;
        self.file.version = VERSION;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            tmp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        serde_json::to_writer(&mut tmp, &self.file)?;
        tmp.flush()?;
        tmp.as_file().sync_all()?;
        tmp.persist(&self.path).map_err(|e| e.error)?;
        Ok(())
    }
}

/// Fills `into` from the cache for the ARNs it holds; returns the ARNs still to describe.
pub fn fill_from(
    cache: &TaskDefCache,
    arns: std::collections::BTreeSet<String>,
    into: &mut HashMap<String, TaskDef>,
) -> std::collections::BTreeSet<String> {
    arns.into_iter()
        .filter(|arn| {
            if into.contains_key(arn) {
                return false;
            }
            match cache.get(arn) {
                Some(td) => {
                    into.insert(arn.clone(), td);
                    false
                }
                None => true,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn td(arn: &str) -> TaskDef {
        TaskDef {
            arn: arn.to_string(),
            family: "api".into(),
            revision: 7,
            refs: vec![
                RefSite {
                    container: "app".into(),
                    place: Place::Secret {
                        env: "DB_PASSWORD".into(),
                    },
                    value_from: "arn:aws:secretsmanager:eu-west-1:1:secret:db-AbCdEf".into(),
                },
                RefSite {
                    container: "app".into(),
                    place: Place::LogOption {
                        name: "apiKey".into(),
                    },
                    value_from: "/aws/reference/secretsmanager/logs".into(),
                },
                RefSite {
                    container: "sidecar".into(),
                    place: Place::RepositoryCredentials,
                    value_from: "registry".into(),
                },
            ],
            images: vec![(
                "app".into(),
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com/api:latest".into(),
            )],
        }
    }

    const ARN: &str = "arn:aws:ecs:eu-west-1:1:task-definition/api:7";

    #[test]
    fn a_stored_revision_round_trips_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = TaskDefCache::load(dir.path());
        assert!(c.get(ARN).is_none());
        c.store([&td(ARN), &td("api")]);
        let c = TaskDefCache::load(dir.path());
        assert_eq!(c.get(ARN), Some(td(ARN)));
        // Not a revision ARN: not kept.
        assert!(c.get("api").is_none());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let mut into = HashMap::new();
        let left = fill_from(
            &c,
            [
                ARN.to_string(),
                "arn:aws:ecs:eu-west-1:1:task-definition/api:8".to_string(),
            ]
            .into(),
            &mut into,
        );
        assert_eq!(
            left.into_iter().collect::<Vec<_>>(),
            vec!["arn:aws:ecs:eu-west-1:1:task-definition/api:8".to_string()]
        );
        assert_eq!(into.get(ARN), Some(&td(ARN)));
    }

    #[test]
    fn a_file_of_another_version_or_broken_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), "{not json").unwrap();
        assert!(TaskDefCache::load(dir.path()).get(ARN).is_none());
        let mut c = TaskDefCache::load(dir.path());
        c.store([&td(ARN)]);
        let text = std::fs::read_to_string(dir.path().join(FILE)).unwrap();
        std::fs::write(
            dir.path().join(FILE),
            text.replace("\"version\":2", "\"version\":99"),
        )
        .unwrap();
        assert!(TaskDefCache::load(dir.path()).get(ARN).is_none());
        // A place this build does not know: described again rather than misread.
        std::fs::write(
            dir.path().join(FILE),
            text.replace("repository_credentials", "from_the_future"),
        )
        .unwrap();
        assert!(TaskDefCache::load(dir.path()).get(ARN).is_none());
    }
}
