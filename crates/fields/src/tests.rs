//! Unit tests of the registry, including coverage of the Arkime corpus.

use super::*;

fn reg() -> FieldRegistry {
    FieldRegistry::builtin()
}

#[test]
fn known_fields_map_expr_to_db_and_kind() {
    let r = reg();
    for (expr, db, kind) in [
        ("http.uri", "http.uri", FieldKind::Termfield),
        ("host.http", "http.host", FieldKind::Lotermfield),
        ("ip.src", "source.ip", FieldKind::Ip),
        ("ip.dst", "destination.ip", FieldKind::Ip),
        ("port.dst", "destination.port", FieldKind::Integer),
        ("bytes.src", "source.bytes", FieldKind::Integer),
        ("tags", "tags", FieldKind::Termfield),
        ("protocols", "protocol", FieldKind::Termfield),
        ("starttime", "firstPacket", FieldKind::Date),
        ("host.dns", "dns.host", FieldKind::Lotermfield),
        ("cert.issuer.cn", "cert.issuerCN", FieldKind::Lotermfield),
        ("http.user-agent", "http.useragent", FieldKind::Termfield),
        ("ip.xff", "http.xffIp", FieldKind::Ip),
    ] {
        let id = r
            .lookup_expr(expr)
            .unwrap_or_else(|| panic!("{expr} missing"));
        let d = r.def(id);
        assert_eq!(d.db, db, "{expr}");
        assert_eq!(d.kind, kind, "{expr}");
        assert_eq!(r.by_db(db), Some(id), "{db}");
    }
    assert!(r.lookup_expr("no.such.field").is_none());
    // The viewer lower-cases expressions; so does the lookup as a fallback.
    assert_eq!(r.lookup_expr("IP.SRC"), r.lookup_expr("ip.src"));
}

#[test]
fn count_fields_are_derived_from_flags() {
    let r = reg();
    let uri = r.lookup_expr("http.uri").unwrap();
    let cnt = r.count_field(uri).unwrap();
    assert_eq!(r.def(cnt).db, "http.uriCnt");
    assert_eq!(r.def(cnt).expr, "http.uri.cnt");
    assert_eq!(r.def(cnt).kind, FieldKind::Integer);
    let mac = r.lookup_expr("mac.src").unwrap();
    assert_eq!(r.def(r.count_field(mac).unwrap()).db, "source.mac-cnt");
    // tls.srcSessionId has no count in Arkime's documents.
    let sid = r.lookup_expr("tls.sessionid.src").unwrap();
    assert!(r.count_field(sid).is_none());
    assert_eq!(r.by_db("tagsCnt"), r.lookup_expr("tags.cnt"));
    assert_eq!(r.by_db("dnsCnt"), r.lookup_expr("dns.cnt"));
}

#[test]
fn multi_field_expressions_expand() {
    let r = reg();
    let exprs = |e: &str| -> Vec<String> {
        let id = r.lookup_expr(e).unwrap();
        r.expand(id)
            .into_iter()
            .map(|i| r.def(i).expr.to_string())
            .collect()
    };
    let ip = exprs("ip");
    for want in ["ip.src", "ip.dst", "ip.dns", "ip.xff", "ip.email"] {
        assert!(ip.iter().any(|e| e == want), "ip lacks {want}: {ip:?}");
    }
    assert!(
        ip.iter()
            .all(|e| r.def(r.lookup_expr(e).unwrap()).kind == FieldKind::Ip)
    );
    let port = exprs("port");
    assert!(port.contains(&"port.src".to_string()) && port.contains(&"port.dst".to_string()));
    let host = exprs("host");
    assert!(host.contains(&"host.http".to_string()) && host.contains(&"host.dns".to_string()));
    assert_eq!(
        exprs("http.hasheader"),
        ["http.hasheader.src", "http.hasheader.dst"]
    );
    assert_eq!(exprs("ip.src"), ["ip.src"]);
}

#[test]
fn expressions_and_db_paths_are_unique() {
    let r = reg();
    let mut exprs = std::collections::HashSet::new();
    let mut dbs = std::collections::HashSet::new();
    for (_, d) in r.iter() {
        assert!(
            exprs.insert(d.expr.to_string()),
            "duplicate expr {}",
            d.expr
        );
        if !d.is_multi() {
            assert!(dbs.insert(d.db.to_string()), "duplicate db {}", d.db);
        }
    }
}

#[test]
fn custom_fields_follow_arkime_syntax() {
    let mut r = reg();
    let added = r
        .add_custom_line("sample.md5=db:sample.md5;kind:lotermfield;friendly:Sample MD5;count:true;help:MD5 of the sample")
        .unwrap();
    let CustomField::Added(id) = added else {
        panic!("{added:?}")
    };
    let d = r.def(id);
    assert_eq!(d.kind, FieldKind::Lotermfield);
    assert_eq!(d.friendly, "Sample MD5");
    assert_eq!(d.group, "sample");
    assert!(d.flags.contains(FieldFlags::CUSTOM));
    assert_eq!(r.def(r.count_field(id).unwrap()).db, "sample.md5Cnt");
    // Redefining a built-in (by db path or by expression) is ignored.
    let vlan = r
        .add_custom_line(
            "network.vlan.id=db:network.vlan.id;kind:integer;friendly:VLAN;help:vlan value",
        )
        .unwrap();
    assert_eq!(vlan, CustomField::Existing(r.lookup_expr("vlan").unwrap()));
    let again = r.add_custom("http.uri", "kind:integer;db:foo").unwrap();
    assert_eq!(
        again,
        CustomField::Existing(r.lookup_expr("http.uri").unwrap())
    );
    assert_eq!(r.def(again.id()).kind, FieldKind::Termfield);
    let viewer = r
        .add_custom_line("iscool=kind:termfield;count:true;friendly:Is cool;db:iscool;help:Is Cool String;viewerOnly:true")
        .unwrap();
    assert!(r.def(viewer.id()).flags.contains(FieldFlags::VIEWER_ONLY));
}

#[test]
fn custom_field_errors_are_typed() {
    let mut r = reg();
    assert!(matches!(
        r.add_custom_line("nokind"),
        Err(FieldError::BadLine { .. })
    ));
    assert!(matches!(
        r.add_custom("a.b", "db:a.b"),
        Err(FieldError::MissingKind { .. })
    ));
    assert!(matches!(
        r.add_custom("a.b", "kind:termfield"),
        Err(FieldError::MissingDb { .. })
    ));
    assert!(matches!(
        r.add_custom("a.b", "kind:strange;db:a.b"),
        Err(FieldError::UnknownKind { .. })
    ));
    assert!(matches!(
        r.add_custom("a.b", "kind;db:a.b"),
        Err(FieldError::BadItem { .. })
    ));
    assert!(matches!(
        r.add_custom("a.b", "kind:integer;db:a.b;count:maybe"),
        Err(FieldError::BadBool { .. })
    ));
    assert!(matches!(
        r.add_custom("a b", "kind:integer;db:a.b"),
        Err(FieldError::BadExpr { .. })
    ));
    // Nothing was added by the failures.
    assert!(r.lookup_expr("a.b").is_none());
}

#[test]
fn registry_is_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<FieldRegistry>();
    check::<std::sync::Arc<FieldRegistry>>();
}

/// Walks a session body, collecting the dotted paths of leaf values
/// (arrays of objects are walked through, as the index does).
fn leaf_paths(v: &serde_json::Value, prefix: &str, out: &mut std::collections::BTreeSet<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                // An array of objects is itself a field (its count is).
                if matches!(v, serde_json::Value::Array(a) if a.first().is_some_and(|x| x.is_object()))
                {
                    out.insert(p.clone());
                }
                leaf_paths(v, &p, out);
            }
        }
        serde_json::Value::Array(a) if a.first().is_some_and(|x| x.is_object()) => {
            for x in a {
                leaf_paths(x, prefix, out);
            }
        }
        _ => {
            out.insert(prefix.to_string());
        }
    }
}

/// Enrichment data and test-only plugins are not part of the registry's
/// contract (see shared/arkime-compat/README.md's scoring rules).
fn ignored(path: &str) -> bool {
    path.contains(".geo.")
        || path.contains(".as.")
        || path.ends_with("GEO")
        || path.ends_with("ASN")
        || path.ends_with("RIR")
        || path.starts_with("test.")
        || path.starts_with("zeekintel")
}

#[test]
fn every_corpus_field_has_a_registry_entry() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/arkime-compat/pcaps"
    );
    let Ok(entries) = std::fs::read_dir(dir) else {
        if std::env::var_os("CI").is_some() {
            panic!("corpus {dir} missing");
        }
        eprintln!("skipped: corpus {dir} not present");
        return;
    };
    let r = reg();
    let mut paths = std::collections::BTreeSet::new();
    let mut files = 0;
    for e in entries {
        let p = e.unwrap().path();
        if p.extension().and_then(|x| x.to_str()) != Some("test") {
            continue;
        }
        files += 1;
        let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        for s in doc["sessions3"].as_array().into_iter().flatten() {
            leaf_paths(&s["body"], "", &mut paths);
        }
    }
    assert!(files > 100, "only {files} .test files");
    let missing: Vec<_> = paths
        .iter()
        .filter(|p| !ignored(p) && r.by_db(p).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "corpus fields without a registry entry: {missing:?}"
    );
    // And the count flag agrees with the corpus: a `*Cnt` in a document
    // means the field is flagged as counted.
    for p in &paths {
        let base = p.strip_suffix("Cnt").or_else(|| p.strip_suffix("-cnt"));
        if let Some(id) = base.and_then(|b| r.by_db(b)) {
            assert!(r.def(id).flags.has_count(), "{p}: a count in the corpus");
        }
    }
}
