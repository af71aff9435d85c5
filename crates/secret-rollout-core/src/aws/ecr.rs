//! ECR: what image tags and digests point to (`BatchGetImage`), for [`crate::images`].

pub use aws_sdk_ecr::types::ImageIdentifier;

use super::errors::{AwsError, Fault};
use super::model::{ImageId, ImageObs};

/// The ECR client.
pub type Client = aws_sdk_ecr::Client;

/// What one `BatchGetImage` found: per image id asked, the image (or `None`: not there).
pub type Found = Vec<(ImageId, Option<ImageObs>)>;

/// Reads `ids` (at most [`crate::images::BATCH`]) from `repository` of `registry`.
pub async fn batch_get(
    ecr: &Client,
    registry: &str,
    repository: &str,
    ids: &[ImageId],
) -> Result<Found, AwsError> {
    let identifiers = ids
        .iter()
        .map(|id| match id {
            ImageId::Tag(t) => ImageIdentifier::builder().image_tag(t).build(),
            ImageId::Digest(d) => ImageIdentifier::builder().image_digest(d).build(),
        })
        .collect();
    let resp = ecr
        .batch_get_image()
        .registry_id(registry)
        .repository_name(repository)
        .set_image_ids(Some(identifiers))
        .send()
        .await
        .map_err(|e| {
            AwsError::from_sdk("BatchGetImage", "BatchGetImage", e, |e| {
                e.is_repository_not_found_exception()
                    .then_some(Fault::NotFound)
            })
        })?;
    let mut out: Found = ids.iter().map(|id| (id.clone(), None)).collect();
    for image in resp.images() {
        let Some(image_id) = image.image_id() else {
            continue;
        };
        let Some(digest) = image_id.image_digest() else {
            continue;
        };
        let asked = match image_id.image_tag() {
            Some(t) => ImageId::Tag(t.to_string()),
            None => ImageId::Digest(digest.to_string()),
        };
        let manifest = ImageObs {
            digest: digest.to_string(),
            media_type: image.image_manifest_media_type().map(str::to_string),
            manifest: image.image_manifest().unwrap_or_default().to_string(),
        };
        for (id, found) in out.iter_mut() {
            if *id == asked {
                *found = Some(manifest.clone());
            }
        }
    }
    Ok(out)
}
