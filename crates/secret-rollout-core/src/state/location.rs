//! `s3://BUCKET/PREFIX[?region=REGION]`, parsed with the `url` crate.

use std::fmt;

use crate::error::{Error, Result};

/// Where in S3 the team state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    /// The bucket.
    pub bucket: String,
    /// The key prefix: empty, or ending in `/`.
    pub prefix: String,
    /// The bucket's region when it is not the environment's (`?region=`).
    pub region: Option<String>,
}

const FIX: &str = "write it as state = \"s3://BUCKET/PREFIX\", e.g. state = \"s3://my-team-secret-rollout/production\"";

fn bad(state: &str, why: &str) -> Error {
    Error::bad_input(format!("state {state:?} {why}")).hint(FIX)
}

/// S3's rules for general purpose bucket names.
fn valid_bucket(b: &str) -> bool {
    (3..=63).contains(&b.len())
        && b.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
        && b.as_bytes()[0].is_ascii_alphanumeric()
        && b.as_bytes()[b.len() - 1].is_ascii_alphanumeric()
        && !b.contains("..")
}

impl S3Location {
    /// Parses `s3://BUCKET/PREFIX`; a malformed URL or a missing bucket is a configuration
    /// error (exit 2) naming the fix.
    pub fn parse(state: &str) -> Result<S3Location> {
        let url = url::Url::parse(state).map_err(|e| bad(state, &format!("is not a URL ({e})")))?;
        if url.scheme() != "s3" {
            return Err(bad(
                state,
                &format!("is not an s3:// URL (scheme {:?})", url.scheme()),
            ));
        }
        let bucket = url.host_str().unwrap_or_default();
        if bucket.is_empty() {
            return Err(bad(state, "has no bucket name"));
        }
        if !valid_bucket(bucket) {
            return Err(bad(state, &format!("names an invalid bucket {bucket:?}")));
        }
        if url.port().is_some() || !url.username().is_empty() || url.password().is_some() {
            return Err(bad(state, "has a port or user name"));
        }
        if url.fragment().is_some() {
            return Err(bad(state, "has a #fragment"));
        }
        let mut region = None;
        for (k, v) in url.query_pairs() {
            match k.as_ref() {
                "region" if !v.is_empty() => {
                    crate::aws::config::check_region(&v)?;
                    region = Some(v.into_owned());
                }
                other => {
                    return Err(bad(
                        state,
                        &format!("has an unknown parameter {other:?} (only ?region=)"),
                    ))
                }
            }
        }
        let path = url.path().trim_matches('/');
        if path
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..")
            && !path.is_empty()
        {
            return Err(bad(state, "has an empty, . or .. part in its prefix"));
        }
        let prefix = if path.is_empty() {
            String::new()
        } else {
            format!("{path}/")
        };
        Ok(S3Location {
            bucket: bucket.to_string(),
            prefix,
            region,
        })
    }
}

impl fmt::Display for S3Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_urls_give_bucket_and_prefix() {
        let cases = [
            ("s3://team-state", "team-state", "", None),
            ("s3://team-state/", "team-state", "", None),
            (
                "s3://team-state/production",
                "team-state",
                "production/",
                None,
            ),
            ("s3://team.state/a/b/", "team.state", "a/b/", None),
            (
                "s3://team-state/p?region=eu-west-2",
                "team-state",
                "p/",
                Some("eu-west-2"),
            ),
        ];
        for (url, bucket, prefix, region) in cases {
            let l = S3Location::parse(url).unwrap();
            assert_eq!(l.bucket, bucket, "{url}");
            assert_eq!(l.prefix, prefix, "{url}");
            assert_eq!(l.region.as_deref(), region, "{url}");
        }
        assert_eq!(
            S3Location::parse("s3://team-state/p").unwrap().to_string(),
            "s3://team-state/p/"
        );
    }

    #[test]
    fn bad_urls_are_configuration_errors_naming_the_fix() {
        for (url, why) in [
            ("s3://", "has no bucket name"),
            ("s3:///prefix", "has no bucket name"),
            ("s3:", "has no bucket name"),
            ("team-state/prefix", "is not a URL"),
            ("https://team-state/prefix", "is not an s3:// URL"),
            ("s3://Team_State/p", "names an invalid bucket"),
            ("s3://ab/p", "names an invalid bucket"),
            ("s3://team-state:443/p", "has a port"),
            ("s3://team-state/p?versioning=1", "unknown parameter"),
            (
                "s3://team-state/p?region=mars%3Brm",
                "is not an AWS region name",
            ),
            ("s3://team-state/a//b", "empty, . or .. part"),
            ("s3://team-state/p#x", "has a #fragment"),
        ] {
            let e = S3Location::parse(url).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{url}");
            assert!(e.message.contains(why), "{url}: {}", e.message);
            assert!(!e.render().lines().any(|l| l.is_empty()));
            assert!(e.hint.is_some(), "{url}");
        }
    }
}
