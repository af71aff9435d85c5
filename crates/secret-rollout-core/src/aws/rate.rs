//! The client's own rate limiter: every HTTP attempt to ECS and Secrets Manager waits for a
//! token of its action group first, so a run stays below AWS's rate limits instead of
//! drawing `ThrottlingException`s (which also starve everything else in the account that
//! shares the buckets: CI deploys, autoscaling, the console).
//!
//! AWS throttles per account and region with a token bucket per group of actions (ECS's
//! "Request throttling" table: `DescribeServices` and `ListServices` share 100 burst,
//! 20/s sustained; Secrets Manager's writes share 50/s). The limiter keeps one bucket
//! (governor's GCRA, a token bucket with continuous refill) per group for the whole
//! process, shared by all concurrent work, at a fraction of AWS's rates: half by default,
//! leaving the other half to the rest of the account. `--aws-rate` (or
//! `SECRET_ROLLOUT_AWS_RATE`) sets the fraction, `off` turns it off.
//!
//! It sits in the HTTP client the SDK clients are built with ([`crate::clients`]), so every
//! attempt passes through it, retries included (AWS counts them too), whichever adapter
//! function makes the call. The action comes from the `X-Amz-Target` header of the JSON
//! protocols; actions of no group (STS, S3) pass at once.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::client::stalled_stream_protection::StalledStreamProtectionConfig;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// An action group: its `X-Amz-Target` prefix, actions, and AWS's published burst and
/// sustained rates.
#[derive(Debug, Clone, Copy)]
pub struct Group {
    /// `ecs.service_read`, ... (the sandbox's names).
    pub name: &'static str,
    /// The `X-Amz-Target` prefix of the service.
    pub target: &'static str,
    /// The actions sharing the bucket.
    pub actions: &'static [&'static str],
    /// AWS's bucket size.
    pub burst: u32,
    /// AWS's refill, per second.
    pub sustained: u32,
}

const ECS: &str = "AmazonEC2ContainerServiceV20141113";
const SM: &str = "secretsmanager";

/// The groups of every action the tool calls (and their neighbours in AWS's buckets).
pub const GROUPS: &[Group] = &[
    Group {
        name: "ecs.cluster_read",
        target: ECS,
        actions: &["DescribeClusters", "ListClusters"],
        burst: 50,
        sustained: 20,
    },
    Group {
        name: "ecs.task_definition_read",
        target: ECS,
        actions: &[
            "DescribeTaskDefinition",
            "ListTaskDefinitions",
            "ListTaskDefinitionFamilies",
        ],
        burst: 50,
        sustained: 20,
    },
    Group {
        name: "ecs.cluster_resource_read",
        target: ECS,
        actions: &[
            "DescribeContainerInstances",
            "DescribeTasks",
            "ListAttributes",
            "ListContainerInstances",
            "ListTasks",
        ],
        burst: 100,
        sustained: 20,
    },
    Group {
        name: "ecs.service_modify",
        target: ECS,
        actions: &["CreateService", "DeleteService", "UpdateService"],
        burst: 50,
        sustained: 5,
    },
    Group {
        name: "ecs.service_read",
        target: ECS,
        actions: &["DescribeServices", "ListServices"],
        burst: 100,
        sustained: 20,
    },
    Group {
        name: "ecs.service_deployment",
        target: ECS,
        actions: &["DescribeServiceDeployments", "ListServiceDeployments"],
        burst: 50,
        sustained: 20,
    },
    Group {
        name: "ecs.service_revision",
        target: ECS,
        actions: &["DescribeServiceRevisions"],
        burst: 50,
        sustained: 20,
    },
    Group {
        name: "secretsmanager.write",
        target: SM,
        actions: &[
            "PutSecretValue",
            "RemoveRegionsFromReplication",
            "ReplicateSecretToRegion",
            "StopReplicationToReplica",
            "UpdateSecret",
            "UpdateSecretVersionStage",
        ],
        burst: 50,
        sustained: 50,
    },
    Group {
        name: "secretsmanager.read",
        target: SM,
        actions: &["DescribeSecret", "GetSecretValue"],
        burst: 10_000,
        sustained: 10_000,
    },
];

/// The group of an `X-Amz-Target` (`AmazonEC2ContainerServiceV20141113.DescribeServices`).
pub fn group_of_target(target: &str) -> Option<&'static Group> {
    let (prefix, action) = target.split_once('.')?;
    GROUPS
        .iter()
        .find(|g| g.target == prefix && g.actions.contains(&action))
}

/// How fast the client may call, as a fraction of AWS's rates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RateSetting {
    /// No client-side limit (AWS's own throttling and the SDK's retries only).
    Off,
    /// This fraction (0 < f <= 1) of AWS's burst and sustained rate of every group.
    Fraction(f64),
}

/// Half of AWS's rates: the other half stays free for the rest of the account.
pub const DEFAULT_FRACTION: f64 = 0.5;

impl Default for RateSetting {
    fn default() -> Self {
        RateSetting::Fraction(DEFAULT_FRACTION)
    }
}

impl RateSetting {
    /// `off`, or a fraction from 0.01 to 1 (`0.5`, `50%`).
    pub fn parse(s: &str) -> Result<RateSetting, String> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("off") {
            return Ok(RateSetting::Off);
        }
        let f = match t.strip_suffix('%') {
            Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
            None => t.parse::<f64>(),
        };
        match f {
            Ok(f) if f.is_finite() && (0.01..=1.0).contains(&f) => Ok(RateSetting::Fraction(f)),
            _ => Err(format!(
                "{s:?} is not a rate: give a fraction of AWS's rate limits from 0.01 to 1 (e.g. 0.5 or 50%), or off"
            )),
        }
    }
}

/// One bucket per group, at a fraction of AWS's rates.
#[derive(Debug)]
pub struct Limiters {
    buckets: HashMap<&'static str, DefaultDirectRateLimiter>,
}

impl Limiters {
    /// The buckets for `fraction` of AWS's rates.
    pub fn new(fraction: f64) -> Limiters {
        let buckets = GROUPS
            .iter()
            .map(|g| {
                let burst = ((g.burst as f64 * fraction).floor() as u32).max(1);
                let per_second = (g.sustained as f64 * fraction).max(0.01);
                let quota = Quota::with_period(Duration::from_secs_f64(1.0 / per_second))
                    .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
                    .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN));
                (g.name, RateLimiter::direct(quota))
            })
            .collect();
        Limiters { buckets }
    }

    /// Waits until a call to `target` may go.
    pub async fn until_ready(&self, target: &str) {
        if let Some(b) = group_of_target(target).and_then(|g| self.buckets.get(g.name)) {
            b.until_ready().await;
        }
    }
}

static SETTING: OnceLock<RateSetting> = OnceLock::new();
static SHARED: OnceLock<Option<Arc<Limiters>>> = OnceLock::new();

/// Sets the process's rate (the command line does, before any client is built). Later
/// calls, and calls after the limiter was first used, change nothing.
pub fn set_process_setting(setting: RateSetting) {
    let _ = SETTING.set(setting);
}

/// The process's limiter, shared by every client built in it; `None` when off, and when
/// no setting was made: the command line makes one (half of AWS's rates by default); a
/// program embedding the core, or an in-process test running many rotations at once
/// against many sandboxes, has none unless it asks (one process-wide bucket shared by
/// unrelated accounts would only slow them down).
pub fn shared() -> Option<Arc<Limiters>> {
    SHARED
        .get_or_init(
            || match SETTING.get().copied().unwrap_or(RateSetting::Off) {
                RateSetting::Off => None,
                RateSetting::Fraction(f) => Some(Arc::new(Limiters::new(f))),
            },
        )
        .clone()
}

/// `config` for clients whose calls pass through the limiter: the SDK's upload
/// stalled-stream check off (the download check stays). That check times a request body
/// from the moment the request is handed to the HTTP client; a call waiting for its
/// token sends nothing meanwhile, so any wait longer than the check's grace period (5 s)
/// failed as "the connection timed out" (measured: 100 UpdateService at the default
/// rate). The tool's request bodies are a few hundred bytes of JSON: an upload stall is
/// not what could hold them up.
pub fn for_limited_clients(config: &aws_types::SdkConfig) -> aws_types::SdkConfig {
    let stall = config
        .stalled_stream_protection()
        .map(|c| {
            StalledStreamProtectionConfig::enabled()
                .grace_period(c.grace_period())
                .download_enabled(c.download_enabled())
        })
        .unwrap_or_else(StalledStreamProtectionConfig::enabled)
        .upload_enabled(false)
        .build();
    config.to_builder().stalled_stream_protection(stall).build()
}

/// The SDK's default HTTPS client (hyper 1, rustls with aws-lc, proxy from the
/// environment), as the SDK builds it when given none.
fn default_https_client() -> SharedHttpClient {
    use aws_smithy_http_client::proxy::ProxyConfig;
    use aws_smithy_http_client::{tls, Builder, ConnectorBuilder};
    Builder::new().build_with_connector_fn(move |settings, runtime_components| {
        let mut conn = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ));
        conn.set_connector_settings(settings.cloned());
        if let Some(components) = runtime_components {
            conn.set_sleep_impl(components.sleep_impl());
        }
        conn.set_proxy_config(Some(ProxyConfig::from_env()));
        conn.build()
    })
}

/// An HTTP client whose every request first waits for its group's token.
#[derive(Debug, Clone)]
pub struct RateLimitedClient {
    inner: SharedHttpClient,
    limiters: Arc<Limiters>,
}

impl RateLimitedClient {
    /// `inner` (the SDK's default HTTPS client when `None`) behind `limiters`.
    pub fn new(inner: Option<SharedHttpClient>, limiters: Arc<Limiters>) -> Self {
        Self {
            inner: inner.unwrap_or_else(default_https_client),
            limiters,
        }
    }
}

impl HttpClient for RateLimitedClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(RateLimitedConnector {
            inner: self.inner.http_connector(settings, components),
            limiters: self.limiters.clone(),
        })
    }
}

#[derive(Debug)]
struct RateLimitedConnector {
    inner: SharedHttpConnector,
    limiters: Arc<Limiters>,
}

impl HttpConnector for RateLimitedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let target = request
            .headers()
            .get("x-amz-target")
            .map(str::to_string)
            .unwrap_or_default();
        let inner = self.inner.clone();
        let limiters = self.limiters.clone();
        HttpConnectorFuture::new(async move {
            limiters.until_ready(&target).await;
            inner.call(request).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_fractions_and_off() {
        assert_eq!(RateSetting::parse("off"), Ok(RateSetting::Off));
        assert_eq!(RateSetting::parse(" OFF "), Ok(RateSetting::Off));
        assert_eq!(RateSetting::parse("0.5"), Ok(RateSetting::Fraction(0.5)));
        assert_eq!(RateSetting::parse("80%"), Ok(RateSetting::Fraction(0.8)));
        assert_eq!(RateSetting::parse("1"), Ok(RateSetting::Fraction(1.0)));
        for bad in ["0", "1.5", "-1", "nan", "inf", "", "half", "0.001", "200%"] {
            let e = RateSetting::parse(bad).unwrap_err();
            assert!(e.contains("is not a rate"), "{bad}: {e}");
        }
        assert_eq!(
            RateSetting::default(),
            RateSetting::Fraction(DEFAULT_FRACTION)
        );
    }

    #[test]
    fn targets_map_to_aws_groups() {
        let g = group_of_target("AmazonEC2ContainerServiceV20141113.DescribeServices").unwrap();
        assert_eq!(
            (g.name, g.burst, g.sustained),
            ("ecs.service_read", 100, 20)
        );
        let g = group_of_target("secretsmanager.UpdateSecretVersionStage").unwrap();
        assert_eq!((g.name, g.sustained), ("secretsmanager.write", 50));
        assert!(group_of_target("secretsmanager.ListSecrets").is_none());
        assert!(group_of_target("DescribeServices").is_none());
        for g in GROUPS {
            for a in g.actions {
                let n = GROUPS
                    .iter()
                    .filter(|h| h.target == g.target && h.actions.contains(a))
                    .count();
                assert_eq!(n, 1, "{a}");
            }
        }
    }

    #[test]
    fn limited_clients_keep_the_download_check_without_the_upload_one() {
        use aws_types::SdkConfig;
        // The SDK's default (none set): both checks on; limited: upload off.
        let c = for_limited_clients(&SdkConfig::builder().build());
        let s = c.stalled_stream_protection().unwrap();
        assert!(!s.upload_enabled());
        assert!(s.download_enabled());
        // A configured grace period and download check are kept.
        let given = StalledStreamProtectionConfig::enabled()
            .grace_period(Duration::from_secs(9))
            .download_enabled(false)
            .build();
        let c = for_limited_clients(
            &SdkConfig::builder()
                .stalled_stream_protection(given)
                .region(aws_types::region::Region::new("eu-west-1"))
                .build(),
        );
        let s = c.stalled_stream_protection().unwrap();
        assert!(!s.upload_enabled());
        assert!(!s.download_enabled());
        assert_eq!(s.grace_period(), Duration::from_secs(9));
        assert_eq!(c.region().map(|r| r.as_ref()), Some("eu-west-1"));
    }

    #[test]
    fn a_bucket_holds_the_fraction_of_aws_burst() {
        let l = Limiters::new(0.5);
        let b = &l.buckets["ecs.service_modify"];
        // Half of AWS's 50: 25 at once, then none until the refill.
        for i in 0..25 {
            assert!(b.check().is_ok(), "call {i}");
        }
        assert!(b.check().is_err());
        let b = &l.buckets["ecs.service_read"];
        for i in 0..50 {
            assert!(b.check().is_ok(), "call {i}");
        }
        assert!(b.check().is_err());
    }
}
