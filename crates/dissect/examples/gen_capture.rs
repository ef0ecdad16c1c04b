//! Writes a benchmark capture: `gen_capture OUT.pcap N` writes N packets,
//! UDP status reports (port 6000, see tests/lua/vsmask.lua) interleaved
//! with a length-prefixed TCP stream (port 7777, tests/lua/lenproto.lua)
//! whose PDUs straddle segments.

use dissect::pcap::PcapWriter;
use dissect::synth::{flags, tcp_frame, udp_frame};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(out), Some(n)) = (args.get(1), args.get(2).and_then(|n| n.parse::<u64>().ok()))
    else {
        eprintln!("usage: gen_capture OUT.pcap PACKETS");
        std::process::exit(2);
    };
    let f = std::fs::File::create(out)?;
    let mut w = PcapWriter::new(std::io::BufWriter::new(f), 1, 65_535)?;
    let a = [10, 0, 0, 1];
    let b = [10, 0, 0, 2];
    let mut seq = 1u32;
    // A 30-byte PDU split 20 + 10 across segments keeps reassembly busy.
    let mut pdu = vec![0u8, 28, 2];
    pdu.extend_from_slice(b"0123456789abcdefghijklmnopq");
    for i in 0..n {
        let ts = 1_700_000_000_000_000 + i as i64 * 100;
        let frame = if i % 2 == 0 {
            let mut d = vec![
                0x31,
                0x80,
                0x00,
                0,
                0,
                0,
                (i % 3) as u8,
                0xff,
                0xf6,
                200,
                192,
                168,
                1,
                9,
            ];
            d.extend_from_slice(b"pump\0");
            udp_frame(a, b, 50000 + (i % 64) as u16, 6000, &d)
        } else {
            let part = if (i / 2) % 2 == 0 {
                &pdu[..20]
            } else {
                &pdu[20..]
            };
            let f = tcp_frame(a, b, 40001, 7777, seq, 1, flags::ACK | flags::PSH, part);
            seq = seq.wrapping_add(part.len() as u32);
            f
        };
        w.write_packet(ts, frame.len() as u32, &frame)?;
    }
    w.into_inner()?;
    Ok(())
}
