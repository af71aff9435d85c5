//! STS: identities, roles (with MFA by TOTP), issued sessions, accepted access keys.

use std::collections::BTreeMap;

use crate::{AwsError, Ctx};

/// STS state.
#[derive(Debug, Default)]
pub struct Sts {}

impl Sts {
    /// Checks the request's access key. `Err` is the AWS error to answer with.
    pub fn authenticate(&self, _access_key: Option<&str>, _now: f64) -> Result<(), AwsError> {
        Ok(())
    }

    /// Runs one STS action; `Ok` is the XML response document.
    pub fn handle(
        &mut self,
        _ctx: &mut Ctx<'_>,
        _access_key: Option<&str>,
        action: &str,
        _params: &BTreeMap<String, String>,
    ) -> Result<String, AwsError> {
        Err(AwsError::new(
            "InvalidAction",
            format!("Could not find operation {action}"),
        ))
    }
}
