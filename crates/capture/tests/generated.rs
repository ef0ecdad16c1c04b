//! Captures made by pcapgen, whose content is known exactly.

mod common;

use pcapgen::build::{self, flags};

const C: [u8; 4] = [10, 0, 0, 1];
const S: [u8; 4] = [10, 0, 0, 2];
const CM: [u8; 6] = [2, 0, 0, 0, 0, 1];
const SM: [u8; 6] = [2, 0, 0, 0, 0, 2];

fn write(path: &std::path::Path, packets: &[(i64, Vec<u8>)]) {
    let mut w = pcapio::PcapWriter::new(std::fs::File::create(path).unwrap(), 1, 65535).unwrap();
    for (ts, p) in packets {
        w.write_packet(*ts, p.len() as u32, p).unwrap();
    }
    w.into_inner().unwrap();
}

fn tcp(from_client: bool, seq: u32, ack: u32, f: u8, payload: &[u8]) -> Vec<u8> {
    let (sm, dm, si, di, sp, dp) = if from_client {
        (CM, SM, C, S, 40000, 80)
    } else {
        (SM, CM, S, C, 80, 40000)
    };
    build::ethernet(
        sm,
        dm,
        0x0800,
        &build::ipv4(
            si,
            di,
            6,
            if from_client { 64 } else { 50 },
            1,
            &build::tcp(sp, dp, seq, ack, f, payload),
        ),
    )
}

#[test]
fn tcp_session_fields_out_of_order_and_retransmission() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tcp.pcap");
    let t0 = 1_700_000_000_000_000;
    let req = b"GET / HTTP/1.1\r\n\r\n";
    let packets = vec![
        (t0, tcp(true, 100, 0, flags::SYN, b"")),
        (
            t0 + 2_000,
            tcp(false, 500, 101, flags::SYN | flags::ACK, b""),
        ),
        (t0 + 4_000, tcp(true, 101, 501, flags::ACK, b"")),
        // Second half first (out of order), then the first half, then a
        // retransmission of the first half.
        (
            t0 + 5_000,
            tcp(true, 101 + 8, 501, flags::PSH | flags::ACK, &req[8..]),
        ),
        (
            t0 + 6_000,
            tcp(true, 101, 501, flags::PSH | flags::ACK, &req[..8]),
        ),
        (
            t0 + 7_000,
            tcp(true, 101, 501, flags::PSH | flags::ACK, &req[..8]),
        ),
        (
            t0 + 9_000,
            tcp(
                false,
                501,
                101 + req.len() as u32,
                flags::PSH | flags::ACK,
                b"HTTP/1.1 200 OK\r\n\r\n",
            ),
        ),
        (
            t0 + 10_000,
            tcp(
                true,
                101 + req.len() as u32,
                520,
                flags::FIN | flags::ACK,
                b"",
            ),
        ),
        (
            t0 + 11_000,
            tcp(
                false,
                520,
                102 + req.len() as u32,
                flags::FIN | flags::ACK,
                b"",
            ),
        ),
    ];
    write(&path, &packets);
    let (report, bodies) = common::run(
        capture::Settings {
            enable_packet_len: true,
            ..Default::default()
        },
        vec![path],
    );
    common::assert_accounted(&report);
    assert_eq!(bodies.len(), 1);
    let b = serde_json::Value::Object(bodies[0].clone());
    assert_eq!(b["source"]["ip"], "10.0.0.1");
    assert_eq!(b["destination"]["port"], 80);
    assert_eq!(b["source"]["packets"], 6);
    assert_eq!(b["destination"]["packets"], 3);
    // Reassembly delivers the request once, in order.
    assert_eq!(b["client"]["bytes"], req.len());
    assert_eq!(b["server"]["bytes"], 19);
    assert_eq!(b["srcPayload8"], "474554202f204854");
    assert_eq!(b["tcpflags"]["syn"], 1);
    assert_eq!(b["tcpflags"]["syn-ack"], 1);
    assert_eq!(b["tcpflags"]["ack"], 1);
    assert_eq!(b["tcpflags"]["fin"], 2);
    assert_eq!(b["tcpflags"]["psh"], 4);
    assert_eq!(b["tcpSynValidated"], true);
    assert_eq!(b["tcpSynAckValidated"], true);
    assert_eq!(b["tcpseq"]["src"], 100);
    // SYN at +1 ms, first pure ACK at +5 ms (Arkime's clock): (5 - 1) / 2.
    assert_eq!(b["initRTT"], 2);
    assert_eq!(b["srcTTL"], serde_json::json!([64]));
    assert_eq!(b["dstTTL"], serde_json::json!([50]));
    assert_eq!(b["packetPos"].as_array().unwrap().len(), 9);
    assert_eq!(b["packetPos"][0], 24);
    assert_eq!(b["packetLen"][0], 16 + packets[0].1.len());
    assert_eq!(b["length"], 11);
    assert!(
        b["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "out-of-order-src")
    );
    assert!(
        b["network"]["community_id"]
            .as_str()
            .unwrap()
            .starts_with("1:")
    );
}

#[test]
fn max_packets_splits_a_session_into_segments() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.pcap");
    let t0 = 1_700_000_000_000_000;
    let packets: Vec<_> = (0..25)
        .map(|i| {
            (
                t0 + i * 1000,
                build::ethernet(
                    CM,
                    SM,
                    0x0800,
                    &build::ipv4(C, S, 17, 64, 1, &build::udp(5000, 53, b"q")),
                ),
            )
        })
        .collect();
    write(&path, &packets);
    let settings = capture::Settings {
        max_packets: 10,
        ..Default::default()
    };
    let (report, bodies) = common::run(settings, vec![path]);
    common::assert_accounted(&report);
    let segs: Vec<_> = bodies
        .iter()
        .map(|b| b["segmentCnt"].as_i64().unwrap())
        .collect();
    assert_eq!(segs, vec![1, 2, 3]);
    let packets: Vec<_> = bodies
        .iter()
        .map(|b| b["network"]["packets"].as_i64().unwrap())
        .collect();
    assert_eq!(packets, vec![10, 10, 5]);
    // Every segment keeps the session's first packet time.
    assert!(
        bodies
            .iter()
            .all(|b| b["firstPacket"] == bodies[0]["firstPacket"])
    );
}

#[test]
fn idle_timeout_splits_by_thread_clock() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("idle.pcap");
    let t0 = 1_700_000_000_000_000;
    let udp = |sport: u16| {
        build::ethernet(
            CM,
            SM,
            0x0800,
            &build::ipv4(C, S, 17, 64, 1, &build::udp(sport, 53, b"q")),
        )
    };
    // Session A, then 100 s of other traffic on the same thread, then A again.
    let packets = vec![
        (t0, udp(1000)),
        (t0 + 100_000_000, udp(2000)),
        (t0 + 100_001_000, udp(1000)),
    ];
    write(&path, &packets);
    let (_, bodies) = common::run(capture::Settings::default(), vec![path]);
    assert_eq!(bodies.len(), 3, "udpTimeout 60 s ends the first session");
    let (_, bodies) = common::run(
        capture::Settings {
            udp_timeout: 300,
            ..Default::default()
        },
        vec![dir.path().join("idle.pcap")],
    );
    assert_eq!(bodies.len(), 2);
}

#[test]
fn generated_mixed_capture_is_fully_accounted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.pcap");
    let cfg = pcapgen::GeneratorConfig {
        packets: 20_000,
        concurrent: 200,
        ..Default::default()
    };
    pcapgen::Generator::new(cfg)
        .write(std::fs::File::create(&path).unwrap())
        .unwrap();
    for threads in [1, 2] {
        let settings = capture::Settings {
            packet_threads: threads,
            ..Default::default()
        };
        let (report, bodies) = common::run(settings, vec![path.clone()]);
        common::assert_accounted(&report);
        assert_eq!(report.stats.packets_processed, 20_000);
        let total: i64 = bodies
            .iter()
            .map(|b| b["network"]["packets"].as_i64().unwrap())
            .sum();
        assert_eq!(total, 20_000, "every packet is in exactly one session");
    }
}

/// A connection whose second FIN is never acknowledged is not closing:
/// a RST long after (more than tcpClosingTimeout) still joins it.
#[test]
fn unacknowledged_second_fin_keeps_the_session_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fin.pcap");
    let t0 = 1_700_000_000_000_000;
    let s = 1_000_000;
    let packets = vec![
        (t0, tcp(true, 100, 0, flags::SYN, b"")),
        (t0 + 1, tcp(false, 500, 101, flags::SYN | flags::ACK, b"")),
        (t0 + 2, tcp(false, 501, 101, flags::FIN | flags::ACK, b"")),
        (t0 + 3, tcp(true, 101, 502, flags::ACK, b"")),
        // The client's FIN: the server never acknowledges it.
        (t0 + 4, tcp(true, 101, 502, flags::FIN | flags::ACK, b"")),
        (
            t0 + 20 * s,
            tcp(true, 102, 502, flags::RST | flags::ACK, b""),
        ),
    ];
    write(&path, &packets);
    let (_, bodies) = common::run(capture::Settings::default(), vec![path.clone()]);
    assert_eq!(bodies.len(), 1, "the late RST joins the open session");
    assert_eq!(bodies[0]["tcpflags"]["rst"], 1);
    assert_eq!(bodies[0]["network"]["packets"], 6);

    // With the second FIN acknowledged the session closes, and is saved
    // tcpClosingTimeout after that ACK even though packets keep coming.
    let path = dir.path().join("closed.pcap");
    let mut packets = packets[..5].to_vec();
    packets.push((t0 + 5, tcp(false, 502, 102, flags::ACK, b"")));
    // Packets join until the thread's clock passes the deadline; the one
    // that moves it there still joins (it is added before expiry runs).
    packets.push((t0 + 3 * s, tcp(false, 502, 102, flags::ACK, b"")));
    packets.push((t0 + 7 * s, tcp(false, 502, 102, flags::ACK, b"")));
    packets.push((t0 + 8 * s, tcp(false, 502, 102, flags::ACK, b"")));
    write(&path, &packets);
    let (_, bodies) = common::run(capture::Settings::default(), vec![path]);
    let counts: Vec<_> = bodies
        .iter()
        .map(|b| b["network"]["packets"].as_i64().unwrap())
        .collect();
    assert_eq!(
        counts,
        vec![8, 1],
        "saved 5 s after closing, not 5 s after the last packet"
    );
}

/// ARP requests and replies for one address form one session with the
/// `arp.*` fields.
#[test]
fn arp_exchange_is_one_session_with_arp_fields() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("arp.pcap");
    let arp = |op: u8, smac: [u8; 6], sip: [u8; 4], tmac: [u8; 6], tip: [u8; 4]| {
        let mut b = vec![0, 1, 8, 0, 6, 4, 0, op];
        b.extend_from_slice(&smac);
        b.extend_from_slice(&sip);
        b.extend_from_slice(&tmac);
        b.extend_from_slice(&tip);
        b
    };
    let t0 = 1_700_000_000_000_000;
    let packets = vec![
        (
            t0,
            build::ethernet(CM, [0xff; 6], 0x0806, &arp(1, CM, C, [0; 6], S)),
        ),
        (
            t0 + 10,
            build::ethernet(SM, CM, 0x0806, &arp(2, SM, S, CM, C)),
        ),
        // Another address: another session.
        (
            t0 + 20,
            build::ethernet(SM, [0xff; 6], 0x0806, &arp(1, SM, S, [0; 6], C)),
        ),
    ];
    write(&path, &packets);
    let (_, bodies) = common::run(capture::Settings::default(), vec![path]);
    assert_eq!(bodies.len(), 2);
    let first = &bodies[0];
    assert_eq!(first["network"]["packets"], 2);
    assert_eq!(first["protocol"], serde_json::json!(["arp"]));
    assert_eq!(first["arp"]["ip"], serde_json::json!(["10.0.0.2"]));
    assert_eq!(
        first["arp"]["mac"],
        serde_json::json!(["02:00:00:00:00:02"])
    );
    assert_eq!(first["arp"]["opcode"], serde_json::json!(["1", "2"]));
    assert_eq!(bodies[1]["arp"]["ip"], serde_json::json!(["10.0.0.1"]));
    assert!(bodies[1]["arp"].get("mac").is_none());
}

/// Data on a SYN is not read; a segment waiting alone for a hole is not
/// tagged, the one arriving while it waits is.
#[test]
fn syn_data_is_ignored_and_out_of_order_tags_follow_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ooo.pcap");
    let t0 = 1_700_000_000_000_000;
    let packets = vec![
        (t0, tcp(true, 100, 0, flags::SYN, b"SYNDATA!")),
        (t0 + 1, tcp(false, 500, 101, flags::SYN | flags::ACK, b"")),
        (t0 + 2, tcp(true, 101, 501, flags::ACK, b"")),
        // Ahead of a hole: it waits, and is never filled.
        (t0 + 3, tcp(true, 105, 501, flags::ACK, b"late")),
    ];
    write(&path, &packets);
    let (_, bodies) = common::run(capture::Settings::default(), vec![path.clone()]);
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0]["client"]["bytes"], 0);
    assert!(bodies[0].get("srcPayload8").is_none());
    assert!(bodies[0].get("tags").is_none());

    // The hole filled while the segment waits: now the session is tagged.
    let mut packets = packets;
    packets.push((t0 + 4, tcp(true, 101, 501, flags::ACK, b"abcd")));
    write(&path, &packets);
    let (_, bodies) = common::run(capture::Settings::default(), vec![path]);
    assert_eq!(bodies[0]["client"]["bytes"], 8);
    assert_eq!(bodies[0]["tags"], serde_json::json!(["out-of-order-src"]));
}

/// Arkime's lastPacket is the last packet's time even when an earlier
/// timestamp follows a later one.
#[test]
fn last_packet_is_the_last_one_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("time.pcap");
    let t0 = 1_700_000_000_000_000;
    let udp = build::ethernet(
        CM,
        SM,
        0x0800,
        &build::ipv4(C, S, 17, 64, 1, &build::udp(5000, 53, b"q")),
    );
    let packets = vec![
        (t0, udp.clone()),
        (t0 + 9_000, udp.clone()),
        (t0 + 3_000, udp),
    ];
    write(&path, &packets);
    let (_, bodies) = common::run(capture::Settings::default(), vec![path]);
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0]["lastPacket"], t0 / 1000 + 3);
}

/// A BGP session quiet for more than 10 s is saved as a segment at its
/// next packet: that packet is counted in the first segment, its data in
/// the second (Arkime's BGP idle timer).
#[test]
fn quiet_bgp_session_is_split_at_its_next_packet() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bgp.pcap");
    let t0 = 1_700_000_000_000_000;
    let s = 1_000_000;
    let mut keepalive = vec![0xff; 16];
    keepalive.extend_from_slice(&[0, 19, 4]);
    let bgp = |from_client: bool, seq: u32, ack: u32, payload: &[u8]| {
        let (sm, dm, si, di, sp, dp) = if from_client {
            (CM, SM, C, S, 40000, 179)
        } else {
            (SM, CM, S, C, 179, 40000)
        };
        build::ethernet(
            sm,
            dm,
            0x0800,
            &build::ipv4(
                si,
                di,
                6,
                64,
                1,
                &build::tcp(sp, dp, seq, ack, flags::PSH | flags::ACK, payload),
            ),
        )
    };
    let syn = |from_client: bool, seq: u32, ack: u32, f: u8| {
        let (sm, dm, si, di, sp, dp) = if from_client {
            (CM, SM, C, S, 40000, 179)
        } else {
            (SM, CM, S, C, 179, 40000)
        };
        build::ethernet(
            sm,
            dm,
            0x0800,
            &build::ipv4(si, di, 6, 64, 1, &build::tcp(sp, dp, seq, ack, f, b"")),
        )
    };
    let packets = vec![
        (t0, syn(true, 100, 0, flags::SYN)),
        (t0 + 1, syn(false, 500, 101, flags::SYN | flags::ACK)),
        (t0 + 2, bgp(true, 101, 501, &keepalive)),
        (t0 + 3 * s, bgp(false, 501, 120, &keepalive)),
        // 12 s after the last message: the timer has fired.
        (t0 + 15 * s, bgp(true, 120, 520, &keepalive)),
        (t0 + 15 * s + 1, bgp(false, 520, 139, &keepalive)),
    ];
    write(&path, &packets);
    let (_, bodies) = common::run_with_parsers(capture::Settings::default(), vec![path]);
    assert_eq!(bodies.len(), 2);
    let (first, second) = if bodies[0]["segmentCnt"] == 1 {
        (&bodies[0], &bodies[1])
    } else {
        (&bodies[1], &bodies[0])
    };
    assert_eq!(first["network"]["packets"], 5);
    assert_eq!(first["client"]["bytes"], 19);
    assert_eq!(second["segmentCnt"], 2);
    assert_eq!(second["network"]["packets"], 1);
    assert_eq!(second["client"]["bytes"], 19, "the late packet's data");
    assert_eq!(second["tcpflags"]["psh"], 2);
}

/// ICMP data bytes run to the end of the frame, Ethernet padding included
/// (as Arkime counts them), not to the end of the IP datagram.
#[test]
fn icmp_data_bytes_include_link_padding() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("icmp.pcap");
    let echo = [8u8, 0, 0xf7, 0xff, 0, 0, 0, 0];
    let mut frame = build::ethernet(CM, SM, 0x0800, &build::ipv4(C, S, 1, 64, 1, &echo));
    assert_eq!(frame.len(), 42);
    frame.resize(60, 0);
    write(&path, &[(1_700_000_000_000_000, frame)]);
    let (_, bodies) = common::run(capture::Settings::default(), vec![path]);
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0]["client"]["bytes"], 26);
    assert_eq!(bodies[0]["icmp"]["type"], serde_json::json!([8]));
}

/// `maxStreams` bounds the live sessions of each kind per packet thread
/// (UDP: a twentieth of it, at least 64, as in Arkime): past the bound the
/// least recently seen session is saved early, and its later packets
/// start a new session.
#[test]
fn max_streams_saves_the_least_recently_seen_sessions_early() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("udp.pcap");
    let t0 = 1_700_000_000_000_000;
    let datagram = |port: u16| {
        build::ethernet(
            CM,
            SM,
            0x0800,
            &build::ipv4(C, S, 17, 64, 1, &build::udp(port, 9999, b"hello")),
        )
    };
    // 100 sessions, one datagram each, then a second datagram of session 0.
    let mut packets: Vec<(i64, Vec<u8>)> = (0..100u16)
        .map(|i| (t0 + i64::from(i) * 1_000, datagram(20_000 + i)))
        .collect();
    packets.push((t0 + 200_000, datagram(20_000)));
    write(&path, &packets);

    let (report, bodies) = common::run(capture::Settings::default(), vec![path.clone()]);
    common::assert_accounted(&report);
    assert_eq!(report.stats.sessions_over_max_streams, 0);
    assert_eq!(bodies.len(), 100);

    let mut settings = capture::Settings {
        max_streams: 1,
        ..capture::Settings::default()
    };
    settings.packet_threads = 1;
    let (report, bodies) = common::run(settings, vec![path]);
    common::assert_accounted(&report);
    // 64 may live at once: sessions 0..36 are saved early, then session 0
    // comes back as a new session, which pushes out one more.
    assert_eq!(report.stats.sessions_over_max_streams, 37);
    assert_eq!(bodies.len(), 101);
    let port_20000: Vec<_> = bodies
        .iter()
        .filter(|b| b["source"]["port"] == 20_000)
        .collect();
    assert_eq!(port_20000.len(), 2);
    assert!(port_20000.iter().all(|b| b["source"]["packets"] == 1));
}
