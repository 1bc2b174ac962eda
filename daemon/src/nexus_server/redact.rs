//! Secrets in message text are replaced with `[REDACTED]` before a message is stored, as the
//! protocol requires (NexusMessaging §4.5: "MUST scan message text for common secret
//! patterns", "MUST redact them"). Best effort, like the reference server: it catches the
//! usual shapes, not every secret.
//!
//! Patterns: `sk-…` API keys (OpenAI, Anthropic), Stripe `sk_live_…`/`rk_test_…`, GitHub
//! `ghp_…`/`github_pat_…`, Slack `xox?-…`, AWS `AKIA…`/`ASIA…`, Google `AIza…`, JWTs,
//! `Bearer TOKEN`, PEM private key blocks, the password of `scheme://user:PASSWORD@host`, and
//! the value of `password=`, `secret:`, `api_key=`, `token=` and the like. Only the secret
//! part is replaced: `password=hunter22` becomes `password=[REDACTED]`.
//!
//! The answer to a send says `"redacted": true` when something was replaced (the protocol's
//! SHOULD: tell the sender its content was sanitised).

use regex::{Captures, Regex};
use std::sync::LazyLock;

/// What replaces a secret.
pub const REDACTED: &str = "[REDACTED]";

const PATTERNS: &[&str] = &[
    r"(?P<secret>-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----)",
    r"(?P<secret>\bsk-[A-Za-z0-9_-]{20,})",
    r"(?P<secret>\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,})",
    r"(?P<secret>\bgh[pousr]_[A-Za-z0-9]{30,})",
    r"(?P<secret>\bgithub_pat_[A-Za-z0-9_]{22,})",
    r"(?P<secret>\bxox[abprs]-[A-Za-z0-9-]{10,})",
    r"(?P<secret>\b(?:AKIA|ASIA)[0-9A-Z]{16}\b)",
    r"(?P<secret>\bAIza[0-9A-Za-z_-]{35})",
    r"(?P<secret>\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})",
    r"(?i)(?P<keep>\bbearer\s+)(?P<secret>[A-Za-z0-9._~+/-]{12,}=*)",
    r"(?P<keep>[a-z][a-z0-9+.-]*://[^/\s:@]+:)(?P<secret>[^/\s@]+)(?P<tail>@)",
    r#"(?i)(?P<keep>\b(?:password|passwd|pwd|secret|client_secret|api[_-]?key|apikey|access[_-]?token|auth[_-]?token|token|private[_-]?key)["']?\s*[:=]\s*["']?)(?P<secret>[^\s"',;]{6,})"#,
];

static RULES: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    PATTERNS
        .iter()
        .filter_map(|p| match Regex::new(p) {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::error!(error = %e, "a redaction pattern does not compile");
                None
            }
        })
        .collect()
});

/// `text` with every secret found replaced, and whether anything was.
pub fn redact(text: &str) -> (String, bool) {
    let mut out = text.to_string();
    let mut changed = false;
    for rule in RULES.iter() {
        if !rule.is_match(&out) {
            continue;
        }
        changed = true;
        out = rule
            .replace_all(&out, |c: &Captures| {
                let part = |name| c.name(name).map_or("", |m| m.as_str());
                format!("{}{REDACTED}{}", part("keep"), part("tail"))
            })
            .into_owned();
    }
    (out, changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_secrets_are_redacted_and_plain_text_is_kept() {
        let cases = [
            (
                "key sk-proj-abcdefghijklmnopqrstuvwx ok",
                "key [REDACTED] ok",
            ),
            ("ghp_0123456789abcdefghijABCDEFGHIJ0123456", "[REDACTED]"),
            ("aws AKIAIOSFODNN7EXAMPLE", "aws [REDACTED]"),
            (
                "Authorization: Bearer abc.def-ghi_jkl012",
                "Authorization: Bearer [REDACTED]",
            ),
            ("password=hunter2222 next", "password=[REDACTED] next"),
            ("\"api_key\": \"zzzzzz999\"", "\"api_key\": \"[REDACTED]\""),
            (
                "db postgres://app:s3cr3tpw@db:5432/x",
                "db postgres://app:[REDACTED]@db:5432/x",
            ),
            (
                "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----",
                "[REDACTED]",
            ),
            ("xoxb-1234567890-abcdef", "[REDACTED]"),
        ];
        for (input, want) in cases {
            assert_eq!(redact(input), (want.to_string(), true), "{input}");
        }
        for plain in ["hello, see you at 5", "the token bucket is full", "ask- me"] {
            assert_eq!(redact(plain), (plain.to_string(), false));
        }
    }
}
