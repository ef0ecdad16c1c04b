//! `moonwire proxy` through the real binary: check mode, serving a Lua
//! service, SIGHUP reload and SIGTERM stop.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_moonwire")
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("moonwire-proxy-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn get(addr: SocketAddr) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

fn poll(mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..300 {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn check_mode_exit_codes_and_positions() {
    let d = tmpdir("check");
    std::fs::write(
        d.join("s.lua"),
        "core.register_service('hi', 'http', function(a) a:send('hi') end)\n",
    )
    .unwrap();
    let good = d.join("good.cfg");
    std::fs::write(
        &good,
        format!(
            "global\n  lua-load {}\nfrontend fe\n  mode http\n  bind 127.0.0.1:0\n  http-request use-service lua.hi\n",
            d.join("s.lua").display()
        ),
    )
    .unwrap();
    let out = Command::new(bin())
        .args(["proxy", "-c", "-f"])
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Configuration file is valid"));

    let bad = d.join("bad.cfg");
    std::fs::write(
        &bad,
        "frontend fe\n  bind 127.0.0.1:0\n  use_backend nowhere\n",
    )
    .unwrap();
    let out = Command::new(bin())
        .args(["proxy", "-c", "-f"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.cfg:3: unable to find required use_backend: 'nowhere'"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn serves_reloads_on_sighup_and_stops_on_sigterm() {
    let d = tmpdir("run");
    let lua = d.join("s.lua");
    std::fs::write(
        &lua,
        "core.register_service('hi', 'http', function(a) a:send('one') end)\n",
    )
    .unwrap();
    let port = free_port();
    let cfg = d.join("p.cfg");
    std::fs::write(
        &cfg,
        format!(
            "global\n  lua-load {}\ndefaults\n  timeout client 5s\nfrontend fe\n  mode http\n  bind 127.0.0.1:{port}\n  http-request use-service lua.hi\n",
            lua.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(bin())
        .args(["proxy", "-f"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let up = poll(|| get(addr).is_some_and(|r| r.ends_with("one")));
    if !up {
        let _ = child.kill();
        panic!("proxy did not serve");
    }
    std::fs::write(
        &lua,
        "core.register_service('hi', 'http', function(a) a:send('two') end)\n",
    )
    .unwrap();
    // The shell's built-in `kill`: no dependency on procps.
    let pid = child.id();
    assert!(
        Command::new("sh")
            .args(["-c", &format!("kill -HUP {pid}")])
            .status()
            .unwrap()
            .success()
    );
    let reloaded = poll(|| get(addr).is_some_and(|r| r.ends_with("two")));
    assert!(
        Command::new("sh")
            .args(["-c", &format!("kill -TERM {pid}")])
            .status()
            .unwrap()
            .success()
    );
    let mut code = None;
    poll(|| {
        code = child.try_wait().ok().flatten();
        code.is_some()
    });
    if code.is_none() {
        let _ = child.kill();
    }
    assert!(reloaded, "SIGHUP did not reload");
    assert_eq!(code.and_then(|c| c.code()), Some(0));
    let _ = std::fs::remove_dir_all(&d);
}
