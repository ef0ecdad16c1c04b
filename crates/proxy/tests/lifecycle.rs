//! Configuration check, reload without dropping connections, graceful stop.

mod common;
use common::*;

use std::sync::Arc;

fn cfg(backend: std::net::SocketAddr, extra: &str) -> String {
    format!(
        "global\n  lua-load {{dir}}/s.lua\n\
         defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n\
         frontend fe\n  bind 127.0.0.1:0\n{extra}\n  default_backend be\n\
         backend be\n  server s1 {backend}\n"
    )
}

fn check_text(cfg: &str, lua: &str) -> Result<Vec<String>, String> {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    std::fs::write(dir.path().join("s.lua"), lua).unwrap();
    let p = dir.path().join("c.cfg");
    std::fs::write(&p, cfg.replace("{dir}", &d)).unwrap();
    proxy::check(&[p], Arc::new(|_, _| {})).map_err(|e| e.to_string().replace(&d, "DIR"))
}

#[test]
fn check_mode_reports_file_and_line() {
    let b = "127.0.0.1:9";
    let base = |extra: &str| {
        format!(
            "global\n  lua-load {{dir}}/s.lua\ndefaults\n  mode http\nfrontend fe\n  bind 127.0.0.1:0\n{extra}\n  default_backend be\nbackend be\n  server s {b}\n"
        )
    };
    let lua = "core.register_action('ok', {'http-req'}, function() end)\ncore.register_fetches('f', function() return 'x' end)\n";
    assert!(check_text(&base("  http-request lua.ok"), lua).is_ok());
    assert!(check_text(&base("  http-request set-header X %[lua.f]"), lua).is_ok());
    let e = check_text(&base("  http-request lua.missing"), lua).unwrap_err();
    assert_eq!(
        e,
        "DIR/c.cfg:7: Lua action 'lua.missing' is not registered for http-req"
    );
    let e = check_text(&base("  http-request set-header X %[lua.nope]"), lua).unwrap_err();
    assert!(
        e.starts_with("DIR/c.cfg:7: unknown Lua sample fetch 'lua.nope'"),
        "{e}"
    );
    let e = check_text(&base("  http-response lua.ok"), lua).unwrap_err();
    assert!(
        e.contains("c.cfg:7: Lua action 'lua.ok' is not registered for http-res"),
        "{e}"
    );
    let e = check_text(&base(""), "local x = \n").unwrap_err();
    assert!(e.starts_with("DIR/c.cfg:2:"), "{e}");
    assert!(e.contains("s.lua"), "{e}");
    let e = check_text(&base(""), "error('body failed')\n").unwrap_err();
    assert!(e.contains("body failed"), "{e}");
}

#[test]
fn reload_switches_lua_and_config_without_dropping_connections() {
    let b = backend();
    let svc = |v: &str| {
        format!("core.register_service('v', 'http', function(applet) applet:send('{v}') end)\n")
    };
    let mut p = start(
        &cfg(b.addr, "  http-request use-service lua.v if { path /v }"),
        &[("s.lua", &svc("v1"))],
    );
    let a = p.addr("fe");
    let mut old = Client::connect(a);
    assert_eq!(old.get("/v").body, "v1");
    // New Lua file and a new rule.
    std::fs::write(p.dir.path().join("s.lua"), svc("v2")).unwrap();
    let d = p.dir.path().display().to_string();
    std::fs::write(
        p.dir.path().join("haproxy.cfg"),
        cfg(
            b.addr,
            "  http-request use-service lua.v if { path /v }\n  http-request set-header X-Gen two",
        )
        .replace("{dir}", &d),
    )
    .unwrap();
    p.running.as_mut().unwrap().reload().unwrap();
    assert_eq!(p.addr("fe"), a, "the listening socket is kept");
    assert_eq!(get(a, "/v").body, "v2");
    assert!(get(a, "/x").body.contains("X-Gen: two"));
    // The connection opened before the reload still works.
    let r = old.get("/v");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, "v1");
    // A broken reload keeps the running configuration.
    std::fs::write(p.dir.path().join("s.lua"), "syntax error here").unwrap();
    assert!(p.running.as_mut().unwrap().reload().is_err());
    assert_eq!(get(a, "/v").body, "v2");
}

#[test]
fn graceful_stop_finishes_in_flight_requests() {
    let b = backend();
    let gate = Gate::new("go");
    let lua = format!(
        "core.register_action('wait', {{'http-req'}}, function(txn)\n  local s = core.tcp()\n  s:settimeout(10)\n  s:connect('{}')\n  txn.http:req_set_header('X-Gate', s:receive('*l'))\nend)\n",
        gate.addr
    );
    let mut p = start(
        &cfg(b.addr, "  http-request lua.wait if { path /slow }"),
        &[("s.lua", &lua)],
    );
    let a = p.addr("fe");
    let slow = std::thread::spawn(move || Client::connect(a).get("/slow"));
    // Wait (bounded) until the request is inside the script.
    assert!(eventually(250, || gate
        .connected
        .load(std::sync::atomic::Ordering::SeqCst)));
    let running = p.running.take().unwrap();
    let logs = p.logs.clone();
    let stopper = std::thread::spawn(move || running.stop());
    assert!(eventually(250, || logs
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("stopping: 1 connection"))));
    gate.open();
    let r = slow.join().unwrap();
    assert_eq!(r.status, 200);
    assert!(r.body.contains("X-Gate: go"));
    assert_eq!(r.header("connection"), Some("close"));
    stopper.join().unwrap();
}
