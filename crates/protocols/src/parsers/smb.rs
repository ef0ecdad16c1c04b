//! SMB 1 and SMB 2/3 over NetBIOS session framing (TCP 139/445): the
//! negotiated dialect, share paths of tree connects, file names of
//! creates/opens/deletes, the client's OS/version/domain/user strings of
//! session setups, and the NTLMSSP authenticate message inside a session
//! setup's security blob (`ntlm.*`, `user`).
//!
//! Arkime reads SMB with a small state machine per direction; this one
//! reads the same bytes the same way, including its quirks (a message's
//! strings are read from the message start to the end of the buffered
//! data; share names of SMB 2 tree connects are only decoded as UTF-16
//! when an SMB 1 header of the same direction said so).

use super::Out;
use super::der;
use super::util::{self, le16, le32};
use crate::Direction;
use crate::analyzer::{ParseContext, Parser, ParserStatus};
use crate::classify::{ClassifierSet, ClassifyAction, ClassifyContext};

/// Largest message read (and most bytes buffered per direction).
pub const MAX_MESSAGE: usize = 8192;
/// SMB 1 negotiate dialects remembered (to name the one chosen).
const MAX_DIALECTS: usize = 10;

/// Registers the SMB classifier (`SMB` after the NetBIOS header and the
/// version byte).
pub fn register(set: &mut ClassifierSet) {
    set.add_tcp("smb", 5, b"SMB", ClassifyAction::Native(classify));
}

fn classify(cx: &mut ClassifyContext<'_>, data: &[u8], _dir: Direction) {
    if !matches!(data.get(4), Some(0xff | 0xfe)) || cx.fields.has_protocol("smb") {
        return;
    }
    cx.add_protocol("smb");
    cx.attach(Box::new(Smb::default()));
}

/// Where a direction's state machine is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    /// Expecting the 4-byte NetBIOS session header.
    #[default]
    NetBios,
    /// Expecting the SMB header.
    Header,
    /// Skipping the rest of the message (`remlen` bytes).
    Skip,
    Smb1TreeConnect,
    Smb1Delete,
    Smb1Open,
    Smb1SessionSetup,
    Smb1NegotiateRequest,
    Smb1NegotiateResponse,
    Smb2TreeConnect,
    Smb2Create,
    Smb2Negotiate,
}

#[derive(Debug, Default)]
struct Side {
    buf: Vec<u8>,
    state: State,
    /// Bytes of the current message not yet consumed.
    remlen: usize,
    /// SMB 1 header flags2 (bit 15: strings are UTF-16).
    flags2: u16,
    /// First byte of the current SMB header (0xff: SMB 1).
    version: u8,
}

/// The SMB parser of one session.
#[derive(Debug, Default)]
pub struct Smb {
    side: [Side; 2],
    dialects: Vec<Vec<u8>>,
}

/// Bytes as UCS-2 little-endian text up to the first NUL; `None` when the
/// bytes are not whole UCS-2 characters (odd length, surrogates).
fn ucs2(b: &[u8]) -> Option<String> {
    if !b.len().is_multiple_of(2) {
        return None;
    }
    let mut s = String::with_capacity(b.len() / 2);
    let mut ended = false;
    for c in b.chunks_exact(2) {
        let u = u16::from_le_bytes([c[0], c[1]]);
        let ch = char::from_u32(u32::from(u))?;
        if ended {
            continue;
        }
        if ch == '\0' {
            ended = true;
        } else {
            s.push(ch);
        }
    }
    Some(s)
}

/// Adds a string of an SMB message: UTF-16 when `unicode`, otherwise the
/// bytes up to the first NUL.
fn add_string(o: &mut Out<'_, '_>, field: &'static str, b: &[u8], unicode: bool) {
    if b.is_empty() {
        return;
    }
    let s = if unicode {
        match ucs2(b) {
            Some(s) => s,
            None => return,
        }
    } else {
        util::text(&b[..memchr::memchr(0, b).unwrap_or(b.len())])
    };
    if !s.is_empty() {
        o.s(field, &s);
    }
}

/// The NUL-separated strings of a session setup's tail (decoded first
/// when `unicode`), the first `n`; a string is only complete when its NUL
/// is there.
fn nul_split(b: &[u8], unicode: bool, n: usize) -> Option<Vec<String>> {
    let text: Vec<char> = if unicode {
        if !b.len().is_multiple_of(2) {
            return None;
        }
        let mut out = Vec::with_capacity(b.len() / 2);
        for c in b.chunks_exact(2) {
            out.push(char::from_u32(u32::from(u16::from_le_bytes([c[0], c[1]])))?);
        }
        out
    } else {
        b.iter().map(|&c| c as char).collect()
    };
    let mut parts = Vec::new();
    let mut cur = String::new();
    for ch in text {
        if parts.len() == n {
            break;
        }
        if ch == '\0' {
            parts.push(std::mem::take(&mut cur));
        } else {
            cur.push(ch);
        }
    }
    Some(parts)
}

/// The NTLMSSP message inside a session setup's SPNEGO response token
/// (`[1] { SEQUENCE { [2] { OCTET STRING } } }`).
fn ntlmssp(blob: &[u8]) -> Option<&[u8]> {
    fn step(b: &[u8], tag: u8) -> Option<&[u8]> {
        let (t, _) = der::read_lenient(b)?;
        (t.tag & 0x1f == tag).then_some(t.value)
    }
    let v = step(blob, 1)?;
    let v = step(v, 16)?;
    let v = step(v, 2)?;
    let v = step(v, 4)?;
    (v.len() >= 7 && v.starts_with(b"NTLMSSP")).then_some(v)
}

/// An NTLMSSP message: its type; for an AUTHENTICATE message the domain,
/// user and workstation. A field whose length/offset lies outside the
/// message tags the session `smb:bad-security-blob` and is not read.
fn security_blob(o: &mut Out<'_, '_>, blob: &[u8]) {
    let Some(msg) = ntlmssp(blob) else {
        return;
    };
    let Some(kind) = le32(msg, 8) else {
        return;
    };
    o.protocol("ntlm");
    o.i("ntlm.type", i64::from(kind));
    if kind != 3 {
        return;
    }
    let mut fields = [None; 6];
    let mut bad = false;
    for (i, f) in fields.iter_mut().enumerate() {
        let at = 12 + i * 8;
        let (Some(len), Some(off)) = (le16(msg, at), le32(msg, at + 4)) else {
            bad = true;
            break;
        };
        let (len, off) = (usize::from(len), off as usize);
        if off > msg.len() || len > msg.len() - off {
            bad = true;
            continue;
        }
        *f = Some(&msg[off..off + len]);
    }
    if bad {
        o.tag("smb:bad-security-blob");
    }
    for (i, field) in [(2, "ntlm.domain"), (3, "user"), (4, "ntlm.host")] {
        if let Some(v) = fields[i] {
            add_string(o, field, v, true);
        }
    }
}

impl Smb {
    /// Runs the state machine over direction `d`'s buffer; false when the
    /// session should not be read further.
    fn run(&mut self, o: &mut Out<'_, '_>, d: usize) -> bool {
        let buf = std::mem::take(&mut self.side[d].buf);
        let mut at = 0;
        let ok = loop {
            let rest = &buf[at..];
            if rest.is_empty() {
                break true;
            }
            let step = self.step(o, d, rest);
            match step {
                Step::Consumed(n) => at += n,
                Step::NeedMore => break true,
                Step::Stop => break false,
            }
        };
        if ok {
            let mut buf = buf;
            buf.drain(..at);
            self.side[d].buf = buf;
        }
        ok
    }

    fn step(&mut self, o: &mut Out<'_, '_>, d: usize, b: &[u8]) -> Step {
        let side = &mut self.side[d];
        match side.state {
            State::NetBios => {
                if b.len() < 5 {
                    return Step::NeedMore;
                }
                side.remlen = usize::from(b[1]) << 16 | usize::from(b[2]) << 8 | usize::from(b[3]);
                if side.remlen < 32 {
                    side.state = State::Skip;
                } else {
                    side.version = b[4];
                    side.state = State::Header;
                }
                Step::Consumed(4)
            }
            State::Skip => {
                let n = side.remlen.min(b.len());
                side.remlen -= n;
                if side.remlen == 0 {
                    side.state = State::NetBios;
                }
                Step::Consumed(n)
            }
            // A message body is only read whole, from a bounded buffer.
            s if s != State::Header && side.remlen > MAX_MESSAGE => Step::Stop,
            _ if side.version == 0xff => self.smb1(o, d, b),
            _ => self.smb2(o, d, b),
        }
    }

    fn smb1(&mut self, o: &mut Out<'_, '_>, d: usize, b: &[u8]) -> Step {
        let side = &mut self.side[d];
        let unicode = side.flags2 & 0x8000 != 0;
        if side.state == State::Header {
            if b.len() < 32 {
                return Step::NeedMore;
            }
            let cmd = b[4];
            let reply = b[9] & 0x80 != 0;
            side.flags2 = le16(b, 10).unwrap_or(0);
            side.state = match (reply, cmd) {
                (false, 0x06) => State::Smb1Delete,
                (false, 0x2d) => State::Smb1Open,
                (false, 0x72) => State::Smb1NegotiateRequest,
                (false, 0x73) => State::Smb1SessionSetup,
                (false, 0x75) => State::Smb1TreeConnect,
                (false, 0xa2) => State::Smb1Open,
                (true, 0x72) => State::Smb1NegotiateResponse,
                _ => State::Skip,
            };
            side.remlen = side.remlen.saturating_sub(32);
            return Step::Consumed(32);
        }
        // Every body state reads a whole message; negotiates and session
        // setups split across segments end parsing (as in Arkime).
        if b.len() < side.remlen {
            return match side.state {
                State::Smb1NegotiateRequest
                | State::Smb1NegotiateResponse
                | State::Smb1SessionSetup => Step::Stop,
                _ => Step::NeedMore,
            };
        }
        let state = side.state;
        side.state = State::Skip;
        let used = match state {
            State::Smb1Open | State::Smb1Delete => {
                let Some(&wc) = b.first() else {
                    return Step::Stop;
                };
                let skip = 1 + usize::from(wc) * 2 + 3;
                let Some(name) = b.get(skip..) else {
                    return Step::Stop;
                };
                add_string(o, "smb.fn", name, unicode);
                skip
            }
            State::Smb1TreeConnect => {
                // The password length is read big-endian one byte early,
                // as Arkime does (right for lengths under 256).
                let Some(pass) = b
                    .get(6..8)
                    .map(|p| usize::from(p[0]) << 8 | usize::from(p[1]))
                else {
                    return Step::Stop;
                };
                let end = 8 + 2 + pass;
                let pad = if end % 2 == 0 { 2 } else { 1 };
                if end > b.len() || pad > b.len() - end {
                    return Step::Stop;
                }
                add_string(o, "smb.share", &b[end + pad..], unicode);
                end
            }
            State::Smb1SessionSetup => match self.session_setup(o, b, unicode) {
                Some(n) => n,
                None => return Step::Stop,
            },
            State::Smb1NegotiateRequest => {
                // Word count, then only the low byte of the byte count.
                if b.get(1).is_some_and(|&c| c > 0) {
                    self.negotiate_request(&b[2..]);
                }
                2.min(b.len())
            }
            State::Smb1NegotiateResponse => {
                if let (Some(&wc), Some(&i)) = (b.first(), b.get(1))
                    && wc >= 13
                    && let Some(name) = self.dialects.get(usize::from(i))
                {
                    o.scalar("smb.dialect", util::text(name).into());
                }
                2.min(b.len())
            }
            _ => 0,
        };
        let side = &mut self.side[d];
        side.remlen = side.remlen.saturating_sub(used);
        Step::Consumed(used)
    }

    /// SESSION_SETUP_ANDX request words and strings; the bytes used.
    fn session_setup(&mut self, o: &mut Out<'_, '_>, b: &[u8], unicode: bool) -> Option<usize> {
        let wc = *b.first()?;
        match wc {
            12 => {
                let sec = usize::from(le16(b, 15).unwrap_or(0));
                let start = 27;
                if start > b.len() || sec > b.len() - start {
                    return None;
                }
                security_blob(o, &b[start..start + sec]);
                let mut at = start + sec;
                at += at % 2;
                if at <= b.len() {
                    let parts = nul_split(&b[at..], unicode, 3).unwrap_or_default();
                    for (p, field) in parts.iter().zip(["smb.os", "smb.ver", "smb.domain"]) {
                        if !p.is_empty() {
                            o.s(field, p);
                        }
                    }
                }
                Some(at.min(b.len()))
            }
            13 => {
                let ansi = usize::from(le16(b, 15).unwrap_or(0));
                let uni = usize::from(le16(b, 17).unwrap_or(0));
                let mut at = 19 + 10 + ansi + uni;
                at += at % 2;
                if at <= b.len() {
                    let parts = nul_split(&b[at..], unicode, 4).unwrap_or_default();
                    let names = ["smb.user", "smb.domain", "smb.os", "smb.ver"];
                    for (p, field) in parts.iter().zip(names) {
                        if !p.is_empty() {
                            o.s(field, p);
                        }
                    }
                }
                Some(at.min(b.len()))
            }
            _ => Some(1),
        }
    }

    /// The dialect strings of an SMB 1 negotiate request (each after a
    /// one-byte buffer format; the first read from one byte earlier).
    fn negotiate_request(&mut self, mut b: &[u8]) {
        while self.dialects.len() < MAX_DIALECTS && !b.is_empty() {
            b = &b[1..];
            let Some(nul) = memchr::memchr(0, b) else {
                break;
            };
            self.dialects.push(b[..nul].to_vec());
            b = &b[nul + 1..];
        }
    }

    fn smb2(&mut self, o: &mut Out<'_, '_>, d: usize, b: &[u8]) -> Step {
        let side = &mut self.side[d];
        if side.state == State::Header {
            if b.len() < 64 {
                return Step::NeedMore;
            }
            let cmd = le16(b, 12).unwrap_or(0);
            let from_server = le16(b, 16).unwrap_or(0) & 1 != 0;
            side.state = match (from_server, cmd) {
                (false, 3) => State::Smb2TreeConnect,
                (false, 5) => State::Smb2Create,
                (true, 0) => State::Smb2Negotiate,
                _ => State::Skip,
            };
            side.remlen = side.remlen.saturating_sub(64);
            return Step::Consumed(64);
        }
        if b.len() < side.remlen {
            return Step::NeedMore;
        }
        let unicode = side.flags2 & 0x8000 != 0;
        let state = side.state;
        side.state = State::Skip;
        let used = match state {
            State::Smb2Negotiate => {
                if let Some(dialect) = le16(b, 4)
                    && dialect != 0
                    && dialect != 0x02ff
                {
                    let v = format!(
                        "SMB {}.{}.{}",
                        (dialect >> 8) & 0xf,
                        (dialect >> 4) & 0xf,
                        dialect & 0xf
                    );
                    o.scalar("smb.dialect", v.into());
                }
                6.min(b.len())
            }
            State::Smb2TreeConnect => {
                let off = usize::from(le16(b, 4).unwrap_or(0));
                let len = usize::from(le16(b, 6).unwrap_or(0));
                // Offsets count from the SMB 2 header (64) plus these words (8).
                if off < 72 {
                    8.min(b.len())
                } else {
                    let at = 8 + off - 72;
                    if at > b.len() {
                        return Step::Stop;
                    }
                    if len <= b.len() - at {
                        add_string(o, "smb.share", &b[at..at + len], unicode);
                    }
                    at
                }
            }
            State::Smb2Create => {
                let off = usize::from(le16(b, 44).unwrap_or(0));
                let len = usize::from(le16(b, 46).unwrap_or(0));
                if off < 112 {
                    48.min(b.len())
                } else {
                    let at = 48 + off - 112;
                    if at > b.len() {
                        return Step::Stop;
                    }
                    if len <= b.len() - at {
                        add_string(o, "smb.fn", &b[at..at + len], true);
                    }
                    at
                }
            }
            _ => 0,
        };
        let side = &mut self.side[d];
        side.remlen = side.remlen.saturating_sub(used);
        Step::Consumed(used)
    }
}

enum Step {
    Consumed(usize),
    NeedMore,
    Stop,
}

impl Parser for Smb {
    fn name(&self) -> &'static str {
        "smb"
    }

    fn parse(&mut self, cx: &mut ParseContext<'_>, dir: Direction, data: &[u8]) -> ParserStatus {
        let d = dir.index();
        let mut o = super::out(cx);
        let mut rest = data;
        // Fill the buffer up to a message's worth at a time, as Arkime's
        // fixed buffer does, so no more than MAX_MESSAGE is ever kept.
        while !rest.is_empty() {
            let room = if self.side[d].buf.is_empty() {
                rest.len()
            } else {
                MAX_MESSAGE
                    .saturating_sub(self.side[d].buf.len())
                    .min(rest.len())
            };
            if room == 0 {
                return ParserStatus::Done;
            }
            self.side[d].buf.extend_from_slice(&rest[..room]);
            rest = &rest[room..];
            if !self.run(&mut o, d) {
                return ParserStatus::Done;
            }
            if self.side[d].buf.len() > MAX_MESSAGE {
                return ParserStatus::Done;
            }
        }
        ParserStatus::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::Harness;
    use serde_json::json;

    fn utf16(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(u16::to_le_bytes).collect()
    }

    /// A NetBIOS-framed SMB 1 message.
    fn smb1(cmd: u8, reply: bool, body: &[u8]) -> Vec<u8> {
        let mut h = vec![0xff, b'S', b'M', b'B', cmd, 0, 0, 0, 0];
        h.push(if reply { 0x88 } else { 0x08 });
        h.extend_from_slice(&0xc801u16.to_le_bytes());
        h.resize(32, 0);
        h.extend_from_slice(body);
        let mut m = (h.len() as u32).to_be_bytes().to_vec();
        m.extend_from_slice(&h);
        m
    }

    fn negotiate() -> Vec<u8> {
        let mut b = vec![0, 0, 0];
        for d in ["PC NETWORK PROGRAM 1.0", "LANMAN1.0", "NT LM 0.12"] {
            b.push(2);
            b.extend_from_slice(d.as_bytes());
            b.push(0);
        }
        b[1] = (b.len() - 3) as u8;
        smb1(0x72, false, &b)
    }

    #[test]
    fn smb1_session() {
        let mut h = Harness::tcp(445);
        let mut rsp = vec![17, 2, 0];
        rsp.resize(40, 0);
        // Session setup (word count 13) with user, domain, OS, version.
        let mut ss = vec![13];
        ss.extend_from_slice(&[0; 14]);
        ss.extend_from_slice(&1u16.to_le_bytes());
        ss.extend_from_slice(&0u16.to_le_bytes());
        ss.extend_from_slice(&[0; 10]);
        ss.push(0); // password
        for s in ["bob", "WORKGROUP", "Unix", "Samba 4"] {
            ss.extend_from_slice(&utf16(s));
            ss.extend_from_slice(&[0, 0]);
        }
        // Tree connect to a share, then an open of a file.
        let mut tc = vec![4, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 0];
        tc.push(0);
        tc.extend_from_slice(&utf16("\\\\H\\SHARE"));
        tc.extend_from_slice(&[0, 0, b'?', b'?', b'?', b'?', b'?', 0]);
        let mut op = vec![1, 0, 0, 0, 0, 0];
        op.extend_from_slice(&utf16("\\dir\\f.txt"));
        op.extend_from_slice(&[0, 0]);
        // Two messages in one segment (the dialect list is read on into
        // the next message, as Arkime does), then one split in two. UTF-16
        // strings run to the end of the buffered data, so messages with
        // strings come one per segment here.
        let mut seg = negotiate();
        seg.extend_from_slice(&smb1(0x73, false, &ss));
        h.feed(0, &seg);
        h.feed(1, &smb1(0x72, true, &rsp));
        h.feed(0, &smb1(0x75, false, &tc));
        let o = smb1(0x2d, false, &op);
        h.feed(0, &o[..10]);
        h.feed(0, &o[10..]);
        let j = h.json();
        assert_eq!(j["protocol"], json!(["smb"]));
        assert_eq!(j["smb"]["dialect"], json!("NT LM 0.12"));
        assert_eq!(j["smb"]["user"], json!(["bob"]));
        assert_eq!(j["smb"]["domain"], json!(["WORKGROUP"]));
        assert_eq!(j["smb"]["os"], json!(["Unix"]));
        assert_eq!(j["smb"]["version"], json!(["Samba 4"]));
        assert_eq!(j["smb"]["share"], json!(["\\\\H\\SHARE"]));
        assert_eq!(j["smb"]["filename"], json!(["\\dir\\f.txt"]));
    }

    fn ntlm_auth(domain: &str, user: &str, host: &str, bad_lm: bool) -> Vec<u8> {
        let mut m = b"NTLMSSP\0".to_vec();
        m.extend_from_slice(&3u32.to_le_bytes());
        let payload = [utf16(domain), utf16(user), utf16(host)];
        let mut off = 12 + 6 * 8 + 8;
        let mut descs = Vec::new();
        let lens = [
            0,
            0,
            payload[0].len(),
            payload[1].len(),
            payload[2].len(),
            0,
        ];
        for (i, len) in lens.iter().enumerate() {
            let (l, o) = if i == 0 && bad_lm {
                (0xffff, 0xf8ff_ffff)
            } else {
                (*len as u32, off as u32)
            };
            descs.extend_from_slice(&(l as u16).to_le_bytes());
            descs.extend_from_slice(&(l as u16).to_le_bytes());
            descs.extend_from_slice(&o.to_le_bytes());
            if (2..=4).contains(&i) {
                off += len;
            }
        }
        m.extend_from_slice(&descs);
        m.extend_from_slice(&[0; 8]);
        for p in &payload {
            m.extend_from_slice(p);
        }
        let der = |tag: u8, v: &[u8]| {
            let mut out = vec![tag, 0x81, v.len() as u8];
            out.extend_from_slice(v);
            out
        };
        der(0xa1, &der(0x30, &der(0xa2, &der(0x04, &m))))
    }

    fn setup12(blob: &[u8]) -> Vec<u8> {
        let mut ss = vec![12];
        ss.extend_from_slice(&[0; 14]);
        ss.extend_from_slice(&(blob.len() as u16).to_le_bytes());
        ss.extend_from_slice(&[0; 10]);
        ss.extend_from_slice(blob);
        if ss.len() % 2 == 1 {
            ss.push(0);
        }
        for s in ["Unix", "Samba", "DOM"] {
            ss.extend_from_slice(&utf16(s));
            ss.extend_from_slice(&[0, 0]);
        }
        smb1(0x73, false, &ss)
    }

    #[test]
    fn parse_smb_false_leaves_smb_unparsed() {
        let mut h = Harness::with_setting(crate::Transport::Tcp, 445, "parseSMB", Some("false"));
        h.feed(0, &setup12(&ntlm_auth("D", "administrator", "BLU", true)));
        let j = h.json();
        assert_eq!(j["protocol"], json!([]), "{j}");
        assert!(j.get("smb").is_none() && j.get("ntlm").is_none(), "{j}");
    }

    #[test]
    fn ntlmssp_authenticate() {
        let mut h = Harness::tcp(445);
        h.feed(0, &setup12(&ntlm_auth("D", "administrator", "BLU", true)));
        let j = h.json();
        assert_eq!(j["protocol"], json!(["smb", "ntlm"]));
        assert_eq!(j["ntlm"]["type"], json!([3]));
        assert_eq!(j["ntlm"]["host"], json!(["BLU"]));
        assert_eq!(j["ntlm"]["domain"], json!(["D"]));
        assert_eq!(j["user"], json!(["administrator"]));
        assert_eq!(j["tags"], json!(["smb:bad-security-blob"]));
        assert_eq!(j["smb"]["os"], json!(["Unix"]));
        assert_eq!(j["smb"]["domain"], json!(["DOM"]));
    }

    #[test]
    fn smb2_negotiate_tree_create() {
        let hdr = |cmd: u16, server: bool, body: &[u8]| {
            let mut h = vec![0xfe, b'S', b'M', b'B'];
            h.resize(12, 0);
            h.extend_from_slice(&cmd.to_le_bytes());
            h.extend_from_slice(&[0, 0]);
            h.extend_from_slice(&u32::from(server).to_le_bytes());
            h.resize(64, 0);
            h.extend_from_slice(body);
            let mut m = (h.len() as u32).to_be_bytes().to_vec();
            m.extend_from_slice(&h);
            m
        };
        let mut h = Harness::tcp(445);
        let path = utf16("\\\\srv\\IPC$");
        let mut tc = vec![9, 0, 0, 0, 72, 0, path.len() as u8, 0];
        tc.extend_from_slice(&path);
        h.feed(0, &hdr(3, false, &tc));
        let name = utf16("a\\b.txt");
        let mut cr = vec![0; 44];
        cr.extend_from_slice(&112u16.to_le_bytes());
        cr.extend_from_slice(&(name.len() as u16).to_le_bytes());
        cr.extend_from_slice(&name);
        h.feed(0, &hdr(5, false, &cr));
        h.feed(1, &hdr(0, true, &[65, 0, 1, 0, 0x11, 0x03, 0, 0]));
        let j = h.json();
        assert_eq!(j["smb"]["dialect"], json!("SMB 3.1.1"));
        assert_eq!(j["smb"]["filename"], json!(["a\\b.txt"]));
        // Without an SMB 1 header saying UTF-16, the path is read as bytes.
        assert_eq!(j["smb"]["share"], json!(["\\"]));
    }

    #[test]
    fn hostile_messages_are_bounded() {
        // A message longer than the buffer ends parsing.
        let mut h = Harness::tcp(445);
        let mut m = vec![0x00, 0x01, 0x00, 0x00, 0xff, b'S', b'M', b'B', 0x73];
        m.resize(40, 0);
        h.feed(0, &m);
        assert!(h.app.parser_names().is_empty());
        // Counts and lengths past the end never panic.
        let mut h = Harness::tcp(445);
        h.feed(0, &smb1(0x73, false, &[12, 0xff, 0xff, 0xff]));
        h.feed(0, &smb1(0x2d, false, &[0xff]));
        let mut h = Harness::tcp(445);
        h.feed(0, &smb1(0x75, false, &[4, 0, 0, 0, 0, 0, 0xff, 0xff]));
        let mut h = Harness::tcp(445);
        h.feed(0, &setup12(&[0xa1, 0x84, 0xff, 0xff, 0xff, 0xff]));
        h.feed(0, &negotiate()[..20]);
        let mut t = ntlm_auth("", "", "", false);
        let n = t.len();
        t.truncate(n - 3);
        h.feed(0, &setup12(&t));
    }
}
