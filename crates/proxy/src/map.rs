//! Maps and ACL pattern files (`Map.new`, `map_*` converters, `acl -f`),
//! shared by every worker thread so that `core.set_map` in one thread is
//! seen by all.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use lua::Pcre;

/// How a key is matched against a map's entries (HAProxy's `-m` methods).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchMethod {
    /// Exact string.
    Str,
    /// Input begins with the entry.
    Beg,
    /// Input ends with the entry.
    End,
    /// Input contains the entry.
    Sub,
    /// Entry is a `/`-delimited component run of the input.
    Dir,
    /// Entry is a `.`-delimited component run of the input.
    Dom,
    /// Entry is a regular expression matching the input.
    Reg,
    /// Entry is an IP address or network containing the input.
    Ip,
    /// Integer equality (entries may be ranges `a:b`).
    Int,
    /// Sample exists.
    Found,
    /// Length of the input equals an integer entry.
    Len,
    /// Sample as boolean.
    Bool,
}

impl MatchMethod {
    /// Parses a method name as written after `-m` (or as a fetch suffix).
    pub fn parse(name: &str) -> Option<MatchMethod> {
        Some(match name {
            "str" => MatchMethod::Str,
            "beg" => MatchMethod::Beg,
            "end" => MatchMethod::End,
            "sub" => MatchMethod::Sub,
            "dir" => MatchMethod::Dir,
            "dom" => MatchMethod::Dom,
            "reg" | "regex" => MatchMethod::Reg,
            "ip" => MatchMethod::Ip,
            "int" => MatchMethod::Int,
            "found" => MatchMethod::Found,
            "len" => MatchMethod::Len,
            "bool" => MatchMethod::Bool,
            _ => return None,
        })
    }

    /// The numeric code scripts see in `Map.str` etc.
    pub fn code(self) -> i64 {
        match self {
            MatchMethod::Found => 0,
            MatchMethod::Bool => 1,
            MatchMethod::Int => 2,
            MatchMethod::Ip => 3,
            MatchMethod::Len => 5,
            MatchMethod::Str => 6,
            MatchMethod::Beg => 7,
            MatchMethod::Sub => 8,
            MatchMethod::Dir => 9,
            MatchMethod::Dom => 10,
            MatchMethod::End => 11,
            MatchMethod::Reg => 12,
        }
    }

    /// Inverse of [`MatchMethod::code`].
    pub fn from_code(code: i64) -> Option<MatchMethod> {
        [
            MatchMethod::Found,
            MatchMethod::Bool,
            MatchMethod::Int,
            MatchMethod::Ip,
            MatchMethod::Str,
            MatchMethod::Beg,
            MatchMethod::Sub,
            MatchMethod::Dir,
            MatchMethod::Dom,
            MatchMethod::End,
            MatchMethod::Reg,
            MatchMethod::Len,
        ]
        .into_iter()
        .find(|m| m.code() == code)
    }
}

/// One compiled pattern.
#[derive(Debug, Clone)]
pub enum Pattern {
    /// Literal bytes (compared case-insensitively when the entry asks).
    Bytes(Vec<u8>),
    /// Regular expression.
    Reg(Pcre),
    /// Network: address and prefix length.
    Net(IpAddr, u8),
    /// Integer range, inclusive.
    Int(i64, i64),
}

/// Compiles one pattern for a method; `None` when it is invalid for it.
pub fn compile(method: MatchMethod, text: &str, ignore_case: bool) -> Result<Pattern, String> {
    Ok(match method {
        MatchMethod::Reg => {
            let pat = if ignore_case {
                format!("(?i){text}")
            } else {
                text.to_string()
            };
            Pattern::Reg(Pcre::new(&pat).map_err(|e| e.to_string())?)
        }
        MatchMethod::Ip => {
            parse_net(text).ok_or_else(|| format!("'{text}' is not an IP address or network"))?
        }
        MatchMethod::Int | MatchMethod::Len => {
            let (a, b) = match text.split_once(':') {
                Some((a, b)) => (
                    if a.is_empty() {
                        i64::MIN
                    } else {
                        a.parse()
                            .map_err(|_| format!("'{text}' is not an integer range"))?
                    },
                    if b.is_empty() {
                        i64::MAX
                    } else {
                        b.parse()
                            .map_err(|_| format!("'{text}' is not an integer range"))?
                    },
                ),
                None => {
                    let v: i64 = text
                        .parse()
                        .map_err(|_| format!("'{text}' is not an integer"))?;
                    (v, v)
                }
            };
            Pattern::Int(a, b)
        }
        _ => Pattern::Bytes(if ignore_case {
            text.to_ascii_lowercase().into_bytes()
        } else {
            text.as_bytes().to_vec()
        }),
    })
}

/// Parses `a.b.c.d`, `a.b.c.d/n`, `a.b.c.d/m.m.m.m` or IPv6 `x::y/n`.
pub fn parse_net(text: &str) -> Option<Pattern> {
    let (addr, len) = match text.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (text, None),
    };
    let ip: IpAddr = addr.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let bits = match len {
        None => max,
        Some(l) => match l.parse::<u8>() {
            Ok(n) if n <= max => n,
            _ => {
                let mask: std::net::Ipv4Addr = l.parse().ok()?;
                u32::from(mask).count_ones() as u8
            }
        },
    };
    Some(Pattern::Net(ip, bits))
}

fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    let to_v6 = |a: IpAddr| match a {
        IpAddr::V4(v) => (v.to_ipv6_mapped(), 96u32),
        IpAddr::V6(v) => (v, 0),
    };
    let (a, _) = to_v6(ip);
    let (n, extra) = to_v6(net);
    let bits = bits as u32 + extra;
    if bits == 0 {
        return true;
    }
    let a = u128::from(a);
    let n = u128::from(n);
    let mask = if bits >= 128 {
        u128::MAX
    } else {
        !(u128::MAX >> bits)
    };
    a & mask == n & mask
}

fn component_match(input: &[u8], pat: &[u8], sep: u8) -> bool {
    if pat.is_empty() {
        return false;
    }
    let mut i = 0;
    while i + pat.len() <= input.len() {
        if &input[i..i + pat.len()] == pat {
            let before_ok = i == 0 || input[i - 1] == sep || pat[0] == sep;
            let after = i + pat.len();
            let after_ok = after == input.len() || input[after] == sep || pat[pat.len() - 1] == sep;
            if before_ok && after_ok {
                return true;
            }
        }
        i += 1;
    }
    false
}

/// Whether `input` matches `pat` under `method`.
pub fn matches(method: MatchMethod, pat: &Pattern, input: &[u8], ignore_case: bool) -> bool {
    let lowered;
    let input = if ignore_case && !matches!(pat, Pattern::Reg(_)) {
        lowered = input.to_ascii_lowercase();
        &lowered[..]
    } else {
        input
    };
    match (method, pat) {
        (MatchMethod::Reg, Pattern::Reg(re)) => re.is_match(input),
        (MatchMethod::Ip, Pattern::Net(net, bits)) => std::str::from_utf8(input)
            .ok()
            .and_then(|s| s.trim().parse::<IpAddr>().ok())
            .is_some_and(|ip| in_net(ip, *net, *bits)),
        (MatchMethod::Int, Pattern::Int(a, b)) => std::str::from_utf8(input)
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .is_some_and(|v| v >= *a && v <= *b),
        (MatchMethod::Len, Pattern::Int(a, b)) => {
            let l = input.len() as i64;
            l >= *a && l <= *b
        }
        (m, Pattern::Bytes(p)) => match m {
            MatchMethod::Beg => input.starts_with(p),
            MatchMethod::End => input.ends_with(p),
            MatchMethod::Sub => p.is_empty() || input.windows(p.len()).any(|w| w == &p[..]),
            MatchMethod::Dir => component_match(input, p, b'/'),
            MatchMethod::Dom => component_match(input, p, b'.'),
            _ => input == &p[..],
        },
        _ => false,
    }
}

/// The entries of one map or ACL file.
#[derive(Debug, Default)]
pub struct MapData {
    /// Keys and values in file order (ACL files have empty values).
    pub entries: Vec<(String, String)>,
    /// Compiled patterns per method, built lazily and dropped on change.
    compiled: HashMap<MatchMethod, Vec<(Pattern, String)>>,
}

impl MapData {
    /// Parses a map file's text: `key value` lines, `#` comments.
    pub fn parse(text: &str) -> MapData {
        let mut entries = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (k, v) = match line.find([' ', '\t']) {
                Some(i) => (&line[..i], line[i..].trim()),
                None => (line, ""),
            };
            entries.push((k.to_string(), v.to_string()));
        }
        MapData {
            entries,
            compiled: HashMap::new(),
        }
    }

    /// Sets (replaces or adds) `key`.
    pub fn set(&mut self, key: &str, value: &str) {
        self.compiled.clear();
        if let Some(e) = self.entries.iter_mut().find(|(k, _)| k == key) {
            e.1 = value.to_string();
        } else {
            self.entries.push((key.to_string(), value.to_string()));
        }
    }

    /// Adds `key` if absent (ACL files).
    pub fn add(&mut self, key: &str) {
        if !self.entries.iter().any(|(k, _)| k == key) {
            self.compiled.clear();
            self.entries.push((key.to_string(), String::new()));
        }
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &str) {
        self.compiled.clear();
        self.entries.retain(|(k, _)| k != key);
    }

    /// Looks `input` up; the value of the best entry (longest prefix for
    /// `ip`, first match otherwise).
    pub fn lookup(&mut self, method: MatchMethod, input: &[u8]) -> Option<String> {
        if method == MatchMethod::Str {
            return self
                .entries
                .iter()
                .find(|(k, _)| k.as_bytes() == input)
                .map(|(_, v)| v.clone());
        }
        let compiled = self.compiled.entry(method).or_insert_with(|| {
            self.entries
                .iter()
                .filter_map(|(k, v)| compile(method, k, false).ok().map(|p| (p, v.clone())))
                .collect()
        });
        if method == MatchMethod::Ip {
            let mut best: Option<(u8, &String)> = None;
            for (p, v) in compiled.iter() {
                if let Pattern::Net(_, bits) = p
                    && matches(method, p, input, false)
                    && best.is_none_or(|(b, _)| *bits > b)
                {
                    best = Some((*bits, v));
                }
            }
            return best.map(|(_, v)| v.clone());
        }
        compiled
            .iter()
            .find(|(p, _)| matches(method, p, input, false))
            .map(|(_, v)| v.clone())
    }
}

/// All maps and ACL files, by file name.
#[derive(Debug, Default)]
pub struct MapStore {
    maps: RwLock<HashMap<String, Arc<RwLock<MapData>>>>,
}

impl MapStore {
    /// The map for `file`, loading it on first use. A missing file gives an
    /// error; `create` makes an empty map instead (for `core.set_map`).
    pub fn get(&self, file: &str, create: bool) -> Result<Arc<RwLock<MapData>>, std::io::Error> {
        if let Some(m) = self.maps.read().ok().and_then(|m| m.get(file).cloned()) {
            return Ok(m);
        }
        let data = match std::fs::read_to_string(file) {
            Ok(text) => MapData::parse(&text),
            Err(e) if !create => return Err(e),
            Err(_) => MapData::default(),
        };
        let arc = Arc::new(RwLock::new(data));
        if let Ok(mut maps) = self.maps.write() {
            return Ok(maps.entry(file.to_string()).or_insert(arc).clone());
        }
        Ok(arc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods() {
        let p = compile(MatchMethod::Beg, "/api", false).unwrap();
        assert!(matches(MatchMethod::Beg, &p, b"/api/x", false));
        let p = compile(MatchMethod::Dom, "example.com", false).unwrap();
        assert!(matches(MatchMethod::Dom, &p, b"www.example.com", false));
        assert!(!matches(MatchMethod::Dom, &p, b"wwwexample.com", false));
        let p = compile(MatchMethod::Dir, "img", false).unwrap();
        assert!(matches(MatchMethod::Dir, &p, b"/a/img/b.png", false));
        let p = compile(MatchMethod::Ip, "10.0.0.0/8", false).unwrap();
        assert!(matches(MatchMethod::Ip, &p, b"10.2.3.4", false));
        assert!(!matches(MatchMethod::Ip, &p, b"11.2.3.4", false));
        let p = compile(MatchMethod::Str, "ABC", true).unwrap();
        assert!(matches(MatchMethod::Str, &p, b"abc", true));
        let p = compile(MatchMethod::Int, "10:20", false).unwrap();
        assert!(matches(MatchMethod::Int, &p, b"15", false));
    }

    #[test]
    fn ip_map_longest_prefix() {
        let mut m = MapData::parse("# geo\n10.0.0.0/8 fr\n10.1.0.0/16 de\n::1 lo\n");
        assert_eq!(
            m.lookup(MatchMethod::Ip, b"10.1.2.3").as_deref(),
            Some("de")
        );
        assert_eq!(
            m.lookup(MatchMethod::Ip, b"10.9.2.3").as_deref(),
            Some("fr")
        );
        assert_eq!(m.lookup(MatchMethod::Ip, b"::1").as_deref(), Some("lo"));
        assert_eq!(m.lookup(MatchMethod::Ip, b"1.1.1.1"), None);
        m.set("1.1.1.1", "au");
        assert_eq!(m.lookup(MatchMethod::Ip, b"1.1.1.1").as_deref(), Some("au"));
    }
}
