//! `demo`: the whole job on an embedded sandbox, so anyone can see it without an AWS account.

use std::time::Duration;

use clap::Args;
use sandbox::ecs::{HealthEffect, HealthRule};
use sandbox::{Sandbox, SandboxOptions, Scenario};
use secret_rollout_core::clients::Clients;
use secret_rollout_core::config::Target;
use secret_rollout_core::error::{Error, Result};
use secret_rollout_core::plan;
use secret_rollout_core::progress::Reporter;
use secret_rollout_core::rotation::{self, Caller, Context, OnFailure, Settings};
use secret_rollout_core::value::{self, Charset};

use super::args::Global;
use super::output;

/// `demo`.
#[derive(Debug, Args, Clone)]
pub struct DemoArgs {
    /// Virtual seconds per real second (a rollout takes a few seconds at the default).
    #[arg(long, default_value_t = 20.0, value_name = "FACTOR", value_parser = super::parse::speed)]
    pub speed: f64,
    /// Make api reject the new value, to see the failure and the restore.
    #[arg(long)]
    pub bad_value: bool,
}

/// The secret the demo replaces: shared by front, api, admin and the blue/green viewer.
const SECRET: &str = "production/opg_lpa_common_account_cleanup_notification_recipients";

/// `demo`.
pub async fn run(global: &Global, a: &DemoArgs, reporter: &dyn Reporter) -> Result<i32> {
    let sb = Sandbox::start(SandboxOptions {
        port: 0,
        scenario: Scenario::demo(),
        speed: Some(a.speed),
        seed: None,
    })
    .await
    .map_err(|e| Error::local(format!("cannot start the embedded sandbox: {e}")))?;
    let width = super::width::stderr();
    for line in [
        format!(
            "demo: a sandbox of the sample environment is running on {} (Secrets Manager, SSM Parameter Store, ECS, STS)",
            sb.endpoint()
        ),
        "demo: cluster production-online-lpa runs front (3 tasks), api (3), pdf (2), admin (1), viewer (2, blue/green) and notify (2, its API key in an SSM Parameter Store SecureString)".to_string(),
    ] {
        for l in super::width::wrap(&line, width) {
            eprintln!("{l}");
        }
    }
    // The demo signs in with throwaway keys that the sandbox accepts, whatever the
    // machine's own AWS settings are.
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_types::region::Region::new("eu-west-1"))
        .endpoint_url(sb.endpoint())
        .credentials_provider(aws_credential_types::Credentials::new(
            "DEMO", "demo", None, None, "demo",
        ))
        .load()
        .await;
    let clients = Clients::new(&config);
    let target = Target {
        environment: Some("production (sandbox)".into()),
        region: "eu-west-1".into(),
        profile: None,
        account_id: Some("123456789012".into()),
        clusters: vec!["production-online-lpa".into()],
        services: None,
        secret_prefix: None,
        parameter_prefix: None,
    };
    let p = plan::plan(&clients, &target, &[SECRET.to_string()], None, false).await?;
    eprintln!();
    output::plan_text(&p, &mut std::io::stderr(), super::width::stderr());
    eprintln!();
    let new = value::generate(32, Charset::Base64Url)?;
    if a.bad_value {
        // "The database does not accept the new password yet": tasks that read the new
        // value fail to start, ECS's circuit breaker rolls back, and we restore.
        let rule = HealthRule {
            cluster: None,
            service: Some("api".into()),
            secret: Some(SECRET.into()),
            value: Some(new.expose().to_string()),
            version_id: None,
            probability: None,
            effect: HealthEffect::AppRejectsValue,
        };
        sb.world()
            .lock()
            .map_err(|_| Error::local("sandbox state poisoned"))?
            .ecs
            .set_health_rules(vec![rule]);
        eprintln!("demo: api will reject the new value (a health rule), to show the restore");
    }
    let state = tempfile::tempdir().map_err(|e| {
        Error::local(format!("cannot make a temporary directory: {e}"))
            .hint("check that the temporary directory (TMPDIR) exists and is writable")
    })?;
    let settings = Settings {
        timeout: Duration::from_secs(600),
        max_poll: Duration::from_millis(250),
        on_failure: OnFailure::Rollback,
        state_dir: state.path().to_path_buf(),
        // The sandbox answers consistently; a short margin keeps the demo brisk.
        consistency_margin: Duration::from_millis(250),
        concurrent: Default::default(),
        state: Default::default(),
        max_task_failures: None,
        approve_hooks: false,
        until_traffic: false,
        reach: Default::default(),
        allow_image_change: false,
    };
    let caller = Caller {
        account: "123456789012".into(),
        arn: "arn:aws:iam::123456789012:user/sandbox".into(),
    };
    let ctx = Context {
        clients: &clients,
        caller: &caller,
        settings: &settings,
        reporter,
        rotation_id: uuid::Uuid::new_v4(),
    };
    let report = rotation::replace_planned(&ctx, &p, vec![new], None).await?;
    eprintln!();
    output::report(global.output, &report);
    eprintln!();
    for line in next_steps(a.bad_value) {
        // Commands break with ` \` continuations (they still run when pasted); prose wraps.
        let lead = line.len() - line.trim_start().len();
        let rest = &line[lead..];
        let lines = if rest.starts_with("secret-rollout ") || rest.starts_with("export ") {
            super::width::command(&line[..lead], rest, width)
        } else {
            super::width::wrap(&line, width)
        };
        for l in lines {
            eprintln!("{l}");
        }
    }
    Ok(report.exit_code())
}

/// "What to try next" after a demo: the other demo (never the one just run), then the
/// sandbox and the everyday commands against it.
fn next_steps(bad_value: bool) -> Vec<String> {
    let other = if bad_value {
        "  secret-rollout demo                   # every service accepts the new value: the proof"
    } else {
        "  secret-rollout demo --bad-value       # the new value breaks api: watch the restore"
    };
    vec![
        "what to try next:".to_string(),
        other.to_string(),
        "  secret-rollout sandbox --port 4566    # then, in another terminal:".to_string(),
        "    export AWS_ENDPOINT_URL=http://127.0.0.1:4566 AWS_REGION=eu-west-1 AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x".to_string(),
        format!("    secret-rollout plan {SECRET} --cluster production-online-lpa"),
        format!("    secret-rollout replace {SECRET} --cluster production-online-lpa --generate"),
        "    secret-rollout status --cluster production-online-lpa".to_string(),
        "    secret-rollout history".to_string(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Item 13 of issue 21: the demo never suggests itself as the next thing to try.
    #[test]
    fn next_steps_suggest_the_other_demo() {
        for bad_value in [false, true] {
            let steps = next_steps(bad_value);
            let demos: Vec<&String> = steps
                .iter()
                .filter(|l| l.trim_start().starts_with("secret-rollout demo"))
                .collect();
            assert_eq!(demos.len(), 1, "{steps:?}");
            assert_eq!(demos[0].contains("--bad-value"), !bad_value, "{steps:?}");
        }
    }
}
