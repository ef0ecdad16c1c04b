//! One session's generic state (everything not specific to an application
//! protocol) and how it becomes an Arkime `sessions3` document.

use std::net::IpAddr;

use flow::{SessionKey, SessionKind, TcpStream};
use smallvec::SmallVec;
use wire::{Decoded, TcpInfo, Transport};

use crate::community_id;
use crate::json::ObjectWriter;

/// Where a written packet is (`packetPos`) and its length (`packetLen`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PacketAt {
    /// Record offset in its file, or `u64::MAX - file` for a change of file.
    pub pos: u64,
    /// Captured length plus the record header.
    pub len: u32,
}

/// Per-direction facts are collected for this many packets (as Arkime).
const FIRST_PACKETS: u64 = 10;
/// Packet positions reserved when a session starts.
const INITIAL_PACKETS: usize = 16;

/// A list that nearly always holds one or two values (a direction's TTLs
/// or MACs, a SYN's sequence numbers): kept inline, so a session does not
/// allocate (and the output thread free) a block for each of them.
pub(crate) type Few<T> = SmallVec<[T; 2]>;

/// TCP counters and reassembly for one session.
#[derive(Debug)]
pub(crate) struct TcpState {
    /// syn, syn-ack, ack, psh, fin, rst, urg, ece, cwr, ae, srcZero, dstZero.
    pub flags: [u32; 12],
    pub syn_time: i64,
    pub ack_time: i64,
    pub syn_seq: Option<u32>,
    pub synack_seq: Option<u32>,
    pub synack_first_seq: Option<u32>,
    pub isns: Few<u32>,
    pub syn_validated: bool,
    pub synack_validated: bool,
    pub client_ack_checked: bool,
    pub streams: [TcpStream; 2],
    pub fin: [bool; 2],
    pub rst: bool,
    /// A SYN or SYN-ACK was seen (Arkime's `haveTcpSession`); unlike the
    /// flag counters it survives a mid-session save.
    handshake: bool,
    /// Whether each direction's FIN moved its stream on by one.
    fin_consumed: [bool; 2],
    /// Arkime's per-direction close state.
    close_state: [CloseState; 2],
    /// Arkime marked the session for closing (both FINs acknowledged, or a
    /// RST at the expected sequence number): it is saved a fixed
    /// `tcpClosingTimeout` after that packet, whatever follows.
    pub closing: bool,
    tagged_out_of_order: [bool; 2],
    tagged_acked_unseen: [bool; 2],
    tagged_incomplete: bool,
}

impl TcpState {
    fn new(max_pending: usize) -> TcpState {
        TcpState {
            flags: [0; 12],
            syn_time: 0,
            ack_time: 0,
            syn_seq: None,
            synack_seq: None,
            synack_first_seq: None,
            isns: Few::new(),
            syn_validated: false,
            synack_validated: false,
            client_ack_checked: false,
            streams: [TcpStream::new(max_pending), TcpStream::new(max_pending)],
            fin: [false; 2],
            rst: false,
            handshake: false,
            fin_consumed: [false; 2],
            close_state: [CloseState::Open; 2],
            closing: false,
            tagged_out_of_order: [false; 2],
            tagged_acked_unseen: [false; 2],
            tagged_incomplete: false,
        }
    }

    /// Whether the connection has ended (both FINs or a RST).
    pub fn closed(&self) -> bool {
        self.rst || (self.fin[0] && self.fin[1])
    }

    /// Arkime's next expected sequence number of a direction: 0 until
    /// known, and a FIN does not count.
    fn expected_seq(&self, dir: usize) -> u32 {
        let s = &self.streams[dir];
        if !s.is_started() {
            return 0;
        }
        s.next_seq().wrapping_sub(u32::from(self.fin_consumed[dir]))
    }

    /// Follows Arkime's close rules for a packet without SYN; true when it
    /// marks the session for closing now.
    fn track_close(&mut self, t: &TcpInfo, dir: usize) -> bool {
        let f = t.flags;
        if self.closing {
            return false;
        }
        if f & TcpInfo::RST != 0 {
            let diff = arkime_seq_diff(t.seq, self.expected_seq(dir));
            if diff <= 0 {
                // At or past what is expected: the connection is over only
                // when the RST is exactly in sequence.
                if diff == 0 {
                    self.closing = true;
                }
                return self.closing;
            }
            self.close_state[dir] = CloseState::FinAcked;
        }
        if f & TcpInfo::FIN != 0 {
            self.close_state[dir] = CloseState::Fin;
        }
        let other = 1 - dir;
        if f & (TcpInfo::ACK | TcpInfo::RST) != 0 && self.close_state[other] == CloseState::Fin {
            self.close_state[other] = CloseState::FinAcked;
            if self.close_state[dir] == CloseState::FinAcked {
                self.closing = true;
            }
        }
        self.closing
    }
}

/// One direction's progress towards closing, as Arkime tracks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CloseState {
    Open,
    /// Sent a FIN (or a RST behind the expected sequence).
    Fin,
    /// Its FIN was acknowledged.
    FinAcked,
}

/// Arkime's sequence distance `b - a`, with its wrap-around cases (the
/// arithmetic differs from plain wrapping subtraction near the edges).
fn arkime_seq_diff(a: u32, b: u32) -> i64 {
    let (a, b) = (i64::from(a), i64::from(b));
    if a > 0xc000_0000 && b < 0x4000_0000 {
        return a + 0x1_0000_0000 - b;
    }
    if b > 0xc000_0000 && a < 0x4000_0000 {
        return a - b - 0x1_0000_0000;
    }
    b - a
}

/// Facts few sessions have, boxed apart so that the common session is
/// smaller: it is written whole when the session starts and its lines are
/// what a packet touches.
#[derive(Debug, Default)]
pub(crate) struct Rare {
    pub vlans: Vec<u16>,
    pub dot1q: Vec<u16>,
    pub dot1ad: Vec<u16>,
    pub vnis: Vec<u32>,
    pub outer_ips: [Vec<IpAddr>; 2],
    pub outer_macs: [Vec<[u8; 6]>; 2],
    pub icmp_types: Vec<u8>,
    pub icmp_codes: Vec<u8>,
    pub icmp_first: Option<(u8, u8, bool)>,
}

/// What a session without rare facts reads.
static NO_RARE: Rare = Rare {
    vlans: Vec::new(),
    dot1q: Vec::new(),
    dot1ad: Vec::new(),
    vnis: Vec::new(),
    outer_ips: [Vec::new(), Vec::new()],
    outer_macs: [Vec::new(), Vec::new()],
    icmp_types: Vec::new(),
    icmp_codes: Vec::new(),
    icmp_first: None,
};

/// Generic session state owned by one packet thread.
#[derive(Debug)]
pub(crate) struct Session {
    pub key: SessionKey,
    pub ip_protocol: u8,
    pub ethertype: u16,
    pub src_ip: Option<IpAddr>,
    pub dst_ip: Option<IpAddr>,
    pub src_port: u16,
    pub dst_port: u16,
    pub macs: [Few<[u8; 6]>; 2],
    pub first_us: i64,
    pub last_us: i64,
    pub packets: [u64; 2],
    pub bytes: [u64; 2],
    pub databytes: [u64; 2],
    /// Position (record offset, or a file-change marker) and length of
    /// every packet written, in one list: one allocation per session.
    pub packets_at: Vec<PacketAt>,
    pub ttl: [Few<u8>; 2],
    pub dscp: [Few<u8>; 2],
    /// VLAN, tunnel and ICMP facts, which most sessions lack.
    pub rare: Option<Box<Rare>>,
    /// The first (up to) 8 data bytes of each direction.
    pub payload8: [SmallVec<[u8; 8]>; 2],
    pub tcp: Option<TcpState>,
    pub protocols: Few<&'static str>,
    pub tags: Vec<&'static str>,
    pub segments: u32,
    /// Packets after this many are counted but not written (ESP).
    pub stop_saving_after: Option<u64>,
    pub truncated_tagged: bool,
    /// A non-IP session (ARP, or an LLC frame kept as corrupt-ip) carried
    /// in an IP tunnel: Arkime gives it the tunnel's addresses, protocol
    /// and TTL, and no outer IPs.
    pub over_ip: bool,
}

fn add_unique<T: PartialEq + Copy>(v: &mut Vec<T>, x: T) {
    if !v.contains(&x) {
        v.push(x);
    }
}

fn add_few<T: PartialEq + Copy>(v: &mut Few<T>, x: T) {
    if !v.contains(&x) {
        v.push(x);
    }
}

impl Session {
    /// A session for the first packet `d`; `flip` makes the packet's
    /// destination the session's source (a SYN-ACK seen first). Boxed
    /// here, so the ~1 KB state is written once into its heap block
    /// instead of being built and then moved there.
    pub fn new(
        key: SessionKey,
        d: &Decoded,
        ts_us: i64,
        flip: bool,
        max_pending: usize,
    ) -> Box<Session> {
        let net = d.network;
        let (sp, dp) = d.ports().unwrap_or((0, 0));
        let (mut src_ip, mut dst_ip) = (net.map(|n| n.src), net.map(|n| n.dst));
        let tunnel = d.outer_layers().last().filter(|o| {
            let arp = key.kind == SessionKind::UnknownEther
                && key.discriminator == crate::keying::ARP_ETHERTYPE;
            net.is_none() && (arp || key.kind == SessionKind::CorruptIp) && o.src_ip.is_some()
        });
        if let Some(o) = tunnel {
            (src_ip, dst_ip) = (o.src_ip, o.dst_ip);
        }
        let (mut src_port, mut dst_port) = (sp, dp);
        if flip {
            std::mem::swap(&mut src_ip, &mut dst_ip);
            std::mem::swap(&mut src_port, &mut dst_port);
        }
        let mut protocols = Few::new();
        let ip_protocol = match (key.kind, tunnel) {
            (SessionKind::UnknownEther | SessionKind::CorruptIp, Some(o)) => {
                o.ip_protocol.unwrap_or(0)
            }
            (SessionKind::UnknownEther | SessionKind::CorruptEther, _) => 0,
            _ => net.map(|n| n.proto).unwrap_or(0),
        };
        match key.kind {
            SessionKind::Tcp => protocols.push("tcp"),
            SessionKind::Udp => protocols.push("udp"),
            SessionKind::Icmp => protocols.push("icmp"),
            SessionKind::Sctp => protocols.push("sctp"),
            SessionKind::Esp => protocols.push("esp"),
            SessionKind::UnknownIp => protocols.push("unknown-ip"),
            SessionKind::CorruptIp => protocols.push("corrupt-ip"),
            SessionKind::CorruptEther => protocols.push("corrupt-ether"),
            SessionKind::UnknownEther => protocols.push(match key.discriminator {
                0x0806 => "arp",
                0x88cc => "lldp",
                crate::keying::XID_DISCRIMINATOR => "xid",
                _ => "unknown-ether",
            }),
            SessionKind::OtherIp => protocols.push(match ip_protocol {
                2 => "igmp",
                103 => "pim",
                89 => "ospf",
                _ => "unknown-ip",
            }),
        }
        let stop_saving_after = (key.kind == SessionKind::Esp).then_some(1);
        Box::new(Session {
            key,
            ip_protocol,
            ethertype: 0,
            src_ip,
            dst_ip,
            src_port,
            dst_port,
            macs: [Few::new(), Few::new()],
            first_us: ts_us,
            last_us: ts_us,
            packets: [0; 2],
            bytes: [0; 2],
            databytes: [0; 2],
            // Most sessions have a handful of packets: one allocation each
            // instead of growing 1, 4, 8, 16.
            packets_at: Vec::with_capacity(INITIAL_PACKETS),
            ttl: [Few::new(), Few::new()],
            dscp: [Few::new(), Few::new()],
            rare: None,
            payload8: [SmallVec::new(), SmallVec::new()],
            // Inline, not boxed: every TCP packet reads it, and a separate
            // allocation costs a cache miss per packet.
            tcp: (key.kind == SessionKind::Tcp).then(|| TcpState::new(max_pending)),
            protocols,
            tags: Vec::new(),
            segments: 0,
            stop_saving_after,
            truncated_tagged: false,
            over_ip: tunnel.is_some(),
        })
    }

    /// 0 when the packet goes from the session's source, 1 otherwise.
    pub fn direction(&self, d: &Decoded, packet: &[u8]) -> usize {
        if self.key.kind == SessionKind::Udp {
            match self.key.discriminator {
                // BOOTREPLY messages come from the server.
                crate::keying::DHCP_DISCRIMINATOR => {
                    return usize::from(d.payload(packet).first() == Some(&2));
                }
                crate::keying::DHCPV6_DISCRIMINATOR => {
                    let kind = d.payload(packet).first().copied().unwrap_or(0);
                    return usize::from(crate::keying::dhcpv6_from_server(kind));
                }
                _ => {}
            }
        }
        match self.key.kind {
            SessionKind::OtherIp => 0,
            SessionKind::UnknownEther
            | SessionKind::CorruptEther
            | SessionKind::UnknownIp
            | SessionKind::CorruptIp => 0,
            _ => {
                let src = d.network.map(|n| n.src);
                let (sp, dp) = d.ports().unwrap_or((0, 0));
                let dst = d.network.map(|n| n.dst);
                if src == self.src_ip
                    && sp == self.src_port
                    && dst == self.dst_ip
                    && dp == self.dst_port
                {
                    0
                } else {
                    1
                }
            }
        }
    }

    /// Milliseconds since the session's first packet plus one, Arkime's
    /// clock for `initRTT`.
    fn rel_ms(&self, ts_us: i64) -> i64 {
        let (s0, u0) = (
            self.first_us.div_euclid(1_000_000),
            self.first_us.rem_euclid(1_000_000),
        );
        let (s, u) = (ts_us.div_euclid(1_000_000), ts_us.rem_euclid(1_000_000));
        (s - s0) * 1000 + (u - u0) / 1000 + 1
    }

    /// The rare facts, created on first use.
    fn rare_mut(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Box::default)
    }

    /// The rare facts (empty ones when there are none).
    fn rare(&self) -> &Rare {
        self.rare.as_deref().unwrap_or(&NO_RARE)
    }

    fn tag(&mut self, t: &'static str) {
        add_unique(&mut self.tags, t);
    }

    /// Adds a protocol name (transport, tunnel or application).
    pub fn add_protocol(&mut self, p: &'static str) {
        add_few(&mut self.protocols, p);
    }

    /// Counts one packet and records its position (`record_pos`, its
    /// offset in its file); false when it is past the packets a session
    /// keeps (then it is counted but not written). Arkime saves a segment
    /// right after this step, before the packet's other facts.
    pub fn count_packet(&mut self, packet: &[u8], ts_us: i64, record_pos: u64, dir: usize) -> bool {
        let caplen = packet.len() as u64;
        self.packets[dir] += 1;
        self.bytes[dir] += caplen;
        // As Arkime: the last packet's time, even when it is earlier than
        // one before it.
        self.last_us = ts_us;
        let written = self.packets[0] + self.packets[1];
        match self.stop_saving_after {
            Some(n) if written > n => {
                if !self.truncated_tagged {
                    self.truncated_tagged = true;
                    self.tag("truncated-pcap");
                }
            }
            _ => {
                self.packets_at.push(PacketAt {
                    pos: record_pos,
                    len: caplen as u32 + 16,
                });
                return true;
            }
        }
        false
    }

    /// The facts of a counted packet: addresses, TTLs, tunnels (first
    /// packets of each direction) and the data of transports without
    /// reassembly.
    pub fn packet_facts(&mut self, d: &Decoded, packet: &[u8], dir: usize) {
        let caplen = packet.len() as u64;
        if self.packets[dir] <= FIRST_PACKETS {
            self.first_packets_facts(d, dir);
        }
        match d.transport {
            Transport::Udp { .. } => {
                let payload = d.payload(packet);
                self.databytes[dir] += payload.len() as u64;
                if self.payload8[dir].is_empty() && !payload.is_empty() && !self.is_dhcp() {
                    self.payload8[dir] = SmallVec::from_slice(&payload[..payload.len().min(8)]);
                }
            }
            Transport::Sctp { .. } => {
                let payload = d.payload(packet);
                self.databytes[dir] += payload.len() as u64;
                if self.payload8[dir].is_empty()
                    && let Some(user) = sctp_first_user_data(payload)
                {
                    self.payload8[dir] = SmallVec::from_slice(&user[..user.len().min(8)]);
                }
            }
            Transport::Icmp(i) => {
                // Arkime counts to the end of the frame (link padding too),
                // not to the end of the IP datagram.
                self.databytes[dir] += (caplen as usize).saturating_sub(d.payload_offset) as u64;
                if d.payload_len >= 2 {
                    let r = self.rare_mut();
                    add_unique(&mut r.icmp_types, i.kind);
                    add_unique(&mut r.icmp_codes, i.code);
                    if r.icmp_first.is_none() {
                        r.icmp_first = Some((i.kind, i.code, i.v6));
                    }
                }
            }
            Transport::Esp { .. } => {
                self.databytes[dir] += (caplen as usize)
                    .saturating_sub(d.payload_offset)
                    .saturating_sub(8) as u64;
            }
            _ => {}
        }
    }

    fn first_packets_facts(&mut self, d: &Decoded, dir: usize) {
        let other = 1 - dir;
        if let Some(m) = d.src_mac {
            add_few(&mut self.macs[dir], m);
        }
        if let Some(m) = d.dst_mac {
            add_few(&mut self.macs[other], m);
        }
        let ethertype = if d.first_ethertype != 0 {
            d.first_ethertype
        } else {
            d.ethertype
        };
        if self.ethertype == 0 && ethertype != 0 {
            self.ethertype = ethertype;
        }
        if let Some(n) = d.network
            && !matches!(
                self.key.kind,
                SessionKind::UnknownEther | SessionKind::CorruptEther
            )
        {
            add_few(&mut self.ttl[dir], n.ttl);
            let dscp = n.tos >> 2;
            if dscp != 0 {
                add_few(&mut self.dscp[dir], dscp);
            }
        }
        // Most packets have no VLAN tags, tunnels or outer layers: one test
        // each instead of walking empty lists.
        if d.vlan_count > 0 || d.dot1ad.is_some() {
            let r = self.rare_mut();
            for &v in d.vlan_ids() {
                add_unique(&mut r.dot1q, v);
            }
            if let Some(s) = d.dot1ad {
                add_unique(&mut r.dot1ad, s);
                add_unique(&mut r.vlans, s);
            }
            for &v in d.vlan_ids() {
                add_unique(&mut r.vlans, v);
            }
        }
        // Arkime records a network identifier only when it is not 0.
        if let Some(v) = d.vni.filter(|&v| v != 0) {
            add_unique(&mut self.rare_mut().vnis, v);
        }
        // Arkime records outer addresses as they appear, not by direction,
        // and reads the outer Ethernet addresses in header order (the
        // destination first, under its "src" name).
        if let Some(o) = d.outer_layers().last() {
            if self.over_ip {
                if let Some(ttl) = o.ttl {
                    add_few(&mut self.ttl[dir], ttl);
                }
            } else {
                if let Some(ip) = o.src_ip {
                    add_unique(&mut self.rare_mut().outer_ips[0], ip);
                }
                if let Some(ip) = o.dst_ip {
                    add_unique(&mut self.rare_mut().outer_ips[1], ip);
                }
            }
            if let Some(m) = o.dst_mac {
                add_unique(&mut self.rare_mut().outer_macs[0], m);
            }
            if let Some(m) = o.src_mac {
                add_unique(&mut self.rare_mut().outer_macs[1], m);
            }
        }
        if d.tunnels != 0 {
            for name in d.tunnel_names() {
                self.add_protocol(name);
            }
        }
    }

    /// TCP flags, handshake timing, and reassembly. `deliver` receives the
    /// in-order stream bytes of the direction.
    pub fn add_tcp(
        &mut self,
        t: &TcpInfo,
        payload: &[u8],
        ts_us: i64,
        dir: usize,
        mut deliver: impl FnMut(usize, &[u8]),
    ) {
        let rel = self.rel_ms(ts_us);
        let Some(tcp) = self.tcp.as_mut() else {
            return;
        };
        let f = t.flags;
        let syn = f & TcpInfo::SYN != 0;
        let ack = f & TcpInfo::ACK != 0;
        let rst = f & TcpInfo::RST != 0;
        if syn && !ack {
            tcp.flags[0] += 1;
            if tcp.syn_time == 0 {
                tcp.syn_time = rel;
                tcp.ack_time = 0;
            }
            if dir == 0 {
                add_few(&mut tcp.isns, t.seq);
                if tcp.syn_seq.is_none() {
                    tcp.syn_seq = Some(t.seq);
                }
            }
            if !tcp.streams[dir].is_started() {
                tcp.streams[dir].start_at(t.seq.wrapping_add(1));
            }
        }
        if syn && ack {
            tcp.flags[1] += 1;
            if tcp.syn_seq.is_some_and(|s| t.ack == s.wrapping_add(1)) {
                tcp.syn_validated = true;
            }
            if tcp.synack_seq.is_none() {
                tcp.synack_seq = Some(t.seq);
            }
            if !tcp.streams[dir].is_started() {
                tcp.streams[dir].start_at(t.seq.wrapping_add(1));
            }
            let other = 1 - dir;
            if !tcp.streams[other].is_started() {
                tcp.streams[other].start_at(t.ack);
            }
        }
        if f & (TcpInfo::FIN | TcpInfo::SYN | TcpInfo::RST | TcpInfo::PSH | TcpInfo::ACK)
            == TcpInfo::ACK
        {
            tcp.flags[2] += 1;
            if tcp.ack_time == 0 {
                tcp.ack_time = rel;
            }
        }
        // The client's first acknowledgement after the SYN-ACK must ack it.
        if dir == 0
            && ack
            && !syn
            && !tcp.client_ack_checked
            && let Some(s) = tcp.synack_seq
        {
            tcp.client_ack_checked = true;
            tcp.synack_validated = t.ack == s.wrapping_add(1);
        }
        for (bit, slot) in [
            (TcpInfo::PSH, 3),
            (TcpInfo::FIN, 4),
            (TcpInfo::RST, 5),
            (TcpInfo::URG, 6),
            (TcpInfo::ECE, 7),
            (TcpInfo::CWR, 8),
            (TcpInfo::AE, 9),
        ] {
            if f & bit != 0 {
                tcp.flags[slot] += 1;
            }
        }
        if t.window == 0 && !rst {
            tcp.flags[10 + dir] += 1;
        }
        if !syn {
            tcp.track_close(t, dir);
        }
        if syn {
            tcp.handshake = true;
        }
        let have_syn = tcp.handshake;
        let mut new_tags: [Option<&'static str>; 3] = [None; 3];
        if ack && have_syn && !tcp.tagged_acked_unseen[dir] {
            let other = &tcp.streams[1 - dir];
            if other.is_started() && other.pending_segments() == 0 {
                let diff = t.ack.wrapping_sub(other.next_seq()) as i32;
                if diff > 1 {
                    tcp.tagged_acked_unseen[dir] = true;
                    new_tags[0] = Some(if dir == 0 {
                        "acked-unseen-segment-src"
                    } else {
                        "acked-unseen-segment-dst"
                    });
                }
            }
        }
        // Without a handshake Arkime does not reassemble: parsers see the
        // segment as it is, and no data bytes are counted.
        if !payload.is_empty() && !have_syn {
            deliver(dir, payload);
        }
        // Arkime never reads data carried on a SYN or SYN-ACK.
        if !payload.is_empty() && have_syn && !syn {
            let data_seq = t.seq;
            // Arkime tags a segment that arrives while another one (either
            // direction) waits for a hole, not the first one to wait.
            let waiting = tcp.streams[0].pending_segments() + tcp.streams[1].pending_segments() > 0;
            let databytes = &mut self.databytes[dir];
            let payload8 = &mut self.payload8[dir];
            let outcome = tcp.streams[dir].segment(data_seq, payload, |chunk| {
                *databytes += chunk.len() as u64;
                if payload8.len() < 8 {
                    let take = (8 - payload8.len()).min(chunk.len());
                    payload8.extend_from_slice(&chunk[..take]);
                }
                deliver(dir, chunk);
            });
            match outcome {
                flow::SegmentOutcome::Queued | flow::SegmentOutcome::Delivered
                    if waiting && !tcp.tagged_out_of_order[dir] =>
                {
                    tcp.tagged_out_of_order[dir] = true;
                    new_tags[1] = Some(if dir == 0 {
                        "out-of-order-src"
                    } else {
                        "out-of-order-dst"
                    });
                }
                flow::SegmentOutcome::Overflow if !tcp.tagged_incomplete => {
                    tcp.tagged_incomplete = true;
                    new_tags[2] = Some("incomplete-tcp");
                }
                _ => {}
            }
        }
        if f & TcpInfo::FIN != 0 {
            tcp.fin[dir] = true;
            if tcp.streams[dir].fin(t.seq.wrapping_add(payload.len() as u32)) {
                tcp.fin_consumed[dir] = true;
            }
        }
        if rst {
            tcp.rst = true;
        }
        for t in new_tags.into_iter().flatten() {
            self.tag(t);
        }
    }

    /// Marks that the session's first packet was a SYN-ACK.
    pub fn note_synack_first(&mut self, seq: u32) {
        if let Some(tcp) = self.tcp.as_mut() {
            tcp.synack_first_seq = Some(seq);
        }
    }

    /// Clears per-segment counters after a mid-session save (maxPackets,
    /// tcpSaveTimeout), keeping identity and the first packet time.
    pub fn reset_for_next_segment(&mut self) {
        self.packets = [0; 2];
        self.bytes = [0; 2];
        self.databytes = [0; 2];
        self.packets_at.clear();
        // Fields Arkime does not carry into the next segment.
        self.ttl = [Few::new(), Few::new()];
        self.dscp = [Few::new(), Few::new()];
        if let Some(tcp) = self.tcp.as_mut() {
            tcp.flags = [0; 12];
            tcp.syn_time = 0;
            tcp.ack_time = 0;
            tcp.syn_seq = None;
            tcp.synack_seq = None;
            tcp.synack_first_seq = None;
            tcp.isns.clear();
            tcp.syn_validated = false;
            tcp.synack_validated = false;
        }
    }

    /// What parsers may know about this session.
    pub fn meta(&self) -> protocols::SessionMeta {
        protocols::SessionMeta {
            transport: match self.key.kind {
                SessionKind::Tcp => protocols::Transport::Tcp,
                SessionKind::Udp => protocols::Transport::Udp,
                SessionKind::Sctp => protocols::Transport::Sctp,
                _ => protocols::Transport::Other,
            },
            src_ip: self.src_ip,
            dst_ip: self.dst_ip,
            src_port: self.src_port,
            dst_port: self.dst_port,
            ip_protocol: self.ip_protocol,
            first_ts_us: self.first_us,
        }
    }

    /// Writes the session's document body (generic fields, then `app`'s
    /// fields, protocols and tags) as JSON text into `buf`.
    pub fn write_document(
        &self,
        buf: &mut String,
        enable_packet_len: bool,
        node: &str,
        app: &protocols::SessionFields,
        registry: &protocols::fields::FieldRegistry,
        now_ms: i64,
    ) {
        let first_ms = arkime_ms(self.first_us, self.first_us);
        let last_ms = arkime_ms(self.last_us, self.first_us);
        let rare = self.rare();
        let mut doc = ObjectWriter::new(buf);
        doc.int("@timestamp", now_ms);
        doc.int("firstPacket", first_ms);
        doc.int("lastPacket", last_ms);
        doc.int("length", (last_ms - first_ms).abs());
        doc.object("packetRange", |r| {
            r.int("gte", first_ms.min(last_ms));
            r.int("lte", first_ms.max(last_ms));
        });
        doc.uint("ipProtocol", u64::from(self.ip_protocol));
        if self.ethertype != 0 {
            doc.uint("ethertype", u64::from(self.ethertype));
        }
        let is_ip = self.over_ip
            || !matches!(
                self.key.kind,
                SessionKind::UnknownEther | SessionKind::CorruptEther
            );
        for (dir, name) in [(0, "source"), (1, "destination")] {
            doc.object(name, |m| {
                m.uint("bytes", self.bytes[dir]);
                m.uint("packets", self.packets[dir]);
                if is_ip {
                    let (ip, port) = if dir == 0 {
                        (self.src_ip, self.src_port)
                    } else {
                        (self.dst_ip, self.dst_port)
                    };
                    if let Some(ip) = ip {
                        m.ip("ip", &ip);
                        m.uint("port", u64::from(port));
                    }
                }
                if !self.macs[dir].is_empty() {
                    m.macs("mac", &self.macs[dir]);
                    m.uint("mac-cnt", self.macs[dir].len() as u64);
                }
            });
        }
        doc.object("client", |c| c.uint("bytes", self.databytes[0]));
        doc.object("server", |c| c.uint("bytes", self.databytes[1]));
        doc.uint("totDataBytes", self.databytes[0] + self.databytes[1]);
        let community_id = self.community_id();
        doc.object("network", |n| {
            n.uint("packets", self.packets[0] + self.packets[1]);
            n.uint("bytes", self.bytes[0] + self.bytes[1]);
            if let Some(id) = &community_id {
                n.string("community_id", id);
            }
            if !rare.vlans.is_empty() {
                n.object("vlan", |v| {
                    v.ints("id", rare.vlans.iter().map(|&x| i64::from(x)));
                    v.uint("id-cnt", rare.vlans.len() as u64);
                });
            }
        });
        if let Some(tcp) = &self.tcp {
            let f = &tcp.flags;
            doc.object("tcpflags", |t| {
                for (name, v) in [
                    ("syn", f[0]),
                    ("syn-ack", f[1]),
                    ("ack", f[2]),
                    ("psh", f[3]),
                    ("fin", f[4]),
                    ("rst", f[5]),
                    ("urg", f[6]),
                    ("ece", f[7]),
                    ("cwr", f[8]),
                    ("ae", f[9]),
                    ("srcZero", f[10]),
                    ("dstZero", f[11]),
                ] {
                    t.uint(name, u64::from(v));
                }
            });
            if tcp.syn_time != 0 && tcp.ack_time != 0 {
                doc.int("initRTT", (tcp.ack_time - tcp.syn_time) / 2);
            }
            if tcp.syn_time != 0 || f[1] > 0 {
                doc.object("tcpseq", |q| {
                    if let Some(s) = tcp.syn_seq {
                        q.uint("src", u64::from(s));
                    }
                    if f[1] > 0 {
                        q.uint("dst", u64::from(tcp.synack_first_seq.unwrap_or(0)));
                    }
                });
                doc.boolean("tcpSynValidated", tcp.syn_validated);
                doc.boolean("tcpSynAckValidated", tcp.synack_validated);
            }
            if !tcp.isns.is_empty() {
                doc.uint("srcISNCnt", tcp.isns.len() as u64);
            }
        }
        for (dir, name) in [(0, "srcPayload8"), (1, "dstPayload8")] {
            if !self.payload8[dir].is_empty() {
                doc.hex(name, &self.payload8[dir]);
            }
        }
        for (dir, keys) in DIRECTION_KEYS.iter().enumerate() {
            if !self.ttl[dir].is_empty() {
                doc.ints(keys.ttl, self.ttl[dir].iter().map(|&x| i64::from(x)));
                doc.uint(keys.ttl_cnt, self.ttl[dir].len() as u64);
            }
            if !self.dscp[dir].is_empty() {
                doc.ints(keys.dscp, self.dscp[dir].iter().map(|&x| i64::from(x)));
                doc.uint(keys.dscp_cnt, self.dscp[dir].len() as u64);
            }
            if !rare.outer_ips[dir].is_empty() {
                doc.ips(keys.outer_ip, &rare.outer_ips[dir]);
                doc.uint(keys.outer_ip_cnt, rare.outer_ips[dir].len() as u64);
            }
            if !rare.outer_macs[dir].is_empty() {
                doc.macs(keys.outer_mac, &rare.outer_macs[dir]);
                doc.uint(keys.outer_mac_cnt, rare.outer_macs[dir].len() as u64);
            }
        }
        if !rare.dot1q.is_empty() {
            doc.object("dot1q", |o| {
                o.ints("id", rare.dot1q.iter().map(|&x| i64::from(x)));
                o.uint("idCnt", rare.dot1q.len() as u64);
            });
        }
        if !rare.dot1ad.is_empty() {
            doc.object("dot1ad", |o| {
                o.ints("id", rare.dot1ad.iter().map(|&x| i64::from(x)));
                o.uint("idCnt", rare.dot1ad.len() as u64);
            });
        }
        if !rare.vnis.is_empty() {
            doc.ints("vni", rare.vnis.iter().map(|&x| i64::from(x)));
            doc.uint("vniCnt", rare.vnis.len() as u64);
        }
        if !rare.icmp_types.is_empty() {
            doc.object("icmp", |o| {
                o.ints("type", rare.icmp_types.iter().map(|&x| i64::from(x)));
                o.ints("code", rare.icmp_codes.iter().map(|&x| i64::from(x)));
            });
        }
        let mut protocols: Vec<&str> = self.protocols.to_vec();
        for p in app.protocols() {
            if !protocols.contains(&p.as_str()) {
                protocols.push(p);
            }
        }
        doc.strings("protocol", &protocols);
        doc.uint("protocolCnt", protocols.len() as u64);
        let mut tags: Vec<&str> = self.tags.to_vec();
        for t in app.tags() {
            if !tags.contains(&t.as_str()) {
                tags.push(t);
            }
        }
        if !tags.is_empty() {
            doc.strings("tags", &tags);
            doc.uint("tagsCnt", tags.len() as u64);
        }
        doc.ints(
            "packetPos",
            self.packets_at.iter().map(|&PacketAt { pos: p, .. }| {
                // File changes are stored as u64::MAX - file number.
                if p > u64::MAX - 1_000_000 {
                    -((u64::MAX - p) as i64)
                } else {
                    p as i64
                }
            }),
        );
        if enable_packet_len {
            doc.ints(
                "packetLen",
                self.packets_at.iter().map(|p| i64::from(p.len)),
            );
        }
        doc.uint("segmentCnt", u64::from(self.segments));
        doc.string("node", node);
        doc.raw("fileId", "[]");
        if !app.is_empty() {
            doc.members(|buf| app.write_json_members(registry, buf));
        }
        doc.close();
    }

    /// DHCP sessions are their own protocol in Arkime: no community id and
    /// no payload prefix.
    fn is_dhcp(&self) -> bool {
        self.key.kind == SessionKind::Udp
            && matches!(
                self.key.discriminator,
                crate::keying::DHCP_DISCRIMINATOR | crate::keying::DHCPV6_DISCRIMINATOR
            )
    }

    fn community_id(&self) -> Option<String> {
        if self.is_dhcp() {
            return None;
        }
        let (src, dst) = (self.src_ip?, self.dst_ip?);
        match self.key.kind {
            SessionKind::Tcp | SessionKind::Udp | SessionKind::Sctp => Some(community_id::flow(
                src,
                dst,
                self.ip_protocol,
                self.src_port,
                self.dst_port,
            )),
            SessionKind::Esp => Some(community_id::flow(src, dst, self.ip_protocol, 0, 0)),
            SessionKind::Icmp => {
                let (kind, code, v6) = self.rare().icmp_first.unwrap_or((0, 0, false));
                Some(community_id::icmp(
                    src,
                    dst,
                    self.ip_protocol,
                    kind,
                    code,
                    v6,
                ))
            }
            _ => None,
        }
    }
}

/// The user data of the first DATA chunk in an SCTP packet's chunks.
fn sctp_first_user_data(chunks: &[u8]) -> Option<&[u8]> {
    sctp_user_data(chunks).next()
}

/// The user data of every DATA chunk in an SCTP packet's chunks.
pub(crate) fn sctp_user_data(mut chunks: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        while chunks.len() >= 4 {
            let kind = chunks[0];
            let len = usize::from(u16::from_be_bytes([chunks[2], chunks[3]]));
            if len < 4 {
                return None;
            }
            let chunk = chunks.get(..len.min(chunks.len()))?;
            chunks = chunks.get(len.div_ceil(4) * 4..).unwrap_or(&[]);
            if kind == 0 && chunk.len() > 16 {
                return Some(&chunk[16..]);
            }
        }
        None
    })
}

/// Document keys of the per-direction generic fields.
struct DirectionKeys {
    ttl: &'static str,
    ttl_cnt: &'static str,
    dscp: &'static str,
    dscp_cnt: &'static str,
    outer_ip: &'static str,
    outer_ip_cnt: &'static str,
    outer_mac: &'static str,
    outer_mac_cnt: &'static str,
}

const DIRECTION_KEYS: [DirectionKeys; 2] = [
    DirectionKeys {
        ttl: "srcTTL",
        ttl_cnt: "srcTTLCnt",
        dscp: "srcDscp",
        dscp_cnt: "srcDscpCnt",
        outer_ip: "srcOuterIp",
        outer_ip_cnt: "srcOuterIpCnt",
        outer_mac: "srcOuterMac",
        outer_mac_cnt: "srcOuterMac-cnt",
    },
    DirectionKeys {
        ttl: "dstTTL",
        ttl_cnt: "dstTTLCnt",
        dscp: "dstDscp",
        dscp_cnt: "dstDscpCnt",
        outer_ip: "dstOuterIp",
        outer_ip_cnt: "dstOuterIpCnt",
        outer_mac: "dstOuterMac",
        outer_mac_cnt: "dstOuterMac-cnt",
    },
];

/// Arkime's millisecond timestamps, including its quirk of adding ten
/// seconds to times in the first ten seconds of the epoch.
fn arkime_ms(ts_us: i64, first_us: i64) -> i64 {
    let ms = ts_us.div_euclid(1000);
    if first_us < 10_000_000 || ts_us < 10_000_000 {
        ms + 10_000
    } else {
        ms
    }
}
