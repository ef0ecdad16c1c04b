//! Classifiers: which protocol a session speaks, from the first bytes of
//! each direction or from its ports.
//!
//! Byte classifiers are indexed by (offset, byte at that offset), so a
//! session's first data is checked against the few classifiers whose first
//! pattern byte matches, not against all of them.

use std::collections::HashMap;

use fields::FieldRegistry;

use crate::analyzer::{Parser, ProtocolConfig, SessionMeta, Transport};
use crate::{Direction, SessionFields};

/// A built-in classifier: looks at the first data and may add protocols
/// and attach parsers.
pub type NativeClassifier = fn(&mut ClassifyContext<'_>, &[u8], Direction);

/// What a matching classifier does.
#[derive(Clone, Copy)]
pub enum ClassifyAction {
    /// Run a built-in function.
    Native(NativeClassifier),
    /// Ask the packet thread's script host to run script callback `id`.
    Script(u32),
}

impl std::fmt::Debug for ClassifyAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClassifyAction::Native(_) => f.write_str("Native"),
            ClassifyAction::Script(id) => write!(f, "Script({id})"),
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    name: String,
    offset: usize,
    pattern: Vec<u8>,
    action: ClassifyAction,
}

impl Entry {
    /// A classifier found by port: no bytes to match.
    fn by_port(name: &str, action: ClassifyAction) -> Entry {
        Entry {
            name: name.to_string(),
            offset: 0,
            pattern: Vec::new(),
            action,
        }
    }
}

#[derive(Debug, Default, Clone)]
struct PrefixTable {
    entries: Vec<Entry>,
    /// (offset, per-byte candidate lists).
    by_offset: Vec<(usize, Vec<Vec<u32>>)>,
    /// Classifiers with an empty pattern (called for every first data).
    always: Vec<u32>,
}

impl PrefixTable {
    fn add(&mut self, e: Entry) {
        let idx = self.entries.len() as u32;
        if e.pattern.is_empty() {
            self.always.push(idx);
        } else {
            let at = match self.by_offset.iter().position(|(o, _)| *o == e.offset) {
                Some(i) => i,
                None => {
                    self.by_offset.push((e.offset, vec![Vec::new(); 256]));
                    self.by_offset.len() - 1
                }
            };
            self.by_offset[at].1[usize::from(e.pattern[0])].push(idx);
        }
        self.entries.push(e);
    }

    fn matches<'a>(&'a self, data: &[u8], out: &mut Vec<(&'a str, ClassifyAction)>) {
        for &i in &self.always {
            let e = &self.entries[i as usize];
            out.push((&e.name, e.action));
        }
        for (offset, table) in &self.by_offset {
            let Some(&b) = data.get(*offset) else {
                continue;
            };
            for &i in &table[usize::from(b)] {
                let e = &self.entries[i as usize];
                if data.get(e.offset..e.offset + e.pattern.len()) == Some(&e.pattern[..]) {
                    out.push((&e.name, e.action));
                }
            }
        }
    }
}

/// Every classifier, built once at start-up and shared read-only by the
/// packet threads.
#[derive(Debug, Default, Clone)]
pub struct ClassifierSet {
    tcp: PrefixTable,
    udp: PrefixTable,
    tcp_ports: PortTable,
    udp_ports: PortTable,
}

/// Port classifiers, with a bit per port so that the usual port (one no
/// classifier asked for) costs a bit test, not a hash lookup.
#[derive(Debug, Default, Clone)]
struct PortTable {
    bits: Vec<u64>,
    entries: HashMap<u16, Vec<Entry>>,
}

impl PortTable {
    fn add(&mut self, port: u16, e: Entry) {
        if self.bits.is_empty() {
            self.bits = vec![0; 65536 / 64];
        }
        self.bits[usize::from(port) / 64] |= 1 << (port % 64);
        self.entries.entry(port).or_default().push(e);
    }

    fn get(&self, port: u16) -> Option<&Vec<Entry>> {
        let word = self.bits.get(usize::from(port) / 64)?;
        if word & (1 << (port % 64)) == 0 {
            return None;
        }
        self.entries.get(&port)
    }

    fn len(&self) -> usize {
        self.entries.values().map(Vec::len).sum()
    }
}

impl ClassifierSet {
    /// No classifiers.
    pub fn new() -> ClassifierSet {
        ClassifierSet::default()
    }

    /// A TCP classifier matching `pattern` at `offset` of the first data of
    /// a direction (an empty pattern matches all first data).
    pub fn add_tcp(&mut self, name: &str, offset: usize, pattern: &[u8], action: ClassifyAction) {
        self.tcp.add(Entry {
            name: name.to_string(),
            offset,
            pattern: pattern.to_vec(),
            action,
        });
    }

    /// A UDP (and SCTP) classifier matching `pattern` at `offset` of a
    /// direction's first datagram.
    pub fn add_udp(&mut self, name: &str, offset: usize, pattern: &[u8], action: ClassifyAction) {
        self.udp.add(Entry {
            name: name.to_string(),
            offset,
            pattern: pattern.to_vec(),
            action,
        });
    }

    /// A TCP classifier run for sessions with `port` on either side.
    pub fn add_tcp_port(&mut self, name: &str, port: u16, action: ClassifyAction) {
        self.tcp_ports.add(port, Entry::by_port(name, action));
    }

    /// A UDP classifier run for sessions with `port` on either side.
    pub fn add_udp_port(&mut self, name: &str, port: u16, action: ClassifyAction) {
        self.udp_ports.add(port, Entry::by_port(name, action));
    }

    /// The classifiers that match a direction's first data, named.
    pub fn matches<'a>(
        &'a self,
        meta: &SessionMeta,
        data: &[u8],
        out: &mut Vec<(&'a str, ClassifyAction)>,
    ) {
        let (table, ports) = match meta.transport {
            Transport::Tcp => (&self.tcp, &self.tcp_ports),
            Transport::Udp | Transport::Sctp => (&self.udp, &self.udp_ports),
            Transport::Other => return,
        };
        table.matches(data, out);
        for port in [meta.src_port, meta.dst_port] {
            if let Some(list) = ports.get(port) {
                for e in list {
                    out.push((&e.name, e.action));
                }
            }
            if meta.src_port == meta.dst_port {
                break;
            }
        }
    }

    /// How many classifiers there are.
    pub fn len(&self) -> usize {
        self.tcp.entries.len()
            + self.udp.entries.len()
            + self.tcp_ports.len()
            + self.udp_ports.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a classifier may do to the session it looks at.
pub struct ClassifyContext<'a> {
    /// The session's field values.
    pub fields: &'a mut SessionFields,
    /// The field registry.
    pub registry: &'a FieldRegistry,
    /// Addresses, ports and transport.
    pub meta: &'a SessionMeta,
    /// Parser settings.
    pub config: &'a ProtocolConfig,
    pub(crate) attached: &'a mut Vec<Box<dyn Parser>>,
    /// Settings resolved once per analyzer.
    pub(crate) settings: &'a crate::analyzer::ParserSettings,
}

impl ClassifyContext<'_> {
    /// Adds a protocol name to the session.
    pub fn add_protocol(&mut self, name: &str) {
        self.fields.add_protocol(name);
    }

    /// Attaches a parser, which then receives this data and all later data
    /// of the session.
    pub fn attach(&mut self, parser: Box<dyn Parser>) {
        // One parser of a kind per session.
        if self.attached.iter().any(|p| p.name() == parser.name()) {
            return;
        }
        self.attached.push(parser);
    }

    /// Whether a parser of this name is attached already.
    pub fn has_parser(&self, name: &str) -> bool {
        self.attached.iter().any(|p| p.name() == name)
    }
}
