//! The Arkime/Moloch Lua API over real captures: every session function and
//! property, classifiers, parsers, http_on, body feeds, MolochData and
//! save hooks, with the documents the pipeline writes.

#[path = "lua/helpers.rs"]
mod helpers;

use helpers::{Run, corpus, script, strings, tags};
use protocols::ClassifierSet;
use serde_json::Value;

#[test]
fn session_api_over_tcp_and_udp() {
    let (Some(tcp), Some(udp)) = (corpus("http-301-get.pcap"), corpus("dns-udp.pcap")) else {
        return;
    };
    let r: Run = helpers::run(
        &[script("api_session.lua")],
        &["packetThreads=2"],
        ClassifierSet::new(),
        vec![tcp, udp],
    );
    let l = r.lua();
    assert_eq!(l.errors, 0, "{:?}", l.error_sites);
    assert_eq!(l.interpreters, 2);
    let d = r.by_src_port(62341);
    let t = tags(d);
    for want in [
        "classified-dir0",
        "has-protocol-works",
        "get-nil",
        "unknown-field-rejected",
        "bad-int-rejected",
        "parser-stopped",
        "offset-classifier-dir1",
        "pre-save-true",
        "save-true",
    ] {
        assert!(t.contains(&want.to_string()), "missing tag {want}: {t:?}");
    }
    assert!(strings(d, "protocol").contains(&"luaproto".to_string()));
    let text = strings(d, "lua.text");
    assert!(text.contains(&"GET".to_string()), "{text:?}");
    assert!(
        text.contains(&"10.180.156.141|192.30.252.130|62341|80|tcp|tcp".to_string()),
        "{text:?}"
    );
    assert!(
        text.contains(&"MolochSession: tcp 10.180.156.141:62341 -> 192.30.252.130:80".to_string()),
        "{text:?}"
    );
    assert!(text.contains(&"get=145".to_string()), "{text:?}");
    assert!(
        text.contains(&"get-ip=10.180.156.141:80".to_string()),
        "{text:?}"
    );
    assert!(
        text.iter()
            .any(|s| s.starts_with("get-tags=classified-dir0")),
        "{text:?}"
    );
    assert_eq!(d["lua"]["textCnt"], text.len());
    assert!(strings(d, "http.uri").contains(&"/from-lua".to_string()));
    let nums: Vec<i64> = d["lua"]["number"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    // 145 request bytes; 2 chunks before the parser stopped (the classified
    // one and the response); 145 and 107 bytes per direction; classified once.
    assert_eq!(nums, vec![145, 1002, 2145, 3107, 4001]);

    let dns: Vec<_> = r
        .docs
        .iter()
        .filter(|d| tags(d).contains(&"udp-classified".to_string()))
        .collect();
    assert!(!dns.is_empty());
    for d in dns {
        assert!(strings(d, "lua.text").contains(&"udp:53".to_string()));
        // Both datagrams of the query/response reached the UDP parser.
        assert!(d["lua"]["number"].as_array().unwrap().len() >= 2, "{d}");
        assert!(tags(d).contains(&"save-true".to_string()));
    }
}

#[test]
fn http_on_body_feed_and_data_api() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("http.pcap");
    let body: Vec<u8> = (0..2500u32)
        .map(|i| b"abcdefgh"[(i % 8) as usize])
        .collect();
    helpers::http_pcap(
        &pcap,
        &[(helpers::post("/upload?x=1", &body), helpers::ok(b"thanks"))],
    );
    let r = helpers::run(
        &[script("api_http.lua")],
        &[],
        helpers::mini_http_classifiers(),
        vec![pcap],
    );
    let l = r.lua();
    assert_eq!(l.errors, 0, "{:?}", l.error_sites);
    assert_eq!(r.docs.len(), 1);
    let d = &r.docs[0];
    let text = strings(d, "lua.text");
    for want in [
        "0:MESSAGE_BEGIN:POST",
        "0:URL:/upload?x=1",
        "0:HEADER_FIELD_RAW:User-Agent",
        "0:HEADER_FIELD:user-agent",
        "0:HEADER_VALUE:test",
        "0:HEADERS_COMPLETE:nil",
        "0:MESSAGE_COMPLETE:nil",
        "1:MESSAGE_BEGIN:nil",
        "1:HEADER_FIELD:content-type",
        "1:BODY:thanks",
        "1:MESSAGE_COMPLETE:nil",
        "data:memmem=true,false",
        "data:pcre=true,defgh,d",
        "data:glob=true",
        "data:new=xyz",
        "body:2506",
    ] {
        assert!(text.contains(&want.to_string()), "missing {want}: {text:?}");
    }
    let t = tags(d);
    // The request body arrived in 3 pieces (1000-byte segments); the BODY
    // callback returned -1 after the first one and was not called again.
    assert!(t.contains(&"body-pieces-1".to_string()), "{t:?}");
    assert!(t.contains(&"feed-pieces-4".to_string()), "{t:?}");
    // Both body feeds got one handle per piece; handles of earlier pieces
    // had expired.
    assert!(t.contains(&"shared-4-stale-3".to_string()), "{t:?}");
    assert!(t.contains(&"copy-kept".to_string()), "{t:?}");
}

#[test]
fn scripts_from_parsers_dir_and_settings_errors() {
    let Some(pcap) = corpus("http-301-get.pcap") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    helpers::write_script(
        dir.path(),
        "tagger.lua",
        "MolochSession.register_tcp_classifier('t', 0, 'GET', function(s) s:add_tag('from-parsers-dir') end)",
    );
    let r = helpers::run(
        &[],
        &[
            &format!("parsersDir={}", dir.path().display()),
            "plugins=lua.so",
        ],
        ClassifierSet::new(),
        vec![pcap.clone()],
    );
    assert_eq!(r.lua().files.len(), 1);
    assert!(tags(&r.docs[0]).contains(&"from-parsers-dir".to_string()));

    // A script that fails at load time stops the capture with file:line.
    let bad = helpers::write_script(
        dir.path(),
        "bad.txt",
        "local x = 1\nerror('broken script')\n",
    );
    let e = helpers::run_err(&[bad], &[], pcap.clone());
    assert!(
        e.contains("bad.txt:2") && e.contains("broken script"),
        "{e}"
    );
    let missing = helpers::run_err(&["/nonexistent/x.lua".into()], &[], pcap.clone());
    assert!(missing.contains("/nonexistent/x.lua"), "{missing}");
    let ok = helpers::write_script(dir.path(), "ok.txt", "x = 1");
    let e = helpers::run_err(
        std::slice::from_ref(&ok),
        &["luaLibraries=string,nonsense"],
        pcap.clone(),
    );
    assert!(e.contains("luaLibraries") && e.contains("nonsense"), "{e}");
    let e = helpers::run_err(&[ok], &["luaMaxMemory=lots"], pcap);
    assert!(e.contains("luaMaxMemory"), "{e}");
}

#[test]
fn library_set_is_configurable() {
    let Some(pcap) = corpus("http-301-get.pcap") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let s = helpers::write_script(
        dir.path(),
        "libs.lua",
        r#"
        function c(session)
          session:add_tag("os=" .. tostring(os ~= nil))
          session:add_tag("execute=" .. tostring(os ~= nil and os.execute ~= nil))
          session:add_tag("popen=" .. tostring(io ~= nil and io.popen ~= nil))
          session:add_tag("string=" .. tostring(string ~= nil))
        end
        MolochSession.register_tcp_classifier("c", 0, "", "c")
        "#,
    );
    let r = helpers::run(
        std::slice::from_ref(&s),
        &[],
        ClassifierSet::new(),
        vec![pcap.clone()],
    );
    let t = tags(&r.docs[0]);
    for want in ["os=true", "execute=false", "popen=false", "string=true"] {
        assert!(t.contains(&want.to_string()), "default: {t:?}");
    }
    let r = helpers::run(
        std::slice::from_ref(&s),
        &["luaLibraries=string,table"],
        ClassifierSet::new(),
        vec![pcap.clone()],
    );
    let t = tags(&r.docs[0]);
    assert!(t.contains(&"os=false".to_string()), "{t:?}");
    let r = helpers::run(
        &[s],
        &["luaLibraries=all"],
        ClassifierSet::new(),
        vec![pcap],
    );
    let t = tags(&r.docs[0]);
    assert!(t.contains(&"execute=true".to_string()), "{t:?}");
}

#[test]
fn one_interpreter_per_packet_thread() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("many.pcap");
    let exchanges: Vec<_> = (0..24)
        .map(|i| (helpers::post(&format!("/{i}"), b"x"), helpers::ok(b"y")))
        .collect();
    helpers::http_pcap(&pcap, &exchanges);
    // Each interpreter numbers the sessions it sees with a global counter
    // and names itself by the address of a table of its own.
    let s = helpers::write_script(
        dir.path(),
        "count.lua",
        r#"
        local me = tostring({})
        local sessions = 0
        MolochSession.register_tcp_classifier("n", 0, "POST", function(session)
          sessions = sessions + 1
          session:table().n = sessions
          session:register_parser(function(s, str, d)
            local t = s:table()
            t.chunks = (t.chunks or 0) + 1
          end)
        end)
        MolochSession.register_save(function(session)
          local t = session:table()
          session:add_string("lua.text", me)
          session:add_int("lua.number", t.n)
          session:add_int("lua.number", 1000 + t.chunks)
        end)
        "#,
    );
    let r = helpers::run(&[s], &["packetThreads=2"], ClassifierSet::new(), vec![pcap]);
    assert_eq!(r.lua().interpreters, 2);
    assert_eq!(r.docs.len(), 24);
    let mut by_interp: std::collections::BTreeMap<String, Vec<i64>> = Default::default();
    for d in &r.docs {
        let who = strings(d, "lua.text");
        assert_eq!(who.len(), 1);
        let nums: Vec<i64> = d["lua"]["number"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        // Both data chunks (request and response) reached the parser the
        // classifier registered in the same interpreter.
        assert_eq!(nums[1], 1002, "{d}");
        by_interp.entry(who[0].clone()).or_default().push(nums[0]);
    }
    assert!((1..=2).contains(&by_interp.len()));
    for (_, mut n) in by_interp {
        n.sort();
        // Each interpreter counted exactly its own sessions.
        assert_eq!(n, (1..=n.len() as i64).collect::<Vec<_>>());
    }
}

#[test]
fn mid_session_saves_call_save_hooks_with_final_false() {
    let Some(pcap) = corpus("http-301-get.pcap") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let s = helpers::write_script(
        dir.path(),
        "mid.lua",
        r#"
        MolochSession.register_pre_save(function(session, final)
          session:add_string("lua.text", "pre-" .. tostring(final))
        end)
        MolochSession.register_save(function(session, final)
          local t = session:table()
          t.saves = (t.saves or 0) + 1
          session:add_int("lua.number", t.saves)
        end)
        "#,
    );
    // 8 packets, a segment saved every 3.
    let r = helpers::run(&[s], &["maxPackets=3"], ClassifierSet::new(), vec![pcap]);
    assert_eq!(r.docs.len(), 3);
    let mut segs: Vec<(Vec<String>, Value)> = r
        .docs
        .iter()
        .map(|d| (strings(d, "lua.text"), d["lua"]["number"].clone()))
        .collect();
    segs.sort_by_key(|(_, n)| n.to_string());
    assert_eq!(
        segs[0],
        (vec!["pre-false".to_string()], serde_json::json!([1]))
    );
    assert_eq!(
        segs[1],
        (vec!["pre-false".to_string()], serde_json::json!([2]))
    );
    // The session table lives across segments.
    assert_eq!(
        segs[2],
        (vec!["pre-true".to_string()], serde_json::json!([3]))
    );
}
