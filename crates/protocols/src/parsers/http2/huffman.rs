//! HPACK's static Huffman code (RFC 7541 Appendix B), decoding only.
//!
//! The code is canonical: codes of one length are consecutive and follow
//! the order of their symbols, and each length starts where the shorter
//! ones ended. So the table here is just the code length of every symbol;
//! the codes themselves, and the per-length ranges the decoder walks, are
//! derived from it at compile time.

/// Code length in bits of each symbol 0..=255 and of EOS (256).
const LENGTHS: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, // 0x00
    28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, // 0x10
    6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, // 0x20
    5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, // 0x30
    13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, // 0x40
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, // 0x50
    15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, // 0x60
    6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, // 0x70
    20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, // 0x80
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, // 0x90
    22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, // 0xa0
    21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, // 0xb0
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, // 0xc0
    19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, // 0xd0
    20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, // 0xe0
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, // 0xf0
    30, // EOS
];

const EOS: u16 = 256;
const MAX_LEN: usize = 30;

/// Symbols ordered by (code length, symbol), with per-length ranges:
/// the codes of length `l` are `first[l] .. first[l] + count[l]` and
/// belong to `sorted[start[l] ..]`.
struct Canonical {
    sorted: [u16; 257],
    first: [u32; MAX_LEN + 1],
    count: [u16; MAX_LEN + 1],
    start: [u16; MAX_LEN + 1],
}

const fn canonical() -> Canonical {
    let mut count = [0u16; MAX_LEN + 1];
    let mut s = 0;
    while s < 257 {
        count[LENGTHS[s] as usize] += 1;
        s += 1;
    }
    let mut start = [0u16; MAX_LEN + 1];
    let mut first = [0u32; MAX_LEN + 1];
    let mut code = 0u32;
    let mut at = 0u16;
    let mut l = 1;
    while l <= MAX_LEN {
        code <<= 1;
        first[l] = code;
        start[l] = at;
        code += count[l] as u32;
        at += count[l];
        l += 1;
    }
    let mut sorted = [0u16; 257];
    let mut fill = start;
    let mut s = 0;
    while s < 257 {
        let l = LENGTHS[s] as usize;
        sorted[fill[l] as usize] = s as u16;
        fill[l] += 1;
        s += 1;
    }
    Canonical {
        sorted,
        first,
        count,
        start,
    }
}

static CODE: Canonical = canonical();

/// Why a Huffman string does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HuffmanError {
    /// The EOS symbol inside a string.
    Eos,
    /// Padding longer than 7 bits, or not made of 1 bits.
    BadPadding,
}

/// Appends the decoding of `src` to `out`.
pub fn decode(src: &[u8], out: &mut Vec<u8>) -> Result<(), HuffmanError> {
    // Each symbol takes at least 5 bits.
    out.reserve(src.len() * 8 / 5);
    let mut code = 0u32;
    let mut len = 0usize;
    for &byte in src {
        for bit in (0..8).rev() {
            code = code << 1 | u32::from(byte >> bit & 1);
            len += 1;
            // Offsets below `first` wrap to large values and fail the test.
            let idx = code.wrapping_sub(CODE.first[len]);
            if idx < u32::from(CODE.count[len]) {
                let sym = CODE.sorted[usize::from(CODE.start[len]) + idx as usize];
                if sym == EOS {
                    return Err(HuffmanError::Eos);
                }
                out.push(sym as u8);
                code = 0;
                len = 0;
            } else if len == MAX_LEN {
                // Unreachable for a complete code (every 30-bit pattern
                // holds a code); kept so a bad table cannot overrun.
                return Err(HuffmanError::Eos);
            }
        }
    }
    // What is left must be a prefix of EOS (all ones), shorter than a byte.
    if len > 7 || code != (1u32 << len) - 1 {
        return Err(HuffmanError::BadPadding);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The code of a symbol, rebuilt from the canonical ranges.
    fn code_of(sym: u16) -> (u32, usize) {
        let l = usize::from(LENGTHS[usize::from(sym)]);
        let base = usize::from(CODE.start[l]);
        let k = CODE.sorted[base..base + usize::from(CODE.count[l])]
            .iter()
            .position(|&s| s == sym)
            .unwrap();
        (CODE.first[l] + k as u32, l)
    }

    #[test]
    fn derived_codes_are_the_rfc_codes() {
        // A sample of Appendix B across every length.
        for (sym, code, len) in [
            (0u16, 0x1ff8u32, 13usize),
            (1, 0x7fffd8, 23),
            (10, 0x3ffffffc, 30),
            (b' '.into(), 0x14, 6),
            (b'0'.into(), 0x0, 5),
            (b'a'.into(), 0x3, 5),
            (b'&'.into(), 0xf8, 8),
            (b'<'.into(), 0x7ffc, 15),
            (b'\\'.into(), 0x7fff0, 19),
            (b'~'.into(), 0x1ffd, 13),
            (127, 0xffffffc, 28),
            (128, 0xfffe6, 20),
            (192, 0x3ffffe0, 26),
            (200, 0x3ffffe2, 26),
            (255, 0x3ffffee, 26),
            (EOS, 0x3fffffff, 30),
        ] {
            assert_eq!(code_of(sym), (code, len), "symbol {sym}");
        }
        // A complete prefix code: the lengths fill the code space exactly.
        let kraft: u64 = LENGTHS.iter().map(|&l| 1u64 << (30 - l)).sum();
        assert_eq!(kraft, 1 << 30);
    }

    /// Encodes with the derived codes, padding with ones.
    fn encode(s: &[u8]) -> Vec<u8> {
        let mut bits: Vec<bool> = Vec::new();
        for &sym in s {
            let (code, len) = code_of(sym.into());
            bits.extend((0..len).rev().map(|i| code >> i & 1 == 1));
        }
        while !bits.len().is_multiple_of(8) {
            bits.push(true);
        }
        bits.chunks(8)
            .map(|c| c.iter().fold(0u8, |b, &x| b << 1 | u8::from(x)))
            .collect()
    }

    #[test]
    fn every_symbol_round_trips() {
        let all: Vec<u8> = (0..=255u8).collect();
        let mut out = Vec::new();
        decode(&encode(&all), &mut out).unwrap();
        assert_eq!(out, all);
    }

    proptest::proptest! {
        #[test]
        fn strings_round_trip_and_noise_never_panics(
            s in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
            noise in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
        ) {
            let mut out = Vec::new();
            decode(&encode(&s), &mut out).unwrap();
            proptest::prop_assert_eq!(out, s);
            let mut out = Vec::new();
            if decode(&noise, &mut out).is_ok() {
                // What decodes is the string it encodes.
                proptest::prop_assert_eq!(encode(&out), noise);
            }
        }
    }

    #[test]
    fn rfc_examples() {
        // RFC 7541 C.4.1 and C.6.1.
        let mut out = Vec::new();
        decode(
            &[
                0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff,
            ],
            &mut out,
        )
        .unwrap();
        assert_eq!(out, b"www.example.com");
        out.clear();
        decode(&[0x64, 0x02], &mut out).unwrap();
        assert_eq!(out, b"302");
        out.clear();
        decode(&[], &mut out).unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn invalid_strings() {
        let mut out = Vec::new();
        // EOS itself (30 ones, then padding).
        assert_eq!(
            decode(&[0xff, 0xff, 0xff, 0xff], &mut out),
            Err(HuffmanError::Eos)
        );
        // Eight bits of padding.
        assert_eq!(decode(&[0xff], &mut out), Err(HuffmanError::BadPadding));
        // Padding with a zero bit: '0' (00000) then 000.
        assert_eq!(decode(&[0x00], &mut out), Err(HuffmanError::BadPadding));
        // 'a' (00011) then 111 is fine.
        out.clear();
        decode(&[0x1f], &mut out).unwrap();
        assert_eq!(out, b"a");
    }
}
