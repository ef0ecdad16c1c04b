//! The packet tree: an arena of items, rebuilt for every packet that needs
//! one (output, filters) and reused across packets without reallocation.

use crate::fields::{
    FieldDef, FieldId, FieldKind, Registry, Value, bitfield_prefix, display_value,
};

/// Index of a node; [`NO_NODE`] stands for "no tree" (the null TreeItem).
pub type NodeId = u32;

/// The null node: adding to it does nothing.
pub const NO_NODE: NodeId = u32::MAX;

/// Expert severities (`expert.severity.*`, `PI_*`).
pub mod severity {
    /// Comment.
    pub const COMMENT: u32 = 0x0010_0000;
    /// Chat.
    pub const CHAT: u32 = 0x0020_0000;
    /// Note.
    pub const NOTE: u32 = 0x0040_0000;
    /// Warning.
    pub const WARN: u32 = 0x0060_0000;
    /// Error.
    pub const ERROR: u32 = 0x0080_0000;
}

/// Expert groups (`expert.group.*`, `PI_*`).
pub mod group {
    /// Checksum.
    pub const CHECKSUM: u32 = 0x0100_0000;
    /// Sequence.
    pub const SEQUENCE: u32 = 0x0200_0000;
    /// Response code.
    pub const RESPONSE_CODE: u32 = 0x0300_0000;
    /// Request code.
    pub const REQUEST_CODE: u32 = 0x0400_0000;
    /// Undecoded.
    pub const UNDECODED: u32 = 0x0500_0000;
    /// Reassemble.
    pub const REASSEMBLE: u32 = 0x0600_0000;
    /// Malformed.
    pub const MALFORMED: u32 = 0x0700_0000;
    /// Debug.
    pub const DEBUG: u32 = 0x0800_0000;
    /// Protocol.
    pub const PROTOCOL: u32 = 0x0900_0000;
    /// Security.
    pub const SECURITY: u32 = 0x0a00_0000;
    /// Comments.
    pub const COMMENTS_GROUP: u32 = 0x0b00_0000;
    /// Decryption.
    pub const DECRYPTION: u32 = 0x0c00_0000;
    /// Assumption.
    pub const ASSUMPTION: u32 = 0x0d00_0000;
    /// Deprecated.
    pub const DEPRECATED: u32 = 0x0e00_0000;
}

/// Display name of a severity.
pub fn severity_name(s: u32) -> &'static str {
    match s {
        severity::COMMENT => "Comment",
        severity::CHAT => "Chat",
        severity::NOTE => "Note",
        severity::WARN => "Warning",
        severity::ERROR => "Error",
        _ => "Unknown",
    }
}

/// Display name of a group.
pub fn group_name(g: u32) -> &'static str {
    match g {
        group::CHECKSUM => "Checksum",
        group::SEQUENCE => "Sequence",
        group::RESPONSE_CODE => "Response",
        group::REQUEST_CODE => "Request",
        group::UNDECODED => "Undecoded",
        group::REASSEMBLE => "Reassemble",
        group::MALFORMED => "Malformed",
        group::DEBUG => "Debug",
        group::PROTOCOL => "Protocol",
        group::SECURITY => "Security",
        group::COMMENTS_GROUP => "Comment",
        group::DECRYPTION => "Decryption",
        group::ASSUMPTION => "Assumption",
        group::DEPRECATED => "Deprecated",
        _ => "Unknown",
    }
}

/// One expert-info entry of a packet.
#[derive(Debug, Clone)]
pub struct Expert {
    /// Filter name of the expert (`foo.e`, `_ws.lua.proto.warning`).
    pub abbrev: String,
    /// Message.
    pub message: String,
    /// `severity::*`.
    pub severity: u32,
    /// `group::*`.
    pub group: u32,
}

/// One tree item.
#[derive(Debug, Clone)]
pub struct Node {
    /// Its field.
    pub field: FieldId,
    /// Parent node ([`NO_NODE`] for the root).
    pub parent: NodeId,
    /// First child.
    pub first: NodeId,
    /// Last child.
    pub last: NodeId,
    /// Next sibling.
    pub next: NodeId,
    /// Value.
    pub value: Value,
    /// Raw (unshifted) integer for masked fields, for the bit picture.
    pub raw: u64,
    /// Label that replaces the generated one (set_text, add with label,
    /// append/prepend after the label was materialised).
    pub text: Option<String>,
    /// Shown in brackets.
    pub generated: bool,
    /// Left out of `-V` (still in JSON and filters, as tshark does).
    pub hidden: bool,
    /// Index into [`Tree::experts`] for expert items.
    pub expert: u32,
    /// Length in bytes the item covers.
    pub len: u32,
}

/// A packet's tree.
#[derive(Debug, Default)]
pub struct Tree {
    /// Nodes; index 0 is the root.
    pub nodes: Vec<Node>,
    /// Expert entries referenced by nodes.
    pub experts: Vec<Expert>,
}

/// The root node id.
pub const ROOT: NodeId = 0;

impl Tree {
    /// Empties the tree, keeping its allocations.
    pub fn reset(&mut self) {
        self.nodes.clear();
        self.experts.clear();
        self.nodes.push(Node {
            field: crate::fields::FIELD_TEXT,
            parent: NO_NODE,
            first: NO_NODE,
            last: NO_NODE,
            next: NO_NODE,
            value: Value::None,
            raw: 0,
            text: None,
            generated: false,
            hidden: false,
            expert: u32::MAX,
            len: 0,
        });
    }

    /// Adds a child under `parent`; returns its id ([`NO_NODE`] when the
    /// parent is the null node).
    pub fn add(&mut self, parent: NodeId, field: FieldId, value: Value, len: u32) -> NodeId {
        if parent == NO_NODE || parent as usize >= self.nodes.len() {
            return NO_NODE;
        }
        let id = self.nodes.len() as NodeId;
        self.nodes.push(Node {
            field,
            parent,
            first: NO_NODE,
            last: NO_NODE,
            next: NO_NODE,
            value,
            raw: 0,
            text: None,
            generated: false,
            hidden: false,
            expert: u32::MAX,
            len,
        });
        let p = &mut self.nodes[parent as usize];
        if p.last == NO_NODE {
            p.first = id;
            p.last = id;
        } else {
            let last = p.last;
            p.last = id;
            self.nodes[last as usize].next = id;
        }
        id
    }

    /// Adds a text item.
    pub fn add_text(&mut self, parent: NodeId, text: String, len: u32) -> NodeId {
        let id = self.add(parent, crate::fields::FIELD_TEXT, Value::None, len);
        if let Some(n) = self.node_mut(id) {
            n.text = Some(text);
        }
        id
    }

    /// Adds an expert item (and the hidden `_ws.malformed` item Wireshark
    /// adds beside malformed-group experts).
    pub fn add_expert(&mut self, parent: NodeId, e: Expert) -> NodeId {
        let malformed = e.group == group::MALFORMED;
        let idx = self.experts.len() as u32;
        self.experts.push(e);
        let id = self.add(parent, crate::fields::FIELD_EXPERT, Value::None, 0);
        if let Some(n) = self.node_mut(id) {
            n.expert = idx;
            n.generated = true;
        }
        if malformed {
            let m = self.add(parent, crate::fields::FIELD_MALFORMED, Value::None, 0);
            if let Some(n) = self.node_mut(m) {
                n.hidden = true;
            }
        }
        id
    }

    /// Mutable node access (None for the null node).
    #[inline]
    pub fn node_mut(&mut self, id: NodeId) -> Option<&mut Node> {
        self.nodes.get_mut(id as usize)
    }

    /// Node access.
    #[inline]
    pub fn node(&self, id: NodeId) -> Option<&Node> {
        self.nodes.get(id as usize)
    }

    /// Children of a node in order.
    pub fn children(&self, id: NodeId) -> Children<'_> {
        Children {
            tree: self,
            next: self.node(id).map(|n| n.first).unwrap_or(NO_NODE),
        }
    }

    /// The label a node shows in `-V`, without generated brackets.
    pub fn label(&self, reg: &Registry, id: NodeId) -> String {
        let Some(n) = self.node(id) else {
            return String::new();
        };
        if let Some(t) = &n.text {
            return t.clone();
        }
        let def = reg.get(n.field);
        default_label(def, n, &self.experts)
    }

    /// Appends to a node's label (materialising the generated label first).
    pub fn append_text(&mut self, reg: &Registry, id: NodeId, s: &str) {
        if self.node(id).is_none() {
            return;
        }
        let mut label = self.label(reg, id);
        label.push_str(s);
        if let Some(n) = self.node_mut(id) {
            n.text = Some(label);
        }
    }

    /// Prepends to a node's label.
    pub fn prepend_text(&mut self, reg: &Registry, id: NodeId, s: &str) {
        if self.node(id).is_none() {
            return;
        }
        let label = format!("{s}{}", self.label(reg, id));
        if let Some(n) = self.node_mut(id) {
            n.text = Some(label);
        }
    }
}

/// The generated label of a node.
pub fn default_label(def: &FieldDef, n: &Node, experts: &[Expert]) -> String {
    match def.kind {
        FieldKind::Protocol => def.name.clone(),
        FieldKind::Text => String::new(),
        FieldKind::Expert => match experts.get(n.expert as usize) {
            Some(e) => format!(
                "Expert Info ({}/{}): {}",
                severity_name(e.severity),
                group_name(e.group),
                e.message
            ),
            None => "Expert Info".into(),
        },
        FieldKind::Value => {
            if matches!(n.value, Value::None) {
                return def.name.clone();
            }
            let v = display_value(def, &n.value);
            if def.mask != 0 {
                format!("{}{}: {}", bitfield_prefix(def, n.raw), def.name, v)
            } else {
                format!("{}: {}", def.name, v)
            }
        }
    }
}

/// Iterator over a node's children.
pub struct Children<'a> {
    tree: &'a Tree,
    next: NodeId,
}

impl Iterator for Children<'_> {
    type Item = NodeId;
    fn next(&mut self) -> Option<NodeId> {
        if self.next == NO_NODE {
            return None;
        }
        let id = self.next;
        self.next = self.tree.node(id).map(|n| n.next).unwrap_or(NO_NODE);
        Some(id)
    }
}
