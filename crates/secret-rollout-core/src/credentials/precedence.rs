//! Which credentials a command signs in with: a pure decision over what was typed, what
//! the environment's config says and what the process environment holds, decided the way
//! the aws CLI decides it. Highest first:
//!
//! | # | when | signs in with | says |
//! |---|------|---------------|------|
//! | 1 | `--profile P` typed, and aws-vault's profile is not P | profile P | a note if the environment holds credentials it does not use |
//! | 2 | credentials in the environment (`AWS_ACCESS_KEY_ID`, or `AWS_VAULT` for aws-vault's server) | the environment (`AWS_SESSION_TOKEN`, `AWS_CREDENTIAL_EXPIRATION` with them) | a note naming the profile of the config file (or `AWS_PROFILE`) it does not use |
//! | 3 | the environment's `profile = P` in secret-rollout.toml | profile P | a note if `AWS_PROFILE` names another profile |
//! | 4 | `AWS_PROFILE=P` | profile P | |
//! | 5 | nothing of the above | the `default` profile when it needs MFA, else the SDK's default chain | |
//!
//! Under aws-vault (`AWS_VAULT=P`), a `--profile P` naming the same profile is what
//! aws-vault already signed in as: its credentials are used and no profile is read.

use std::fmt;

use super::EnvVars;

/// Where the profile in [`super::AwsOptions::profile`] came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ProfileFrom {
    /// `--profile` on the command line: wins over credentials in the environment.
    #[default]
    Flag,
    /// The `profile` of an environment in secret-rollout.toml: credentials in the
    /// environment win over it (with a note).
    Config {
        /// The environment's name.
        environment: String,
    },
}

/// Why a profile was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileReason {
    /// `--profile`.
    Flag,
    /// The environment's `profile` in secret-rollout.toml.
    Config {
        /// The environment's name.
        environment: String,
    },
    /// `AWS_PROFILE`.
    AwsProfileVar,
}

impl fmt::Display for ProfileReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProfileReason::Flag => f.write_str("--profile"),
            ProfileReason::Config { environment } => {
                write!(f, "environment {environment} in secret-rollout.toml")
            }
            ProfileReason::AwsProfileVar => f.write_str("AWS_PROFILE"),
        }
    }
}

/// The way to sign in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Way {
    /// The credentials in the environment (`vault`: aws-vault's profile, `AWS_VAULT`).
    Environment {
        /// `AWS_VAULT`, when set.
        vault: Option<String>,
    },
    /// A profile of the shared config files.
    Profile {
        /// Its name.
        name: String,
        /// Why it.
        reason: ProfileReason,
    },
    /// The `default` profile when it needs MFA, else the SDK's default chain.
    Default,
}

/// What [`decide`] decided: the way, and notes for the operator that name where each
/// setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// How to sign in.
    pub way: Way,
    /// One line each, printed as `note: ...`.
    pub notes: Vec<String>,
}

/// The environment's credentials, named for a message.
fn env_credentials(vault: Option<&str>) -> String {
    match vault {
        Some(v) => format!("the credentials aws-vault put in the environment (profile {v})"),
        None => "the credentials in the environment (AWS_ACCESS_KEY_ID)".to_string(),
    }
}

/// Decides how to sign in (the table in the module doc). `profile` is the profile the
/// command was given and where from; `env` the process environment.
pub fn decide(profile: Option<(&str, &ProfileFrom)>, env: &EnvVars) -> Decision {
    let vault = env.get("AWS_VAULT");
    let env_creds = env.get("AWS_ACCESS_KEY_ID").is_some() || vault.is_some();
    let aws_profile = env.get("AWS_PROFILE");
    let mut notes = Vec::new();
    let environment = |notes| Decision {
        way: Way::Environment {
            vault: vault.map(str::to_string),
        },
        notes,
    };
    match profile {
        Some((name, ProfileFrom::Flag)) => {
            if vault == Some(name) {
                // aws-vault signed in as this very profile.
                return environment(notes);
            }
            if env_creds {
                notes.push(format!(
                    "signing in with profile {name} (--profile), not with {}",
                    env_credentials(vault)
                ));
            }
            Decision {
                way: Way::Profile {
                    name: name.to_string(),
                    reason: ProfileReason::Flag,
                },
                notes,
            }
        }
        Some((name, ProfileFrom::Config { environment: e })) => {
            if env_creds {
                if vault != Some(name) {
                    notes.push(format!(
                        "signing in with {}, not with profile {name} (environment {e} in secret-rollout.toml); pass --profile {name} to use the profile",
                        env_credentials(vault)
                    ));
                }
                return environment(notes);
            }
            if let Some(other) = aws_profile.filter(|p| *p != name) {
                notes.push(format!(
                    "signing in with profile {name} (environment {e} in secret-rollout.toml), not AWS_PROFILE={other}; pass --profile {other} to use it"
                ));
            }
            Decision {
                way: Way::Profile {
                    name: name.to_string(),
                    reason: ProfileReason::Config {
                        environment: e.clone(),
                    },
                },
                notes,
            }
        }
        None if env_creds => {
            if let Some(p) = aws_profile.filter(|p| vault != Some(*p)) {
                notes.push(format!(
                    "signing in with {}, not with profile {p} (AWS_PROFILE); pass --profile {p} to use the profile",
                    env_credentials(vault)
                ));
            }
            environment(notes)
        }
        None => match aws_profile {
            Some(p) => Decision {
                way: Way::Profile {
                    name: p.to_string(),
                    reason: ProfileReason::AwsProfileVar,
                },
                notes,
            },
            None => Decision {
                way: Way::Default,
                notes,
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The precedence, one row per case: what was typed, what the config says, what the
    /// environment holds; the way chosen and the notes (by a fragment each; `-` for none).
    #[test]
    fn credential_precedence_table() {
        let config = ProfileFrom::Config {
            environment: "production".into(),
        };
        let flag = ProfileFrom::Flag;
        let keys: &[(&str, &str)] = &[
            ("AWS_ACCESS_KEY_ID", "ASIAKEY"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
            ("AWS_SESSION_TOKEN", "t"),
            ("AWS_CREDENTIAL_EXPIRATION", "2099-01-01T00:00:00Z"),
        ];
        let vault: &[(&str, &str)] = &[
            ("AWS_VAULT", "production-operator"),
            ("AWS_ACCESS_KEY_ID", "ASIAKEY"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
        ];
        let vault_server: &[(&str, &str)] = &[
            ("AWS_VAULT", "production-operator"),
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:1/"),
        ];
        let aws_profile: &[(&str, &str)] = &[("AWS_PROFILE", "ambient")];
        let keys_and_aws_profile: &[(&str, &str)] = &[
            ("AWS_ACCESS_KEY_ID", "ASIAKEY"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
            ("AWS_PROFILE", "ambient"),
        ];
        let none: &[(&str, &str)] = &[];
        let env_way = |v: Option<&str>| Way::Environment {
            vault: v.map(str::to_string),
        };
        let profile = |n: &str, reason: ProfileReason| Way::Profile {
            name: n.into(),
            reason,
        };
        let from_config = ProfileReason::Config {
            environment: "production".into(),
        };
        #[allow(clippy::type_complexity)]
        let table: Vec<(Option<(&str, &ProfileFrom)>, &[(&str, &str)], Way, &str)> = vec![
            // Nothing: the default profile (if it needs MFA) or the SDK's chain.
            (None, none, Way::Default, "-"),
            // AWS_PROFILE alone.
            (None, aws_profile, profile("ambient", ProfileReason::AwsProfileVar), "-"),
            // Keys in the environment (CI, a credential helper).
            (None, keys, env_way(None), "-"),
            // ... win over AWS_PROFILE, like the aws CLI, with a note.
            (None, keys_and_aws_profile, env_way(None), "not with profile ambient (AWS_PROFILE)"),
            // aws-vault, keys or its credential server.
            (None, vault, env_way(Some("production-operator")), "-"),
            (None, vault_server, env_way(Some("production-operator")), "-"),
            // The config's profile alone.
            (Some(("production-operator", &config)), none, profile("production-operator", from_config.clone()), "-"),
            // ... over AWS_PROFILE, saying so.
            (Some(("production-operator", &config)), aws_profile, profile("production-operator", from_config.clone()), "not AWS_PROFILE=ambient"),
            // Keys in the environment win over the config's profile, with a note naming it.
            (Some(("production-operator", &config)), keys, env_way(None), "not with profile production-operator (environment production in secret-rollout.toml)"),
            // aws-vault of the same profile: nothing to say.
            (Some(("production-operator", &config)), vault, env_way(Some("production-operator")), "-"),
            // aws-vault of another profile wins over the config too, named.
            (Some(("other", &config)), vault, env_way(Some("production-operator")), "aws-vault put in the environment (profile production-operator), not with profile other (environment production"),
            // An explicit --profile wins over everything, and says what it overrides.
            (Some(("explicit", &flag)), none, profile("explicit", ProfileReason::Flag), "-"),
            (Some(("explicit", &flag)), aws_profile, profile("explicit", ProfileReason::Flag), "-"),
            (Some(("explicit", &flag)), keys, profile("explicit", ProfileReason::Flag), "profile explicit (--profile), not with the credentials in the environment"),
            (Some(("explicit", &flag)), vault, profile("explicit", ProfileReason::Flag), "not with the credentials aws-vault put in the environment (profile production-operator)"),
            // --profile naming aws-vault's own profile: aws-vault's credentials, silently.
            (Some(("production-operator", &flag)), vault, env_way(Some("production-operator")), "-"),
        ];
        for (i, (profile, vars, way, note)) in table.into_iter().enumerate() {
            let env = EnvVars::from_pairs(vars.iter().copied());
            let d = decide(profile, &env);
            assert_eq!(d.way, way, "row {i}: {profile:?} {env:?}");
            if note == "-" {
                assert!(d.notes.is_empty(), "row {i}: {:?}", d.notes);
            } else {
                assert_eq!(d.notes.len(), 1, "row {i}: {:?}", d.notes);
                assert!(d.notes[0].contains(note), "row {i}: {}", d.notes[0]);
            }
            // No row ever claims to ignore a --profile that was not typed.
            let typed = matches!(profile, Some((_, ProfileFrom::Flag)));
            for n in &d.notes {
                assert_eq!(n.contains("(--profile)"), typed, "row {i}: {n}");
                assert!(!n.contains("ASIAKEY") && !n.contains("=s"), "row {i}: {n}");
            }
        }
    }
}
