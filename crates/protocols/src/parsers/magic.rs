//! Arkime's "basic" body magic (`magicMode=basic`): a small table of
//! content types recognised from a body's first bytes.

use crate::ProtocolConfig;

/// Whether bodies get a magic at all: Arkime's `magicMode=none` turns it
/// off. Every other mode gives the basic table here (`libmagic`,
/// `libmagicnotext` and `both` would also ask libmagic, which moonwire
/// does not link).
pub fn enabled(config: &ProtocolConfig) -> bool {
    !config
        .get("magicMode")
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("none"))
}

/// The content type of a body from its first bytes, if known (bodies
/// shorter than 5 bytes are never typed).
pub fn basic(d: &[u8]) -> Option<&'static str> {
    if d.len() < 5 {
        return None;
    }
    let at = |off: usize, p: &[u8]| d.get(off..off + p.len()) == Some(p);
    // "_LEN" matches in Arkime also need one byte past the pattern.
    let at_len = |off: usize, p: &[u8]| d.len() > off + p.len() && at(off, p);
    let nocase = |off: usize, p: &[u8]| {
        d.get(off..off + p.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(p))
    };
    let nocase_len = |off: usize, p: &[u8]| d.len() > off + p.len() && nocase(off, p);
    let contains = |off: usize, p: &[u8]| {
        d.len() > off + p.len() && memchr::memmem::find(&d[off..], p).is_some()
    };
    let found = match d[0] {
        0 => {
            if d.len() > 10 && at(4, b"ftyp") && at(8, b"qt") {
                Some("video/quicktime")
            } else if d.len() > 10 && at(4, b"ftyp") && at(8, b"3g") {
                Some("video/3gpp")
            } else if at(0, b"\0\x01\0\0\0") {
                Some("application/x-font-ttf")
            } else if at_len(0, b"\0\0\x02\0\x01\0") {
                Some("image/x-win-bitmap")
            } else {
                None
            }
        }
        0x1a if at(0, b"\x1a\x45\xdf\xa3") => {
            if contains(4, b"webm") {
                Some("video/webm")
            } else if contains(4, b"matroska") {
                Some("video/x-matroska")
            } else {
                None
            }
        }
        0x1f if d[1] == 0x8b => Some("application/x-gzip"),
        0x1f if d[1] == 0x9d => Some("application/x-compress"),
        b'!' if at_len(1, b"<arch>\ndebian-binary") => Some("application/x-debian-package"),
        b'#' if d[1] == b'!' => Some(if contains(3, b"node") {
            "application/javascript"
        } else if contains(3, b"perl") {
            "text/x-perl"
        } else if contains(3, b"ruby") {
            "text/x-ruby"
        } else if contains(3, b"python") {
            "text/x-python"
        } else {
            "text/x-shellscript"
        }),
        b'%' if at(0, b"%PDF-") => Some("application/pdf"),
        b'<' => match d[1] {
            b'!' if nocase_len(0, b"<!doctype html") => Some("text/html"),
            b'!' if nocase_len(0, b"<!doctype svg") => Some("text/svg+xml"),
            b'?' if nocase(0, b"<?xml") => Some(if contains(5, b"<svg") {
                "image/svg+xml"
            } else {
                "text/xml"
            }),
            b'?' if nocase_len(2, b"php") || nocase_len(2, b" php") => Some("text/x-php"),
            b'b' | b'B' if nocase(0, b"<body") => Some("text/html"),
            b'h' | b'H' if nocase(0, b"<head") || nocase(0, b"<html") => Some("text/html"),
            b's' | b'S' if nocase(0, b"<svg") => Some("image/svg"),
            _ => None,
        },
        b'{' if d[1] == b'"' && d[2].is_ascii_alphabetic() => Some("application/json"),
        b'8' if at(0, b"8BPS") => Some("image/vnd.adobe.photoshop"),
        b'B' if d[1] == b'M' => Some("application/x-ms-bmp"),
        b'B' if at(0, b"BZh") => Some("application/x-bzip2"),
        b'C' if at(0, b"CWS") => Some("application/x-shockwave-flash"),
        b'F' if at(0, b"FLV\x01") => Some("video/x-flv"),
        b'G' if at(0, b"GIF8") => Some("image/gif"),
        b'G' if d.len() > 188 && d[2] == 0 && d[188] == b'G' => Some("video/mp2t"),
        b'i' if at(0, b"icns") => Some("image/x-icns"),
        b'I' if at(0, b"ID3") => Some("audio/mpeg"),
        b'M' if d[1] == b'Z' => Some("application/x-dosexec"),
        b'M' if at_len(0, b"MSCF\0\0") => Some("application/vnd.ms-cab-compressed"),
        b'O' if d.len() > 40 && at(0, b"OggS") => {
            if at(28, b"Speex   ") || at(29, b"FLAC") || at(28, b"\x01vorbis") {
                Some("audio/ogg")
            } else if at(28, b"\x80theora") {
                Some("video/ogg")
            } else {
                None
            }
        }
        b'O' if at(0, b"OTTO") => Some("application/vnd.ms-opentype"),
        b'P' if at(0, b"PK\x03\x04") || at(0, b"PK\x05\x06") || at_len(0, b"PK\x07\x08PK") => {
            Some("application/zip")
        }
        b'R' if at(0, b"RIFF") => Some("audio/x-wav"),
        b'R' if at(0, b"Rar!\x1a") => Some("application/x-rar"),
        b'W' if at(0, b"WAVE") => Some("audio/x-wav"),
        b'd' if at_len(0, b"d8:announce") => Some("application/x-bittorrent"),
        b'w' if at(0, b"wOFF") => Some("application/font-woff"),
        b'w' if at(0, b"wOF2") => Some("application/font-woff2"),
        0x89 if at(0, b"\x89PNG") => Some("image/png"),
        0xfd if at_len(0, b"\xfd7zXZ") => Some("application/x-xz"),
        0xff if d.len() > 10 && at(0, b"\xff\xd8\xff") => Some("image/jpeg"),
        0xed if d.len() > 10 && at(0, b"\xed\xab\xee\xdb") => Some("application/x-rpm"),
        _ => None,
    };
    if found.is_some() {
        return found;
    }
    if at_len(257, b"ustar") {
        return Some("application/x-tar");
    }
    // Searched in every body not typed above: the searchers are built once.
    static SCRIPT: std::sync::LazyLock<[memchr::memmem::Finder<'static>; 2]> =
        std::sync::LazyLock::new(|| {
            [
                memchr::memmem::Finder::new(b"document.write"),
                memchr::memmem::Finder::new(b"'use strict'"),
            ]
        });
    if SCRIPT
        .iter()
        .any(|f| d.len() > f.needle().len() && f.find(d).is_some())
    {
        return Some("text/javascript");
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn table() {
        assert_eq!(
            super::basic(b"\x1f\x8b\x08\x00\x00"),
            Some("application/x-gzip")
        );
        assert_eq!(super::basic(b"<HTML><body>"), Some("text/html"));
        assert_eq!(super::basic(b"  <html>"), None);
        assert_eq!(super::basic(b"<?xml version"), Some("text/xml"));
        assert_eq!(super::basic(b"hello"), None);
        assert_eq!(
            super::basic(b"x;document.write(1)"),
            Some("text/javascript")
        );
        assert_eq!(super::basic(b"'use strict'"), None);
        assert_eq!(super::basic(b"'use strict';"), Some("text/javascript"));
        assert_eq!(super::basic(b""), None);
    }
}
