//! Reader tests over hand-built pcap and pcapng bytes.

use pcapio::{CaptureReader, FileFormat, PcapWriter, ReadError};

fn pcap_le(nanos: bool, records: &[(u32, u32, &[u8])]) -> Vec<u8> {
    let mut v = Vec::new();
    let magic: u32 = if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
    v.extend_from_slice(&magic.to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&4u16.to_le_bytes());
    v.extend_from_slice(&[0; 8]);
    v.extend_from_slice(&65535u32.to_le_bytes());
    v.extend_from_slice(&1u32.to_le_bytes());
    for (s, f, d) in records {
        v.extend_from_slice(&s.to_le_bytes());
        v.extend_from_slice(&f.to_le_bytes());
        v.extend_from_slice(&(d.len() as u32).to_le_bytes());
        v.extend_from_slice(&(d.len() as u32 + 10).to_le_bytes());
        v.extend_from_slice(d);
    }
    v
}

#[test]
fn classic_pcap_offsets_and_times() {
    let bytes = pcap_le(false, &[(10, 5, b"abc"), (11, 999_999, b"defgh")]);
    let mut r = CaptureReader::new(&bytes[..]).unwrap();
    assert_eq!(
        r.format(),
        FileFormat::Pcap {
            nanos: false,
            big_endian: false
        }
    );
    let a = r.next_record().unwrap().unwrap();
    assert_eq!(
        (a.data, a.offset, a.ts_us, a.orig_len),
        (&b"abc"[..], 24, 10_000_005, 13)
    );
    let b = r.next_record().unwrap().unwrap();
    assert_eq!(
        (b.data, b.offset, b.ts_us),
        (&b"defgh"[..], 24 + 16 + 3, 11_999_999)
    );
    assert!(r.next_record().unwrap().is_none());
}

#[test]
fn nanosecond_pcap() {
    let bytes = pcap_le(true, &[(1, 123_456_789, b"x")]);
    let mut r = CaptureReader::new(&bytes[..]).unwrap();
    assert_eq!(r.next_record().unwrap().unwrap().ts_us, 1_123_456);
}

#[test]
fn big_endian_pcap() {
    let mut v = Vec::new();
    v.extend_from_slice(&0xa1b2_c3d4u32.to_be_bytes());
    v.extend_from_slice(&[0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0]);
    v.extend_from_slice(&65535u32.to_be_bytes());
    v.extend_from_slice(&101u32.to_be_bytes());
    v.extend_from_slice(&7u32.to_be_bytes());
    v.extend_from_slice(&8u32.to_be_bytes());
    v.extend_from_slice(&2u32.to_be_bytes());
    v.extend_from_slice(&2u32.to_be_bytes());
    v.extend_from_slice(b"hi");
    let mut r = CaptureReader::new(&v[..]).unwrap();
    let rec = r.next_record().unwrap().unwrap();
    assert_eq!(
        (rec.linktype, rec.ts_us, rec.data),
        (101, 7_000_008, &b"hi"[..])
    );
}

#[test]
fn truncated_record_is_an_error_then_end() {
    let mut bytes = pcap_le(false, &[(1, 0, b"abcdef"), (2, 0, b"ghijkl")]);
    bytes.truncate(bytes.len() - 3);
    let mut r = CaptureReader::new(&bytes[..]).unwrap();
    assert!(r.next_record().unwrap().is_some());
    match r.next_record() {
        Err(ReadError::Truncated {
            offset,
            wanted,
            have,
        }) => {
            assert_eq!((offset, wanted, have), (24 + 22, 22, 19));
        }
        other => panic!("{other:?}"),
    }
    assert!(r.next_record().unwrap().is_none());
}

#[test]
fn not_a_capture() {
    assert!(matches!(
        CaptureReader::new(&b"hello world"[..]),
        Err(ReadError::NotACapture(_))
    ));
    assert!(CaptureReader::new(&b""[..]).is_err());
}

fn block(t: u32, body: &[u8]) -> Vec<u8> {
    let len = 12 + body.len().div_ceil(4) * 4;
    let mut v = Vec::new();
    v.extend_from_slice(&t.to_le_bytes());
    v.extend_from_slice(&(len as u32).to_le_bytes());
    v.extend_from_slice(body);
    v.resize(len - 4, 0);
    v.extend_from_slice(&(len as u32).to_le_bytes());
    v
}

fn shb() -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes());
    b.extend_from_slice(&u64::MAX.to_le_bytes());
    block(0x0a0d_0d0a, &b)
}

fn idb(linktype: u16, tsresol: Option<u8>) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&linktype.to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    if let Some(r) = tsresol {
        b.extend_from_slice(&9u16.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&[r, 0, 0, 0]);
        b.extend_from_slice(&[0, 0, 0, 0]);
    }
    block(1, &b)
}

fn epb(iface: u32, ts: u64, data: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&iface.to_le_bytes());
    b.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
    b.extend_from_slice(&(ts as u32).to_le_bytes());
    b.extend_from_slice(&(data.len() as u32).to_le_bytes());
    b.extend_from_slice(&(data.len() as u32).to_le_bytes());
    b.extend_from_slice(data);
    block(6, &b)
}

#[test]
fn pcapng_interfaces_resolutions_and_sections() {
    let mut f = shb();
    f.extend(idb(1, None));
    f.extend(idb(101, Some(9)));
    let first_epb = f.len() as u64;
    f.extend(epb(0, 5_000_001, b"eth"));
    f.extend(epb(1, 2_000_000_123, b"raw"));
    f.extend(block(3, &{
        let mut b = 4u32.to_le_bytes().to_vec();
        b.extend_from_slice(b"spb!");
        b
    }));
    // A second section resets interfaces.
    f.extend(shb());
    f.extend(idb(113, Some(0x80 | 10)));
    f.extend(epb(0, 1024 * 3, b"sll"));
    let mut r = CaptureReader::new(&f[..]).unwrap();
    let a = r.next_record().unwrap().unwrap();
    assert_eq!(
        (a.linktype, a.ts_us, a.data, a.offset),
        (1, 5_000_001, &b"eth"[..], first_epb)
    );
    let b = r.next_record().unwrap().unwrap();
    assert_eq!(
        (b.linktype, b.ts_us, b.data, b.interface),
        (101, 2_000_000, &b"raw"[..], 1)
    );
    let c = r.next_record().unwrap().unwrap();
    assert_eq!((c.linktype, c.data), (1, &b"spb!"[..]));
    let d = r.next_record().unwrap().unwrap();
    assert_eq!((d.linktype, d.ts_us), (113, 3_000_000));
    assert!(r.next_record().unwrap().is_none());
}

#[test]
fn pcapng_unknown_interface_is_corrupt() {
    let mut f = shb();
    f.extend(epb(0, 1, b"x"));
    let mut r = CaptureReader::new(&f[..]).unwrap();
    assert!(matches!(r.next_record(), Err(ReadError::Corrupt { .. })));
}

#[test]
fn writer_round_trip() {
    let mut w = PcapWriter::new(Vec::new(), 1, 65535).unwrap();
    let p0 = w.write_packet(1_500_000, 60, b"first").unwrap();
    let p1 = w.write_packet(2_000_001, 6, b"second").unwrap();
    let bytes = w.into_inner().unwrap();
    let mut r = CaptureReader::new(&bytes[..]).unwrap();
    let a = r.next_record().unwrap().unwrap();
    assert_eq!(
        (a.offset, a.ts_us, a.orig_len, a.data),
        (p0, 1_500_000, 60, &b"first"[..])
    );
    let b = r.next_record().unwrap().unwrap();
    assert_eq!((b.offset, b.ts_us, b.data), (p1, 2_000_001, &b"second"[..]));
}

#[test]
fn large_records_grow_the_buffer() {
    let big = vec![7u8; 3 << 20];
    let bytes = pcap_le(false, &[(1, 0, &big), (2, 0, b"after")]);
    let mut r = CaptureReader::new(&bytes[..]).unwrap();
    assert_eq!(r.next_record().unwrap().unwrap().data.len(), 3 << 20);
    assert_eq!(r.next_record().unwrap().unwrap().data, b"after");
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// Arbitrary bytes never panic the reader, and it always ends.
        #[test]
        fn arbitrary_bytes_never_panic(prefix in prop::sample::select(vec![
            vec![0xd4u8, 0xc3, 0xb2, 0xa1], vec![0x0a, 0x0d, 0x0d, 0x0a], vec![0xa1, 0xb2, 0x3c, 0x4d]]),
            rest in prop::collection::vec(any::<u8>(), 0..2048)) {
            let mut bytes = prefix;
            bytes.extend(rest);
            if let Ok(mut r) = CaptureReader::new(&bytes[..]) {
                let mut n = 0;
                while let Ok(Some(_)) = r.next_record() {
                    n += 1;
                    prop_assert!(n < 10_000);
                }
            }
        }
    }
}
