//! The dissection engine: one Lua state, the per-packet flow (frame → link
//! → network → transport → Lua protocols), dissector tables, heuristics,
//! TCP desegmentation for Lua PDUs, two passes and the calls into Lua.

use std::rc::Rc;

use ahash::AHashMap;
use lua::mlua::{self, Function, Lua, Value as LuaValue};
use lua::{HostOptions, LuaHost};

use crate::base::{self, Step};
use crate::ctx::{
    Addr, Builtin, COL_INFO, COL_PROTOCOL, Column, Ctx, DESEGMENT_ONE_MORE_SEGMENT, Handle, PInfo,
    Shared,
};
use crate::error::DissectError;
use crate::fields::Value;
use crate::lua_api::{self, TreeItem};
use crate::lua_tvb::{Tvb, TvbRef, error_message, lerr};
use crate::pcap::Record;
use crate::tree::{Expert, NO_NODE, NodeId, ROOT, group, severity};

/// Calls a dissector handle on a Tvb; returns the bytes it consumed (0 =
/// not its packet). Lua errors inside are shown in the tree and counted.
pub fn call_handle(
    lua: &Lua,
    ctx: &Shared,
    h: Handle,
    r: TvbRef,
    parent: NodeId,
) -> mlua::Result<u32> {
    match h {
        Handle::Lua(p) => call_lua(lua, ctx, p, r, parent, false),
        Handle::Builtin(b) => {
            builtin(lua, ctx, b, r, parent)?;
            Ok(r.len)
        }
    }
}

fn builtin(lua: &Lua, ctx: &Shared, b: Builtin, r: TvbRef, parent: NodeId) -> mlua::Result<()> {
    let end = r.off + r.len;
    let step = {
        let mut c = ctx.borrow_mut();
        match b {
            Builtin::Data => {
                base::data(&mut c, r.buf, r.off, r.len, parent);
                return Ok(());
            }
            Builtin::Eth => base::eth(&mut c, r.buf, r.off, end, parent),
            Builtin::Ip => Step::Ethertype(0x0800, r.off, end),
            Builtin::Ipv6 => Step::Ethertype(0x86dd, r.off, end),
        }
    };
    run_steps(lua, ctx, r.buf, r.epoch, step, parent, None)
}

/// Calls a Lua protocol's dissector (or a heuristic function when `heur`).
fn call_lua(
    lua: &Lua,
    ctx: &Shared,
    p: u32,
    r: TvbRef,
    parent: NodeId,
    _heur: bool,
) -> mlua::Result<u32> {
    let func = {
        let c = ctx.borrow();
        match c.protos.get(p as usize).and_then(|d| d.dissector.clone()) {
            Some(f) => f,
            None => return Ok(0),
        }
    };
    invoke(lua, ctx, p, &func, r, parent, false)
}

fn invoke(
    lua: &Lua,
    ctx: &Shared,
    p: u32,
    func: &Function,
    r: TvbRef,
    parent: NodeId,
    heuristic: bool,
) -> mlua::Result<u32> {
    let prev_proto = {
        let mut c = ctx.borrow_mut();
        let c = &mut *c;
        let prev = c.current_proto;
        c.current_proto = p;
        if let Some(d) = c.protos.get(p as usize) {
            c.pinfo.curr_proto.clear();
            c.pinfo.curr_proto.push_str(&d.name);
            // The layer is listed where the dissector starts (before the
            // layers it calls), and dropped again if it rejects the packet.
            if c.build_tree {
                let name = d.filter.clone();
                c.layers.push(name);
            }
        }
        (prev, c.layers.len())
    };
    let (prev_proto, layer_pos) = prev_proto;
    let (tvb, tree) = lua_api::call_objects(ctx, r, parent);
    let pinfo = lua_api::pinfo_ud(lua)?;
    let result = func.call::<LuaValue>((tvb, pinfo, tree));
    let mut c = ctx.borrow_mut();
    c.current_proto = prev_proto;
    let consumed = match result {
        Ok(v) => {
            if heuristic {
                match v {
                    LuaValue::Boolean(true) => r.len,
                    LuaValue::Integer(n) if n > 0 => n as u32,
                    _ => 0,
                }
            } else {
                match v {
                    LuaValue::Integer(n) => number_result(&mut c, n, r.len),
                    LuaValue::Number(n) => number_result(&mut c, n as i64, r.len),
                    LuaValue::Boolean(false) => 0,
                    _ => r.len,
                }
            }
        }
        Err(e) => {
            let msg = error_message(&e);
            if c.errors.record(&msg) {
                let n = c.pinfo.number;
                c.first_errors.push(format!("frame {n}: {msg}"));
            }
            if c.build_tree {
                let f = c.base.lua_error;
                let text = format!("Lua Error: {msg}");
                let n = c.tree.add_text(parent, text.clone(), 0);
                if let Some(node) = c.tree.node_mut(n) {
                    node.field = f;
                }
                c.tree.add_expert(
                    n,
                    Expert {
                        abbrev: "_ws.lua.error".into(),
                        message: text,
                        severity: severity::ERROR,
                        group: group::UNDECODED,
                    },
                );
            }
            if heuristic { 0 } else { r.len }
        }
    };
    if consumed == 0 && c.pinfo.desegment_len == 0 && c.build_tree && layer_pos > 0 {
        let at = (layer_pos - 1).min(c.layers.len().saturating_sub(1));
        if at < c.layers.len() {
            c.layers.remove(at);
        }
    }
    Ok(consumed)
}

fn number_result(c: &mut Ctx, n: i64, len: u32) -> u32 {
    if n < 0 {
        // A negative return asks for that many more bytes.
        if c.pinfo.can_desegment {
            c.pinfo.desegment_offset = 0;
            c.pinfo.desegment_len = (-n) as u32;
        }
        len
    } else {
        n as u32
    }
}

/// Runs the built-in decoders and Lua tables from `step` until the packet
/// is consumed. `transport` carries the engine's TCP/UDP state when called
/// from the packet loop (None for `Dissector:call` on inner layers, where
/// transports are decoded but no reassembly happens).
fn run_steps(
    lua: &Lua,
    ctx: &Shared,
    buf: u32,
    epoch: u32,
    mut step: Step,
    parent: NodeId,
    mut transport: Option<&mut Transport>,
) -> mlua::Result<()> {
    loop {
        step = match step {
            Step::Data(off, end) => {
                let mut c = ctx.borrow_mut();
                if end > off {
                    base::data(&mut c, buf, off, end - off, parent);
                }
                return Ok(());
            }
            Step::Ethertype(et, off, end) => {
                let h = ctx
                    .borrow()
                    .tables
                    .get("ethertype")
                    .and_then(|t| t.uints.get(&(et as u32)).copied());
                if let Some(h) = h {
                    let r = TvbRef {
                        buf,
                        off,
                        len: end - off,
                        reported: end - off,
                        epoch,
                    };
                    ctx.borrow_mut().pinfo.match_uint = et as u32;
                    if call_handle(lua, ctx, h, r, parent)? > 0 {
                        return Ok(());
                    }
                }
                let mut c = ctx.borrow_mut();
                match et {
                    0x0800 => base::ipv4(&mut c, buf, off, end, parent),
                    0x86dd => base::ipv6(&mut c, buf, off, end, parent),
                    0x8100 | 0x88a8 => base::vlan(&mut c, buf, off, end, parent),
                    _ => Step::Data(off, end),
                }
            }
            Step::IpProto(p, off, end) => {
                let h = ctx
                    .borrow()
                    .tables
                    .get("ip.proto")
                    .and_then(|t| t.uints.get(&(p as u32)).copied());
                if let Some(h) = h {
                    let r = TvbRef {
                        buf,
                        off,
                        len: end - off,
                        reported: end - off,
                        epoch,
                    };
                    ctx.borrow_mut().pinfo.match_uint = p as u32;
                    if call_handle(lua, ctx, h, r, parent)? > 0 {
                        return Ok(());
                    }
                }
                match p {
                    17 => {
                        let info = {
                            let mut c = ctx.borrow_mut();
                            let stream = transport
                                .as_deref_mut()
                                .map(|t| t.udp_stream(&c.pinfo))
                                .unwrap_or(0);
                            base::udp(&mut c, buf, off, end, parent, stream)
                        };
                        match info {
                            Some(u) => {
                                let r = TvbRef {
                                    buf,
                                    off: u.off,
                                    len: u.end - u.off,
                                    reported: u.end - u.off,
                                    epoch,
                                };
                                if r.len > 0 {
                                    dispatch(lua, ctx, "udp.port", "udp", r, parent, false)?;
                                }
                                return Ok(());
                            }
                            None => Step::Data(off, end),
                        }
                    }
                    6 => {
                        if transport.is_none() {
                            // Inner TCP from Dissector:call: no stream state.
                            let info = {
                                let mut c = ctx.borrow_mut();
                                base::tcp(&mut c, buf, off, end, parent, 0, |s, a, _| (s, a))
                            };
                            if let Some(i) = info {
                                let r = TvbRef {
                                    buf,
                                    off: i.off,
                                    len: i.end - i.off,
                                    reported: i.end - i.off,
                                    epoch,
                                };
                                if r.len > 0 {
                                    dispatch(lua, ctx, "tcp.port", "tcp", r, parent, false)?;
                                }
                                return Ok(());
                            }
                            return run_steps(
                                lua,
                                ctx,
                                buf,
                                epoch,
                                Step::Data(off, end),
                                parent,
                                None,
                            );
                        }
                        let Some(t) = transport.as_deref_mut() else {
                            return Ok(());
                        };
                        return tcp_segment(lua, ctx, t, buf, epoch, off, end, parent);
                    }
                    _ => Step::Data(off, end),
                }
            }
        };
    }
}

/// Finds a dissector for a transport payload: conversation dissector, low
/// port then high port, heuristics, then `data`. Returns bytes consumed.
fn dispatch(
    lua: &Lua,
    ctx: &Shared,
    table: &str,
    heur_list: &str,
    r: TvbRef,
    parent: NodeId,
    can_desegment: bool,
) -> mlua::Result<u32> {
    let (conv_h, ports) = {
        let mut c = ctx.borrow_mut();
        c.pinfo.desegment_len = 0;
        c.pinfo.desegment_offset = 0;
        c.pinfo.can_desegment = can_desegment;
        let conv = if c.conv_dissector.is_empty() {
            None
        } else {
            c.pinfo_conversation(false)
                .and_then(|id| c.conv_dissector.get(&id).copied())
        };
        let (s, d) = (c.pinfo.src_port, c.pinfo.dst_port);
        let (lo, hi) = if s > d { (d, s) } else { (s, d) };
        let t = c.tables.get(table);
        let lo_h = t.and_then(|t| t.uints.get(&lo).copied());
        let hi_h = t.and_then(|t| t.uints.get(&hi).copied());
        (conv, [(lo, lo_h), (hi, hi_h)])
    };
    if let Some(h) = conv_h {
        let n = call_handle(lua, ctx, h, r, parent)?;
        if n > 0 || ctx.borrow().pinfo.desegment_len > 0 {
            return Ok(n);
        }
    }
    for (port, h) in ports {
        if let Some(h) = h {
            ctx.borrow_mut().pinfo.match_uint = port;
            let n = call_handle(lua, ctx, h, r, parent)?;
            if n > 0 || ctx.borrow().pinfo.desegment_len > 0 {
                return Ok(n);
            }
        }
    }
    let heurs: Vec<(u32, Function)> = ctx
        .borrow()
        .heuristics
        .get(heur_list)
        .cloned()
        .unwrap_or_default();
    for (p, f) in heurs {
        let n = invoke(lua, ctx, p, &f, r, parent, true)?;
        if n > 0 || ctx.borrow().pinfo.desegment_len > 0 {
            return Ok(n);
        }
    }
    let mut c = ctx.borrow_mut();
    base::data(&mut c, r.buf, r.off, r.len, parent);
    Ok(r.len)
}

/// Bytes held for one TCP direction until a Lua PDU is complete.
#[derive(Debug, Default)]
struct Pending {
    data: Vec<u8>,
    need: u32,
    frames: Vec<(u32, u32)>,
}

#[derive(Debug, Default)]
struct TcpDir {
    base_seq: Option<u32>,
    next_seq: Option<u32>,
    pending: Option<Pending>,
}

#[derive(Debug, Default)]
struct TcpStream {
    index: u32,
    dirs: [TcpDir; 2],
}

/// Both endpoints of a transport conversation, lower first.
type FlowKey = ((Addr, u32), (Addr, u32));

/// Per-pass transport state: TCP streams and UDP stream numbering.
#[derive(Debug, Default)]
pub struct Transport {
    tcp: AHashMap<FlowKey, TcpStream>,
    udp: AHashMap<FlowKey, u32>,
    ntcp: u32,
}

impl Transport {
    fn key(p: &PInfo) -> (FlowKey, usize) {
        let a = (p.src, p.src_port);
        let b = (p.dst, p.dst_port);
        if a <= b { ((a, b), 0) } else { ((b, a), 1) }
    }

    fn udp_stream(&mut self, p: &PInfo) -> u32 {
        let (k, _) = Transport::key(&PInfo {
            src_port: p.src_port,
            dst_port: p.dst_port,
            src: p.src,
            dst: p.dst,
            ..PInfo::default()
        });
        let n = self.udp.len() as u32;
        *self.udp.entry(k).or_insert(n)
    }
}

fn udp_ports_key(c: &Ctx, buf: u32, off: u32) -> (u32, u32) {
    let b = &c.bufs[buf as usize];
    let o = off as usize;
    if b.len() >= o + 4 {
        (
            u16::from_be_bytes([b[o], b[o + 1]]) as u32,
            u16::from_be_bytes([b[o + 2], b[o + 3]]) as u32,
        )
    } else {
        (0, 0)
    }
}

#[allow(clippy::too_many_arguments)]
fn tcp_segment(
    lua: &Lua,
    ctx: &Shared,
    t: &mut Transport,
    buf: u32,
    epoch: u32,
    off: u32,
    end: u32,
    parent: NodeId,
) -> mlua::Result<()> {
    // Stream lookup needs the ports before the header is decoded.
    let (sport, dport) = udp_ports_key(&ctx.borrow(), buf, off);
    let (key, dir) = {
        let c = ctx.borrow();
        let mut p = PInfo {
            src: c.pinfo.src,
            dst: c.pinfo.dst,
            ..PInfo::default()
        };
        p.src_port = sport;
        p.dst_port = dport;
        Transport::key(&p)
    };
    let next_index = t.ntcp;
    if !t.tcp.contains_key(&key) {
        t.ntcp += 1;
    }
    let stream = t.tcp.entry(key).or_insert_with(|| TcpStream {
        index: next_index,
        ..TcpStream::default()
    });
    let index = stream.index;
    let info = {
        let mut c = ctx.borrow_mut();
        let dirs = &mut stream.dirs;
        base::tcp(&mut c, buf, off, end, parent, index, |seq, ack, flags| {
            let fwd_base = *dirs[dir].base_seq.get_or_insert(if flags & 0x002 != 0 {
                seq
            } else {
                seq.wrapping_sub(1)
            });
            if flags & 0x010 == 0 {
                return (seq.wrapping_sub(fwd_base), 0);
            }
            // An ACK before the other side was seen: the byte it expects is
            // taken as relative 1, as tshark does.
            let rev_base = *dirs[1 - dir].base_seq.get_or_insert(ack.wrapping_sub(1));
            (seq.wrapping_sub(fwd_base), ack.wrapping_sub(rev_base))
        })
    };
    let Some(info) = info else {
        let mut c = ctx.borrow_mut();
        base::data(&mut c, buf, off, end - off, parent);
        return Ok(());
    };
    let plen = info.end - info.off;
    let d = &mut stream.dirs[dir];
    let seq_next = info
        .seq
        .wrapping_add(plen)
        .wrapping_add(((info.flags & 0x003) != 0) as u32);
    if plen == 0 {
        d.next_seq = Some(seq_next);
        return Ok(());
    }
    let in_order = d.next_seq.map(|n| n == info.seq).unwrap_or(true);
    if !in_order {
        // Retransmission or gap: Wireshark shows it as plain TCP data
        // without handing it to the subdissector again; a gap drops any
        // partial PDU.
        let retrans = d
            .next_seq
            .map(|n| (n.wrapping_sub(info.seq) as i32) > 0)
            .unwrap_or(false);
        if retrans {
            let mut c = ctx.borrow_mut();
            c.cols[COL_INFO].text.insert_str(0, "[TCP Retransmission] ");
            return Ok(());
        }
        d.pending = None;
    }
    d.next_seq = Some(seq_next);
    let frame = ctx.borrow().pinfo.number;
    let tcp_node = info.node;
    if let Some(mut pend) = d.pending.take() {
        let payload: Vec<u8> =
            ctx.borrow().bufs[buf as usize][info.off as usize..info.end as usize].to_vec();
        let have = pend.data.len() as u32;
        let total_needed = if pend.need == DESEGMENT_ONE_MORE_SEGMENT {
            have + plen
        } else {
            pend.need
        };
        if have + plen < total_needed {
            pend.data.extend_from_slice(&payload);
            pend.frames.push((frame, plen));
            d.pending = Some(pend);
            mark_segment(ctx, tcp_node, plen);
            return Ok(());
        }
        let take = total_needed - have;
        pend.data.extend_from_slice(&payload[..take as usize]);
        pend.frames.push((frame, take));
        let rbuf = {
            let mut c = ctx.borrow_mut();
            let rbuf = c.push_buf(&pend.data);
            add_reassembly_tree(&mut c, &pend, tcp_node);
            rbuf
        };
        let r = TvbRef {
            buf: rbuf,
            off: 0,
            len: pend.data.len() as u32,
            reported: pend.data.len() as u32,
            epoch,
        };
        dispatch(lua, ctx, "tcp.port", "tcp", r, parent, true)?;
        let (dlen, doff) = {
            let c = ctx.borrow();
            (c.pinfo.desegment_len, c.pinfo.desegment_offset)
        };
        let mut leftover_off = info.off + take;
        if dlen > 0 && doff < r.len {
            // Still incomplete: keep the unconsumed part plus the rest of
            // this segment.
            let mut data = pend.data[doff as usize..].to_vec();
            data.extend_from_slice(&payload[take as usize..]);
            let have = data.len() as u32;
            let need = if dlen == DESEGMENT_ONE_MORE_SEGMENT {
                DESEGMENT_ONE_MORE_SEGMENT
            } else {
                (r.len - doff) + dlen
            };
            stream.dirs[dir].pending = Some(Pending {
                data,
                need: need.max(have + 1).min(need),
                frames: vec![(frame, have)],
            });
            return Ok(());
        }
        if leftover_off >= info.end {
            return Ok(());
        }
        // Another PDU starts in this segment.
        leftover_off = leftover_off.min(info.end);
        return tcp_fresh(
            lua,
            ctx,
            &mut stream.dirs[dir],
            buf,
            epoch,
            leftover_off,
            info.end,
            parent,
            tcp_node,
            frame,
        );
    }
    tcp_fresh(
        lua, ctx, d, buf, epoch, info.off, info.end, parent, tcp_node, frame,
    )
}

/// Dissects TCP payload that starts a PDU.
#[allow(clippy::too_many_arguments)]
fn tcp_fresh(
    lua: &Lua,
    ctx: &Shared,
    d: &mut TcpDir,
    buf: u32,
    epoch: u32,
    off: u32,
    end: u32,
    parent: NodeId,
    tcp_node: NodeId,
    frame: u32,
) -> mlua::Result<()> {
    let len = end - off;
    let r = TvbRef {
        buf,
        off,
        len,
        reported: len,
        epoch,
    };
    {
        let mut c = ctx.borrow_mut();
        if c.build_tree && tcp_node != NO_NODE {
            let f = c.base.tcp_payload;
            let n = c.tree.add(tcp_node, f, Value::None, len);
            if let Some(n) = c.tree.node_mut(n) {
                n.text = Some(format!("TCP payload ({len} bytes)"));
            }
        }
    }
    dispatch(lua, ctx, "tcp.port", "tcp", r, parent, true)?;
    let (dlen, doff) = {
        let c = ctx.borrow();
        (c.pinfo.desegment_len, c.pinfo.desegment_offset)
    };
    if dlen > 0 && doff <= len {
        let data = ctx.borrow().bufs[buf as usize][(off + doff) as usize..end as usize].to_vec();
        let have = data.len() as u32;
        let need = if dlen == DESEGMENT_ONE_MORE_SEGMENT {
            DESEGMENT_ONE_MORE_SEGMENT
        } else {
            have + dlen
        };
        d.pending = Some(Pending {
            data,
            need,
            frames: vec![(frame, have)],
        });
        if doff == 0 {
            let mut c = ctx.borrow_mut();
            mark_partial(&mut c);
        }
    }
    Ok(())
}

/// Columns of a frame whose payload only starts (or continues) a PDU, as
/// tshark 4.0 shows them.
fn mark_partial(c: &mut Ctx) {
    c.cols[COL_PROTOCOL].set("TCP");
    let info = &mut c.cols[COL_INFO];
    if !info.text.is_empty() {
        info.text.push(' ');
    }
    info.text.push_str("[TCP segment of a reassembled PDU]");
}

fn mark_segment(ctx: &Shared, tcp_node: NodeId, plen: u32) {
    let mut c = ctx.borrow_mut();
    mark_partial(&mut c);
    if c.build_tree && tcp_node != NO_NODE {
        let f = c.base.tcp_segment_data;
        let n = c.tree.add(tcp_node, f, Value::None, plen);
        if let Some(n) = c.tree.node_mut(n) {
            n.text = Some(format!("TCP segment data ({plen} bytes)"));
        }
    }
}

fn add_reassembly_tree(c: &mut Ctx, pend: &Pending, _tcp_node: NodeId) {
    if !c.build_tree {
        return;
    }
    let f = c.base.clone();
    let total = pend.data.len();
    let list: Vec<String> = pend
        .frames
        .iter()
        .map(|(f, l)| format!("#{f}({l})"))
        .collect();
    let n = c.tree.add(ROOT, f.tcp_segments, Value::None, total as u32);
    if let Some(node) = c.tree.node_mut(n) {
        node.text = Some(format!(
            "[{} Reassembled TCP Segments ({total} bytes): {}]",
            pend.frames.len(),
            list.join(", ")
        ));
    }
    for (fr, l) in &pend.frames {
        let s = c.tree.add(n, f.tcp_segment, Value::U(*fr as u64), *l);
        if let Some(node) = c.tree.node_mut(s) {
            node.text = Some(format!("[Frame: {fr}, payload: {l} bytes]"));
        }
    }
    let k = c.tree.add(
        n,
        f.tcp_segment_count,
        Value::U(pend.frames.len() as u64),
        0,
    );
    if let Some(node) = c.tree.node_mut(k) {
        node.text = Some(format!("[Segment count: {}]", pend.frames.len()));
    }
    let l = c
        .tree
        .add(n, f.tcp_reassembled_length, Value::U(total as u64), 0);
    if let Some(node) = c.tree.node_mut(l) {
        node.text = Some(format!("[Reassembled TCP length: {total}]"));
    }
}

/// `dissect_tcp_pdus(tvb, tree, min_header_size, get_len_func,
/// dissect_func, [desegment])`.
pub fn dissect_tcp_pdus(
    lua: &Lua,
    (tvb_v, tree, min, get_len, dissect, deseg): (
        LuaValue,
        LuaValue,
        u32,
        Function,
        Function,
        Option<bool>,
    ),
) -> mlua::Result<u32> {
    let ctx = lua_api::shared(lua)?;
    let tvb = crate::plain::from_value::<Tvb>(lua, &tvb_v)
        .ok_or_else(|| lerr(lua, "dissect_tcp_pdus: expected a Tvb"))?;
    let r = tvb.r;
    let node = crate::plain::from_value::<TreeItem>(lua, &tree)
        .ok_or_else(|| lerr(lua, "dissect_tcp_pdus: expected a TreeItem"))?
        .node;
    let desegment = deseg.unwrap_or(true) && ctx.borrow().pinfo.can_desegment;
    let pinfo = lua_api::pinfo_ud(lua)?;
    let mut offset = 0u32;
    while offset < r.len {
        let remaining = r.len - offset;
        if remaining < min {
            if desegment {
                let mut c = ctx.borrow_mut();
                c.pinfo.desegment_offset = offset;
                c.pinfo.desegment_len = DESEGMENT_ONE_MORE_SEGMENT;
                return Ok(offset);
            }
            break;
        }
        let pdu: i64 = get_len.call((tvb_v.clone(), pinfo.clone(), offset))?;
        if pdu <= 0 {
            break;
        }
        let pdu = pdu as u32;
        if pdu > remaining && desegment {
            let mut c = ctx.borrow_mut();
            c.pinfo.desegment_offset = offset;
            c.pinfo.desegment_len = pdu - remaining;
            return Ok(offset);
        }
        let take = pdu.min(remaining);
        let sub = TvbRef {
            buf: r.buf,
            off: r.off + offset,
            len: take,
            reported: pdu,
            epoch: r.epoch,
        };
        let (t, tr) = lua_api::call_objects(&ctx, sub, node);
        let _: LuaValue = dissect.call((t, pinfo.clone(), tr))?;
        offset += take;
    }
    Ok(offset)
}

/// Options of a dissection run.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    /// Lua scripts (`-X lua_script:FILE`), each with its `lua_script1:arg`
    /// style arguments.
    pub scripts: Vec<(String, Vec<String>)>,
    /// Preference overrides `proto.pref` → value.
    pub prefs: Vec<(String, String)>,
    /// Interpreter limits.
    pub host: Option<HostOptions>,
}

/// The engine: one Lua state plus the shared context.
pub struct Engine {
    host: LuaHost,
    ctx: Shared,
    transport: Transport,
    first_ts: Option<(i64, u32)>,
    prev_ts: (i64, u32),
    visited: bool,
}

impl Engine {
    /// Builds the interpreter, installs the API and loads the scripts.
    pub fn new(opts: &EngineOptions) -> Result<Engine, DissectError> {
        let host = LuaHost::new(opts.host.unwrap_or_default())?;
        crate::plain::note_memory_cap(host.options().max_memory);
        let ctx: Shared = Rc::new(std::cell::RefCell::new(Ctx::new()));
        {
            let mut c = ctx.borrow_mut();
            for (k, v) in &opts.prefs {
                c.pref_overrides.insert(k.clone(), v.clone());
            }
        }
        lua_api::install(host.lua(), &ctx).map_err(|e| DissectError::Script(e.to_string()))?;
        for (path, args) in &opts.scripts {
            // Scripts see their arguments as `...`, as in tshark.
            let source = std::fs::read(path).map_err(|source| DissectError::Io {
                path: path.clone(),
                source,
            })?;
            host.budget().arm();
            let chunk = host.lua().load(&source[..]).set_name(format!("@{path}"));
            let f = chunk
                .into_function()
                .map_err(|e| DissectError::Script(format!("{path}: {e}")))?;
            f.call::<()>(lua::mlua::MultiValue::from_iter(args.iter().filter_map(
                |a| host.lua().create_string(a).ok().map(LuaValue::String),
            )))
            .map_err(|e| DissectError::Script(error_message(&e)))?;
        }
        // Unknown preferences are an error, as in tshark.
        {
            let c = ctx.borrow();
            for (k, _) in &opts.prefs {
                let known = k.split_once('.').is_some_and(|(proto, pref)| {
                    c.protos
                        .iter()
                        .any(|p| p.filter == proto && p.prefs.iter().any(|x| x.name == pref))
                });
                if !known {
                    return Err(DissectError::Usage(format!(
                        "-o: unknown preference \"{k}\""
                    )));
                }
            }
        }
        let changed: Vec<Function> = {
            let c = ctx.borrow();
            c.protos
                .iter()
                .filter(|p| {
                    opts.prefs
                        .iter()
                        .any(|(k, _)| k.split('.').next() == Some(p.filter.as_str()))
                })
                .filter_map(|p| p.prefs_changed.clone())
                .collect()
        };
        for f in changed {
            host.budget().arm();
            f.call::<()>(())
                .map_err(|e| DissectError::Script(error_message(&e)))?;
        }
        Ok(Engine {
            host,
            ctx,
            transport: Transport::default(),
            first_ts: None,
            prev_ts: (0, 0),
            visited: false,
        })
    }

    /// The shared context (tree, columns, registry) for output.
    pub fn ctx(&self) -> &Shared {
        &self.ctx
    }

    /// Runs every protocol's `init` (start of a capture).
    pub fn init(&mut self) -> Result<(), DissectError> {
        let inits: Vec<Function> = self
            .ctx
            .borrow()
            .protos
            .iter()
            .filter_map(|p| p.init.clone())
            .collect();
        for f in inits {
            self.host.budget().arm();
            f.call::<()>(())
                .map_err(|e| DissectError::Script(error_message(&e)))?;
        }
        Ok(())
    }

    /// Starts a pass: transport state (streams, reassembly) restarts, while
    /// conversation and packet data persist, as in tshark's two passes.
    pub fn start_pass(&mut self, visited: bool) {
        self.transport = Transport::default();
        self.first_ts = None;
        self.ctx.borrow_mut().pinfo.visited = visited;
        self.visited = visited;
    }

    /// Dissects one packet; the tree is built when `build_tree`.
    pub fn dissect(
        &mut self,
        number: u32,
        rec: &mut Record,
        build_tree: bool,
    ) -> Result<(), DissectError> {
        let lua = self.host.lua();
        let ctx = &self.ctx;
        let epoch;
        {
            let mut c = ctx.borrow_mut();
            let c = &mut *c;
            c.epoch = c.epoch.wrapping_add(1);
            epoch = c.epoch;
            c.nbufs = 1;
            std::mem::swap(&mut c.bufs[0], &mut rec.data);
            c.build_tree = build_tree;
            c.tree.reset();
            c.layers.clear();
            c.private.clear();
            for col in c.cols.iter_mut() {
                col.text.clear();
                col.fence = 0;
                col.set = false;
            }
            let visited = self.visited;
            let p = &mut c.pinfo;
            let curr = std::mem::take(&mut p.curr_proto);
            *p = PInfo {
                curr_proto: curr,
                ..PInfo::default()
            };
            p.visited = visited;
            p.number = number;
            p.len = rec.len;
            p.caplen = c.bufs[0].len() as u32;
            p.abs_sec = rec.ts_sec;
            p.abs_nsec = rec.ts_nsec;
            let first = *self.first_ts.get_or_insert((rec.ts_sec, rec.ts_nsec));
            let prev = if number == 1 { first } else { self.prev_ts };
            base::frame(c, rec.linktype, first, prev);
            self.prev_ts = (rec.ts_sec, rec.ts_nsec);
        }
        self.host.budget().arm();
        let step = {
            let mut c = ctx.borrow_mut();
            let end = c.bufs[0].len() as u32;
            base::link(&mut c, rec.linktype, 0, end)
        };
        let result = run_steps(lua, ctx, 0, epoch, step, ROOT, Some(&mut self.transport));
        let mut c = ctx.borrow_mut();
        std::mem::swap(&mut c.bufs[0], &mut rec.data);
        if let Err(e) = result {
            // Errors outside a Lua dissector (e.g. creating objects) are
            // counted like script errors; the run goes on.
            let msg = error_message(&e);
            if c.errors.record(&msg) {
                let n = c.pinfo.number;
                c.first_errors.push(format!("frame {n}: {msg}"));
            }
        }
        // Source and destination columns are only read by the output (the
        // dissectors have run): not formatted in a pass that prints nothing.
        if c.build_tree || c.want_cols {
            base::finish_columns(&mut c);
        }
        if build_tree {
            let protos = c.layers.join(":");
            let f = c.base.frame_protocols;
            if let Some(n) = c.tree.nodes.iter_mut().find(|n| n.field == f) {
                n.value = Value::Str(protos);
            }
        }
        Ok(())
    }

    /// Lua errors so far: (total, per-site counts, first message per site).
    pub fn error_report(&self) -> (u64, Vec<(String, u64)>, Vec<String>) {
        let c = self.ctx.borrow();
        (c.errors.total(), c.errors.sites(), c.first_errors.clone())
    }

    /// Whether columns are filled (summary output) when no tree is built.
    pub fn set_want_columns(&mut self, on: bool) {
        self.ctx.borrow_mut().want_cols = on;
    }

    /// Columns of the last packet.
    pub fn columns(&self) -> std::cell::Ref<'_, Vec<Column>> {
        std::cell::Ref::map(self.ctx.borrow(), |c| &c.cols)
    }
}
