//! Property tests over the parsers a user (or a task definition) reaches: `valueFrom`
//! strings, secret names and ARNs, and `--json-key` merges. None may panic; each either
//! parses or refuses, and what parses keeps the facts it was built from.

use proptest::prelude::*;
use secret_rollout_core::error::Reach;
use secret_rollout_core::reference::{parse_value_from, RefForm};
use secret_rollout_core::value::{merge_json_key, Current, SecretValue};

/// Secret names as Secrets Manager allows them: letters, digits and `/_+=.@-`.
fn name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9/_+=.@-]{1,40}"
}

proptest! {
    /// Anything at all: parses or is `None`, never a panic.
    #[test]
    fn value_from_never_panics(s in "\\PC{0,120}") {
        let _ = parse_value_from(&s);
    }

    /// ARN-shaped noise: colons and selectors in every position.
    #[test]
    fn arn_shaped_noise_never_panics(parts in prop::collection::vec("[a-z0-9:/_-]{0,12}", 0..10)) {
        let s = format!("arn:aws:secretsmanager:{}", parts.join(":"));
        let _ = parse_value_from(&s);
    }

    /// A full ARN with a 6-character suffix and every selector round-trips.
    #[test]
    fn full_arns_keep_their_parts(
        region in "[a-z]{2}-[a-z]{4,7}-[1-9]",
        account in "[0-9]{12}",
        name in "[A-Za-z0-9/_+=.@]{1,30}",
        suffix in "[A-Za-z0-9]{6}",
        key in prop::option::of("[A-Za-z0-9_]{1,10}"),
        stage in prop::option::of("AWS(CURRENT|PREVIOUS)"),
    ) {
        let base = format!("arn:aws:secretsmanager:{region}:{account}:secret:{name}-{suffix}");
        let raw = match (&key, &stage) {
            (None, None) => base.clone(),
            _ => format!("{base}:{}:{}:", key.clone().unwrap_or_default(), stage.clone().unwrap_or_default()),
        };
        let r = parse_value_from(&raw).expect("a full ARN parses");
        prop_assert_eq!(r.form, RefForm::FullArn);
        prop_assert_eq!(r.region.as_deref(), Some(region.as_str()));
        prop_assert_eq!(r.account.as_deref(), Some(account.as_str()));
        prop_assert_eq!(r.base_arn(), Some(base.clone()));
        let full_name = format!("{name}-{suffix}");
        let reads = r.matches(&base, &full_name) || r.matches(&base, &name);
        prop_assert!(reads);
        prop_assert_eq!(r.json_key.clone(), key);
        prop_assert_eq!(r.stage(), stage.as_deref().unwrap_or("AWSCURRENT"));
    }

    /// A plain name reads the secret of that name, and no other.
    #[test]
    fn names_match_themselves(n in name(), other in name()) {
        if let Some(r) = parse_value_from(&n) {
            let mine = format!("arn:aws:secretsmanager:eu-west-1:123456789012:secret:{n}-AbCdEf");
            prop_assert!(r.matches(&mine, &n));
            if other != n && !n.starts_with("arn:") {
                let theirs = format!("arn:aws:secretsmanager:eu-west-1:123456789012:secret:{other}-AbCdEf");
                prop_assert!(!r.matches(&theirs, &other));
            }
        }
    }

    /// `--json-key` on any object: the key gets the new value, every other member stays,
    /// and any input gives a value or a refusal, never a panic.
    #[test]
    fn json_key_merges(
        members in prop::collection::btree_map("[a-z]{1,6}", prop_oneof![
            "[a-zA-Z0-9 ]{0,10}".prop_map(serde_json::Value::String),
            any::<i32>().prop_map(serde_json::Value::from),
            any::<bool>().prop_map(serde_json::Value::from),
        ], 1..6),
        // Numbers for number members, and marked text whose absence from errors is checked.
        new in prop_oneof!["[1-9][0-9]{0,8}", "V[a-zA-Z0-9]{8,12}"],
        noise in "\\PC{0,40}",
    ) {
        let current = serde_json::Value::Object(members.clone().into_iter().collect()).to_string();
        let key = members.keys().next().unwrap().clone();
        let current = SecretValue::new(current);
        let reach = Reach::default();
        let at = |value| Current { value, secret: "s", reach: &reach };
        match merge_json_key(at(&current), &key, &SecretValue::new(new.clone())) {
            Ok(merged) => {
                let parsed: serde_json::Map<String, serde_json::Value> = serde_json::from_str(merged.expose()).unwrap();
                prop_assert_eq!(parsed.len(), members.len());
                for (k, v) in &members {
                    if *k != key {
                        prop_assert_eq!(&parsed[k], v);
                    }
                }
                match &members[&key] {
                    serde_json::Value::String(_) => prop_assert_eq!(&parsed[&key], &serde_json::Value::String(new.clone())),
                    serde_json::Value::Number(_) => prop_assert_eq!(parsed[&key].to_string(), new.clone()),
                    other => prop_assert!(false, "a {other} member took {new}"),
                }
            }
            Err(e) => {
                prop_assert_eq!(e.exit_code(), 2);
                prop_assert!(!new.starts_with('V') || !e.render().contains(&new), "{}", e.render());
            }
        }
        let _ = merge_json_key(at(&SecretValue::new(noise)), "k", &SecretValue::new(new));
    }
}
