//! Building the SDK's configuration and credential providers: retries, timeouts,
//! endpoint, profile files. Which credentials to use is decided in [`crate::credentials`];
//! this only builds what it asks for.
//!
//! Every client retries throttling, transient and 5xx errors in standard mode, 5 attempts
//! with exponential backoff and jitter.

use crate::error::{Error, Result};
use std::path::Path;
use std::time::Duration;

#[allow(deprecated)]
use aws_config::profile::profile_file::{ProfileFileKind, ProfileFiles};
use aws_config::provider_config::ProviderConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_types::region::Region;

/// Attempts per call (first try included) unless [`Transport::max_attempts`] says otherwise.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// How calls travel: where to, and how often to try.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transport {
    /// `--endpoint-url`: one endpoint for every service (the sandbox). `None`: the SDK's
    /// own rules (`AWS_ENDPOINT_URL_<SERVICE>` > `AWS_ENDPOINT_URL` > the profile's).
    pub endpoint_url: Option<String>,
    /// Attempts per AWS call; `None` is [`DEFAULT_MAX_ATTEMPTS`].
    pub max_attempts: Option<u32>,
}

/// The shared config and credentials files to read (`None`: none at all, as under
/// aws-vault).
#[derive(Debug, Clone, Copy)]
pub struct ProfileFilePaths<'a> {
    /// The config file.
    pub config: &'a Path,
    /// The credentials file.
    pub credentials: &'a Path,
}

/// Profile files for the SDK: these, or none at all.
#[allow(deprecated)]
fn sdk_profile_files(paths: Option<ProfileFilePaths<'_>>) -> ProfileFiles {
    let builder = ProfileFiles::builder()
        .include_default_config_file(false)
        .include_default_credentials_file(false);
    match paths {
        Some(p) => builder
            .with_file(ProfileFileKind::Config, p.config)
            .with_file(ProfileFileKind::Credentials, p.credentials)
            .build(),
        None => builder.with_contents(ProfileFileKind::Config, "").build(),
    }
}

fn retry_config(t: &Transport) -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(t.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS).max(1))
        .with_initial_backoff(Duration::from_millis(500))
        .with_max_backoff(Duration::from_secs(20))
}

fn timeout_config() -> TimeoutConfig {
    // A dead endpoint fails in seconds instead of hanging; calls themselves may be slow.
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()
}

/// Refuses a region no AWS endpoint can be formed from (`mars-1;rm`, `eu west 1`):
/// configuration (exit 2), before the SDK turns it into a kilobyte of endpoint errors.
/// Unknown but well-formed names pass: new regions appear, and AWS says the rest.
pub fn check_region(region: &str) -> Result<()> {
    let well_formed = region.split('-').count() >= 2
        && region.split('-').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
    if well_formed {
        return Ok(());
    }
    Err(
        Error::bad_input(format!("{region:?} is not an AWS region name")).hint(
            "give a region such as eu-west-1 (--region, AWS_REGION, or the environment's region)",
        ),
    )
}

/// Refuses an `--endpoint-url` that is not an absolute http(s) URL with a host.
pub fn check_endpoint_url(endpoint: &str) -> Result<()> {
    match url::Url::parse(endpoint) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        _ => Err(Error::bad_input(format!("--endpoint-url {endpoint:?} is not an http(s) URL"))
            .hint("give a URL such as http://127.0.0.1:4566 (a sandbox) or https://ecs.eu-west-1.amazonaws.com")),
    }
}

/// The SDK config loader for `region`: our retries, timeouts, endpoint and profile files.
pub fn base_loader(
    t: &Transport,
    region: &str,
    paths: Option<ProfileFilePaths<'_>>,
) -> ConfigLoader {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .retry_config(retry_config(t))
        .timeout_config(timeout_config())
        .profile_files(sdk_profile_files(paths));
    if let Some(url) = &t.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader
}

fn provider_config(t: &Transport, region: &str) -> ProviderConfig {
    ProviderConfig::without_region()
        .with_region(Some(Region::new(region.to_string())))
        .with_retry_config(retry_config(t))
        .with_timeout_config(timeout_config())
}

/// The SDK's provider for a profile that does not need MFA (plain role, SSO,
/// credential_process, static keys).
pub fn profile_provider(
    t: &Transport,
    region: &str,
    paths: ProfileFilePaths<'_>,
    profile: &str,
) -> SharedCredentialsProvider {
    let provider = aws_config::profile::ProfileFileCredentialsProvider::builder()
        .configure(&provider_config(t, region))
        .profile_files(sdk_profile_files(Some(paths)))
        .profile_name(profile)
        .build();
    SharedCredentialsProvider::new(provider)
}

/// The SDK's default chain (env, profile, web identity, ECS, IMDS).
pub async fn default_chain(t: &Transport, region: &str) -> SharedCredentialsProvider {
    let chain = aws_config::default_provider::credentials::DefaultCredentialsChain::builder()
        .configure(provider_config(t, region))
        .region(Region::new(region.to_string()))
        .build()
        .await;
    SharedCredentialsProvider::new(chain)
}

#[cfg(test)]
mod checks {
    use super::*;

    #[test]
    fn regions_and_endpoints_that_cannot_form_an_endpoint_are_configuration_errors() {
        for good in [
            "eu-west-1",
            "us-gov-west-1",
            "cn-north-1",
            "il-central-1",
            "us-isob-east-1",
        ] {
            check_region(good).unwrap();
        }
        for bad in [
            "mars-1;rm",
            "eu west 1",
            "",
            "EU-WEST-1",
            "eu--west-1",
            "-eu-west-1",
            "eu",
        ] {
            let e = check_region(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}");
            assert!(e.message.contains("is not an AWS region name"), "{bad}");
        }
        for good in [
            "http://127.0.0.1:4566",
            "https://ecs.eu-west-1.amazonaws.com",
            "http://localhost:1/",
        ] {
            check_endpoint_url(good).unwrap();
        }
        for bad in [
            "not a url::",
            "127.0.0.1:4566",
            "ftp://host",
            "http://",
            "file:///etc/passwd",
            "",
        ] {
            let e = check_endpoint_url(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}");
            assert!(!e.render().contains('\n') || e.render().lines().count() == 2);
        }
    }
}
