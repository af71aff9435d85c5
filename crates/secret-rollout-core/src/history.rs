//! `history`: past rotations from the journal, and a secret's versions from Secrets
//! Manager. Names, ARNs, version ids, deployment ids, times and outcomes only: the journal
//! holds no value and nothing here reads one.

use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::journal::{RotationSummary, Status};
use crate::secret::VersionInfo;

/// One secret of a rotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretEntry {
    /// Name.
    pub name: String,
    /// ARN.
    pub arn: String,
    /// AWSCURRENT before the rotation.
    pub previous_version_id: Option<String>,
    /// The version written (replace), once written.
    pub new_version_id: Option<String>,
    /// The version AWSCURRENT was moved back to, if a restore happened.
    pub restored_version_id: Option<String>,
    /// The JSON key replaced, if any.
    pub json_key: Option<String>,
}

/// One service of a rotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceEntry {
    /// Cluster.
    pub cluster: String,
    /// Service.
    pub name: String,
    /// The deployment the rollout started.
    pub rollout_deployment: Option<String>,
    /// The deployment the restore started.
    pub restore_deployment: Option<String>,
}

/// One rotation, as `history` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RotationEntry {
    /// Rotation id.
    pub id: String,
    /// `replace`, `rollback` or `redeploy`.
    pub kind: String,
    /// Started (RFC 3339, UTC).
    pub started_at: String,
    /// Finished (RFC 3339), if it did.
    pub finished_at: Option<String>,
    /// Who (STS caller ARN).
    pub caller_arn: String,
    /// Account id.
    pub account: String,
    /// Environment name (or `REGION/CLUSTERS`).
    pub environment: String,
    /// Region.
    pub region: String,
    /// `in_progress`, or the outcome (`verified`, `failed_restored`, ...).
    pub outcome: String,
    /// The rotation it rolled back, for `rollback`.
    pub rolls_back: Option<String>,
    /// The final message (an error headline), if any.
    pub message: Option<String>,
    /// Secrets.
    pub secrets: Vec<SecretEntry>,
    /// Services.
    pub services: Vec<ServiceEntry>,
}

/// A secret's versions, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SecretVersions {
    /// Name.
    pub name: String,
    /// ARN.
    pub arn: String,
    /// Versions, by creation date (unknown dates first).
    pub versions: Vec<VersionInfo>,
}

/// The whole `history`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct History {
    /// Rotations, oldest first.
    pub rotations: Vec<RotationEntry>,
    /// With a secret named: its versions.
    pub secret: Option<SecretVersions>,
}

/// Epoch seconds (AWS's dates) as RFC 3339 in UTC, to the millisecond: every time in
/// JSON output is a string in this form, never a number.
pub fn epoch_rfc3339(epoch: f64) -> String {
    let nanos = (epoch * 1e3).round() as i128 * 1_000_000;
    match OffsetDateTime::from_unix_timestamp_nanos(nanos) {
        Ok(t) => t
            .format(&Rfc3339)
            .unwrap_or_else(|_| t.unix_timestamp().to_string()),
        Err(_) => epoch.to_string(),
    }
}

/// `serialize_with` for an epoch-seconds field: an RFC 3339 string ([`epoch_rfc3339`]).
pub fn ser_epoch<S: serde::Serializer>(epoch: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&epoch_rfc3339(*epoch))
}

/// `serialize_with` for an optional epoch-seconds field: a string, or null.
pub fn ser_opt_epoch<S: serde::Serializer>(epoch: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match epoch {
        Some(e) => s.serialize_str(&epoch_rfc3339(*e)),
        None => s.serialize_none(),
    }
}

/// `serialize_with` for an optional pair of epoch seconds (a range): two strings, or null.
pub fn ser_opt_epoch_pair<S: serde::Serializer>(
    range: &Option<(f64, f64)>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match range {
        Some((a, b)) => (epoch_rfc3339(*a), epoch_rfc3339(*b)).serialize(s),
        None => s.serialize_none(),
    }
}

/// RFC 3339 in UTC.
pub fn rfc3339(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    // Whole seconds: enough for people, and the order comes from the journal anyway.
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

fn snake<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The outcome as a word: `in_progress` or the finished outcome in snake case.
pub fn outcome(status: Status) -> String {
    match status {
        Status::InProgress => "in_progress".to_string(),
        Status::Finished(o) => snake(&o),
    }
}

/// The rotations to show, oldest first: those of `environment` (when given) that touch
/// `secret_arn` (when given).
pub fn entries(
    rotations: &[RotationSummary],
    secret_arn: Option<&str>,
    environment: Option<&str>,
) -> Vec<RotationEntry> {
    let mut list: Vec<&RotationSummary> = rotations
        .iter()
        .filter(|r| environment.is_none_or(|e| r.started.environment == e))
        .filter(|r| secret_arn.is_none_or(|a| r.touches(a)))
        .collect();
    list.sort_by_key(|r| (r.started.started_at, r.rotation_id()));
    list.into_iter()
        .map(|r| RotationEntry {
            id: r.rotation_id().to_string(),
            kind: snake(&r.started.kind),
            started_at: rfc3339(r.started.started_at),
            finished_at: r.finished_at.map(rfc3339),
            caller_arn: r.started.caller_arn.clone(),
            account: r.started.account.clone(),
            environment: r.started.environment.clone(),
            region: r.started.region.clone(),
            outcome: outcome(r.status),
            rolls_back: r.started.rolls_back.map(|u| u.to_string()),
            message: r.message.clone(),
            secrets: r
                .secrets
                .iter()
                .map(|s| SecretEntry {
                    name: s.name.clone(),
                    arn: s.arn.clone(),
                    previous_version_id: s.previous_version_id.clone(),
                    new_version_id: s.written_version_id.clone(),
                    restored_version_id: s.restored_version_id.clone(),
                    json_key: s.json_key.clone(),
                })
                .collect(),
            services: r
                .services
                .iter()
                .map(|s| ServiceEntry {
                    cluster: s.cluster.clone(),
                    name: s.name.clone(),
                    rollout_deployment: s.rollout_deployment.clone(),
                    restore_deployment: s.restore_deployment.clone(),
                })
                .collect(),
        })
        .collect()
}

/// Orders versions by creation date, oldest first. Versions created in the same second
/// (AWS's dates are whole seconds) by their labels, in the order a version holds them in
/// its life: none, AWSPREVIOUS, AWSCURRENT, AWSPENDING; then by id, so the order is
/// stable (a random version id alone made it change from run to run).
pub fn sort_versions(mut versions: Vec<VersionInfo>) -> Vec<VersionInfo> {
    let rank = |v: &VersionInfo| {
        let has = |s: &str| v.stages.iter().any(|x| x == s);
        if has("AWSPENDING") {
            3
        } else if has("AWSCURRENT") {
            2
        } else if has("AWSPREVIOUS") {
            1
        } else {
            0
        }
    };
    versions.sort_by(|a, b| {
        a.created
            .unwrap_or(f64::MIN)
            .total_cmp(&b.created.unwrap_or(f64::MIN))
            .then_with(|| rank(a).cmp(&rank(b)))
            .then_with(|| a.id.cmp(&b.id))
    });
    versions
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{fold, Outcome, Record, RotationKind, Started, StartedSecret};
    use std::path::Path;
    use time::macros::datetime;
    use uuid::Uuid;

    const ARN: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:production/x-AbCdEf";

    fn rotation(
        at: OffsetDateTime,
        env: &str,
        arn: &str,
        outcome: Option<Outcome>,
    ) -> RotationSummary {
        let id = Uuid::new_v4();
        let mut records = vec![Record::Started(Started {
            rotation_id: id,
            kind: RotationKind::Replace,
            environment: env.into(),
            region: "eu-west-1".into(),
            clusters: vec!["c".into()],
            caller_arn: "arn:aws:sts::123456789012:assumed-role/operator/alice".into(),
            account: "123456789012".into(),
            rolls_back: None,
            secrets: vec![StartedSecret {
                arn: arn.into(),
                name: "production/x".into(),
                previous_version_id: Some("v1".into()),
                request_token: Some(id),
                json_key: None,
            }],
            services: vec![],
            started_at: at,
            tool_version: "0".into(),
            on_failure: None,
        })];
        records.push(Record::Written {
            secret_arn: arn.into(),
            version_id: "v2".into(),
            at,
            operator_named: false,
        });
        if let Some(outcome) = outcome {
            records.push(Record::Finished {
                outcome,
                at,
                message: Some("why".into()),
            });
        }
        fold(Path::new("x.jsonl"), &records).unwrap()
    }

    #[test]
    fn entries_are_oldest_first_and_filtered() {
        let later = rotation(
            datetime!(2026-11-25 12:00 UTC),
            "production",
            ARN,
            Some(Outcome::FailedRestored),
        );
        let earlier = rotation(datetime!(2026-11-24 12:00 UTC), "production", ARN, None);
        let other_env = rotation(
            datetime!(2026-11-23 12:00 UTC),
            "preprod",
            ARN,
            Some(Outcome::Verified),
        );
        let other_secret = rotation(
            datetime!(2026-11-22 12:00 UTC),
            "production",
            "arn:other",
            Some(Outcome::Verified),
        );
        let all = [later, earlier, other_env, other_secret];
        let e = entries(&all, Some(ARN), Some("production"));
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].outcome, "in_progress");
        assert_eq!(e[0].started_at, "2026-11-24T12:00:00Z");
        // Epoch floats in JSON become RFC 3339 strings, to the millisecond.
        assert_eq!(epoch_rfc3339(1_796_049_336.917), "2026-11-30T14:35:36.917Z");
        assert_eq!(epoch_rfc3339(1_796_049_336.0), "2026-11-30T14:35:36Z");
        assert_eq!(e[1].outcome, "failed_restored");
        assert_eq!(e[1].kind, "replace");
        assert_eq!(e[1].message.as_deref(), Some("why"));
        assert_eq!(e[1].secrets[0].new_version_id.as_deref(), Some("v2"));
        assert_eq!(e[1].secrets[0].previous_version_id.as_deref(), Some("v1"));
        assert_eq!(entries(&all, None, None).len(), 4);
        assert_eq!(entries(&all, None, None)[0].secrets[0].arn, "arn:other");
    }

    #[test]
    fn versions_sort_by_creation() {
        let v = |id: &str, c: Option<f64>| VersionInfo {
            id: id.into(),
            stages: vec![],
            created: c,
        };
        let sorted = sort_versions(vec![v("b", Some(3.0)), v("a", Some(1.0)), v("z", None)]);
        let ids: Vec<&str> = sorted.iter().map(|v| v.id.as_str()).collect();
        assert_eq!(ids, ["z", "a", "b"]);
        // The same second: by the labels' order in a version's life, not by id.
        let s = |id: &str, stage: &str| VersionInfo {
            id: id.into(),
            stages: vec![stage.into()],
            created: Some(5.0),
        };
        let sorted = sort_versions(vec![
            s("a", "AWSPENDING"),
            s("b", "AWSCURRENT"),
            s("c", "AWSPREVIOUS"),
        ]);
        let ids: Vec<&str> = sorted.iter().map(|v| v.id.as_str()).collect();
        assert_eq!(ids, ["c", "b", "a"]);
    }
}
