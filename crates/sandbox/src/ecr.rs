//! Amazon ECR, the subset a deployment tool reads: repositories (with
//! `imageTagMutability`), image manifests pushed under tags (`PutImage`), and the reads
//! `BatchGetImage`, `DescribeImages`, `ListImages`, `DescribeRepositories`; plus
//! `CreateRepository` and `BatchDeleteImage` so a test (or the aws CLI) can build and
//! change that state. AWS JSON 1.1, target prefix `AmazonEC2ContainerRegistry_V20150921`.
//!
//! An image is its manifest: its digest is the SHA-256 of the manifest's bytes, as in any
//! registry, so pushing another manifest under a tag moves the tag to another digest. No
//! layers are stored. ECS resolves tags through [`Ecr::resolve`] (see `ecs`, version
//! consistency). Choices where ECR was not observed: a request naming another account's
//! registry is refused with `AccessDeniedException` (the sandbox has one account and
//! grants no cross-account reads); an image left without tags stays (no lifecycle
//! policy) until `BatchDeleteImage` removes it.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};
use sha2::Digest as _;

use crate::{AwsError, Ctx, OpResult};

/// The manifest media type of a single-platform Docker image.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// A Docker manifest list (multi-architecture).
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// An OCI image index (multi-architecture).
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Most image ids one `BatchGetImage` (or `BatchDeleteImage`) takes.
pub const MAX_IMAGE_IDS: usize = 100;

/// One stored image (a manifest).
#[derive(Debug, Clone)]
struct Image {
    manifest: String,
    media_type: String,
    pushed_at: f64,
}

/// One repository.
#[derive(Debug, Clone)]
struct Repo {
    arn: String,
    uri: String,
    created_at: f64,
    mutability: String,
    /// digest -> image.
    images: BTreeMap<String, Image>,
    /// tag -> digest.
    tags: BTreeMap<String, String>,
}

impl Repo {
    fn tags_of(&self, digest: &str) -> Vec<&str> {
        self.tags
            .iter()
            .filter(|(_, d)| d.as_str() == digest)
            .map(|(t, _)| t.as_str())
            .collect()
    }

    fn immutable(&self) -> bool {
        self.mutability.starts_with("IMMUTABLE")
    }
}

/// All ECR state of the account (one region).
#[derive(Debug, Default)]
pub struct Ecr {
    repos: BTreeMap<String, Repo>,
}

/// `sha256:` and the lower-case hex SHA-256 of `bytes`: a registry's content digest.
pub fn digest_of(bytes: &[u8]) -> String {
    format!(
        "sha256:{}",
        data_encoding::HEXLOWER.encode(&sha2::Sha256::digest(bytes))
    )
}

/// An image reference split into its parts: `REGISTRY/REPOSITORY[:TAG][@DIGEST]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// For an ECR image: (account, region) of `ACCOUNT.dkr.ecr.REGION.amazonaws.com`.
    pub ecr: Option<(String, String)>,
    /// The repository name (the path after the registry host).
    pub repository: String,
    /// The tag (`latest` when neither a tag nor a digest is given).
    pub tag: Option<String>,
    /// The digest, for a reference by digest.
    pub digest: Option<String>,
}

impl ImageRef {
    /// Parses an image reference as written in a container definition.
    pub fn parse(image: &str) -> ImageRef {
        let (rest, digest) = match image.split_once('@') {
            Some((r, d)) => (r, Some(d.to_string())),
            None => (image, None),
        };
        // A tag is after the last ':' that comes after the last '/' (a port has a '/' after).
        let slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[slash..].rfind(':') {
            Some(i) => (&rest[..slash + i], Some(rest[slash + i + 1..].to_string())),
            None => (rest, None),
        };
        let tag = tag.or_else(|| digest.is_none().then(|| "latest".to_string()));
        let (host, path) = match name.split_once('/') {
            Some((h, p)) if h.contains('.') || h.contains(':') => (Some(h), p),
            _ => (None, name),
        };
        let ecr = host.and_then(|h| {
            let parts: Vec<&str> = h.split('.').collect();
            match parts.as_slice() {
                [account, "dkr", "ecr", region, "amazonaws", "com", ..] => {
                    Some((account.to_string(), region.to_string()))
                }
                _ => None,
            }
        });
        ImageRef {
            ecr,
            repository: path.to_string(),
            tag,
            digest,
        }
    }
}

fn req_str<'a>(body: &'a Value, key: &str) -> Result<&'a str, AwsError> {
    match body.get(key).and_then(Value::as_str) {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(AwsError::invalid_parameter(format!(
            "Invalid parameter at '{key}' failed to satisfy constraint: 'Member must not be null'"
        ))),
    }
}

fn ts(t: f64) -> Value {
    json!((t * 1000.0).round() / 1000.0)
}

/// The media type a manifest declares, or a Docker v2 manifest's.
fn media_type_of(manifest: &str, given: Option<&str>) -> String {
    if let Some(m) = given {
        return m.to_string();
    }
    serde_json::from_str::<Value>(manifest)
        .ok()
        .and_then(|v| {
            v.get("mediaType")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| DOCKER_MANIFEST.to_string())
}

/// The digests an image index (or manifest list) refers to.
fn children(manifest: &str) -> Vec<String> {
    serde_json::from_str::<Value>(manifest)
        .ok()
        .and_then(|v| v.get("manifests").and_then(Value::as_array).cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|m| m.get("digest").and_then(Value::as_str).map(str::to_string))
        .collect()
}

impl Ecr {
    /// Runs one ECR operation.
    pub fn handle(&mut self, ctx: &mut Ctx<'_>, operation: &str, body: &Value) -> OpResult {
        if let Some(registry) = body.get("registryId").and_then(Value::as_str) {
            if registry != ctx.account {
                return Err(AwsError::new(
                    "AccessDeniedException",
                    format!(
                        "User: arn:aws:iam::{}:user/sandbox is not authorized to perform: ecr:{operation} on resource: arn:aws:ecr:{}:{registry}:repository/{} because no resource-based policy allows the ecr:{operation} action",
                        ctx.account,
                        ctx.region,
                        body.get("repositoryName").and_then(Value::as_str).unwrap_or("*"),
                    ),
                ));
            }
        }
        match operation {
            "CreateRepository" => self.create_repository(ctx, body),
            "DescribeRepositories" => self.describe_repositories(ctx, body),
            "PutImage" => self.put_image(ctx, body),
            "BatchGetImage" => self.batch_get_image(ctx, body),
            "BatchDeleteImage" => self.batch_delete_image(body),
            "DescribeImages" => self.describe_images(ctx, body),
            "ListImages" => self.list_images(ctx, body),
            _ => Err(AwsError::new(
                "UnknownOperationException",
                format!("Unknown operation {operation}"),
            )),
        }
    }

    /// What ECS resolves `image` to at a deployment (or a task launch): the digest of a
    /// digest reference as written; the digest a tag of a repository of this account and
    /// region points to now; `None` for an ECR image that is not there. An image of
    /// another registry (Docker Hub, ...) resolves to a digest made from its name, which
    /// never moves: the sandbox holds no registry but ECR.
    pub fn resolve(&self, image: &str, region: &str, account: &str) -> Option<String> {
        let r = ImageRef::parse(image);
        if let Some(d) = r.digest {
            return Some(d);
        }
        match &r.ecr {
            Some((a, g)) if a == account && g == region => {
                let repo = self.repos.get(&r.repository)?;
                repo.tags.get(r.tag.as_deref()?).cloned()
            }
            Some(_) => None,
            None => Some(digest_of(format!("sandbox-external:{image}").as_bytes())),
        }
    }

    /// Makes `image` (an ECR image of this account and region, by tag) resolvable: creates
    /// its repository (MUTABLE) and pushes a manifest made from its name under its tag,
    /// unless they exist. Scenarios call it for every image their task definitions name.
    pub fn seed(&mut self, image: &str, now: f64, region: &str, account: &str) {
        let r = ImageRef::parse(image);
        let (Some((a, g)), Some(tag), None) = (&r.ecr, &r.tag, &r.digest) else {
            return;
        };
        if a != account || g != region {
            return;
        }
        let repo = self
            .repos
            .entry(r.repository.clone())
            .or_insert_with(|| new_repo(&r.repository, "MUTABLE", now, region, account));
        if repo.tags.contains_key(tag) {
            return;
        }
        let manifest = sample_manifest(image);
        let digest = digest_of(manifest.as_bytes());
        repo.images.entry(digest.clone()).or_insert(Image {
            manifest,
            media_type: DOCKER_MANIFEST.to_string(),
            pushed_at: now,
        });
        repo.tags.insert(tag.clone(), digest);
    }

    /// Creates a repository from a CreateRepository request (scenarios).
    pub fn create(&mut self, ctx: &mut Ctx<'_>, body: &Value) -> OpResult {
        self.create_repository(ctx, body)
    }

    /// State as JSON: every repository with its mutability, images (digest, media type,
    /// tags) and tags.
    pub fn snapshot(&self) -> Value {
        let repos: Vec<Value> = self
            .repos
            .iter()
            .map(|(name, r)| {
                json!({
                    "name": name,
                    "uri": r.uri,
                    "imageTagMutability": r.mutability,
                    "tags": r.tags,
                    "images": r.images.iter().map(|(d, i)| json!({
                        "digest": d,
                        "mediaType": i.media_type,
                        "tags": r.tags_of(d),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({ "repositories": repos })
    }

    fn repo(&self, body: &Value) -> Result<(&str, &Repo), AwsError> {
        let name = req_str(body, "repositoryName")?;
        self.repos
            .get_key_value(name)
            .map(|(k, v)| (k.as_str(), v))
            .ok_or_else(|| not_found(name))
    }

    fn create_repository(&mut self, ctx: &mut Ctx<'_>, body: &Value) -> OpResult {
        let name = req_str(body, "repositoryName")?;
        let mutability = body
            .get("imageTagMutability")
            .and_then(Value::as_str)
            .unwrap_or("MUTABLE");
        if ![
            "MUTABLE",
            "IMMUTABLE",
            "IMMUTABLE_WITH_EXCLUSION",
            "MUTABLE_WITH_EXCLUSION",
        ]
        .contains(&mutability)
        {
            return Err(AwsError::invalid_parameter(format!(
                "Invalid parameter at 'imageTagMutability' failed to satisfy constraint: 'Member must satisfy enum value set: [MUTABLE, IMMUTABLE, IMMUTABLE_WITH_EXCLUSION, MUTABLE_WITH_EXCLUSION]' ({mutability})"
            )));
        }
        if self.repos.contains_key(name) {
            return Err(AwsError::new(
                "RepositoryAlreadyExistsException",
                format!(
                    "The repository with name '{name}' already exists in the registry with id '{}'",
                    ctx.account
                ),
            ));
        }
        let repo = new_repo(name, mutability, ctx.now, ctx.region, ctx.account);
        self.repos.insert(name.to_string(), repo);
        Ok(json!({ "repository": repo_json(name, &self.repos[name], ctx.account) }))
    }

    fn describe_repositories(&self, ctx: &Ctx<'_>, body: &Value) -> OpResult {
        let repos: Vec<Value> = match body.get("repositoryNames").and_then(Value::as_array) {
            Some(names) => {
                let mut out = Vec::new();
                for n in names.iter().filter_map(Value::as_str) {
                    let r = self.repos.get(n).ok_or_else(|| not_found(n))?;
                    out.push(repo_json(n, r, ctx.account));
                }
                out
            }
            None => self
                .repos
                .iter()
                .map(|(n, r)| repo_json(n, r, ctx.account))
                .collect(),
        };
        Ok(json!({ "repositories": repos }))
    }

    fn put_image(&mut self, ctx: &mut Ctx<'_>, body: &Value) -> OpResult {
        let name = req_str(body, "repositoryName")?.to_string();
        let manifest = req_str(body, "imageManifest")?.to_string();
        let media_type = media_type_of(
            &manifest,
            body.get("imageManifestMediaType").and_then(Value::as_str),
        );
        let digest = digest_of(manifest.as_bytes());
        if let Some(given) = body.get("imageDigest").and_then(Value::as_str) {
            if given != digest {
                return Err(AwsError::new(
                    "ImageDigestDoesNotMatchException",
                    format!("The image digest '{given}' does not match the digest of the manifest '{digest}'."),
                ));
            }
        }
        let tag = body
            .get("imageTag")
            .and_then(Value::as_str)
            .map(str::to_string);
        let account = ctx.account.to_string();
        let repo = self.repos.get_mut(&name).ok_or_else(|| not_found(&name))?;
        if [OCI_INDEX, DOCKER_MANIFEST_LIST].contains(&media_type.as_str()) {
            let missing: Vec<String> = children(&manifest)
                .into_iter()
                .filter(|d| !repo.images.contains_key(d))
                .collect();
            if !missing.is_empty() {
                return Err(AwsError::new(
                    "ReferencedImagesNotFoundException",
                    format!(
                        "Some of the images referenced in the manifest list are not found: {}",
                        missing.join(", ")
                    ),
                ));
            }
        }
        match (&tag, tag.as_ref().and_then(|t| repo.tags.get(t))) {
            (Some(t), Some(d)) if *d == digest => {
                return Err(AwsError::new(
                    "ImageAlreadyExistsException",
                    format!("Image with digest '{digest}' and tag '{t}' already exists in the repository with name '{name}' in registry with id '{account}'"),
                ));
            }
            (Some(t), Some(_)) if repo.immutable() => {
                return Err(AwsError::new(
                    "ImageTagAlreadyExistsException",
                    format!("The image tag '{t}' already exists in the '{name}' repository and cannot be overwritten because the repository is immutable."),
                ));
            }
            _ => {}
        }
        repo.images.entry(digest.clone()).or_insert(Image {
            manifest: manifest.clone(),
            media_type: media_type.clone(),
            pushed_at: ctx.now,
        });
        if let Some(t) = &tag {
            repo.tags.insert(t.clone(), digest.clone());
        }
        let mut image_id = Map::new();
        image_id.insert("imageDigest".into(), json!(digest));
        if let Some(t) = tag {
            image_id.insert("imageTag".into(), json!(t));
        }
        Ok(json!({ "image": {
            "registryId": account,
            "repositoryName": name,
            "imageId": image_id,
            "imageManifest": manifest,
            "imageManifestMediaType": media_type,
        }}))
    }

    /// Resolves one `imageId` of a request to (digest, the id as asked), or a failure.
    fn find(repo: &Repo, id: &Value) -> Result<String, (String, String)> {
        let tag = id.get("imageTag").and_then(Value::as_str);
        let digest = id.get("imageDigest").and_then(Value::as_str);
        match (tag, digest) {
            (None, None) => Err((
                "MissingDigestAndTag".into(),
                "Requested image digest and tag are missing".into(),
            )),
            (Some(t), d) => match repo.tags.get(t) {
                None => Err(("ImageNotFound".into(), "Requested image not found".into())),
                Some(found) if d.is_some_and(|d| d != found) => Err((
                    "ImageTagDoesNotMatchDigest".into(),
                    "Given image digest does not match the digest for the tag".into(),
                )),
                Some(found) => Ok(found.clone()),
            },
            (None, Some(d)) => {
                if !d.starts_with("sha256:") || d.len() != 71 {
                    Err((
                        "InvalidImageDigest".into(),
                        "Invalid request parameters: image digest should satisfy the regex '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'".into(),
                    ))
                } else if repo.images.contains_key(d) {
                    Ok(d.to_string())
                } else {
                    Err(("ImageNotFound".into(), "Requested image not found".into()))
                }
            }
        }
    }

    fn image_ids(body: &Value) -> Result<&Vec<Value>, AwsError> {
        let ids = body
            .get("imageIds")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                AwsError::invalid_parameter(
                    "Invalid parameter at 'imageIds' failed to satisfy constraint: 'Member must not be null'",
                )
            })?;
        if ids.is_empty() || ids.len() > MAX_IMAGE_IDS {
            return Err(AwsError::invalid_parameter(format!(
                "1 validation error detected: Value at 'imageIds' failed to satisfy constraint: Member must have length less than or equal to {MAX_IMAGE_IDS} and greater than or equal to 1"
            )));
        }
        Ok(ids)
    }

    fn batch_get_image(&self, ctx: &Ctx<'_>, body: &Value) -> OpResult {
        let (name, repo) = self.repo(body)?;
        let ids = Self::image_ids(body)?;
        let mut images = Vec::new();
        let mut failures = Vec::new();
        for id in ids {
            match Self::find(repo, id) {
                Ok(digest) => {
                    let image = &repo.images[&digest];
                    let mut image_id = Map::new();
                    image_id.insert("imageDigest".into(), json!(digest));
                    if let Some(t) = id.get("imageTag") {
                        image_id.insert("imageTag".into(), t.clone());
                    }
                    images.push(json!({
                        "registryId": ctx.account,
                        "repositoryName": name,
                        "imageId": image_id,
                        "imageManifest": image.manifest,
                        "imageManifestMediaType": image.media_type,
                    }));
                }
                Err((code, reason)) => failures.push(json!({
                    "imageId": id,
                    "failureCode": code,
                    "failureReason": reason,
                })),
            }
        }
        Ok(json!({ "images": images, "failures": failures }))
    }

    fn batch_delete_image(&mut self, body: &Value) -> OpResult {
        let ids = Self::image_ids(body)?.clone();
        let name = req_str(body, "repositoryName")?.to_string();
        let repo = self.repos.get_mut(&name).ok_or_else(|| not_found(&name))?;
        let mut deleted = Vec::new();
        let mut failures = Vec::new();
        for id in &ids {
            let found = Self::find(repo, id);
            match found {
                Ok(digest) => {
                    match id.get("imageTag").and_then(Value::as_str) {
                        Some(t) => {
                            repo.tags.remove(t);
                            if repo.tags_of(&digest).is_empty() {
                                repo.images.remove(&digest);
                            }
                        }
                        None => {
                            repo.tags.retain(|_, d| *d != digest);
                            repo.images.remove(&digest);
                        }
                    }
                    deleted.push(id.clone());
                }
                Err((code, reason)) => failures.push(json!({
                    "imageId": id, "failureCode": code, "failureReason": reason,
                })),
            }
        }
        Ok(json!({ "imageIds": deleted, "failures": failures }))
    }

    fn describe_images(&self, ctx: &Ctx<'_>, body: &Value) -> OpResult {
        let (name, repo) = self.repo(body)?;
        let digests: Vec<String> = match body.get("imageIds").and_then(Value::as_array) {
            Some(ids) => {
                let mut out = Vec::new();
                for id in ids {
                    let d = Self::find(repo, id).map_err(|_| {
                        AwsError::new(
                            "ImageNotFoundException",
                            format!(
                                "The image with imageId {id} does not exist within the repository with name '{name}' in the registry with id '{}'",
                                ctx.account
                            ),
                        )
                    })?;
                    out.push(d);
                }
                out
            }
            None => repo.images.keys().cloned().collect(),
        };
        let (page, next) = paginate(&digests, body)?;
        let details: Vec<Value> = page
            .iter()
            .map(|d| {
                let i = &repo.images[d];
                let mut m = Map::new();
                m.insert("registryId".into(), json!(ctx.account));
                m.insert("repositoryName".into(), json!(name));
                m.insert("imageDigest".into(), json!(d));
                let tags = repo.tags_of(d);
                if !tags.is_empty() {
                    m.insert("imageTags".into(), json!(tags));
                }
                m.insert("imageSizeInBytes".into(), json!(i.manifest.len()));
                m.insert("imagePushedAt".into(), ts(i.pushed_at));
                m.insert("imageManifestMediaType".into(), json!(i.media_type));
                Value::Object(m)
            })
            .collect();
        let mut out = json!({ "imageDetails": details });
        if let Some(n) = next {
            out["nextToken"] = json!(n);
        }
        Ok(out)
    }

    fn list_images(&self, _ctx: &Ctx<'_>, body: &Value) -> OpResult {
        let (_, repo) = self.repo(body)?;
        let status = body
            .pointer("/filter/tagStatus")
            .and_then(Value::as_str)
            .unwrap_or("ANY");
        let mut ids: Vec<Value> = Vec::new();
        if status != "UNTAGGED" {
            for (t, d) in &repo.tags {
                ids.push(json!({"imageDigest": d, "imageTag": t}));
            }
        }
        if status != "TAGGED" {
            for d in repo.images.keys().filter(|d| repo.tags_of(d).is_empty()) {
                ids.push(json!({ "imageDigest": d }));
            }
        }
        let (page, next) = paginate(&ids, body)?;
        let mut out = json!({ "imageIds": page });
        if let Some(n) = next {
            out["nextToken"] = json!(n);
        }
        Ok(out)
    }
}

/// One page of `items` by `maxResults` (1..=1000, default 100) and `nextToken` (an offset).
fn paginate<T: Clone>(items: &[T], body: &Value) -> Result<(Vec<T>, Option<String>), AwsError> {
    let max = body
        .get("maxResults")
        .and_then(Value::as_u64)
        .unwrap_or(100) as usize;
    if !(1..=1000).contains(&max) {
        return Err(AwsError::invalid_parameter(
            "Invalid parameter at 'maxResults' failed to satisfy constraint: 'Member must have value less than or equal to 1000'",
        ));
    }
    let start = match body.get("nextToken").and_then(Value::as_str) {
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| AwsError::invalid_parameter("Invalid parameter at 'nextToken'"))?,
        None => 0,
    };
    let page: Vec<T> = items.iter().skip(start).take(max).cloned().collect();
    let next = (start + max < items.len()).then(|| (start + max).to_string());
    Ok((page, next))
}

fn not_found(name: &str) -> AwsError {
    AwsError::new(
        "RepositoryNotFoundException",
        format!("The repository with name '{name}' does not exist in the registry"),
    )
}

fn new_repo(name: &str, mutability: &str, now: f64, region: &str, account: &str) -> Repo {
    Repo {
        arn: format!("arn:aws:ecr:{region}:{account}:repository/{name}"),
        uri: format!("{account}.dkr.ecr.{region}.amazonaws.com/{name}"),
        created_at: now,
        mutability: mutability.to_string(),
        images: BTreeMap::new(),
        tags: BTreeMap::new(),
    }
}

fn repo_json(name: &str, r: &Repo, account: &str) -> Value {
    json!({
        "repositoryArn": r.arn,
        "registryId": account,
        "repositoryName": name,
        "repositoryUri": r.uri,
        "createdAt": ts(r.created_at),
        "imageTagMutability": r.mutability,
        "imageScanningConfiguration": {"scanOnPush": false},
        "encryptionConfiguration": {"encryptionType": "AES256"},
    })
}

/// A Docker v2 manifest whose config digest is made from `seed`: distinct seeds give
/// distinct image digests.
pub fn sample_manifest(seed: &str) -> String {
    json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": 1469,
            "digest": digest_of(seed.as_bytes()),
        },
        "layers": [],
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_parse_into_their_parts() {
        let r =
            ImageRef::parse("123456789012.dkr.ecr.eu-west-1.amazonaws.com/online-lpa/api_app:v1");
        assert_eq!(
            r.ecr,
            Some(("123456789012".to_string(), "eu-west-1".to_string()))
        );
        assert_eq!(r.repository, "online-lpa/api_app");
        assert_eq!(r.tag.as_deref(), Some("v1"));
        assert_eq!(r.digest, None);
        let r = ImageRef::parse("nginx");
        assert_eq!((r.ecr, r.tag.as_deref()), (None, Some("latest")));
        let r = ImageRef::parse("localhost:5000/app@sha256:abc");
        assert_eq!(r.repository, "app");
        assert_eq!((r.tag, r.digest.as_deref()), (None, Some("sha256:abc")));
        let r = ImageRef::parse("public.ecr.aws/nginx/nginx:1.27");
        assert_eq!((r.ecr, r.tag.as_deref()), (None, Some("1.27")));
    }
}
