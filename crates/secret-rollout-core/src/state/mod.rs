//! Where the locks and journals live: the local state directory (the default), or, for a
//! team, an S3 bucket as well (`state = "s3://BUCKET/PREFIX"` in an environment of
//! `secret-rollout.toml`).
//!
//! With S3 the local state directory stays the working copy (every record is appended and
//! `fsync`ed there first) and the bucket is the shared one:
//! - the lock of a secret is an object `PREFIX/locks/<environment>--<secret>-<hash>.json`
//!   created with `If-None-Match: *` and renewed with `If-Match` on its ETag (a lease, see
//!   [`lease`]); the local `flock` is still taken too;
//! - each journal record is an object `PREFIX/journal/<rotation-id>/<seq>.json` created
//!   with `If-None-Match: *`: nothing is ever overwritten. A record S3 did not take (it was
//!   unreachable) stays local and is pushed by the next record or the next command
//!   ([`sync`]), which also brings rotations other machines recorded into the local
//!   directory, so `history`, `resume` and `status` see them.
//!
//! Nothing stored holds a secret value: journal records have no field that could carry
//! one, and the lock holds ids, names, an ARN, a host name and times.

pub mod lease;
mod location;
pub mod s3;
mod sync;
pub mod task_defs;

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use crate::error::{Error, Result};

pub use lease::{lease_expired, Lease, LeaseSettings};
pub use location::S3Location;
pub use s3::S3State;
pub use sync::{sync, Mirror};

/// Where locks and journals are shared.
#[derive(Clone, Default)]
pub enum Backend {
    /// This machine's state directory only.
    #[default]
    Local,
    /// The state directory, mirrored to an S3 bucket shared by a team.
    S3(Arc<S3State>),
}

impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Backend::Local => f.write_str("Local"),
            Backend::S3(s) => write!(f, "S3({})", s.location),
        }
    }
}

impl Backend {
    /// The bucket, when the state is shared.
    pub fn s3(&self) -> Option<&Arc<S3State>> {
        match self {
            Backend::Local => None,
            Backend::S3(s) => Some(s),
        }
    }
}

/// Runs `fut` to completion from synchronous code inside the (multi-threaded) runtime: the
/// journal and the lock are synchronous APIs, the S3 client is not.
pub fn blocking<F: Future>(fut: F) -> Result<F::Output> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
            Ok(tokio::task::block_in_place(|| h.block_on(fut)))
        }
        _ => Err(
            Error::local("the team state in S3 needs a multi-threaded async runtime").hint(
                "this is a bug in secret-rollout (or in a program embedding it): please report it",
            ),
        ),
    }
}

/// [`sync`] from synchronous code; nothing to do for the local backend.
pub fn sync_blocking(state_dir: &std::path::Path, backend: &Backend) -> Result<()> {
    match backend {
        Backend::Local => Ok(()),
        Backend::S3(s3) => blocking(sync(state_dir, s3))?,
    }
}
