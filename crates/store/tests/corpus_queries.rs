//! Loads every session document of the Arkime corpus into a temporary
//! store, runs Arkime expressions, and compares each result set with the
//! set computed directly from the JSON documents by an independent
//! predicate written here.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::Arc;

use fields::FieldRegistry;
use serde_json::Value;
use store::{FileStatus, Store, TimeRange, WriterOptions};

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

/// Every body of the corpus, each tagged with a unique `node` value
/// (`d<N>`) so result sets can be compared by identity.
fn load_bodies(dir: &std::path::Path) -> Vec<Value> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "test"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let doc: Value = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
        for s in doc["sessions3"].as_array().into_iter().flatten() {
            let mut b = s["body"].clone();
            b["node"] = Value::from(format!("d{}", out.len()));
            out.push(b);
        }
    }
    out
}

/// Values at a dotted path; arrays (of objects or values) are walked.
fn vals<'a>(v: &'a Value, path: &str) -> Vec<&'a Value> {
    fn go<'a>(v: &'a Value, parts: &[&str], out: &mut Vec<&'a Value>) {
        match v {
            Value::Array(a) => a.iter().for_each(|x| go(x, parts, out)),
            Value::Object(m) if !parts.is_empty() => {
                // Keys with dots are not used by the paths queried here
                // except `tcpflags.syn-ack`, which is nested.
                if let Some(c) = m.get(parts[0]) {
                    go(c, &parts[1..], out);
                }
            }
            Value::Null => {}
            other if parts.is_empty() => out.push(other),
            _ => {}
        }
    }
    let parts: Vec<&str> = path.split('.').collect();
    let mut out = Vec::new();
    go(v, &parts, &mut out);
    out
}

fn strs(b: &Value, p: &str) -> Vec<String> {
    vals(b, p)
        .into_iter()
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

fn ints(b: &Value, p: &str) -> Vec<i64> {
    vals(b, p)
        .into_iter()
        .filter_map(|v| {
            v.as_i64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
        .collect()
}

fn ips(b: &Value, p: &str) -> Vec<IpAddr> {
    vals(b, p)
        .into_iter()
        .filter_map(|v| v.as_str()?.parse().ok())
        .collect()
}

fn in_v4(ip: &IpAddr, net: &str, bits: u32) -> bool {
    let net: Ipv4Addr = net.parse().unwrap();
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    match ip {
        IpAddr::V4(a) => u32::from(*a) & mask == u32::from(net) & mask,
        IpAddr::V6(_) => false,
    }
}

fn in_v6(ip: &IpAddr, net: &str, bits: u32) -> bool {
    let net: Ipv6Addr = net.parse().unwrap();
    let mask = if bits == 0 {
        0
    } else {
        u128::MAX << (128 - bits)
    };
    match ip {
        IpAddr::V6(a) => u128::from(*a) & mask == u128::from(net) & mask,
        IpAddr::V4(_) => false,
    }
}

fn glob(pat: &str, s: &str) -> bool {
    wildmatch::WildMatch::new(pat).matches(s)
}

fn re(pat: &str, s: &str) -> bool {
    regex::Regex::new(&format!("^(?:{pat})$"))
        .unwrap()
        .is_match(s)
}

fn has(b: &Value, p: &str) -> bool {
    !vals(b, p).is_empty()
}

type Pred = Box<dyn Fn(&Value) -> bool>;

fn cases() -> Vec<(&'static str, Pred)> {
    let ms = |s: i64| s * 1000;
    vec![
        // ip: single address, CIDR, short prefix, multi-field, v6, !=
        (
            "ip.src == 10.0.0.1",
            Box::new(|b| {
                ips(b, "source.ip")
                    .iter()
                    .any(|i| *i == "10.0.0.1".parse::<IpAddr>().unwrap())
            }),
        ),
        (
            "ip.src == 10.0.0.0/8",
            Box::new(|b| ips(b, "source.ip").iter().any(|i| in_v4(i, "10.0.0.0", 8))),
        ),
        (
            "ip.dst == 192.168",
            Box::new(|b| {
                ips(b, "destination.ip")
                    .iter()
                    .any(|i| in_v4(i, "192.168.0.0", 16))
            }),
        ),
        (
            "ip.dst != 10.0.0.0/8",
            Box::new(|b| {
                !ips(b, "destination.ip")
                    .iter()
                    .any(|i| in_v4(i, "10.0.0.0", 8))
            }),
        ),
        (
            "ip == 10.180.156.141",
            Box::new(|b| {
                let t: IpAddr = "10.180.156.141".parse().unwrap();
                [
                    "source.ip",
                    "destination.ip",
                    "dns.ip",
                    "http.xffIp",
                    "email.ip",
                    "srcOuterIp",
                    "dstOuterIp",
                    "dns.answers.ip",
                    "dns.nameserverIp",
                    "arp.ip",
                    "nbns.ip",
                    "socks.ip",
                    "radius.framedIp",
                    "radius.nasIp",
                    "dhcp.requestIp",
                    "stun.xorMappedIp",
                    "stun.xorPeerIp",
                    "stun.xorRelayedIp",
                ]
                .iter()
                .any(|p| ips(b, p).contains(&t))
            }),
        ),
        (
            "ip.src == 2001::/16 || ip.src == fe80::/10",
            Box::new(|b| {
                ips(b, "source.ip")
                    .iter()
                    .any(|i| in_v6(i, "2001::", 16) || in_v6(i, "fe80::", 10))
            }),
        ),
        (
            "ip.src == [10.0.0.1, 192.168.0.0/16]",
            Box::new(|b| {
                ips(b, "source.ip").iter().any(|i| {
                    *i == "10.0.0.1".parse::<IpAddr>().unwrap() || in_v4(i, "192.168.0.0", 16)
                })
            }),
        ),
        ("ip.xff == EXISTS!", Box::new(|b| has(b, "http.xffIp"))),
        // integers: ==, lists, ranges, every comparison, count fields
        (
            "port.dst == 53",
            Box::new(|b| ints(b, "destination.port").contains(&53)),
        ),
        (
            "port.dst == [80,443]",
            Box::new(|b| {
                ints(b, "destination.port")
                    .iter()
                    .any(|p| *p == 80 || *p == 443)
            }),
        ),
        (
            "port.dst < 1024",
            Box::new(|b| ints(b, "destination.port").iter().any(|p| *p < 1024)),
        ),
        (
            "port.dst <= 80",
            Box::new(|b| ints(b, "destination.port").iter().any(|p| *p <= 80)),
        ),
        (
            "port.src > 60000",
            Box::new(|b| ints(b, "source.port").iter().any(|p| *p > 60000)),
        ),
        (
            "port.src >= 1024 && port.dst < 1024",
            Box::new(|b| {
                ints(b, "source.port").iter().any(|p| *p >= 1024)
                    && ints(b, "destination.port").iter().any(|p| *p < 1024)
            }),
        ),
        (
            "port.dst != 80",
            Box::new(|b| !ints(b, "destination.port").contains(&80)),
        ),
        (
            "port.dst == 8000-9000",
            Box::new(|b| {
                ints(b, "destination.port")
                    .iter()
                    .any(|p| (8000..=9000).contains(p))
            }),
        ),
        (
            "port == 53",
            Box::new(|b| {
                ints(b, "source.port").contains(&53)
                    || ints(b, "destination.port").contains(&53)
                    || ints(b, "socks.port").contains(&53)
                    || ints(b, "stun.xorMappedPort").contains(&53)
                    || ints(b, "stun.xorPeerPort").contains(&53)
                    || ints(b, "stun.xorRelayedPort").contains(&53)
            }),
        ),
        (
            "bytes.src > 1000",
            Box::new(|b| ints(b, "source.bytes").iter().any(|x| *x > 1000)),
        ),
        (
            "packets < 3",
            Box::new(|b| ints(b, "network.packets").iter().any(|x| *x < 3)),
        ),
        (
            "http.statuscode == 200",
            Box::new(|b| ints(b, "http.statuscode").contains(&200)),
        ),
        (
            "http.statuscode >= 400",
            Box::new(|b| ints(b, "http.statuscode").iter().any(|x| *x >= 400)),
        ),
        (
            "http.uri.cnt > 1",
            Box::new(|b| ints(b, "http.uriCnt").iter().any(|x| *x > 1)),
        ),
        (
            "tcpflags.syn-ack >= 1",
            Box::new(|b| ints(b, "tcpflags.syn-ack").iter().any(|x| *x >= 1)),
        ),
        // Equality on numbers searched through their column only.
        (
            "ip.protocol == 17",
            Box::new(|b| ints(b, "ipProtocol").contains(&17)),
        ),
        (
            "tcpflags.syn == [2,3]",
            Box::new(|b| ints(b, "tcpflags.syn").iter().any(|x| *x == 2 || *x == 3)),
        ),
        (
            "ttl.src == 64",
            Box::new(|b| ints(b, "srcTTL").contains(&64)),
        ),
        (
            "ip.protocol == 17 && (port.dst == 53 || port.src == 53)",
            Box::new(|b| {
                ints(b, "ipProtocol").contains(&17)
                    && (ints(b, "destination.port").contains(&53)
                        || ints(b, "source.port").contains(&53))
            }),
        ),
        // terms: exact, lists, !=, quoted, wildcards, regex, case folding
        (
            "protocols == http",
            Box::new(|b| strs(b, "protocol").iter().any(|s| s == "http")),
        ),
        (
            "protocols == [http,tls]",
            Box::new(|b| {
                strs(b, "protocol")
                    .iter()
                    .any(|s| s == "http" || s == "tls")
            }),
        ),
        (
            "protocols != udp",
            Box::new(|b| !strs(b, "protocol").iter().any(|s| s == "udp")),
        ),
        (
            "protocols == /dns|http/",
            Box::new(|b| {
                strs(b, "protocol")
                    .iter()
                    .any(|s| s == "dns" || s == "http")
            }),
        ),
        (
            "protocols == s*",
            Box::new(|b| strs(b, "protocol").iter().any(|s| s.starts_with('s'))),
        ),
        (
            "tags == \"flip test\"",
            Box::new(|b| strs(b, "tags").iter().any(|s| s == "flip test")),
        ),
        (
            "tags == truncated-pcap",
            Box::new(|b| strs(b, "tags").iter().any(|s| s == "truncated-pcap")),
        ),
        (
            "tags == \"*\"",
            Box::new(|b| strs(b, "tags").iter().any(|s| s == "*")),
        ),
        (
            "tags == *:*",
            Box::new(|b| strs(b, "tags").iter().any(|s| s.contains(':'))),
        ),
        (
            "host.http == *.com",
            Box::new(|b| {
                strs(b, "http.host")
                    .iter()
                    .any(|s| glob("*.com", &s.to_lowercase()))
            }),
        ),
        (
            "host.http == WWW.GOOGLE.COM",
            Box::new(|b| {
                strs(b, "http.host")
                    .iter()
                    .any(|s| s.to_lowercase() == "www.google.com")
            }),
        ),
        (
            "http.uri == /.*\\.(gif|jpg|png).*/",
            Box::new(|b| {
                strs(b, "http.uri")
                    .iter()
                    .any(|s| re(".*\\.(gif|jpg|png).*", s))
            }),
        ),
        (
            "http.uri == /www.google.com\\//",
            Box::new(|b| strs(b, "http.uri").iter().any(|s| s == "www.google.com/")),
        ),
        (
            "http.user-agent == *Mozilla*",
            Box::new(|b| {
                strs(b, "http.useragent")
                    .iter()
                    .any(|s| s.contains("Mozilla"))
            }),
        ),
        (
            "http.method == GET",
            Box::new(|b| strs(b, "http.method").iter().any(|s| s == "GET")),
        ),
        (
            "http.hasheader.src == user-agent",
            Box::new(|b| {
                strs(b, "http.requestHeader")
                    .iter()
                    .any(|s| s == "user-agent")
            }),
        ),
        (
            "host == *google*",
            Box::new(|b| {
                [
                    "http.host",
                    "dns.host",
                    "email.host",
                    "quic.host",
                    "socks.host",
                    "dns.queryHost",
                    "dns.nameserverHost",
                    "dns.mailserverHost",
                    "dns.answers.name",
                    "dns.answers.cname",
                    "dns.answers.nameserver",
                    "dns.answers.mx",
                    "cert.alt",
                    "nbns.host",
                    "nbns.queryHost",
                    "smb.domain",
                    "oracle.host",
                    "dhcp.host",
                ]
                .iter()
                .any(|p| {
                    strs(b, p)
                        .iter()
                        .any(|s| s.to_lowercase().contains("google"))
                })
            }),
        ),
        (
            "tls.cipher == *AES*",
            Box::new(|b| {
                strs(b, "tls.cipher")
                    .iter()
                    .any(|s| s.to_uppercase().contains("AES"))
            }),
        ),
        (
            "dns.query.type == [A,aaaa]",
            Box::new(|b| strs(b, "dns.qt").iter().any(|s| s == "A" || s == "AAAA")),
        ),
        (
            "email.src == *@*",
            Box::new(|b| strs(b, "email.src").iter().any(|s| s.contains('@'))),
        ),
        (
            "mac.src == 00:*",
            Box::new(|b| {
                strs(b, "source.mac")
                    .iter()
                    .any(|s| s.to_lowercase().starts_with("00:"))
            }),
        ),
        ("cert.issuer.cn == *", Box::new(|b| has(b, "cert.issuerCN"))),
        // EXISTS!
        ("tags == EXISTS!", Box::new(|b| has(b, "tags"))),
        ("tags != EXISTS!", Box::new(|b| !has(b, "tags"))),
        ("host.dns != EXISTS!", Box::new(|b| !has(b, "dns.host"))),
        ("cert == EXISTS!", Box::new(|b| has(b, "cert"))),
        (
            "vlan == EXISTS! && ip.protocol == 6",
            Box::new(|b| has(b, "network.vlan.id") && ints(b, "ipProtocol").contains(&6)),
        ),
        // dates (seconds in expressions, milliseconds in documents)
        (
            "starttime >= \"2014/01/01\"",
            Box::new(move |b| {
                ints(b, "firstPacket")
                    .iter()
                    .any(|t| *t >= ms(1_388_534_400))
            }),
        ),
        (
            "stoptime < 1300000000",
            Box::new(move |b| ints(b, "lastPacket").iter().any(|t| *t < ms(1_300_000_000))),
        ),
        (
            "cert.notafter < \"2020-01-01T00:00:00Z\"",
            Box::new(move |b| {
                ints(b, "cert.notAfter")
                    .iter()
                    .any(|t| *t < ms(1_577_836_800))
            }),
        ),
        // boolean structure
        (
            "!(protocols == tcp)",
            Box::new(|b| !strs(b, "protocol").iter().any(|s| s == "tcp")),
        ),
        (
            "!protocols == tcp && !protocols == udp",
            Box::new(|b| !strs(b, "protocol").iter().any(|s| s == "tcp" || s == "udp")),
        ),
        (
            "(port.dst == 53 || port.dst == 80) && !(ip.src == 10.0.0.0/8)",
            Box::new(|b| {
                (ints(b, "destination.port").contains(&53)
                    || ints(b, "destination.port").contains(&80))
                    && !ips(b, "source.ip").iter().any(|i| in_v4(i, "10.0.0.0", 8))
            }),
        ),
        (
            "ip.src == 10.0.0.1 && port.dst == 443",
            Box::new(|b| {
                ips(b, "source.ip").contains(&"10.0.0.1".parse().unwrap())
                    && ints(b, "destination.port").contains(&443)
            }),
        ),
    ]
}

/// The index document's values per field, ignoring their order and the
/// stored `_source` text.
fn indexed_values(schema: &store::StoreSchema, doc: &tantivy::TantivyDocument) -> Vec<String> {
    use tantivy::Document as _;
    let mut out: Vec<String> = doc
        .to_named_doc(schema.schema())
        .0
        .into_iter()
        .filter(|(name, _)| name != "_source")
        .flat_map(|(name, vals)| vals.into_iter().map(move |v| format!("{name} {v:?}")))
        .collect();
    out.sort();
    out
}

#[test]
fn json_text_and_parsed_body_index_the_same() {
    let Some(dir) = corpus() else { return };
    let bodies = load_bodies(&dir);
    let schema = store::StoreSchema::new(Arc::new(FieldRegistry::builtin()));
    for b in &bodies {
        let text = b.to_string();
        let streamed = schema.json_to_document(&text).unwrap();
        let parsed = schema.to_document(b);
        let got = indexed_values(&schema, &streamed);
        assert!(got.len() > 10, "{text}");
        assert_eq!(got, indexed_values(&schema, &parsed), "{text}");
    }
}

#[test]
fn corpus_queries_match_direct_evaluation() {
    let Some(dir) = corpus() else { return };
    let bodies = load_bodies(&dir);
    assert!(bodies.len() > 300);
    // Once through parsed bodies (`add`, the importer) and once through
    // JSON text (`add_json`, the capture pipeline).
    for as_text in [false, true] {
        check_corpus_queries(&bodies, as_text);
    }
}

fn check_corpus_queries(bodies: &[Value], as_text: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let reg = Arc::new(FieldRegistry::builtin());
    let store = Store::open_or_create(tmp.path(), reg.clone()).unwrap();
    let w = store.writer(WriterOptions::default()).unwrap();
    for b in bodies {
        if as_text {
            w.add_json(b.to_string()).unwrap();
        } else {
            w.add(b.clone()).unwrap();
        }
    }
    let stats = w.finish().unwrap();
    assert_eq!(stats.documents, bodies.len() as u64);
    assert_eq!(stats.rejected, 0);

    let mut nonempty = 0;
    let cases = cases();
    assert!(cases.len() >= 40);
    for (expr, pred) in &cases {
        let want: BTreeSet<String> = bodies
            .iter()
            .filter(|b| pred(b))
            .map(|b| b["node"].as_str().unwrap().to_string())
            .collect();
        let hits = store
            .search(expr, TimeRange::default())
            .unwrap_or_else(|e| panic!("{expr}: {e}"));
        let got: BTreeSet<String> = hits
            .bodies()
            .map(|b| b.unwrap()["node"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(got, want, "{expr}: index vs documents");
        assert_eq!(
            store.count(expr, TimeRange::default()).unwrap(),
            want.len() as u64,
            "{expr}"
        );
        if !want.is_empty() && want.len() < bodies.len() {
            nonempty += 1;
        }
    }
    // Most queries must select a proper, non-empty subset, or the test
    // proves little.
    assert!(nonempty >= 40, "only {nonempty} selective queries");
}

#[test]
fn time_bounds_sort_and_unique() {
    let Some(dir) = corpus() else { return };
    let bodies = load_bodies(&dir);
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open_or_create(tmp.path(), Arc::new(FieldRegistry::builtin())).unwrap();
    let w = store.writer(WriterOptions::default()).unwrap();
    for b in &bodies {
        w.add(b.clone()).unwrap();
    }
    w.finish().unwrap();

    // Time range: sessions overlapping [start, stop].
    let (start, stop) = (1_380_000_000_000i64, 1_390_000_000_000i64);
    let want = bodies
        .iter()
        .filter(|b| {
            b["lastPacket"].as_i64().unwrap() >= start && b["firstPacket"].as_i64().unwrap() <= stop
        })
        .count();
    let t = TimeRange {
        start_ms: Some(start),
        stop_ms: Some(stop),
    };
    assert_eq!(store.count("", t).unwrap(), want as u64);
    assert!(want > 0 && want < bodies.len());

    // Sorting by bytes descending.
    let mut hits = store
        .search("protocols == tcp", TimeRange::default())
        .unwrap();
    hits.sort_by("bytes", true).unwrap();
    let got: Vec<i64> = hits
        .bodies()
        .map(|b| b.unwrap()["network"]["bytes"].as_i64().unwrap())
        .collect();
    let mut sorted = got.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(got, sorted);

    // Unique values with counts, checked against the documents.
    let hits = store.search("", TimeRange::default()).unwrap();
    let uniq = hits.unique("protocols").unwrap();
    for (v, n) in &uniq {
        let want = bodies
            .iter()
            .filter(|b| strs(b, "protocol").contains(v))
            .count() as u64;
        assert_eq!(*n, want, "unique protocols {v}");
    }
    assert!(uniq.windows(2).all(|w| w[0].1 >= w[1].1));
    let ports = hits.unique("port.dst").unwrap();
    let want53 = bodies
        .iter()
        .filter(|b| ints(b, "destination.port").contains(&53))
        .count() as u64;
    assert!(ports.iter().any(|(v, n)| v == "53" && *n == want53));
    let ipu = hits.unique("ip.src").unwrap();
    assert!(
        ipu.iter().any(|(v, _)| v == "10.0.0.1"),
        "IPv4 shown without ::ffff:"
    );
}

#[test]
fn bad_expressions_report_position_and_name() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open_or_create(tmp.path(), Arc::new(FieldRegistry::builtin())).unwrap();
    let e = store
        .check("port.dst == 80 && bogus.field == 1")
        .unwrap_err();
    let store::StoreError::Query(q) = e else {
        panic!("{e}")
    };
    assert_eq!(q.pos, 18);
    assert!(q.to_string().contains("bogus.field"));
    for (expr, needle) in [
        ("port.dst == abc", "not a number"),
        ("ip.src == 10.0.0.0/40", "not an IP"),
        ("port.dst == *8", "wildcards need a string field"),
        ("starttime > yesterday", "not a date"),
        ("http.uri == /a(/", "bad regex"),
        ("port.dst ≈ 3", "expected an operator"),
        ("port.dst < [1,2]", "single value"),
        ("cert == x", "list of objects"),
    ] {
        let err = store.check(expr).unwrap_err().to_string();
        assert!(err.contains(needle), "{expr}: {err}");
    }
}

#[test]
fn same_file_twice_is_skipped_and_interrupted_file_restarts() {
    let Some(dir) = corpus() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open_or_create(tmp.path(), Arc::new(FieldRegistry::builtin())).unwrap();
    let pcap = dir.join("dns-udp.pcap");
    let w = store.writer(WriterOptions::default()).unwrap();
    let FileStatus::New(id) = w.begin_file(&pcap).unwrap() else {
        panic!()
    };
    w.add(
        serde_json::json!({"fileId": [id], "protocol": ["dns"], "firstPacket": 1, "lastPacket": 2}),
    )
    .unwrap();
    // Not finished: a second writer (after a crash) restarts the file.
    w.commit().unwrap();
    drop(w);
    assert_eq!(
        store
            .count("protocols == dns", TimeRange::default())
            .unwrap(),
        1
    );
    let w = store.writer(WriterOptions::default()).unwrap();
    assert_eq!(w.begin_file(&pcap).unwrap(), FileStatus::Restarted(id));
    w.add(
        serde_json::json!({"fileId": [id], "protocol": ["dns"], "firstPacket": 1, "lastPacket": 2}),
    )
    .unwrap();
    w.finish_file(id).unwrap();
    w.finish().unwrap();
    // The partial session was replaced, not duplicated.
    assert_eq!(
        store
            .count("protocols == dns", TimeRange::default())
            .unwrap(),
        1
    );
    let w = store.writer(WriterOptions::default()).unwrap();
    assert_eq!(w.begin_file(&pcap).unwrap(), FileStatus::AlreadyStored(id));
    w.finish().unwrap();
    // Reopening the store from disk keeps all of it.
    drop(store);
    let store = Store::open(tmp.path(), Arc::new(FieldRegistry::builtin())).unwrap();
    assert_eq!(store.count("", TimeRange::default()).unwrap(), 1);
    assert_eq!(store.file_path(id).unwrap(), pcap.canonicalize().unwrap());
}

#[test]
fn custom_fields_are_indexed_and_old_stores_still_open() {
    let tmp = tempfile::tempdir().unwrap();
    let mut reg = FieldRegistry::builtin();
    reg.add_custom_line("asset.src=kind:lotermfield;count:true;friendly:Asset Src;db:assetName.src;help:Asset Name Src")
        .unwrap();
    reg.add_custom_line("risk=kind:float;db:risk;help:Risk score")
        .unwrap();
    let store = Store::open_or_create(tmp.path(), Arc::new(reg.clone())).unwrap();
    let w = store.writer(WriterOptions::default()).unwrap();
    w.add(serde_json::json!({"assetName": {"src": ["WebServer"]}, "risk": 0.75}))
        .unwrap();
    w.add(serde_json::json!({"assetName": {"src": ["db"]}, "risk": 2.5}))
        .unwrap();
    w.finish().unwrap();
    let t = TimeRange::default();
    assert_eq!(store.count("asset.src == webserver", t).unwrap(), 1);
    assert_eq!(store.count("risk > 1", t).unwrap(), 1);
    assert_eq!(store.count("risk == 0.75", t).unwrap(), 1);
    drop(store);
    // A registry with another custom field opens the same store; the new
    // field is not in that index and matches nothing.
    let mut reg2 = reg;
    reg2.add_custom_line("later=kind:integer;db:later").unwrap();
    let store = Store::open(tmp.path(), Arc::new(reg2)).unwrap();
    assert_eq!(store.count("later == 1", t).unwrap(), 0);
    assert_eq!(store.count("asset.src == db", t).unwrap(), 1);
}
