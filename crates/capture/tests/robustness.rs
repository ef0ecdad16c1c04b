//! Damaged captures: truncated files and flipped bits never panic the
//! engine, every packet read is accounted for, and errors are reported.

mod common;

use std::io::Write;

/// xorshift: deterministic damage.
fn rng(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

fn corpus_sample() -> Vec<std::path::PathBuf> {
    let Some(base) = common::corpus() else {
        return Vec::new();
    };
    [
        "dns-tcp.pcap",
        "http-post-upload.pcap",
        "gre-erspan.pcap",
        "vxlan.pcap",
        "sctp-www.pcap",
        "gtp-iphone.pcap",
        "bacnet-stack-services.pcap",
        "wireshark-esp.pcap",
        "ip-boundaries.pcap",
        "nflog.pcap",
        "icmp-frame-relay.pcap",
    ]
    .iter()
    .map(|n| base.join("pcaps").join(n))
    .filter(|p| p.exists())
    .collect()
}

#[test]
fn truncated_files_are_reported_and_accounted() {
    let dir = tempfile::tempdir().unwrap();
    let mut seed = 0x1234_5678_9abc_def1u64;
    for pcap in corpus_sample() {
        let bytes = std::fs::read(&pcap).unwrap();
        for _ in 0..4 {
            let cut = 24 + (rng(&mut seed) as usize) % (bytes.len() - 24);
            let path = dir.path().join("cut.pcap");
            std::fs::File::create(&path)
                .unwrap()
                .write_all(&bytes[..cut])
                .unwrap();
            let (report, _) = common::run(common::corpus_settings(&[]), vec![path]);
            common::assert_accounted(&report);
            // Unless the cut fell between records, the damage is reported.
            if report.input_errors.is_empty() {
                continue;
            }
            assert!(
                report.input_errors[0].contains("truncated"),
                "{:?}",
                report.input_errors
            );
        }
    }
}

#[test]
fn bit_flips_never_panic_and_are_accounted() {
    let dir = tempfile::tempdir().unwrap();
    let mut seed = 0xfeed_beef_dead_cafeu64;
    for pcap in corpus_sample() {
        let bytes = std::fs::read(&pcap).unwrap();
        for _ in 0..6 {
            let mut damaged = bytes.clone();
            // Flip bits after the file header so the file is still a pcap.
            for _ in 0..1 + rng(&mut seed) % 40 {
                let at = 24 + (rng(&mut seed) as usize) % (damaged.len() - 24);
                damaged[at] ^= 1 << (rng(&mut seed) % 8);
            }
            let path = dir.path().join("flipped.pcap");
            std::fs::File::create(&path)
                .unwrap()
                .write_all(&damaged)
                .unwrap();
            let (report, _) =
                common::run(common::corpus_settings(&["packetThreads=2"]), vec![path]);
            common::assert_accounted(&report);
        }
    }
}

#[test]
fn not_a_capture_is_an_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.pcap");
    std::fs::write(&path, b"this is not a capture file").unwrap();
    let (report, bodies) = common::run(capture::Settings::default(), vec![path]);
    assert!(bodies.is_empty());
    assert_eq!(report.stats.file_errors, 1);
    assert!(
        report.input_errors[0].contains("not a pcap"),
        "{:?}",
        report.input_errors
    );
}
