//! Signing in through `credentials::load_with_env` against a fake STS with fixture config files:
//! MFA prompt, cache reuse and expiry, wrong codes, aws-vault, region precedence.
//!
//! Each test has its own files, cache dir, environment snapshot and STS on a free port,
//! so they run in parallel.

mod creds_common;

use std::sync::atomic::Ordering;

use creds_common::*;
use secret_rollout_core::credentials::cache::Store;
use secret_rollout_core::credentials::{self, AwsOptions, CredentialSource, MfaCodeSource};
use secret_rollout_core::error::exit;

#[tokio::test]
async fn mfa_profile_asks_once_then_reuses_the_cached_session() {
    let sts = FakeSts::start().await;
    let fx = Fixture::new();
    let (code, asked) = counting_code(GOOD_CODE);
    let mut opts = options(&sts, Some("production"), code);
    opts.expected_account = Some("123456789012".into());

    let ctx = credentials::load_with_env(&opts, &fx.env()).await.unwrap();
    assert_eq!(asked.load(Ordering::SeqCst), 1);
    assert_eq!(ctx.region, "eu-west-1", "the profile's region");
    assert_eq!(
        ctx.source,
        CredentialSource::Profile {
            name: "production".into(),
            assumed_role: Some(ROLE.into()),
            mfa: true,
            cached: false,
            // SECRET_ROLLOUT_CACHE_DIR: the file, and only the file.
            store: Some(Store::File(fx.cache_dir().join("session-production.json"))),
            renewed_from: None,
        }
    );
    let calls = sts.assume_roles();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(
        call.access_key.as_deref(),
        Some(SOURCE_KEY),
        "signed with the source profile's keys"
    );
    assert_eq!(call.params["RoleArn"], ROLE);
    assert_eq!(call.params["SerialNumber"], SERIAL);
    assert_eq!(call.params["TokenCode"], GOOD_CODE);
    assert_eq!(call.params["DurationSeconds"], "3600");
    assert!(call.params["RoleSessionName"].starts_with("secret-rollout-alice-"));
    let left = credentials::time_left(&ctx).unwrap();
    assert!(left.as_secs() > 3500 && left.as_secs() <= 3600, "{left:?}");

    // The clients made from the context use the assumed role.
    let who = credentials::whoami(&ctx).await.unwrap();
    assert_eq!(who.account, "123456789012");
    assert!(who.arn.contains("assumed-role/deploy"));
    assert_eq!(who.matches, Some(true));
    assert!(who
        .to_string()
        .contains("environment: matches account 123456789012"));
    assert!(sts
        .seen()
        .last()
        .unwrap()
        .access_key
        .as_deref()
        .unwrap()
        .starts_with("ASIA"));

    // Cache: one 0600 file, temporary keys only.
    let files = fx.cache_files();
    assert_eq!(files.len(), 1, "{files:?}");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(text.contains("ASIAFAKE") && text.contains(ROLE));
    assert!(
        !text.contains(SOURCE_KEY) && !text.contains(SOURCE_SECRET),
        "long-term keys in cache"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    // Second command: no code, no AssumeRole, same session.
    let (code2, asked2) = counting_code(GOOD_CODE);
    let ctx2 = credentials::load_with_env(&options(&sts, Some("production"), code2), &fx.env())
        .await
        .unwrap();
    assert_eq!(
        asked2.load(Ordering::SeqCst),
        0,
        "asked again within the session"
    );
    assert_eq!(sts.assume_roles().len(), 1);
    assert!(matches!(
        ctx2.source,
        CredentialSource::Profile { cached: true, .. }
    ));
    assert_eq!(
        ctx2.source.session_store(),
        Some(&Store::File(fx.cache_dir().join("session-production.json")))
    );
    assert!(
        ctx2.source.to_string().ends_with(&format!(
            "cached MFA session from the file {}",
            fx.cache_dir().join("session-production.json").display()
        )),
        "{}",
        ctx2.source
    );
    assert_eq!(
        ctx2.expires_at.map(|t| t.unix_timestamp()),
        ctx.expires_at.map(|t| t.unix_timestamp())
    );
    assert_eq!(
        credentials::caller(&ctx2).await.unwrap().account,
        "123456789012"
    );

    // Logout forgets it: the next command asks again.
    assert_eq!(
        credentials::logout_with_env(Some("production"), &fx.env()).unwrap(),
        1
    );
    assert!(fx.cache_files().is_empty());
    let (code3, asked3) = counting_code(GOOD_CODE);
    credentials::load_with_env(&options(&sts, Some("production"), code3), &fx.env())
        .await
        .unwrap();
    assert_eq!(asked3.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_session_within_five_minutes_of_expiry_is_not_reused() {
    let sts = FakeSts::start().await;
    sts.set_lifetime(200);
    let fx = Fixture::new();
    for round in 1..=2 {
        let (code, asked) = counting_code(GOOD_CODE);
        credentials::load_with_env(&options(&sts, Some("production"), code), &fx.env())
            .await
            .unwrap();
        assert_eq!(asked.load(Ordering::SeqCst), 1, "round {round} must ask");
    }
    assert_eq!(sts.assume_roles().len(), 2);
}

#[tokio::test]
async fn wrong_code_fails_clearly_and_caches_nothing() {
    let sts = FakeSts::start().await;
    let fx = Fixture::new();
    let (code, _) = counting_code("000000");
    let err = credentials::load_with_env(&options(&sts, Some("production"), code), &fx.env())
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), exit::CREDENTIALS);
    assert!(
        err.message.contains("the MFA code was not accepted"),
        "{}",
        err.render()
    );
    assert!(err
        .hint
        .as_deref()
        .unwrap()
        .contains("wait for the next code"));
    assert!(fx.cache_files().is_empty());
}

#[tokio::test]
async fn malformed_code_fails_before_calling_sts() {
    let sts = FakeSts::start().await;
    let fx = Fixture::new();
    let (code, _) = counting_code("12345");
    let err = credentials::load_with_env(&options(&sts, Some("production"), code), &fx.env())
        .await
        .unwrap_err();
    assert!(err.message.contains("6 digits"));
    assert!(sts.seen().is_empty());
}

#[tokio::test]
async fn access_denied_names_the_role() {
    let sts = FakeSts::start().await;
    let fx = Fixture::new();
    let (code, _) = counting_code(GOOD_CODE);
    let err = credentials::load_with_env(&options(&sts, Some("forbidden"), code), &fx.env())
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), exit::CREDENTIALS);
    assert!(
        err.message
            .contains("not allowed to assume role arn:aws:iam::123456789012:role/forbidden"),
        "{}",
        err.render()
    );
}

#[tokio::test]
async fn unknown_profile_lists_the_known_ones() {
    let sts = FakeSts::start().await;
    let fx = Fixture::new();
    let err = credentials::load_with_env(
        &options(&sts, Some("prod"), MfaCodeSource::Stdin),
        &fx.env(),
    )
    .await
    .unwrap_err();
    assert!(
        err.message
            .contains("known profiles: default, forbidden, identity, production, readonly"),
        "{}",
        err.message
    );
    assert!(sts.seen().is_empty());
}

#[tokio::test]
async fn role_without_mfa_is_assumed_without_a_code() {
    let sts = FakeSts::start().await;
    let fx = Fixture::new();
    let (code, asked) = counting_code(GOOD_CODE);
    let ctx = credentials::load_with_env(&options(&sts, Some("readonly"), code), &fx.env())
        .await
        .unwrap();
    assert_eq!(asked.load(Ordering::SeqCst), 0);
    assert_eq!(ctx.region, "eu-north-1");
    let calls = sts.assume_roles();
    assert_eq!(calls.len(), 1);
    assert!(!calls[0].params.contains_key("SerialNumber"));
    assert!(matches!(
        ctx.source,
        CredentialSource::Profile { mfa: false, .. }
    ));
    assert!(fx.cache_files().is_empty(), "only MFA sessions are cached");
}

#[tokio::test]
async fn aws_vault_environment_is_used_without_reading_any_profile() {
    let sts = FakeSts::start().await;
    sts.accept_key(
        "ASIAVAULT0000000",
        "arn:aws:sts::123456789012:assumed-role/deploy/vault",
    );
    let fx = Fixture::new();
    // A config file that cannot even be parsed: reading it would fail the command.
    std::fs::write(
        fx.dir.path().join("config"),
        "[profile broken\nrole_arn = x\n",
    )
    .unwrap();
    let env = fx
        .env()
        .with("AWS_VAULT", "production")
        .with("AWS_ACCESS_KEY_ID", "ASIAVAULT0000000")
        .with("AWS_SECRET_ACCESS_KEY", "vault-secret")
        .with("AWS_SESSION_TOKEN", "vault-token")
        .with("AWS_REGION", "eu-west-1")
        .with("AWS_DEFAULT_REGION", "eu-west-1")
        .with("AWS_CREDENTIAL_EXPIRATION", "2099-01-01T00:00:00Z");
    let (code, asked) = counting_code(GOOD_CODE);
    let opts = options(&sts, Some("production"), code);
    let ctx = credentials::load_with_env(&opts, &env).await.unwrap();
    assert_eq!(asked.load(Ordering::SeqCst), 0);
    assert_eq!(
        ctx.source,
        CredentialSource::AwsVault {
            profile: "production".into()
        }
    );
    assert_eq!(ctx.expires_at.unwrap().year(), 2099);
    // `--profile production` under `aws-vault exec production`: the same profile, so
    // nothing was passed over and nothing is said.
    assert!(ctx.warnings.is_empty(), "{:?}", ctx.warnings);
    assert!(ctx.notes.is_empty(), "{:?}", ctx.notes);
    let who = credentials::whoami(&ctx).await.unwrap();
    assert_eq!(who.account, "123456789012");
    assert_eq!(
        sts.seen().last().unwrap().access_key.as_deref(),
        Some("ASIAVAULT0000000")
    );
    assert!(sts.assume_roles().is_empty());
}

#[tokio::test]
async fn env_keys_without_aws_vault_are_used() {
    let sts = FakeSts::start().await;
    sts.accept_key("AKIAENV000000000", "arn:aws:iam::999999999999:user/ci");
    let fx = Fixture::new();
    let env = fx
        .env()
        .with("AWS_ACCESS_KEY_ID", "AKIAENV000000000")
        .with("AWS_SECRET_ACCESS_KEY", "env-secret");
    let mut opts = options(&sts, None, MfaCodeSource::Stdin);
    opts.expected_account = Some("123456789012".into());
    let ctx = credentials::load_with_env(&opts, &env).await.unwrap();
    assert_eq!(ctx.source, CredentialSource::Environment);
    assert_eq!(ctx.region, "us-east-1", "the default profile's region");
    assert!(credentials::time_left(&ctx).is_none());
    let who = credentials::whoami(&ctx).await.unwrap();
    assert_eq!(who.matches, Some(false));
}

#[tokio::test]
async fn region_precedence_through_the_config_files() {
    let sts = FakeSts::start().await;
    sts.accept_key("AKIAENV000000000", "arn:aws:iam::999999999999:user/ci");
    let fx = Fixture::new();
    // Static keys so no STS call is needed to sign in.
    let env = fx
        .env()
        .with("AWS_ACCESS_KEY_ID", "AKIAENV000000000")
        .with("AWS_SECRET_ACCESS_KEY", "env-secret");
    let opts = |region: Option<&str>| AwsOptions {
        region: region.map(str::to_string),
        ..options(&sts, None, MfaCodeSource::Stdin)
    };
    let region = |ctx: &credentials::AwsContext| {
        assert_eq!(ctx.sdk_config.region().unwrap().as_ref(), ctx.region);
        ctx.region.clone()
    };
    let both = env
        .clone()
        .with("AWS_REGION", "ap-south-1")
        .with("AWS_DEFAULT_REGION", "us-west-2");
    assert_eq!(
        region(
            &credentials::load_with_env(&opts(Some("sa-east-1")), &both)
                .await
                .unwrap()
        ),
        "sa-east-1"
    );
    assert_eq!(
        region(
            &credentials::load_with_env(&opts(None), &both)
                .await
                .unwrap()
        ),
        "ap-south-1"
    );
    let default_only = env.clone().with("AWS_DEFAULT_REGION", "us-west-2");
    assert_eq!(
        region(
            &credentials::load_with_env(&opts(None), &default_only)
                .await
                .unwrap()
        ),
        "us-west-2"
    );
    assert_eq!(
        region(&credentials::load_with_env(&opts(None), &env).await.unwrap()),
        "us-east-1"
    );

    // No region anywhere: bad input that names the ways to give one.
    std::fs::write(fx.dir.path().join("config"), "").unwrap();
    let err = credentials::load_with_env(&opts(None), &env)
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), exit::BAD_INPUT);
    assert!(err.hint.unwrap().contains("--region, set AWS_REGION"));
}

#[tokio::test]
async fn mfa_code_from_a_script_via_callback_never_touches_the_terminal() {
    // MfaCodeSource::Prompt would open /dev/tty; a cached session must not even try.
    let sts = FakeSts::start().await;
    let fx = Fixture::new();
    let (code, _) = counting_code(GOOD_CODE);
    credentials::load_with_env(&options(&sts, Some("production"), code), &fx.env())
        .await
        .unwrap();
    let ctx = credentials::load_with_env(
        &options(&sts, Some("production"), MfaCodeSource::Prompt),
        &fx.env(),
    )
    .await
    .unwrap();
    assert!(matches!(
        ctx.source,
        CredentialSource::Profile { cached: true, .. }
    ));
}

#[tokio::test]
async fn logout_all_forgets_every_cached_session() {
    let sts = FakeSts::start().await;
    let fx = Fixture::new();
    // Two profiles with MFA: production and forbidden shares its serial but is denied;
    // add a second working one by pointing another profile at the same role.
    let mut config = CONFIG.to_string();
    config.push_str(
        "\n[profile production-2]\nregion = eu-west-1\nrole_arn = arn:aws:iam::123456789012:role/deploy\nsource_profile = identity\nmfa_serial = arn:aws:iam::111111111111:mfa/alice\n",
    );
    std::fs::write(fx.dir.path().join("config"), config).unwrap();
    for p in ["production", "production-2"] {
        let (code, _) = counting_code(GOOD_CODE);
        credentials::load_with_env(&options(&sts, Some(p), code), &fx.env())
            .await
            .unwrap();
    }
    assert_eq!(fx.cache_files().len(), 2);
    assert_eq!(credentials::logout_with_env(None, &fx.env()).unwrap(), 2);
    assert!(fx.cache_files().is_empty());
    assert_eq!(credentials::logout_with_env(None, &fx.env()).unwrap(), 0);
}

#[cfg(unix)]
#[tokio::test]
async fn credential_process_profiles_keep_working_through_the_sdk() {
    use std::os::unix::fs::PermissionsExt;
    let sts = FakeSts::start().await;
    sts.accept_key(
        "ASIAPROCESS00000",
        "arn:aws:sts::123456789012:assumed-role/deploy/proc",
    );
    let fx = Fixture::new();
    let script = fx.dir.path().join("creds.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\necho '{\"Version\":1,\"AccessKeyId\":\"ASIAPROCESS00000\",\"SecretAccessKey\":\"proc-secret\",\"SessionToken\":\"proc-token\",\"Expiration\":\"2099-01-01T00:00:00Z\"}'\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut config = CONFIG.to_string();
    config.push_str(&format!(
        "\n[profile process]\nregion = eu-west-1\ncredential_process = {}\n",
        script.display()
    ));
    std::fs::write(fx.dir.path().join("config"), config).unwrap();
    let (code, asked) = counting_code(GOOD_CODE);
    let ctx = credentials::load_with_env(&options(&sts, Some("process"), code), &fx.env())
        .await
        .unwrap();
    assert_eq!(asked.load(Ordering::SeqCst), 0);
    assert_eq!(
        ctx.source,
        CredentialSource::Profile {
            name: "process".into(),
            assumed_role: None,
            mfa: false,
            cached: false,
            store: None,
            renewed_from: None,
        }
    );
    assert_eq!(
        ctx.expires_at.unwrap().year(),
        2099,
        "expiry known from the process"
    );
    assert_eq!(
        credentials::caller(&ctx).await.unwrap().account,
        "123456789012"
    );
    assert_eq!(
        sts.seen().last().unwrap().access_key.as_deref(),
        Some("ASIAPROCESS00000")
    );
}

#[tokio::test]
async fn source_profile_loop_fails_before_any_call() {
    let sts = FakeSts::start().await;
    let fx = Fixture::new();
    let mut config = CONFIG.to_string();
    config.push_str("\n[profile x]\nregion = eu-west-1\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = y\nmfa_serial = arn:aws:iam::111111111111:mfa/alice\n[profile y]\nrole_arn = arn:aws:iam::1:role/y\nsource_profile = x\n");
    std::fs::write(fx.dir.path().join("config"), config).unwrap();
    let (code, asked) = counting_code(GOOD_CODE);
    let err = credentials::load_with_env(&options(&sts, Some("x"), code), &fx.env())
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), exit::CREDENTIALS);
    assert!(err.message.contains("x -> y -> x"), "{}", err.message);
    assert_eq!(asked.load(Ordering::SeqCst), 0);
    assert!(sts.seen().is_empty());
}

#[tokio::test]
async fn no_credentials_anywhere_says_how_to_sign_in() {
    let sts = FakeSts::start().await;
    let fx = Fixture::new();
    std::fs::write(fx.dir.path().join("credentials"), "").unwrap();
    let err = credentials::load_with_env(
        &options(&sts, Some("production"), MfaCodeSource::Stdin),
        &fx.env(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.exit_code(), exit::CREDENTIALS);
    assert!(
        err.message.contains("profile `identity`"),
        "{}",
        err.message
    );
    assert!(
        err.message.contains("credentials"),
        "names the file: {}",
        err.message
    );
}

#[tokio::test]
async fn expired_and_rejected_tokens_say_what_to_do() {
    let sts = FakeSts::start().await;
    let fx = Fixture::new();
    let vault = |key: &str| {
        fx.env()
            .with("AWS_VAULT", "production")
            .with("AWS_ACCESS_KEY_ID", key)
            .with("AWS_SECRET_ACCESS_KEY", "s")
            .with("AWS_SESSION_TOKEN", "t")
            .with("AWS_REGION", "eu-west-1")
    };
    let opts = options(&sts, None, MfaCodeSource::Stdin);
    let ctx = credentials::load_with_env(&opts, &vault("ASIAEXPIRED00000"))
        .await
        .unwrap();
    let err = credentials::whoami(&ctx).await.unwrap_err();
    assert_eq!(err.exit_code(), exit::CREDENTIALS);
    assert!(
        err.message.contains("your AWS session has expired"),
        "{}",
        err.render()
    );
    let hint = err.hint.unwrap();
    assert!(hint.contains("aws-vault exec") && hint.contains("secret-rollout logout"));

    let ctx = credentials::load_with_env(&opts, &vault("ASIAUNKNOWN00000"))
        .await
        .unwrap();
    let err = credentials::caller(&ctx).await.unwrap_err();
    assert_eq!(err.exit_code(), exit::CREDENTIALS);
    assert!(err.message.contains("AWS rejected the credentials from aws-vault (profile production) (InvalidClientTokenId)"), "{}", err.render());
}

#[tokio::test]
async fn sdk_config_retries_and_leaves_endpoints_to_the_sdk_without_the_flag() {
    let fx = Fixture::new();
    let env = fx
        .env()
        .with("AWS_ACCESS_KEY_ID", "AKIAENV000000000")
        .with("AWS_SECRET_ACCESS_KEY", "env-secret-value")
        .with("AWS_SESSION_TOKEN", "env-token-value");
    let ctx = credentials::load_with_env(&AwsOptions::default(), &env)
        .await
        .unwrap();
    let retry = ctx.sdk_config.retry_config().unwrap();
    assert_eq!(retry.max_attempts(), credentials::DEFAULT_MAX_ATTEMPTS);
    assert_eq!(retry.mode(), aws_config::retry::RetryMode::Standard);
    assert_eq!(
        ctx.sdk_config.endpoint_url(),
        None,
        "AWS_ENDPOINT_URL_* stay the SDK's job"
    );
    let with_flag = AwsOptions {
        endpoint_url: Some("http://127.0.0.1:9".into()),
        ..AwsOptions::default()
    };
    let ctx2 = credentials::load_with_env(&with_flag, &env).await.unwrap();
    assert_eq!(ctx2.sdk_config.endpoint_url(), Some("http://127.0.0.1:9"));
    // Nothing secret in the context's Debug output (it may end up in logs).
    let debug = format!("{ctx:?}");
    assert!(!debug.contains("env-secret-value") && !debug.contains("env-token-value"));
}

/// Item 5 of issue 21: keys in the environment (as CI or a credential helper provides
/// them) win over the environment's `profile` from secret-rollout.toml, with a note that
/// names the config; an explicit `--profile` wins over the keys.
#[tokio::test]
async fn env_keys_win_over_the_config_profile_and_a_typed_profile_wins_over_both() {
    let sts = FakeSts::start().await;
    sts.accept_key(
        "ASIAHELPER000000",
        "arn:aws:sts::123456789012:assumed-role/deploy/ci",
    );
    let fx = Fixture::new();
    let env = fx
        .env()
        .with("AWS_ACCESS_KEY_ID", "ASIAHELPER000000")
        .with("AWS_SECRET_ACCESS_KEY", "helper-secret")
        .with("AWS_SESSION_TOKEN", "helper-token")
        .with("AWS_CREDENTIAL_EXPIRATION", "2099-01-01T00:00:00Z");
    let (code, asked) = counting_code(GOOD_CODE);
    let from_config = AwsOptions {
        profile_from: credentials::ProfileFrom::Config {
            environment: "production".into(),
        },
        ..options(&sts, Some("production"), code)
    };
    let ctx = credentials::load_with_env(&from_config, &env)
        .await
        .unwrap();
    assert_eq!(asked.load(Ordering::SeqCst), 0, "no MFA code asked");
    assert_eq!(ctx.source, CredentialSource::Environment);
    assert_eq!(ctx.expires_at.unwrap().year(), 2099);
    assert!(ctx.warnings.is_empty(), "{:?}", ctx.warnings);
    assert_eq!(ctx.notes.len(), 1, "{:?}", ctx.notes);
    assert!(
        ctx.notes[0].contains(
            "not with profile production (environment production in secret-rollout.toml)"
        ),
        "{:?}",
        ctx.notes
    );
    assert!(!ctx.notes[0].contains("--profile)"), "{:?}", ctx.notes);
    assert!(sts.assume_roles().is_empty());

    // The same profile typed as --profile: the profile, with the MFA code.
    let (code, asked) = counting_code(GOOD_CODE);
    let typed = options(&sts, Some("production"), code);
    let ctx = credentials::load_with_env(&typed, &env).await.unwrap();
    assert_eq!(asked.load(Ordering::SeqCst), 1);
    assert!(matches!(
        ctx.source,
        CredentialSource::Profile { mfa: true, .. }
    ));
    assert_eq!(ctx.notes.len(), 1, "{:?}", ctx.notes);
    assert!(
        ctx.notes[0].contains(
            "profile production (--profile), not with the credentials in the environment"
        ),
        "{:?}",
        ctx.notes
    );
    assert_eq!(sts.assume_roles().len(), 1);
}
