//! The Wireshark Lua API surface: `Proto`, `ProtoField`, `ProtoExpert`,
//! `Pref`, `TreeItem`, `Pinfo`, `Column(s)`, `DissectorTable`, `Dissector`,
//! `Conversation`, the `wslua_conversation` module and the global constants.
//! Each class is one `UserData` impl, named as the documented API names it.

use std::rc::Rc;

use ahash::AHashMap;
use lua::mlua::{
    self, AnyUserData, Function, Lua, MetaMethod, Table, UserData, UserDataMethods,
    Value as LuaValue, Variadic,
};

use crate::ctx::{
    Addr, COLUMN_NAMES, ConvKey, DTable, Handle, PrefDef, PrefValue, ProtoDef, Shared,
    builtin_by_name,
};
use crate::fields::{FType, FieldDef, FieldId, FieldKind, Value, ValueStrings, base};
use crate::lua_tvb::{
    Address, ByteArray, Tvb, TvbRange, TvbRef, bytearray_new, bytes_to_string, lerr, parse_addr,
};
use crate::plain::{self, CtxRef, Methods, Plain, conversion_error_of, from_value};
use crate::tree::{Expert, NO_NODE, NodeId, group, severity};
use lua::mlua::{FromLua, IntoLua, ffi, state::RawLua};

/// Handles every Lua callback needs, kept in the interpreter's app data.
pub struct Handles {
    /// The shared context.
    pub ctx: Shared,
    /// The one `Pinfo` object (it always shows the current packet).
    pub pinfo: AnyUserData,
    /// One `Column` object per column.
    pub column_objs: Vec<AnyUserData>,
}

/// The shared context from inside a callback.
pub fn shared(lua: &Lua) -> mlua::Result<Shared> {
    lua.app_data_ref::<Handles>()
        .map(|h| Rc::clone(&h.ctx))
        .ok_or_else(|| mlua::Error::RuntimeError("moonwire: dissector context missing".into()))
}

/// The `Pinfo` object from inside a callback.
pub fn pinfo_ud(lua: &Lua) -> mlua::Result<AnyUserData> {
    lua.app_data_ref::<Handles>()
        .map(|h| h.pinfo.clone())
        .ok_or_else(|| mlua::Error::RuntimeError("moonwire: dissector context missing".into()))
}

// ---------------------------------------------------------------- Proto

/// `Proto`.
pub struct Proto {
    /// Index in `Ctx::protos`.
    pub id: u32,
    ctx: Shared,
}

/// `ProtoField`.
#[derive(Clone, Copy)]
pub struct ProtoField {
    /// Registered field id.
    pub id: FieldId,
}

plain::plain_class!(ProtoField, "ProtoField");

/// `ProtoExpert`.
#[derive(Clone)]
pub struct ProtoExpert {
    abbrev: String,
    text: String,
    group: u32,
    severity: u32,
}

/// A `Pref.*` value before it is assigned into `proto.prefs`.
#[derive(Clone)]
pub struct PrefSpec {
    value: PrefValue,
    entries: Vec<(String, String, i64)>,
}

/// `proto.prefs`.
pub struct Prefs {
    proto: u32,
    ctx: Shared,
}

fn proto_new(lua: &Lua, ctx: &Shared, name: String, desc: String) -> mlua::Result<Proto> {
    let mut c = ctx.borrow_mut();
    let filter = name.to_ascii_lowercase();
    if c.protos.iter().any(|p| p.filter == filter) {
        return Err(lerr(
            lua,
            format!("Proto new: there cannot be two protocols with the same name '{name}'"),
        ));
    }
    let field = c.reg.add(FieldDef {
        abbrev: filter.clone(),
        name: desc.clone(),
        ftype: FType::Protocol,
        base: base::NONE,
        vs: None,
        mask: 0,
        descr: String::new(),
        kind: FieldKind::Protocol,
    });
    let id = c.protos.len() as u32;
    c.protos.push(ProtoDef {
        name,
        desc,
        filter,
        field,
        dissector: None,
        init: None,
        prefs_changed: None,
        prefs: Vec::new(),
    });
    Ok(Proto {
        id,
        ctx: Rc::clone(ctx),
    })
}

impl UserData for Proto {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("register_heuristic", |lua, this, (list, f): (String, Function)| {
            let mut c = this.ctx.borrow_mut();
            if !matches!(list.as_str(), "tcp" | "udp") {
                return Err(lerr(
                    lua,
                    format!("Proto:register_heuristic(): heuristic list '{list}' is not supported by moonwire (tcp, udp)"),
                ));
            }
            c.heuristics.entry(list).or_default().push((this.id, f));
            Ok(())
        });
        m.add_meta_function(
            MetaMethod::Index,
            |lua, (ud, key): (AnyUserData, String)| {
                let this = ud.borrow::<Proto>()?;
                let c = this.ctx.borrow();
                let p = &c.protos[this.id as usize];
                Ok(match key.as_str() {
                    "name" => LuaValue::String(lua.create_string(&p.name)?),
                    "description" => LuaValue::String(lua.create_string(&p.desc)?),
                    "dissector" => p
                        .dissector
                        .clone()
                        .map(LuaValue::Function)
                        .unwrap_or(LuaValue::Nil),
                    "init" => p
                        .init
                        .clone()
                        .map(LuaValue::Function)
                        .unwrap_or(LuaValue::Nil),
                    "prefs_changed" => p
                        .prefs_changed
                        .clone()
                        .map(LuaValue::Function)
                        .unwrap_or(LuaValue::Nil),
                    "prefs" => LuaValue::UserData(lua.create_userdata(Prefs {
                        proto: this.id,
                        ctx: Rc::clone(&this.ctx),
                    })?),
                    "fields" | "experts" => {
                        let v: LuaValue = ud.named_user_value(&key)?;
                        if v.is_nil() {
                            let t = lua.create_table()?;
                            drop(c);
                            ud.set_named_user_value(&key, &t)?;
                            LuaValue::Table(t)
                        } else {
                            v
                        }
                    }
                    other => {
                        return Err(lerr(
                            lua,
                            format!("Proto.{other} is not supported by moonwire"),
                        ));
                    }
                })
            },
        );
        m.add_meta_function(
            MetaMethod::NewIndex,
            |lua, (ud, key, val): (AnyUserData, String, LuaValue)| {
                let this = ud.borrow::<Proto>()?;
                let func = match &val {
                    LuaValue::Function(f) => Some(f.clone()),
                    LuaValue::Nil => None,
                    _ => None,
                };
                match key.as_str() {
                    "dissector" => this.ctx.borrow_mut().protos[this.id as usize].dissector = func,
                    "init" => this.ctx.borrow_mut().protos[this.id as usize].init = func,
                    "prefs_changed" => {
                        this.ctx.borrow_mut().protos[this.id as usize].prefs_changed = func
                    }
                    "fields" | "experts" => {
                        if let LuaValue::Table(t) = &val {
                            for v in t.clone().sequence_values::<LuaValue>() {
                                let v = v?;
                                let ok = match &v {
                                    LuaValue::UserData(u) => {
                                        u.is::<ProtoExpert>()
                                            || from_value::<ProtoField>(lua, &v).is_some()
                                    }
                                    _ => false,
                                };
                                if !ok {
                                    return Err(lerr(
                                        lua,
                                        format!(
                                            "Proto.{key}: expected a table of {}",
                                            if key == "fields" {
                                                "ProtoFields"
                                            } else {
                                                "ProtoExperts"
                                            }
                                        ),
                                    ));
                                }
                            }
                        }
                        drop(this);
                        ud.set_named_user_value(&key, val)?;
                    }
                    other => {
                        return Err(lerr(
                            lua,
                            format!("Proto.{other} cannot be set (not supported by moonwire)"),
                        ));
                    }
                }
                Ok(())
            },
        );
        m.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            let c = this.ctx.borrow();
            let p = &c.protos[this.id as usize];
            Ok(format!("Proto: {}", p.name.to_uppercase()))
        });
    }
}

impl ProtoField {
    /// The methods of `ProtoField`.
    fn add_methods(m: &mut Methods<'_, Self>) {
        m.add_meta_method(MetaMethod::ToString, |lua, this, ()| {
            let ctx = shared(lua)?;
            let c = ctx.borrow();
            let d = c.reg.get(this.id);
            Ok(format!(
                "ProtoField({}): {} {:?}",
                this.id, d.abbrev, d.ftype
            ))
        });
    }
}

impl UserData for ProtoExpert {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(format!("ProtoExpert: {}", this.abbrev))
        });
    }
}

impl UserData for PrefSpec {}

fn parse_pref(lua: &Lua, name: &str, spec: &PrefSpec, s: &str) -> mlua::Result<PrefValue> {
    let bad = || lerr(lua, format!("invalid value '{s}' for preference {name}"));
    Ok(match &spec.value {
        PrefValue::Bool(_) => match s.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => PrefValue::Bool(true),
            "false" | "0" | "no" => PrefValue::Bool(false),
            _ => return Err(bad()),
        },
        PrefValue::UInt(_) => {
            let v = if let Some(h) = s.strip_prefix("0x") {
                u32::from_str_radix(h, 16).ok()
            } else {
                s.parse::<u32>().ok()
            };
            PrefValue::UInt(v.ok_or_else(bad)?)
        }
        PrefValue::Str(_) => PrefValue::Str(s.to_string()),
        PrefValue::Enum(_) => {
            let found = spec
                .entries
                .iter()
                .find(|(n, d, _)| n.eq_ignore_ascii_case(s) || d.eq_ignore_ascii_case(s));
            match found {
                Some((_, _, v)) => PrefValue::Enum(*v),
                None => PrefValue::Enum(s.parse::<i64>().map_err(|_| bad())?),
            }
        }
    })
}

fn pref_to_lua(lua: &Lua, v: &PrefValue) -> mlua::Result<LuaValue> {
    Ok(match v {
        PrefValue::Bool(b) => LuaValue::Boolean(*b),
        PrefValue::UInt(u) => LuaValue::Integer(*u as i64),
        PrefValue::Str(s) => LuaValue::String(lua.create_string(s)?),
        PrefValue::Enum(e) => LuaValue::Integer(*e),
    })
}

impl UserData for Prefs {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_meta_method(MetaMethod::Index, |lua, this, key: String| {
            let c = this.ctx.borrow();
            match c.protos[this.proto as usize]
                .prefs
                .iter()
                .find(|p| p.name == key)
            {
                Some(p) => pref_to_lua(lua, &p.value),
                None => Ok(LuaValue::Nil),
            }
        });
        m.add_meta_method(
            MetaMethod::NewIndex,
            |lua, this, (key, spec): (String, AnyUserData)| {
                let spec = spec
                    .borrow::<PrefSpec>()
                    .map_err(|_| lerr(lua, "Prefs: can only assign a Pref"))?
                    .clone();
                let full = {
                    let c = this.ctx.borrow();
                    format!("{}.{}", c.protos[this.proto as usize].filter, key)
                };
                let over = this.ctx.borrow().pref_overrides.get(&full).cloned();
                let value = match over {
                    Some(s) => parse_pref(lua, &full, &spec, &s)?,
                    None => spec.value.clone(),
                };
                let mut c = this.ctx.borrow_mut();
                let prefs = &mut c.protos[this.proto as usize].prefs;
                prefs.retain(|p| p.name != key);
                prefs.push(PrefDef {
                    name: key,
                    value,
                    enum_entries: spec.entries,
                });
                Ok(())
            },
        );
    }
}

// ---------------------------------------------------------------- fields

fn opt_str(v: Option<&LuaValue>) -> Option<String> {
    match v {
        Some(LuaValue::String(s)) => Some(s.to_string_lossy()),
        _ => None,
    }
}

fn opt_int(v: Option<&LuaValue>) -> Option<i64> {
    match v {
        Some(LuaValue::Integer(i)) => Some(*i),
        Some(LuaValue::Number(n)) => Some(*n as i64),
        _ => None,
    }
}

fn value_strings(
    lua: &Lua,
    v: Option<&LuaValue>,
    ftype: FType,
) -> mlua::Result<Option<ValueStrings>> {
    let Some(LuaValue::Table(t)) = v else {
        return Ok(None);
    };
    if ftype == FType::Bool {
        let tr: Option<String> = t.get(1)?;
        let fa: Option<String> = t.get(2)?;
        if let (Some(a), Some(b)) = (tr, fa) {
            return Ok(Some(ValueStrings::Tfs(a, b)));
        }
    }
    // Range strings: {{lo, hi, "name"}, ...}.
    if let Ok(LuaValue::Table(first)) = t.get::<LuaValue>(1) {
        let _ = first;
        let mut ranges = Vec::new();
        for e in t.sequence_values::<Table>() {
            let e = e?;
            let lo: i64 = e.get(1)?;
            let hi: i64 = e.get(2)?;
            let name: String = e.get(3)?;
            ranges.push((lo, hi, name));
        }
        return Ok(Some(ValueStrings::Ranges(ranges)));
    }
    let mut map = AHashMap::new();
    for pair in t.pairs::<LuaValue, LuaValue>() {
        let (k, v) = pair?;
        let k = match k {
            LuaValue::Integer(i) => i,
            LuaValue::Number(n) => n as i64,
            _ => return Err(lerr(lua, "ProtoField: value string keys must be numbers")),
        };
        let v = match v {
            LuaValue::String(s) => s.to_string_lossy(),
            other => other.to_string()?,
        };
        map.insert(k, v);
    }
    Ok(Some(ValueStrings::Map(map)))
}

fn register_field(lua: &Lua, def: FieldDef) -> mlua::Result<ProtoField> {
    if def.abbrev.is_empty() || def.abbrev.contains(' ') {
        return Err(lerr(
            lua,
            format!("ProtoField: invalid filter name '{}'", def.abbrev),
        ));
    }
    let ctx = shared(lua)?;
    let id = ctx.borrow_mut().reg.add(def);
    Ok(ProtoField { id })
}

/// `ProtoField.<type>(abbr, [name], ...)` for the given type.
fn field_ctor(lua: &Lua, ftype: FType, args: &[LuaValue]) -> mlua::Result<ProtoField> {
    let abbrev =
        opt_str(args.first()).ok_or_else(|| lerr(lua, "ProtoField: missing filter name"))?;
    let name = opt_str(args.get(1)).unwrap_or_else(|| abbrev.clone());
    let mut def = FieldDef::simple(&abbrev, &name, ftype, FieldKind::Value);
    match ftype {
        t if t.is_uint() || t.is_int() => {
            if let Some(b) = opt_int(args.get(2)) {
                def.base = b as u32;
            }
            if !matches!(
                def.base,
                base::DEC | base::HEX | base::OCT | base::DEC_HEX | base::HEX_DEC | base::NONE
            ) {
                return Err(lerr(
                    lua,
                    format!(
                        "ProtoField {abbrev}: base {} is not supported by moonwire",
                        def.base
                    ),
                ));
            }
            if def.base == base::NONE {
                def.base = base::DEC;
            }
            def.vs = value_strings(lua, args.get(3), ftype)?;
            def.mask = opt_int(args.get(4)).unwrap_or(0) as u64;
            def.descr = opt_str(args.get(5)).unwrap_or_default();
        }
        FType::Bool => {
            def.base = opt_int(args.get(2)).unwrap_or(0) as u32;
            def.vs = value_strings(lua, args.get(3), ftype)?;
            def.mask = opt_int(args.get(4)).unwrap_or(0) as u64;
            def.descr = opt_str(args.get(5)).unwrap_or_default();
        }
        FType::Float | FType::Double => {
            def.vs = value_strings(lua, args.get(2), ftype)?;
            def.descr = opt_str(args.get(3)).unwrap_or_default();
        }
        FType::String | FType::Stringz | FType::Bytes | FType::UBytes | FType::AbsTime => {
            def.base = opt_int(args.get(2)).unwrap_or(0) as u32;
            def.descr = opt_str(args.get(3)).unwrap_or_default();
        }
        _ => {
            def.descr = opt_str(args.get(2)).unwrap_or_default();
        }
    }
    register_field(lua, def)
}

/// `ProtoField.new(name, abbr, type, [valuestring], [base], [mask], [desc])`.
fn field_new(lua: &Lua, args: Variadic<LuaValue>) -> mlua::Result<ProtoField> {
    let name = opt_str(args.first()).ok_or_else(|| lerr(lua, "ProtoField.new: missing name"))?;
    let abbrev =
        opt_str(args.get(1)).ok_or_else(|| lerr(lua, "ProtoField.new: missing filter name"))?;
    let code = opt_int(args.get(2)).ok_or_else(|| lerr(lua, "ProtoField.new: missing type"))?;
    let ftype = FType::from_code(code as u32).ok_or_else(|| {
        lerr(
            lua,
            format!("ProtoField.new: type {code} is not supported by moonwire"),
        )
    })?;
    let mut def = FieldDef::simple(&abbrev, &name, ftype, FieldKind::Value);
    def.vs = value_strings(lua, args.get(3), ftype)?;
    if let Some(b) = opt_int(args.get(4)) {
        def.base = b as u32;
    }
    def.mask = opt_int(args.get(5)).unwrap_or(0) as u64;
    def.descr = opt_str(args.get(6)).unwrap_or_default();
    register_field(lua, def)
}

// ---------------------------------------------------------------- TreeItem

/// `TreeItem`.
#[derive(Clone, Copy)]
pub struct TreeItem {
    pub(crate) ctx: CtxRef,
    pub(crate) node: NodeId,
    pub(crate) epoch: u32,
}

impl Plain for TreeItem {
    const NAME: &'static str = "TreeItem";
    fn key() -> *const std::ffi::c_void {
        static KEY: u8 = 0;
        &KEY as *const u8 as *const std::ffi::c_void
    }
}

impl FromLua for TreeItem {
    fn from_lua(v: LuaValue, lua: &Lua) -> mlua::Result<Self> {
        from_value::<TreeItem>(lua, &v)
            .ok_or_else(|| conversion_error_of::<TreeItem>(v.type_name()))
    }
    unsafe fn from_stack(idx: std::ffi::c_int, lua: &RawLua) -> mlua::Result<Self> {
        unsafe { plain::from_stack::<TreeItem>(idx, lua) }
    }
}

/// Registry key of the shared null item.
static NULL_ITEM: u8 = 0;

fn null_item_key() -> *const std::ffi::c_void {
    &NULL_ITEM as *const u8 as *const std::ffi::c_void
}

impl IntoLua for TreeItem {
    fn into_lua(self, lua: &Lua) -> mlua::Result<LuaValue> {
        plain::to_value(lua, self)
    }
    unsafe fn push_into_stack(self, lua: &RawLua) -> mlua::Result<()> {
        let state = lua.state();
        if self.node != NO_NODE {
            return unsafe { plain::push(state, self) };
        }
        unsafe { push_null_item(state, self) }
    }
}

/// Pushes a null item of `item`'s packet. All null items of a packet
/// behave the same, so adding to the null tree hands out one shared object
/// per packet instead of new garbage (it expires with its packet, as
/// every TreeItem does).
///
/// # Safety
/// `state` is a valid Lua state.
pub unsafe fn push_null_item(state: *mut ffi::lua_State, item: TreeItem) -> mlua::Result<()> {
    unsafe {
        if ffi::lua_checkstack(state, 4) == 0 {
            return Err(mlua::Error::StackError);
        }
        ffi::lua_rawgetp(state, ffi::LUA_REGISTRYINDEX, null_item_key());
        if plain::test::<TreeItem>(state, -1).is_some_and(|n| n.epoch == item.epoch) {
            return Ok(());
        }
        ffi::lua_pop(state, 1);
        let null = TreeItem {
            node: NO_NODE,
            ..item
        };
        plain::push(state, null)?;
        // The key exists (set by `install`): storing allocates nothing.
        ffi::lua_pushvalue(state, -1);
        ffi::lua_rawsetp(state, ffi::LUA_REGISTRYINDEX, null_item_key());
        Ok(())
    }
}

/// An argument of `TreeItem:add`: Tvb and TvbRange objects are told apart
/// on the stack, without making a Lua value reference for them.
enum AddArg {
    Range(TvbRange),
    Tvb(Tvb),
    Field(FieldId),
    Value(LuaValue),
}

impl AddArg {
    fn is_nil(&self) -> bool {
        matches!(self, AddArg::Value(LuaValue::Nil))
    }

    /// The argument as a Lua value (plain objects are remade).
    fn value(&self, lua: &Lua) -> mlua::Result<LuaValue> {
        match self {
            AddArg::Range(r) => plain::to_value(lua, *r),
            AddArg::Tvb(t) => plain::to_value(lua, *t),
            AddArg::Field(id) => plain::to_value(lua, ProtoField { id: *id }),
            AddArg::Value(v) => Ok(v.clone()),
        }
    }

    fn label(&self) -> Option<String> {
        match self {
            AddArg::Value(v) => label_arg(v),
            _ => None,
        }
    }
}

impl FromLua for AddArg {
    fn from_lua(v: LuaValue, lua: &Lua) -> mlua::Result<Self> {
        if let Some(r) = from_value::<TvbRange>(lua, &v) {
            return Ok(AddArg::Range(r));
        }
        if let Some(t) = from_value::<Tvb>(lua, &v) {
            return Ok(AddArg::Tvb(t));
        }
        if let Some(f) = from_value::<ProtoField>(lua, &v) {
            return Ok(AddArg::Field(f.id));
        }
        Ok(AddArg::Value(v))
    }
    unsafe fn from_stack(idx: std::ffi::c_int, lua: &RawLua) -> mlua::Result<Self> {
        let state = lua.state();
        unsafe {
            // One metatable lookup tells the plain classes apart.
            let class = plain::class_of(state, idx);
            if !class.is_null() {
                if std::ptr::eq(class, TvbRange::key())
                    && let Some(r) = plain::read::<TvbRange>(state, idx)
                {
                    return Ok(AddArg::Range(r));
                }
                if std::ptr::eq(class, ProtoField::key())
                    && let Some(f) = plain::read::<ProtoField>(state, idx)
                {
                    return Ok(AddArg::Field(f.id));
                }
                if std::ptr::eq(class, Tvb::key())
                    && let Some(t) = plain::read::<Tvb>(state, idx)
                {
                    return Ok(AddArg::Tvb(t));
                }
            }
            Ok(AddArg::Value(LuaValue::from_stack(idx, lua)?))
        }
    }
}

/// Decodes a field value from bytes, as `proto_tree_add_item` does.
pub fn decode_value(def: &FieldDef, b: &[u8], le: bool) -> Result<(Value, u64), String> {
    let uint = |max: usize| -> Result<u64, String> {
        if b.is_empty() || b.len() > max {
            return Err(format!(
                "Trying to fetch an integer of {} bytes for field {}",
                b.len(),
                def.abbrev
            ));
        }
        Ok(if le {
            b.iter().rev().fold(0u64, |a, x| (a << 8) | *x as u64)
        } else {
            b.iter().fold(0u64, |a, x| (a << 8) | *x as u64)
        })
    };
    let masked = |raw: u64| -> u64 {
        if def.mask != 0 {
            (raw & def.mask) >> def.mask.trailing_zeros()
        } else {
            raw
        }
    };
    Ok(match def.ftype {
        FType::None | FType::Protocol => (Value::None, 0),
        t if t.is_uint() => {
            let raw = uint(if t == FType::U64 { 8 } else { 4 })?;
            (Value::U(masked(raw)), raw)
        }
        t if t.is_int() => {
            let raw = uint(if t == FType::I64 { 8 } else { 4 })?;
            let v = masked(raw);
            let bits = if def.mask != 0 {
                64 - (def.mask >> def.mask.trailing_zeros()).leading_zeros()
            } else {
                b.len() as u32 * 8
            };
            let sv = if bits >= 64 {
                v as i64
            } else {
                ((v << (64 - bits)) as i64) >> (64 - bits)
            };
            (Value::I(sv), raw)
        }
        FType::Bool => {
            let raw = uint(8)?;
            let v = if def.mask != 0 { raw & def.mask } else { raw };
            (Value::Bool(v), raw)
        }
        FType::Float | FType::Double => {
            let f = match b.len() {
                4 => {
                    let a = [b[0], b[1], b[2], b[3]];
                    (if le {
                        f32::from_le_bytes(a)
                    } else {
                        f32::from_be_bytes(a)
                    }) as f64
                }
                8 => {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    if le {
                        f64::from_le_bytes(a)
                    } else {
                        f64::from_be_bytes(a)
                    }
                }
                n => return Err(format!("cannot decode a {n}-byte float for {}", def.abbrev)),
            };
            (Value::F(f), 0)
        }
        FType::String => (Value::Str(bytes_to_string(b)), 0),
        FType::Stringz => {
            let end = b.iter().position(|&x| x == 0).unwrap_or(b.len());
            (Value::Str(bytes_to_string(&b[..end])), 0)
        }
        FType::Bytes => (Value::Bytes(b.to_vec()), 0),
        FType::UBytes => {
            let data = if b.is_empty() { b } else { &b[1..] };
            (Value::Bytes(data.to_vec()), 0)
        }
        FType::Ipv4 => {
            if b.len() != 4 {
                return Err(format!("an IPv4 field needs 4 bytes ({})", def.abbrev));
            }
            let mut a = [b[0], b[1], b[2], b[3]];
            if le {
                a.reverse();
            }
            (Value::Ipv4(a), 0)
        }
        FType::Ipv6 => {
            let a: [u8; 16] = b
                .try_into()
                .map_err(|_| format!("an IPv6 field needs 16 bytes ({})", def.abbrev))?;
            (Value::Ipv6(a), 0)
        }
        FType::Ether => {
            let a: [u8; 6] = b
                .try_into()
                .map_err(|_| format!("an Ethernet field needs 6 bytes ({})", def.abbrev))?;
            (Value::Ether(a), 0)
        }
        FType::Guid => {
            let mut a: [u8; 16] = b
                .try_into()
                .map_err(|_| format!("a GUID field needs 16 bytes ({})", def.abbrev))?;
            if le {
                a[0..4].reverse();
                a[4..6].reverse();
                a[6..8].reverse();
            }
            (Value::Guid(a), 0)
        }
        FType::AbsTime | FType::RelTime => {
            if b.len() != 8 && b.len() != 4 {
                return Err(format!("a time field needs 4 or 8 bytes ({})", def.abbrev));
            }
            let rd = |x: &[u8]| {
                let a = [x[0], x[1], x[2], x[3]];
                if le {
                    u32::from_le_bytes(a)
                } else {
                    u32::from_be_bytes(a)
                }
            };
            let secs = rd(&b[0..4]) as i64;
            let nanos = if b.len() == 8 { rd(&b[4..8]) } else { 0 };
            (Value::Time(secs, nanos), 0)
        }
        _ => (Value::None, 0),
    })
}

fn lua_int(lua: &Lua, v: &LuaValue) -> mlua::Result<i64> {
    match v {
        LuaValue::Integer(i) => Ok(*i),
        LuaValue::Number(n) => Ok(*n as i64),
        LuaValue::Boolean(b) => Ok(*b as i64),
        LuaValue::String(s) => s
            .to_str()
            .ok()
            .and_then(|s| {
                let s = s.trim();
                s.parse::<i64>()
                    .ok()
                    .or_else(|| s.parse::<f64>().ok().map(|f| f as i64))
            })
            .ok_or_else(|| lerr(lua, "bad argument to 'add' (number expected, got string)")),
        other => Err(lerr(
            lua,
            format!(
                "bad argument to 'add' (number expected, got {})",
                other.type_name()
            ),
        )),
    }
}

/// Converts a Lua value given to `TreeItem:add` into a field value.
fn value_from_lua(lua: &Lua, def: &FieldDef, v: &LuaValue) -> mlua::Result<(Value, u64)> {
    let shift = if def.mask != 0 {
        def.mask.trailing_zeros()
    } else {
        0
    };
    Ok(match def.ftype {
        FType::None | FType::Protocol => (Value::None, 0),
        t if t.is_uint() => {
            let u = lua_int(lua, v)? as u64;
            (Value::U(u), u << shift)
        }
        t if t.is_int() => {
            let i = lua_int(lua, v)?;
            (Value::I(i), (i as u64) << shift)
        }
        FType::Bool => {
            let b = match v {
                LuaValue::Boolean(b) => *b as u64,
                other => lua_int(lua, other)? as u64,
            };
            let raw = if def.mask != 0 && b != 0 { def.mask } else { b };
            (Value::Bool(raw), raw)
        }
        FType::Float | FType::Double => (
            Value::F(match v {
                LuaValue::Number(n) => *n,
                other => lua_int(lua, other)? as f64,
            }),
            0,
        ),
        FType::String | FType::Stringz => (
            Value::Str(match v {
                LuaValue::String(s) => s.to_string_lossy(),
                other => other.to_string()?,
            }),
            0,
        ),
        FType::Bytes | FType::UBytes => match v {
            LuaValue::UserData(u) if u.is::<ByteArray>() => {
                (Value::Bytes(u.borrow::<ByteArray>()?.0.clone()), 0)
            }
            LuaValue::String(s) => (Value::Bytes(s.as_bytes().to_vec()), 0),
            _ => return Err(lerr(lua, "bad argument to 'add' (ByteArray expected)")),
        },
        FType::Ipv4 | FType::Ipv6 | FType::Ether => {
            let a = match v {
                LuaValue::UserData(u) if u.is::<Address>() => u.borrow::<Address>()?.0,
                LuaValue::Integer(i) => Addr::V4((*i as u32).to_be_bytes()),
                LuaValue::String(s) => parse_addr(&s.to_string_lossy())
                    .ok_or_else(|| lerr(lua, "bad argument to 'add' (Address expected)"))?,
                _ => return Err(lerr(lua, "bad argument to 'add' (Address expected)")),
            };
            (
                match a {
                    Addr::V4(x) => Value::Ipv4(x),
                    Addr::V6(x) => Value::Ipv6(x),
                    Addr::Ether(x) => Value::Ether(x),
                    Addr::None => Value::None,
                },
                0,
            )
        }
        FType::AbsTime | FType::RelTime => {
            let f = match v {
                LuaValue::Number(n) => *n,
                other => lua_int(lua, other)? as f64,
            };
            (
                Value::Time(f.floor() as i64, ((f - f.floor()) * 1e9).round() as u32),
                0,
            )
        }
        _ => (Value::None, 0),
    })
}

/// Runs `f` on a label argument's text, borrowing Lua strings instead of
/// copying them (column writes happen for every packet).
fn with_label<R>(v: &LuaValue, f: impl FnOnce(&str) -> R) -> R {
    if let LuaValue::String(s) = v
        && let Ok(b) = s.to_str()
    {
        return f(&b);
    }
    f(&label_arg(v).unwrap_or_default())
}

fn label_arg(v: &LuaValue) -> Option<String> {
    match v {
        LuaValue::String(s) => Some(s.to_string_lossy()),
        LuaValue::Integer(i) => Some(i.to_string()),
        LuaValue::Number(n) => Some(crate::fields::fmt_g(*n, 14)),
        _ => None,
    }
}

enum AddTarget {
    Field(FieldId),
    Proto(FieldId),
    Text,
}

impl TreeItem {
    fn check(&self, lua: &Lua) -> mlua::Result<()> {
        if self.ctx.borrow().epoch != self.epoch {
            return Err(lerr(lua, "expired TreeItem"));
        }
        Ok(())
    }

    fn child(&self, node: NodeId) -> TreeItem {
        TreeItem {
            ctx: self.ctx,
            node,
            epoch: self.epoch,
        }
    }

    fn add_any(&self, lua: &Lua, args: &[AddArg], le: bool) -> mlua::Result<TreeItem> {
        self.check(lua)?;
        let mut i = 0;
        let target = match args.first() {
            Some(AddArg::Field(f)) => {
                i = 1;
                AddTarget::Field(*f)
            }
            Some(AddArg::Value(LuaValue::UserData(u))) if u.is::<Proto>() => {
                i = 1;
                let id = u.borrow::<Proto>()?.id;
                AddTarget::Proto(self.ctx.borrow().protos[id as usize].field)
            }
            _ => AddTarget::Text,
        };
        let range = match args.get(i) {
            Some(AddArg::Range(r)) => {
                i += 1;
                if r.tvb.epoch != self.ctx.borrow().epoch {
                    return Err(lerr(lua, "expired TvbRange"));
                }
                // Where the bytes are; read only if a tree item is built.
                Some((r.len, r.tvb.buf, r.tvb.off + r.off))
            }
            Some(AddArg::Tvb(_)) => {
                return Err(lerr(
                    lua,
                    "TreeItem:add(): expected a TvbRange, got a Tvb (use tvb())",
                ));
            }
            _ => None,
        };
        let rest = &args[i.min(args.len())..];
        if self.node == NO_NODE || !self.ctx.borrow().build_tree {
            // Null tree: nothing is built, but values are still checked so
            // a script fails the same way with or without output.
            if let AddTarget::Field(f) = target
                && let Some(v) = rest.first()
            {
                let v = v.value(lua)?;
                let c = self.ctx.borrow();
                value_from_lua(lua, c.reg.get(f), &v)?;
            }
            return Ok(self.child(NO_NODE));
        }
        let len = range.as_ref().map(|r| r.0).unwrap_or(0);
        let (node, labels) = match target {
            AddTarget::Proto(f) => {
                let n = self
                    .ctx
                    .borrow_mut()
                    .tree
                    .add(self.node, f, Value::None, len);
                (n, rest)
            }
            AddTarget::Field(f) => {
                // The registry borrow is not held across any call into Lua.
                let first = match rest.first() {
                    Some(v) => Some(v.value(lua)?),
                    None => None,
                };
                let (value, raw, labels) = {
                    let c = self.ctx.borrow();
                    let def = c.reg.get(f);
                    if let Some(v) = &first {
                        let (val, raw) = value_from_lua(lua, def, v)?;
                        (val, raw, &rest[1..])
                    } else if let Some((rlen, buf, start)) = range {
                        let b = &c.bufs[buf as usize];
                        let s = (start as usize).min(b.len());
                        let e = (s + rlen as usize).min(b.len());
                        let (val, raw) =
                            decode_value(def, &b[s..e], le).map_err(|e| lerr(lua, e))?;
                        (val, raw, rest)
                    } else {
                        (Value::None, 0, rest)
                    }
                };
                let mut c = self.ctx.borrow_mut();
                let n = c.tree.add(self.node, f, value, len);
                if let Some(node) = c.tree.node_mut(n) {
                    node.raw = raw;
                }
                (n, labels)
            }
            AddTarget::Text => {
                let text = rest.first().and_then(AddArg::label).unwrap_or_default();
                let n = self.ctx.borrow_mut().tree.add_text(self.node, text, len);
                (n, if rest.is_empty() { rest } else { &rest[1..] })
            }
        };
        let mut c = self.ctx.borrow_mut();
        let mut first = matches!(target, AddTarget::Field(_) | AddTarget::Proto(_));
        for l in labels {
            let Some(s) = l.label() else { continue };
            if first {
                if let Some(n) = c.tree.node_mut(node) {
                    n.text = Some(s);
                }
                first = false;
            } else {
                let c = &mut *c;
                c.tree.append_text(&c.reg, node, &format!(" {s}"));
            }
        }
        Ok(self.child(node))
    }

    fn add_expert(&self, e: Expert) {
        if self.node == NO_NODE {
            return;
        }
        let mut c = self.ctx.borrow_mut();
        if c.build_tree {
            c.tree.add_expert(self.node, e);
        }
    }
}

fn severity_abbrev(sev: u32) -> &'static str {
    match sev {
        severity::COMMENT => "comment",
        severity::CHAT => "chat",
        severity::NOTE => "note",
        severity::WARN => "warning",
        _ => "error",
    }
}

/// `TreeItem:add` arguments: the usual four taken one by one, so a call
/// allocates nothing; more go to the (then allocated) rest.
type AddArgs = (TreeItem, AddArg, AddArg, AddArg, AddArg, Variadic<LuaValue>);

fn add_fn(
    lua: &Lua,
    this: TreeItem,
    first: [AddArg; 4],
    rest: Variadic<LuaValue>,
    le: bool,
) -> mlua::Result<TreeItem> {
    if rest.is_empty() {
        // Trailing nils are absent arguments.
        let n = first.iter().rposition(|v| !v.is_nil()).map_or(0, |i| i + 1);
        this.add_any(lua, &first[..n], le)
    } else {
        let mut all: Vec<AddArg> = first.into_iter().collect();
        all.extend(rest.into_iter().map(AddArg::Value));
        this.add_any(lua, &all, le)
    }
}

impl TreeItem {
    /// The methods of `TreeItem`.
    pub(crate) fn add_methods(m: &mut Methods<'_, Self>) {
        m.add_function("add", |lua, (this, a, b, c, d, rest): AddArgs| {
            add_fn(lua, this, [a, b, c, d], rest, false)
        });
        m.add_function("add_le", |lua, (this, a, b, c, d, rest): AddArgs| {
            add_fn(lua, this, [a, b, c, d], rest, true)
        });
        m.add_method("add_packet_field", |lua, this, args: Variadic<LuaValue>| {
            // (field, [tvbrange], encoding, [label...]) -> item, value, next offset
            let mut a: Vec<AddArg> = args
                .into_iter()
                .map(|v| AddArg::from_lua(v, lua))
                .collect::<mlua::Result<_>>()?;
            let (enc_pos, range_info) = match a.get(1) {
                Some(AddArg::Range(r)) => (2, Some((r.off + r.len, r.bytes_vec()))),
                _ => (1, None),
            };
            let enc = match a.get(enc_pos) {
                Some(AddArg::Value(v)) => opt_int(Some(v)).unwrap_or(0),
                _ => 0,
            };
            if enc_pos < a.len() {
                a.remove(enc_pos);
            }
            let le = enc & 0x8000_0000 != 0;
            let field = match a.first() {
                Some(AddArg::Field(f)) => *f,
                _ => {
                    return Err(lerr(
                        lua,
                        "TreeItem:add_packet_field(): expected a ProtoField",
                    ));
                }
            };
            let item = this.add_any(lua, &a, le)?;
            let (next, value) = match range_info {
                Some((end, bytes)) => {
                    let def = this.ctx.borrow().reg.get(field).clone();
                    let (v, _) = decode_value(&def, &bytes, le).map_err(|e| lerr(lua, e))?;
                    (end as i64, value_to_lua(lua, &v)?)
                }
                None => (0, LuaValue::Nil),
            };
            Ok((item, value, next))
        });
        m.add_method(
            "add_expert_info",
            |lua, this, (g, s, text): (Option<u32>, Option<u32>, Option<String>)| {
                this.check(lua)?;
                let sev = s.unwrap_or(severity::CHAT);
                this.add_expert(Expert {
                    abbrev: format!("_ws.lua.proto.{}", severity_abbrev(sev)),
                    message: text.unwrap_or_else(|| "Expert Info".into()),
                    severity: sev,
                    group: g.unwrap_or(group::DEBUG),
                });
                Ok(*this)
            },
        );
        m.add_method(
            "add_proto_expert_info",
            |lua, this, (e, text): (AnyUserData, Option<String>)| {
                this.check(lua)?;
                let e = e.borrow::<ProtoExpert>().map_err(|_| {
                    lerr(
                        lua,
                        "TreeItem:add_proto_expert_info(): expected a ProtoExpert",
                    )
                })?;
                this.add_expert(Expert {
                    abbrev: e.abbrev.clone(),
                    message: text.unwrap_or_else(|| e.text.clone()),
                    severity: e.severity,
                    group: e.group,
                });
                Ok(*this)
            },
        );
        m.add_method(
            "add_tvb_expert_info",
            |lua, this, (e, _r, text): (AnyUserData, AnyUserData, Option<String>)| {
                this.check(lua)?;
                let e = e.borrow::<ProtoExpert>().map_err(|_| {
                    lerr(
                        lua,
                        "TreeItem:add_tvb_expert_info(): expected a ProtoExpert",
                    )
                })?;
                this.add_expert(Expert {
                    abbrev: e.abbrev.clone(),
                    message: text.unwrap_or_else(|| e.text.clone()),
                    severity: e.severity,
                    group: e.group,
                });
                Ok(*this)
            },
        );
        m.add_method("set_text", |lua, this, s: String| {
            this.check(lua)?;
            if let Some(n) = this.ctx.borrow_mut().tree.node_mut(this.node) {
                n.text = Some(s);
            }
            Ok(*this)
        });
        m.add_method("append_text", |lua, this, s: LuaValue| {
            this.check(lua)?;
            let s = label_arg(&s).unwrap_or_default();
            let mut c = this.ctx.borrow_mut();
            let c = &mut *c;
            c.tree.append_text(&c.reg, this.node, &s);
            Ok(*this)
        });
        m.add_method("prepend_text", |lua, this, s: LuaValue| {
            this.check(lua)?;
            let s = label_arg(&s).unwrap_or_default();
            let mut c = this.ctx.borrow_mut();
            let c = &mut *c;
            c.tree.prepend_text(&c.reg, this.node, &s);
            Ok(*this)
        });
        m.add_method("get_text", |lua, this, ()| {
            this.check(lua)?;
            let c = this.ctx.borrow();
            Ok(if this.node == NO_NODE {
                None
            } else {
                Some(c.tree.label(&c.reg, this.node))
            })
        });
        m.add_method("set_len", |lua, this, len: u32| {
            this.check(lua)?;
            if let Some(n) = this.ctx.borrow_mut().tree.node_mut(this.node) {
                n.len = len;
            }
            Ok(*this)
        });
        m.add_method("set_generated", |lua, this, b: Option<bool>| {
            this.check(lua)?;
            if let Some(n) = this.ctx.borrow_mut().tree.node_mut(this.node) {
                n.generated = b.unwrap_or(true);
            }
            Ok(*this)
        });
        m.add_method("set_hidden", |lua, this, b: Option<bool>| {
            this.check(lua)?;
            if let Some(n) = this.ctx.borrow_mut().tree.node_mut(this.node) {
                n.hidden = b.unwrap_or(true);
            }
            Ok(*this)
        });
        m.add_method("referenced", |_, _this, _f: LuaValue| Ok(true));
        m.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(format!("TreeItem: {}", this.node))
        });
    }
}

/// Converts a field value to Lua (for `add_packet_field`).
pub fn value_to_lua(lua: &Lua, v: &Value) -> mlua::Result<LuaValue> {
    Ok(match v {
        Value::None => LuaValue::Nil,
        Value::U(u) => LuaValue::Integer(*u as i64),
        Value::I(i) => LuaValue::Integer(*i),
        Value::Bool(b) => LuaValue::Boolean(*b != 0),
        Value::F(f) => LuaValue::Number(*f),
        Value::Str(s) => LuaValue::String(lua.create_string(s)?),
        Value::Bytes(b) => LuaValue::UserData(lua.create_userdata(ByteArray(b.clone()))?),
        Value::Ipv4(a) => LuaValue::UserData(lua.create_userdata(Address(Addr::V4(*a)))?),
        Value::Ipv6(a) => LuaValue::UserData(lua.create_userdata(Address(Addr::V6(*a)))?),
        Value::Ether(a) => LuaValue::UserData(lua.create_userdata(Address(Addr::Ether(*a)))?),
        Value::Time(s, n) => LuaValue::Number(*s as f64 + *n as f64 / 1e9),
        Value::Guid(g) => LuaValue::String(lua.create_string(crate::fields::guid_string(g))?),
    })
}

// ---------------------------------------------------------------- Pinfo

/// `Pinfo`.
pub struct Pinfo {
    ctx: Shared,
}

/// `Columns`.
pub struct Columns {
    ctx: Shared,
}

/// `Column`.
pub struct Column {
    ctx: Shared,
    idx: usize,
}

/// `pinfo.private`.
pub struct PrivateTable {
    ctx: Shared,
}

fn column_index(lua: &Lua, name: &str) -> mlua::Result<usize> {
    let name = match name {
        "source" => "src",
        "destination" => "dst",
        "proto" => "protocol",
        n => n,
    };
    COLUMN_NAMES.iter().position(|c| *c == name).ok_or_else(|| {
        lerr(
            lua,
            format!("Columns: column '{name}' is not supported by moonwire"),
        )
    })
}

fn addr_value(lua: &Lua, a: Addr) -> mlua::Result<LuaValue> {
    Ok(LuaValue::UserData(lua.create_userdata(Address(a))?))
}

/// Registry key of the `Columns` object.
static COLUMNS_KEY: u8 = 0;

fn columns_key() -> *const std::ffi::c_void {
    &COLUMNS_KEY as *const u8 as *const std::ffi::c_void
}

/// What `pinfo.<key>` gives: a value, or the one `Columns` object.
enum PinfoValue {
    Value(LuaValue),
    Columns,
}

impl IntoLua for PinfoValue {
    fn into_lua(self, lua: &Lua) -> mlua::Result<LuaValue> {
        match self {
            PinfoValue::Value(v) => Ok(v),
            PinfoValue::Columns => {
                // SAFETY: replaces the pushed nil by one registry value.
                unsafe {
                    lua.exec_raw(LuaValue::Nil, |state| {
                        ffi::lua_pop(state, 1);
                        ffi::lua_rawgetp(state, ffi::LUA_REGISTRYINDEX, columns_key());
                    })
                }
            }
        }
    }
    unsafe fn push_into_stack(self, lua: &RawLua) -> mlua::Result<()> {
        match self {
            PinfoValue::Value(v) => unsafe { lua.push_value(&v) },
            PinfoValue::Columns => unsafe {
                let state = lua.state();
                if ffi::lua_checkstack(state, 1) == 0 {
                    return Err(mlua::Error::StackError);
                }
                ffi::lua_rawgetp(state, ffi::LUA_REGISTRYINDEX, columns_key());
                Ok(())
            },
        }
    }
}

impl UserData for Pinfo {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_meta_method(MetaMethod::Index, |lua, this, key: mlua::LuaString| {
            // Borrowed key: no allocation per attribute read.
            let key = key.to_str()?;
            if matches!(&*key, "cols" | "columns") {
                // Pushed straight from the registry: read for every packet.
                return Ok(PinfoValue::Columns);
            }
            let c = this.ctx.borrow();
            let p = &c.pinfo;
            Ok(PinfoValue::Value(match &*key {
                "number" => LuaValue::Integer(p.number as i64),
                "len" => LuaValue::Integer(p.len as i64),
                "caplen" => LuaValue::Integer(p.caplen as i64),
                "abs_ts" => LuaValue::Number(p.abs_sec as f64 + p.abs_nsec as f64 / 1e9),
                "rel_ts" => LuaValue::Number(p.rel_ts),
                "delta_ts" | "delta_dis_ts" => LuaValue::Number(p.delta_ts),
                "visited" => LuaValue::Boolean(p.visited),
                "src" => addr_value(lua, p.src)?,
                "dst" => addr_value(lua, p.dst)?,
                "net_src" => addr_value(lua, p.net_src)?,
                "net_dst" => addr_value(lua, p.net_dst)?,
                "dl_src" => addr_value(lua, p.dl_src)?,
                "dl_dst" => addr_value(lua, p.dl_dst)?,
                "lo" => addr_value(lua, p.src.min(p.dst))?,
                "hi" => addr_value(lua, p.src.max(p.dst))?,
                "src_port" => LuaValue::Integer(p.src_port as i64),
                "dst_port" => LuaValue::Integer(p.dst_port as i64),
                "port_type" => LuaValue::Integer(p.port_type as i64),
                "match" | "match_uint" => LuaValue::Integer(p.match_uint as i64),
                "match_string" => match &p.match_string {
                    Some(s) => LuaValue::String(lua.create_string(s)?),
                    None => LuaValue::Nil,
                },
                "curr_proto" => LuaValue::String(lua.create_string(&p.curr_proto)?),
                "desegment_len" => LuaValue::Integer(p.desegment_len as i64),
                "desegment_offset" => LuaValue::Integer(p.desegment_offset as i64),
                "can_desegment" => LuaValue::Integer(p.can_desegment as i64),
                "fragmented" | "in_error_pkt" => LuaValue::Boolean(false),
                "p2p_dir" => LuaValue::Integer(-1),
                "private" => LuaValue::UserData(lua.create_userdata(PrivateTable {
                    ctx: Rc::clone(&this.ctx),
                })?),
                "conversation" => {
                    drop(c);
                    let id = this.ctx.borrow_mut().pinfo_conversation(true);
                    match id {
                        Some(id) => LuaValue::UserData(lua.create_userdata(Conversation { id })?),
                        None => LuaValue::Nil,
                    }
                }
                other => {
                    return Err(lerr(
                        lua,
                        format!("Pinfo.{other} is not supported by moonwire"),
                    ));
                }
            }))
        });
        m.add_meta_method(
            MetaMethod::NewIndex,
            |lua, this, (key, val): (String, LuaValue)| {
                let int = |v: &LuaValue| lua_int(lua, v);
                match key.as_str() {
                    "desegment_len" => {
                        this.ctx.borrow_mut().pinfo.desegment_len = int(&val)? as u32
                    }
                    "desegment_offset" => {
                        this.ctx.borrow_mut().pinfo.desegment_offset = int(&val)? as u32
                    }
                    "can_desegment" => this.ctx.borrow_mut().pinfo.can_desegment = int(&val)? != 0,
                    "src_port" => this.ctx.borrow_mut().pinfo.src_port = int(&val)? as u32,
                    "dst_port" => this.ctx.borrow_mut().pinfo.dst_port = int(&val)? as u32,
                    "src" | "dst" | "net_src" | "net_dst" | "dl_src" | "dl_dst" => {
                        let a = match &val {
                            LuaValue::UserData(u) => u.borrow::<Address>()?.0,
                            _ => return Err(lerr(lua, format!("Pinfo.{key}: Address expected"))),
                        };
                        let mut c = this.ctx.borrow_mut();
                        let p = &mut c.pinfo;
                        match key.as_str() {
                            "src" => p.src = a,
                            "dst" => p.dst = a,
                            "net_src" => p.net_src = a,
                            "net_dst" => p.net_dst = a,
                            "dl_src" => p.dl_src = a,
                            _ => p.dl_dst = a,
                        }
                    }
                    "conversation" => {
                        let h = handle_of(lua, &val)?;
                        let mut c = this.ctx.borrow_mut();
                        if let Some(id) = c.pinfo_conversation(true) {
                            c.conv_dissector.insert(id, h);
                        }
                    }
                    other => {
                        return Err(lerr(
                            lua,
                            format!("Pinfo.{other} cannot be set (not supported by moonwire)"),
                        ));
                    }
                }
                Ok(())
            },
        );
    }
}

impl UserData for Columns {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_meta_method(MetaMethod::Index, |lua, _this, key: mlua::LuaString| {
            let idx = column_index(lua, &key.to_str()?)?;
            lua.app_data_ref::<Handles>()
                .and_then(|h| h.column_objs.get(idx).cloned())
                .ok_or_else(|| lerr(lua, "moonwire: columns missing"))
        });
        m.add_meta_method(
            MetaMethod::NewIndex,
            |lua, this, (key, val): (mlua::LuaString, LuaValue)| {
                let idx = column_index(lua, &key.to_str()?)?;
                if let LuaValue::UserData(u) = &val
                    && u.is::<Column>()
                {
                    let o = u.borrow::<Column>()?;
                    let s = this.ctx.borrow().cols[o.idx].text.clone();
                    this.ctx.borrow_mut().cols[idx].set(&s);
                    return Ok(());
                }
                with_label(&val, |s| this.ctx.borrow_mut().cols[idx].set(s));
                Ok(())
            },
        );
    }
}

impl UserData for Column {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("set", |_, this, s: LuaValue| {
            with_label(&s, |t| this.ctx.borrow_mut().cols[this.idx].set(t));
            Ok(())
        });
        m.add_method("append", |_, this, s: LuaValue| {
            with_label(&s, |t| this.ctx.borrow_mut().cols[this.idx].append(t));
            Ok(())
        });
        m.add_method("prepend", |_, this, s: LuaValue| {
            with_label(&s, |t| this.ctx.borrow_mut().cols[this.idx].prepend(t));
            Ok(())
        });
        m.add_method("clear", |_, this, ()| {
            this.ctx.borrow_mut().cols[this.idx].clear();
            Ok(())
        });
        m.add_method("fence", |_, this, ()| {
            this.ctx.borrow_mut().cols[this.idx].fence();
            Ok(())
        });
        m.add_method("clear_fence", |_, this, ()| {
            this.ctx.borrow_mut().cols[this.idx].clear_fence();
            Ok(())
        });
        m.add_method("get", |_, this, ()| {
            Ok(this.ctx.borrow().cols[this.idx].text.clone())
        });
        m.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(this.ctx.borrow().cols[this.idx].text.clone())
        });
        m.add_meta_method(
            MetaMethod::Index,
            |lua, _this, key: String| -> mlua::Result<()> {
                Err(lerr(
                    lua,
                    format!("Column:{key}() is not supported by moonwire"),
                ))
            },
        );
    }
}

impl UserData for PrivateTable {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_meta_method(MetaMethod::Index, |_, this, key: String| {
            Ok(this.ctx.borrow().private.get(&key).cloned())
        });
        m.add_meta_method(
            MetaMethod::NewIndex,
            |_, this, (key, val): (String, Option<String>)| {
                let mut c = this.ctx.borrow_mut();
                match val {
                    Some(v) => c.private.insert(key, v),
                    None => c.private.remove(&key),
                };
                Ok(())
            },
        );
    }
}

// ---------------------------------------------------------------- tables

/// `DissectorTable`.
pub struct DissectorTable {
    name: String,
    ctx: Shared,
}

/// `Dissector`.
pub struct Dissector {
    /// What it runs.
    pub handle: Handle,
}

fn handle_of(lua: &Lua, v: &LuaValue) -> mlua::Result<Handle> {
    match v {
        LuaValue::UserData(u) if u.is::<Proto>() => Ok(Handle::Lua(u.borrow::<Proto>()?.id)),
        LuaValue::UserData(u) if u.is::<Dissector>() => Ok(u.borrow::<Dissector>()?.handle),
        _ => Err(lerr(lua, "expected a Proto or a Dissector")),
    }
}

/// Parses `"80"`, `"1000-1005,2000"` into port ranges.
fn uint_ranges(s: &str) -> Option<Vec<(u32, u32)>> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => out.push((a.trim().parse().ok()?, b.trim().parse().ok()?)),
            None => {
                let v = part.parse().ok()?;
                out.push((v, v));
            }
        }
    }
    Some(out)
}

impl DissectorTable {
    fn keys(&self, lua: &Lua, pattern: &LuaValue) -> mlua::Result<Result<Vec<u32>, String>> {
        let string_keys = self.with(|t| t.string_keys);
        if string_keys {
            return Ok(Err(match pattern {
                LuaValue::String(s) => s.to_string_lossy(),
                v => label_arg(v).unwrap_or_default(),
            }));
        }
        let ranges = match pattern {
            LuaValue::Integer(i) => vec![(*i as u32, *i as u32)],
            LuaValue::Number(n) => vec![(*n as u32, *n as u32)],
            LuaValue::String(s) => uint_ranges(&s.to_string_lossy())
                .ok_or_else(|| lerr(lua, "DissectorTable: bad range"))?,
            _ => {
                return Err(lerr(
                    lua,
                    "DissectorTable: pattern must be a number or a range string",
                ));
            }
        };
        let mut keys = Vec::new();
        for (a, b) in ranges {
            if b < a || b - a > 65_536 {
                return Err(lerr(lua, "DissectorTable: range too large"));
            }
            keys.extend(a..=b);
        }
        Ok(Ok(keys))
    }

    fn with<R>(&self, f: impl FnOnce(&mut DTable) -> R) -> R {
        let mut c = self.ctx.borrow_mut();
        let t = c.tables.entry(self.name.clone()).or_default();
        f(t)
    }
}

impl UserData for DissectorTable {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        fn add(
            lua: &Lua,
            this: &DissectorTable,
            pattern: LuaValue,
            h: LuaValue,
            replace: bool,
        ) -> mlua::Result<()> {
            let h = handle_of(lua, &h)?;
            match this.keys(lua, &pattern)? {
                Ok(keys) => this.with(|t| {
                    if replace {
                        for k in &keys {
                            t.uints.remove(k);
                        }
                    }
                    for k in keys {
                        t.uints.insert(k, h);
                    }
                }),
                Err(s) => this.with(|t| {
                    t.strings.insert(s, h);
                }),
            }
            Ok(())
        }
        m.add_method("add", |lua, this, (p, h): (LuaValue, LuaValue)| {
            add(lua, this, p, h, false)
        });
        m.add_method("set", |lua, this, (p, h): (LuaValue, LuaValue)| {
            add(lua, this, p, h, true)
        });
        m.add_method("remove", |lua, this, (p, _h): (LuaValue, LuaValue)| {
            match this.keys(lua, &p)? {
                Ok(keys) => this.with(|t| {
                    for k in keys {
                        t.uints.remove(&k);
                    }
                }),
                Err(s) => this.with(|t| {
                    t.strings.remove(&s);
                }),
            }
            Ok(())
        });
        m.add_method("remove_all", |lua, this, h: LuaValue| {
            let h = handle_of(lua, &h)?;
            this.with(|t| {
                t.uints.retain(|_, v| *v != h);
                t.strings.retain(|_, v| *v != h);
            });
            Ok(())
        });
        m.add_method("get_dissector", |lua, this, p: LuaValue| {
            let h = match this.keys(lua, &p)? {
                Ok(keys) => keys
                    .first()
                    .and_then(|k| this.with(|t| t.uints.get(k).copied())),
                Err(s) => this.with(|t| t.strings.get(&s).copied()),
            };
            Ok(h.map(|handle| Dissector { handle }))
        });
        m.add_method(
            "try",
            |lua, this, (p, tvb, _pinfo, tree): (LuaValue, Tvb, LuaValue, TreeItem)| {
                let h = match this.keys(lua, &p)? {
                    Ok(keys) => keys
                        .first()
                        .and_then(|k| this.with(|t| t.uints.get(k).copied())),
                    Err(s) => this.with(|t| t.strings.get(&s).copied()),
                };
                let r = tvb.r;
                let node = tree.node;
                // Like Wireshark, bytes no dissector takes go to "data".
                let n = match h {
                    Some(h) => crate::engine::call_handle(lua, &this.ctx, h, r, node)?,
                    None => 0,
                };
                if n == 0 {
                    return crate::engine::call_handle(
                        lua,
                        &this.ctx,
                        Handle::Builtin(crate::ctx::Builtin::Data),
                        r,
                        node,
                    );
                }
                Ok(n)
            },
        );
        m.add_method("add_for_decode_as", |_, _this, _h: LuaValue| Ok(()));
        m.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(format!("DissectorTable: {}", this.name))
        });
    }
}

impl UserData for Dissector {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method(
            "call",
            |lua, this, (tvb, _pinfo, tree): (LuaValue, LuaValue, LuaValue)| {
                let ctx = shared(lua)?;
                let r = from_value::<Tvb>(lua, &tvb)
                    .ok_or_else(|| lerr(lua, "Dissector:call(): expected a Tvb"))?
                    .r;
                let node = from_value::<TreeItem>(lua, &tree)
                    .ok_or_else(|| lerr(lua, "Dissector:call(): expected a TreeItem"))?
                    .node;
                crate::engine::call_handle(lua, &ctx, this.handle, r, node)
            },
        );
        m.add_meta_method(
            MetaMethod::Call,
            |lua, this, (tvb, _pinfo, tree): (Tvb, LuaValue, TreeItem)| {
                let ctx = shared(lua)?;
                let r = tvb.r;
                let node = tree.node;
                crate::engine::call_handle(lua, &ctx, this.handle, r, node)
            },
        );
        m.add_meta_method(MetaMethod::ToString, |lua, this, ()| {
            Ok(shared(lua)?.borrow().handle_name(this.handle))
        });
    }
}

// ---------------------------------------------------------------- Conversation

/// `Conversation`.
pub struct Conversation {
    id: u32,
}

impl UserData for Conversation {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_meta_method(MetaMethod::Index, |lua, this, key: LuaValue| {
            let proto = match &key {
                LuaValue::UserData(u) if u.is::<Proto>() => u.borrow::<Proto>()?.id,
                _ => return Err(lerr(lua, "Conversation: index must be a Proto")),
            };
            let ctx = shared(lua)?;
            let v = ctx.borrow().conv_data.get(&(this.id, proto)).cloned();
            Ok(v.unwrap_or(LuaValue::Nil))
        });
        m.add_meta_method(
            MetaMethod::NewIndex,
            |lua, this, (key, val): (LuaValue, LuaValue)| {
                let ctx = shared(lua)?;
                match &key {
                    LuaValue::UserData(u) if u.is::<Proto>() => {
                        let proto = u.borrow::<Proto>()?.id;
                        let mut c = ctx.borrow_mut();
                        if val.is_nil() {
                            c.conv_data.remove(&(this.id, proto));
                        } else {
                            c.conv_data.insert((this.id, proto), val);
                        }
                    }
                    LuaValue::String(s)
                        if s.to_str().map(|s| s == "dissector").unwrap_or(false) =>
                    {
                        let h = handle_of(lua, &val)?;
                        ctx.borrow_mut().conv_dissector.insert(this.id, h);
                    }
                    _ => return Err(lerr(lua, "Conversation: index must be a Proto")),
                }
                Ok(())
            },
        );
        m.add_meta_method(MetaMethod::Eq, |_, this, other: AnyUserData| {
            Ok(other
                .borrow::<Conversation>()
                .map(|o| o.id == this.id)
                .unwrap_or(false))
        });
        m.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(format!("Conversation object ({})", this.id))
        });
    }
}

fn conv_type(lua: &Lua, v: &LuaValue) -> mlua::Result<u32> {
    match v {
        LuaValue::Integer(i) => Ok(*i as u32),
        LuaValue::Number(n) => Ok(*n as u32),
        LuaValue::String(s) => {
            let s = s.to_string_lossy();
            Ok(CONVTYPES
                .iter()
                .position(|c| format!("convtypes.{c}") == s || *c == s)
                .unwrap_or(0) as u32)
        }
        _ => Err(lerr(lua, "Conversation: bad conversation type")),
    }
}

const CONVTYPES: [&str; 48] = [
    "NONE",
    "SCTP",
    "TCP",
    "UDP",
    "DCCP",
    "IPX",
    "NCP",
    "EXCHG",
    "DDP",
    "SBCCS",
    "IDP",
    "TIPC",
    "USB",
    "I2C",
    "IBQP",
    "BLUETOOTH",
    "TDMOP",
    "DVBCI",
    "ISO14443",
    "ISDN",
    "H223",
    "X25",
    "IAX2",
    "DLCI",
    "ISUP",
    "BICC",
    "GSMTAP",
    "IUUP",
    "DVBBBF",
    "IWARP_MPA",
    "BT_UTP",
    "LOG",
    "LTP",
    "MCTP",
    "NVME_MI",
    "BP",
    "SNMP",
    "QUIC",
    "IDN",
    "IP",
    "IPV6",
    "ETH",
    "ETH_NN",
    "ETH_NV",
    "ETH_IN",
    "ETH_IV",
    "VSPC_VMOTION",
    "OPENVPN",
];

fn conv_find(lua: &Lua, args: Variadic<LuaValue>) -> mlua::Result<Option<Conversation>> {
    let ctype = conv_type(lua, args.get(1).unwrap_or(&LuaValue::Nil))?;
    let addr = |v: Option<&LuaValue>| -> mlua::Result<Addr> {
        match v {
            Some(LuaValue::UserData(u)) if u.is::<Address>() => Ok(u.borrow::<Address>()?.0),
            _ => Ok(Addr::None),
        }
    };
    let a1 = addr(args.get(2))?;
    let a2 = addr(args.get(3))?;
    let p1 = opt_int(args.get(4)).unwrap_or(0) as u32;
    let p2 = opt_int(args.get(5)).unwrap_or(0) as u32;
    let create = !matches!(args.get(6), Some(LuaValue::Boolean(false)));
    let ctx = shared(lua)?;
    let key = ConvKey::new(ctype, (a1, p1), (a2, p2));
    let mut c = ctx.borrow_mut();
    let id = if create {
        Some(c.conversation(key))
    } else {
        c.convs.get(&key).copied()
    };
    Ok(id.map(|id| Conversation { id }))
}

fn conv_find_by_id(lua: &Lua, args: Variadic<LuaValue>) -> mlua::Result<Option<Conversation>> {
    let ctype = conv_type(lua, args.get(1).unwrap_or(&LuaValue::Nil))?;
    let idnum = opt_int(args.get(2))
        .ok_or_else(|| lerr(lua, "Conversation.find_by_id: missing id"))? as u32;
    let create = !matches!(args.get(3), Some(LuaValue::Boolean(false)));
    let ctx = shared(lua)?;
    let mut c = ctx.borrow_mut();
    let id = match c.convs_by_id.get(&(ctype, idnum)) {
        Some(id) => Some(*id),
        None if create => {
            let id = c.nconvs;
            c.nconvs += 1;
            c.convs_by_id.insert((ctype, idnum), id);
            Some(id)
        }
        None => None,
    };
    Ok(id.map(|id| Conversation { id }))
}

// ---------------------------------------------------------------- install

const PRELUDE: &str = include_str!("prelude.lua");

fn fn_table(lua: &Lua, entries: Vec<(&str, Function)>) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    for (k, f) in entries {
        t.set(k, f)?;
    }
    Ok(t)
}

fn proto_arg(lua: &Lua, v: &LuaValue) -> mlua::Result<u32> {
    match v {
        LuaValue::UserData(u) if u.is::<Proto>() => Ok(u.borrow::<Proto>()?.id),
        _ => Err(lerr(
            lua,
            "wslua_conversation: first argument must be a Proto",
        )),
    }
}

/// Installs the whole API into an interpreter.
pub fn install(lua: &Lua, ctx: &Shared) -> mlua::Result<()> {
    plain::install::<Tvb>(lua, Tvb::add_methods)?;
    plain::install::<TvbRange>(lua, TvbRange::add_methods)?;
    plain::install::<TreeItem>(lua, TreeItem::add_methods)?;
    plain::install::<ProtoField>(lua, ProtoField::add_methods)?;
    let null_item = TreeItem {
        ctx: CtxRef::of(ctx),
        node: NO_NODE,
        epoch: 0,
    };
    plain::set_registry(lua, null_item_key(), plain::to_value(lua, null_item)?)?;
    let pinfo = lua.create_userdata(Pinfo {
        ctx: Rc::clone(ctx),
    })?;
    let columns = lua.create_userdata(Columns {
        ctx: Rc::clone(ctx),
    })?;
    let column_objs = (0..COLUMN_NAMES.len())
        .map(|idx| {
            lua.create_userdata(Column {
                ctx: Rc::clone(ctx),
                idx,
            })
        })
        .collect::<mlua::Result<Vec<_>>>()?;
    plain::set_registry(lua, columns_key(), &columns)?;
    // A Proto that names no protocol, for the type's metatable.
    let any_proto = lua.create_userdata(Proto {
        id: u32::MAX,
        ctx: Rc::clone(ctx),
    })?;
    crate::fast::install(lua, ctx, &any_proto, &pinfo, &columns)?;
    lua.set_app_data(Handles {
        ctx: Rc::clone(ctx),
        pinfo,
        column_objs,
    });
    let g = lua.globals();

    // Proto(name, desc) and Proto.new(name, desc).
    let proto_tbl = lua.create_table()?;
    let c2 = Rc::clone(ctx);
    proto_tbl.set(
        "new",
        lua.create_function(move |lua, (name, desc): (String, String)| {
            proto_new(lua, &c2, name, desc)
        })?,
    )?;
    let meta = lua.create_table()?;
    let c3 = Rc::clone(ctx);
    meta.set(
        "__call",
        lua.create_function(move |lua, (_t, name, desc): (LuaValue, String, String)| {
            proto_new(lua, &c3, name, desc)
        })?,
    )?;
    proto_tbl.set_metatable(Some(meta))?;
    g.set("Proto", proto_tbl)?;

    // ProtoField.*
    let pf = lua.create_table()?;
    let types: [(&str, FType); 28] = [
        ("uint8", FType::U8),
        ("uint16", FType::U16),
        ("uint24", FType::U24),
        ("uint32", FType::U32),
        ("uint64", FType::U64),
        ("int8", FType::I8),
        ("int16", FType::I16),
        ("int24", FType::I24),
        ("int32", FType::I32),
        ("int64", FType::I64),
        ("bool", FType::Bool),
        ("string", FType::String),
        ("stringz", FType::Stringz),
        ("bytes", FType::Bytes),
        ("ubytes", FType::UBytes),
        ("ipv4", FType::Ipv4),
        ("ipv6", FType::Ipv6),
        ("ether", FType::Ether),
        ("float", FType::Float),
        ("double", FType::Double),
        ("framenum", FType::FrameNum),
        ("absolute_time", FType::AbsTime),
        ("relative_time", FType::RelTime),
        ("guid", FType::Guid),
        ("protocol", FType::Protocol),
        ("none", FType::None),
        ("char", FType::U8),
        ("eui64", FType::U64),
    ];
    for (name, t) in types {
        pf.set(
            name,
            lua.create_function(move |lua, args: Variadic<LuaValue>| field_ctor(lua, t, &args))?,
        )?;
    }
    pf.set("new", lua.create_function(field_new)?)?;
    g.set("ProtoField", pf)?;

    // ProtoExpert.new(abbr, text, group, severity)
    let pe = fn_table(
        lua,
        vec![(
            "new",
            lua.create_function(
                |lua, (abbrev, text, group, severity): (String, String, u32, u32)| {
                    if abbrev.is_empty() {
                        return Err(lerr(lua, "ProtoExpert.new: missing filter name"));
                    }
                    Ok(ProtoExpert {
                        abbrev,
                        text,
                        group,
                        severity,
                    })
                },
            )?,
        )],
    )?;
    g.set("ProtoExpert", pe)?;

    // Pref.*
    let pref = fn_table(
        lua,
        vec![
            (
                "bool",
                lua.create_function(|_, (_l, d, _desc): (LuaValue, bool, Option<String>)| {
                    Ok(PrefSpec {
                        value: PrefValue::Bool(d),
                        entries: Vec::new(),
                    })
                })?,
            ),
            (
                "uint",
                lua.create_function(|_, (_l, d, _desc): (LuaValue, u32, Option<String>)| {
                    Ok(PrefSpec {
                        value: PrefValue::UInt(d),
                        entries: Vec::new(),
                    })
                })?,
            ),
            (
                "string",
                lua.create_function(|_, (_l, d, _desc): (LuaValue, String, Option<String>)| {
                    Ok(PrefSpec {
                        value: PrefValue::Str(d),
                        entries: Vec::new(),
                    })
                })?,
            ),
            (
                "enum",
                lua.create_function(
                    |lua,
                     (_l, d, _desc, t, _radio): (
                        LuaValue,
                        i64,
                        Option<String>,
                        Table,
                        Option<bool>,
                    )| {
                        let mut entries = Vec::new();
                        for e in t.sequence_values::<Table>() {
                            let e = e?;
                            // {index, "name", value} or {"name", "desc", value}
                            let a: LuaValue = e.get(1)?;
                            let b: String = e.get(2)?;
                            let v: i64 = e.get(3)?;
                            let name = match a {
                                LuaValue::String(s) => s.to_string_lossy(),
                                _ => b.clone(),
                            };
                            entries.push((name, b, v));
                        }
                        if entries.is_empty() {
                            return Err(lerr(lua, "Pref.enum: empty enum table"));
                        }
                        Ok(PrefSpec {
                            value: PrefValue::Enum(d),
                            entries,
                        })
                    },
                )?,
            ),
            (
                "range",
                lua.create_function(
                    |_, (_l, d, _desc, _max): (LuaValue, String, Option<String>, Option<u32>)| {
                        Ok(PrefSpec {
                            value: PrefValue::Str(d),
                            entries: Vec::new(),
                        })
                    },
                )?,
            ),
            (
                "statictext",
                lua.create_function(|_, (_l, _d): (LuaValue, Option<String>)| {
                    Ok(PrefSpec {
                        value: PrefValue::Str(String::new()),
                        entries: Vec::new(),
                    })
                })?,
            ),
        ],
    )?;
    g.set("Pref", pref)?;

    // DissectorTable
    let c4 = Rc::clone(ctx);
    let c5 = Rc::clone(ctx);
    let c6 = Rc::clone(ctx);
    let dt = fn_table(lua, vec![
        ("get", lua.create_function(move |_, name: String| {
            let exists = c4.borrow().tables.contains_key(&name);
            Ok(if exists { Some(DissectorTable { name, ctx: Rc::clone(&c4) }) } else { None })
        })?),
        ("new", lua.create_function(move |_, (name, ui, ftype, _b, _p): (String, Option<String>, Option<u32>, Option<u32>, LuaValue)| {
            let string_keys = matches!(ftype, Some(t) if t == FType::String.code() || t == FType::Stringz.code());
            c5.borrow_mut().tables.entry(name.clone()).or_insert_with(|| DTable {
                name: name.clone(),
                ui_name: ui.unwrap_or_else(|| name.clone()),
                string_keys,
                ..DTable::default()
            });
            Ok(DissectorTable { name, ctx: Rc::clone(&c5) })
        })?),
        ("list", lua.create_function(move |_, ()| {
            let mut v: Vec<String> = c6.borrow().tables.keys().cloned().collect();
            v.sort();
            Ok(v)
        })?),
        ("heuristic_list", lua.create_function(|_, ()| Ok(vec!["tcp", "udp"]))?),
    ])?;
    g.set("DissectorTable", dt)?;

    // Dissector
    let c7 = Rc::clone(ctx);
    let c8 = Rc::clone(ctx);
    let ds = fn_table(lua, vec![
        ("get", lua.create_function(move |lua, name: String| {
            let c = c7.borrow();
            if let Some(p) = c.proto_by_name(&name) {
                return Ok(Dissector { handle: Handle::Lua(p) });
            }
            match builtin_by_name(&name) {
                Some(b) => Ok(Dissector { handle: Handle::Builtin(b) }),
                None => Err(lerr(lua, format!("Dissector.get: No such dissector '{name}' (moonwire provides data, eth_withoutfcs, ip, ipv6 and Lua protocols)"))),
            }
        })?),
        ("list", lua.create_function(move |_, ()| {
            let c = c8.borrow();
            let mut v: Vec<String> = c.protos.iter().map(|p| p.filter.clone()).collect();
            v.extend(["data", "eth_withoutfcs", "ip", "ipv6"].map(String::from));
            v.sort();
            Ok(v)
        })?),
    ])?;
    g.set("Dissector", ds)?;

    // ByteArray, Address
    g.set(
        "ByteArray",
        fn_table(lua, vec![("new", lua.create_function(bytearray_new)?)])?,
    )?;
    let addr_ctor = |lua: &Lua| {
        lua.create_function(|lua, s: String| {
            parse_addr(&s)
                .map(Address)
                .ok_or_else(|| lerr(lua, format!("Address: cannot parse '{s}'")))
        })
    };
    g.set(
        "Address",
        fn_table(
            lua,
            vec![
                ("ip", addr_ctor(lua)?),
                ("ipv4", addr_ctor(lua)?),
                ("ipv6", addr_ctor(lua)?),
                ("ether", addr_ctor(lua)?),
            ],
        )?,
    )?;

    // Conversation
    let conv = fn_table(
        lua,
        vec![
            ("find", lua.create_function(conv_find)?),
            ("find_by_id", lua.create_function(conv_find_by_id)?),
            (
                "find_from_pinfo",
                lua.create_function(|lua, (_p, create): (AnyUserData, Option<bool>)| {
                    let ctx = shared(lua)?;
                    let id = ctx.borrow_mut().pinfo_conversation(create.unwrap_or(true));
                    Ok(id.map(|id| Conversation { id }))
                })?,
            ),
        ],
    )?;
    g.set("Conversation", conv)?;
    let ct = lua.create_table()?;
    for (i, n) in CONVTYPES.iter().enumerate() {
        ct.set(*n, i as i64)?;
    }
    g.set("convtypes", ct)?;

    // wslua_conversation module (preloaded for require).
    let module = fn_table(
        lua,
        vec![
            (
                "get_conv_data",
                lua.create_function(|lua, (p, _pinfo): (LuaValue, LuaValue)| {
                    let proto = proto_arg(lua, &p)?;
                    let ctx = shared(lua)?;
                    let conv = ctx.borrow_mut().pinfo_conversation(true).unwrap_or(0);
                    let v = ctx.borrow().conv_data.get(&(conv, proto)).cloned();
                    match v {
                        Some(v) => Ok(v),
                        None => Ok(LuaValue::Table(lua.create_table()?)),
                    }
                })?,
            ),
            (
                "set_conv_data",
                lua.create_function(|lua, (p, _pinfo, v): (LuaValue, LuaValue, LuaValue)| {
                    let proto = proto_arg(lua, &p)?;
                    let ctx = shared(lua)?;
                    let mut c = ctx.borrow_mut();
                    let conv = c.pinfo_conversation(true).unwrap_or(0);
                    c.conv_data.insert((conv, proto), v);
                    Ok(())
                })?,
            ),
            (
                "get_packet_data",
                lua.create_function(|lua, (p, _pinfo): (LuaValue, LuaValue)| {
                    let proto = proto_arg(lua, &p)?;
                    let ctx = shared(lua)?;
                    let c = ctx.borrow();
                    let v = c.packet_data.get(&(c.pinfo.number, proto)).cloned();
                    drop(c);
                    match v {
                        Some(v) => Ok(v),
                        None => Ok(LuaValue::Table(lua.create_table()?)),
                    }
                })?,
            ),
            (
                "set_packet_data",
                lua.create_function(|lua, (p, _pinfo, v): (LuaValue, LuaValue, LuaValue)| {
                    let proto = proto_arg(lua, &p)?;
                    let ctx = shared(lua)?;
                    let mut c = ctx.borrow_mut();
                    let n = c.pinfo.number;
                    c.packet_data.insert((n, proto), v);
                    Ok(())
                })?,
            ),
        ],
    )?;
    let loader = lua.create_function(move |_, _: LuaValue| Ok(module.clone()))?;
    if let Ok(package) = g.get::<Table>("package") {
        let preload: Table = package.get("preload")?;
        preload.set("wslua_conversation", loader)?;
    } else {
        // Without the package library, offer require for this module only.
        let module_loader = loader;
        g.set(
            "require",
            lua.create_function(move |lua, name: String| {
                if name == "wslua_conversation" {
                    module_loader.call::<LuaValue>(LuaValue::Nil)
                } else {
                    Err(lerr(lua, format!("module '{name}' not found")))
                }
            })?,
        )?;
    }

    // dissect_tcp_pdus(tvb, tree, min_header, get_len, dissect, [desegment])
    g.set(
        "dissect_tcp_pdus",
        lua.create_function(crate::engine::dissect_tcp_pdus)?,
    )?;

    lua.load(PRELUDE).set_name("@moonwire_prelude.lua").exec()?;
    Ok(())
}

/// The Lua objects for one dissector call (pushed as arguments).
pub fn call_objects(ctx: &Shared, r: TvbRef, node: NodeId) -> (Tvb, TreeItem) {
    let ctx = CtxRef::of(ctx);
    (
        Tvb { ctx, r },
        TreeItem {
            ctx,
            node,
            epoch: r.epoch,
        },
    )
}
