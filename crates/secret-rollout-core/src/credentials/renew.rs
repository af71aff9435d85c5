//! Credentials that last, as aws-vault does it: one MFA code signs the IAM user in with
//! STS `GetSessionToken` (an *MFA session*, 12 hours by default, up to 36), and the role
//! is assumed from that session whenever its own credentials near their end, without a
//! new code. The SDK clients get their credentials from [`Renewing`], so a rollout that
//! outlives the role's maximum session goes on with the same clients.
//!
//! This needs an IAM user's long-term keys as the chain's source, and the role that
//! wants MFA as its first role. Otherwise (an SSO or `credential_process` source, a role
//! as source, temporary keys), or when the role refuses the MFA session (a trust policy
//! with `aws:MultiFactorAuthAge` shorter than the session's age), the role is renewed
//! with a new code, asked before the old credentials end, and the note says why.
//!
//! Both the MFA session and the role's credentials go to the session cache
//! ([`super::cache`]), so the next command reuses them too.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{future, ProvideCredentials};
use aws_credential_types::Credentials;
use time::OffsetDateTime;

use super::cache::{self, CachedSession, SessionCache, Store, REUSE_MARGIN};
use super::profile::{Base, Chain, ProfilePaths};
use super::{mfa, signin, AwsOptions, EnvVars};
use crate::aws::errors::Fault;
use crate::error::{Error, Result};

/// The variable that sets how long an MFA session lasts (`12h` when unset).
pub const DURATION_VAR: &str = "SECRET_ROLLOUT_MFA_SESSION_DURATION";
/// How long an MFA session lasts unless [`DURATION_VAR`] says otherwise (AWS's default).
pub const DEFAULT_DURATION: Duration = Duration::from_secs(12 * 3600);
/// The shortest MFA session AWS gives.
pub const MIN_DURATION: Duration = Duration::from_secs(15 * 60);
/// The longest MFA session AWS gives an IAM user.
pub const MAX_DURATION: Duration = Duration::from_secs(36 * 3600);

/// The MFA session's length from the environment; `None` when it says `off` (the code
/// goes to AssumeRole, as for a source that cannot hold an MFA session); a malformed or
/// out-of-range value is bad input naming the range.
pub fn session_duration(env: &EnvVars) -> Result<Option<Duration>> {
    let Some(raw) = env.get(DURATION_VAR) else {
        return Ok(Some(DEFAULT_DURATION));
    };
    if raw.trim() == "off" {
        return Ok(None);
    }
    let bad = || {
        Error::bad_input(format!(
            "{DURATION_VAR}={raw} is not a duration from 15m to 36h"
        ))
        .hint(format!(
            "give a length such as 12h or 8h30m, `off` for none, or unset {DURATION_VAR} for 12 hours"
        ))
    };
    let d = humantime::parse_duration(raw.trim()).map_err(|_| bad())?;
    if !(MIN_DURATION..=MAX_DURATION).contains(&d) {
        return Err(bad());
    }
    Ok(Some(d))
}

/// Why `chain` cannot keep an MFA session that renews its role; `None` when it can.
pub fn why_no_mfa_session(chain: &Chain) -> Option<String> {
    let first = chain.hops.first()?;
    match &chain.base {
        Base::Sdk { profile } => Some(format!(
            "its source profile `{profile}` signs in through the SDK (SSO, credential_process or a role), and only an IAM user's long-term keys can hold an MFA session"
        )),
        Base::StaticKeys {
            profile,
            credentials,
        } if credentials.session_token().is_some() => Some(format!(
            "the keys of its source profile `{profile}` are temporary (aws_session_token), and only an IAM user's long-term keys can hold an MFA session"
        )),
        Base::StaticKeys { .. } if first.mfa_serial.is_none() => Some(format!(
            "the role that wants MFA is assumed through role {}, and a role session carries no MFA onwards",
            first.role_arn
        )),
        Base::StaticKeys { .. } => None,
    }
}

/// When credentials obtained at `now` and expiring at `expires_at` should be renewed:
/// [`REUSE_MARGIN`] before the end, or half-way for credentials shorter than twice that.
pub fn renew_at(now: OffsetDateTime, expires_at: OffsetDateTime) -> OffsetDateTime {
    let life: time::Duration = expires_at - now;
    let most = time::Duration::try_from(REUSE_MARGIN).unwrap_or_default();
    let half: time::Duration = life / 2_i32;
    let margin = half.min(most);
    expires_at - margin.max(time::Duration::ZERO)
}

/// Credentials held, with when to renew them.
#[derive(Clone)]
struct Held {
    creds: Credentials,
    expires_at: OffsetDateTime,
    renew_at: OffsetDateTime,
    /// When they were issued, if known (for an MFA session: when the code was typed).
    issued: Option<OffsetDateTime>,
}

impl Held {
    /// `None` for credentials without expiry (never the case for STS answers).
    fn new(creds: Credentials) -> Option<Self> {
        let now = OffsetDateTime::now_utc();
        let expires_at = OffsetDateTime::from(creds.expiry()?);
        Some(Self {
            renew_at: renew_at(now, expires_at),
            expires_at,
            creds,
            issued: Some(now),
        })
    }

    /// Held from the cache: issued when the entry says, if it does.
    fn cached(s: &CachedSession) -> Option<Self> {
        let mut held = Self::new(s.credentials())?;
        held.issued = s
            .issued
            .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok());
        Some(held)
    }

    /// The credentials for the SDK, with the time to renew as their expiry, so the SDK's
    /// identity cache asks [`Renewing`] again in time.
    fn for_sdk(&self) -> Credentials {
        Credentials::new(
            self.creds.access_key_id(),
            self.creds.secret_access_key(),
            self.creds.session_token().map(str::to_string),
            Some(SystemTime::from(self.renew_at)),
            "secret-rollout-mfa",
        )
    }
}

#[derive(Default)]
struct State {
    role: Option<Held>,
    session: Option<Held>,
}

/// The MFA sign-in of one profile chain, kept for the life of the command.
pub(crate) struct MfaSignIn {
    chain: Chain,
    opts: AwsOptions,
    env: EnvVars,
    region: String,
    paths: ProfilePaths,
    cache: SessionCache,
    /// Why no MFA session renews the role (`None`: one does).
    no_session: Option<String>,
    duration: Duration,
    state: tokio::sync::Mutex<State>,
}

/// What the first sign-in gave.
pub(crate) struct SignedIn {
    pub provider: Renewing,
    /// No code was asked.
    pub cached: bool,
    /// Where the role's credentials are cached.
    pub store: Option<Store>,
    /// Until when the command can go on without a new code: the MFA session's end when
    /// one renews the role, else the role's.
    pub expires_at: Option<OffsetDateTime>,
    /// The profile whose MFA session renews the role, if one does.
    pub renewed_from: Option<String>,
    /// No MFA session renews the role, and a new code will be asked at the terminal.
    pub renewed_by_prompt: bool,
}

/// Signs in `chain` (which needs MFA): the cached role credentials or MFA session when
/// still good, else a code. The returned provider renews the role as it nears its end.
pub(crate) async fn sign_in(
    chain: Chain,
    opts: &AwsOptions,
    env: &EnvVars,
    region: &str,
    paths: &ProfilePaths,
    cache: SessionCache,
) -> Result<SignedIn> {
    let mut no_session = why_no_mfa_session(&chain);
    let mut duration = DEFAULT_DURATION;
    if no_session.is_none() {
        match session_duration(env)? {
            Some(d) => duration = d,
            None => no_session = Some(format!("{DURATION_VAR}=off keeps no MFA session")),
        }
    }
    let me = MfaSignIn {
        opts: opts.clone(),
        env: env.clone(),
        region: region.to_string(),
        paths: paths.clone(),
        cache,
        no_session,
        duration,
        state: tokio::sync::Mutex::new(State::default()),
        chain,
    };
    let now = OffsetDateTime::now_utc();
    let serial = me.serial().to_string();
    let mut store = None;
    let mut cached = true;
    {
        let mut st = me.state.lock().await;
        if let Some((s, where_)) = me.cache.get(&me.chain.profile) {
            if s.kind == cache::SessionKind::AssumedRole
                && s.role_arn == me.role_arn()
                && s.mfa_serial == serial
                && s.is_reusable(now)
            {
                tracing::debug!(profile = %me.chain.profile, store = %where_, "using the cached role session");
                st.role = Held::cached(&s);
                store = Some(where_);
            }
        }
        if let Some(source) = me.source_profile() {
            if let Some((s, where_)) = me.cache.get(&cache::mfa_session_key(source)) {
                if s.kind == cache::SessionKind::MfaSession
                    && s.mfa_serial == serial
                    && s.is_reusable(now)
                {
                    tracing::debug!(%source, store = %where_, "using the cached MFA session");
                    st.session = Held::cached(&s);
                }
            }
        }
        if st.role.is_none() {
            let (held, asked, role_store) = me.renew(&mut st, false).await?;
            cached = !asked;
            store = role_store;
            st.role = Some(held);
        }
    }
    let st = me.state.lock().await;
    let expires_at = match (&me.no_session, &st.session) {
        (None, Some(s)) => Some(s.expires_at),
        _ => st.role.as_ref().map(|r| r.expires_at),
    };
    let renewed_from = match (&me.no_session, &st.session) {
        (None, Some(_)) => me.source_profile().map(str::to_string),
        _ => None,
    };
    drop(st);
    let renewed_by_prompt =
        renewed_from.is_none() && matches!(me.opts.mfa_code, super::MfaCodeSource::Prompt);
    Ok(SignedIn {
        provider: Renewing(Arc::new(me)),
        cached,
        store,
        expires_at,
        renewed_from,
        renewed_by_prompt,
    })
}

impl MfaSignIn {
    fn serial(&self) -> &str {
        self.chain.mfa_serial().unwrap_or_default()
    }

    fn role_arn(&self) -> &str {
        self.chain.role_arn().unwrap_or_default()
    }

    /// The profile holding the IAM user's keys.
    fn source_profile(&self) -> Option<&str> {
        match &self.chain.base {
            Base::StaticKeys { profile, .. } => Some(profile),
            Base::Sdk { profile } => Some(profile),
        }
    }

    /// New role credentials: from the MFA session when one is good, else with a new code
    /// (an MFA session first where one can be held). `in_flight`: the command is running
    /// and had credentials; a code asked then comes with a note saying why. Returns the
    /// credentials, whether a code was asked, and where they were cached.
    async fn renew(&self, st: &mut State, in_flight: bool) -> Result<(Held, bool, Option<Store>)> {
        let now = OffsetDateTime::now_utc();
        let role = self.role_arn().to_string();
        let (creds, asked) = match &self.no_session {
            None => {
                let mut why = None;
                let good = st
                    .session
                    .as_ref()
                    .filter(|s| {
                        s.expires_at - now
                            > time::Duration::try_from(REUSE_MARGIN).unwrap_or_default()
                    })
                    .cloned();
                let mut from_session = None;
                match good {
                    Some(s) => match self.assume_from_session(&s.creds).await? {
                        Ok(creds) => from_session = Some(creds),
                        Err(()) => {
                            let age = s
                                .issued
                                .and_then(|t| Duration::try_from(now - t).ok())
                                .map(|d| {
                                    format!(
                                        " (its code was typed {} ago)",
                                        super::format_duration(d)
                                    )
                                })
                                .unwrap_or_default();
                            why = Some(format!(
                                "role {role} refused the MFA session of profile `{}`{age}: the role's trust policy may demand a more recent MFA (aws:MultiFactorAuthAge)",
                                self.source_profile().unwrap_or_default(),
                            ));
                            st.session = None;
                        }
                    },
                    None if in_flight => {
                        why = Some(match &st.session {
                            Some(s) => format!(
                                "the MFA session of profile `{}` ends at {}",
                                self.source_profile().unwrap_or_default(),
                                clock(s.expires_at)
                            ),
                            None => format!(
                                "the credentials of role {role} end at {} and no MFA session is cached to renew them",
                                st.role.as_ref().map(|r| clock(r.expires_at)).unwrap_or_default()
                            ),
                        });
                    }
                    None => {}
                }
                match from_session {
                    Some(creds) => (creds, false),
                    None => {
                        let mut why = why;
                        let mut tries = 1;
                        let session = loop {
                            let code = self.ask(why.take()).await?;
                            match self.new_session(&code).await {
                                Ok(session) => break session,
                                Err(e) if in_flight && tries < CODE_TRIES && code_refused(&e) => {
                                    tries += 1;
                                    eprintln!("note: {}; type the next code", e.message);
                                }
                                Err(e) => return Err(e),
                            }
                        };
                        st.session = Held::new(session.clone());
                        match self.assume_from_session(&session).await? {
                            Ok(creds) => (creds, true),
                            Err(()) => {
                                return Err(Error::credentials(format!(
                                    "role {role} refused a new MFA session of profile `{}`",
                                    self.source_profile().unwrap_or_default()
                                ))
                                .hint("check that the role's trust policy allows your identity with MFA (aws:MultiFactorAuthPresent), or set SECRET_ROLLOUT_MFA_SESSION_DURATION=off to give the code to AssumeRole itself"));
                            }
                        }
                    }
                }
            }
            Some(reason) => {
                let why = in_flight.then(|| {
                    format!(
                        "the credentials of role {role} end at {}: {reason}",
                        st.role
                            .as_ref()
                            .map(|r| clock(r.expires_at))
                            .unwrap_or_default()
                    )
                });
                let mut why = why;
                let mut tries = 1;
                let creds = loop {
                    let code = self.ask(why.take()).await?;
                    match super::assume_chain(
                        &self.chain,
                        Some(code),
                        &self.opts,
                        &self.env,
                        &self.region,
                        &self.paths,
                    )
                    .await
                    {
                        Ok(creds) => break creds,
                        Err(e) if in_flight && tries < CODE_TRIES && code_refused(&e) => {
                            tries += 1;
                            eprintln!("note: {}; type the next code", e.message);
                        }
                        Err(e) => return Err(e),
                    }
                };
                (creds, true)
            }
        };
        let held = Held::new(creds.clone()).ok_or_else(|| {
            Error::credentials(format!(
                "AssumeRole of {role} returned credentials without expiry"
            ))
        })?;
        let store = self.put(CachedSession::from_credentials(
            &self.chain.profile,
            &role,
            self.serial(),
            &creds,
        ));
        Ok((held, asked, store))
    }

    /// Asks the code (off the async threads: the prompt blocks), after a note saying why
    /// when it is asked again.
    async fn ask(&self, why: Option<String>) -> Result<String> {
        if let Some(why) = why {
            eprintln!("note: {why}; a new MFA code is needed");
        }
        let source = self.opts.mfa_code.clone();
        let serial = self.serial().to_string();
        tokio::task::spawn_blocking(move || mfa::read_code(&source, &serial))
            .await
            .map_err(|e| Error::credentials(format!("the MFA prompt failed: {e}")))?
    }

    /// GetSessionToken with the code, cached.
    async fn new_session(&self, code: &str) -> Result<Credentials> {
        let Base::StaticKeys {
            profile,
            credentials,
        } = &self.chain.base
        else {
            return Err(Error::credentials(
                "no long-term keys to hold an MFA session",
            ));
        };
        let creds = signin::get_session_token(
            &self.opts,
            &self.region,
            credentials.clone(),
            i32::try_from(self.duration.as_secs()).unwrap_or(43_200),
            self.serial(),
            code,
            profile,
        )
        .await?;
        self.put(CachedSession::mfa_session(profile, self.serial(), &creds));
        Ok(creds)
    }

    /// Walks the chain's roles from the MFA session. `Ok(Err(()))`: the first role refused
    /// the session (AccessDenied), which a new code may mend.
    async fn assume_from_session(
        &self,
        session: &Credentials,
    ) -> Result<std::result::Result<Credentials, ()>> {
        let source = self.source_profile().unwrap_or_default().to_string();
        let mut creds = session.clone();
        let mut from = source;
        for (i, hop) in self.chain.hops.iter().enumerate() {
            let name = super::session_name(hop, &self.env);
            let req = crate::aws::sts::AssumeRole {
                role_arn: &hop.role_arn,
                session_name: &name,
                duration_seconds: hop.duration_seconds,
                external_id: hop.external_id.as_deref(),
                mfa: None,
            };
            creds = match crate::aws::sts::assume_role(
                &self.opts.transport(),
                &self.region,
                creds,
                &req,
            )
            .await
            {
                Ok(c) => c,
                Err(e) if i == 0 && e.fault == Fault::AccessDenied => return Ok(Err(())),
                Err(e) => return Err(signin::assume_role_error(e, hop, &from)),
            };
            from = hop.profile.clone();
        }
        Ok(Ok(creds))
    }

    /// Caches `session`; a cache that refuses only means the next command asks again.
    fn put(&self, session: Option<CachedSession>) -> Option<Store> {
        match self.cache.put(&session?) {
            Ok(store) => Some(store),
            Err(e) => {
                tracing::warn!("{}", e.render());
                None
            }
        }
    }
}

/// How often a code is asked in flight before the run gives up: a typo must not cost a
/// long rollout. (The first sign-in asks once: the command is simply run again.)
const CODE_TRIES: u32 = 3;

/// Whether `e` is a code refused or mistyped (worth asking the next one).
fn code_refused(e: &Error) -> bool {
    e.message.contains("the MFA code was not accepted") || e.message.contains("must be 6 digits")
}

/// `14:05:09 UTC`.
fn clock(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!("{:02}:{:02}:{:02} UTC", t.hour(), t.minute(), t.second())
}

/// The SDK's credentials provider of an MFA sign-in: the role's credentials, renewed
/// (from the MFA session, or with a new code) when they near their end. Calls that need
/// credentials meanwhile wait for the one renewal.
#[derive(Clone)]
pub(crate) struct Renewing(Arc<MfaSignIn>);

impl std::fmt::Debug for Renewing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renewing")
            .field("profile", &self.0.chain.profile)
            .finish()
    }
}

impl ProvideCredentials for Renewing {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            let mut st = self.0.state.lock().await;
            if let Some(role) = &st.role {
                if OffsetDateTime::now_utc() < role.renew_at {
                    return Ok(role.for_sdk());
                }
            }
            let (held, _, _) = self
                .0
                .renew(&mut st, true)
                .await
                .map_err(|e| CredentialsError::provider_error(e.render()))?;
            tracing::debug!(profile = %self.0.chain.profile, "renewed the role's credentials");
            let out = held.for_sdk();
            st.role = Some(held);
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::profile::RoleHop;

    fn t(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_000_000 + secs).unwrap()
    }

    #[test]
    fn renewed_five_minutes_before_the_end_or_half_way_when_short() {
        assert_eq!(renew_at(t(0), t(3600)), t(3300));
        assert_eq!(renew_at(t(0), t(600)), t(300));
        assert_eq!(renew_at(t(0), t(60)), t(30));
        assert_eq!(
            renew_at(t(0), t(5)),
            t(3) - time::Duration::milliseconds(500)
        );
        assert_eq!(renew_at(t(10), t(0)), t(0), "already over: now");
    }

    #[test]
    fn the_duration_is_12h_by_default_and_15m_to_36h() {
        let d = |v: &str| session_duration(&EnvVars::from_pairs([(DURATION_VAR, v)]));
        assert_eq!(
            session_duration(&EnvVars::default()).unwrap(),
            Some(DEFAULT_DURATION)
        );
        assert_eq!(d("36h").unwrap(), Some(MAX_DURATION));
        assert_eq!(d("15m").unwrap(), Some(MIN_DURATION));
        assert_eq!(d("off").unwrap(), None);
        for bad in ["37h", "14m", "soon", "-1h"] {
            let e = d(bad).unwrap_err();
            assert_eq!(e.exit_code(), crate::error::exit::BAD_INPUT, "{bad}");
            assert!(e.message.contains("from 15m to 36h"), "{}", e.message);
        }
    }

    fn hop(mfa: bool) -> RoleHop {
        RoleHop {
            profile: "production".into(),
            role_arn: "arn:aws:iam::1:role/deploy".into(),
            mfa_serial: mfa.then(|| "arn:aws:iam::2:mfa/alice".into()),
            duration_seconds: None,
            external_id: None,
            role_session_name: None,
        }
    }

    #[test]
    fn only_long_term_keys_with_the_mfa_role_first_hold_an_mfa_session() {
        let keys = |token: Option<&str>| Base::StaticKeys {
            profile: "identity".into(),
            credentials: Credentials::new("AKIAX", "s", token.map(str::to_string), None, "t"),
        };
        let chain = |base, hops| Chain {
            profile: "production".into(),
            base,
            hops,
        };
        assert_eq!(
            why_no_mfa_session(&chain(keys(None), vec![hop(true)])),
            None
        );
        let sso = why_no_mfa_session(&chain(
            Base::Sdk {
                profile: "sso".into(),
            },
            vec![hop(true)],
        ))
        .unwrap();
        assert!(sso.contains("`sso` signs in through the SDK"), "{sso}");
        let temp = why_no_mfa_session(&chain(keys(Some("tok")), vec![hop(true)])).unwrap();
        assert!(temp.contains("temporary"), "{temp}");
        let chained = why_no_mfa_session(&chain(keys(None), vec![hop(false), hop(true)])).unwrap();
        assert!(chained.contains("carries no MFA onwards"), "{chained}");
    }
}
