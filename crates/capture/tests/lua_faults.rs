//! Faulty scripts: errors in every callback type, a runaway loop, a memory
//! bomb and a MolochData kept past its callback. The capture completes, the
//! counters say what happened, and the documents are exactly those of a
//! run without scripts.

#[path = "lua/helpers.rs"]
mod helpers;

use std::path::PathBuf;

use helpers::{corpus, ok, post, script};
use serde_json::Value;

fn inputs(dir: &std::path::Path) -> Option<Vec<PathBuf>> {
    let pcap = dir.join("http.pcap");
    helpers::http_pcap(
        &pcap,
        &[
            (post("/a", b"first body"), ok(b"first answer")),
            (post("/b", b"second body"), ok(b"second answer")),
        ],
    );
    Some(vec![
        pcap,
        corpus("http-301-get.pcap")?,
        corpus("dns-udp.pcap")?,
    ])
}

/// Documents without their write time, in a stable order.
fn normalized(docs: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = docs
        .iter()
        .map(|d| {
            let mut d = d.clone();
            if let Some(m) = d.as_object_mut() {
                m.remove("@timestamp");
            }
            d.to_string()
        })
        .collect();
    v.sort();
    v
}

#[test]
fn errors_in_every_callback_type_are_isolated_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let Some(inputs) = inputs(dir.path()) else {
        return;
    };
    let plain = helpers::run(&[], &[], helpers::mini_http_classifiers(), inputs.clone());
    let r = helpers::run(
        &[script("faults_errors.lua")],
        &["packetThreads=2"],
        helpers::mini_http_classifiers(),
        inputs,
    );
    assert_eq!(normalized(&r.docs), normalized(&plain.docs));
    assert_eq!(
        r.report.stats.sessions_written,
        plain.report.stats.sessions_written
    );
    let l = r.lua();
    assert!(l.callbacks > 0);
    let site = |line: u32| {
        l.error_sites
            .iter()
            .find(|s| s.site.ends_with(&format!("faults_errors.lua:{line}")))
            .unwrap_or_else(|| panic!("no errors at line {line}: {:?}", l.error_sites))
    };
    let sessions = r.docs.len() as u64;
    let tcp_sessions = r.docs.iter().filter(|d| d["ipProtocol"] == 6).count() as u64;
    assert!(site(6).first_message.contains("parser boom"));
    assert!(site(8).first_message.contains("classifier boom"));
    assert_eq!(
        site(8).count,
        tcp_sessions * 2,
        "both directions classified"
    );
    assert!(site(14).first_message.contains("nil"), "{:?}", site(14));
    // A non-string error value has no position: the callback's definition
    // line names it.
    assert!(site(17).count >= 1);
    assert!(
        site(22)
            .first_message
            .contains("unknown field 'no.such.field'")
    );
    assert_eq!(site(26).count, sessions);
    assert!(
        site(30).first_message.contains("not an integer"),
        "{:?}",
        site(30)
    );
    assert_eq!(site(30).count, sessions);
    let missing = l
        .error_sites
        .iter()
        .find(|s| s.first_message.contains("missingSaveFunction"))
        .expect("undefined callback counted");
    assert_eq!(missing.count, sessions);
    assert_eq!(l.errors, l.error_sites.iter().map(|s| s.count).sum::<u64>());
    assert_eq!(l.instruction_limit_hits + l.memory_limit_hits, 0);
}

#[test]
fn runaway_loop_memory_bomb_and_stale_data() {
    let dir = tempfile::tempdir().unwrap();
    let Some(inputs) = inputs(dir.path()) else {
        return;
    };
    let plain = helpers::run(&[], &[], helpers::mini_http_classifiers(), inputs.clone());
    let r = helpers::run(
        &[script("faults_limits.lua")],
        &["luaMaxInstructions=200000", "luaMaxMemory=16m"],
        helpers::mini_http_classifiers(),
        inputs,
    );
    assert_eq!(normalized(&r.docs), normalized(&plain.docs));
    let l = r.lua();
    let loops = l
        .error_sites
        .iter()
        .find(|s| s.site.ends_with("faults_limits.lua:5"))
        .unwrap_or_else(|| panic!("{:?}", l.error_sites));
    assert!(
        loops.first_message.contains("instruction budget"),
        "{loops:?}"
    );
    // Every chunk of every TCP session ran into the budget.
    assert_eq!(l.instruction_limit_hits, loops.count);
    assert!(loops.count >= 6, "{loops:?}");
    let udp_sessions = r.docs.iter().filter(|d| d["ipProtocol"] == 17).count() as u64;
    assert!(udp_sessions > 0);
    // Each direction of each UDP session is classified once; the bomb
    // (defined at line 10) fails every time.
    let bombs = l
        .error_sites
        .iter()
        .find(|s| s.site.ends_with("faults_limits.lua:10"))
        .unwrap_or_else(|| panic!("{:?}", l.error_sites));
    assert!(
        bombs.first_message.contains("not enough memory"),
        "{bombs:?}"
    );
    assert_eq!(l.memory_limit_hits, bombs.count);
    assert!(l.memory_limit_hits >= udp_sessions, "{l:?}");
    let stale = l
        .error_sites
        .iter()
        .find(|s| s.site.ends_with("faults_limits.lua:22"))
        .unwrap_or_else(|| panic!("{:?}", l.error_sites));
    assert!(
        stale.first_message.contains("after its callback"),
        "{stale:?}"
    );
    // The memory cap held: what the interpreter uses now is below it.
    assert!(l.memory_in_use < 16 << 20);
}

#[test]
fn error_in_http_response_callback() {
    let Some(tcp) = corpus("http-301-get.pcap") else {
        return;
    };
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let s = helpers::write_script(
        dir.path(),
        "resp.lua",
        &format!(
            r#"
            local svc = MolochHttpService.new("127.0.0.1:{port}", 1, 10)
            MolochSession.register_pre_save(function(session)
              session:incr_outstanding()
              svc:request("GET", "/", "", function(code, body)
                session:decr_outstanding()
                error("response boom " .. code)
              end)
            end)
            "#
        ),
    );
    let plain = helpers::run(&[], &[], protocols::ClassifierSet::new(), vec![tcp.clone()]);
    let r = helpers::run(&[s], &[], protocols::ClassifierSet::new(), vec![tcp]);
    assert_eq!(normalized(&r.docs), normalized(&plain.docs));
    let l = r.lua();
    assert_eq!(l.errors, 1, "{:?}", l.error_sites);
    assert!(l.error_sites[0].first_message.contains("response boom 0"));
    assert!(
        l.error_sites[0].site.ends_with("resp.lua:7"),
        "{:?}",
        l.error_sites
    );
}
