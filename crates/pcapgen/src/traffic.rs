//! Interleaved synthetic conversations.

use std::io::Write;

use crate::build::{self, flags};

/// Relative weights of conversation kinds.
#[derive(Debug, Clone, Copy)]
pub struct Mix {
    /// HTTP/1.1 GET with a response body.
    pub http: u32,
    /// DNS query and answer over UDP.
    pub dns: u32,
    /// TLS handshake and application data.
    pub tls: u32,
    /// An SMTP mail submission.
    pub smtp: u32,
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            http: 4,
            dns: 3,
            tls: 3,
            smtp: 1,
        }
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct GeneratorConfig {
    /// Stop after this many packets.
    pub packets: u64,
    /// Conversations open at once.
    pub concurrent: usize,
    /// PRNG seed: the same seed gives the same bytes.
    pub seed: u64,
    /// Conversation mix.
    pub mix: Mix,
    /// Capture time between packets, microseconds.
    pub step_us: i64,
    /// Capture time of the first packet, microseconds since the epoch.
    pub start_us: i64,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        GeneratorConfig {
            packets: 1000,
            concurrent: 64,
            seed: 1,
            mix: Mix::default(),
            step_us: 100,
            start_us: 1_700_000_000_000_000,
        }
    }
}

/// xorshift64*: small, fast, deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

struct Step {
    from_client: bool,
    tcp_flags: u8,
    payload: Vec<u8>,
}

struct Conversation {
    client: ([u8; 6], [u8; 4], u16),
    server: ([u8; 6], [u8; 4], u16),
    udp: bool,
    seq: [u32; 2],
    steps: Vec<Step>,
    next: usize,
    ip_id: u16,
}

const HOSTS: &[&str] = &[
    "www.example.com",
    "api.example.net",
    "cdn.example.org",
    "mail.example.com",
    "login.example.net",
    "static.example.org",
];
const PATHS: &[&str] = &[
    "/",
    "/index.html",
    "/login",
    "/api/v1/items",
    "/img/logo.png",
    "/search?q=moon",
];

fn tcp_open(steps: &mut Vec<Step>) {
    steps.push(Step {
        from_client: true,
        tcp_flags: flags::SYN,
        payload: Vec::new(),
    });
    steps.push(Step {
        from_client: false,
        tcp_flags: flags::SYN | flags::ACK,
        payload: Vec::new(),
    });
    steps.push(Step {
        from_client: true,
        tcp_flags: flags::ACK,
        payload: Vec::new(),
    });
}

fn tcp_close(steps: &mut Vec<Step>) {
    steps.push(Step {
        from_client: true,
        tcp_flags: flags::FIN | flags::ACK,
        payload: Vec::new(),
    });
    steps.push(Step {
        from_client: false,
        tcp_flags: flags::FIN | flags::ACK,
        payload: Vec::new(),
    });
    steps.push(Step {
        from_client: true,
        tcp_flags: flags::ACK,
        payload: Vec::new(),
    });
}

fn data(steps: &mut Vec<Step>, from_client: bool, payload: Vec<u8>) {
    // Segments of at most 1400 bytes, each acknowledged.
    for chunk in payload.chunks(1400) {
        steps.push(Step {
            from_client,
            tcp_flags: flags::PSH | flags::ACK,
            payload: chunk.to_vec(),
        });
    }
    steps.push(Step {
        from_client: !from_client,
        tcp_flags: flags::ACK,
        payload: Vec::new(),
    });
}

fn body(rng: &mut Rng, len: usize) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "moon", "wire", "packet", "session", "lua", "capture", "proxy", "dissect",
    ];
    let mut s = String::with_capacity(len + 16);
    while s.len() < len {
        s.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
        s.push(' ');
    }
    s.truncate(len);
    s.into_bytes()
}

impl Conversation {
    fn new(rng: &mut Rng, mix: &Mix, serial: u64) -> Conversation {
        let total = u64::from(mix.http + mix.dns + mix.tls + mix.smtp).max(1);
        let pick = rng.below(total) as u32;
        let kind = if pick < mix.http {
            0
        } else if pick < mix.http + mix.dns {
            1
        } else if pick < mix.http + mix.dns + mix.tls {
            2
        } else {
            3
        };
        let c = rng.next();
        let client_ip = [10, (c >> 8) as u8, (c >> 16) as u8, (c >> 24) as u8 | 1];
        let client_mac = [
            0x02,
            0x00,
            (c >> 8) as u8,
            (c >> 16) as u8,
            (c >> 24) as u8,
            1,
        ];
        let sport = 1024 + (serial % 60_000) as u16;
        let server_n = rng.below(50) as u8 + 1;
        let server_ip = [198, 51, 100, server_n];
        let server_mac = [0x02, 0x00, 0, 0, 1, server_n];
        let host = HOSTS[rng.below(HOSTS.len() as u64) as usize];
        let mut steps = Vec::new();
        let (dport, udp) = if kind == 0 {
            tcp_open(&mut steps);
            let path = PATHS[rng.below(PATHS.len() as u64) as usize];
            let req = format!(
                "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: moonwire-pcapgen/1.0\r\nAccept: */*\r\n\r\n"
            );
            data(&mut steps, true, req.into_bytes());
            let len = 200 + rng.below(3000) as usize;
            let mut resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {len}\r\nServer: pcapgen\r\n\r\n"
            )
            .into_bytes();
            resp.extend(body(rng, len));
            data(&mut steps, false, resp);
            tcp_close(&mut steps);
            (80, false)
        } else if kind == 1 {
            let id = rng.below(65536) as u16;
            steps.push(Step {
                from_client: true,
                tcp_flags: 0,
                payload: build::dns_query(id, host),
            });
            let addr = [203, 0, 113, rng.below(254) as u8 + 1];
            steps.push(Step {
                from_client: false,
                tcp_flags: 0,
                payload: build::dns_response(id, host, addr),
            });
            (53, true)
        } else if kind == 2 {
            tcp_open(&mut steps);
            data(&mut steps, true, build::tls_client_hello(host, c as u32));
            data(&mut steps, false, build::tls_server_hello(0xc02f));
            data(
                &mut steps,
                true,
                build::tls_app_data(300 + rng.below(500) as usize, 0x11),
            );
            data(
                &mut steps,
                false,
                build::tls_app_data(1000 + rng.below(4000) as usize, 0x22),
            );
            tcp_close(&mut steps);
            (443, false)
        } else {
            tcp_open(&mut steps);
            let lines: [(bool, String); 12] = [
                (false, "220 mail.example.com ESMTP pcapgen\r\n".into()),
                (true, "EHLO client.example.net\r\n".into()),
                (false, "250-mail.example.com\r\n250 8BITMIME\r\n".into()),
                (true, "MAIL FROM:<alice@example.net>\r\n".into()),
                (false, "250 OK\r\n".into()),
                (true, "RCPT TO:<bob@example.com>\r\n".into()),
                (false, "250 OK\r\n".into()),
                (true, "DATA\r\n".into()),
                (false, "354 go ahead\r\n".into()),
                (
                    true,
                    format!(
                        "From: Alice <alice@example.net>\r\nTo: Bob <bob@example.com>\r\nSubject: report {serial}\r\n\r\n{}\r\n.\r\n",
                        String::from_utf8_lossy(&body(rng, 400))
                    ),
                ),
                (false, "250 queued\r\n".into()),
                (true, "QUIT\r\n".into()),
            ];
            for (from_client, line) in lines {
                data(&mut steps, from_client, line.into_bytes());
            }
            tcp_close(&mut steps);
            (25, false)
        };
        Conversation {
            client: (client_mac, client_ip, sport),
            server: (server_mac, server_ip, dport),
            udp,
            seq: [(c >> 32) as u32, (c >> 7) as u32],
            steps,
            next: 0,
            ip_id: c as u16,
        }
    }

    /// The next packet, or None when the conversation is over.
    fn packet(&mut self) -> Option<Vec<u8>> {
        let step = self.steps.get(self.next)?;
        self.next += 1;
        let (src, dst) = if step.from_client {
            (self.client, self.server)
        } else {
            (self.server, self.client)
        };
        let d = usize::from(!step.from_client);
        let l4 = if self.udp {
            build::udp(src.2, dst.2, &step.payload)
        } else {
            let seq = self.seq[d];
            let ack = if step.tcp_flags & flags::ACK != 0 {
                self.seq[1 - d]
            } else {
                0
            };
            let seg = build::tcp(src.2, dst.2, seq, ack, step.tcp_flags, &step.payload);
            let mut used = step.payload.len() as u32;
            if step.tcp_flags & (flags::SYN | flags::FIN) != 0 {
                used += 1;
            }
            self.seq[d] = seq.wrapping_add(used);
            seg
        };
        self.ip_id = self.ip_id.wrapping_add(1);
        let proto = if self.udp { 17 } else { 6 };
        let ttl = if step.from_client { 64 } else { 57 };
        let ip = build::ipv4(src.1, dst.1, proto, ttl, self.ip_id, &l4);
        Some(build::ethernet(src.0, dst.0, 0x0800, &ip))
    }
}

/// Writes interleaved conversations as a pcap.
pub struct Generator {
    config: GeneratorConfig,
}

impl Generator {
    /// A generator for `config`.
    pub fn new(config: GeneratorConfig) -> Generator {
        Generator { config }
    }

    /// Writes the capture to `out`; returns packets written.
    pub fn write<W: Write>(&self, out: W) -> std::io::Result<u64> {
        let cfg = &self.config;
        let mut rng = Rng(cfg.seed.max(1).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut w = pcapio::PcapWriter::new(out, 1, 65535)?;
        let mut serial = 0u64;
        let mut open: Vec<Conversation> = (0..cfg.concurrent.max(1))
            .map(|_| {
                serial += 1;
                Conversation::new(&mut rng, &cfg.mix, serial)
            })
            .collect();
        let mut ts = cfg.start_us;
        let mut written = 0;
        while written < cfg.packets {
            let i = rng.below(open.len() as u64) as usize;
            match open[i].packet() {
                Some(p) => {
                    w.write_packet(ts, p.len() as u32, &p)?;
                    written += 1;
                    ts += cfg.step_us;
                }
                None => {
                    serial += 1;
                    open[i] = Conversation::new(&mut rng, &cfg.mix, serial);
                }
            }
        }
        w.into_inner()?;
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_readable() {
        let cfg = GeneratorConfig {
            packets: 500,
            ..GeneratorConfig::default()
        };
        let mut a = Vec::new();
        let mut b = Vec::new();
        assert_eq!(Generator::new(cfg.clone()).write(&mut a).unwrap(), 500);
        Generator::new(cfg).write(&mut b).unwrap();
        assert_eq!(a, b);
        let mut r = pcapio::CaptureReader::new(&a[..]).unwrap();
        let mut n = 0;
        while let Some(rec) = r.next_record().unwrap() {
            assert!(rec.data.len() >= 42);
            n += 1;
        }
        assert_eq!(n, 500);
    }
}

#[cfg(test)]
mod sample {
    use super::*;

    /// The bundled `samples/sample.pcap` is exactly what this generator
    /// writes with the documented arguments (`pcapgen -w samples/sample.pcap
    /// -n 3000 --concurrent 40 --seed 7 --step-us 2000`).
    #[test]
    fn bundled_sample_is_ours() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples/sample.pcap");
        let bundled = std::fs::read(path).expect("samples/sample.pcap");
        let cfg = GeneratorConfig {
            packets: 3000,
            concurrent: 40,
            seed: 7,
            step_us: 2000,
            ..GeneratorConfig::default()
        };
        let mut ours = Vec::new();
        Generator::new(cfg).write(&mut ours).unwrap();
        assert!(
            ours == bundled,
            "samples/sample.pcap differs from the generator's output"
        );
    }
}
