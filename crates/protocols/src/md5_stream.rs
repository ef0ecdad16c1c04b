//! MD5 (RFC 1321) of streamed data, for HTTP body hashes: every body of
//! every HTTP message is hashed, which made MD5 the largest single cost of
//! a packet thread. The rounds use the boolean forms with the shortest
//! dependency on the newest state word (and round 2 adds its two halves
//! separately), which the general-purpose `md-5` crate does not.

/// Per-step additive constants: floor(|sin(i + 1)| * 2^32).
const K: [u32; 64] = [
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
];

const INIT: [u32; 4] = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];

/// An MD5 computation fed piece by piece.
#[derive(Clone)]
pub(crate) struct Md5 {
    state: [u32; 4],
    /// Bytes of an incomplete block.
    block: [u8; 64],
    filled: usize,
    /// Bytes fed so far.
    len: u64,
}

impl Default for Md5 {
    fn default() -> Self {
        Md5::new()
    }
}

impl Md5 {
    /// An empty computation.
    pub(crate) fn new() -> Md5 {
        Md5 {
            state: INIT,
            block: [0; 64],
            filled: 0,
            len: 0,
        }
    }

    /// Feeds more data.
    pub(crate) fn update(&mut self, mut data: &[u8]) {
        self.len = self.len.wrapping_add(data.len() as u64);
        if self.filled > 0 {
            let take = (64 - self.filled).min(data.len());
            self.block[self.filled..self.filled + take].copy_from_slice(&data[..take]);
            self.filled += take;
            data = &data[take..];
            if self.filled < 64 {
                return;
            }
            let block = self.block;
            compress(&mut self.state, &block);
            self.filled = 0;
        }
        let whole = data.len() / 64 * 64;
        compress(&mut self.state, &data[..whole]);
        let rest = &data[whole..];
        self.block[..rest.len()].copy_from_slice(rest);
        self.filled = rest.len();
    }

    /// The digest of everything fed.
    pub(crate) fn finalize(mut self) -> [u8; 16] {
        let bits = self.len.wrapping_mul(8);
        let mut pad = [0u8; 72];
        pad[0] = 0x80;
        // Pad to 56 bytes past a block boundary, then the bit length.
        let pad_len = if self.filled < 56 {
            56 - self.filled
        } else {
            120 - self.filled
        };
        self.update(&pad[..pad_len]);
        self.update(&bits.to_le_bytes());
        let mut out = [0u8; 16];
        for (o, s) in out.chunks_exact_mut(4).zip(self.state) {
            o.copy_from_slice(&s.to_le_bytes());
        }
        out
    }
}

/// Every whole 64-byte block of `blocks`, read in place, with the state
/// kept in registers from block to block.
fn compress(state: &mut [u32; 4], blocks: &[u8]) {
    let mut s = *state;
    for block in blocks.chunks_exact(64) {
        s = compress_block(s, block);
    }
    *state = s;
}

/// One block (`block` is 64 bytes).
#[inline(always)]
fn compress_block(state: [u32; 4], block: &[u8]) -> [u32; 4] {
    let mut m = [0u32; 16];
    for (w, c) in m.iter_mut().zip(block.chunks_exact(4)) {
        *w = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
    let [mut a, mut b, mut c, mut d] = state;
    // Each step: a = b + rotl(a + f(b, c, d) + k + m, s). The terms that
    // do not depend on b are added first.
    macro_rules! step {
        (F, $a:ident, $b:ident, $c:ident, $d:ident, $i:expr, $s:expr) => {
            $a = $a
                .wrapping_add(K[$i])
                .wrapping_add(m[$i])
                .wrapping_add($d ^ ($b & ($c ^ $d)))
                .rotate_left($s)
                .wrapping_add($b);
        };
        (G, $a:ident, $b:ident, $c:ident, $d:ident, $i:expr, $s:expr) => {
            $a = $a
                .wrapping_add(K[$i])
                .wrapping_add(m[(5 * $i + 1) % 16])
                .wrapping_add($c & !$d)
                .wrapping_add($b & $d)
                .rotate_left($s)
                .wrapping_add($b);
        };
        (H, $a:ident, $b:ident, $c:ident, $d:ident, $i:expr, $s:expr) => {
            $a = $a
                .wrapping_add(K[$i])
                .wrapping_add(m[(3 * $i + 5) % 16])
                .wrapping_add($b ^ $c ^ $d)
                .rotate_left($s)
                .wrapping_add($b);
        };
        (I, $a:ident, $b:ident, $c:ident, $d:ident, $i:expr, $s:expr) => {
            $a = $a
                .wrapping_add(K[$i])
                .wrapping_add(m[(7 * $i) % 16])
                .wrapping_add($c ^ ($b | !$d))
                .rotate_left($s)
                .wrapping_add($b);
        };
    }
    macro_rules! round {
        ($f:ident, $base:expr, $s0:expr, $s1:expr, $s2:expr, $s3:expr) => {
            step!($f, a, b, c, d, $base, $s0);
            step!($f, d, a, b, c, $base + 1, $s1);
            step!($f, c, d, a, b, $base + 2, $s2);
            step!($f, b, c, d, a, $base + 3, $s3);
            step!($f, a, b, c, d, $base + 4, $s0);
            step!($f, d, a, b, c, $base + 5, $s1);
            step!($f, c, d, a, b, $base + 6, $s2);
            step!($f, b, c, d, a, $base + 7, $s3);
            step!($f, a, b, c, d, $base + 8, $s0);
            step!($f, d, a, b, c, $base + 9, $s1);
            step!($f, c, d, a, b, $base + 10, $s2);
            step!($f, b, c, d, a, $base + 11, $s3);
            step!($f, a, b, c, d, $base + 12, $s0);
            step!($f, d, a, b, c, $base + 13, $s1);
            step!($f, c, d, a, b, $base + 14, $s2);
            step!($f, b, c, d, a, $base + 15, $s3);
        };
    }
    round!(F, 0, 7, 12, 17, 22);
    round!(G, 16, 5, 9, 14, 20);
    round!(H, 32, 4, 11, 16, 23);
    round!(I, 48, 6, 10, 15, 21);
    [
        state[0].wrapping_add(a),
        state[1].wrapping_add(b),
        state[2].wrapping_add(c),
        state[3].wrapping_add(d),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use md5::Digest;

    fn hex(d: [u8; 16]) -> String {
        d.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn digest(data: &[u8]) -> [u8; 16] {
        let mut h = Md5::new();
        h.update(data);
        h.finalize()
    }

    #[test]
    fn rfc_1321_test_suite() {
        for (input, want) in [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                "abcdefghijklmnopqrstuvwxyz",
                "c3fcd3d76192e4007dfb496cca67e13b",
            ),
            (
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                "d174ab98d277d9f5a5611c2c9f419d9f",
            ),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ] {
            assert_eq!(hex(digest(input.as_bytes())), want, "{input:?}");
        }
    }

    proptest::proptest! {
        /// Any data split anywhere hashes as the `md-5` crate hashes it
        /// whole (lengths around the 55/56/64-byte padding edges included).
        #[test]
        fn matches_the_md5_crate(data in proptest::collection::vec(proptest::num::u8::ANY, 0..300), cut in 0usize..300) {
            let cut = cut.min(data.len());
            let mut h = Md5::new();
            h.update(&data[..cut]);
            h.update(&data[cut..]);
            let want: [u8; 16] = md5::Md5::digest(&data).into();
            proptest::prop_assert_eq!(h.finalize(), want);
        }
    }

    #[test]
    fn every_length_near_the_padding_edges() {
        for n in 0..200 {
            let data: Vec<u8> = (0..n).map(|i| (i * 7 + 3) as u8).collect();
            let want: [u8; 16] = md5::Md5::digest(&data).into();
            assert_eq!(digest(&data), want, "length {n}");
            // Byte by byte, too.
            let mut h = Md5::new();
            for b in &data {
                h.update(std::slice::from_ref(b));
            }
            assert_eq!(h.finalize(), want, "length {n}, bytewise");
        }
    }
}
