//! A packet thread: owns its sessions outright (no locks), adds each packet
//! of a batch to its session, expires idle sessions by capture time, and
//! sends finished documents to the output thread in batches.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crossbeam_channel::{Receiver, Sender};
use flow::{SessionId, SessionKey, SessionKind, SessionTable};
use wire::{Decoded, TcpInfo, Transport};

use crate::Settings;
use crate::idle_marks::IdleMarks;
use crate::output::{IndexRotation, SessionDocument};
use crate::session::Session;
use crate::stats::Stats;

#[path = "lua/engine_glue.rs"]
mod lua_glue;

/// One packet inside a [`PacketBatch`].
#[derive(Debug, Clone)]
pub(crate) struct BatchPacket {
    /// Where the packet's bytes start in the batch buffer.
    pub start: usize,
    /// Captured length.
    pub len: usize,
    /// Timestamp, microseconds.
    pub ts_us: i64,
    /// Record offset in its input file (`packetPos`).
    pub pos: u64,
    /// Input file number.
    pub file: u32,
    /// The session it belongs to.
    pub key: SessionKey,
    /// What the reader decoded.
    pub decoded: Decoded,
}

/// Packets for one packet thread, with their bytes in one buffer that is
/// sent back for reuse (no allocation per packet).
#[derive(Debug, Default)]
pub(crate) struct PacketBatch {
    pub data: Vec<u8>,
    pub packets: Vec<BatchPacket>,
    /// The reader's newest timestamp when the batch was sent, so an idle
    /// thread still expires its sessions.
    pub now_us: i64,
}

/// Idle lists (timeout classes) of the session table.
const LIST_TCP: usize = 0;
const LIST_UDP: usize = 1;
const LIST_ICMP: usize = 2;
const LIST_SCTP: usize = 3;
const LIST_ESP: usize = 4;
const LIST_OTHER: usize = 5;
const LIST_CLOSING: usize = 6;
const LIST_NEVER: usize = 7;
const LISTS: usize = 8;

fn list_of(kind: SessionKind, key: &SessionKey) -> usize {
    match kind {
        SessionKind::Tcp => LIST_TCP,
        SessionKind::Udp => LIST_UDP,
        SessionKind::Icmp => LIST_ICMP,
        SessionKind::Sctp => LIST_SCTP,
        SessionKind::Esp => LIST_ESP,
        // LLDP speakers advertise every few minutes forever; one session.
        SessionKind::UnknownEther if key.discriminator == 0x88cc => LIST_NEVER,
        _ => LIST_OTHER,
    }
}

/// Per-session state owned by the packet thread.
struct Entry {
    /// Boxed: a session is ~1 KB, and an entry moves several times between
    /// its creation and the output thread (into the table, out of it, into
    /// the finished batch); the box moves as one pointer.
    session: Box<Session>,
    app: protocols::AppSession,
    meta: protocols::SessionMeta,
    /// Input file of the last written packet (file-change markers).
    last_file: Option<u32>,
    files: crate::session::Few<u32>,
    save_at_us: i64,
    /// The token of the session's idle timer, when one is set.
    idle_mark: Option<u64>,
    /// The idle timer fired: save a segment at the next packet.
    mid_save_due: bool,
}

impl ThreadConfig {
    /// The document writer for these settings.
    pub fn document_builder(&self) -> DocumentBuilder {
        DocumentBuilder {
            registry: Arc::clone(&self.registry),
            node: self.node.clone(),
            prefix: self.prefix.clone(),
            rotation: self.rotation,
            enable_packet_len: self.settings.enable_packet_len,
            index_cache: std::cell::RefCell::new(None),
        }
    }
}

/// Settings the packet thread needs, resolved once.
pub(crate) struct ThreadConfig {
    pub settings: Arc<Settings>,
    pub registry: Arc<protocols::fields::FieldRegistry>,
    pub classifiers: Arc<protocols::ClassifierSet>,
    pub protocol_config: Arc<protocols::ProtocolConfig>,
    pub node: String,
    pub prefix: String,
    pub rotation: IndexRotation,
    /// Lua scripts, when configured.
    pub lua: Option<Arc<crate::lua::LuaSetup>>,
}

pub(crate) struct PacketThread {
    cfg: ThreadConfig,
    analyzer: protocols::Analyzer,
    table: SessionTable<Entry>,
    timeouts_us: [i64; LISTS],
    /// Live sessions each idle list may hold (`maxStreams`); past it the
    /// least recently seen one is saved.
    stream_limits: [usize; LISTS],
    out: Sender<Vec<Finished>>,
    pending: Vec<Finished>,
    /// For mid-session saves, whose document is written here.
    builder: DocumentBuilder,
    stats: Arc<Stats>,
    lua: Option<lua_glue::LuaThread>,
    idle_marks: IdleMarks,
    /// The second of the last [`PacketThread::expire`] run.
    expired_sec: i64,
}

const DOC_BATCH: usize = 64;
/// How many packets ahead a session's state is prefetched.
const PREFETCH_AHEAD: usize = 4;
/// Cache lines of a boxed session prefetched: all 15 kept the CPU's fill
/// buffers busy and measured slower than 4 (and no faster than none).
const SESSION_PREFETCH_LINES: usize = 4;

/// A saved session on its way to the output thread, which turns it into a
/// document: packet threads only track packets, and the JSON text is
/// written on the output thread's core.
pub(crate) enum Finished {
    /// Generic state and field values, moved out of the session table.
    Session(FinishedSession),
    /// A document already written (mid-session saves, whose session goes on).
    Document(SessionDocument),
}

/// What a document is written from.
pub(crate) struct FinishedSession {
    session: Box<Session>,
    fields: protocols::SessionFields,
    files: crate::session::Few<u32>,
}

/// Writes documents; shared settings resolved once.
pub(crate) struct DocumentBuilder {
    registry: Arc<protocols::fields::FieldRegistry>,
    node: String,
    prefix: String,
    rotation: IndexRotation,
    enable_packet_len: bool,
    /// The last index name, with its hour.
    index_cache: std::cell::RefCell<Option<(i64, String)>>,
}

impl DocumentBuilder {
    /// The document of a finished session (or the one already written).
    pub fn build(&self, f: Finished) -> SessionDocument {
        match f {
            Finished::Document(d) => d,
            Finished::Session(s) => self.document(&s.session, &s.fields, s.files.into_vec()),
        }
    }

    /// The index of a document whose first packet is at `first_ms`; every
    /// rotation is constant within an hour, so the name is reused.
    fn index_name(&self, first_ms: i64) -> String {
        let hour = first_ms.div_euclid(3_600_000);
        let mut cached = self.index_cache.borrow_mut();
        match &*cached {
            Some((h, name)) if *h == hour => name.clone(),
            _ => {
                let name = self.rotation.index_name(&self.prefix, first_ms);
                *cached = Some((hour, name.clone()));
                name
            }
        }
    }

    fn document(
        &self,
        s: &Session,
        fields: &protocols::SessionFields,
        files: Vec<u32>,
    ) -> SessionDocument {
        // Sized for the usual document so that it is not regrown (and
        // copied) while written: ~1 KB of generic fields, ~16 bytes per
        // packet position (and length), more when parsers added fields.
        let per_packet = if self.enable_packet_len { 24 } else { 12 };
        let app = if fields.is_empty() { 0 } else { 1024 };
        let mut json = String::with_capacity(1024 + app + per_packet * s.packets_at.len());
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        s.write_document(
            &mut json,
            self.enable_packet_len,
            &self.node,
            fields,
            &self.registry,
            now_ms,
        );
        let first_ms = s.first_us.div_euclid(1000);
        SessionDocument {
            index: self.index_name(first_ms),
            json,
            files,
            // Segments of one session follow their last packet times, as
            // in Arkime's test output.
            order: (
                first_ms,
                s.src_ip,
                s.src_port,
                s.dst_ip,
                s.dst_port,
                s.last_us.div_euclid(1000),
            ),
        }
    }
}

impl PacketThread {
    pub fn new(cfg: ThreadConfig, out: Sender<Vec<Finished>>, stats: Arc<Stats>) -> Self {
        let s = &cfg.settings;
        let us = |secs: u32| i64::from(secs) * 1_000_000;
        let timeouts_us = [
            us(s.tcp_timeout),
            us(s.udp_timeout),
            us(s.icmp_timeout),
            us(s.sctp_timeout),
            us(s.esp_timeout),
            us(s.other_timeout),
            us(s.tcp_closing_timeout),
            i64::MAX,
        ];
        let l = s.stream_limits();
        let stream_limits = [
            l.tcp,
            l.udp,
            l.icmp,
            l.sctp,
            l.esp,
            l.other,
            usize::MAX,
            usize::MAX,
        ];
        let mut analyzer = protocols::Analyzer::new(
            Arc::clone(&cfg.registry),
            Arc::clone(&cfg.classifiers),
            Arc::clone(&cfg.protocol_config),
        );
        let lua = lua_glue::LuaThread::start(&cfg, &mut analyzer);
        let builder = cfg.document_builder();
        PacketThread {
            builder,
            cfg,
            analyzer,
            table: SessionTable::new(LISTS),
            timeouts_us,
            stream_limits,
            out,
            pending: Vec::new(),
            stats,
            lua,
            idle_marks: IdleMarks::default(),
            expired_sec: i64::MIN,
        }
    }

    /// Processes batches until the reader hangs up, then saves every
    /// session still open.
    pub fn run(mut self, rx: Receiver<PacketBatch>, recycle: Sender<PacketBatch>) {
        let mut hints: Vec<Option<SessionId>> = Vec::new();
        while let Some(mut batch) = self.next_batch(&rx) {
            // Look every packet's session up first: independent lookups let
            // the CPU overlap their cache misses. Processing re-checks each
            // hint, since earlier packets may create or end sessions.
            hints.clear();
            hints.extend(batch.packets.iter().map(|p| self.table.find(&p.key)));
            for (i, p) in batch.packets.iter().enumerate() {
                // The slot first, then (once the slot has arrived) the
                // boxed session it points to.
                if let Some(Some(ahead)) = hints.get(i + 2 * PREFETCH_AHEAD) {
                    self.table.prefetch(*ahead);
                }
                if let Some(Some(near)) = hints.get(i + PREFETCH_AHEAD)
                    && let Some(e) = self.table.get(*near)
                {
                    flow::prefetch_value(&*e.session, SESSION_PREFETCH_LINES);
                }
                let data = &batch.data[p.start..p.start + p.len];
                self.process(p, data, hints[i]);
            }
            self.stats
                .packets_processed
                .fetch_add(batch.packets.len() as u64, Ordering::Relaxed);
            // Live captures also expire on wall-clock ticks from the reader.
            if batch.now_us != i64::MIN {
                self.expire(batch.now_us);
            }
            self.flush_docs();
            batch.packets.clear();
            batch.data.clear();
            // The reader may have gone; then the buffer is simply freed.
            let _ = recycle.try_send(batch);
        }
        self.save_all();
        self.lua_finish();
        self.flush_docs();
        self.stats
            .add_packet_thread_cpu(crate::stats::thread_cpu_us());
    }

    fn process(&mut self, p: &BatchPacket, data: &[u8], hint: Option<SessionId>) {
        // As Arkime: protocol idle timers run by this packet's clock first.
        let table = &mut self.table;
        let mut due = Vec::new();
        self.idle_marks.run(
            p.ts_us.div_euclid(1_000_000),
            |id, token| table.get(id).is_some_and(|e| e.idle_mark == Some(token)),
            |id| due.push(id),
        );
        for id in due {
            if let Some(e) = self.table.get_mut(id) {
                e.idle_mark = None;
                e.mid_save_due = true;
            }
        }
        self.add_to_session(p, data, hint);
        // As Arkime: the packet first joins its session, then sessions idle
        // past their timeout by this thread's clock are saved.
        self.expire(p.ts_us);
    }

    fn add_to_session(&mut self, p: &BatchPacket, data: &[u8], hint: Option<SessionId>) {
        let d = &p.decoded;
        let tcp = match d.transport {
            Transport::Tcp(t) => Some(t),
            _ => None,
        };
        let mut id = self.table.find_hinted(&p.key, hint);
        // A new SYN on a finished connection (port reuse) starts a new session.
        if let (Some(sid), Some(t)) = (id, tcp)
            && t.flags & (TcpInfo::SYN | TcpInfo::ACK) == TcpInfo::SYN
            && let Some(e) = self.table.get(sid)
            && let Some(state) = &e.session.tcp
            && state.closed()
            && state.syn_seq != Some(t.seq)
        {
            self.save(sid);
            id = None;
        }
        let id = match id {
            Some(id) => id,
            None => {
                let synack_first = tcp.is_some_and(|t| {
                    t.flags & (TcpInfo::SYN | TcpInfo::ACK) == (TcpInfo::SYN | TcpInfo::ACK)
                });
                let mut session = Session::new(
                    p.key,
                    d,
                    p.ts_us,
                    synack_first,
                    self.cfg.settings.max_tcp_out_of_order,
                );
                if synack_first && let Some(t) = tcp {
                    session.note_synack_first(t.seq);
                }
                let save_at_us = p.ts_us.div_euclid(1_000_000) * 1_000_000
                    + i64::from(self.cfg.settings.tcp_save_timeout) * 1_000_000;
                let meta = session.meta();
                let entry = Entry {
                    session,
                    app: protocols::AppSession::new(),
                    meta,
                    last_file: None,
                    files: crate::session::Few::new(),
                    save_at_us,
                    idle_mark: None,
                    mid_save_due: false,
                };
                let list = list_of(p.key.kind, &p.key);
                let id = self.table.insert(p.key, entry, list, p.ts_us);
                self.bound_list(list, id);
                id
            }
        };
        self.lua_set_current(id);
        let Some(e) = self.table.get_mut(id) else {
            return;
        };
        let dir = e.session.direction(d, data);
        if e.last_file != Some(p.file) {
            if e.last_file.is_some() {
                // Arkime marks a change of file inside packetPos.
                e.session.packets_at.push(crate::session::PacketAt {
                    pos: u64::MAX - u64::from(p.file),
                    len: 0,
                });
            }
            e.last_file = Some(p.file);
            if !e.files.contains(&p.file) {
                e.files.push(p.file);
            }
        }
        let was_closing = e.session.tcp.as_ref().is_some_and(|t| t.closing);
        let written = e.session.count_packet(data, p.ts_us, p.pos, dir);
        // As Arkime: a segment is saved once the packet is counted, before
        // its other facts and data (which go to the next segment).
        let packets = e.session.packets[0] + e.session.packets[1];
        if written && (packets >= u64::from(self.cfg.settings.max_packets) || e.mid_save_due) {
            self.mid_save(id, p.ts_us);
        }
        let Some(e) = self.table.get_mut(id) else {
            return;
        };
        e.session.packet_facts(d, data, dir);
        // Parsers see in-order TCP stream bytes, UDP datagrams and SCTP
        // DATA chunk user data.
        let analyzer = &mut self.analyzer;
        let (app, meta) = (&mut e.app, &e.meta);
        let mut bgp_message = false;
        if let Some(t) = tcp {
            let payload = d.payload(data);
            e.session.add_tcp(&t, payload, p.ts_us, dir, |dir, chunk| {
                analyzer.data(app, meta, protocols::Direction::from_index(dir), chunk);
                // The marker test first: it fails at once for other data.
                if crate::idle_marks::is_bgp_message(chunk) && app.fields.has_protocol("bgp") {
                    bgp_message = true;
                }
            });
        } else {
            match d.transport {
                Transport::Udp { .. } => {
                    let dir = protocols::Direction::from_index(dir);
                    analyzer.data(app, meta, dir, d.payload(data));
                }
                Transport::Sctp { .. } => {
                    let dir = protocols::Direction::from_index(dir);
                    for (ppid, chunk) in protocols::sctp_data_chunks(d.payload(data)) {
                        analyzer.sctp_data(app, meta, dir, ppid, chunk);
                    }
                }
                _ if p.key.kind == SessionKind::UnknownEther
                    && p.key.discriminator == crate::keying::ARP_ETHERTYPE =>
                {
                    crate::arp::add_fields(&mut app.fields, &self.cfg.registry, d.payload(data));
                }
                _ => {}
            }
        }
        if bgp_message {
            let expire = p.ts_us.div_euclid(1_000_000) + crate::idle_marks::BGP_IDLE_SECS;
            e.idle_mark = Some(self.idle_marks.upsert(id, expire));
        }
        let closing = e.session.tcp.as_ref().is_some_and(|t| t.closing);
        let long = p.key.kind == SessionKind::Tcp && p.ts_us >= e.save_at_us;
        // As Arkime: a session marked for closing is saved a fixed time
        // after the marking packet; later packets do not push that back.
        if !was_closing {
            let list = if closing {
                LIST_CLOSING
            } else {
                list_of(p.key.kind, &p.key)
            };
            self.table.touch(id, list, p.ts_us);
        }
        if long {
            self.mid_save(id, p.ts_us);
        }
    }

    /// Keeps `list` within its `maxStreams` share: as in Arkime, the least
    /// recently seen session is saved when a new one takes it past.
    fn bound_list(&mut self, list: usize, new: SessionId) {
        while self.table.list_len(list) > self.stream_limits[list] {
            match self.table.oldest(list) {
                Some(old) if old != new => {
                    self.save(old);
                    self.stats
                        .sessions_over_max_streams
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                _ => return,
            }
        }
    }

    /// Saves sessions idle past their timeout. Times compare in whole
    /// seconds, as Arkime's do: last.sec + timeout < now.sec.
    fn expire(&mut self, now_us: i64) {
        // Cutoffs move in whole seconds. Every packet runs this with its
        // own time, so if the last run was in this same second, every
        // session since has been touched in this second too and none can
        // be past the cutoff that run already applied.
        let now_sec = now_us.div_euclid(1_000_000);
        if now_sec == self.expired_sec {
            return;
        }
        self.expired_sec = now_sec;
        let now_sec_start = now_sec * 1_000_000;
        for list in 0..LISTS {
            let timeout = self.timeouts_us[list];
            if timeout == i64::MAX {
                continue;
            }
            // last.sec < now.sec - timeout  <=>  last < (now.sec - timeout) seconds.
            let cutoff = now_sec_start.saturating_sub(timeout);
            while let Some(id) = self.table.oldest_before(list, cutoff) {
                self.save(id);
            }
        }
    }

    fn save(&mut self, id: SessionId) {
        let Some((_, mut e)) = self.table.remove(id) else {
            return;
        };
        self.lua_set_current(id);
        self.analyzer.finish(&mut e.app, &e.meta);
        if self.lua.is_none() {
            self.save_entry(e);
        } else if let Some(e) = self.lua_pre_save(e) {
            self.save_entry(e);
        }
    }

    /// The final save of a session whose pre-save hooks ran.
    fn save_entry(&mut self, mut e: Entry) {
        self.lua_save_hooks(&mut e);
        e.session.segments += 1;
        if e.session.packets_at.is_empty() {
            return;
        }
        self.pending.push(Finished::Session(FinishedSession {
            session: e.session,
            fields: e.app.fields,
            files: e.files,
        }));
        if self.pending.len() >= DOC_BATCH {
            self.flush_docs();
        }
    }

    /// Saves a segment of a long session and keeps the session going.
    fn mid_save(&mut self, id: SessionId, now_us: i64) {
        self.lua_set_current(id);
        let Some(e) = self.table.get_mut(id) else {
            return;
        };
        self.analyzer.save_hooks(&mut e.app, &e.meta, false);
        e.session.segments += 1;
        e.mid_save_due = false;
        e.save_at_us = now_us.div_euclid(1_000_000) * 1_000_000
            + i64::from(self.cfg.settings.tcp_save_timeout) * 1_000_000;
        let Some(e) = self.table.get(id) else {
            return;
        };
        let doc = self
            .builder
            .document(&e.session, &e.app.fields, e.files.to_vec());
        self.pending.push(Finished::Document(doc));
        if let Some(e) = self.table.get_mut(id) {
            e.app.fields.clear();
            e.session.reset_for_next_segment();
            e.files.clear();
            e.last_file = None;
        }
    }

    fn save_all(&mut self) {
        let mut ids = self.table.ids();
        // Oldest first, so output order follows capture order.
        ids.sort_by_key(|id| self.table.get(*id).map(|e| e.session.first_us).unwrap_or(0));
        for id in ids {
            self.save(id);
        }
    }

    fn flush_docs(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let docs = std::mem::take(&mut self.pending);
        self.stats
            .sessions_written
            .fetch_add(docs.len() as u64, Ordering::Relaxed);
        // The output thread lives until every packet thread is done.
        let _ = self.out.send(docs);
    }
}
