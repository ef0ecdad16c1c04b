//! HAProxy's Lua API end to end: actions, fetches, converters, services,
//! TXN/HTTP/Channel/Fetches/Converters, core.*, Map, Socket, tasks, and
//! the seed documents' examples.

mod common;
use common::*;

use std::io::{Read, Write};
use std::sync::atomic::Ordering;

fn http_cfg(backend: std::net::SocketAddr, global: &str, fe: &str) -> String {
    format!(
        "global\n  lua-load {{dir}}/s.lua\n{global}\n\
         defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 1s\n\
         frontend fe\n  bind 127.0.0.1:0\n{fe}\n  default_backend be\n\
         backend be\n  server s1 {backend}\n"
    )
}

#[test]
fn hello_world_service_from_the_seed_documents() {
    let b = backend();
    let lua = r#"
core.register_service("hello", "http", function(applet)
  local response = "Hello World !"
  applet:set_status(200)
  applet:add_header("content-length", string.len(response))
  applet:add_header("content-type", "text/plain")
  applet:start_response()
  applet:send(response)
end)
"#;
    let p = start(
        &http_cfg(b.addr, "", "  http-request use-service lua.hello"),
        &[("s.lua", lua)],
    );
    let mut c = Client::connect(p.addr("fe"));
    for _ in 0..3 {
        let r = c.get("/");
        assert_eq!(r.status, 200);
        assert_eq!(r.body, "Hello World !");
        assert_eq!(r.header("content-type"), Some("text/plain"));
    }
    assert_eq!(b.hits.load(Ordering::SeqCst), 0);
}

#[test]
fn seed_era_tcp_hello_world() {
    // The draft's example: `tcp-request content lua hello_world` with
    // txn:res_channel() (first draft) and txn.res + txn:close() (later).
    let lua = r#"
function hello_world(txn)
   local res = txn:res_channel()
   res:send("hello world\n")
end
function hello_world2(txn)
   txn.res:send("hello world\n")
   txn:close()
end
"#;
    let p = start(
        "global\n  lua-load {dir}/s.lua\n\
         listen proxy\n  bind 127.0.0.1:0\n  timeout client 5s\n  tcp-request content lua hello_world\n\
         listen proxy2\n  bind 127.0.0.1:0\n  timeout client 5s\n  tcp-request content lua hello_world2\n",
        &[("s.lua", lua)],
    );
    for name in ["proxy", "proxy2"] {
        let mut s = std::net::TcpStream::connect(p.addr(name)).unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.write_all(b"coucou\n").unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        assert_eq!(out, "hello world\n", "{name}");
    }
}

#[test]
fn actions_fetches_converters_in_rules_headers_and_acls() {
    let b = backend();
    let lua = r#"
core.register_action("tag", {"http-req"}, function(txn, name, value)
  txn.http:req_set_header(name, value)
  txn:set_var("txn.tagged", "yes")
end, 2)
core.register_action("resp", {"http-res"}, function(txn)
  txn.http:res_set_header("X-Res-Lua", txn:get_var("txn.tagged") or "no")
  txn.http:res_add_header("X-Status", tostring(txn.f:status()))
end)
core.register_fetches("hello", function(txn) return "hello" end)
core.register_fetches("route", function(txn, prefix)
  local p = txn.f:path()
  if p:sub(1, #prefix) == prefix then return "special" end
  return "normal"
end)
core.register_converters("rev", function(s) return s:reverse() end)
core.register_converters("suffix", function(s, a) return s .. a end)
"#;
    let p = start(
        &http_cfg(
            b.addr,
            "",
            "  http-request lua.tag X-Tag v1\n\
               http-request set-header X-Hello %[lua.hello,lua.rev,lua.suffix(!)]\n\
               http-request return status 200 content-type text/plain lf-string \"route=%[lua.route(/sp)]\" if { lua.route(/sp) -m str special }\n\
               http-response lua.resp\n\
               http-request redirect location /%[lua.hello] if { path /redir }",
        ),
        &[("s.lua", lua)],
    );
    let a = p.addr("fe");
    let r = get(a, "/x");
    assert_eq!(r.status, 200);
    assert!(r.body.contains("X-Tag: v1"), "{}", r.body);
    assert!(r.body.contains("X-Hello: olleh!"), "{}", r.body);
    assert_eq!(r.header("x-res-lua"), Some("yes"));
    assert_eq!(r.header("x-status"), Some("200"));
    let r = get(a, "/sp/1");
    assert_eq!(r.body, "route=special");
    let r = get(a, "/redir");
    assert_eq!((r.status, r.header("location")), (302, Some("/hello")));
}

#[test]
fn txn_api_fetches_converters_http_and_vars() {
    let b = backend();
    let lua = r#"
core.register_action("probe", {"http-req"}, function(txn)
  local h = txn.http
  local hdrs = h:req_get_headers()
  local out = {}
  out[#out+1] = "method=" .. txn.f:method()
  out[#out+1] = "host=" .. hdrs["host"][0]
  out[#out+1] = "hdr=" .. txn.sf:req_hdr("x-in")
  out[#out+1] = "missing=" .. tostring(txn.f:req_hdr("nope"))
  out[#out+1] = "smissing=[" .. txn.sf:req_hdr("nope") .. "]"
  out[#out+1] = "src=" .. txn.f:src()
  out[#out+1] = "lower=" .. txn.c:lower("AbC")
  out[#out+1] = "b64=" .. txn.sc:base64("hi")
  out[#out+1] = "crc=" .. tostring(txn.c:crc32("123456789"))
  out[#out+1] = "field=" .. txn.c:field("a,b,c", 2, ",")
  out[#out+1] = "query=" .. (txn.f:query() or "")
  out[#out+1] = "urlp=" .. (txn.f:url_param("k") or "")
  out[#out+1] = "body=" .. (txn.f:req_body() or "")
  txn:set_var("req.v", 42)
  out[#out+1] = "var=" .. math.type(txn:get_var("req.v"))
  txn:set_priv({n = 1})
  out[#out+1] = "priv=" .. txn:get_priv().n
  local ok, err = pcall(function() return txn.f:no_such_fetch() end)
  out[#out+1] = "unknown=" .. tostring(err):match("no_such_fetch") 
  h:req_set_header("X-Probe", table.concat(out, ";"))
  h:req_del_header("X-Del")
  h:req_replace_header("X-Rep", "^(a+)", "<%1>")
  h:req_replace_value("X-Vals", "^v([0-9])$", "w%1")
  h:req_add_header("X-Added", "1")
  h:req_set_method("PUT")
  h:req_set_path("/new")
  h:req_set_query("a=b")
end)
"#;
    let lua = lua.replace("%1", "\\\\1");
    let p = start(
        &http_cfg(b.addr, "", "  http-request lua.probe"),
        &[("s.lua", &lua)],
    );
    let r = Client::connect(p.addr("fe"))
        .request(
            "POST /orig?k=val HTTP/1.1\r\nHost: h1\r\nX-In: v\r\nX-Del: d\r\nX-Rep: aab\r\nX-Vals: v1, x2\r\nContent-Length: 3\r\n\r\nabc",
        )
        .unwrap();
    assert_eq!(r.status, 200);
    let body = r.body;
    assert!(body.starts_with("PUT /new?a=b HTTP/1.1"), "{body}");
    for want in [
        "method=POST",
        "host=h1",
        "hdr=v",
        "missing=nil",
        "smissing=[]",
        "src=127.0.0.1",
        "lower=abc",
        "b64=aGk=",
        "crc=3421780262",
        "field=b",
        "query=k=val",
        "urlp=val",
        "body=abc",
        "var=integer",
        "priv=1",
        "unknown=no_such_fetch",
        "X-Rep: <aa>b",
        "X-Vals: w1, x2",
        "X-Added: 1",
    ] {
        assert!(body.contains(want), "missing {want} in {body}");
    }
    assert!(!body.contains("X-Del"), "{body}");
}

#[test]
fn a_txn_kept_past_its_request_sees_an_empty_transaction() {
    // The proxy frees a transaction's heads, body and variables when its
    // request ends, not when Lua collects the TXN object: a script that
    // keeps the object sees nothing of the old request (and no other's).
    let b = backend();
    let lua = r#"
local last
core.register_action("keep", {"http-req"}, function(txn)
  local prev = "none"
  if last then
    prev = "hdr=[" .. last.sf:req_hdr("x-n") .. "] var=" .. tostring(last:get_var("txn.v"))
      .. " priv=" .. tostring(last:get_priv())
  end
  txn.http:req_set_header("X-Prev", prev)
  txn:set_var("txn.v", txn.sf:req_hdr("x-n"))
  txn:set_priv({})
  last = txn
end)
"#;
    let p = start(
        &http_cfg(b.addr, "", "  http-request lua.keep"),
        &[("s.lua", lua)],
    );
    let mut c = Client::connect(p.addr("fe"));
    let first = c
        .request("GET /a HTTP/1.1\r\nHost: h\r\nX-N: 1\r\n\r\n")
        .unwrap();
    assert!(first.body.contains("X-Prev: none"), "{}", first.body);
    let second = c
        .request("GET /b HTTP/1.1\r\nHost: h\r\nX-N: 2\r\n\r\n")
        .unwrap();
    assert!(
        second.body.contains("X-Prev: hdr=[] var=nil priv=nil"),
        "{}",
        second.body
    );
}

#[test]
fn seed_era_names_http_tables_get_headers_and_redirect() {
    let b = backend();
    let lua = r#"
function seed(txn)
  local hdrs = txn:get_headers()
  txn.http.req.set_header(txn, "X-Seed", hdrs["host"][0] .. "-" .. txn:src())
  txn.http.req.add_header(txn, "X-Seed-Path", txn:path())
  if txn:path() == "/go" then txn.http.redirect(txn, "/gone") end
end
"#;
    let p = start(
        &http_cfg(b.addr, "", "  http-request lua seed"),
        &[("s.lua", lua)],
    );
    let r = get(p.addr("fe"), "/x");
    assert!(r.body.contains("X-Seed: test-127.0.0.1"), "{}", r.body);
    assert!(r.body.contains("X-Seed-Path: /x"), "{}", r.body);
    let r = get(p.addr("fe"), "/go");
    assert_eq!((r.status, r.header("location")), (302, Some("/gone")));
}

#[test]
fn map_geo_example_and_core_set_map() {
    let b = backend();
    let lua = r#"
default = "usa"
geo = Map.new("{dir}/geo.map", Map.ip);
core.register_fetches("country", function(txn)
  local src;
  local loc;
  src = txn.f:fhdr("x-forwarded-for");
  if (src == nil) then
    src = txn.f:src()
    if (src == nil) then
      return default;
    end
  end
  loc = geo:lookup(src);
  if (loc == nil) then
    return default;
  end
  return loc;
end);
local names = Map.new("{dir}/names.map", Map.beg)
core.register_action("admin", {"http-req"}, function(txn)
  local k = txn.f:url_param("k")
  local v = txn.f:url_param("v")
  if v then core.set_map("{dir}/geo.map", k, v) else core.del_map("{dir}/geo.map", k) end
  txn.http:req_set_header("X-Name", names:slookup(txn.f:path()))
end)
"#;
    let p = start(
        &http_cfg(
            b.addr,
            "",
            "  http-request lua.admin if { path_beg /admin }\n  http-request set-header X-Country %[lua.country]\n\
               http-request set-header X-Map %[req.hdr(x-forwarded-for),map_ip({dir}/geo.map,none)]",
        ),
        &[
            ("s.lua", lua),
            (
                "geo.map",
                "# network country\n10.0.0.0/8 fr\n10.1.0.0/16 de\n127.0.0.1 lo\n",
            ),
            ("names.map", "/admin/x ex\n"),
        ],
    );
    let a = p.addr("fe");
    let q = |xff: &str| {
        Client::connect(a)
            .request(&format!(
                "GET / HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: {xff}\r\n\r\n"
            ))
            .unwrap()
            .body
    };
    assert!(q("10.1.2.3").contains("X-Country: de"));
    assert!(q("10.9.9.9").contains("X-Country: fr"));
    assert!(q("192.168.1.1").contains("X-Country: usa"));
    assert!(q("192.168.1.1").contains("X-Map: none"));
    assert!(get(a, "/").body.contains("X-Country: lo"));
    // core.set_map updates the map every thread and Map object sees.
    let r = get(a, "/admin/x?k=192.168.1.0/24&v=nl");
    assert!(r.body.contains("X-Name: ex"), "{}", r.body);
    assert!(q("192.168.1.1").contains("X-Country: nl"));
    assert!(q("192.168.1.1").contains("X-Map: nl"));
    get(a, "/admin/y?k=192.168.1.0/24");
    assert!(q("192.168.1.1").contains("X-Country: usa"));
}

#[test]
fn tcp_service_and_tcp_actions_with_channels() {
    let echo = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let ea = echo.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in echo.incoming().take(4) {
            let mut s = s.unwrap();
            std::thread::spawn(move || {
                let mut r = s.try_clone().unwrap();
                let _ = std::io::copy(&mut r, &mut s);
            });
        }
    });
    let lua = r#"
core.register_service("echo", "tcp", function(applet)
  applet:set_var("sess.n", 0)
  while true do
    local line = applet:getline()
    if line == nil or line == "" or line == "quit\n" then break end
    applet:send("> " .. line)
  end
  local four = applet:receive(4)
  applet:send("got " .. tostring(four) .. "\n")
end)
core.register_action("rewrite", {"tcp-req"}, function(txn)
  local req = txn.req
  local d = req:dup()
  local n = req:get_in_length()
  req:set(string.upper(d))
  req:append("[" .. n .. "]")
end)
"#;
    let p = start(
        &format!(
            "global\n  lua-load {{dir}}/s.lua\n\
             listen svc\n  mode tcp\n  bind 127.0.0.1:0\n  timeout client 5s\n  tcp-request content use-service lua.echo\n\
             listen rw\n  mode tcp\n  bind 127.0.0.1:0\n  timeout client 5s\n  timeout server 5s\n\
               tcp-request inspect-delay 2s\n  tcp-request content lua.rewrite\n  server e {ea}\n"
        ),
        &[("s.lua", lua)],
    );
    let mut s = std::net::TcpStream::connect(p.addr("svc")).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.write_all(b"one\ntwo\nquit\nabcd").unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert_eq!(out, "> one\n> two\ngot abcd\n");

    let mut s = std::net::TcpStream::connect(p.addr("rw")).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.write_all(b"hello").unwrap();
    let mut buf = [0u8; 8];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"HELLO[5]");
}

#[test]
fn socket_sleep_and_yield_do_not_stall_other_connections() {
    let b = backend();
    let gate = Gate::new("released");
    let lua = format!(
        r#"
core.register_action("wait_gate", {{"http-req"}}, function(txn)
  local s = core.tcp()
  s:settimeout(10)
  assert(s:connect("{gate}") == 1)
  local ip, port = s:getpeername()
  s:send("hi\n")
  local line, err = s:receive("*l")
  s:close()
  core.yield()
  core.msleep(1)
  txn.http:req_set_header("X-Gate", tostring(line) .. " from " .. ip)
end)
"#,
        gate = gate.addr
    );
    let p = start(
        &http_cfg(b.addr, "", "  http-request lua.wait_gate if { path /slow }"),
        &[("s.lua", &lua)],
    );
    let a = p.addr("fe");
    let slow = std::thread::spawn(move || get(a, "/slow"));
    // While the slow script waits on its socket, other requests flow.
    for _ in 0..3 {
        assert_eq!(get(a, "/fast").status, 200);
    }
    assert!(!slow.is_finished());
    gate.open();
    let r = slow.join().unwrap();
    assert!(
        r.body.contains("X-Gate: released from 127.0.0.1"),
        "{}",
        r.body
    );
}

#[test]
fn coroutine_wrapped_sleep_still_yields_to_the_event_loop() {
    let b = backend();
    let gate = Gate::new("ok");
    let lua = format!(
        r#"
core.register_action("co", {{"http-req"}}, function(txn)
  local gen = coroutine.wrap(function()
    local s = core.tcp()
    s:settimeout(10)
    s:connect("{gate}")
    coroutine.yield("first")
    local l = s:receive("*l")
    coroutine.yield(l)
  end)
  local a = gen()
  local b = gen()
  txn.http:req_set_header("X-Co", a .. "," .. tostring(b))
end)
"#,
        gate = gate.addr
    );
    let p = start(
        &http_cfg(b.addr, "", "  http-request lua.co if { path /co }"),
        &[("s.lua", &lua)],
    );
    let a = p.addr("fe");
    let slow = std::thread::spawn(move || get(a, "/co"));
    assert_eq!(get(a, "/other").status, 200);
    gate.open();
    let r = slow.join().unwrap();
    assert!(r.body.contains("X-Co: first,ok"), "{}", r.body);
}

#[test]
fn tasks_init_core_functions_and_proxies() {
    let b = backend();
    let lua = r#"
local ready = "no"
core.register_init(function() ready = "yes" end)
core.register_task(function()
  local n = 0
  while true do
    n = n + 1
    core.set_map("{dir}/state.map", "ticks", tostring(n))
    core.msleep(10)
  end
end)
local st = Map.new("{dir}/state.map", Map.str)
core.register_service("info", "http", function(applet)
  local info = core.get_info()
  local now = core.now()
  local be = core.backends["be"]
  local srv = be.servers["s1"]
  local body = table.concat({
    "ready=" .. ready,
    "ticks=" .. tostring(tonumber(st:lookup("ticks") or "0") > 0),
    "name=" .. info.Name,
    "now=" .. tostring(now.sec > 0),
    "be=" .. be:get_name(),
    "srv=" .. srv:get_name() .. "@" .. srv:get_addr(),
    "fe=" .. tostring(core.frontends["fe"] ~= nil),
    "levels=" .. core.emerg .. core.info .. core.debug,
  }, ";")
  core.Info("service info called")
  applet:set_status(200)
  applet:send(body)
end)
"#;
    let p = start(
        &http_cfg(
            b.addr,
            "",
            "  http-request use-service lua.info if { path /info }",
        ),
        &[("s.lua", lua), ("state.map", "")],
    );
    let a = p.addr("fe");
    assert!(eventually(250, || get(a, "/info")
        .body
        .contains("ticks=true")));
    let body = get(a, "/info").body;
    for want in [
        "ready=yes",
        "name=moonwire",
        "now=true",
        "be=be",
        "fe=true",
        "levels=067",
    ] {
        assert!(body.contains(want), "{want} in {body}");
    }
    assert!(body.contains(&format!("srv=s1@{}", b.addr)), "{body}");
    assert!(p.log_contains("service info called"));
}

#[test]
fn forbidden_functions_raise_clear_errors_in_their_context() {
    let b = backend();
    let lua = r#"
core.register_fetches("bad_socket", function(txn) local s = core.tcp() return "x" end)
core.register_fetches("bad_sleep", function(txn) core.msleep(1) return "x" end)
core.register_action("late", {"http-req"}, function(txn)
  core.register_fetches("x", function() return "y" end)
end)
local ok, err = pcall(core.tcp)
body_tcp_error = tostring(err)
core.register_service("show", "http", function(applet) applet:send(body_tcp_error) end)
"#;
    let p = start(
        &http_cfg(
            b.addr,
            "",
            "  http-request use-service lua.show if { path /show }\n\
               http-request set-header X-A %[lua.bad_socket] if { path /a }\n\
               http-request set-header X-B %[lua.bad_sleep] if { path /b }\n\
               http-request lua.late if { path /late }",
        ),
        &[("s.lua", lua)],
    );
    let a = p.addr("fe");
    assert!(
        get(a, "/show")
            .body
            .contains("core.tcp: not available in the body context")
    );
    // A failing fetch yields no value; the request still goes through.
    assert_eq!(get(a, "/a").status, 200);
    assert!(
        p.log_contains("core.tcp: not available in the sample-fetch context"),
        "{:?}",
        p.logs()
    );
    assert_eq!(get(a, "/b").status, 200);
    assert!(
        p.log_contains("core.msleep: not available in the sample-fetch context"),
        "{:?}",
        p.logs()
    );
    assert_eq!(get(a, "/late").status, 500);
    assert!(
        p.log_contains("core.register_fetches: only allowed in the body context"),
        "{:?}",
        p.logs()
    );
}

#[test]
fn lua_errors_loops_and_memory_bombs_give_500_and_the_proxy_goes_on() {
    let b = backend();
    let lua = r#"
core.register_action("boom", {"http-req"}, function(txn) error("kaboom") end)
core.register_action("loop", {"http-req"}, function(txn) while true do end end)
core.register_action("bomb", {"http-req"}, function(txn)
  local t = {}
  for i = 1, 1e9 do t[i] = string.rep("x", 1000) .. i end
end)
core.register_service("svc_boom", "http", function(applet) local x = nil; x.y = 1 end)
core.register_action("tcp_boom", {"tcp-req"}, function(txn) error("tcp kaboom") end)
"#;
    let p = start(
        &format!(
            "global\n  lua-load {{dir}}/s.lua\n  tune.lua.maxmem 8\n  tune.lua.session-timeout 1s\n  tune.lua.service-timeout 1s\n\
             defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n\
             frontend fe\n  bind 127.0.0.1:0\n\
               http-request lua.boom if {{ path /boom }}\n  http-request lua.loop if {{ path /loop }}\n\
               http-request lua.bomb if {{ path /bomb }}\n  http-request use-service lua.svc_boom if {{ path /svc }}\n\
               default_backend be\n\
             backend be\n  server s1 {}\n\
             listen t\n  mode tcp\n  bind 127.0.0.1:0\n  tcp-request content lua.tcp_boom\n  server s1 {}\n",
            b.addr, b.addr
        ),
        &[("s.lua", lua)],
    );
    let a = p.addr("fe");
    let looping = std::thread::spawn(move || get(a, "/loop").status);
    // While one script loops (forced to yield), others are served.
    assert_eq!(get(a, "/ok").status, 200);
    assert_eq!(looping.join().unwrap(), 500);
    assert!(p.log_contains("Lua execution timeout"), "{:?}", p.logs());
    assert_eq!(get(a, "/boom").status, 500);
    assert!(p.log_contains("kaboom"));
    assert_eq!(get(a, "/bomb").status, 500);
    assert!(p.log_contains("memory"), "{:?}", p.logs());
    assert_eq!(get(a, "/svc").status, 500);
    assert_eq!(get(a, "/ok").status, 200);
    let mut s = std::net::TcpStream::connect(p.addr("t")).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let _ = s.write_all(b"x");
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert!(buf.is_empty());
    assert!(p.log_contains("tcp kaboom"));
    assert!(
        p.running
            .as_ref()
            .unwrap()
            .shared()
            .lua_errors
            .load(Ordering::Relaxed)
            >= 5
    );
}

#[test]
fn per_thread_states_and_nbthread() {
    let b = backend();
    let lua = r#"
local hits = 0
core.register_service("count", "http", function(applet)
  hits = hits + 1
  applet:send(tostring(core.get_info().Thread) .. ":" .. hits)
end)
"#;
    let p = start(
        &format!(
            "global\n  nbthread 2\n  lua-load-per-thread {{dir}}/s.lua\n\
             defaults\n  mode http\n  timeout client 5s\n\
             frontend fe\n  bind 127.0.0.1:0\n  http-request use-service lua.count\n  default_backend be\n\
             backend be\n  server s {}\n",
            b.addr
        ),
        &[("s.lua", lua)],
    );
    let mut total = 0;
    for _ in 0..10 {
        let body = get(p.addr("fe"), "/").body;
        let (t, _) = body.split_once(':').unwrap();
        assert!(t == "1" || t == "2", "{body}");
        total += 1;
    }
    assert_eq!(total, 10);
}

#[test]
fn applet_http_request_side_and_log_format_with_lua() {
    let b = backend();
    let lua = r#"
core.register_converters("tag", function(s) return "<" .. s .. ">" end)
core.register_service("echo", "http", function(applet)
  local first = applet:getline()
  local rest = applet:receive()
  local h = applet.headers
  applet:set_var("txn.seen", applet.method)
  local body = table.concat({
    applet.method, applet.path, applet.qs, applet.version, tostring(applet.length),
    h["x-a"][0], first, rest, applet:get_var("txn.seen"), applet.f:path(), applet.sc:upper("q"),
  }, "|")
  applet:set_status(201, "Made")
  applet:add_header("x-svc", "1")
  applet:start_response()
  applet:send(body)
end)
"#;
    let p = start(
        &format!(
            "global\n  lua-load {{dir}}/s.lua\n\
             defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n\
             frontend fe\n  bind 127.0.0.1:0\n  log global\n  log-format \"req %HM %HU %ST lua=%[path,lua.tag]\"\n\
               http-request use-service lua.echo\n  default_backend be\n\
             backend be\n  server s1 {}\n",
            b.addr
        ),
        &[("s.lua", lua)],
    );
    let r = Client::connect(p.addr("fe"))
        .request(
            "POST /svc?x=1 HTTP/1.1\r\nHost: t\r\nX-A: aa\r\nContent-Length: 9\r\n\r\nline1\nend",
        )
        .unwrap();
    assert_eq!(r.status, 201);
    assert_eq!(r.header("x-svc"), Some("1"));
    assert_eq!(r.body, "POST|/svc|x=1|1.1|9|aa|line1\n|end|POST|/svc|Q");
    assert!(
        eventually(100, || p.log_contains("req POST /svc?x=1 201 lua=</svc>")),
        "{:?}",
        p.logs()
    );
}

#[test]
fn tcp_response_content_action_and_health_checks() {
    let echo = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let ea = echo.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in echo.incoming() {
            let mut s = s.unwrap();
            std::thread::spawn(move || {
                let mut r = s.try_clone().unwrap();
                let _ = std::io::copy(&mut r, &mut s);
            });
        }
    });
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let lua = r#"
core.register_action("mark", {"tcp-res"}, function(txn)
  local d = txn.res:get()
  txn.res:append("srv:" .. d)
end)
"#;
    let p = start(
        &format!(
            "global\n  lua-load {{dir}}/s.lua\n\
             listen t\n  mode tcp\n  bind 127.0.0.1:0\n  timeout client 5s\n  timeout server 5s\n  timeout connect 500ms\n\
               balance first\n  tcp-response content lua.mark\n  server dead {dead} check inter 100ms\n  server live {ea} check inter 100ms\n"
        ),
        &[("s.lua", lua)],
    );
    assert!(
        eventually(250, || p.log_contains("Server t/dead is DOWN")),
        "{:?}",
        p.logs()
    );
    let mut s = std::net::TcpStream::connect(p.addr("t")).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.write_all(b"abc").unwrap();
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"srv:abc");
}

#[test]
fn remaining_api_items_channels_sockets_acls_logs_done() {
    let b = backend();
    // A line server: answers "hello <what it got>\n" then "tail" and closes.
    let ls = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let la = ls.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in ls.incoming().take(3) {
            let mut s = s.unwrap();
            s.set_read_timeout(Some(IO_TIMEOUT)).ok();
            let mut buf = [0u8; 64];
            let n = s.read(&mut buf).unwrap_or(0);
            let _ = s.write_all(
                format!("hello {}\ntail", String::from_utf8_lossy(&buf[..n]).trim()).as_bytes(),
            );
        }
    });
    let lua = format!(
        r#"
package.path = package.path
local util = require("util")
core.register_action("chan", {{"tcp-req"}}, function(txn)
  local c = txn:get_req_buf()
  local out = {{}}
  out[#out+1] = "in=" .. c:get_in_length() .. ",out=" .. c:get_out_length()
  out[#out+1] = "line=" .. c:line():gsub("\n", "")
  out[#out+1] = "data=" .. c:data(0, 3)
  c:forward(2)
  out[#out+1] = "fwd=" .. c:output() .. "/" .. c:input()
  c:prepend("<")
  c:insert("!", 1)
  c:remove(0, 0)
  out[#out+1] = "full=" .. tostring(c:is_full()) .. ",recv=" .. tostring(c:may_recv())
  out[#out+1] = "getline=" .. c:get_line():gsub("\n", "")
  out[#out+1] = "rest=" .. c:get()
  txn:set_var("sess.visits", 1)
  txn:set_var("proc.total", 7)
  txn:unset_var("sess.visits")
  out[#out+1] = "vars=" .. tostring(txn:get_var("sess.visits")) .. "," .. txn:get_var("proc.total")
  txn:Debug("debug line") txn:Info("info line") txn:Warning("warn line") txn:Alert("alert line")
  txn:log(core.notice, "notice line") txn:deflog("deflog line")
  txn:set_loglevel(5) txn:set_tos(0) txn:set_mark(1) txn:set_priority_class(1) txn:set_priority_offset(2)
  core.set_nice(10)
  txn.res:send(table.concat(out, ";") .. "\n")
  txn:done()
end)
core.register_action("acl", {{"http-req"}}, function(txn, op, key)
  if op == "add" then core.add_acl("{{dir}}/block.acl", key) else core.del_acl("{{dir}}/block.acl", key) end
  core.done()
end, 2)
core.register_action("sock", {{"http-req"}}, function(txn)
  local s = core.tcp()
  s:setoption("tcp-nodelay", true)
  s:settimeout(5)
  s:connect("127.0.0.1", {port})
  local ip, port = s:getsockname()
  local n = s:send("XXabcYY", 3, 5)
  local l = s:receive("*l")
  local rest = s:receive("*a")
  local r2, err = s:receive(1)
  txn.http:req_set_header("X-Sock", l .. "|" .. rest .. "|" .. n .. "|" .. tostring(r2) .. "," .. err .. "|" .. ip .. "|" .. util.twice("z"))
  local s2 = core.tcp()
  s2:settimeout(5)
  s2:connect("127.0.0.1:{port}")
  s2:send("q")
  local four = s2:receive(4, "pre-")
  s2:close()
  txn.http:req_set_header("X-Sock2", four)
end)
core.register_action("resp", {{"http-res"}}, function(txn)
  local h = txn.http:res_get_headers()
  txn.http:res_del_header("x-backend")
  txn.http:res_replace_header("content-type", "text/(.*)", "app/\\1")
  txn.http.res.set_header(txn, "X-Had-Backend", h["x-backend"][0])
end)
"#,
        port = la.port()
    );
    let p = start(
        &format!(
            "global\n  lua-prepend-path {{dir}}/?.lua\n  lua-load {{dir}}/s.lua\n  tune.lua.openlibs all\n\
             defaults\n  timeout client 5s\n  timeout server 5s\n\
             frontend fe\n  mode http\n  bind 127.0.0.1:0\n  acl blocked path -f {{dir}}/block.acl\n\
               http-request deny if blocked\n  http-request lua.acl add /secret if {{ path /block }}\n\
               http-request lua.acl del /secret if {{ path /unblock }}\n  http-request lua.sock if {{ path /sock }}\n\
               http-response lua.resp\n  default_backend be\n\
             backend be\n  mode http\n  server s1 {}\n\
             listen t\n  mode tcp\n  bind 127.0.0.1:0\n  tcp-request inspect-delay 2s\n  tcp-request content lua.chan\n",
            b.addr
        ),
        &[
            ("s.lua", &lua),
            ("block.acl", ""),
            (
                "util.lua",
                "return { twice = function(s) return s .. s end }\n",
            ),
        ],
    );
    // Channel, vars, logs, txn:done in TCP.
    let mut s = std::net::TcpStream::connect(p.addr("t")).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.write_all(b"abcdef\nxyz").unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert_eq!(
        out,
        "in=10,out=0;line=abcdef;data=abc;fwd=2/8;full=false,recv=true;getline=<!cdef;rest=xyz;vars=nil,7\n"
    );
    for l in [
        "debug line",
        "info line",
        "warn line",
        "alert line",
        "notice line",
        "deflog line",
    ] {
        assert!(p.log_contains(l), "{l}: {:?}", p.logs());
    }
    // core.add_acl / core.del_acl feed `acl -f`.
    let a = p.addr("fe");
    assert_eq!(get(a, "/secret").status, 200);
    // core.done() without a reply ends the transaction: no response, close.
    let mut c = Client::connect(a);
    assert!(
        c.request("GET /block HTTP/1.1\r\nHost: t\r\n\r\n")
            .is_none()
    );
    assert_eq!(get(a, "/secret").status, 403);
    assert!(
        Client::connect(a)
            .request("GET /unblock HTTP/1.1\r\nHost: t\r\n\r\n")
            .is_none()
    );
    assert_eq!(get(a, "/secret").status, 200);
    // Socket details and the response-side HTTP functions.
    let r = get(a, "/sock");
    assert!(
        r.body
            .contains("X-Sock: hello abc|tail|5|nil,closed|127.0.0.1|zz"),
        "{}",
        r.body
    );
    assert!(r.body.contains("X-Sock2: pre-hell"), "{}", r.body);
    assert_eq!(r.header("x-backend"), None);
    assert_eq!(r.header("x-had-backend"), Some("yes"));
    assert_eq!(r.header("content-type"), Some("app/plain"));
}

#[test]
fn http_service_output_streams() {
    let b = backend();
    let gate = Gate::new("done");
    let lua = format!(
        r#"
core.register_service("big", "http", function(applet)
  applet:start_response()
  for i = 1, 50 do applet:send(string.rep(string.char(96 + (i % 26) + 1), 1000)) end
end)
core.register_service("declared", "http", function(applet)
  applet:add_header("content-length", "10")
  applet:start_response()
  applet:send("first")
  local s = core.tcp()
  s:settimeout(10)
  s:connect("{gate}")
  s:receive("*l")
  applet:send("-last")
end)
"#,
        gate = gate.addr
    );
    let p = start(
        &http_cfg(
            b.addr,
            "",
            "  http-request use-service lua.big if { path /big }\n  http-request use-service lua.declared if { path /declared }",
        ),
        &[("s.lua", &lua)],
    );
    let a = p.addr("fe");
    // Larger than tune.bufsize without a length: chunked, keep-alive kept.
    let mut c = Client::connect(a);
    let r = c.get("/big");
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.body.len(), 50_000);
    assert_eq!(&r.body[..3], "bbb");
    assert_eq!(c.get("/big").body.len(), 50_000);
    // Declared length: the head and the first part reach the client while
    // the service still waits.
    let mut c = Client::connect(a);
    c.send_raw(b"GET /declared HTTP/1.1\r\nHost: t\r\n\r\n");
    let mut got = Vec::new();
    let mut s = c_stream(&mut c);
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    while !String::from_utf8_lossy(&got).ends_with("first") {
        let mut buf = [0u8; 256];
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&got).contains("content-length: 10"));
    gate.open();
    let mut rest = [0u8; 5];
    s.read_exact(&mut rest).unwrap();
    assert_eq!(&rest, b"-last");
}

fn c_stream(c: &mut Client) -> std::net::TcpStream {
    c.raw_stream()
}
