//! The global tables scripts see: `Moloch`/`Arkime`, and the registration
//! functions of `MolochSession`/`ArkimeSession` (classifiers, `http_on`,
//! body feeds, save hooks) with the `HTTP` event constants.
//!
//! Registration is allowed while the scripts' top level runs; what was
//! registered is collected in [`Registrations`], in order, so that every
//! packet thread's interpreter (which loads the same files) numbers its
//! classifiers the same way as the start-up pass that put them into the
//! shared classifier set.

use std::io::Write;
use std::rc::Rc;

use lua::mlua::{self, Lua, Value, Variadic};
use protocols::HttpEvent;

use super::session::{Callback, Shared};

/// Most callbacks of one kind (a per-session bit mask turns them off).
pub(crate) const MAX_CALLBACKS: usize = 32;

/// Arkime's numbering of the `http_on` types (`MolochSession.HTTP.*`).
pub(crate) const HTTP_TYPES: [(&str, i64); 8] = [
    ("MESSAGE_BEGIN", 2),
    ("URL", 3),
    ("HEADER_FIELD", 4),
    ("HEADER_VALUE", 5),
    ("HEADERS_COMPLETE", 6),
    ("BODY", 7),
    ("MESSAGE_COMPLETE", 8),
    ("HEADER_FIELD_RAW", 9),
];

/// Body feeds scripts may ask for, and which built-in parser provides them.
pub(crate) const BODY_KINDS: [&str; 2] = ["http", "smtp"];

/// Index of an HTTP event in [`Registrations::http`] (Arkime's number - 2).
pub(crate) fn http_index(e: HttpEvent) -> usize {
    match e {
        HttpEvent::MessageBegin => 0,
        HttpEvent::Url => 1,
        HttpEvent::HeaderField => 2,
        HttpEvent::HeaderValue => 3,
        HttpEvent::HeadersComplete => 4,
        HttpEvent::Body => 5,
        HttpEvent::MessageComplete => 6,
        HttpEvent::HeaderFieldRaw => 7,
    }
}

/// A script classifier.
pub(crate) struct ClassifierReg {
    pub name: String,
    pub offset: usize,
    pub pattern: Vec<u8>,
    pub udp: bool,
    pub callback: Callback,
}

/// Everything the scripts registered, in registration order.
#[derive(Default)]
pub(crate) struct Registrations {
    pub classifiers: Vec<ClassifierReg>,
    /// `http_on` callbacks by [`http_index`].
    pub http: [Vec<Callback>; 8],
    /// Body feeds by [`BODY_KINDS`] index.
    pub bodies: [Vec<Callback>; 2],
    pub pre_save: Vec<Callback>,
    pub save: Vec<Callback>,
}

fn usage(msg: &str) -> mlua::Error {
    mlua::Error::runtime(format!("usage: {msg}"))
}

fn check_loading(sh: &Shared, what: &str) -> mlua::Result<()> {
    if sh.loading.get() {
        Ok(())
    } else {
        Err(mlua::Error::runtime(format!(
            "{what} may only be called while the script loads"
        )))
    }
}

fn push_limited(list: &mut Vec<Callback>, cb: Callback, what: &str) -> mlua::Result<()> {
    if list.len() >= MAX_CALLBACKS {
        return Err(mlua::Error::runtime(format!(
            "can't have more than {MAX_CALLBACKS} {what} callbacks"
        )));
    }
    list.push(cb);
    Ok(())
}

fn classifier_fn(lua: &Lua, sh: &Rc<Shared>, udp: bool) -> mlua::Result<mlua::Function> {
    let sh = Rc::clone(sh);
    let what = if udp {
        "register_udp_classifier"
    } else {
        "register_tcp_classifier"
    };
    lua.create_function(move |_, args: Variadic<Value>| {
        check_loading(&sh, what)?;
        let [name, offset, pattern, f] =
            <[Value; 4]>::try_from(args.into_iter().collect::<Vec<_>>())
                .map_err(|_| usage("<name> <offset> <match> <function>"))?;
        let name = match name {
            Value::String(s) => s.to_str()?.to_string(),
            _ => return Err(usage("<name> <offset> <match> <function>")),
        };
        let offset = match offset {
            Value::Integer(i) if i >= 0 => i as usize,
            Value::Number(n) if n >= 0.0 && n.fract() == 0.0 => n as usize,
            _ => {
                return Err(usage(
                    "<name> <offset> <match> <function>: offset must be >= 0",
                ));
            }
        };
        let pattern = match pattern {
            Value::String(s) => s.as_bytes().to_vec(),
            _ => return Err(usage("<name> <offset> <match> <function>")),
        };
        let callback = Callback::from_value(f, what)?;
        sh.regs.borrow_mut().classifiers.push(ClassifierReg {
            name,
            offset,
            pattern,
            udp,
            callback,
        });
        Ok(())
    })
}

/// Installs `Moloch`/`Arkime`, `MolochSession`/`ArkimeSession` and a
/// `print` that writes to stderr (stdout carries documents).
pub(crate) fn install(lua: &Lua, shared: &Rc<Shared>) -> mlua::Result<()> {
    let g = lua.globals();

    let moloch = lua.create_table()?;
    let sh = Rc::clone(shared);
    moloch.set(
        "expression_to_fieldId",
        lua.create_function(move |_, expr: Value| {
            if !matches!(expr, Value::String(_)) {
                return Err(usage("<field expression>"));
            }
            Ok(sh.field(&expr)?.index() as i64)
        })?,
    )?;
    g.set("Moloch", moloch.clone())?;
    g.set("Arkime", moloch)?;

    let session = lua.create_table()?;
    session.set(
        "register_tcp_classifier",
        classifier_fn(lua, shared, false)?,
    )?;
    session.set("register_udp_classifier", classifier_fn(lua, shared, true)?)?;

    let sh = Rc::clone(shared);
    session.set(
        "http_on",
        lua.create_function(move |_, (kind, f): (Value, Value)| {
            check_loading(&sh, "http_on")?;
            let n = match kind {
                Value::Integer(i) => i,
                Value::Number(n) if n.fract() == 0.0 => n as i64,
                _ => return Err(usage("<cb_type> <function>")),
            };
            let Some(at) = HTTP_TYPES.iter().position(|(_, v)| *v == n) else {
                return Err(mlua::Error::runtime(format!(
                    "http_on: invalid callback type {n} (use MolochSession.HTTP.*)"
                )));
            };
            let cb = Callback::from_value(f, "http_on")?;
            push_limited(&mut sh.regs.borrow_mut().http[at], cb, "http_on")
        })?,
    )?;

    let sh = Rc::clone(shared);
    session.set(
        "register_body_feed",
        lua.create_function(move |_, (kind, f): (String, Value)| {
            check_loading(&sh, "register_body_feed")?;
            let Some(at) = BODY_KINDS.iter().position(|k| *k == kind) else {
                return Err(mlua::Error::runtime(format!(
                    "register_body_feed: unknown type {kind:?} (supported: http, smtp)"
                )));
            };
            let cb = Callback::from_value(f, "register_body_feed")?;
            push_limited(&mut sh.regs.borrow_mut().bodies[at], cb, "body feed")
        })?,
    )?;

    let sh = Rc::clone(shared);
    session.set(
        "register_pre_save",
        lua.create_function(move |_, f: Value| {
            check_loading(&sh, "register_pre_save")?;
            let cb = Callback::from_value(f, "register_pre_save")?;
            push_limited(&mut sh.regs.borrow_mut().pre_save, cb, "pre-save")
        })?,
    )?;

    let sh = Rc::clone(shared);
    session.set(
        "register_save",
        lua.create_function(move |_, f: Value| {
            check_loading(&sh, "register_save")?;
            let cb = Callback::from_value(f, "register_save")?;
            push_limited(&mut sh.regs.borrow_mut().save, cb, "save")
        })?,
    )?;

    let http = lua.create_table()?;
    for (name, v) in HTTP_TYPES {
        http.set(name, v)?;
    }
    session.set("HTTP", http)?;
    g.set("MolochSession", session.clone())?;
    g.set("ArkimeSession", session)?;

    // Scripts print progress (Arkime's samples do); stdout may carry JSON
    // documents, so print goes to stderr.
    g.set(
        "print",
        lua.create_function(|lua, args: Variadic<Value>| {
            let tostring: mlua::Function = lua.globals().get("tostring")?;
            let mut line = Vec::new();
            for (i, v) in args.into_iter().enumerate() {
                if i > 0 {
                    line.push(b'\t');
                }
                let s: mlua::LuaString = tostring.call(v)?;
                line.extend_from_slice(&s.as_bytes());
            }
            line.push(b'\n');
            let _ = std::io::stderr().lock().write_all(&line);
            Ok(())
        })?,
    )?;
    Ok(())
}
