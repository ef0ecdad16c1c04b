//! `moonwire dissect` end to end: flags parsed as tshark's, output on
//! stdout, script errors summarised on stderr.

use std::process::Command;

use dissect::pcap::PcapWriter;
use dissect::synth::udp_frame;

const SCRIPT: &str = r#"
local args = { ... }
local p = Proto("clit", "CLI Test")
local f_n = ProtoField.uint8("clit.n", "N")
local f_tag = ProtoField.string("clit.tag", "Tag")
p.fields = { f_n, f_tag }
p.prefs.bad = Pref.uint("Bad packet", 0, "packet number that fails")
function p.dissector(tvb, pinfo, tree)
  pinfo.cols.protocol = "CLIT"
  if pinfo.number == p.prefs.bad then error("bad packet " .. pinfo.number) end
  local t = tree:add(p, tvb())
  t:add(f_n, tvb(0, 1))
  t:add(f_tag, args[1] or "none")
end
DissectorTable.get("udp.port"):add(7000, p)
"#;

fn setup() -> (tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("c.pcap");
    let f = std::fs::File::create(&pcap).unwrap();
    let mut w = PcapWriter::new(std::io::BufWriter::new(f), 1, 65_535).unwrap();
    for i in 0..4u8 {
        let fr = udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 1234, 7000, &[i % 2, 0xaa]);
        w.write_packet(1_700_000_000_000_000 + i as i64, fr.len() as u32, &fr)
            .unwrap();
    }
    w.into_inner().unwrap();
    let script = dir.path().join("c.lua");
    std::fs::write(&script, SCRIPT).unwrap();
    let (p, s) = (pcap.display().to_string(), script.display().to_string());
    (dir, p, s)
}

fn moonwire(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_moonwire"))
        .arg("dissect")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn fields_filter_count_and_script_args() {
    let (_d, pcap, script) = setup();
    let lua = format!("lua_script:{script}");
    let out = moonwire(&[
        "-r",
        &pcap,
        "-X",
        &lua,
        "-X",
        "lua_script1:hello",
        "-T",
        "fields",
        "-e",
        "frame.number",
        "-e",
        "clit.tag",
        "-Y",
        "clit.n == 1 || frame.number == 1",
        "-c",
        "3",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1\thello\n2\thello\n");
}

#[test]
fn summary_and_errors_on_stderr() {
    let (_d, pcap, script) = setup();
    let lua = format!("lua_script:{script}");
    let out = moonwire(&["-r", &pcap, "-X", &lua, "-o", "clit.bad:2"]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 4, "{stdout}");
    assert!(stdout.lines().all(|l| l.contains(" CLIT ")), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("1 Lua error(s)") && stderr.contains("bad packet 2"),
        "{stderr}"
    );
}

#[test]
fn bad_flags_fail_clearly() {
    let (_d, pcap, script) = setup();
    let lua = format!("lua_script:{script}");
    let out = moonwire(&["-r", &pcap, "-X", &lua, "-T", "pdml"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("-T pdml"));
    let out = moonwire(&["-r", &pcap, "-X", &lua, "-Y", "nosuch.field == 1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nosuch.field"));
    let out = moonwire(&["-r", &pcap, "-X", "lua_script2:x", "-X", &lua]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no script number 2"));
}
