//! Watching the secrets a phase delivers: one `DescribeSecret` per secret at every follow
//! poll, during verification and once more a margin after the tasks were listed. The
//! looks are judged by the pure rule in [`crate::holding`].

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::aws::secrets;
use crate::holding::{self, Holding, Look, Question};
use crate::progress::{Event, Phase, Reporter};

/// One secret whose version the tasks must hold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Watched {
    /// ARN.
    pub arn: String,
    /// Name.
    pub name: String,
    /// The version the tasks must hold.
    pub version: String,
    /// Its CreatedDate (AWS's clock), when known.
    pub created: Option<f64>,
    /// Every look, oldest first.
    pub looks: Vec<Look>,
}

/// The secrets of one phase and their looks.
pub struct SecretWatch {
    sm: aws_sdk_secretsmanager::Client,
    /// For watched parameters (see [`SecretWatch::with_parameters`]).
    ssm: Option<aws_sdk_ssm::Client>,
    epoch: Instant,
    /// The consistency margin.
    pub margin: Duration,
    /// The watched secrets.
    pub secrets: Vec<Watched>,
    /// When the tasks were listed for verification (tool's clock), if they were.
    pub listed_at: Option<f64>,
    reported: usize,
}

impl SecretWatch {
    /// A watch of `secrets` (arn, name, version, created).
    pub fn new(
        sm: aws_sdk_secretsmanager::Client,
        margin: Duration,
        secrets: Vec<(String, String, String, Option<f64>)>,
    ) -> SecretWatch {
        SecretWatch {
            sm,
            ssm: None,
            epoch: Instant::now(),
            margin,
            secrets: secrets
                .into_iter()
                .map(|(arn, name, version, created)| Watched {
                    arn,
                    name,
                    version,
                    created,
                    looks: Vec::new(),
                })
                .collect(),
            listed_at: None,
            reported: 0,
        }
    }

    /// Reads watched parameters (an ARN `arn:...:ssm:...:parameter/...`) with this client:
    /// the latest version plays `AWSCURRENT` ([`crate::parameter::look`]).
    pub fn with_parameters(mut self, ssm: aws_sdk_ssm::Client) -> SecretWatch {
        self.ssm = Some(ssm);
        self
    }

    /// Seconds on the tool's monotonic clock since the watch began.
    pub fn now(&self) -> f64 {
        self.epoch.elapsed().as_secs_f64()
    }

    /// Reads every watched secret once. A failed read is no look: the next one (and the
    /// final one, which is required) bridges the gap through `LastChangedDate`.
    pub async fn look(&mut self, phase: Phase, reporter: &dyn Reporter) {
        for i in 0..self.secrets.len() {
            let arn = self.secrets[i].arn.clone();
            if let (true, Some(ssm)) = (crate::store::is_parameter(&arn), &self.ssm) {
                let name = crate::store::parameter_name(&self.secrets[i].name).to_string();
                match crate::aws::ssm::latest(ssm, &name).await {
                    Ok(latest) => {
                        let look = crate::parameter::look(self.now(), latest);
                        self.secrets[i].looks.push(look);
                    }
                    Err(e) => reporter.report(&Event::Retrying {
                        what: format!("reading parameter {name}"),
                        error: e.message,
                    }),
                }
                continue;
            }
            match secrets::describe(&self.sm, &arn).await {
                Ok(info) => {
                    let pending = info
                        .stages
                        .iter()
                        .find(|(_, s)| s.iter().any(|x| x == "AWSPENDING"))
                        .map(|(v, _)| v.clone());
                    let look = Look {
                        at: self.now(),
                        current: info.current,
                        pending,
                        last_changed: info.last_changed,
                    };
                    self.secrets[i].looks.push(look);
                }
                Err(e) => reporter.report(&Event::Retrying {
                    what: format!("reading secret {}", self.secrets[i].name),
                    error: e.message,
                }),
            }
        }
        self.report_change(phase, reporter);
    }

    /// Tells the operator, once, that a watched secret changed.
    fn report_change(&mut self, phase: Phase, reporter: &dyn Reporter) {
        if self.reported > 0 {
            return;
        }
        for w in &self.secrets {
            let Some(first) = w.looks.first() else {
                continue;
            };
            let Some(last) = w.looks.last() else {
                continue;
            };
            if last.current.as_deref() != Some(w.version.as_str())
                || last.last_changed != first.last_changed
            {
                self.reported += 1;
                reporter.report(&Event::SecretChanged {
                    phase,
                    secret: w.name.clone(),
                    expected: w.version.clone(),
                    current: last.current.clone(),
                    last_changed: last.last_changed,
                });
            }
        }
    }

    /// Someone else changed a watched secret since the first look (or it was not on its
    /// version at the first look): following on cannot make the proof true.
    pub fn changed(&self) -> bool {
        self.secrets.iter().any(|w| {
            let Some(first) = w.looks.first() else {
                return false;
            };
            w.looks.iter().any(|l| {
                l.current.as_deref() != Some(w.version.as_str())
                    || l.last_changed != first.last_changed
            })
        })
    }

    /// Waits until a margin has passed since the tasks were listed, then reads again.
    pub async fn final_look(&mut self, phase: Phase, reporter: &dyn Reporter) {
        let listed = self.listed_at.unwrap_or_else(|| self.now());
        self.look_after(listed, phase, reporter).await;
    }

    /// The rule's answer per secret.
    pub fn holdings(&self) -> Vec<(&Watched, Holding)> {
        self.holdings_listed_at(self.listed_at)
    }

    /// The rule's answer per secret for tasks listed at `listed_at` (tool's clock): the
    /// approval of a `PAUSE` hook lists the green tasks before the final verification.
    pub fn holdings_listed_at(&self, listed_at: Option<f64>) -> Vec<(&Watched, Holding)> {
        self.secrets
            .iter()
            .map(|w| {
                let h = holding::judge(&Question {
                    version: &w.version,
                    created: w.created,
                    looks: &w.looks,
                    listed_at,
                    margin: self.margin.as_secs_f64(),
                });
                (w, h)
            })
            .collect()
    }

    /// Every secret was read at least the margin after `listed_at` (tool's clock).
    pub fn read_after(&self, listed_at: f64) -> bool {
        let margin = self.margin.as_secs_f64();
        self.secrets
            .iter()
            .all(|w| w.looks.last().is_some_and(|l| l.at >= listed_at + margin))
    }

    /// Waits until the margin has passed since `listed_at` (tool's clock), then reads
    /// every secret again.
    pub async fn look_after(&mut self, listed_at: f64, phase: Phase, reporter: &dyn Reporter) {
        let wait = listed_at + self.margin.as_secs_f64() - self.now();
        if wait > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(wait)).await;
        }
        self.look(phase, reporter).await;
    }

    /// The moment every task must be created at or after: the latest `since` of the
    /// secrets (their first looks). `None`: not known for one of them.
    pub fn since(&self) -> Option<f64> {
        let mut out: Option<f64> = None;
        for (_, h) in self.holdings() {
            let s = h.since()?;
            out = Some(out.map_or(s, |o| o.max(s)));
        }
        out
    }
}
