//! Secrets kept out of what the collector shows: error texts and warnings quote what a
//! server sent back, and a proxy or a misconfigured server may echo a token or a header.
//! Both the Prometheus client and the JSON reader beneath it redact with this, so it stands
//! below both.

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
