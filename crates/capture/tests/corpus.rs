//! The capture pipeline over every corpus pcap: it never fails, accounts
//! for every packet, and finds Arkime's sessions.

mod common;

use std::collections::HashSet;

#[test]
fn every_corpus_pcap_is_processed_and_accounted() {
    let Some(base) = common::corpus() else {
        return;
    };
    let mut pcaps: Vec<_> = std::fs::read_dir(base.join("pcaps"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    pcaps.sort();
    assert!(pcaps.len() > 100, "corpus has {} pcaps", pcaps.len());
    let mut sessions_expected = 0;
    let mut sessions_found = 0;
    for pcap in &pcaps {
        let (report, bodies) = common::run(common::corpus_settings(&[]), vec![pcap.clone()]);
        common::assert_accounted(&report);
        assert!(
            report.input_errors.is_empty(),
            "{}: {:?}",
            pcap.display(),
            report.input_errors
        );
        // Pair sessions with Arkime's by protocol, endpoints and first packet.
        let expected: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(pcap.with_extension("test")).unwrap())
                .unwrap();
        let key = |b: &serde_json::Value| {
            format!(
                "{} {} {} {} {} {}",
                b["ipProtocol"],
                b["source"]["ip"],
                b["source"]["port"],
                b["destination"]["ip"],
                b["destination"]["port"],
                b["firstPacket"]
            )
        };
        let ours: HashSet<String> = bodies
            .iter()
            .map(|b| key(&serde_json::Value::Object(b.clone())))
            .collect();
        for s in expected["sessions3"].as_array().unwrap() {
            sessions_expected += 1;
            if ours.contains(&key(&s["body"])) {
                sessions_found += 1;
            }
        }
    }
    // One corpus session is flipped by the test rules file (`flip test`
    // in Arkime's rules.yaml, not in the corpus; see docs/COMPATIBILITY.md);
    // everything else must pair up.
    assert!(
        sessions_found + 1 >= sessions_expected,
        "found {sessions_found} of {sessions_expected} Arkime sessions"
    );
}

#[test]
fn two_packet_threads_give_the_same_documents_as_one() {
    let Some(base) = common::corpus() else {
        return;
    };
    let pcap = base.join("pcaps/bacnet-stack-services.pcap");
    let strip = |mut b: serde_json::Map<String, serde_json::Value>| {
        b.remove("@timestamp");
        b
    };
    let (_, one) = common::run(
        common::corpus_settings(&["packetThreads=1"]),
        vec![pcap.clone()],
    );
    let (_, two) = common::run(common::corpus_settings(&["packetThreads=2"]), vec![pcap]);
    let one: Vec<_> = one.into_iter().map(strip).collect();
    let two: Vec<_> = two.into_iter().map(strip).collect();
    assert!(!one.is_empty());
    assert_eq!(one, two);
}

#[test]
fn several_files_in_one_run() {
    let Some(base) = common::corpus() else {
        return;
    };
    let a = base.join("pcaps/dns-tcp.pcap");
    let b = base.join("pcaps/wireshark-esp.pcap");
    let (ra, da) = common::run(common::corpus_settings(&[]), vec![a.clone()]);
    let (rb, db) = common::run(common::corpus_settings(&[]), vec![b.clone()]);
    let (r, d) = common::run(common::corpus_settings(&[]), vec![a, b]);
    common::assert_accounted(&r);
    assert_eq!(r.stats.files_done, 2);
    assert_eq!(
        r.stats.packets_read,
        ra.stats.packets_read + rb.stats.packets_read
    );
    assert_eq!(d.len(), da.len() + db.len());
}

/// Corpus captures whose sessions depend on the capture core's keying of
/// tunnelled and non-IP frames.
#[test]
fn tunnelled_and_llc_frames_are_keyed_as_arkime_does() {
    let Some(base) = common::corpus() else {
        return;
    };
    let run = |name: &str| {
        let pcap = base.join(format!("pcaps/{name}.pcap"));
        common::run(common::corpus_settings(&[]), vec![pcap]).1
    };
    // ERSPAN carrying CDP (an LLC frame): one corrupt-ip session of the
    // tunnel's addresses, with the tunnel's protocol and TTL.
    let b = run("gre-erspan");
    assert_eq!(b.len(), 2);
    let cdp = b
        .iter()
        .find(|s| {
            s["protocol"]
                .as_array()
                .unwrap()
                .contains(&"corrupt-ip".into())
        })
        .expect("corrupt-ip session");
    assert_eq!(cdp["source"]["ip"], "2.2.2.2");
    assert_eq!(cdp["destination"]["ip"], "1.1.1.1");
    assert_eq!(cdp["ipProtocol"], 47);
    assert_eq!(cdp["network"]["packets"], 2);
    assert_eq!(cdp["srcTTL"], serde_json::json!([254]));
    assert!(cdp.get("srcOuterIp").is_none());
    // 802.2 XID frames.
    let b = run("xid");
    assert_eq!(b.len(), 1);
    assert_eq!(b[0]["protocol"], serde_json::json!(["xid"]));
    // VXLAN-GPE with network identifier 0: no vni.
    let b = run("gre-erspan-vxlan");
    assert_eq!(b.len(), 1);
    assert!(b[0].get("vni").is_none());
    // ARP inside VXLAN: its own session on the tunnel's addresses.
    let b = run("vxlan");
    assert_eq!(b.len(), 2);
    let arp = b
        .iter()
        .find(|s| s["protocol"].as_array().unwrap().contains(&"arp".into()))
        .expect("arp session");
    assert_eq!(arp["source"]["ip"], "192.168.56.11");
    assert_eq!(arp["ipProtocol"], 17);
    assert_eq!(arp["ethertype"], 2048);
    assert_eq!(arp["vni"], serde_json::json!([123]));
    assert_eq!(arp["arp"]["ip"], serde_json::json!(["10.0.0.2"]));
}
