//! Live capture on AF_PACKET: two network namespaces joined by a veth pair,
//! TCP and UDP traffic between them (on their own addresses only), and
//! `moonwire capture -i` on one end.

use std::process::{Command, Stdio};
use std::time::Duration;

/// Removes the namespaces (and with them the veth pair) even on failure.
struct Namespaces {
    a: String,
    b: String,
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn setup(tag: &str) -> Result<Namespaces, String> {
    // Each test has its own pair (tests run in parallel in one process).
    let ns = Namespaces {
        a: format!("mwA{tag}"),
        b: format!("mwB{tag}"),
    };
    let (va, vb) = (format!("mwa{tag}"), format!("mwb{tag}"));
    ip(&["netns", "add", &ns.a])?;
    ip(&["netns", "add", &ns.b])?;
    ip(&["link", "add", &va, "type", "veth", "peer", "name", &vb])?;
    ip(&["link", "set", &va, "netns", &ns.a])?;
    ip(&["link", "set", &vb, "netns", &ns.b])?;
    ip(&["-n", &ns.a, "addr", "add", "10.231.7.1/24", "dev", &va])?;
    ip(&["-n", &ns.b, "addr", "add", "10.231.7.2/24", "dev", &vb])?;
    for (n, v) in [(&ns.a, &va), (&ns.b, &vb)] {
        ip(&["-n", n, "link", "set", v, "up"])?;
        ip(&["-n", n, "link", "set", "lo", "up"])?;
    }
    Ok(ns)
}

/// Why the test cannot run here, if it cannot.
fn cannot_run() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("needs root (network namespaces and AF_PACKET)".into());
    }
    for tool in ["ip", "python3"] {
        if Command::new(tool).arg("-V").output().is_err()
            && Command::new(tool).arg("--version").output().is_err()
        {
            return Some(format!("{tool} is not installed"));
        }
    }
    None
}

/// The test's namespace pair (interfaces tagged with the process id and
/// `suffix`), or `None` after saying why the test cannot run here; in CI
/// that is a failure instead.
fn namespaces_or_skip(suffix: &str) -> Option<(String, Namespaces)> {
    let why = match cannot_run() {
        Some(why) => why,
        None => {
            let tag = format!("{}{suffix}", std::process::id() % 100_000);
            match setup(&tag) {
                Ok(ns) => return Some((tag, ns)),
                Err(e) => format!("cannot create namespaces: {e}"),
            }
        }
    };
    assert!(
        std::env::var_os("CI").is_none(),
        "live capture test cannot run in CI: {why}"
    );
    eprintln!("skipped: live capture test: {why}");
    None
}

const SERVER: &str = r#"
import socket, sys
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("10.231.7.2", 8080)); t.listen(1); t.settimeout(10)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("10.231.7.2", 5353)); u.settimeout(10)
c, _ = t.accept(); data = c.recv(100); c.sendall(b"pong:" + data); c.close()
d, peer = u.recvfrom(100); u.sendto(b"answer", peer)
"#;

/// `moonwire capture -i` on namespace B's end of the veth pair.
fn capture_in_b(ns_b: &str, tag: &str) -> Command {
    let mut c = Command::new("ip");
    c.args([
        "netns",
        "exec",
        ns_b,
        env!("CARGO_BIN_EXE_moonwire"),
        "capture",
        "-i",
    ])
    .arg(format!("mwb{tag}"));
    c
}

const CLIENT: &str = r#"
import socket, time
s = socket.create_connection(("10.231.7.2", 8080), timeout=10); s.sendall(b"hello moonwire")
print(s.recv(100)); s.close()
time.sleep(0.2)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(10); u.sendto(b"question", ("10.231.7.2", 5353)); print(u.recvfrom(100))
"#;

/// Runs SERVER in B and CLIENT in A while `capture` (started in B) runs,
/// then waits for the capture to end successfully; its stdout and stderr.
fn exchange_while_capturing(ns: &Namespaces, capture: std::process::Child) -> (String, String) {
    std::thread::sleep(Duration::from_millis(800));
    let server = Command::new("ip")
        .args(["netns", "exec", &ns.b, "python3", "-c", SERVER])
        .spawn()
        .expect("start server");
    std::thread::sleep(Duration::from_millis(500));
    let client = Command::new("ip")
        .args([
            "netns", "exec", &ns.a, "timeout", "15", "python3", "-c", CLIENT,
        ])
        .output()
        .expect("run client");
    assert!(
        client.status.success(),
        "client: {}",
        String::from_utf8_lossy(&client.stderr)
    );
    let _ = server.wait_with_output();
    let out = capture.wait_with_output().expect("moonwire finishes");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "moonwire failed: {stderr}");
    (String::from_utf8_lossy(&out.stdout).into_owned(), stderr)
}

#[test]
fn live_capture_between_namespaces() {
    let Some((tag, ns)) = namespaces_or_skip("a") else {
        return;
    };
    let capture = capture_in_b(&ns.b, &tag)
        .args(["--json", "--duration", "5"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start moonwire");
    let (stdout, stderr) = exchange_while_capturing(&ns, capture);
    let docs: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let tcp = docs
        .iter()
        .find(|d| d["ipProtocol"] == 6 && d["destination"]["port"] == 8080)
        .unwrap_or_else(|| panic!("no TCP session in {docs:#?}\n{stderr}"));
    assert_eq!(tcp["source"]["ip"], "10.231.7.1");
    assert_eq!(tcp["destination"]["ip"], "10.231.7.2");
    assert_eq!(tcp["tcpflags"]["syn"], 1);
    assert_eq!(tcp["tcpflags"]["syn-ack"], 1);
    assert_eq!(tcp["client"]["bytes"], "hello moonwire".len());
    assert_eq!(tcp["server"]["bytes"], "pong:hello moonwire".len());
    let udp = docs
        .iter()
        .find(|d| d["ipProtocol"] == 17 && d["destination"]["port"] == 5353)
        .unwrap_or_else(|| panic!("no UDP session in {docs:#?}"));
    assert_eq!(udp["source"]["ip"], "10.231.7.1");
    assert_eq!(udp["client"]["bytes"], "question".len());
    assert_eq!(udp["server"]["bytes"], "answer".len());
    assert!(stderr.contains("packets read"), "summary missing: {stderr}");
}

/// On a quiet link the reader still hands packets over and moves the
/// packet threads' clocks, so an idle session is saved when its timeout
/// passes, while the capture goes on (not only when it stops).
#[test]
fn live_capture_saves_idle_sessions_while_running() {
    use std::io::BufRead;
    let Some((tag, ns)) = namespaces_or_skip("b") else {
        return;
    };
    let mut capture = capture_in_b(&ns.b, &tag)
        .args(["--json", "--duration", "30", "-o", "udpTimeout=1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moonwire");
    let stdout = capture.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let lines = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(800));
    let sent = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.a,
            "python3",
            "-c",
            "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b'quiet', ('10.231.7.2', 5353))",
        ])
        .status()
        .expect("send datagram");
    assert!(sent.success());
    // One datagram and then silence: its session must come out within
    // a few seconds (timeout 1 s), long before the 30 s capture ends.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let mut found = None;
    while found.is_none() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let Ok(line) = rx.recv_timeout(left) else {
            break;
        };
        let doc: serde_json::Value = serde_json::from_str(&line).expect("JSON line");
        if doc["ipProtocol"] == 17 && doc["destination"]["port"] == 5353 {
            found = Some(doc);
        }
    }
    let still_running = capture.try_wait().expect("poll moonwire").is_none();
    let _ = capture.kill();
    let _ = capture.wait();
    let _ = lines.join();
    let doc = found.expect("the idle UDP session was not saved while the capture ran");
    assert!(still_running, "saved only when the capture ended");
    assert_eq!(doc["source"]["ip"], "10.231.7.1");
    assert_eq!(doc["client"]["bytes"], "quiet".len());
}

/// A live capture into the store writes its packets into `pcapDir` (not
/// the data directory), and `moonwire pcap` reads the sessions' packets
/// back from there.
#[test]
fn live_capture_into_the_store_writes_packets_to_pcap_dir() {
    let Some((tag, ns)) = namespaces_or_skip("p") else {
        return;
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path().join("data");
    let pcaps = tmp.path().join("packets");
    let capture = capture_in_b(&ns.b, &tag)
        .args(["--duration", "5", "-o"])
        .arg(format!("pcapDir={}", pcaps.display()))
        .arg("--data")
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start moonwire");
    exchange_while_capturing(&ns, capture);

    let written: Vec<_> = std::fs::read_dir(&pcaps)
        .expect("pcapDir was made")
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "pcap"))
        .collect();
    assert!(!written.is_empty(), "no packet file in {}", pcaps.display());
    let in_data = std::fs::read_dir(data.join("pcap")).map_or(0, |d| d.count());
    assert_eq!(in_data, 0, "packets went to the data directory");

    let back = tmp.path().join("tcp.pcap");
    let got = Command::new(env!("CARGO_BIN_EXE_moonwire"))
        .args(["pcap", "--data"])
        .arg(&data)
        .args(["port.dst == 8080", "-w"])
        .arg(&back)
        .output()
        .expect("run moonwire pcap");
    assert!(
        got.status.success(),
        "moonwire pcap: {}",
        String::from_utf8_lossy(&got.stderr)
    );
    let bytes = std::fs::read(&back).expect("pcap written");
    // Header plus the session's packets (handshake, data both ways, close).
    assert!(bytes.len() > 24 + 6 * 16, "{} bytes", bytes.len());
    let hello = b"hello moonwire";
    assert!(
        bytes.windows(hello.len()).any(|w| w == hello),
        "the client's data is not in the packets read back"
    );
}
