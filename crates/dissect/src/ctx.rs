//! The state Lua objects reach while a packet is dissected: buffers, tree,
//! packet info, columns, registered protocols and tables, conversations.
//! Shared as `Rc<RefCell<Ctx>>`; borrows are kept short and never held
//! across a call into Lua.

use std::cell::RefCell;
use std::rc::Rc;

use ahash::AHashMap;
use lua::mlua::{Function, Value as LuaValue};

use crate::fields::{FieldId, Registry};
use crate::tree::Tree;

/// Shared handle on the context.
pub type Shared = Rc<RefCell<Ctx>>;

/// A network or link address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Addr {
    /// No address.
    #[default]
    None,
    /// Ethernet.
    Ether([u8; 6]),
    /// IPv4.
    V4([u8; 4]),
    /// IPv6.
    V6([u8; 16]),
}

/// Writes the dotted-quad text of an IPv4 address without the integer
/// formatting machinery (the source and destination columns are written
/// for every packet).
fn write_ipv4(f: &mut std::fmt::Formatter<'_>, a: &[u8; 4]) -> std::fmt::Result {
    let mut buf = [0u8; 15];
    let mut n = 0;
    for (i, &b) in a.iter().enumerate() {
        if i > 0 {
            buf[n] = b'.';
            n += 1;
        }
        if b >= 100 {
            buf[n] = b'0' + b / 100;
            n += 1;
        }
        if b >= 10 {
            buf[n] = b'0' + b / 10 % 10;
            n += 1;
        }
        buf[n] = b'0' + b % 10;
        n += 1;
    }
    f.write_str(std::str::from_utf8(&buf[..n]).unwrap_or_default())
}

impl std::fmt::Display for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Addr::None => Ok(()),
            Addr::Ether(a) => f.write_str(&crate::fields::ether_string(a)),
            Addr::V4(a) => write_ipv4(f, a),
            Addr::V6(a) => f.write_str(&crate::fields::ipv6_string(a)),
        }
    }
}

/// Port types (`pinfo.port_type`), Wireshark 4.0 numbering.
pub mod port_type {
    /// TCP.
    pub const TCP: u32 = 2;
    /// UDP.
    pub const UDP: u32 = 3;
}

/// Desegmentation request meaning "one more segment, whatever its length".
pub const DESEGMENT_ONE_MORE_SEGMENT: u32 = 0x0fff_ffff;

/// Packet information (`pinfo`).
#[derive(Debug, Clone, Default)]
pub struct PInfo {
    /// Frame number, from 1.
    pub number: u32,
    /// Length on the wire.
    pub len: u32,
    /// Captured length.
    pub caplen: u32,
    /// Absolute time, seconds and nanoseconds.
    pub abs_sec: i64,
    /// Nanoseconds part of the absolute time.
    pub abs_nsec: u32,
    /// Seconds since the first packet.
    pub rel_ts: f64,
    /// Seconds since the previous packet.
    pub delta_ts: f64,
    /// Second pass of a two-pass run.
    pub visited: bool,
    /// Link-layer source.
    pub dl_src: Addr,
    /// Link-layer destination.
    pub dl_dst: Addr,
    /// Network source.
    pub net_src: Addr,
    /// Network destination.
    pub net_dst: Addr,
    /// Source (network if any, else link).
    pub src: Addr,
    /// Destination.
    pub dst: Addr,
    /// Transport source port.
    pub src_port: u32,
    /// Transport destination port.
    pub dst_port: u32,
    /// `port_type::*`.
    pub port_type: u32,
    /// Value matched in the dissector table that chose the dissector.
    pub match_uint: u32,
    /// String matched, for string tables.
    pub match_string: Option<String>,
    /// Name of the protocol being dissected.
    pub curr_proto: String,
    /// Bytes the dissector still needs (TCP desegmentation).
    pub desegment_len: u32,
    /// Offset where the incomplete PDU starts.
    pub desegment_offset: u32,
    /// Whether desegmentation is possible for the current call.
    pub can_desegment: bool,
    /// TCP/UDP stream index.
    pub stream: u32,
}

/// Column ids usable from Lua (`pinfo.cols.<name>`).
pub const COLUMN_NAMES: [&str; 17] = [
    "number",
    "abs_time",
    "rel_time",
    "delta_time",
    "src",
    "dst",
    "def_src",
    "def_dst",
    "net_src",
    "net_dst",
    "dl_src",
    "dl_dst",
    "src_port",
    "dst_port",
    "protocol",
    "info",
    "packet_len",
];

/// Index of the protocol column.
pub const COL_PROTOCOL: usize = 14;
/// Index of the info column.
pub const COL_INFO: usize = 15;
/// Index of the source column.
pub const COL_SRC: usize = 4;
/// Index of the destination column.
pub const COL_DST: usize = 5;

/// One column's text and fence.
#[derive(Debug, Clone, Default)]
pub struct Column {
    /// Text.
    pub text: String,
    /// Bytes before the fence are kept by `set`/`clear`.
    pub fence: usize,
    /// Set by a dissector (otherwise filled from packet info at output).
    pub set: bool,
}

impl Column {
    /// `col_set_str`: replaces the text after the fence.
    pub fn set(&mut self, s: &str) {
        self.text.truncate(self.fence.min(self.text.len()));
        self.text.push_str(s);
        self.set = true;
    }
    /// `col_append_str`.
    pub fn append(&mut self, s: &str) {
        self.text.push_str(s);
        self.set = true;
    }
    /// `col_prepend_fstr`: inserts at the start, keeping fenced text fenced.
    pub fn prepend(&mut self, s: &str) {
        self.text.insert_str(0, s);
        if self.fence > 0 {
            self.fence += s.len();
        }
        self.set = true;
    }
    /// `col_clear`.
    pub fn clear(&mut self) {
        self.text.truncate(self.fence.min(self.text.len()));
    }
    /// `col_set_fence`.
    pub fn fence(&mut self) {
        self.fence = self.text.len();
    }
    /// `col_clear_fence`.
    pub fn clear_fence(&mut self) {
        self.fence = 0;
    }
}

/// A preference of a Lua protocol.
#[derive(Debug, Clone)]
pub struct PrefDef {
    /// Name under `proto.prefs`.
    pub name: String,
    /// Current value.
    pub value: PrefValue,
    /// Enum entries (name, description, value) for enum prefs.
    pub enum_entries: Vec<(String, String, i64)>,
}

/// A preference value.
#[derive(Debug, Clone, PartialEq)]
pub enum PrefValue {
    /// `Pref.bool`.
    Bool(bool),
    /// `Pref.uint`.
    UInt(u32),
    /// `Pref.string`.
    Str(String),
    /// `Pref.enum`.
    Enum(i64),
}

/// A protocol registered from Lua.
#[derive(Debug)]
pub struct ProtoDef {
    /// Name as given (`foo`).
    pub name: String,
    /// Description (`Foo Protocol`), the tree label.
    pub desc: String,
    /// Filter name (lower case).
    pub filter: String,
    /// Field id of the protocol item.
    pub field: FieldId,
    /// The `dissector` function.
    pub dissector: Option<Function>,
    /// The `init` function.
    pub init: Option<Function>,
    /// The `prefs_changed` function.
    pub prefs_changed: Option<Function>,
    /// Preferences.
    pub prefs: Vec<PrefDef>,
}

/// Built-in dissectors callable through `Dissector.get`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Builtin {
    /// `data`: shows bytes.
    Data,
    /// `eth_withoutfcs`.
    Eth,
    /// `ip`.
    Ip,
    /// `ipv6`.
    Ipv6,
}

/// What a dissector handle runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Handle {
    /// A Lua protocol's dissector.
    Lua(u32),
    /// A built-in one.
    Builtin(Builtin),
}

/// A dissector table (`tcp.port`, `udp.port`, Lua-defined ones).
#[derive(Debug, Default)]
pub struct DTable {
    /// Table name.
    pub name: String,
    /// UI name.
    pub ui_name: String,
    /// Keys are strings (otherwise integers).
    pub string_keys: bool,
    /// Integer keys.
    pub uints: AHashMap<u32, Handle>,
    /// String keys.
    pub strings: AHashMap<String, Handle>,
}

/// Conversation key: type and both endpoints (normalised order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConvKey {
    /// `convtypes.*`.
    pub ctype: u32,
    /// Lower endpoint.
    pub a: (Addr, u32),
    /// Higher endpoint.
    pub b: (Addr, u32),
}

impl ConvKey {
    /// Builds a key that is the same for both directions.
    pub fn new(ctype: u32, a: (Addr, u32), b: (Addr, u32)) -> ConvKey {
        if a <= b {
            ConvKey { ctype, a, b }
        } else {
            ConvKey { ctype, a: b, b: a }
        }
    }
}

/// Conversation type numbers (`convtypes.*`).
pub mod convtype {
    /// None.
    pub const NONE: u32 = 0;
    /// TCP.
    pub const TCP: u32 = 2;
    /// UDP.
    pub const UDP: u32 = 3;
}

/// Slots of the range cache (a power of two).
pub const RANGE_SLOTS: usize = 32;

/// A cached `TvbRange`: its Tvb window, offset and length.
pub type RangeKey = (crate::lua_tvb::TvbRef, u32, u32);

/// Everything Lua objects reach.
pub struct Ctx {
    /// Packet generation: Tvb and TreeItem objects from older packets are
    /// expired.
    pub epoch: u32,
    /// Byte buffers of this packet: 0 is the frame; others are reassembled
    /// or created data.
    pub bufs: Vec<Vec<u8>>,
    /// How many of `bufs` are in use.
    pub nbufs: usize,
    /// The tree (only filled when `build_tree`).
    pub tree: Tree,
    /// Whether trees are built.
    pub build_tree: bool,
    /// Whether columns are needed (summary output).
    pub want_cols: bool,
    /// What each slot of the fast path's range cache holds (see
    /// `fast::push_range`).
    pub range_cache: [Option<RangeKey>; RANGE_SLOTS],
    /// Packet info.
    pub pinfo: PInfo,
    /// Columns.
    pub cols: Vec<Column>,
    /// Fields.
    pub reg: Registry,
    /// Lua protocols.
    pub protos: Vec<ProtoDef>,
    /// Dissector tables by name.
    pub tables: AHashMap<String, DTable>,
    /// Heuristic dissectors per list (`tcp`, `udp`).
    pub heuristics: AHashMap<String, Vec<(u32, Function)>>,
    /// Conversation ids.
    pub convs: AHashMap<ConvKey, u32>,
    /// Conversations created by id (`find_by_id`).
    pub convs_by_id: AHashMap<(u32, u32), u32>,
    /// Number of conversations.
    pub nconvs: u32,
    /// Conversation data per (conversation, protocol).
    pub conv_data: AHashMap<(u32, u32), LuaValue>,
    /// Conversation dissectors.
    pub conv_dissector: AHashMap<u32, Handle>,
    /// Packet data per (frame, protocol).
    pub packet_data: AHashMap<(u32, u32), LuaValue>,
    /// The private table of pinfo (per packet).
    pub private: AHashMap<String, String>,
    /// Preference overrides from `-o proto.pref:value`.
    pub pref_overrides: AHashMap<String, String>,
    /// Script arguments from `-X lua_script1:arg` (per script index).
    pub script_args: Vec<Vec<String>>,
    /// Protocols named in this packet, in order (for `frame.protocols`).
    pub layers: Vec<String>,
    /// Lua protocol being dissected (index), for `dissect_tcp_pdus`.
    pub current_proto: u32,
    /// Field ids of the built-in layers.
    pub base: crate::base::BaseFields,
    /// Lua errors per `script:line`.
    pub errors: lua::ErrorLog,
    /// First message of each error site.
    pub first_errors: Vec<String>,
}

impl Ctx {
    /// A fresh context.
    pub fn new() -> Ctx {
        let mut tables = AHashMap::new();
        for (name, ui) in [
            ("tcp.port", "TCP port"),
            ("udp.port", "UDP port"),
            ("ethertype", "Ethertype"),
            ("ip.proto", "IP protocol"),
        ] {
            tables.insert(
                name.to_string(),
                DTable {
                    name: name.to_string(),
                    ui_name: ui.to_string(),
                    ..DTable::default()
                },
            );
        }
        let mut tree = Tree::default();
        tree.reset();
        let mut reg = Registry::default();
        let base = crate::base::BaseFields::register(&mut reg);
        Ctx {
            epoch: 1,
            bufs: vec![Vec::new()],
            nbufs: 1,
            tree,
            build_tree: false,
            want_cols: false,
            range_cache: [None; RANGE_SLOTS],
            pinfo: PInfo::default(),
            cols: vec![Column::default(); COLUMN_NAMES.len()],
            reg,
            protos: Vec::new(),
            tables,
            heuristics: AHashMap::new(),
            convs: AHashMap::new(),
            convs_by_id: AHashMap::new(),
            nconvs: 0,
            conv_data: AHashMap::new(),
            conv_dissector: AHashMap::new(),
            packet_data: AHashMap::new(),
            private: AHashMap::new(),
            pref_overrides: AHashMap::new(),
            script_args: Vec::new(),
            layers: Vec::new(),
            current_proto: u32::MAX,
            base,
            errors: lua::ErrorLog::default(),
            first_errors: Vec::new(),
        }
    }

    /// Adds a byte buffer for this packet and returns its index.
    pub fn push_buf(&mut self, data: &[u8]) -> u32 {
        if self.nbufs < self.bufs.len() {
            let b = &mut self.bufs[self.nbufs];
            b.clear();
            b.extend_from_slice(data);
        } else {
            self.bufs.push(data.to_vec());
        }
        self.nbufs += 1;
        (self.nbufs - 1) as u32
    }

    /// The conversation id for a key, created on first use.
    pub fn conversation(&mut self, key: ConvKey) -> u32 {
        let next = self.nconvs;
        let id = *self.convs.entry(key).or_insert(next);
        if id == next {
            self.nconvs += 1;
        }
        id
    }

    /// The conversation of the current packet (by addresses and ports).
    pub fn pinfo_conversation(&mut self, create: bool) -> Option<u32> {
        let p = &self.pinfo;
        let ctype = match p.port_type {
            port_type::TCP => convtype::TCP,
            port_type::UDP => convtype::UDP,
            _ => convtype::NONE,
        };
        let key = ConvKey::new(ctype, (p.src, p.src_port), (p.dst, p.dst_port));
        if create {
            Some(self.conversation(key))
        } else {
            self.convs.get(&key).copied()
        }
    }

    /// Looks a protocol up by name (case-insensitive).
    pub fn proto_by_name(&self, name: &str) -> Option<u32> {
        self.protos
            .iter()
            .position(|p| p.name.eq_ignore_ascii_case(name) || p.filter == name)
            .map(|i| i as u32)
    }

    /// Name of a handle (`Dissector.get(...)` name).
    pub fn handle_name(&self, h: Handle) -> String {
        match h {
            Handle::Lua(i) => self
                .protos
                .get(i as usize)
                .map(|p| p.filter.clone())
                .unwrap_or_default(),
            Handle::Builtin(b) => builtin_name(b).to_string(),
        }
    }
}

impl Default for Ctx {
    fn default() -> Self {
        Ctx::new()
    }
}

/// The `Dissector.get` name of a built-in.
pub fn builtin_name(b: Builtin) -> &'static str {
    match b {
        Builtin::Data => "data",
        Builtin::Eth => "eth_withoutfcs",
        Builtin::Ip => "ip",
        Builtin::Ipv6 => "ipv6",
    }
}

/// A built-in by `Dissector.get` name.
pub fn builtin_by_name(name: &str) -> Option<Builtin> {
    Some(match name {
        "data" => Builtin::Data,
        "eth_withoutfcs" | "eth" | "eth_maybefcs" => Builtin::Eth,
        "ip" => Builtin::Ip,
        "ipv6" => Builtin::Ipv6,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::Addr;

    #[test]
    fn ipv4_text_is_dotted_decimal() {
        for a in [
            [0, 0, 0, 0],
            [10, 0, 0, 1],
            [192, 168, 100, 255],
            [9, 99, 100, 199],
        ] {
            let want = format!("{}.{}.{}.{}", a[0], a[1], a[2], a[3]);
            assert_eq!(Addr::V4(a).to_string(), want);
        }
    }
}
