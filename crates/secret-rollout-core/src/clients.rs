//! The AWS clients every command uses, built from one `SdkConfig`, and a count of the
//! calls they make (printed by `--output json`: how many calls a run costs is part of
//! the contract, e.g. DescribeServices in batches of ten).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// Counts HTTP attempts per `Service.Operation` (retries count: they are calls AWS sees).
#[derive(Debug, Clone, Default)]
pub struct CallCounter(Arc<Mutex<BTreeMap<String, u64>>>);

impl CallCounter {
    /// Calls so far, by `Service.Operation`.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().expect("call counter lock").clone()
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(meta) = cfg.load::<Metadata>() {
            // "Secrets Manager" -> "SecretsManager": keys without spaces for machines.
            let service: String = meta
                .service()
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            let key = format!("{service}.{}", meta.name());
            *self
                .0
                .lock()
                .expect("call counter lock")
                .entry(key)
                .or_default() += 1;
        }
        Ok(())
    }
}

/// `builder` with `limited` as its HTTP client (`set` sets it), or unchanged when the
/// limiter is off.
fn limit<B>(
    mut builder: B,
    limited: &Option<crate::aws::rate::RateLimitedClient>,
    set: impl FnOnce(&mut B, SharedHttpClient),
) -> B {
    if let Some(c) = limited {
        set(&mut builder, SharedHttpClient::new(c.clone()));
    }
    builder
}

/// Secrets Manager, ECS, STS, SSM and ECR clients sharing one configuration and one call counter.
#[derive(Debug, Clone)]
pub struct Clients {
    /// Secrets Manager.
    pub sm: aws_sdk_secretsmanager::Client,
    /// ECS.
    pub ecs: aws_sdk_ecs::Client,
    /// STS.
    pub sts: aws_sdk_sts::Client,
    /// SSM (Parameter Store).
    pub ssm: aws_sdk_ssm::Client,
    /// ECR, in the configuration's region ([`Clients::ecr_in`] for another).
    pub ecr: aws_sdk_ecr::Client,
    /// The configuration they were built from.
    config: aws_types::SdkConfig,
    /// Calls made through these clients.
    pub calls: CallCounter,
}

impl Clients {
    /// Builds the clients from one configuration, every call of them passing through the
    /// process's rate limiter ([`crate::aws::rate`]) unless it is off.
    pub fn new(config: &aws_types::SdkConfig) -> Self {
        let calls = CallCounter::default();
        let limited = crate::aws::rate::shared()
            .map(|l| crate::aws::rate::RateLimitedClient::new(config.http_client(), l));
        // A call waiting for its token is not a stalled upload (see the function).
        let limited_config;
        let config = match limited {
            Some(_) => {
                limited_config = crate::aws::rate::for_limited_clients(config);
                &limited_config
            }
            None => config,
        };
        let sm = aws_sdk_secretsmanager::Client::from_conf(
            limit(
                aws_sdk_secretsmanager::config::Builder::from(config),
                &limited,
                |b, c| {
                    b.set_http_client(Some(c));
                },
            )
            .interceptor(calls.clone())
            .build(),
        );
        let ecs = aws_sdk_ecs::Client::from_conf(
            limit(
                aws_sdk_ecs::config::Builder::from(config),
                &limited,
                |b, c| {
                    b.set_http_client(Some(c));
                },
            )
            .interceptor(calls.clone())
            .build(),
        );
        let sts = aws_sdk_sts::Client::from_conf(
            limit(
                aws_sdk_sts::config::Builder::from(config),
                &limited,
                |b, c| {
                    b.set_http_client(Some(c));
                },
            )
            .interceptor(calls.clone())
            .build(),
        );
        let ssm = aws_sdk_ssm::Client::from_conf(
            limit(
                aws_sdk_ssm::config::Builder::from(config),
                &limited,
                |b, c| {
                    b.set_http_client(Some(c));
                },
            )
            .interceptor(calls.clone())
            .build(),
        );
        let ecr = aws_sdk_ecr::Client::from_conf(
            limit(
                aws_sdk_ecr::config::Builder::from(config),
                &limited,
                |b, c| {
                    b.set_http_client(Some(c));
                },
            )
            .interceptor(calls.clone())
            .build(),
        );
        Self {
            sm,
            ecs,
            sts,
            ssm,
            ecr,
            config: config.clone(),
            calls,
        }
    }

    /// ECR in `region` (an image's registry may be in another region), counted like the
    /// others.
    pub fn ecr_in(&self, region: &str) -> aws_sdk_ecr::Client {
        if self.config.region().is_some_and(|r| r.as_ref() == region) {
            return self.ecr.clone();
        }
        aws_sdk_ecr::Client::from_conf(
            aws_sdk_ecr::config::Builder::from(&self.config)
                .region(aws_types::region::Region::new(region.to_string()))
                .interceptor(self.calls.clone())
                .build(),
        )
    }
}
