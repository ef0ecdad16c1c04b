//! tshark's output layouts: the one-line summary, `-V` text trees,
//! `-T json` and `-T fields -e ...`.

use std::fmt::Write as _;

use crate::ctx::{COL_DST, COL_INFO, COL_PROTOCOL, COL_SRC, Ctx};
use crate::fields::{FIELD_TEXT, FieldKind, field_value};
use crate::tree::{NodeId, ROOT, Tree, group_name, severity_name};

/// Appends the summary line of the current packet (`-V` absent).
pub fn summary(c: &Ctx, out: &mut String) {
    let p = &c.pinfo;
    let _ = writeln!(
        out,
        "{:>5} {:>10.6} {:>12} → {:<12} {} {} {}",
        p.number,
        p.rel_ts,
        c.cols[COL_SRC].text,
        c.cols[COL_DST].text,
        c.cols[COL_PROTOCOL].text,
        p.len,
        c.cols[COL_INFO].text
    );
}

/// Appends the `-V` tree of the current packet followed by a blank line.
pub fn text_tree(c: &Ctx, out: &mut String) {
    for child in c.tree.children(ROOT) {
        text_node(c, child, 0, out);
    }
    out.push('\n');
}

fn text_node(c: &Ctx, id: NodeId, depth: usize, out: &mut String) {
    let Some(n) = c.tree.node(id) else { return };
    if n.hidden {
        return;
    }
    let label = c.tree.label(&c.reg, id);
    indent(out, depth * 4);
    if n.generated {
        let _ = writeln!(out, "[{label}]");
    } else {
        let _ = writeln!(out, "{label}");
    }
    if let Some(e) = c.tree.experts.get(n.expert as usize) {
        for line in [
            e.message.clone(),
            format!("Severity level: {}", severity_name(e.severity)),
            format!("Group: {}", group_name(e.group)),
        ] {
            indent(out, (depth + 1) * 4);
            let _ = writeln!(out, "[{line}]");
        }
    }
    for child in c.tree.children(id) {
        text_node(c, child, depth + 1, out);
    }
}

fn indent(out: &mut String, n: usize) {
    for _ in 0..n {
        out.push(' ');
    }
}

fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Starts the JSON array.
pub fn json_begin(out: &mut String) {
    out.push_str("[\n");
}

/// Ends the JSON array (`any` = at least one packet was written).
pub fn json_end(out: &mut String, any: bool) {
    if any {
        out.push('\n');
    }
    out.push_str("]\n");
}

/// Appends one packet in tshark's JSON layout.
pub fn json_packet(c: &Ctx, out: &mut String, first: bool) {
    if !first {
        out.push_str(",\n");
    }
    let date = crate::fields::abs_time_string(c.pinfo.abs_sec, c.pinfo.abs_nsec);
    // "Nov 14, 2023 ..." → packets-2023-11-14
    let index = json_index(c.pinfo.abs_sec);
    let _ = date;
    out.push_str("  {\n");
    let _ = writeln!(out, "    \"_index\": \"packets-{index}\",");
    out.push_str(
        "    \"_type\": \"doc\",\n    \"_score\": null,\n    \"_source\": {\n      \"layers\": {\n",
    );
    json_children(c, ROOT, 8, out);
    out.push_str("      }\n    }\n  }");
}

fn json_index(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!("{y:04}-{m:02}-{d:02}")
}

fn json_children(c: &Ctx, id: NodeId, depth: usize, out: &mut String) {
    let kids: Vec<NodeId> = c.tree.children(id).collect();
    let mut wrote = false;
    for k in kids {
        let mut item = String::new();
        json_node(c, k, depth, &mut item);
        if item.is_empty() {
            continue;
        }
        if wrote {
            out.push_str(",\n");
        }
        out.push_str(&item);
        wrote = true;
    }
    if wrote {
        out.push('\n');
    }
}

fn json_node(c: &Ctx, id: NodeId, depth: usize, out: &mut String) {
    let Some(n) = c.tree.node(id) else { return };
    let def = c.reg.get(n.field);
    let has_kids = n.first != crate::tree::NO_NODE;
    let key: String = match def.kind {
        FieldKind::Text if n.field == FIELD_TEXT => "_ws.lua.text".into(),
        FieldKind::Text => c.tree.label(&c.reg, id),
        _ => def.abbrev.clone(),
    };
    if let Some(e) = c.tree.experts.get(n.expert as usize) {
        indent(out, depth);
        out.push_str("\"_ws.expert\": {\n");
        let pad = depth + 2;
        let mut lines = vec![(e.abbrev.clone(), String::new())];
        lines.push(("_ws.expert.message".into(), e.message.clone()));
        lines.push(("_ws.expert.severity".into(), e.severity.to_string()));
        lines.push(("_ws.expert.group".into(), e.group.to_string()));
        for (i, (k, v)) in lines.iter().enumerate() {
            indent(out, pad);
            json_str(out, k);
            out.push_str(": ");
            json_str(out, v);
            if i + 1 < lines.len() {
                out.push(',');
            }
            out.push('\n');
        }
        indent(out, depth);
        out.push('}');
        return;
    }
    indent(out, depth);
    json_str(out, &key);
    out.push_str(": ");
    match def.kind {
        FieldKind::Protocol | FieldKind::Text => {
            if has_kids {
                out.push_str("{\n");
                json_children(c, id, depth + 2, out);
                indent(out, depth);
                out.push('}');
            } else if def.kind == FieldKind::Protocol {
                json_str(out, &c.tree.label(&c.reg, id));
            } else {
                json_str(out, "");
            }
        }
        _ => {
            json_str(out, &field_value(def, &n.value));
            if has_kids {
                out.push_str(",\n");
                indent(out, depth);
                json_str(out, &format!("{key}_tree"));
                out.push_str(": {\n");
                json_children(c, id, depth + 2, out);
                indent(out, depth);
                out.push('}');
            }
        }
    }
}

/// Values of a field in the current packet, in tree order.
pub fn field_values(c: &Ctx, abbrev: &str) -> Vec<String> {
    if let Some(col) = abbrev.strip_prefix("_ws.col.") {
        let idx = match col {
            "Protocol" | "protocol" => Some(COL_PROTOCOL),
            "Info" | "info" => Some(COL_INFO),
            "Source" | "src" | "def_src" => Some(COL_SRC),
            "Destination" | "dst" | "def_dst" => Some(COL_DST),
            _ => None,
        };
        return match idx {
            Some(i) => vec![c.cols[i].text.clone()],
            None if col == "No." || col == "number" => vec![c.pinfo.number.to_string()],
            None if col == "Length" => vec![c.pinfo.len.to_string()],
            None => Vec::new(),
        };
    }
    let ids = c.reg.lookup(abbrev);
    if ids.is_empty() {
        return Vec::new();
    }
    let mut v = Vec::new();
    for n in c.tree.nodes.iter().skip(1) {
        if ids.contains(&n.field) {
            let def = c.reg.get(n.field);
            v.push(match def.kind {
                FieldKind::Protocol => c.reg.get(n.field).name.clone(),
                _ => field_value(def, &n.value),
            });
        }
    }
    v
}

/// Appends one `-T fields` line.
pub fn fields_line(c: &Ctx, fields: &[String], out: &mut String) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push('\t');
        }
        out.push_str(&field_values(c, f).join(","));
    }
    out.push('\n');
}

/// True when the tree has at least one node of a field.
pub fn has_field(tree: &Tree, ids: &[u32]) -> bool {
    tree.nodes.iter().skip(1).any(|n| ids.contains(&n.field))
}
