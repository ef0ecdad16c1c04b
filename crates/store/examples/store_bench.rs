//! Store benchmark: index N synthetic Arkime session documents through
//! `StoreWriter`, then time queries in-process (what `moonwire query`
//! does after start-up: search, sort by start time, read the first 100
//! documents; or `--unique`).
//!
//! Usage: store_bench [DOCS] [DIR]   (defaults: 1000000, a temp dir)

mod common;
use common::{cpu_secs, dir_size};

use std::sync::Arc;
use std::time::{Duration, Instant};

use fields::FieldRegistry;
use serde_json::{Value, json};
use store::{Store, TimeRange, WriterOptions};

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn session(i: u64, r: &mut Rng) -> Value {
    let first = 1_700_000_000_000u64 + i * 3;
    let last = first + r.below(60_000);
    let src = format!("10.{}.{}.{}", r.below(4), r.below(256), r.below(256));
    let dst = format!("172.{}.{}.{}", 16 + r.below(2), r.below(32), r.below(256));
    let kind = r.below(10);
    let (dport, protos): (u64, Vec<&str>) = match kind {
        0..=3 => (80, vec!["tcp", "http"]),
        4..=6 => (443, vec!["tcp", "tls"]),
        7..=8 => (53, vec!["udp", "dns"]),
        _ => (1024 + r.below(60000), vec!["tcp"]),
    };
    let pkts_src = 1 + r.below(20);
    let pkts_dst = r.below(20);
    let npos = (pkts_src + pkts_dst).min(50);
    let mut pos = 24u64 + i * 4000;
    let positions: Vec<u64> = (0..npos)
        .map(|_| {
            pos += 60 + r.below(1400);
            pos
        })
        .collect();
    let bytes_src = pkts_src * (60 + r.below(1400));
    let bytes_dst = pkts_dst * (60 + r.below(1400));
    let mut b = json!({
        "@timestamp": first + 1000,
        "firstPacket": first,
        "lastPacket": last,
        "length": last - first,
        "ipProtocol": if kind == 7 || kind == 8 { 17 } else { 6 },
        "node": "bench",
        "fileId": [1 + i / 50_000],
        "packetPos": positions,
        "source": {"ip": src, "port": 1024 + r.below(60000), "bytes": bytes_src, "packets": pkts_src,
                   "mac": ["00:11:22:33:44:55"], "mac-cnt": 1},
        "destination": {"ip": dst, "port": dport, "bytes": bytes_dst, "packets": pkts_dst,
                        "mac": ["66:77:88:99:aa:bb"], "mac-cnt": 1},
        "network": {"bytes": bytes_src + bytes_dst, "packets": pkts_src + pkts_dst,
                    "community_id": format!("1:{:016x}", r.next())},
        "client": {"bytes": bytes_src / 2}, "server": {"bytes": bytes_dst / 2},
        "totDataBytes": (bytes_src + bytes_dst) / 2,
        "segmentCnt": 1,
        "protocol": protos, "protocolCnt": 2,
        "srcPayload8": format!("{:016x}", r.next()),
        "srcTTL": [64], "srcTTLCnt": 1,
    });
    let host = format!("host{}.example{}.com", r.below(5000), r.below(50));
    match kind {
        0..=3 => {
            let status = [200, 200, 301, 404, 500][r.below(5) as usize];
            b["http"] = json!({
                "host": [host], "hostCnt": 1,
                "uri": [format!("{host}/path/{}/index.html", r.below(100000))], "uriCnt": 1,
                "method": ["GET"], "methodCnt": 1,
                "statuscode": [status], "statuscodeCnt": 1,
                "useragent": [format!("Mozilla/5.0 (bench {})", r.below(50))], "useragentCnt": 1,
            });
        }
        4..=6 => {
            b["tls"] = json!({"version": ["TLSv1.3"], "versionCnt": 1,
                "cipher": ["TLS_AES_128_GCM_SHA256"], "cipherCnt": 1,
                "ja3": [format!("{:032x}", r.below(1000))], "ja3Cnt": 1});
            b["cert"] = json!([{"subjectCN": [host.clone()], "issuerCN": ["bench ca"], "alt": [host], "altCnt": 1,
                "notAfter": first + 86_400_000 * 90, "notBefore": first - 86_400_000}]);
            b["certCnt"] = json!(1);
        }
        7..=8 => {
            b["dns"] = json!([{"host": [host.clone()], "hostCnt": 1, "qt": "A", "qc": "IN",
                "status": "NOERROR", "opcode": "QUERY", "queryHost": host}]);
            b["dnsCnt"] = json!(1);
        }
        _ => {}
    }
    if r.below(20) == 0 {
        b["tags"] = json!(["bench-tag"]);
        b["tagsCnt"] = json!(1);
    }
    b
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let docs: u64 = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let tmp;
    let dir = match args.next() {
        Some(d) => std::path::PathBuf::from(d),
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().join("data")
        }
    };
    let _ = std::fs::remove_dir_all(&dir);
    let reg = Arc::new(FieldRegistry::builtin());
    let store = Store::open_or_create(&dir, reg)?;

    // Documents are generated while indexing (1M bodies would not fit in
    // memory at once); the generation cost is measured apart and reported.
    let mut r = Rng(0x9E37_79B9_7F4A_7C15);
    let t = Instant::now();
    // Generation is subtracted in CPU time (one thread, nothing else of
    // this process running yet): a wall-clock rate on a loaded machine
    // would subtract too much.
    let gen_cpu0 = cpu_secs();
    let sample = docs.min(100_000);
    let mut json_bytes = 0usize;
    for i in 0..sample {
        // The capture pipeline hands the store JSON text.
        let b = session(i, &mut r).to_string();
        if i < 1000 {
            json_bytes += b.len();
        }
        std::hint::black_box(b);
    }
    let gen_wall_rate = sample as f64 / t.elapsed().as_secs_f64();
    let gen_rate = sample as f64 / (cpu_secs() - gen_cpu0).max(1e-9);
    eprintln!(
        "generation alone: {gen_wall_rate:.0} documents/s, {gen_rate:.0} documents per CPU-second"
    );

    let mut r = Rng(0x9E37_79B9_7F4A_7C15);
    let mut probe = Vec::new();
    let w = store.writer(WriterOptions::default())?;
    let t = Instant::now();
    let cpu0 = cpu_secs();
    // In batches of 32 bodies, about what the capture's output thread
    // hands over at once.
    let mut batch = Vec::with_capacity(32);
    for i in 0..docs {
        let b = session(i, &mut r);
        if i % (docs / 7).max(1) == 3 {
            probe.push(b.clone());
        }
        batch.push(b.to_string());
        if batch.len() == 32 {
            w.add_json_batch(std::mem::replace(&mut batch, Vec::with_capacity(32)))?;
        }
    }
    w.add_json_batch(batch)?;
    let stats = w.finish()?;
    let index_time = t.elapsed();
    let cpu = cpu_secs() - cpu0 - docs as f64 / gen_rate;
    let size = dir_size(&dir.join("index"))?;
    println!("| documents | {docs} |");
    println!(
        "| indexing time (generate + add → final commit) | {:.1} s |",
        index_time.as_secs_f64()
    );
    println!(
        "| indexing rate (generation included) | {:.0} documents/s |",
        docs as f64 / index_time.as_secs_f64()
    );
    println!(
        "| generation alone | {gen_wall_rate:.0} documents/s, {gen_rate:.0} documents per CPU-second |"
    );
    println!(
        "| CPU time of indexing (all threads, generation subtracted) | {cpu:.1} s = {:.0} documents per CPU-second |",
        docs as f64 / cpu.max(1e-9)
    );
    println!("| commits | {} |", stats.commits);
    println!("| index size | {:.1} MB |", size as f64 / 1e6);
    println!(
        "| index bytes per session | {:.0} (JSON body ≈ {} bytes) |",
        size as f64 / docs as f64,
        json_bytes / 1000
    );

    let http = probe
        .iter()
        .find_map(|b| b["http"]["host"][0].as_str().map(str::to_string))
        .unwrap_or_else(|| "host1.example1.com".into());
    let ip = probe[0]["source"]["ip"]
        .as_str()
        .unwrap_or("10.1.2.3")
        .to_string();
    let term_host = format!("host.http == {http}");
    let term_ip = format!("ip.src == {ip}");
    let queries: &[(&str, &str)] = &[
        ("term", &term_host),
        ("term (ip)", &term_ip),
        ("CIDR /16", "ip.src == 10.2.0.0/16"),
        ("wildcard", "host.http == *.example7.com"),
        ("regex", "http.uri == /.*path\\/4242\\/.*/"),
        ("range + term", "port.dst == 443 && bytes.src > 20000"),
        ("number, column only", "packets.src == 7"),
    ];
    let runs = 50;
    println!();
    println!("| query | matches | p50 | p99 |");
    println!("|---|---|---|---|");
    for (name, q) in queries {
        let mut lat = Vec::with_capacity(runs);
        let mut matches = 0;
        for _ in 0..runs {
            let t = Instant::now();
            let mut hits = store.search(q, TimeRange::default())?;
            matches = hits.len();
            hits.top_by("starttime", false, 100)?;
            for b in hits.bodies() {
                std::hint::black_box(b?);
            }
            lat.push(t.elapsed());
        }
        lat.sort();
        println!(
            "| {name}: `{q}` | {matches} | {:.2} ms | {:.2} ms |",
            percentile(&lat, 0.5).as_secs_f64() * 1e3,
            percentile(&lat, 0.99).as_secs_f64() * 1e3
        );
    }
    for (name, q, field) in [
        ("--unique ip.dst, all sessions", "", "ip.dst"),
        (
            "--unique host.http where protocols == http",
            "protocols == http",
            "host.http",
        ),
    ] {
        let mut lat = Vec::new();
        let mut nvals = 0;
        for _ in 0..10 {
            let t = Instant::now();
            let hits = store.search(q, TimeRange::default())?;
            nvals = hits.unique(field)?.len();
            lat.push(t.elapsed());
        }
        lat.sort();
        println!(
            "| {name} | {nvals} values | {:.0} ms | {:.0} ms |",
            percentile(&lat, 0.5).as_secs_f64() * 1e3,
            percentile(&lat, 0.99).as_secs_f64() * 1e3
        );
    }
    let mut lat = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        std::hint::black_box(store.count("protocols == tls", TimeRange::default())?);
        lat.push(t.elapsed());
    }
    lat.sort();
    println!(
        "| --count `protocols == tls` | - | {:.2} ms | {:.2} ms |",
        percentile(&lat, 0.5).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3
    );
    Ok(())
}
