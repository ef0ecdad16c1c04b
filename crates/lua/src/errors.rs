//! Accounting for script errors: each distinct `script:line` is logged once
//! and counted every time, so a callback failing on every packet neither
//! floods the log nor goes unnoticed.

use std::collections::HashMap;

/// Where a Lua error came from, as Lua reports it (`chunk:line`), or
/// `"?"` when the message carries no position.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ErrorSite(pub String);

impl ErrorSite {
    /// Extracts `name:line` from the first line of a Lua error message
    /// such as `"[string \"a.lua\"]:12: boom"` or `"a.lua:12: boom"`.
    pub fn from_message(msg: &str) -> ErrorSite {
        let first = msg.lines().next().unwrap_or("");
        // Skip mlua's "runtime error: " / "callback error: " prefixes.
        let first = first
            .trim_start_matches("runtime error: ")
            .trim_start_matches("callback error: ")
            .trim_start_matches("syntax error: ");
        let bytes = first.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b':' {
                let digits = bytes[i + 1..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .count();
                if digits > 0 && bytes.get(i + 1 + digits) == Some(&b':') {
                    return ErrorSite(first[..i + 1 + digits].to_string());
                }
            }
            i += 1;
        }
        ErrorSite("?".to_string())
    }
}

/// Counts errors per site; [`ErrorLog::record`] says whether this is the
/// first time the site failed (so the caller logs it).
#[derive(Debug, Default)]
pub struct ErrorLog {
    by_site: HashMap<ErrorSite, u64>,
    total: u64,
}

impl ErrorLog {
    /// Records one error; returns true when the site is new.
    pub fn record(&mut self, message: &str) -> bool {
        self.total += 1;
        let site = ErrorSite::from_message(message);
        let count = self.by_site.entry(site).or_insert(0);
        *count += 1;
        *count == 1
    }

    /// Total errors recorded.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Errors per site, sorted by site.
    pub fn sites(&self) -> Vec<(String, u64)> {
        let mut v: Vec<_> = self
            .by_site
            .iter()
            .map(|(k, n)| (k.0.clone(), *n))
            .collect();
        v.sort();
        v
    }

    /// Adds another log's counts into this one (per-thread logs → report).
    pub fn merge(&mut self, other: &ErrorLog) {
        self.total += other.total;
        for (k, n) in &other.by_site {
            *self.by_site.entry(k.clone()).or_insert(0) += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_from_messages() {
        assert_eq!(
            ErrorSite::from_message("runtime error: a.lua:12: boom").0,
            "a.lua:12"
        );
        assert_eq!(
            ErrorSite::from_message("[string \"x.lua\"]:3: attempt to index a nil value").0,
            "[string \"x.lua\"]:3"
        );
        assert_eq!(ErrorSite::from_message("no position").0, "?");
    }

    #[test]
    fn counts_and_first_time() {
        let mut log = ErrorLog::default();
        assert!(log.record("a.lua:1: x"));
        assert!(!log.record("a.lua:1: y"));
        assert!(log.record("a.lua:2: x"));
        assert_eq!(log.total(), 3);
        assert_eq!(
            log.sites(),
            vec![("a.lua:1".to_string(), 2), ("a.lua:2".to_string(), 1)]
        );
    }
}
