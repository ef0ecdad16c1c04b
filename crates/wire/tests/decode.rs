//! Decoder tests over literal packets built layer by layer.

use std::net::IpAddr;

use wire::{DecodeErrorKind, Decoded, DefragOutcome, Defragmenter, Transport, decode};

const SRC_MAC: [u8; 6] = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55];
const DST_MAC: [u8; 6] = [0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb];

fn eth(et: u16, body: &[u8]) -> Vec<u8> {
    let mut v = DST_MAC.to_vec();
    v.extend_from_slice(&SRC_MAC);
    v.extend_from_slice(&et.to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn ipv4(proto: u8, src: [u8; 4], dst: [u8; 4], body: &[u8]) -> Vec<u8> {
    ipv4_frag(proto, src, dst, 7, 0, false, body)
}

fn ipv4_frag(
    proto: u8,
    src: [u8; 4],
    dst: [u8; 4],
    id: u16,
    off: u16,
    more: bool,
    body: &[u8],
) -> Vec<u8> {
    let mut v = vec![0x45, 0xb8];
    v.extend_from_slice(&((20 + body.len()) as u16).to_be_bytes());
    v.extend_from_slice(&id.to_be_bytes());
    let f = (off / 8) | if more { 0x2000 } else { 0 };
    v.extend_from_slice(&f.to_be_bytes());
    v.extend_from_slice(&[64, proto, 0, 0]);
    v.extend_from_slice(&src);
    v.extend_from_slice(&dst);
    v.extend_from_slice(body);
    v
}

fn ipv6(next: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![0x60, 0, 0, 0];
    v.extend_from_slice(&(body.len() as u16).to_be_bytes());
    v.extend_from_slice(&[next, 33]);
    let mut a = [0u8; 16];
    a[0] = 0x20;
    a[1] = 0x01;
    a[15] = 1;
    v.extend_from_slice(&a);
    a[15] = 2;
    v.extend_from_slice(&a);
    v.extend_from_slice(body);
    v
}

fn tcp(sport: u16, dport: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&sport.to_be_bytes());
    v.extend_from_slice(&dport.to_be_bytes());
    v.extend_from_slice(&1000u32.to_be_bytes());
    v.extend_from_slice(&2000u32.to_be_bytes());
    v.extend_from_slice(&[0x50, flags, 0x10, 0x00, 0, 0, 0, 0]);
    v.extend_from_slice(payload);
    v
}

fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&sport.to_be_bytes());
    v.extend_from_slice(&dport.to_be_bytes());
    v.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(payload);
    v
}

fn ip(a: [u8; 4]) -> IpAddr {
    IpAddr::from(a)
}

#[test]
fn ethernet_ipv4_tcp() {
    let mut pkt = eth(
        0x0800,
        &ipv4(
            6,
            [10, 0, 0, 1],
            [10, 0, 0, 2],
            &tcp(1234, 80, 0x18, b"GET /"),
        ),
    );
    pkt.extend_from_slice(&[0; 6]); // Ethernet padding is not payload.
    let mut d = Decoded::default();
    decode(1, &pkt, &mut d).unwrap();
    assert_eq!(d.ethertype, 0x0800);
    assert_eq!(d.src_mac, Some(SRC_MAC));
    assert_eq!(d.dst_mac, Some(DST_MAC));
    let n = d.network.unwrap();
    assert_eq!(
        (n.src, n.dst, n.proto, n.ttl, n.tos >> 2),
        (ip([10, 0, 0, 1]), ip([10, 0, 0, 2]), 6, 64, 46)
    );
    match d.transport {
        Transport::Tcp(t) => {
            assert_eq!(
                (t.src_port, t.dst_port, t.seq, t.ack, t.flags),
                (1234, 80, 1000, 2000, 0x18)
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(d.payload(&pkt), b"GET /");
}

#[test]
fn vlan_and_qinq() {
    let inner = ipv4(17, [1, 1, 1, 1], [2, 2, 2, 2], &udp(5, 6, b"x"));
    let mut body = vec![0x00, 30, 0x81, 0x00, 0x05, 0xf5, 0x08, 0x00];
    body.extend_from_slice(&inner);
    let pkt = eth(0x88a8, &body);
    let mut d = Decoded::default();
    decode(1, &pkt, &mut d).unwrap();
    assert_eq!(d.dot1ad, Some(30));
    assert_eq!(d.vlan_ids(), &[1525]);
    assert_eq!(d.ports(), Some((5, 6)));
}

#[test]
fn ipv6_extension_headers_udp() {
    // Hop-by-hop (8 bytes) then UDP.
    let mut ext = vec![17, 0, 0, 0, 0, 0, 0, 0];
    ext.extend_from_slice(&udp(53, 9999, b"dns"));
    let pkt = eth(0x86dd, &ipv6(0, &ext));
    let mut d = Decoded::default();
    decode(1, &pkt, &mut d).unwrap();
    assert_eq!(d.ethertype, 0x86dd);
    let n = d.network.unwrap();
    assert_eq!((n.proto, n.ttl, n.header_len), (17, 33, 48));
    assert_eq!(d.payload(&pkt), b"dns");
}

#[test]
fn gre_erspan2_sets_outer_addresses() {
    let inner = eth(
        0x0800,
        &ipv4(6, [192, 168, 0, 1], [192, 168, 0, 2], &tcp(1, 2, 0x02, b"")),
    );
    let mut gre = vec![0x10, 0x00, 0x88, 0xbe, 0, 0, 0, 1]; // S bit, seq
    gre.extend_from_slice(&[0x10, 0, 0, 1, 0, 0, 0, 0]); // ERSPAN II header
    gre.extend_from_slice(&inner);
    let mut outer_eth = eth(0x0800, &ipv4(47, [10, 1, 1, 1], [10, 2, 2, 2], &gre));
    outer_eth[0] = 0xee;
    let mut d = Decoded::default();
    decode(1, &outer_eth, &mut d).unwrap();
    let n = d.network.unwrap();
    assert_eq!(n.src, ip([192, 168, 0, 1]));
    let o = d.outer_layers()[0];
    assert_eq!(
        (o.src_ip, o.dst_ip),
        (Some(ip([10, 1, 1, 1])), Some(ip([10, 2, 2, 2])))
    );
    assert_eq!(o.dst_mac.unwrap()[0], 0xee);
    assert_eq!(d.dst_mac, Some(DST_MAC));
}

#[test]
fn gre_ipv4_keeps_macs() {
    let inner = ipv4(17, [3, 3, 3, 3], [4, 4, 4, 4], &udp(7, 8, b"hi"));
    let mut gre = vec![0x00, 0x00, 0x08, 0x00];
    gre.extend_from_slice(&inner);
    let pkt = eth(0x0800, &ipv4(47, [1, 0, 0, 1], [1, 0, 0, 2], &gre));
    let mut d = Decoded::default();
    decode(1, &pkt, &mut d).unwrap();
    assert_eq!(d.network.unwrap().dst, ip([4, 4, 4, 4]));
    assert_eq!(d.outer_count, 1);
    assert_eq!(d.src_mac, Some(SRC_MAC));
    assert_eq!(d.outer_layers()[0].src_mac, None);
}

#[test]
fn vxlan_and_geneve() {
    let inner = eth(
        0x0800,
        &ipv4(17, [9, 9, 9, 9], [8, 8, 8, 8], &udp(1000, 53, b"q")),
    );
    let mut vx = vec![0x08, 0, 0, 0, 0, 0x01, 0x02, 0];
    vx.extend_from_slice(&inner);
    let pkt = eth(
        0x0800,
        &ipv4(17, [1, 1, 1, 1], [2, 2, 2, 2], &udp(40000, 4789, &vx)),
    );
    let mut d = Decoded::default();
    decode(1, &pkt, &mut d).unwrap();
    assert_eq!(d.vni, Some(0x102));
    assert_eq!(d.tunnel_names().collect::<Vec<_>>(), vec!["vxlan"]);
    assert_eq!(d.ethertype, 0x0800);
    assert_eq!(d.network.unwrap().src, ip([9, 9, 9, 9]));
    assert_eq!(d.ports(), Some((1000, 53)));

    let mut gn = vec![0x00, 0x00, 0x65, 0x58, 0, 0, 0x07, 0];
    gn.extend_from_slice(&inner);
    let pkt = eth(
        0x0800,
        &ipv4(17, [1, 1, 1, 1], [2, 2, 2, 2], &udp(40000, 6081, &gn)),
    );
    decode(1, &pkt, &mut d).unwrap();
    assert_eq!(d.vni, Some(7));
    assert_eq!(d.payload(&pkt), b"q");
}

#[test]
fn gtp_u_gpdu_and_control() {
    let inner = ipv4(
        6,
        [10, 10, 0, 1],
        [10, 10, 0, 2],
        &tcp(5555, 443, 0x02, b""),
    );
    let mut gtp = vec![0x30, 0xff];
    gtp.extend_from_slice(&(inner.len() as u16).to_be_bytes());
    gtp.extend_from_slice(&[0, 0, 0, 1]);
    gtp.extend_from_slice(&inner);
    let pkt = eth(
        0x0800,
        &ipv4(17, [1, 1, 1, 1], [2, 2, 2, 2], &udp(2152, 2152, &gtp)),
    );
    let mut d = Decoded::default();
    decode(1, &pkt, &mut d).unwrap();
    assert_eq!(d.ports(), Some((5555, 443)));
    // An echo request (type 1) is ordinary UDP.
    let mut echo = vec![0x32, 0x01, 0, 4, 0, 0, 0, 0, 0, 1, 0, 0];
    echo.truncate(12);
    let pkt = eth(
        0x0800,
        &ipv4(17, [1, 1, 1, 1], [2, 2, 2, 2], &udp(2152, 2152, &echo)),
    );
    decode(1, &pkt, &mut d).unwrap();
    assert_eq!(d.ports(), Some((2152, 2152)));
}

#[test]
fn mpls_pppoe_sll_null_raw_nflog() {
    let inner = ipv4(1, [5, 5, 5, 5], [6, 6, 6, 6], &[8, 0, 0, 0]);
    let mut d = Decoded::default();

    let mut mpls = vec![0, 0x01, 0x00, 0x40, 0, 0x02, 0x01, 0x40];
    mpls.extend_from_slice(&inner);
    decode(1, &eth(0x8847, &mpls), &mut d).unwrap();
    assert_eq!(d.mpls_labels, 2);
    assert_eq!(d.tunnel_names().collect::<Vec<_>>(), vec!["mpls"]);
    assert_eq!(d.ethertype, 0x8847);
    assert!(matches!(d.transport, Transport::Icmp(i) if i.kind == 8));

    let mut pppoe = vec![0x11, 0, 0, 1, 0, 0, 0x00, 0x21];
    pppoe.extend_from_slice(&inner);
    decode(1, &eth(0x8864, &pppoe), &mut d).unwrap();
    assert_eq!(d.network.unwrap().src, ip([5, 5, 5, 5]));

    let mut sll = vec![0, 0, 0, 1, 0, 6];
    sll.extend_from_slice(&SRC_MAC);
    sll.extend_from_slice(&[0, 0, 0x08, 0x00]);
    sll.extend_from_slice(&inner);
    decode(113, &sll, &mut d).unwrap();
    assert_eq!(d.src_mac, None, "Arkime keeps no MAC for cooked captures");
    assert_eq!(d.ethertype, 0);
    assert_eq!(d.network.unwrap().dst, ip([6, 6, 6, 6]));

    let mut null = 2u32.to_le_bytes().to_vec();
    null.extend_from_slice(&inner);
    decode(0, &null, &mut d).unwrap();
    assert!(d.network.is_some());

    decode(101, &inner, &mut d).unwrap();
    decode(228, &inner, &mut d).unwrap();
    assert!(d.network.is_some());

    let mut nflog = vec![2, 0, 0, 0];
    nflog.extend_from_slice(&8u16.to_le_bytes());
    nflog.extend_from_slice(&1u16.to_le_bytes());
    nflog.extend_from_slice(&[0, 0, 0, 0]);
    nflog.extend_from_slice(&((4 + inner.len()) as u16).to_le_bytes());
    nflog.extend_from_slice(&9u16.to_le_bytes());
    nflog.extend_from_slice(&inner);
    decode(239, &nflog, &mut d).unwrap();
    assert_eq!(d.network.unwrap().src, ip([5, 5, 5, 5]));

    let mut fr = vec![0x18, 0x41, 0x03, 0xcc];
    fr.extend_from_slice(&inner);
    decode(107, &fr, &mut d).unwrap();
    assert_eq!(d.network.unwrap().src, ip([5, 5, 5, 5]));
}

#[test]
fn radiotap_80211_data_frame() {
    let inner = ipv4(17, [1, 2, 3, 4], [5, 6, 7, 8], &udp(1, 2, b"w"));
    let mut p = vec![0, 0, 8, 0, 0, 0, 0, 0]; // radiotap, length 8
    p.extend_from_slice(&[0x08, 0x01, 0, 0]); // data, to-DS
    p.extend_from_slice(&DST_MAC); // addr1 = BSSID
    p.extend_from_slice(&SRC_MAC); // addr2 = source
    p.extend_from_slice(&[1, 2, 3, 4, 5, 6]); // addr3 = destination
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(&[0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00]);
    p.extend_from_slice(&inner);
    let mut d = Decoded::default();
    decode(127, &p, &mut d).unwrap();
    assert_eq!(d.src_mac, Some(SRC_MAC));
    assert_eq!(d.dst_mac, Some([1, 2, 3, 4, 5, 6]));
    assert_eq!(d.payload(&p), b"w");
}

#[test]
fn non_ip_ethertype_is_not_an_error() {
    let arp = eth(0x0806, &[0, 1, 8, 0, 6, 4, 0, 1]);
    let mut d = Decoded::default();
    decode(1, &arp, &mut d).unwrap();
    assert_eq!(d.ethertype, 0x0806);
    assert!(d.network.is_none());
}

#[test]
fn truncated_and_malformed_headers() {
    let full = eth(
        0x0800,
        &ipv4(6, [1, 1, 1, 1], [2, 2, 2, 2], &tcp(1, 2, 0x10, b"")),
    );
    let mut d = Decoded::default();
    for cut in [5, 14, 20, 33, 40, 50] {
        let err = decode(1, &full[..cut], &mut d).unwrap_err();
        assert_eq!(err.kind, DecodeErrorKind::Truncated, "cut {cut}: {err}");
    }
    let mut bad = full.clone();
    bad[14] = 0x43; // IHL 3
    assert_eq!(
        decode(1, &bad, &mut d).unwrap_err().kind,
        DecodeErrorKind::Malformed
    );
    assert_eq!(
        decode(9999, &full, &mut d).unwrap_err().kind,
        DecodeErrorKind::Unsupported
    );
}

#[test]
fn ipv4_fragments_reassemble_out_of_order() {
    let payload: Vec<u8> = (0..40u8).collect();
    let whole_udp = udp(1111, 2222, &payload);
    let (a, b) = whole_udp.split_at(24);
    let f1 = eth(
        0x0800,
        &ipv4_frag(17, [1, 1, 1, 1], [2, 2, 2, 2], 99, 0, true, a),
    );
    let f2 = eth(
        0x0800,
        &ipv4_frag(17, [1, 1, 1, 1], [2, 2, 2, 2], 99, 24, false, b),
    );
    let mut defrag = Defragmenter::new(100, 30);
    let mut d = Decoded::default();
    decode(1, &f2, &mut d).unwrap();
    assert!(d.fragment.is_some());
    assert_eq!(defrag.add(&f2, &d, 0).unwrap(), DefragOutcome::Pending);
    decode(1, &f1, &mut d).unwrap();
    let DefragOutcome::Complete { packet, fragments } = defrag.add(&f1, &d, 1).unwrap() else {
        panic!("not complete");
    };
    assert_eq!(fragments, 2);
    decode(1, &packet, &mut d).unwrap();
    assert!(d.fragment.is_none());
    assert_eq!(d.ports(), Some((1111, 2222)));
    assert_eq!(d.payload(&packet), &payload[..]);
    assert_eq!(defrag.pending(), 0);
}

#[test]
fn ipv6_fragments_reassemble() {
    let payload: Vec<u8> = (0..32u8).collect();
    let whole = udp(7, 9, &payload);
    let (a, b) = whole.split_at(16);
    let frag = |off: u16, more: bool, data: &[u8]| {
        let mut fh = vec![17, 0];
        fh.extend_from_slice(&((off / 8) << 3 | u16::from(more)).to_be_bytes());
        fh.extend_from_slice(&0xabcdu32.to_be_bytes());
        fh.extend_from_slice(data);
        eth(0x86dd, &ipv6(44, &fh))
    };
    let mut defrag = Defragmenter::new(100, 30);
    let mut d = Decoded::default();
    let p1 = frag(0, true, a);
    decode(1, &p1, &mut d).unwrap();
    assert_eq!(defrag.add(&p1, &d, 0).unwrap(), DefragOutcome::Pending);
    let p2 = frag(16, false, b);
    decode(1, &p2, &mut d).unwrap();
    let DefragOutcome::Complete { packet, .. } = defrag.add(&p2, &d, 0).unwrap() else {
        panic!("not complete");
    };
    decode(1, &packet, &mut d).unwrap();
    assert_eq!(d.ports(), Some((7, 9)));
    assert_eq!(d.payload(&packet), &payload[..]);
}

#[test]
fn defrag_bounds_and_expiry() {
    let mut defrag = Defragmenter::new(1, 1);
    let mut d = Decoded::default();
    let f = eth(
        0x0800,
        &ipv4_frag(17, [1, 1, 1, 1], [2, 2, 2, 2], 1, 8, true, &[0; 8]),
    );
    decode(1, &f, &mut d).unwrap();
    assert_eq!(defrag.add(&f, &d, 0).unwrap(), DefragOutcome::Pending);
    let g = eth(
        0x0800,
        &ipv4_frag(17, [1, 1, 1, 1], [2, 2, 2, 2], 2, 8, true, &[0; 8]),
    );
    decode(1, &g, &mut d).unwrap();
    assert!(defrag.add(&g, &d, 0).is_err());
    assert_eq!(defrag.expire(5_000_000), 1);
    assert_eq!(defrag.pending(), 0);
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// Arbitrary bytes under every link type never panic the decoder,
        /// and a decoded payload always lies inside the packet.
        #[test]
        fn decode_never_panics(linktype in prop::sample::select(vec![0u32, 1, 9, 101, 105, 107, 108, 113, 127, 204, 228, 229, 239, 276]),
                               bytes in prop::collection::vec(any::<u8>(), 0..600)) {
            let mut d = Decoded::default();
            if decode(linktype, &bytes, &mut d).is_ok() {
                prop_assert!(d.payload_offset + d.payload_len <= bytes.len());
            }
            let mut defrag = Defragmenter::new(8, 10);
            if d.fragment.is_some() {
                let _ = defrag.add(&bytes, &d, 0);
            }
        }

        /// Bit flips in a valid tunnelled packet never panic.
        #[test]
        fn flipped_tunnel_never_panics(flips in prop::collection::vec((0usize..200, any::<u8>()), 1..6)) {
            let inner = eth(0x0800, &ipv4(17, [9, 9, 9, 9], [8, 8, 8, 8], &udp(1000, 53, b"query")));
            let mut vx = vec![0x08, 0, 0, 0, 0, 0x01, 0x02, 0];
            vx.extend_from_slice(&inner);
            let mut pkt = eth(0x0800, &ipv4(17, [1, 1, 1, 1], [2, 2, 2, 2], &udp(40000, 4789, &vx)));
            for (at, x) in flips {
                let n = pkt.len();
                pkt[at % n] ^= x;
            }
            let mut d = Decoded::default();
            let _ = decode(1, &pkt, &mut d);
        }
    }
}

/// An ARP request inside VXLAN (from the corpus' vxlan.pcap): the inner
/// EtherType is ARP, the first one IPv4, and the outer layer keeps the
/// tunnel's protocol and TTL.
#[test]
fn arp_inside_vxlan_keeps_the_outer_facts() {
    let hex = "080027f21d8c080027ae4d6208004500004ed998400040116f9ec0a8380bc0a8380c\
               9bf412b5003a00000800000000007b00ffffffffffffba092b6ef8be0806\
               0001080006040001ba092b6ef8be0a0000010000000000000a000002";
    let p: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let mut d = Decoded::default();
    decode(1, &p, &mut d).unwrap();
    assert_eq!(d.ethertype, 0x0806);
    assert_eq!(d.first_ethertype, 0x0800);
    assert!(d.network.is_none());
    assert_eq!(d.vni, Some(123));
    let o = d.outer_layers()[0];
    assert_eq!(o.src_ip, Some(ip([192, 168, 56, 11])));
    assert_eq!(o.dst_ip, Some(ip([192, 168, 56, 12])));
    assert_eq!(o.ip_protocol, Some(17));
    assert_eq!(o.ttl, Some(64));
    assert_eq!(d.payload(&p).len(), 28);
}

/// An 802.3 frame with an LLC XID header (from the corpus' xid.pcap): the
/// length is the EtherType Arkime reports and the LLC bytes are the payload.
#[test]
fn ieee8023_llc_frame_has_its_payload() {
    let p = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x6a, 0x70, 0xc5, 0xaf, 0xf1, 0xf9, 0x00, 0x06, 0x00,
        0x01, 0xaf, 0x81, 0x01, 0x00,
    ];
    let mut d = Decoded::default();
    decode(1, &p, &mut d).unwrap();
    assert!(d.ieee8023);
    assert_eq!(d.ethertype, 6);
    assert_eq!(d.payload(&p), &p[14..]);
    // An Ethernet II frame is not 802.3.
    let mut d = Decoded::default();
    decode(
        1,
        &eth(
            0x0800,
            &ipv4(17, [1, 1, 1, 1], [2, 2, 2, 2], &udp(1, 2, b"x")),
        ),
        &mut d,
    )
    .unwrap();
    assert!(!d.ieee8023);
}
