//! QUIC (IETF v1 and draft-29): decrypts the client's Initial packets with
//! the keys every observer can derive from the destination connection id
//! (RFC 9001 §5.2), reassembles the CRYPTO stream and reads the TLS
//! ClientHello in it: SNI, JA3 and JA4 (`q` transport).

use aes::cipher::{BlockEncrypt, KeyInit, generic_array::GenericArray};
use aes_gcm::Aes128Gcm;
use aes_gcm::aead::{Aead, Payload};
use hkdf::Hkdf;
use sha2::Sha256;

use super::tls;
use crate::Direction;
use crate::analyzer::{ParseContext, Parser, ParserStatus};
use crate::classify::{ClassifierSet, ClassifyAction, ClassifyContext};

const SALT_V1: [u8; 20] = [
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad,
    0xcc, 0xbb, 0x7f, 0x0a,
];
const SALT_DRAFT29: [u8; 20] = [
    0xaf, 0xbf, 0xec, 0x28, 0x99, 0x93, 0xd2, 0x4c, 0x9e, 0x97, 0x86, 0xf1, 0x9c, 0x61, 0x11, 0xe0,
    0x43, 0x90, 0xa8, 0x99,
];
/// Most CRYPTO bytes reassembled (a ClientHello fits easily).
const MAX_CRYPTO: usize = 16 * 1024;
/// Most Initial packets looked at.
const MAX_PACKETS: u32 = 16;

/// Registers the IETF QUIC classifier (a long-header Initial on UDP 443).
pub fn register(set: &mut ClassifierSet) {
    set.add_udp_port("quic", 443, ClassifyAction::Native(classify));
}

fn classify(cx: &mut ClassifyContext<'_>, data: &[u8], dir: Direction) {
    if dir != Direction::FromSource || data.len() < 20 {
        return;
    }
    let version = u32::from_be_bytes([data[1], data[2], data[3], data[4]]);
    if data[0] & 0xc0 == 0xc0 && version != 0 {
        cx.add_protocol("quic");
        if salt(version).is_some() && !cx.has_parser("quic") {
            cx.attach(Box::new(Quic::default()));
        }
        return;
    }
    // Google QUIC with a Q0xx version tag.
    if data[0] & 0x01 != 0 && data.len() > 13 && data[9] == b'Q' && data[10] == b'0' {
        cx.add_protocol("quic");
        if !cx.has_parser("gquic") {
            cx.attach(Box::new(GQuic { packets: 0 }));
        }
    }
}

/// Google QUIC (Q0xx): the plaintext client hello (`CHLO`) tags.
pub struct GQuic {
    packets: u32,
}

/// Reads a CHLO message: SNI, UAID; returns whether one was found.
fn chlo(o: &mut super::Out<'_, '_>, p: &[u8]) -> bool {
    let Some(at) = memchr::memmem::find(p, b"CHLO") else {
        return false;
    };
    let m = &p[at..];
    let Some(n) = super::util::le16(m, 4) else {
        return false;
    };
    let n = usize::from(n).min(64);
    let values = 8 + n * 8;
    let mut start = 0usize;
    for i in 0..n {
        let e = 8 + i * 8;
        let (Some(tag), Some(end)) = (m.get(e..e + 4), super::util::le32(m, e + 4)) else {
            return true;
        };
        let end = end as usize;
        let Some(v) = m.get(values + start..values + end) else {
            return true;
        };
        match tag {
            b"SNI\0" => {
                o.s("host.quic", &super::util::text(v));
            }
            b"UAID" => {
                o.s("quic.user-agent", &super::util::text(v));
            }
            _ => {}
        }
        start = end;
    }
    true
}

impl Parser for GQuic {
    fn name(&self) -> &'static str {
        "gquic"
    }

    fn parse(&mut self, cx: &mut ParseContext<'_>, dir: Direction, data: &[u8]) -> ParserStatus {
        if dir != Direction::FromSource {
            return ParserStatus::Continue;
        }
        self.packets += 1;
        let mut o = super::out(cx);
        if data.len() > 13 && data[0] & 0x01 != 0 {
            o.s("quic.version", &super::util::text(&data[9..13]));
        }
        if chlo(&mut o, data) || self.packets > MAX_PACKETS {
            return ParserStatus::Done;
        }
        ParserStatus::Continue
    }
}

fn salt(version: u32) -> Option<&'static [u8; 20]> {
    match version {
        1 => Some(&SALT_V1),
        0xff00_001d => Some(&SALT_DRAFT29),
        _ => None,
    }
}

fn expand_label(prk: &Hkdf<Sha256>, label: &[u8], out: &mut [u8]) -> Option<()> {
    let mut info = Vec::with_capacity(10 + label.len());
    info.extend_from_slice(&(out.len() as u16).to_be_bytes());
    info.push((6 + label.len()) as u8);
    info.extend_from_slice(b"tls13 ");
    info.extend_from_slice(label);
    info.push(0);
    prk.expand(&info, out).ok()
}

/// Client Initial key, IV and header-protection key for a connection id.
fn client_keys(version: u32, dcid: &[u8]) -> Option<([u8; 16], [u8; 12], [u8; 16])> {
    let (_, initial) = Hkdf::<Sha256>::extract(Some(salt(version)?), dcid);
    let mut client = [0u8; 32];
    expand_label(&initial, b"client in", &mut client)?;
    let prk = Hkdf::<Sha256>::from_prk(&client).ok()?;
    let (mut key, mut iv, mut hp) = ([0u8; 16], [0u8; 12], [0u8; 16]);
    expand_label(&prk, b"quic key", &mut key)?;
    expand_label(&prk, b"quic iv", &mut iv)?;
    expand_label(&prk, b"quic hp", &mut hp)?;
    Some((key, iv, hp))
}

fn varint(b: &[u8], at: usize) -> Option<(u64, usize)> {
    let first = *b.get(at)?;
    let len = 1usize << (first >> 6);
    let bytes = b.get(at..at + len)?;
    let mut v = u64::from(first & 0x3f);
    for &x in &bytes[1..] {
        v = (v << 8) | u64::from(x);
    }
    Some((v, at + len))
}

/// Decrypts one long-header Initial packet; returns its plaintext frames
/// and the length of the packet (coalesced packets follow).
fn decrypt_initial(p: &[u8]) -> Option<(Vec<u8>, usize)> {
    let first = *p.first()?;
    if first & 0xc0 != 0xc0 {
        return None;
    }
    let version = u32::from_be_bytes(p.get(1..5)?.try_into().ok()?);
    // Initial packets only (type 0 in v1 and the drafts).
    if (first >> 4) & 3 != 0 {
        return None;
    }
    let dlen = usize::from(*p.get(5)?);
    let dcid = p.get(6..6 + dlen)?;
    let mut at = 6 + dlen;
    let slen = usize::from(*p.get(at)?);
    at += 1 + slen;
    let (tlen, next) = varint(p, at)?;
    at = next + usize::try_from(tlen).ok()?;
    let (len, pn_at) = varint(p, at)?;
    let len = usize::try_from(len).ok()?;
    let end = pn_at.checked_add(len)?;
    if end > p.len() || len < 20 {
        return None;
    }
    let (key, iv, hp) = client_keys(version, dcid)?;
    let sample = p.get(pn_at + 4..pn_at + 20)?;
    let mut block = GenericArray::clone_from_slice(sample);
    aes::Aes128::new(GenericArray::from_slice(&hp)).encrypt_block(&mut block);
    let mut header = p[..pn_at + 4].to_vec();
    header[0] ^= block[0] & 0x0f;
    let pn_len = usize::from(header[0] & 3) + 1;
    let mut pn: u64 = 0;
    for i in 0..pn_len {
        header[pn_at + i] ^= block[1 + i];
        pn = (pn << 8) | u64::from(header[pn_at + i]);
    }
    header.truncate(pn_at + pn_len);
    let mut nonce = iv;
    for (i, b) in pn.to_be_bytes().iter().enumerate() {
        nonce[4 + i] ^= b;
    }
    let cipher = Aes128Gcm::new(GenericArray::from_slice(&key));
    let plain = cipher
        .decrypt(
            GenericArray::from_slice(&nonce),
            Payload {
                msg: &p[pn_at + pn_len..end],
                aad: &header,
            },
        )
        .ok()?;
    Some((plain, end))
}

/// The QUIC parser of one session: client Initial packets only.
#[derive(Default)]
pub struct Quic {
    /// CRYPTO stream pieces by offset.
    pieces: Vec<(u64, Vec<u8>)>,
    packets: u32,
    done: bool,
}

impl Quic {
    fn frames(&mut self, f: &[u8]) {
        let mut at = 0;
        while at < f.len() {
            let Some((t, next)) = varint(f, at) else {
                return;
            };
            at = next;
            match t {
                0x00 | 0x01 => {}
                0x02 | 0x03 => {
                    // ACK: largest, delay, range count, first range, ranges.
                    let Some((_, n)) = varint(f, at) else { return };
                    let Some((_, n)) = varint(f, n) else { return };
                    let Some((count, n)) = varint(f, n) else {
                        return;
                    };
                    let Some((_, mut n)) = varint(f, n) else {
                        return;
                    };
                    for _ in 0..count.min(256) {
                        let Some((_, a)) = varint(f, n) else { return };
                        let Some((_, b)) = varint(f, a) else { return };
                        n = b;
                    }
                    if t == 0x03 {
                        for _ in 0..3 {
                            let Some((_, a)) = varint(f, n) else { return };
                            n = a;
                        }
                    }
                    at = n;
                }
                0x06 => {
                    let Some((off, n)) = varint(f, at) else {
                        return;
                    };
                    let Some((len, n)) = varint(f, n) else { return };
                    let Ok(len) = usize::try_from(len) else {
                        return;
                    };
                    let Some(data) = f.get(n..n + len) else {
                        return;
                    };
                    if off as usize + len <= MAX_CRYPTO {
                        self.pieces.push((off, data.to_vec()));
                    }
                    at = n + len;
                }
                _ => return,
            }
        }
    }

    /// The contiguous CRYPTO stream from offset 0.
    fn stream(&self) -> Vec<u8> {
        let mut pieces: Vec<&(u64, Vec<u8>)> = self.pieces.iter().collect();
        pieces.sort_by_key(|p| p.0);
        let mut out: Vec<u8> = Vec::new();
        for (off, data) in pieces {
            let off = *off as usize;
            if off > out.len() {
                break;
            }
            let skip = out.len() - off;
            if skip < data.len() {
                out.extend_from_slice(&data[skip..]);
            }
        }
        out
    }
}

impl Parser for Quic {
    fn name(&self) -> &'static str {
        "quic"
    }

    fn parse(&mut self, cx: &mut ParseContext<'_>, dir: Direction, data: &[u8]) -> ParserStatus {
        if dir != Direction::FromSource || self.done {
            return ParserStatus::Continue;
        }
        self.packets += 1;
        if self.packets > MAX_PACKETS {
            return ParserStatus::Done;
        }
        let mut rest = data;
        while let Some((plain, used)) = decrypt_initial(rest) {
            self.frames(&plain);
            rest = &rest[used..];
        }
        let s = self.stream();
        if s.len() >= 4 && s[0] == 1 {
            let l = (usize::from(s[1]) << 16) | (usize::from(s[2]) << 8) | usize::from(s[3]);
            if s.len() >= 4 + l {
                if let Some(ch) = tls::client_hello(&s[4..4 + l], false) {
                    let fp = tls::Fingerprints::from_settings(cx.settings, true);
                    let mut o = super::out(cx);
                    tls::client_hello_fields(&mut o, &ch, 'q', fp);
                }
                self.done = true;
                return ParserStatus::Done;
            }
        }
        ParserStatus::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9001_client_keys() {
        // RFC 9001 Appendix A.1.
        let dcid = [0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08];
        let (key, iv, hp) = client_keys(1, &dcid).unwrap();
        assert_eq!(
            super::super::util::hex(&key),
            "1f369613dd76d5467730efcbe3b1a22d"
        );
        assert_eq!(super::super::util::hex(&iv), "fa044b2f42a3fd3b46fb255c");
        assert_eq!(
            super::super::util::hex(&hp),
            "9f50449e04a0e810283a1e9933adedd2"
        );
    }

    #[test]
    fn garbage_is_not_decrypted() {
        assert!(decrypt_initial(&[0xc0, 0, 0, 0, 1, 8]).is_none());
        let mut p = vec![
            0xc3, 0, 0, 0, 1, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0x40, 0x40,
        ];
        p.extend_from_slice(&[0u8; 80]);
        assert!(decrypt_initial(&p).is_none());
        assert!(varint(&[0xff], 0).is_none());
    }
}
