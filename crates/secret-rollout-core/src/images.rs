//! What else a forced redeploy changes: images behind mutable tags.
//!
//! ECS resolves a container's image tag to a digest when a deployment is created
//! (version consistency) or at each launch: a forced new deployment therefore also ships
//! whatever was pushed under the tag since the last one. Before any write, the tool compares,
//! per consumer container, the digest its running tasks run (`DescribeTasks`
//! `containers[].imageDigest`) with the digest its image reference resolves to now in ECR
//! (`BatchGetImage`). The decisions are here, pure; the reads in [`check`].
//!
//! - A reference by digest (`@sha256:`) cannot move: no check.
//! - An image outside ECR: its registry is not asked, "cannot check".
//! - A repository the credentials cannot read (another account, a denied policy), a tag
//!   that is not there: "cannot check".
//! - Multi-architecture images: a task may run an image index's digest or one of its
//!   platform manifests'. Like is compared with like: the running digest counts as the
//!   same image when it is the index the tag points to, one of its manifests, or an index
//!   that holds the manifest the tag points to; as changed only when both sides are known
//!   (read from the repository) and differ; when the running digest is no longer in the
//!   repository and could be either kind, "cannot check" rather than a false alarm.
//! - An immutable repository cannot move a tag: the same read finds the same digest.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

pub use crate::aws::model::ImageId;
use crate::aws::model::{ImageObs, TaskObs};
use crate::rollout::ServiceRef;

/// An image index or manifest list: a multi-architecture image.
pub const INDEX_MEDIA_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// How a warning of a moved tag starts when `--allow-image-change` lets the run go on.
pub const ALLOWED: &str = "going on (--allow-image-change)";

/// How a warning of a moved tag starts before a restore, which is never refused (refusing
/// it would be worse).
pub const RESTORING: &str = "restoring (a restore is never refused)";

/// How the refusal of a moved tag starts (see [`ImageChecks::refusal`], [`is_refusal`]).
pub const REFUSED: &str = "a redeploy would also ship a new image";

/// Whether `e` is the refusal of a moved tag (a watcher logs it and skips the sync).
pub fn is_refusal(e: &crate::error::Error) -> bool {
    e.kind == crate::error::Kind::Refused && e.message.starts_with(REFUSED)
}

/// Most image ids one `BatchGetImage` takes.
pub const BATCH: usize = 100;

/// An image reference as a container definition writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// `...@sha256:...`: pinned.
    Digest(String),
    /// A tag in ECR.
    Ecr(EcrTag),
    /// Another registry (Docker Hub, `public.ecr.aws`, ...).
    Other,
}

/// A tag in an ECR repository.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct EcrTag {
    /// The registry's account id.
    pub account: String,
    /// Its region.
    pub region: String,
    /// The repository name.
    pub repository: String,
    /// The tag (`latest` when none is written).
    pub tag: String,
}

impl EcrTag {
    /// The repository it is in.
    pub fn repo(&self) -> Repo {
        Repo {
            account: self.account.clone(),
            region: self.region.clone(),
            repository: self.repository.clone(),
        }
    }
}

/// An ECR repository: what one `BatchGetImage` reads from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Repo {
    /// The registry's account id.
    pub account: String,
    /// Its region.
    pub region: String,
    /// The repository name.
    pub repository: String,
}

/// Parses an image reference: `REGISTRY/REPOSITORY[:TAG][@DIGEST]`.
pub fn parse(image: &str) -> Reference {
    if let Some((_, digest)) = image.split_once('@') {
        return Reference::Digest(digest.to_string());
    }
    let slash = image.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match image[slash..].rfind(':') {
        Some(i) => (&image[..slash + i], &image[slash + i + 1..]),
        None => (image, "latest"),
    };
    let Some((host, repository)) = name.split_once('/') else {
        return Reference::Other;
    };
    let parts: Vec<&str> = host.split('.').collect();
    match parts.as_slice() {
        [account, "dkr", "ecr", region, "amazonaws", "com" | "com.cn"]
            if account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Reference::Ecr(EcrTag {
                account: account.to_string(),
                region: region.to_string(),
                repository: repository.to_string(),
                tag: tag.to_string(),
            })
        }
        _ => Reference::Other,
    }
}

/// An image as the repository holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Its digest.
    pub digest: String,
    /// Whether it is an image index (multi-architecture).
    pub index: bool,
    /// For an index: the digests of its manifests.
    pub children: Vec<String>,
}

impl Manifest {
    /// From what `BatchGetImage` returned.
    pub fn of(image: &ImageObs) -> Manifest {
        Manifest::read(&image.digest, image.media_type.as_deref(), &image.manifest)
    }

    /// From what `BatchGetImage` returned: the media type (declared, else the manifest's
    /// own `mediaType`) and the manifest's text.
    pub fn read(digest: &str, media_type: Option<&str>, manifest: &str) -> Manifest {
        let doc: Option<serde_json::Value> = serde_json::from_str(manifest).ok();
        let declared = media_type
            .map(str::to_string)
            .or_else(|| doc.as_ref()?.get("mediaType")?.as_str().map(str::to_string));
        let children: Vec<String> = doc
            .as_ref()
            .and_then(|d| d.get("manifests")?.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|m| m.get("digest")?.as_str().map(str::to_string))
            .collect();
        let index = declared
            .as_deref()
            .is_some_and(|m| INDEX_MEDIA_TYPES.contains(&m))
            || (declared.is_none() && !children.is_empty());
        Manifest {
            digest: digest.to_string(),
            index,
            children,
        }
    }
}

/// What a tag resolves to now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Now {
    /// This image.
    Found(Manifest),
    /// It could not be read: why (for "cannot check").
    Unknown(String),
}

/// The verdict on one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Pinned by digest: a redeploy runs the same image.
    Pinned,
    /// The tag resolves to what the tasks run.
    Unchanged,
    /// The tag moved: a redeploy ships `new` instead of `running`.
    Changed {
        /// The digests running tasks run that differ from `new`.
        running: Vec<String>,
        /// What the tag resolves to now.
        new: String,
    },
    /// It cannot be told: why.
    CannotCheck {
        /// Why.
        reason: String,
    },
}

/// Whether a running digest is the image `now` is: `Some(true)` the same, `Some(false)`
/// another, `None` cannot be told. `known` holds the running digests the repository still
/// has.
fn same_image(running: &str, now: &Manifest, known: Option<&Manifest>) -> Option<bool> {
    if running == now.digest || (now.index && now.children.iter().any(|c| c == running)) {
        return Some(true);
    }
    match known {
        // An index that holds the manifest the tag now points to: the same image for
        // that platform.
        Some(k) if k.index && k.children.contains(&now.digest) => Some(true),
        // Both sides known and neither holds the other: another image.
        Some(_) => Some(false),
        // The running digest is gone from the repository: an old index or an old platform
        // manifest, and if an index it might hold `now`: only a single manifest on both
        // sides can be told apart by digest alone... which `known` would have said.
        None => None,
    }
}

/// The verdict on a container whose tasks run `running` (distinct digests; empty when ECS
/// reports none) and whose tag resolves to `now`; `known` holds what the repository says of
/// the running digests it still has.
pub fn judge(running: &BTreeSet<String>, now: &Now, known: &BTreeMap<String, Manifest>) -> Verdict {
    let now = match now {
        Now::Found(m) => m,
        Now::Unknown(reason) => {
            return Verdict::CannotCheck {
                reason: reason.clone(),
            }
        }
    };
    if running.is_empty() {
        return Verdict::CannotCheck {
            reason: "ECS reports no image digest for its running tasks".into(),
        };
    }
    let mut changed = Vec::new();
    let mut untold = Vec::new();
    for r in running {
        match same_image(r, now, known.get(r)) {
            Some(true) => {}
            Some(false) => changed.push(r.clone()),
            None => untold.push(r.clone()),
        }
    }
    if !changed.is_empty() {
        Verdict::Changed {
            running: changed,
            new: now.digest.clone(),
        }
    } else if !untold.is_empty() {
        Verdict::CannotCheck {
            reason: format!(
                "{} is no longer in the repository: whether it is the same image as {} (an image index and its platform images) cannot be told",
                untold.join(", "),
                now.digest
            ),
        }
    } else {
        Verdict::Unchanged
    }
}

/// One consumer container's check, as `plan` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerCheck {
    /// Cluster name.
    pub cluster: String,
    /// Service name.
    pub service: String,
    /// Container name.
    pub container: String,
    /// The image as the task definition writes it.
    pub image: String,
    /// The tag, for a tag reference.
    pub tag: Option<String>,
    /// The verdict.
    #[serde(flatten)]
    pub verdict: Verdict,
}

impl ContainerCheck {
    /// The line a plan or report shows for it, when it has something to say.
    pub fn line(&self) -> Option<String> {
        let who = format!(
            "{}/{} container {}",
            self.cluster, self.service, self.container
        );
        match &self.verdict {
            Verdict::Pinned | Verdict::Unchanged => None,
            Verdict::Changed { running, new } => Some(format!(
                "{who}: {} (tag {}) moved: tasks run {}, a redeploy ships {new}",
                self.image,
                self.tag.as_deref().unwrap_or("?"),
                running.join(", "),
            )),
            Verdict::CannotCheck { reason } => Some(format!(
                "{who}: {}: cannot check whether a redeploy changes the image: {reason}",
                self.image
            )),
        }
    }
}

/// The image checks of a plan (or a redeploy), and the ECR calls they cost.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ImageChecks {
    /// Every consumer container, in service order.
    pub containers: Vec<ContainerCheck>,
    /// The calls the check made.
    pub calls: Calls,
    /// The latest `createdAt` or `startedAt` of the tasks listed (ECS's clock): the
    /// listing came after it, so anything read later was read after it. A restore uses it
    /// to prove which tasks resolved the previous version before the write (see
    /// [`crate::rollout::restore`]). `None`: no task listed.
    #[serde(skip)]
    pub listed_until: Option<f64>,
}

impl ImageChecks {
    /// The containers whose tag moved.
    pub fn changed(&self) -> impl Iterator<Item = &ContainerCheck> {
        self.containers
            .iter()
            .filter(|c| matches!(c.verdict, Verdict::Changed { .. }))
    }

    /// The containers that cannot be checked.
    pub fn unchecked(&self) -> impl Iterator<Item = &ContainerCheck> {
        self.containers
            .iter()
            .filter(|c| matches!(c.verdict, Verdict::CannotCheck { .. }))
    }

    /// The services a redeploy would also ship a new image to.
    pub fn changed_services(&self) -> Vec<ServiceRef> {
        let mut out: Vec<ServiceRef> = Vec::new();
        for c in self.changed() {
            let s = ServiceRef {
                cluster: c.cluster.clone(),
                service: c.service.clone(),
            };
            if !out.contains(&s) {
                out.push(s);
            }
        }
        out
    }

    /// Tells `reporter` of each moved tag a run goes on with: `going_on` says why
    /// (`--allow-image-change`, or a restore, which is never refused).
    pub fn warn(&self, reporter: &dyn crate::progress::Reporter, going_on: &str) {
        for line in self.changed().filter_map(ContainerCheck::line) {
            reporter.report(&crate::progress::Event::Warning {
                text: format!("{going_on} although {line}"),
            });
        }
    }

    /// The containers whose tag moved, for a report.
    pub fn changed_list(&self) -> Vec<ContainerCheck> {
        self.changed().cloned().collect()
    }

    /// Why a run must stop before any write: a tag moved and `allow` (`--allow-image-change`)
    /// is not given.
    pub fn refusal(&self, allow: bool) -> Option<crate::error::Error> {
        let lines: Vec<String> = self.changed().filter_map(ContainerCheck::line).collect();
        if allow || lines.is_empty() {
            return None;
        }
        Some(
            crate::error::Error::refused(format!("{REFUSED}: {}", lines.join("; ")))
            .hint("deploy the new image on its own first, or rerun with --allow-image-change to ship it with the secret; nothing was written"),
        )
    }
}

/// What to ask each repository: the tags and the running digests, each once, in batches of
/// [`BATCH`].
pub fn batches(
    wanted: &BTreeMap<Repo, (BTreeSet<String>, BTreeSet<String>)>,
) -> Vec<(Repo, Vec<ImageId>)> {
    let mut out = Vec::new();
    for (repo, (tags, digests)) in wanted {
        let ids: Vec<ImageId> = tags
            .iter()
            .map(|t| ImageId::Tag(t.clone()))
            .chain(digests.iter().map(|d| ImageId::Digest(d.clone())))
            .collect();
        for chunk in ids.chunks(BATCH) {
            out.push((repo.clone(), chunk.to_vec()));
        }
    }
    out
}

/// One container image as a service's running tasks run it (`status`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct RunningImage {
    /// Container name.
    pub container: String,
    /// The image as the task's task definition writes it (empty when not known).
    pub image: String,
    /// The digest ECS reports (`imageDigest`); `None` until the image is pulled.
    pub digest: Option<String>,
    /// How many running tasks run it.
    pub tasks: usize,
}

/// What `tasks` run, per container, image and digest, with how many tasks run each
/// (sorted by container): `task_defs` gives each task's images as written.
pub fn running_images<'a>(
    tasks: impl IntoIterator<Item = &'a TaskObs>,
    task_defs: &std::collections::HashMap<String, crate::aws::model::TaskDef>,
) -> Vec<RunningImage> {
    let mut counts: BTreeMap<(String, String, Option<String>), usize> = BTreeMap::new();
    for t in tasks {
        let images = task_defs.get(&t.task_definition_arn).map(|td| &td.images);
        for (name, digest) in &t.containers {
            let image = images
                .and_then(|i| i.iter().find(|(n, _)| n == name))
                .map(|(_, image)| image.clone())
                .unwrap_or_default();
            *counts
                .entry((name.clone(), image, digest.clone()))
                .or_default() += 1;
        }
    }
    counts
        .into_iter()
        .map(|((container, image, digest), tasks)| RunningImage {
            container,
            image,
            digest,
            tasks,
        })
        .collect()
}

/// One service to check: its containers' names and images (its task definition's).
#[derive(Debug, Clone)]
pub struct ToCheck {
    /// The service.
    pub service: ServiceRef,
    /// (container, image) as its task definition writes them.
    pub containers: Vec<(String, String)>,
    /// How many tasks it runs, as `DescribeServices` counts them (what a listing of its
    /// own would cost).
    pub tasks: usize,
    /// A blue/green, linear or canary service: its tasks are listed even without a tag in
    /// ECR, so that a restore may prove them to hold the previous value and leave them
    /// alone (see [`crate::rollout::restore`]).
    pub staged: bool,
}

impl ToCheck {
    /// Whether a container names a tag in ECR: only those are compared with the digests
    /// the tasks run.
    pub fn needs_digests(&self) -> bool {
        self.containers
            .iter()
            .any(|(_, image)| matches!(parse(image), Reference::Ecr(_)))
    }

    /// Whether its running tasks are listed: for their digests, or for a restore's proof.
    pub fn needs_listing(&self) -> bool {
        self.staged || self.needs_digests()
    }
}

/// Per service (in order) and container, the digests its running tasks report; the calls
/// made; and the listing's moment (see [`ImageChecks::listed_until`]).
pub type Running = (Vec<BTreeMap<String, BTreeSet<String>>>, Calls, Option<f64>);

/// The calls an image check made, counted in the JSON output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Calls {
    /// `ListTasks` pages.
    pub list_tasks: usize,
    /// `DescribeTasks` (a hundred tasks each).
    pub describe_tasks: usize,
    /// `BatchGetImage` (a hundred image ids each).
    pub batch_get_image: usize,
}

impl Calls {
    fn add(&mut self, other: Calls) {
        self.list_tasks += other.list_tasks;
        self.describe_tasks += other.describe_tasks;
        self.batch_get_image += other.batch_get_image;
    }
}

/// What listing the running tasks of one service with `tasks` tasks costs: its `ListTasks`
/// pages and its `DescribeTasks` calls.
pub fn listing_cost(tasks: usize) -> usize {
    tasks.div_ceil(100).max(1) + tasks.div_ceil(100)
}

/// Whether a listing of the whole cluster, `pages` pages and `arns` tasks so far with more
/// to come, is to be given up for listings per service, whose cost is `budget`: it already
/// costs as much (its remaining `DescribeTasks` counted).
pub fn give_up_cluster_listing(pages: usize, arns: usize, budget: usize) -> bool {
    pages + arns.div_ceil(100) >= budget
}

/// The running tasks of `services` (name, expected task count) in `cluster`, with the calls
/// made: one listing of the whole cluster (`ListTasks` by a hundred, `DescribeTasks` by a
/// hundred, each task matched to its service by its `group`, `service:NAME`) when more than
/// one service is checked there, unless the cluster runs so many other tasks that listing
/// it costs more than listing each service (then `None`: list them one by one).
async fn cluster_tasks(
    ecs: &crate::aws::ecs::Client,
    cluster: &str,
    services: &[(String, usize)],
) -> Result<(Option<BTreeMap<String, Vec<TaskObs>>>, Calls), crate::aws::AwsError> {
    let mut calls = Calls::default();
    if services.len() < 2 {
        return Ok((None, calls));
    }
    let budget: usize = services.iter().map(|(_, n)| listing_cost(*n)).sum();
    let mut arns = Vec::new();
    let mut token = None;
    loop {
        let (page, next) = crate::aws::ecs::running_task_page(ecs, cluster, None, token).await?;
        calls.list_tasks += 1;
        arns.extend(page);
        token = next;
        if token.is_none() {
            break;
        }
        if give_up_cluster_listing(calls.list_tasks, arns.len(), budget) {
            return Ok((None, calls));
        }
    }
    let tasks = crate::aws::ecs::describe_tasks(ecs, cluster, &arns).await?;
    calls.describe_tasks += arns.len().div_ceil(100);
    let mut out: BTreeMap<String, Vec<TaskObs>> = services
        .iter()
        .map(|(name, _)| (name.clone(), Vec::new()))
        .collect();
    for t in tasks {
        if let Some(list) = t
            .group
            .strip_prefix("service:")
            .and_then(|name| out.get_mut(name))
        {
            list.push(t);
        }
    }
    Ok((Some(out), calls))
}

/// The running tasks of one service, with the calls made.
async fn service_tasks(
    ecs: &crate::aws::ecs::Client,
    cluster: &str,
    service: &str,
) -> Result<(Vec<TaskObs>, Calls), crate::aws::AwsError> {
    let mut calls = Calls::default();
    let mut arns = Vec::new();
    let mut token = None;
    loop {
        let (page, next) =
            crate::aws::ecs::running_task_page(ecs, cluster, Some(service), token).await?;
        calls.list_tasks += 1;
        arns.extend(page);
        token = next;
        if token.is_none() {
            break;
        }
    }
    let tasks = crate::aws::ecs::describe_tasks(ecs, cluster, &arns).await?;
    calls.describe_tasks += arns.len().div_ceil(100);
    Ok((tasks, calls))
}

/// The running tasks (desiredStatus RUNNING) of `services` (each with how many tasks it
/// runs, as `DescribeServices` counts them), by (cluster, service), with the calls made:
/// one listing per cluster where more than one service is asked (see [`cluster_tasks`]),
/// else (or once a cluster's listing is given up) one per service. `status` reads its
/// tasks this way too.
pub async fn tasks_by_service(
    ecs: &crate::aws::ecs::Client,
    services: &[(ServiceRef, usize)],
) -> crate::error::Result<(BTreeMap<(String, String), Vec<TaskObs>>, Calls)> {
    use futures::StreamExt;
    let limit = crate::aws::ecs::DESCRIBE_CONCURRENCY;
    let mut calls = Calls::default();
    let mut clusters: BTreeMap<&str, Vec<(String, usize)>> = BTreeMap::new();
    for (s, n) in services {
        clusters
            .entry(s.cluster.as_str())
            .or_default()
            .push((s.service.clone(), *n));
    }
    // Boxed, so the future stays `Send` for any caller (no closure types in its state).
    type ClusterListing<'a> = futures::future::BoxFuture<
        'a,
        crate::error::Result<(&'a str, Option<BTreeMap<String, Vec<TaskObs>>>, Calls)>,
    >;
    let listings: Vec<ClusterListing<'_>> = clusters
        .iter()
        .map(|(cluster, names)| {
            Box::pin(async move {
                let (tasks, calls) = cluster_tasks(ecs, cluster, names)
                    .await
                    .map_err(|e| crate::discovery::ecs_error(cluster, e))?;
                Ok((*cluster, tasks, calls))
            }) as ClusterListing<'_>
        })
        .collect();
    let listed: Vec<_> = futures::stream::iter(listings)
        .buffered(limit)
        .collect()
        .await;
    let mut tasks: BTreeMap<(String, String), Vec<TaskObs>> = BTreeMap::new();
    let mut alone: Vec<&ServiceRef> = Vec::new();
    for result in listed {
        let (cluster, found, c) = result?;
        calls.add(c);
        match found {
            Some(found) => {
                for (name, list) in found {
                    tasks.insert((cluster.to_string(), name), list);
                }
            }
            None => alone.extend(
                services
                    .iter()
                    .map(|(s, _)| s)
                    .filter(|s| s.cluster == cluster),
            ),
        }
    }
    type Listing<'a> =
        futures::future::BoxFuture<'a, crate::error::Result<(&'a ServiceRef, Vec<TaskObs>, Calls)>>;
    let listings: Vec<Listing<'_>> = alone
        .into_iter()
        .map(|s| {
            Box::pin(async move {
                let (tasks, calls) = service_tasks(ecs, &s.cluster, &s.service)
                    .await
                    .map_err(|e| crate::discovery::ecs_error(&s.cluster, e))?;
                Ok((s, tasks, calls))
            }) as Listing<'_>
        })
        .collect();
    let listed: Vec<_> = futures::stream::iter(listings)
        .buffered(limit)
        .collect()
        .await;
    for result in listed {
        let (s, list, c) = result?;
        calls.add(c);
        tasks.insert((s.cluster.clone(), s.service.clone()), list);
    }
    Ok((tasks, calls))
}

/// Per service of `services` (in order) and container: the digests its running tasks
/// report, read cluster by cluster (see [`tasks_by_service`]), with the calls made. Only a
/// tag in ECR is compared with what tasks run: services with none are not listed.
pub async fn running_digests(
    clients: &crate::clients::Clients,
    services: &[ToCheck],
) -> crate::error::Result<Running> {
    let wanted: Vec<(ServiceRef, usize)> = services
        .iter()
        .filter(|s| s.needs_listing())
        .map(|s| (s.service.clone(), s.tasks))
        .collect();
    let (tasks, calls) = tasks_by_service(&clients.ecs, &wanted).await?;
    let listed_until = tasks
        .values()
        .flatten()
        .map(|t| t.started_at.unwrap_or(t.created_at).max(t.created_at))
        .reduce(f64::max);
    let running = services
        .iter()
        .map(|s| {
            let mut per: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            let key = (s.service.cluster.clone(), s.service.service.clone());
            for t in tasks.get(&key).into_iter().flatten() {
                for (name, digest) in &t.containers {
                    if let Some(d) = digest {
                        per.entry(name.clone()).or_default().insert(d.clone());
                    }
                }
            }
            per
        })
        .collect();
    Ok((running, calls, listed_until))
}

/// Checks `services`: lists their running tasks (for the digests ECS reports: see
/// [`running_digests`]), reads from ECR what their tags and those digests are now (one
/// `BatchGetImage` per repository and hundred ids, a few at a time), and judges each
/// container. ECR errors make "cannot check" verdicts; an ECS error fails (as every read of
/// the services does).
pub async fn check(
    clients: &crate::clients::Clients,
    services: &[ToCheck],
) -> crate::error::Result<ImageChecks> {
    let (running, calls, listed_until) = running_digests(clients, services).await?;
    let mut checks = judge_services(clients, services, &running, calls).await?;
    checks.listed_until = listed_until;
    Ok(checks)
}

/// Reads from ECR what the tags of `services` and the digests they run (`running`, per
/// service in order) are now, and judges each container; `calls`: those made so far.
pub async fn judge_services(
    clients: &crate::clients::Clients,
    services: &[ToCheck],
    running: &[BTreeMap<String, BTreeSet<String>>],
    mut calls: Calls,
) -> crate::error::Result<ImageChecks> {
    use futures::StreamExt;
    let limit = crate::aws::ecs::DESCRIBE_CONCURRENCY;
    let mut wanted: BTreeMap<Repo, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
    for (s, per) in services.iter().zip(running) {
        for (name, image) in &s.containers {
            if let Reference::Ecr(t) = parse(image) {
                let entry = wanted.entry(t.repo()).or_default();
                entry.0.insert(t.tag.clone());
                entry.1.extend(per.get(name).into_iter().flatten().cloned());
            }
        }
    }
    let asked = batches(&wanted);
    calls.batch_get_image += asked.len();
    type Reading<'a> =
        futures::future::BoxFuture<'a, Result<crate::aws::ecr::Found, crate::aws::AwsError>>;
    let readings: Vec<Reading<'_>> = asked
        .iter()
        .map(|(repo, ids)| {
            Box::pin(async move {
                let ecr = clients.ecr_in(&repo.region);
                crate::aws::ecr::batch_get(&ecr, &repo.account, &repo.repository, ids).await
            }) as Reading<'_>
        })
        .collect();
    let answers: Vec<_> = futures::stream::iter(readings)
        .buffered(limit)
        .collect()
        .await;
    // Per repository: what each id is now, or why the repository cannot be read.
    let mut found: BTreeMap<Repo, Result<BTreeMap<ImageId, Manifest>, String>> = BTreeMap::new();
    for ((repo, _), answer) in asked.iter().zip(answers) {
        let slot = found
            .entry(repo.clone())
            .or_insert_with(|| Ok(BTreeMap::new()));
        match answer {
            Ok(got) => {
                if let Ok(map) = slot {
                    for (id, image) in got {
                        if let Some(image) = image {
                            map.insert(id, Manifest::of(&image));
                        }
                    }
                }
            }
            Err(e) => {
                *slot = Err(unreadable(repo, &e));
            }
        }
    }
    let mut containers = Vec::new();
    for (s, per) in services.iter().zip(running) {
        for (name, image) in &s.containers {
            let (tag, verdict) = match parse(image) {
                Reference::Digest(_) => (None, Verdict::Pinned),
                Reference::Other => (
                    None,
                    Verdict::CannotCheck {
                        reason: "not an ECR image: its registry is not asked".into(),
                    },
                ),
                Reference::Ecr(t) => {
                    let now = match found.get(&t.repo()) {
                        Some(Ok(map)) => match map.get(&ImageId::Tag(t.tag.clone())) {
                            Some(m) => Now::Found(m.clone()),
                            None => Now::Unknown(format!(
                                "tag {} is not in repository {}",
                                t.tag, t.repository
                            )),
                        },
                        Some(Err(why)) => Now::Unknown(why.clone()),
                        None => Now::Unknown("not read".into()),
                    };
                    let known: BTreeMap<String, Manifest> = match found.get(&t.repo()) {
                        Some(Ok(map)) => map
                            .iter()
                            .filter_map(|(id, m)| match id {
                                ImageId::Digest(d) => Some((d.clone(), m.clone())),
                                ImageId::Tag(_) => None,
                            })
                            .collect(),
                        _ => BTreeMap::new(),
                    };
                    let empty = BTreeSet::new();
                    let digests = per.get(name).unwrap_or(&empty);
                    (Some(t.tag.clone()), judge(digests, &now, &known))
                }
            };
            containers.push(ContainerCheck {
                cluster: s.service.cluster.clone(),
                service: s.service.service.clone(),
                container: name.clone(),
                image: image.clone(),
                tag,
                verdict,
            });
        }
    }
    Ok(ImageChecks {
        containers,
        calls,
        listed_until: None,
    })
}

/// [`check`] for services named by the caller (`redeploy`, `rollback`, `resume`): describes
/// them and their task definitions first.
pub async fn check_services(
    clients: &crate::clients::Clients,
    services: &[ServiceRef],
) -> crate::error::Result<ImageChecks> {
    let mut clusters: Vec<String> = services.iter().map(|s| s.cluster.clone()).collect();
    clusters.sort();
    clusters.dedup();
    let mut to_check = Vec::new();
    for cluster in &clusters {
        let names: Vec<String> = services
            .iter()
            .filter(|s| &s.cluster == cluster)
            .map(|s| s.service.clone())
            .collect();
        let inv = crate::discovery::inventory(
            &clients.ecs,
            std::slice::from_ref(cluster),
            Some(&names),
            false,
        )
        .await?;
        to_check.extend(crate::plan::to_check(
            &inv,
            services.iter().filter(|s| &s.cluster == cluster),
        ));
    }
    check(clients, &to_check).await
}

/// Before `redeploy`, `rollback` or `resume` deploys: refuses (exit 4) when a tag moved
/// unless `allow`; else warns of each moved tag and returns the checks for the report.
pub async fn guard(
    clients: &crate::clients::Clients,
    services: &[ServiceRef],
    allow: bool,
    reporter: &dyn crate::progress::Reporter,
) -> crate::error::Result<ImageChecks> {
    let checks = check_services(clients, services).await?;
    if let Some(refusal) = checks.refusal(allow) {
        return Err(refusal);
    }
    checks.warn(reporter, ALLOWED);
    Ok(checks)
}

/// Why a repository could not be read, for "cannot check".
fn unreadable(repo: &Repo, e: &crate::aws::AwsError) -> String {
    use crate::aws::Fault;
    let what = format!(
        "repository {} (account {}, {})",
        repo.repository, repo.account, repo.region
    );
    match e.fault {
        Fault::AccessDenied => format!("the credentials cannot read {what} (ecr:BatchGetImage)"),
        Fault::NotFound => format!("{what} does not exist"),
        _ => format!("reading {what} failed: {}", e.detail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    const I1: &str = "sha256:aaaa111111111111111111111111111111111111111111111111111111111111";
    const I2: &str = "sha256:aaaa222222222222222222222222222222222222222222222222222222222222";

    fn single(d: &str) -> Manifest {
        Manifest {
            digest: d.into(),
            index: false,
            children: vec![],
        }
    }

    fn index(d: &str, children: &[&str]) -> Manifest {
        Manifest {
            digest: d.into(),
            index: true,
            children: children.iter().map(|c| c.to_string()).collect(),
        }
    }

    fn set(ds: &[&str]) -> BTreeSet<String> {
        ds.iter().map(|d| d.to_string()).collect()
    }

    fn known(ms: &[Manifest]) -> BTreeMap<String, Manifest> {
        ms.iter().map(|m| (m.digest.clone(), m.clone())).collect()
    }

    fn changed(running: &[&str], new: &str) -> Verdict {
        Verdict::Changed {
            running: running.iter().map(|d| d.to_string()).collect(),
            new: new.into(),
        }
    }

    fn cannot(v: &Verdict) -> bool {
        matches!(v, Verdict::CannotCheck { .. })
    }

    /// (case, running digests, what the tag is now, what the repository knows, verdict:
    /// `None` for "cannot check").
    type Case = (
        &'static str,
        Vec<&'static str>,
        Now,
        Vec<Manifest>,
        Option<Verdict>,
    );

    #[test]
    fn judge_table() {
        // (case, running digests, what the tag is now, what the repository knows, verdict)
        let cases: Vec<Case> = vec![
            (
                "unchanged single",
                vec![D1],
                Now::Found(single(D1)),
                vec![single(D1)],
                Some(Verdict::Unchanged),
            ),
            (
                "moved single, old still there",
                vec![D1],
                Now::Found(single(D2)),
                vec![single(D1)],
                Some(changed(&[D1], D2)),
            ),
            (
                "moved single, old gone: cannot tell (could have been an index holding it)",
                vec![D1],
                Now::Found(single(D2)),
                vec![],
                None,
            ),
            (
                "tasks on two digests, one moved",
                vec![D1, D2],
                Now::Found(single(D2)),
                vec![single(D1)],
                Some(changed(&[D1], D2)),
            ),
            (
                "index unchanged, tasks report the index",
                vec![I1],
                Now::Found(index(I1, &[D1, D2])),
                vec![],
                Some(Verdict::Unchanged),
            ),
            (
                "index unchanged, tasks report a platform manifest",
                vec![D1],
                Now::Found(index(I1, &[D1, D2])),
                vec![],
                Some(Verdict::Unchanged),
            ),
            (
                "index moved, old index known",
                vec![I1],
                Now::Found(index(I2, &[D2])),
                vec![index(I1, &[D1])],
                Some(changed(&[I1], I2)),
            ),
            (
                "index moved, old platform manifest known",
                vec![D1],
                Now::Found(index(I2, &[D2])),
                vec![single(D1)],
                Some(changed(&[D1], I2)),
            ),
            (
                "index moved, old digest gone: cannot tell",
                vec![I1],
                Now::Found(index(I2, &[D2])),
                vec![],
                None,
            ),
            (
                "tag moved to a platform manifest of the running index",
                vec![I1],
                Now::Found(single(D1)),
                vec![index(I1, &[D1, D2])],
                Some(Verdict::Unchanged),
            ),
            (
                "tag moved from an index to another single image",
                vec![I1],
                Now::Found(single(D2)),
                vec![index(I1, &[D1])],
                Some(changed(&[I1], D2)),
            ),
            (
                "tag unreadable",
                vec![D1],
                Now::Unknown("AccessDenied".into()),
                vec![],
                None,
            ),
            (
                "no running digest",
                vec![],
                Now::Found(single(D1)),
                vec![],
                None,
            ),
        ];
        for (case, running, now, repo, want) in cases {
            let got = judge(&set(&running), &now, &known(&repo));
            match want {
                Some(want) => assert_eq!(got, want, "{case}"),
                None => assert!(cannot(&got), "{case}: {got:?}"),
            }
        }
    }

    #[test]
    fn references_parse() {
        let ecr = |a: &str, r: &str, repo: &str, t: &str| {
            Reference::Ecr(EcrTag {
                account: a.into(),
                region: r.into(),
                repository: repo.into(),
                tag: t.into(),
            })
        };
        let cases = [
            (
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com/online-lpa/api_app:v1.0.0",
                ecr("123456789012", "eu-west-1", "online-lpa/api_app", "v1.0.0"),
            ),
            (
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com/api",
                ecr("123456789012", "eu-west-1", "api", "latest"),
            ),
            (
                "210987654321.dkr.ecr.us-east-1.amazonaws.com/base:main",
                ecr("210987654321", "us-east-1", "base", "main"),
            ),
            (
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com/api@sha256:abc",
                Reference::Digest("sha256:abc".into()),
            ),
            (
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com/api:v1@sha256:abc",
                Reference::Digest("sha256:abc".into()),
            ),
            ("nginx:1.27", Reference::Other),
            ("nginx", Reference::Other),
            ("public.ecr.aws/nginx/nginx:1.27", Reference::Other),
            ("ghcr.io/org/app:main", Reference::Other),
            ("registry.local:5000/app", Reference::Other),
        ];
        for (image, want) in cases {
            assert_eq!(parse(image), want, "{image}");
        }
    }

    #[test]
    fn manifests_tell_an_index_by_media_type_or_by_its_manifests() {
        let list = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[{"digest":"sha256:a"},{"digest":"sha256:b"}]}"#;
        let m = Manifest::read("sha256:i", None, list);
        assert!(m.index);
        assert_eq!(m.children, vec!["sha256:a", "sha256:b"]);
        // An OCI index need not declare its mediaType in the body; ECR says it.
        let oci = r#"{"schemaVersion":2,"manifests":[{"digest":"sha256:a"}]}"#;
        assert!(Manifest::read("sha256:i", Some(INDEX_MEDIA_TYPES[0]), oci).index);
        assert!(Manifest::read("sha256:i", None, oci).index);
        let image = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{},"layers":[]}"#;
        assert!(!Manifest::read("sha256:d", None, image).index);
    }

    #[test]
    fn batches_ask_each_id_once_and_at_most_a_hundred_per_call() {
        let repo = |name: &str| Repo {
            account: "123456789012".into(),
            region: "eu-west-1".into(),
            repository: name.into(),
        };
        let mut wanted = BTreeMap::new();
        let tags: BTreeSet<String> = (0..150).map(|i| format!("t{i}")).collect();
        wanted.insert(repo("a"), (tags, set(&[D1, D2])));
        wanted.insert(repo("b"), (set(&["live"]), set(&[D1])));
        let got = batches(&wanted);
        let sizes: Vec<(String, usize)> = got
            .iter()
            .map(|(r, ids)| (r.repository.clone(), ids.len()))
            .collect();
        assert_eq!(
            sizes,
            vec![("a".into(), 100), ("a".into(), 52), ("b".into(), 2)]
        );
    }

    #[test]
    fn a_cluster_listing_is_given_up_once_it_costs_what_listing_each_service_would() {
        // One service: a page of ARNs and a DescribeTasks; none running: the page alone.
        assert_eq!(listing_cost(0), 1);
        assert_eq!(listing_cost(1), 2);
        assert_eq!(listing_cost(100), 2);
        assert_eq!(listing_cost(101), 4);
        // Fifty services of one task: a hundred calls one by one; the cluster's listing
        // goes on while it costs less.
        let budget: usize = (0..50).map(|_| listing_cost(1)).sum();
        assert_eq!(budget, 100);
        assert!(!give_up_cluster_listing(1, 100, budget));
        assert!(!give_up_cluster_listing(49, 4_900, budget));
        assert!(give_up_cluster_listing(50, 5_000, budget));
        // Two services of one task and a cluster full of other tasks: given up after the
        // second page (four calls either way), not after reading the whole cluster.
        let budget = listing_cost(1) * 2;
        assert!(!give_up_cluster_listing(1, 100, budget));
        assert!(give_up_cluster_listing(2, 200, budget));
    }

    #[test]
    fn only_a_moved_tag_refuses_and_the_flag_lets_it_through() {
        let check = |verdict| ContainerCheck {
            cluster: "c".into(),
            service: "api".into(),
            container: "app".into(),
            image: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/api:live".into(),
            tag: Some("live".into()),
            verdict,
        };
        let quiet = ImageChecks {
            containers: vec![
                check(Verdict::Unchanged),
                check(Verdict::Pinned),
                check(Verdict::CannotCheck { reason: "x".into() }),
            ],
            ..ImageChecks::default()
        };
        assert!(quiet.refusal(false).is_none());
        assert!(quiet.changed_services().is_empty());
        let moved = ImageChecks {
            containers: vec![check(changed(&[D1], D2))],
            ..ImageChecks::default()
        };
        let e = moved.refusal(false).expect("a moved tag refuses");
        assert_eq!(e.kind, crate::error::Kind::Refused);
        assert!(
            e.message.contains(D1)
                && e.message.contains(D2)
                && e.message.contains("c/api container app")
        );
        assert!(e.hint.as_deref().unwrap().contains("--allow-image-change"));
        assert!(moved.refusal(true).is_none());
        assert_eq!(moved.changed_services().len(), 1);
    }
}
