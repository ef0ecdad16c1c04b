//! Matching helpers scripts use: PCRE2 (with JIT) and shell-style globs.

use thiserror::Error;

/// A PCRE2 pattern failed to compile.
#[derive(Debug, Error)]
#[error("bad regular expression {pattern:?}: {message}")]
pub struct PcreError {
    /// The pattern as given.
    pub pattern: String,
    /// PCRE2's message.
    pub message: String,
}

/// A compiled PCRE2 pattern over bytes, JIT-compiled where available.
#[derive(Debug, Clone)]
pub struct Pcre {
    re: pcre2::bytes::Regex,
}

impl Pcre {
    /// Compiles `pattern` with PCRE2 semantics.
    pub fn new(pattern: &str) -> Result<Pcre, PcreError> {
        let re = pcre2::bytes::RegexBuilder::new()
            .jit_if_available(true)
            .build(pattern)
            .map_err(|e| PcreError {
                pattern: pattern.to_string(),
                message: e.to_string(),
            })?;
        Ok(Pcre { re })
    }

    /// Whether the pattern matches anywhere in `haystack`. A match error
    /// (e.g. PCRE2's match limit) counts as no match.
    pub fn is_match(&self, haystack: &[u8]) -> bool {
        self.re.is_match(haystack).unwrap_or(false)
    }

    /// The first match and its capture groups (`None` for groups that did
    /// not take part). Index 0 is the whole match.
    pub fn captures<'h>(&self, haystack: &'h [u8]) -> Option<Vec<Option<&'h [u8]>>> {
        let caps = self.re.captures(haystack).ok()??;
        Some(
            (0..caps.len())
                .map(|i| caps.get(i).map(|m| m.as_bytes()))
                .collect(),
        )
    }
}

/// A shell-style glob (`*`, `?`) matched against whole strings.
#[derive(Debug, Clone)]
pub struct Glob {
    pattern: wildmatch::WildMatch,
}

impl Glob {
    /// Compiles a glob.
    pub fn new(pattern: &str) -> Glob {
        Glob {
            pattern: wildmatch::WildMatch::new(pattern),
        }
    }

    /// Whether the whole of `text` matches (invalid UTF-8 is matched
    /// lossily).
    pub fn is_match(&self, text: &[u8]) -> bool {
        match std::str::from_utf8(text) {
            Ok(s) => self.pattern.matches(s),
            Err(_) => self.pattern.matches(&String::from_utf8_lossy(text)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcre_groups() {
        let re = Pcre::new(r"(\d{4})-(\d{2})?x?").unwrap();
        let caps = re.captures(b"id 2024-x").unwrap();
        assert_eq!(caps[0], Some(&b"2024-x"[..]));
        assert_eq!(caps[1], Some(&b"2024"[..]));
        assert_eq!(caps[2], None);
        assert!(Pcre::new("(").is_err());
    }

    #[test]
    fn glob_whole_string() {
        let g = Glob::new("*.example.com");
        assert!(g.is_match(b"www.example.com"));
        assert!(!g.is_match(b"example.org"));
    }
}
