//! A minimal DER reader (borrowed slices, no allocation) and the X.509
//! certificate facts Arkime indexes.

use serde_json::{Map, Value as Json, json};
use sha1::{Digest, Sha1};

use super::util;

/// One DER element.
#[derive(Debug, Clone, Copy)]
pub struct Tlv<'a> {
    /// The identifier octet (class, constructed bit, tag number).
    pub tag: u8,
    /// The contents.
    pub value: &'a [u8],
    /// The whole element (header and contents).
    pub raw: &'a [u8],
}

/// Reads the element at the start of `b`; returns it and what follows.
pub fn read(b: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let tag = *b.first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let l0 = *b.get(1)?;
    let (len, hdr) = if l0 & 0x80 == 0 {
        (usize::from(l0), 2)
    } else {
        let n = usize::from(l0 & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | usize::from(*b.get(2 + i)?);
        }
        (len, 2 + n)
    };
    let end = hdr.checked_add(len)?;
    let value = b.get(hdr..end)?;
    Some((
        Tlv {
            tag,
            value,
            raw: &b[..end],
        },
        &b[end..],
    ))
}

/// Like [`read`], but a length past the end is cut to what is there (as
/// Arkime's BER reader does for truncated captures).
pub fn read_lenient(b: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    if let Some(r) = read(b) {
        return Some(r);
    }
    let tag = *b.first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let l0 = *b.get(1)?;
    let hdr = if l0 & 0x80 == 0 {
        2
    } else {
        2 + usize::from(l0 & 0x7f)
    };
    if hdr > 6 || b.len() < hdr {
        return None;
    }
    Some((
        Tlv {
            tag,
            value: &b[hdr..],
            raw: b,
        },
        &[],
    ))
}

/// The elements inside a constructed value, cutting the last one short
/// when its length runs past the end.
pub fn children_lenient(mut b: &[u8]) -> impl Iterator<Item = Tlv<'_>> {
    std::iter::from_fn(move || {
        let (t, rest) = read_lenient(b)?;
        b = rest;
        Some(t)
    })
}

/// The elements inside a constructed value.
pub fn children(mut b: &[u8]) -> impl Iterator<Item = Tlv<'_>> {
    std::iter::from_fn(move || {
        let (t, rest) = read(b)?;
        b = rest;
        Some(t)
    })
}

/// Dotted text of an OBJECT IDENTIFIER's contents.
pub fn oid(v: &[u8]) -> String {
    let mut out = String::new();
    let mut value: u64 = 0;
    let mut first = true;
    for &c in v {
        value = (value << 7) | u64::from(c & 0x7f);
        if c & 0x80 != 0 {
            if value > u64::from(u32::MAX) {
                return out;
            }
            continue;
        }
        if first {
            first = false;
            let (a, b) = if value < 40 {
                (0, value)
            } else if value < 80 {
                (1, value - 40)
            } else {
                (2, value - 80)
            };
            out.push_str(&format!("{a}.{b}"));
        } else {
            out.push_str(&format!(".{value}"));
        }
        value = 0;
    }
    out
}

/// Seconds since the epoch of a UTCTime (tag 23) or GeneralizedTime (24).
fn time(tag: u8, v: &[u8]) -> Option<i64> {
    let num = |s: &[u8]| -> Option<i64> {
        let t = std::str::from_utf8(s).ok()?;
        t.parse::<i64>().ok()
    };
    let (year, rest) = match tag {
        23 if v.len() >= 12 => {
            let y = num(&v[..2])?;
            (if y < 50 { 2000 + y } else { 1900 + y }, &v[2..])
        }
        24 if v.len() >= 10 => (num(&v[..4])?, &v[4..]),
        _ => return None,
    };
    let mon = num(rest.get(0..2)?)?;
    let day = num(rest.get(2..4)?)?;
    let hour = num(rest.get(4..6)?)?;
    let min = rest.get(6..8).and_then(num).unwrap_or(0);
    let sec = rest.get(8..10).and_then(num).unwrap_or(0);
    Some(days_from_civil(year, mon, day) * 86400 + hour * 3600 + min * 60 + sec)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// CN/O/OU values of a Name.
fn name_parts(name: &[u8], obj: &mut Map<String, Json>, prefix: &str) {
    let mut cn = Vec::new();
    let mut on = Vec::new();
    let mut ou = Vec::new();
    for rdn in children(name) {
        for atv in children(rdn.value) {
            let mut it = children(atv.value);
            let (Some(o), Some(v)) = (it.next(), it.next()) else {
                continue;
            };
            let text = match v.tag {
                // BMPString
                0x1e => {
                    let u: Vec<u16> = v
                        .value
                        .chunks_exact(2)
                        .map(|c| u16::from_be_bytes([c[0], c[1]]))
                        .collect();
                    String::from_utf16_lossy(&u)
                }
                _ => util::text(v.value),
            };
            match oid(o.value).as_str() {
                "2.5.4.3" => cn.push(Json::from(text.to_lowercase())),
                "2.5.4.10" => on.push(Json::from(text)),
                "2.5.4.11" => ou.push(Json::from(text)),
                _ => {}
            }
        }
    }
    for (k, v) in [("CN", cn), ("ON", on), ("OU", ou)] {
        if !v.is_empty() {
            obj.insert(format!("{prefix}{k}"), Json::Array(v));
        }
    }
}

/// What a certificate adds: its `cert` object and tags.
pub struct CertInfo {
    /// The object for the `cert` array.
    pub object: Json,
    /// Tags (`cert:self-signed`, `cert:certificate-authority`).
    pub tags: Vec<&'static str>,
}

/// Reads one DER certificate; `now_secs` is the session's first packet
/// time (Arkime's "remaining" is counted from it).
pub fn certificate(der: &[u8], now_secs: i64, chain_len: usize) -> Option<CertInfo> {
    let (cert, _) = read(der)?;
    let mut top = children(cert.value);
    let tbs = top.next()?;
    let mut f = children(tbs.value).peekable();
    let mut obj = Map::new();
    let mut tags = Vec::new();
    obj.insert(
        "hash".into(),
        json!(util::hex_colon(&Sha1::digest(cert.raw))),
    );
    if f.peek().is_some_and(|t| t.tag == 0xa0) {
        f.next();
    }
    let serial = f.next()?;
    obj.insert("serial".into(), json!(util::hex(serial.value)));
    let _sigalg = f.next()?;
    let issuer = f.next()?;
    let validity = f.next()?;
    let subject = f.next()?;
    let spki = f.next()?;
    name_parts(issuer.value, &mut obj, "issuer");
    name_parts(subject.value, &mut obj, "subject");
    let mut v = children(validity.value);
    let nb = v.next().and_then(|t| time(t.tag, t.value));
    let na = v.next().and_then(|t| time(t.tag, t.value));
    if let (Some(nb), Some(na)) = (nb, na) {
        obj.insert("notBefore".into(), json!(nb * 1000));
        obj.insert("notAfter".into(), json!(na * 1000));
        obj.insert("validSeconds".into(), json!(na - nb));
        obj.insert("validDays".into(), json!((na - nb) / 86400));
        let rem = (na - now_secs).max(0);
        obj.insert("remainingSeconds".into(), json!(rem));
        obj.insert("remainingDays".into(), json!(rem / 86400));
    }
    let mut sp = children(spki.value);
    if let Some(alg) = sp.next() {
        let mut a = children(alg.value);
        if let Some(o) = a.next() {
            let name = match oid(o.value).as_str() {
                "1.2.840.113549.1.1.1" => "rsaEncryption".to_string(),
                "1.2.840.10045.2.1" => "id-ecPublicKey".to_string(),
                "1.2.840.10040.4.1" => "dsaEncryption".to_string(),
                "1.3.101.112" => "ED25519".to_string(),
                "1.3.101.113" => "ED448".to_string(),
                "1.2.840.113549.1.1.10" => "rsassaPss".to_string(),
                other => other.to_string(),
            };
            let is_ec = name == "id-ecPublicKey";
            obj.insert("publicAlgorithm".into(), json!(name));
            if is_ec {
                let curve = match a.next() {
                    Some(p) if p.tag == 6 => match oid(p.value).as_str() {
                        "1.2.840.10045.3.1.7" => "prime256v1".to_string(),
                        "1.3.132.0.34" => "secp384r1".to_string(),
                        "1.3.132.0.35" => "secp521r1".to_string(),
                        "1.3.132.0.10" => "secp256k1".to_string(),
                        "1.2.840.10045.3.1.1" => "prime192v1".to_string(),
                        "1.3.132.0.33" => "secp224r1".to_string(),
                        o => o.to_string(),
                    },
                    _ => "corrupt".to_string(),
                };
                obj.insert("curve".into(), json!(curve));
            }
        }
    }
    // Extensions: [3] { SEQUENCE { Extension... } }
    for t in f {
        if t.tag != 0xa3 {
            continue;
        }
        let Some((exts, _)) = read(t.value) else {
            continue;
        };
        for ext in children(exts.value) {
            let mut e = children(ext.value);
            let Some(id) = e.next() else { continue };
            let mut val = e.next();
            if val.is_some_and(|v| v.tag == 1) {
                val = e.next();
            }
            let Some(val) = val else { continue };
            match oid(id.value).as_str() {
                "2.5.29.17" => {
                    let mut alts = Vec::new();
                    if let Some((seq, _)) = read(val.value) {
                        for g in children(seq.value) {
                            if g.tag == 0x82 {
                                alts.push(Json::from(util::text(g.value).to_lowercase()));
                            }
                        }
                    }
                    if !alts.is_empty() {
                        obj.insert("altCnt".into(), json!(alts.len()));
                        obj.insert("alt".into(), Json::Array(alts));
                    }
                }
                "2.5.29.19" => {
                    if let Some((seq, _)) = read(val.value)
                        && let Some(first) = children(seq.value).next()
                        && first.tag == 1
                        && first.value.first().is_some_and(|&b| b != 0)
                    {
                        tags.push("cert:certificate-authority");
                    }
                }
                _ => {}
            }
        }
    }
    // Arkime calls a lone certificate naming itself as issuer self-signed,
    // and other CA certificates certificate authorities; a certificate
    // whose key parameters are broken gets neither.
    let corrupt = obj.get("curve").is_some_and(|c| c == "corrupt");
    let self_signed = chain_len == 1 && issuer.value == subject.value;
    if corrupt {
        tags.clear();
    } else if self_signed {
        tags.clear();
        tags.push("cert:self-signed");
    }
    Some(CertInfo {
        object: Json::Object(obj),
        tags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oid_and_time() {
        assert_eq!(
            oid(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]),
            "1.2.840.10045.2.1"
        );
        assert_eq!(time(23, b"180226152638Z"), Some(1519658798));
        assert_eq!(time(24, b"20180226152638Z"), Some(1519658798));
        assert_eq!(time(23, b"1802"), None);
    }

    #[test]
    fn hostile_der() {
        assert!(read(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_none());
        assert!(read(&[0x30]).is_none());
        assert!(certificate(&[0x30, 0x03, 0x30, 0x01, 0x00], 0, 1).is_none());
        let deep = vec![0x30u8, 0x80];
        assert!(certificate(&deep, 0, 1).is_none());
    }
}
