//! Writing JSON text straight into a string: session documents are built
//! once per session on the hot path, and writing text directly costs a
//! fraction of building a `serde_json` tree first.

use std::fmt::Write;
use std::net::IpAddr;

/// Appends `s` as a JSON string literal.
pub fn push_str(buf: &mut String, s: &str) {
    buf.push('"');
    push_str_body(buf, s);
    buf.push('"');
}

/// Appends `s` escaped for the inside of a JSON string literal (no quotes).
pub fn push_str_body(buf: &mut String, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        // Most text has nothing to escape: step over clean words.
        if let Some(word) = bytes.get(i..i + 8)
            && let Ok(word) = <[u8; 8]>::try_from(word)
            && !word_needs_escape(u64::from_le_bytes(word))
        {
            i += 8;
            continue;
        }
        let b = bytes[i];
        if b >= 0x20 && b != b'"' && b != b'\\' {
            i += 1;
            continue;
        }
        // Escapes are ASCII, so `i` is on a character boundary.
        buf.push_str(&s[start..i]);
        match b {
            b'"' => buf.push_str("\\\""),
            b'\\' => buf.push_str("\\\\"),
            b'\n' => buf.push_str("\\n"),
            b'\r' => buf.push_str("\\r"),
            b'\t' => buf.push_str("\\t"),
            _ => {
                let _ = write!(buf, "\\u{:04x}", b);
            }
        }
        i += 1;
        start = i;
    }
    buf.push_str(&s[start..]);
}

/// Whether any of the eight bytes is a control character, `"` or `\`
/// (bit tricks on a whole word; bytes of multi-byte characters never match).
fn word_needs_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x & HIGH;
    let zero = |x: u64| below(x, 1);
    (below(w, 0x20) | zero(w ^ (ONES * u64::from(b'"'))) | zero(w ^ (ONES * u64::from(b'\\')))) != 0
}

/// Appends an IP address as a JSON string (`"10.0.0.1"`, `"2001:db8::1"`),
/// without an intermediate `String`.
pub fn push_ip(buf: &mut String, ip: &IpAddr) {
    buf.push('"');
    match ip {
        IpAddr::V4(v4) => {
            let mut num = itoa::Buffer::new();
            for (i, o) in v4.octets().iter().enumerate() {
                if i > 0 {
                    buf.push('.');
                }
                buf.push_str(num.format(*o));
            }
        }
        // IPv6 text form has enough rules (zero runs, embedded IPv4) that
        // the standard formatter is the one to trust.
        IpAddr::V6(v6) => {
            let _ = write!(buf, "{v6}");
        }
    }
    buf.push('"');
}

/// Appends bytes as lower-case hex digits (no quotes).
pub fn push_hex(buf: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        buf.push(char::from(DIGITS[usize::from(b >> 4)]));
        buf.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
}

/// Appends a MAC address as a JSON string, lower-case and colon-separated.
pub fn push_mac(buf: &mut String, mac: &[u8; 6]) {
    buf.push('"');
    for (i, b) in mac.iter().enumerate() {
        if i > 0 {
            buf.push(':');
        }
        push_hex(buf, std::slice::from_ref(b));
    }
    buf.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_like_serde() {
        for s in [
            "plain",
            "q\"u\\o\nte\u{1}\t\r",
            "ünïcødé",
            "",
            "a longer line without anything to escape at all",
            "0123456\"89abcdef\\0123456789abcde\u{1f}",
            "ünïcødé ünïcødé \u{7f} ünïcødé\n",
        ] {
            let mut buf = String::new();
            push_str(&mut buf, s);
            assert_eq!(serde_json::from_str::<String>(&buf).unwrap(), s);
        }
    }

    proptest::proptest! {
        #[test]
        fn any_string_round_trips(s in "\\PC*|[\\x00-\\x7f]{0,40}") {
            let mut buf = String::new();
            push_str(&mut buf, &s);
            proptest::prop_assert_eq!(serde_json::from_str::<String>(&buf).unwrap(), s);
        }
    }

    #[test]
    fn addresses_match_the_standard_text_form() {
        for ip in [
            "10.0.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "2001:db8::1",
            "::ffff:1.2.3.4",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            let mut buf = String::new();
            push_ip(&mut buf, &ip);
            assert_eq!(buf, format!("\"{ip}\""));
        }
        let mut buf = String::new();
        push_mac(&mut buf, &[0x00, 0x1b, 0xff, 0x0a, 0x10, 0xee]);
        assert_eq!(buf, "\"00:1b:ff:0a:10:ee\"");
    }
}
