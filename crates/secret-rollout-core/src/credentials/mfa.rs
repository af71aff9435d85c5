//! Getting the 6-digit MFA code from the person (terminal) or a script (stdin).

use std::fmt;
use std::io::BufRead;
use std::sync::Arc;

use crate::error::{Error, Result};

/// A function that returns the code for an MFA device (its argument is the serial).
pub type CodeFn = Arc<dyn Fn(&str) -> std::io::Result<String> + Send + Sync>;

/// Where the MFA code comes from.
#[derive(Clone, Default)]
pub enum MfaCodeSource {
    /// Ask on the terminal (`/dev/tty`), input hidden. The default.
    #[default]
    Prompt,
    /// Read one line from standard input (`--mfa-code-stdin`, for scripts).
    Stdin,
    /// Ask this function (tests, or a caller with its own way to get the code).
    Callback(CodeFn),
}

impl fmt::Debug for MfaCodeSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MfaCodeSource::Prompt => f.write_str("Prompt"),
            MfaCodeSource::Stdin => f.write_str("Stdin"),
            MfaCodeSource::Callback(_) => f.write_str("Callback"),
        }
    }
}

/// The prompt shown on the terminal.
pub fn prompt_text(serial: &str) -> String {
    format!("MFA code for {serial}: ")
}

/// Gets the code for `serial` from `source` and checks its format.
pub fn read_code(source: &MfaCodeSource, serial: &str) -> Result<String> {
    let raw = match source {
        // rpassword opens /dev/tty itself, so the prompt works even when stdout/stdin
        // are redirected; without a terminal it fails and we say how to script it.
        MfaCodeSource::Prompt => rpassword::prompt_password(prompt_text(serial)).map_err(|e| {
            Error::credentials(format!(
                "cannot ask for the MFA code of {serial}: no terminal ({e})"
            ))
            .hint("pipe the code with --mfa-code-stdin, or sign in with `aws-vault exec PROFILE -- secret-rollout ...`")
        })?,
        MfaCodeSource::Stdin => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| Error::credentials(format!("cannot read the MFA code from stdin: {e}")))?;
            if line.is_empty() {
                return Err(Error::credentials(
                    "--mfa-code-stdin was given but standard input was empty",
                )
                .hint(format!("pipe the current code: `echo 123456 | secret-rollout ... --mfa-code-stdin` (device {serial})")));
            }
            line
        }
        MfaCodeSource::Callback(f) => f(serial)
            .map_err(|e| Error::credentials(format!("cannot get the MFA code for {serial}: {e}")))?,
    };
    validate_code(&raw)
}

/// Checks that `raw` (trimmed) is exactly 6 ASCII digits, the form of a TOTP code.
pub fn validate_code(raw: &str) -> Result<String> {
    let code = raw.trim();
    if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        Ok(code.to_string())
    } else {
        // The input is not echoed back: someone may have pasted a password by mistake.
        Err(Error::credentials(format!(
            "the MFA code must be 6 digits (got {} characters)",
            code.chars().count()
        ))
        .hint("type the 6-digit code your authenticator app shows now"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn six_digits_pass_and_are_trimmed() {
        assert_eq!(validate_code(" 012345\n").unwrap(), "012345");
    }

    #[test]
    fn malformed_codes_fail_without_echo() {
        for bad in ["12345", "1234567", "12a456", "", "hunter2pw"] {
            let err = validate_code(bad).unwrap_err();
            assert_eq!(err.exit_code(), crate::error::exit::CREDENTIALS);
            assert!(err.message.contains("6 digits"));
            if !bad.is_empty() {
                assert!(!err.message.contains(bad));
            }
        }
    }

    #[test]
    fn callback_gets_the_serial() {
        let src = MfaCodeSource::Callback(Arc::new(|serial: &str| {
            assert_eq!(serial, "arn:aws:iam::1:mfa/a");
            Ok("654321".to_string())
        }));
        assert_eq!(read_code(&src, "arn:aws:iam::1:mfa/a").unwrap(), "654321");
        assert_eq!(format!("{src:?}"), "Callback");
    }
}
