//! Wireshark Lua API details, each checked by a small script run over a
//! generated two-packet capture.

use std::path::{Path, PathBuf};

use dissect::pcap::PcapWriter;
use dissect::synth::udp_frame;
use dissect::{EngineOptions, HostOptions, Options, OutputFormat, RunStats};

fn capture(dir: &Path) -> PathBuf {
    let path = dir.join("api.pcap");
    let f = std::fs::File::create(&path).unwrap();
    let mut w = PcapWriter::new(std::io::BufWriter::new(f), 1, 65_535).unwrap();
    let payload = [0x01u8, 0x02, 0x03, 0x04, 0x80, 0xff, b'a', b'b', 0, b'z'];
    for i in 0..2i64 {
        let fr = udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 40000, 9999, &payload);
        w.write_packet(1_700_000_000_000_000 + i * 1_500_000, fr.len() as u32, &fr)
            .unwrap();
    }
    w.into_inner().unwrap();
    path
}

fn run_script(
    script: &str,
    format: OutputFormat,
    two_pass: bool,
    args: Vec<String>,
    prefs: Vec<(String, String)>,
) -> (String, RunStats) {
    let dir = tempfile::tempdir().unwrap();
    let pcap = capture(dir.path());
    let path = dir.path().join("s.lua");
    std::fs::write(&path, script).unwrap();
    let opts = Options {
        read: pcap.display().to_string(),
        engine: EngineOptions {
            scripts: vec![(path.display().to_string(), args)],
            prefs,
            host: Some(HostOptions {
                max_instructions: 1_000_000,
                ..HostOptions::default()
            }),
        },
        two_pass,
        format,
        ..Options::default()
    };
    let mut out = Vec::new();
    let stats = dissect::run(&opts, &mut out).unwrap();
    (String::from_utf8(out).unwrap(), stats)
}

fn verbose(script: &str) -> (String, RunStats) {
    run_script(script, OutputFormat::Verbose, false, vec![], vec![])
}

const HEAD: &str = r#"
local p = Proto("apit", "API Test")
local f_s = ProtoField.string("apit.s", "S")
p.fields = { f_s }
local function report(tree, s) tree:add(f_s, s) end
DissectorTable.get("udp.port"):add(9999, p)
"#;

#[test]
fn tvb_range_readers() {
    let script = format!(
        "{HEAD}{}",
        r#"
function p.dissector(tvb, pinfo, tree)
  local t = tree:add(p, tvb())
  assert(tvb:len() == 10 and tvb:reported_len() == 10)
  assert(tvb:reported_length_remaining(4) == 6)
  assert(tvb(0, 2):uint() == 0x0102)
  assert(tvb(0, 2):le_uint() == 0x0201)
  assert(tvb(4, 1):int() == -128)
  assert(tvb(4, 2):le_int() == -128)
  assert(tvb(0, 8):uint64() == 0x0102030480ff6162)
  assert(tostring(tvb(0, 4):ipv4()) == "1.2.3.4")
  assert(tostring(tvb(0, 4):le_ipv4()) == "4.3.2.1")
  assert(tostring(tvb(0, 6):ether()) == "01:02:03:04:80:ff")
  assert(tvb(6, 4):stringz() == "ab")
  assert(tvb(6):strsize() == 3)
  assert(tvb(6, 2):string() == "ab")
  assert(tvb(4, 1):bitfield(0, 1) == 1 and tvb(4, 1):bitfield(1, 7) == 0)
  assert(tvb(0, 2):bitfield(4, 8) == 0x10)
  assert(tvb(2, 4):range(1, 2):uint() == 0x0480)
  assert(tvb(2, 4):tvb()(0, 1):uint() == 3)
  assert(tvb(0, 3):bytes():tohex() == "010203")
  assert(tvb:raw(6, 2) == "ab")
  assert(tvb(10):len() == 0)
  assert(tvb(0, 2):offset() == 0 and tvb(3, 2):offset() == 3)
  local ok, err = pcall(function() return tvb(8, 3) end)
  assert(not ok and tostring(err):find("Range is out of bounds"), tostring(err))
  report(t, "readers ok")
end
"#
    );
    let (out, stats) = verbose(&script);
    assert_eq!(stats.lua_errors, 0, "{:?}", stats.first_errors);
    assert_eq!(out.matches("    S: readers ok\n").count(), 2, "{out}");
}

#[test]
fn bytearray_and_bit_modules() {
    let script = format!(
        "{HEAD}{}",
        r#"
function p.dissector(tvb, pinfo, tree)
  local b = ByteArray.new("01 02 0a")
  assert(b:len() == 3 and b:get_index(2) == 10)
  assert(b:tohex() == "01020A" and b:tohex(true, ":") == "01:02:0a")
  b:append(ByteArray.new("ff"))
  assert(tostring(b) == "01020AFF")
  assert(b:subset(1, 2):tohex() == "020A")
  local t2 = b:tvb("made")
  assert(t2:len() == 4 and t2(3, 1):uint() == 255)
  assert(ByteArray.new("xy", true):raw() == "xy")
  assert(bit.band(0xff, 0x0f) == 15 and bit.bor(1, 2, 4) == 7)
  assert(bit.lshift(1, 31) == -2147483648, bit.lshift(1, 31))
  assert(bit.rshift(-1, 28) == 15 and bit.arshift(-16, 2) == -4)
  assert(bit.tohex(255, 4) == "00ff" and bit.bxor(5, 1) == 4 and bit.bnot(0) == -1)
  assert(bit32.lshift(1, 31) == 0x80000000 and bit32.bnot(0) == 0xffffffff)
  assert(bit32.extract(0xf0, 4, 4) == 15 and bit32.replace(0, 3, 8, 2) == 0x300)
  assert(bit32.arshift(0x80000000, 4) == 0xf8000000 and bit32.btest(2, 3))
  -- One, two and more arguments; like ipairs, a nil ends the list.
  assert(bit.band(-1) == -1 and bit.band(0xff, 0x3c, 0x0f) == 0x0c)
  assert(bit.bor(1, 2, nil, 8) == 3 and bit.bxor(7, 1, 2) == 4)
  assert(bit32.band() == 0xffffffff and bit32.band(-1) == 0xffffffff)
  assert(bit32.band(0x1ff, 0xf0) == 0xf0 and bit32.band(0xff, 0x3c, 0x0f) == 0x0c)
  assert(bit32.band(nil, 5) == 0xffffffff and bit32.bor(1, nil, 4) == 1)
  assert(bit32.bor(1, 2, 4, 8) == 15 and bit32.bxor(7, 1, 2) == 4 and bit32.bor() == 0)
  assert(bit32.band(7.9, 3) == 3 and bit.band(2^32 + 5, 4) == 4)
  local t = tree:add(p, tvb())
  report(t, "bits ok")
end
"#
    );
    let (out, stats) = verbose(&script);
    assert_eq!(stats.lua_errors, 0, "{:?}", stats.first_errors);
    assert!(out.contains("    S: bits ok\n"));
}

#[test]
fn lua_errors_stay_in_their_packet() {
    let script = format!(
        "{HEAD}{}",
        r#"
function p.dissector(tvb, pinfo, tree)
  local t = tree:add(p, tvb())
  if pinfo.number == 1 then
    local x = tvb(8, 5)
  end
  report(t, "packet " .. pinfo.number)
end
"#
    );
    let (out, stats) = verbose(&script);
    assert_eq!(stats.lua_errors, 1);
    assert!(
        out.contains(
            "Lua Error: s.lua:11: Range is out of bounds\n    [Expert Info (Error/Undecoded): Lua Error: s.lua:11: Range is out of bounds]\n"
        ) || out.contains(":11: Range is out of bounds"),
        "{out}"
    );
    assert!(out.contains("    S: packet 2\n"), "{out}");
    assert!(!out.contains("packet 1\n"));
}

#[test]
fn unsupported_api_names_itself() {
    let script = format!(
        "{HEAD}{}",
        r#"
function p.dissector(tvb, pinfo, tree)
  if pinfo.number == 1 then tree:add_tvb_sorcery() end
  if pinfo.number == 2 then local l = Listener.new() end
end
"#
    );
    let (_out, stats) = verbose(&script);
    assert_eq!(stats.lua_errors, 2);
    let all = stats.first_errors.join("\n");
    assert!(
        all.contains("TreeItem:add_tvb_sorcery() is not supported by moonwire"),
        "{all}"
    );
    assert!(all.contains("Listener.new is not supported"), "{all}");
}

#[test]
fn packet_objects_types_expiry_and_misuse() {
    // Tvb, TvbRange and TreeItem are plain userdata: they keep their class
    // names, refuse other objects in their place, and expire with their
    // packet.
    let script = format!(
        "{HEAD}{}",
        r#"
local kept_range, kept_tvb, kept_item
function p.dissector(tvb, pinfo, tree)
  local t = tree:add(p, tvb())
  assert(typeof(tvb) == "Tvb" and typeof(tvb(0, 1)) == "TvbRange", typeof(tvb))
  assert(typeof(t) == "TreeItem" and typeof(tree) == "TreeItem")
  assert(typeof(f_s) == "ProtoField" and tostring(f_s):find("apit.s", 1, true), tostring(f_s))
  local ok, err = pcall(function() return t:add_packet_field(f_s, tvb(6, 2), ENC_ASCII) end)
  assert(ok, tostring(err))
  assert(#tvb == 10 and #tvb(2, 3) == 3)
  assert(tostring(tvb(0, 2)) == "0102", tostring(tvb(0, 2)))
  -- Ranges asked for again and again (cached by the fast path) read the
  -- bytes they name, whatever was asked for in between.
  local ba = tvb():bytes()
  for round = 1, 3 do
    for off = 0, 8 do
      for len = 1, 2 do
        local want = ba:get_index(off)
        if len == 2 then want = want * 256 + ba:get_index(off + 1) end
        local r = (round == 2) and tvb:range(off, len) or tvb(off, len)
        assert(r:len() == len and r:uint() == want, off .. "/" .. len)
        assert(tvb()(off, len):uint() == want, "sub " .. off .. "/" .. len)
      end
    end
  end
  -- A method called with another object than its own class.
  ok, err = pcall(function() return tvb(0, 1).uint(tvb) end)
  assert(not ok and tostring(err):find("TvbRange"), tostring(err))
  ok, err = pcall(function() return t:add(p, tvb) end)
  assert(not ok and tostring(err):find("got a Tvb"), tostring(err))
  ok, err = pcall(function() return tvb:frobnicate() end)
  assert(not ok and tostring(err):find("Tvb:frobnicate%(%) is not supported by moonwire"), tostring(err))
  ok, err = pcall(function() return tvb(0, 1):frobnicate() end)
  assert(not ok and tostring(err):find("TvbRange:frobnicate%(%) is not supported"), tostring(err))
  if pinfo.number == 1 then
    kept_range, kept_tvb, kept_item = tvb(0, 2), tvb, t
  else
    ok, err = pcall(function() return kept_range:uint() end)
    assert(not ok and tostring(err):find("expired TvbRange"), tostring(err))
    ok, err = pcall(function() return kept_tvb:len() end)
    assert(not ok and tostring(err):find("expired Tvb"), tostring(err))
    ok, err = pcall(function() return t:add(f_s, kept_range) end)
    assert(not ok and tostring(err):find("expired TvbRange"), tostring(err))
    -- A built item expires; without a tree every item is the null item.
    ok, err = pcall(function() return kept_item:append_text("x") end)
    assert(ok or tostring(err):find("expired TreeItem"), tostring(err))
    report(t, ok and "item null" or "item expired")
  end
  t:append_text(" (checked)")
  pinfo.cols.info = "objects " .. pinfo.number
  report(t, "objects ok")
end
"#
    );
    let (out, stats) = verbose(&script);
    assert_eq!(stats.lua_errors, 0, "{:?}", stats.first_errors);
    assert_eq!(out.matches("    S: objects ok\n").count(), 2, "{out}");
    assert_eq!(out.matches("API Test (checked)\n").count(), 2, "{out}");
    assert!(out.contains("    S: item expired\n"), "{out}");
    // Without a tree (summary output, and the first pass of -2) the same
    // script runs on null items.
    for two_pass in [false, true] {
        let (out, stats) = run_script(&script, OutputFormat::Summary, two_pass, vec![], vec![]);
        assert_eq!(stats.lua_errors, 0, "{:?}", stats.first_errors);
        assert!(
            out.contains("objects 1\n") && out.contains("objects 2\n"),
            "{out}"
        );
    }
}

#[test]
fn errors_name_the_script_line_with_and_without_a_tree() {
    // The hottest methods have C fast paths that hand unusual calls to
    // their general versions; either way an error names the script line.
    let script = format!(
        "{HEAD}{}",
        r#"
function p.dissector(tvb, pinfo, tree)
  local t = tree:add(p, tvb())
  if pinfo.number == 1 then
    local x = tvb(0, 5):uint()
  else
    t:add(f_s, tvb)
  end
end
"#
    );
    for format in [OutputFormat::Summary, OutputFormat::Verbose] {
        let (_out, stats) = run_script(&script, format, false, vec![], vec![]);
        let all = stats.first_errors.join("\n");
        assert_eq!(stats.lua_errors, 2, "{all}");
        assert!(
            all.contains("s.lua:11: TvbRange:uint() does not handle 5 byte integers"),
            "{all}"
        );
        assert!(
            all.contains("s.lua:13: TreeItem:add(): expected a TvbRange, got a Tvb"),
            "{all}"
        );
    }
}

#[test]
fn runaway_dissector_is_stopped() {
    let script = format!(
        "{HEAD}{}",
        r#"
function p.dissector(tvb, pinfo, tree)
  if pinfo.number == 1 then while true do end end
  report(tree:add(p, tvb()), "survived")
end
"#
    );
    let (out, stats) = verbose(&script);
    assert_eq!(stats.lua_errors, 1);
    assert!(stats.first_errors[0].contains("instruction budget exceeded"));
    assert!(out.contains("S: survived"));
}

#[test]
fn prefs_args_and_visited() {
    let script = r#"
local args = { ... }
local p = Proto("apit", "API Test")
local f_s = ProtoField.string("apit.s", "S")
p.fields = { f_s }
p.prefs.port = Pref.uint("Port", 1, "the port")
p.prefs.verbose = Pref.bool("Verbose", false, "more")
p.prefs.mode = Pref.enum("Mode", 1, "mode", { { 1, "fast", 1 }, { 2, "slow", 2 } }, false)
p.prefs.tag = Pref.string("Tag", "none", "a tag")
local changed = false
function p.prefs_changed() changed = true end
function p.init() init_called = (init_called or 0) + 1 end
function p.dissector(tvb, pinfo, tree)
  local t = tree:add(p, tvb())
  t:add(f_s, string.format("port=%d verbose=%s mode=%d tag=%s args=%s changed=%s visited=%s init=%d",
    p.prefs.port, tostring(p.prefs.verbose), p.prefs.mode, p.prefs.tag,
    table.concat(args, ","), tostring(changed), tostring(pinfo.visited), init_called))
end
DissectorTable.get("udp.port"):add(9999, p)
"#;
    let (out, stats) = run_script(
        script,
        OutputFormat::Fields(vec!["apit.s".into()]),
        true,
        vec!["one".into(), "two".into()],
        vec![
            ("apit.port".into(), "4242".into()),
            ("apit.verbose".into(), "TRUE".into()),
            ("apit.mode".into(), "slow".into()),
        ],
    );
    assert_eq!(stats.lua_errors, 0, "{:?}", stats.first_errors);
    assert_eq!(
        out,
        "port=4242 verbose=true mode=2 tag=none args=one,two changed=true visited=true init=1\n"
            .repeat(2)
    );
}

#[test]
fn unknown_pref_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = capture(dir.path());
    let path = dir.path().join("s.lua");
    std::fs::write(&path, HEAD).unwrap();
    let opts = Options {
        read: pcap.display().to_string(),
        engine: EngineOptions {
            scripts: vec![(path.display().to_string(), vec![])],
            prefs: vec![("apit.nope".into(), "1".into())],
            host: None,
        },
        ..Options::default()
    };
    let err = dissect::run(&opts, &mut Vec::new()).unwrap_err();
    assert!(err.to_string().contains("unknown preference"), "{err}");
}

#[test]
fn string_tables_dissector_get_and_columns() {
    let script = format!(
        "{HEAD}{}",
        r#"
local sub = Proto("apisub", "API Sub")
function sub.dissector(tvb, pinfo, tree)
  tree:add(sub, tvb(), "API Sub: " .. tvb:len() .. " bytes")
  return tvb:len()
end
local byname = DissectorTable.new("apit.name", "By name", ftypes.STRING)
byname:add("ab", sub)
function p.dissector(tvb, pinfo, tree)
  local t = tree:add(p, tvb())
  local d = byname:get_dissector("ab")
  assert(d ~= nil and byname:get_dissector("zz") == nil)
  d:call(tvb(6):tvb(), pinfo, tree)
  Dissector.get("data"):call(tvb(0, 2):tvb(), pinfo, tree)
  local ok, err = pcall(Dissector.get, "nosuch")
  assert(not ok and tostring(err):find("No such dissector"))
  pinfo.cols.protocol:set("APIT")
  pinfo.cols.info:clear()
  pinfo.cols.info:append("b")
  pinfo.cols.info:prepend("a")
  pinfo.cols.info:fence()
  pinfo.cols.info:set("c")
  pinfo.cols.info:append(tostring(pinfo.cols.protocol))
  report(t, tostring(pinfo.src) .. ":" .. pinfo.src_port .. ">" .. tostring(pinfo.dst) .. ":" .. pinfo.dst_port
    .. " match=" .. pinfo.match .. " pt=" .. pinfo.port_type .. " len=" .. pinfo.len)
end
"#
    );
    let (out, stats) = verbose(&script);
    assert_eq!(stats.lua_errors, 0, "{:?}", stats.first_errors);
    assert!(out.contains("API Sub: 4 bytes\n"), "{out}");
    assert!(out.contains("Data (2 bytes)\n    Data: 0102\n"), "{out}");
    assert!(
        out.contains("S: 10.0.0.1:40000>10.0.0.2:9999 match=9999 pt=3 len=52"),
        "{out}"
    );
    let (summary, _) = run_script(&script, OutputFormat::Summary, false, vec![], vec![]);
    assert!(
        summary.lines().next().unwrap().ends_with("APIT 52 abcAPIT"),
        "{summary}"
    );
}

#[test]
fn tunnel_through_builtin_ip_and_ethertype_table() {
    // Packet 1..2 are UDP to 9999 (see capture()); here a Lua protocol on
    // that port treats the last 8 bytes as nothing and hands an inner IPv4
    // packet (built by the script) to Dissector.get("ip"), whose UDP payload
    // reaches a second Lua protocol through udp.port.
    let script = r#"
local outer = Proto("tunl", "Tunnel")
local inner = Proto("innr", "Inner")
local f_b = ProtoField.uint8("innr.b", "B", base.HEX)
local f_v = ProtoField.uint16("tunl.v", "V", base.DEC, nil, 0x0ff0)
local f_u = ProtoField.uint32("tunl.pf", "PF")
inner.fields = { f_b }
outer.fields = { f_v, f_u }
function inner.dissector(tvb, pinfo, tree)
  local t = tree:add(inner, tvb())
  t:add(f_b, tvb(0, 1))
  t:prepend_text("<")
  t:append_text(">")
  local h = t:add(f_b, tvb(1, 1))
  h:set_hidden()
  return tvb:len()
end
function outer.dissector(tvb, pinfo, tree)
  local t = tree:add(outer, tvb(0, 2))
  t:add(f_v, tvb(0, 2))
  local item, value, off = t:add_packet_field(f_u, tvb(0, 4), ENC_LITTLE_ENDIAN)
  t:add(f_u, value):set_text("value=" .. value .. " next=" .. off)
  -- inner IPv4/UDP packet: 10.9.9.1:1 -> 10.9.9.2:5555, payload ab cd
  local ip = ByteArray.new("45 00 00 1e 00 00 00 00 40 11 00 00 0a 09 09 01 0a 09 09 02 00 01 15 b3 00 0a 00 00 ab cd")
  Dissector.get("ip"):call(ip:tvb("inner"), pinfo, tree)
  return tvb:len()
end
DissectorTable.get("udp.port"):add(9999, outer)
DissectorTable.get("udp.port"):add(5555, inner)
"#;
    let (out, stats) = verbose(script);
    assert_eq!(stats.lua_errors, 0, "{:?}", stats.first_errors);
    assert!(
        out.contains(
            "Tunnel\n    .... 0001 0000 .... = V: 16\n    PF: 67305985\n    value=67305985 next=4\n"
        ),
        "{out}"
    );
    assert!(
        out.contains("Internet Protocol Version 4, Src: 10.9.9.1, Dst: 10.9.9.2\n"),
        "{out}"
    );
    assert!(
        out.contains("User Datagram Protocol, Src Port: 1, Dst Port: 5555\n"),
        "{out}"
    );
    assert!(out.contains("<Inner>\n    B: 0xab\n"), "{out}");
    assert!(!out.contains("B: 0xcd"), "hidden item shown: {out}");
    let (json, _) = run_script(script, OutputFormat::Json, false, vec![], vec![]);
    assert!(
        json.contains("\"innr.b\": \"0xcd\""),
        "hidden items stay in JSON: {json}"
    );
    let (protos, _) = run_script(
        script,
        OutputFormat::Fields(vec!["frame.protocols".into()]),
        false,
        vec![],
        vec![],
    );
    assert_eq!(
        protos.lines().next().unwrap(),
        "eth:ethertype:ip:udp:tunl:ip:udp:innr"
    );
}

#[test]
fn ethertype_table_claims_frames() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("et.pcap");
    let f = std::fs::File::create(&pcap).unwrap();
    let mut w = PcapWriter::new(std::io::BufWriter::new(f), 1, 65_535).unwrap();
    let mut fr = vec![0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 1, 0x88, 0xb5];
    fr.extend_from_slice(&[7, 1, 2, 3]);
    w.write_packet(1_700_000_000_000_000, fr.len() as u32, &fr)
        .unwrap();
    w.into_inner().unwrap();
    let script = dir.path().join("et.lua");
    std::fs::write(
        &script,
        r#"
local p = Proto("lexp", "Local Experimental")
local f = ProtoField.uint8("lexp.kind", "Kind")
p.fields = { f }
function p.dissector(tvb, pinfo, tree)
  pinfo.cols.protocol = "LEXP"
  pinfo.cols.info = "from " .. tostring(pinfo.dl_src) .. " match " .. string.format("0x%04x", pinfo.match)
  tree:add(p, tvb()):add(f, tvb(0, 1))
end
DissectorTable.get("ethertype"):add(0x88b5, p)
"#,
    )
    .unwrap();
    let opts = Options {
        read: pcap.display().to_string(),
        engine: EngineOptions {
            scripts: vec![(script.display().to_string(), vec![])],
            ..EngineOptions::default()
        },
        format: OutputFormat::Fields(vec![
            "lexp.kind".into(),
            "_ws.col.Info".into(),
            "eth.type".into(),
        ]),
        ..Options::default()
    };
    let mut out = Vec::new();
    dissect::run(&opts, &mut out).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "7\tfrom 00:00:00:00:00:01 match 0x88b5\t0x88b5\n"
    );
}

#[test]
fn garbage_and_truncated_frames_never_panic() {
    // Deterministic pseudo-random frames: valid headers cut at every
    // length, and random bytes, under every link type moonwire decodes.
    let dir = tempfile::tempdir().unwrap();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let full = dissect::synth::tcp_frame(
        [1, 2, 3, 4],
        [5, 6, 7, 8],
        1,
        7777,
        5,
        6,
        0x18,
        &[0, 9, 2, 1, 2, 3],
    );
    for linktype in [1u32, 0, 101, 113, 228, 229, 12345] {
        let pcap = dir.path().join(format!("g{linktype}.pcap"));
        let f = std::fs::File::create(&pcap).unwrap();
        let mut w = PcapWriter::new(std::io::BufWriter::new(f), linktype, 65_535).unwrap();
        for cut in 0..full.len() {
            w.write_packet(cut as i64, full.len() as u32, &full[..cut])
                .unwrap();
        }
        for i in 0..200 {
            let len = (next() % 120) as usize;
            let mut b: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if i % 2 == 0 && b.len() > 23 {
                b[12] = 0x08;
                b[13] = 0x00;
                b[14] = 0x45;
                b[23] = if i % 4 == 0 { 6 } else { 17 };
            }
            w.write_packet(1000 + i, b.len() as u32, &b).unwrap();
        }
        w.into_inner().unwrap();
        for two in [false, true] {
            let opts = Options {
                read: pcap.display().to_string(),
                engine: EngineOptions {
                    scripts: vec![(
                        Path::new(env!("CARGO_MANIFEST_DIR"))
                            .join("tests/lua/lenproto.lua")
                            .display()
                            .to_string(),
                        vec![],
                    )],
                    ..EngineOptions::default()
                },
                two_pass: two,
                format: OutputFormat::Json,
                ..Options::default()
            };
            let mut out = Vec::new();
            let stats = dissect::run(&opts, &mut out).unwrap();
            assert_eq!(stats.packets, full.len() as u64 + 200);
        }
    }
}
