//! Secrets kept out of what the collector shows: error texts and warnings quote what a
//! server sent back, and a proxy or a misconfigured server may echo a token or a header.
//! Both the Prometheus client and the JSON reader beneath it redact with this, so it stands
//! below both. Which values are secret is decided here too ([`secrets_of`]).

use super::config::{Auth, PrometheusConfig};

/// `text` with every secret replaced by `<redacted>`.
pub(super) fn redact_text(text: String, secrets: &[String]) -> String {
    secrets.iter().fold(text, |t, s| {
        if t.contains(s.as_str()) {
            t.replace(s.as_str(), "<redacted>")
        } else {
            t
        }
    })
}

/// Standard base64 with padding: the form a basic-auth `user:password` takes on the wire, and
/// so the form a server echoing the `Authorization` header sends back.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Whether a header's value is redacted from errors. Which values are secret cannot be known,
/// so every value of [`SECRET_HEADER_MIN`] characters or more is, and any value under a name
/// that says credential; a short value under another name (`X-Scope-OrgID = "1"`) is not,
/// since replacing every "1" in an error would make it unreadable while hiding nothing.
fn secret_header(name: &str, value: &str) -> bool {
    let name = name.to_ascii_lowercase();
    let credential = [
        "auth",
        "token",
        "key",
        "secret",
        "pass",
        "cookie",
        "session",
        "credential",
        "sign",
    ]
    .iter()
    .any(|w| name.contains(w));
    credential || value.chars().count() >= SECRET_HEADER_MIN
}

/// A header value this long is redacted whatever its name: it may be a key.
const SECRET_HEADER_MIN: usize = 6;

/// Every secret value a client sends, in every form it takes on the wire, longest first (so a
/// secret containing another is replaced whole).
pub(super) fn secrets_of(cfg: &PrometheusConfig) -> Vec<String> {
    let mut secrets: Vec<String> = cfg
        .headers
        .iter()
        .filter(|(name, v)| secret_header(name, v.expose()))
        .map(|(_, v)| v.expose().to_string())
        .collect();
    match &cfg.auth {
        Auth::None => {}
        Auth::Bearer(token) => secrets.push(token.expose().to_string()),
        Auth::Basic { user, password } => {
            secrets.push(password.expose().to_string());
            secrets.push(base64(format!("{user}:{}", password.expose()).as_bytes()));
        }
    }
    secrets.retain(|s| !s.trim().is_empty());
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets.dedup();
    secrets
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Header values are redacted when long enough to be a key or named like a credential;
    /// a short tenant id is not, or every digit of an error would be `<redacted>`.
    #[test]
    fn short_header_values_are_secret_only_under_a_credential_name() {
        let cfg = |headers: &[(&str, &str)]| PrometheusConfig {
            url: "http://127.0.0.1:9090".into(),
            timeout: Duration::from_secs(1),
            auth: Auth::None,
            ca_file: None,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), crate::collect::Secret::new(*v)))
                .collect(),
            max_answer_bytes: crate::collect::config::DEFAULT_MAX_ANSWER_BYTES,
        };
        let got = secrets_of(&cfg(&[
            ("X-Scope-OrgID", "1"),
            ("X-Api-Key", "k1"),
            ("Cookie", "s=2"),
            ("X-Tenant", "org-SECRET-3"),
        ]));
        assert_eq!(got, ["org-SECRET-3", "s=2", "k1"]);
        let text = "bad_data: line 1 column 12 (X-Scope-OrgID 1, key k1, org-SECRET-3)";
        assert_eq!(
            redact_text(text.to_string(), &got),
            "bad_data: line 1 column 12 (X-Scope-OrgID 1, key <redacted>, <redacted>)"
        );
    }

    #[test]
    fn base64_matches_the_standard_alphabet_and_padding() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(
            base64(b"prescale:pw-SECRET-2"),
            "cHJlc2NhbGU6cHctU0VDUkVULTI="
        );
    }
}
