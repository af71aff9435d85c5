//! Reading the shared AWS config files (`~/.aws/config`, `~/.aws/credentials`) and
//! following `source_profile` chains.
//!
//! The SDK reads these files too; we read them ourselves only to find out whether a
//! profile needs an MFA code (the SDK ignores `mfa_serial`, aws-sdk-rust issue 527), to
//! take the profile's region, and to fail early with errors that name the fix. The merge
//! rules follow the SDK's: `[profile NAME]` (and `[default]`) sections of the config file,
//! `[NAME]` sections of the credentials file, the credentials file winning per key.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use aws_credential_types::Credentials;
use ini::{Ini, ParseOption};

use super::EnvVars;
use crate::error::{Error, Result};

/// Where the two shared files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfilePaths {
    /// `AWS_CONFIG_FILE`, else `~/.aws/config`.
    pub config: PathBuf,
    /// `AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`.
    pub credentials: PathBuf,
}

impl ProfilePaths {
    /// The two files, for the SDK's profile provider.
    pub fn files(&self) -> crate::aws::config::ProfileFilePaths<'_> {
        crate::aws::config::ProfileFilePaths {
            config: &self.config,
            credentials: &self.credentials,
        }
    }

    /// The paths the SDK and the aws CLI would use in this environment.
    pub fn from_env(env: &EnvVars) -> Self {
        let home = env
            .get("HOME")
            .map(PathBuf::from)
            .or_else(dirs::home_dir)
            .unwrap_or_else(|| PathBuf::from("."));
        let pick = |var: &str, default: &str| {
            env.get(var)
                .map(|p| expand_home(p, &home))
                .unwrap_or_else(|| home.join(".aws").join(default))
        };
        Self {
            config: pick("AWS_CONFIG_FILE", "config"),
            credentials: pick("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
        }
    }
}

fn expand_home(path: &str, home: &Path) -> PathBuf {
    match path.strip_prefix("~/") {
        Some(rest) => home.join(rest),
        None => PathBuf::from(path),
    }
}

/// One merged profile: its properties and where they came from.
#[derive(Clone, PartialEq, Eq)]
pub struct Profile {
    /// The profile's name (`default`, `production`, ...).
    pub name: String,
    props: BTreeMap<String, String>,
}

impl fmt::Debug for Profile {
    // The credentials file holds secret keys: Debug lists only the property names.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Profile")
            .field("name", &self.name)
            .field("keys", &self.props.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Profile {
    /// A property's value, trimmed; `None` when absent or empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.props
            .get(key)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// The profile's own `region`.
    pub fn region(&self) -> Option<&str> {
        self.get("region")
    }

    fn has_any(&self, keys: &[&str]) -> bool {
        keys.iter().any(|k| self.get(k).is_some())
    }
}

/// All profiles from both files.
#[derive(Debug, Clone)]
pub struct Profiles {
    paths: ProfilePaths,
    map: BTreeMap<String, Profile>,
}

/// Where a chain's first credentials come from.
#[derive(Debug, Clone)]
pub enum Base {
    /// Long-term (or session) keys written in a profile.
    StaticKeys {
        /// The profile holding them.
        profile: String,
        /// The keys. `Credentials`' Debug output hides the secret.
        credentials: Credentials,
    },
    /// Something the SDK resolves for us: `credential_process`, SSO, web identity.
    Sdk {
        /// The profile to hand to the SDK's profile provider.
        profile: String,
    },
}

/// One `AssumeRole` step of a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleHop {
    /// The profile that names the role.
    pub profile: String,
    /// `role_arn`.
    pub role_arn: String,
    /// `mfa_serial`, when the role wants an MFA code.
    pub mfa_serial: Option<String>,
    /// `duration_seconds`.
    pub duration_seconds: Option<i32>,
    /// `external_id`.
    pub external_id: Option<String>,
    /// `role_session_name`.
    pub role_session_name: Option<String>,
}

/// A resolved profile: its base credentials and the roles to assume from them, in order
/// (the last one is the requested profile's own role).
#[derive(Debug, Clone)]
pub struct Chain {
    /// The requested profile.
    pub profile: String,
    /// Where the first credentials come from.
    pub base: Base,
    /// Roles to assume, from the base outwards.
    pub hops: Vec<RoleHop>,
}

impl Chain {
    /// Whether some role in the chain wants an MFA code (which the SDK cannot do).
    pub fn needs_mfa(&self) -> bool {
        self.hops.iter().any(|h| h.mfa_serial.is_some())
    }

    /// The first `mfa_serial` in the chain: the device the code is asked for.
    pub fn mfa_serial(&self) -> Option<&str> {
        self.hops.iter().find_map(|h| h.mfa_serial.as_deref())
    }

    /// The role the chain ends in, if any.
    pub fn role_arn(&self) -> Option<&str> {
        self.hops.last().map(|h| h.role_arn.as_str())
    }
}

/// Properties that make a profile a credential source on its own, besides static keys
/// (resolved by the SDK).
const SDK_SOURCES: &[&str] = &[
    "credential_process",
    "sso_session",
    "sso_start_url",
    "web_identity_token_file",
    "login_session",
];

impl Profiles {
    /// Reads both files. A missing file is empty; an unreadable or malformed one is bad
    /// input naming the file.
    pub fn load(paths: &ProfilePaths) -> Result<Self> {
        let mut map: BTreeMap<String, Profile> = BTreeMap::new();
        if let Some(ini) = read_ini(&paths.config)? {
            for (section, props) in ini.iter() {
                let Some(section) = section else { continue };
                let section = section.trim();
                let name = if section == "default" {
                    "default"
                } else if let Some(rest) = section.strip_prefix("profile ") {
                    rest.trim()
                } else {
                    // `[sso-session x]`, `[services x]`, and bare `[x]` sections are not
                    // profiles in the config file (the SDK ignores bare ones too).
                    continue;
                };
                let entry = map.entry(name.to_string()).or_insert_with(|| Profile {
                    name: name.to_string(),
                    props: BTreeMap::new(),
                });
                for (k, v) in props.iter() {
                    entry.props.insert(k.trim().to_string(), v.to_string());
                }
            }
        }
        if let Some(ini) = read_ini(&paths.credentials)? {
            for (section, props) in ini.iter() {
                let Some(name) = section else { continue };
                let name = name.trim();
                let entry = map.entry(name.to_string()).or_insert_with(|| Profile {
                    name: name.to_string(),
                    props: BTreeMap::new(),
                });
                for (k, v) in props.iter() {
                    entry.props.insert(k.trim().to_string(), v.to_string());
                }
            }
        }
        Ok(Self {
            paths: paths.clone(),
            map,
        })
    }

    /// The files these profiles were read from.
    pub fn paths(&self) -> &ProfilePaths {
        &self.paths
    }

    /// A profile by name.
    pub fn get(&self, name: &str) -> Option<&Profile> {
        self.map.get(name)
    }

    /// Every profile name, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.map.keys().map(String::as_str).collect()
    }

    fn unknown(&self, name: &str) -> Error {
        let known = self.names();
        let known = if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        };
        Error::credentials(format!(
            "unknown AWS profile `{name}` (not in {} or {}; known profiles: {known})",
            self.paths.config.display(),
            self.paths.credentials.display()
        ))
        .hint("check the spelling of --profile / AWS_PROFILE, or add the profile with `aws configure --profile NAME`")
    }

    /// Follows `source_profile` from `name` down to the credentials it starts from.
    pub fn resolve(&self, name: &str) -> Result<Chain> {
        let mut visited: Vec<String> = Vec::new();
        let mut hops: Vec<RoleHop> = Vec::new();
        let mut current = name.to_string();
        let base = loop {
            let Some(profile) = self.get(&current) else {
                if visited.is_empty() {
                    return Err(self.unknown(&current));
                }
                let parent = visited.last().map(String::as_str).unwrap_or(name);
                return Err(Error::credentials(format!(
                    "profile `{parent}` has source_profile = {current}, but there is no profile `{current}` in {} or {}",
                    self.paths.config.display(),
                    self.paths.credentials.display()
                ))
                .hint(format!(
                    "add the source profile's keys with `aws configure --profile {current}`, or fix source_profile"
                )));
            };
            visited.push(current.clone());

            if let Some(role_arn) = profile.get("role_arn") {
                let hop = RoleHop {
                    profile: current.clone(),
                    role_arn: role_arn.to_string(),
                    mfa_serial: profile.get("mfa_serial").map(str::to_string),
                    duration_seconds: profile
                        .get("duration_seconds")
                        .map(|d| {
                            d.parse::<i32>().map_err(|_| {
                                Error::bad_input(format!(
                                    "profile `{current}` has duration_seconds = {d}, which is not a number of seconds"
                                ))
                            })
                        })
                        .transpose()?,
                    external_id: profile.get("external_id").map(str::to_string),
                    role_session_name: profile.get("role_session_name").map(str::to_string),
                };
                if profile.get("web_identity_token_file").is_some() {
                    // The SDK assumes a web-identity role itself; it never wants MFA.
                    break Base::Sdk { profile: current };
                }
                hops.push(hop);
                if let Some(source) = profile.get("source_profile") {
                    if source == current {
                        // A profile may name itself as source: its own keys are the base
                        // (the SDK supports this too).
                        break self.static_keys(profile, name)?;
                    }
                    if let Some(pos) = visited.iter().position(|v| v == source) {
                        let mut cycle: Vec<&str> =
                            visited[pos..].iter().map(String::as_str).collect();
                        cycle.push(source);
                        return Err(Error::credentials(format!(
                            "the source_profile settings loop: {}",
                            cycle.join(" -> ")
                        ))
                        .hint(format!(
                            "make one profile in the loop hold keys instead of a source_profile (in {})",
                            self.paths.config.display()
                        )));
                    }
                    current = source.to_string();
                    continue;
                }
                if profile.get("credential_source").is_some() {
                    break Base::Sdk { profile: current };
                }
                return Err(Error::credentials(format!(
                    "profile `{current}` has role_arn but neither source_profile nor credential_source"
                ))
                .hint(format!(
                    "add source_profile = PROFILE_WITH_KEYS to [profile {current}] in {}",
                    self.paths.config.display()
                )));
            }

            if profile.get("aws_access_key_id").is_some() {
                break self.static_keys(profile, name)?;
            }
            if profile.has_any(SDK_SOURCES) {
                break Base::Sdk { profile: current };
            }
            let what = if current == name {
                format!("profile `{name}` has no credentials")
            } else {
                format!("the source profile `{current}` (of profile `{name}`) has no credentials")
            };
            return Err(Error::credentials(format!(
                "{what}: no aws_access_key_id in {} and no role_arn, credential_process or sso settings in {}",
                self.paths.credentials.display(),
                self.paths.config.display()
            ))
            .hint(format!(
                "add its access keys with `aws configure --profile {current}`"
            )));
        };
        hops.reverse();
        Ok(Chain {
            profile: name.to_string(),
            base,
            hops,
        })
    }

    fn static_keys(&self, profile: &Profile, requested: &str) -> Result<Base> {
        let access = profile.get("aws_access_key_id");
        let secret = profile.get("aws_secret_access_key");
        match (access, secret) {
            (Some(access), Some(secret)) => Ok(Base::StaticKeys {
                profile: profile.name.clone(),
                credentials: Credentials::new(
                    access,
                    secret,
                    profile.get("aws_session_token").map(str::to_string),
                    None,
                    "profile",
                ),
            }),
            _ => {
                let of = if profile.name == requested {
                    String::new()
                } else {
                    format!(" (source of profile `{requested}`)")
                };
                Err(Error::credentials(format!(
                    "profile `{}`{of} lacks aws_access_key_id or aws_secret_access_key in {}",
                    profile.name,
                    self.paths.credentials.display()
                ))
                .hint(format!(
                    "set both with `aws configure --profile {}`",
                    profile.name
                )))
            }
        }
    }
}

fn read_ini(path: &Path) -> Result<Option<Ini>> {
    if !path.exists() {
        return Ok(None);
    }
    let opt = ParseOption {
        // AWS files are plain: no quoting or escapes; nested `s3 =` blocks are indented.
        enabled_quote: false,
        enabled_escape: false,
        enabled_indented_mutiline_value: true,
        enabled_preserve_key_leading_whitespace: false,
    };
    Ini::load_from_file_opt(path, opt).map(Some).map_err(|e| {
        // rust-ini's parse errors carry a line and column, never a value.
        Error::bad_input(format!(
            "cannot read AWS config file {}: {e}",
            path.display()
        ))
        .hint("fix the file's syntax (sections like [profile NAME], lines like key = value)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profiles(config: &str, credentials: &str) -> (tempfile::TempDir, Profiles) {
        let dir = tempfile::tempdir().unwrap();
        let paths = ProfilePaths {
            config: dir.path().join("config"),
            credentials: dir.path().join("credentials"),
        };
        std::fs::write(&paths.config, config).unwrap();
        std::fs::write(&paths.credentials, credentials).unwrap();
        let p = Profiles::load(&paths).unwrap();
        (dir, p)
    }

    const CONFIG: &str = "\
[default]
region = us-east-1

[profile identity]
region = eu-west-1

[profile production]
region = eu-west-1
role_arn = arn:aws:iam::123456789012:role/deploy
source_profile = identity
mfa_serial = arn:aws:iam::111111111111:mfa/alice
duration_seconds = 900

[profile plain-role]
role_arn = arn:aws:iam::123456789012:role/read
source_profile = identity

[profile sso]
sso_session = corp
sso_account_id = 123456789012
sso_role_name = Admin

[sso-session corp]
sso_start_url = https://example.awsapps.com/start

[profile a]
role_arn = arn:aws:iam::1:role/a
source_profile = b
[profile b]
role_arn = arn:aws:iam::1:role/b
source_profile = a

[profile orphan]
role_arn = arn:aws:iam::1:role/o
source_profile = nobody

[profile empty-source]
role_arn = arn:aws:iam::1:role/e
source_profile = empty
mfa_serial = arn:aws:iam::1:mfa/x
[profile empty]
region = eu-west-1
";
    const CREDS: &str = "\
[identity]
aws_access_key_id = AKIAIDENTITY
aws_secret_access_key = identity-secret
";

    #[test]
    fn mfa_profile_resolves_to_source_keys_and_one_hop() {
        let (_d, p) = profiles(CONFIG, CREDS);
        let chain = p.resolve("production").unwrap();
        assert!(chain.needs_mfa());
        assert_eq!(
            chain.mfa_serial(),
            Some("arn:aws:iam::111111111111:mfa/alice")
        );
        assert_eq!(chain.hops.len(), 1);
        assert_eq!(chain.hops[0].duration_seconds, Some(900));
        match &chain.base {
            Base::StaticKeys {
                profile,
                credentials,
            } => {
                assert_eq!(profile, "identity");
                assert_eq!(credentials.access_key_id(), "AKIAIDENTITY");
            }
            other => panic!("unexpected base {other:?}"),
        }
        // Config and credentials files merge per profile.
        assert_eq!(p.get("identity").unwrap().region(), Some("eu-west-1"));
    }

    #[test]
    fn plain_role_and_sso_do_not_need_mfa() {
        let (_d, p) = profiles(CONFIG, CREDS);
        assert!(!p.resolve("plain-role").unwrap().needs_mfa());
        let sso = p.resolve("sso").unwrap();
        assert!(matches!(sso.base, Base::Sdk { ref profile } if profile == "sso"));
        assert!(sso.hops.is_empty());
        // `[sso-session corp]` is not a profile.
        assert!(p.get("corp").is_none() && p.get("sso-session corp").is_none());
    }

    #[test]
    fn loop_is_named() {
        let (_d, p) = profiles(CONFIG, CREDS);
        let err = p.resolve("a").unwrap_err();
        assert_eq!(err.exit_code(), crate::error::exit::CREDENTIALS);
        assert!(err.message.contains("a -> b -> a"), "{}", err.message);
    }

    #[test]
    fn unknown_profile_lists_known_ones() {
        let (_d, p) = profiles(CONFIG, CREDS);
        let err = p.resolve("prod").unwrap_err();
        assert!(err.message.contains("unknown AWS profile `prod`"));
        assert!(
            err.message
                .contains("identity, orphan, plain-role, production"),
            "{}",
            err.message
        );
    }

    #[test]
    fn missing_source_profile_and_missing_keys_are_named() {
        let (_d, p) = profiles(CONFIG, CREDS);
        let err = p.resolve("orphan").unwrap_err();
        assert!(
            err.message.contains("source_profile = nobody"),
            "{}",
            err.message
        );
        let err = p.resolve("empty-source").unwrap_err();
        assert!(
            err.message
                .contains("source profile `empty` (of profile `empty-source`) has no credentials"),
            "{}",
            err.message
        );
        assert!(err.message.contains("credentials"));
    }

    #[test]
    fn source_without_secret_names_the_file() {
        let (dir, p) = profiles(CONFIG, "[identity]\naws_access_key_id = AKIAX\n");
        let err = p.resolve("production").unwrap_err();
        assert!(err
            .message
            .contains("lacks aws_access_key_id or aws_secret_access_key"));
        assert!(err
            .message
            .contains(&dir.path().join("credentials").display().to_string()));
        assert!(!format!("{:?}", p.get("identity").unwrap()).contains("AKIAX"));
    }

    #[test]
    fn paths_honour_env_overrides() {
        let env = EnvVars::from_pairs([("HOME", "/home/u"), ("AWS_CONFIG_FILE", "/tmp/c")]);
        let paths = ProfilePaths::from_env(&env);
        assert_eq!(paths.config, PathBuf::from("/tmp/c"));
        assert_eq!(paths.credentials, PathBuf::from("/home/u/.aws/credentials"));
    }

    #[test]
    fn missing_files_are_empty() {
        let dir = tempfile::tempdir().unwrap();
        let p = Profiles::load(&ProfilePaths {
            config: dir.path().join("nope"),
            credentials: dir.path().join("nope2"),
        })
        .unwrap();
        assert!(p.names().is_empty());
        assert!(p
            .resolve("x")
            .unwrap_err()
            .message
            .contains("known profiles: none"));
    }
}
