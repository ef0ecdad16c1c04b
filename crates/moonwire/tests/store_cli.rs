//! End-to-end tests of `moonwire query` and `moonwire pcap` on the Arkime
//! corpus, and a `kill -9` crash test of a writing process.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pcap_parser::pcap::{parse_pcap_frame, parse_pcap_header};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_moonwire");

fn corpus() -> Option<PathBuf> {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/arkime-compat/pcaps"
    ));
    if dir.is_dir() {
        Some(dir)
    } else if std::env::var_os("CI").is_some() {
        panic!("corpus {} missing", dir.display());
    } else {
        eprintln!("skipped: corpus {} not present", dir.display());
        None
    }
}

fn mw(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const NAMES: &[&str] = &[
    "dns-udp",
    "dns-tcp",
    "http-301-get",
    "http-basicauth",
    "https2-301-get",
    "smtp-starttls",
    "socks5-http-302",
    "ssh2-moloch-crash",
    "long-session",
    "v6-http",
];

/// Records of a classic pcap as (offset, ts_sec, ts_usec, data).
fn records(path: &Path) -> Vec<(u64, u32, u32, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let (mut rem, hdr) = parse_pcap_header(&bytes).unwrap();
    assert!(!hdr.is_bigendian() && !hdr.is_nanosecond_precision());
    let mut out = Vec::new();
    while !rem.is_empty() {
        let pos = (bytes.len() - rem.len()) as u64;
        let Ok((r, b)) = parse_pcap_frame(rem) else {
            break;
        };
        out.push((pos, b.ts_sec, b.ts_usec, b.data.to_vec()));
        rem = r;
    }
    out
}

fn bodies(dir: &Path, name: &str) -> Vec<Value> {
    let doc: Value =
        serde_json::from_slice(&std::fs::read(dir.join(format!("{name}.test"))).unwrap()).unwrap();
    doc["sessions3"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["body"].clone())
        .collect()
}

#[test]
fn import_query_and_pcap_round_trip() {
    let Some(dir) = corpus() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let data_s = data.to_str().unwrap();
    let tests: Vec<String> = NAMES
        .iter()
        .map(|n| dir.join(format!("{n}.test")).to_str().unwrap().to_string())
        .collect();
    let mut args = vec!["query", "--data", data_s, "--import"];
    args.extend(tests.iter().map(String::as_str));
    let (ok, _, err) = mw(&args);
    assert!(ok, "{err}");
    let total: usize = NAMES.iter().map(|n| bodies(&dir, n).len()).sum();

    // Counting and a second import of the same files (skipped).
    let (ok, out, _) = mw(&["query", "--data", data_s, "--count"]);
    assert!(ok);
    assert_eq!(out.trim(), total.to_string());
    let (ok, _, err) = mw(&args);
    assert!(ok, "{err}");
    assert!(err.contains("already stored"), "{err}");
    let (_, out, _) = mw(&["query", "--data", data_s, "--count"]);
    assert_eq!(
        out.trim(),
        total.to_string(),
        "re-import must not duplicate"
    );

    // JSON output: whole documents, one per line, matching the corpus.
    let (ok, out, err) = mw(&[
        "query",
        "--data",
        data_s,
        "protocols == dns",
        "--format",
        "json",
        "--limit",
        "0",
    ]);
    assert!(ok, "{err}");
    let got: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let want: usize = NAMES
        .iter()
        .flat_map(|n| bodies(&dir, n))
        .filter(|b| b["protocol"].as_array().unwrap().iter().any(|p| p == "dns"))
        .count();
    assert_eq!(got.len(), want);
    assert!(want > 0);
    // Sorted by start time by default.
    let starts: Vec<i64> = got
        .iter()
        .map(|b| b["firstPacket"].as_i64().unwrap())
        .collect();
    assert!(starts.windows(2).all(|w| w[0] <= w[1]));

    // Table and CSV with chosen columns, sorting, limit.
    let (ok, out, _) = mw(&[
        "query",
        "--data",
        data_s,
        "port.dst == [80,443]",
        "--fields",
        "ip.dst,port.dst,bytes",
        "--format",
        "csv",
        "--sort",
        "-bytes",
        "--limit",
        "3",
    ]);
    assert!(ok);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "ip.dst,port.dst,bytes");
    assert!(lines.len() <= 4 && lines.len() > 1);
    let bytes: Vec<i64> = lines[1..]
        .iter()
        .map(|l| l.rsplit(',').next().unwrap().parse().unwrap())
        .collect();
    assert!(bytes.windows(2).all(|w| w[0] >= w[1]), "{out}");
    let (ok, out, _) = mw(&[
        "query",
        "--data",
        data_s,
        "host.http == *",
        "--fields",
        "host.http,http.uri",
    ]);
    assert!(ok);
    assert!(out.lines().next().unwrap().starts_with("host.http"));
    assert!(out.lines().count() > 1);

    // Unique values with counts.
    let (ok, out, _) = mw(&[
        "query",
        "--data",
        data_s,
        "--unique",
        "protocols",
        "--format",
        "csv",
        "--limit",
        "0",
    ]);
    assert!(ok);
    let tcp_want = NAMES
        .iter()
        .flat_map(|n| bodies(&dir, n))
        .filter(|b| b["protocol"].as_array().unwrap().iter().any(|p| p == "tcp"))
        .count();
    assert!(out.lines().any(|l| l == format!("tcp,{tcp_want}")), "{out}");

    // A bad expression: error with the position and the field's name.
    let (ok, _, err) = mw(&[
        "query",
        "--data",
        data_s,
        "port.dst == 80 && nope.nope == 1",
    ]);
    assert!(!ok);
    assert!(
        err.contains("unknown field \"nope.nope\" at position 18"),
        "{err}"
    );
    assert!(err.contains("\n                    ^"), "{err}");
    let (ok, _, err) = mw(&["query", "--data", data_s, "port.dst >< 80"]);
    assert!(!ok);
    assert!(err.contains("unknown operator \"><\""), "{err}");

    // moonwire pcap: the packets of the matching sessions, in time order.
    let out_pcap = tmp.path().join("out.pcap");
    let expr = "protocols == [dns, http] && ip.protocol == 6";
    let (ok, _, err) = mw(&[
        "pcap",
        "--data",
        data_s,
        expr,
        "-w",
        out_pcap.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let mut want: Vec<(u32, u32, Vec<u8>)> = Vec::new();
    let mut sessions = 0;
    for n in NAMES {
        let recs = records(&dir.join(format!("{n}.pcap")));
        for b in bodies(&dir, n) {
            let protos = b["protocol"].as_array().unwrap();
            if !(protos.iter().any(|p| p == "dns" || p == "http") && b["ipProtocol"] == 6) {
                continue;
            }
            sessions += 1;
            for pos in b["packetPos"].as_array().unwrap() {
                let pos = pos.as_u64().unwrap();
                let r = recs
                    .iter()
                    .find(|r| r.0 == pos)
                    .expect("packetPos is a record offset");
                want.push((r.1, r.2, r.3.clone()));
            }
        }
    }
    assert!(sessions > 1);
    let got: Vec<(u32, u32, Vec<u8>)> = records(&out_pcap)
        .into_iter()
        .map(|r| (r.1, r.2, r.3))
        .collect();
    assert!(
        got.windows(2).all(|w| (w[0].0, w[0].1) <= (w[1].0, w[1].1)),
        "time order"
    );
    let mut w_sorted = want.clone();
    w_sorted.sort();
    let mut g_sorted = got.clone();
    g_sorted.sort();
    assert_eq!(g_sorted.len(), w_sorted.len());
    assert!(
        g_sorted == w_sorted,
        "pcap packets differ from the sessions' packets"
    );
    assert!(err.contains(&format!("of {sessions} sessions")), "{err}");
}

fn synthetic(i: u64) -> String {
    serde_json::json!({
        "firstPacket": 1_600_000_000_000u64 + i,
        "lastPacket": 1_600_000_000_500u64 + i,
        "source": {"ip": format!("10.1.{}.{}", (i >> 8) & 255, i & 255), "port": 1024 + i % 60000},
        "destination": {"ip": "192.168.0.1", "port": 443},
        "protocol": ["tcp", "tls"],
        "node": format!("n{i}"),
    })
    .to_string()
}

fn count(data: &str, expr: &str) -> Option<u64> {
    let (ok, out, _) = mw(&["query", "--data", data, "--count", expr]);
    if ok { out.trim().parse().ok() } else { None }
}

#[test]
fn kill_9_during_import_keeps_committed_sessions() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let data_s = data.to_str().unwrap();
    let mut child = Command::new(BIN)
        .args(["query", "--data", data_s, "--import", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let first = 3000u64;
    for i in 0..first {
        writeln!(stdin, "{}", synthetic(i)).unwrap();
    }
    stdin.flush().unwrap();
    // The writer commits every 2 s; wait (bounded) until all of the first
    // batch is searchable while the importer is still running.
    let t0 = Instant::now();
    loop {
        if count(data_s, "").unwrap_or(0) == first {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "first batch never committed"
        );
        assert!(child.try_wait().unwrap().is_none(), "importer exited early");
        std::thread::sleep(Duration::from_millis(200));
    }
    // More sessions, then SIGKILL while they are (probably) uncommitted.
    let more = 2000u64;
    for i in first..first + more {
        writeln!(stdin, "{}", synthetic(i)).unwrap();
    }
    stdin.flush().unwrap();
    child.kill().unwrap();
    let _ = child.wait();
    drop(stdin);

    // The store opens and holds at least everything committed before.
    let n = count(data_s, "").expect("store opens after kill -9");
    assert!((first..=first + more).contains(&n), "{n}");
    assert_eq!(
        count(data_s, "ip.src == 10.1.0.0/16 && port.dst == 443"),
        Some(n)
    );
    assert_eq!(count(data_s, "node == n0"), Some(1));
    assert_eq!(count(data_s, &format!("node == n{}", first - 1)), Some(1));

    // The writer lock died with the process: a new import works.
    let mut child = Command::new(BIN)
        .args(["query", "--data", data_s, "--import", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{}", synthetic(1_000_000)).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(count(data_s, ""), Some(n + 1));
}

/// `moonwire capture -r` into a store: every document `--json` prints is
/// stored (same bodies but for `fileId`, set to the file's store id, and
/// the capture time), a second
/// capture of the file is skipped, and `moonwire pcap` gives back packets
/// of the input.
#[test]
fn offline_capture_stores_what_json_prints() {
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples/sample.pcap");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let data_s = data.to_str().unwrap();
    let (ok, json, err) = mw(&["capture", "-q", "--json", "-r", sample]);
    assert!(ok, "{err}");
    let printed: Vec<Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(printed.len() > 50);
    // The summary accounts for every packet and for each role's CPU time.
    let (ok, _, err) = mw(&["capture", "--dryrun", "-r", sample]);
    assert!(ok, "{err}");
    assert!(err.contains("packets read"), "{err}");
    assert!(
        err.contains("packets per packet-thread CPU-second"),
        "{err}"
    );
    let (ok, _, err) = mw(&["capture", "-q", "-r", sample, "--data", data_s]);
    assert!(ok, "{err}");
    assert_eq!(count(data_s, ""), Some(printed.len() as u64));

    // Same bodies apart from fileId (the store's id of the input file).
    let (ok, out, err) = mw(&[
        "query", "--data", data_s, "--format", "json", "--limit", "0",
    ]);
    assert!(ok, "{err}");
    let key = |b: &Value| b["network"]["community_id"].to_string() + &b["firstPacket"].to_string();
    let mut stored: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: Vec<Value> = stored.iter().map(|b| b["fileId"].clone()).collect();
    assert!(ids.iter().all(|i| *i == serde_json::json!([1])), "{ids:?}");
    let mut printed = printed;
    for b in stored.iter_mut().chain(printed.iter_mut()) {
        // `@timestamp` is the time of the capture run.
        let m = b.as_object_mut().unwrap();
        m.remove("fileId");
        m.remove("@timestamp");
    }
    stored.sort_by_key(key);
    printed.sort_by_key(key);
    let differ = stored.iter().zip(&printed).filter(|(a, b)| a != b).count();
    assert_eq!(differ, 0, "{differ} stored bodies differ from --json");

    // Captured completely: a second run skips the file.
    let (ok, _, err) = mw(&["capture", "-r", sample, "--data", data_s]);
    assert!(ok, "{err}");
    assert!(err.contains("already in the store"), "{err}");
    assert_eq!(count(data_s, ""), Some(stored.len() as u64));

    // Packets of the DNS sessions come back from the input file.
    let out = tmp.path().join("dns.pcap");
    let (ok, _, err) = mw(&[
        "pcap",
        "--data",
        data_s,
        "protocols == dns",
        "-w",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let input: std::collections::HashSet<Vec<u8>> = records(Path::new(sample))
        .into_iter()
        .map(|r| r.3)
        .collect();
    let got = records(&out);
    assert!(!got.is_empty());
    assert!(got.iter().all(|r| input.contains(&r.3)));

    // However many threads index, every session is stored once.
    let data3 = tmp.path().join("data3");
    let data3_s = data3.to_str().unwrap();
    let capture_with = |threads: &str| {
        let opt = format!("indexThreads={threads}");
        mw(&["capture", "-q", "-r", sample, "--data", data3_s, "-o", &opt])
    };
    let (ok, _, err) = capture_with("3");
    assert!(ok, "{err}");
    assert_eq!(count(data3_s, ""), Some(stored.len() as u64));
    assert_eq!(
        count(data3_s, "protocols == dns"),
        count(data_s, "protocols == dns")
    );
    let (ok, _, err) = capture_with("17");
    assert!(!ok && err.contains("indexThreads"), "{err}");
}
