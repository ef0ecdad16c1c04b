//! C functions for the methods a dissector calls most (`tvb(o, l)`,
//! `range:uint()`, `tvb:len()`, `tree:add(...)` on the null tree,
//! `pinfo.cols`, `pinfo.cols.protocol = s`), in front of their mlua
//! versions.
//!
//! They skip mlua's callback machinery, which was a third of a dissector's
//! time. Each handles the common case only; anything else (unexpected
//! argument types, a tree being built) is handed to the mlua version with
//! the same arguments, so results and messages stay the same. Errors they
//! raise themselves go through a small mlua function, so they reach the
//! engine exactly as an mlua callback's error would.
//!
//! No Rust value that needs dropping is alive when these functions call
//! back into Lua (which may raise, i.e. jump over their frames), so they
//! also allocate their results directly: running out of memory raises
//! Lua's memory error for the packet. They are C closures whose upvalues
//! hold what they would otherwise look up per call (the result's
//! metatable, the objects and names they compare with).

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_void};

use lua::mlua::{self, AnyUserData, Function, Lua, MultiValue, Table, Value as LuaValue, ffi};

use crate::ctx::{COL_INFO, COL_PROTOCOL, Ctx, RANGE_SLOTS, Shared};

use crate::lua_api::TreeItem;
use crate::lua_tvb::{Tvb, TvbRange};
use crate::plain::{self, Plain};
use crate::tree::NO_NODE;

type State = *mut ffi::lua_State;

/// Registry keys (addresses of statics) of the mlua versions and helpers.
macro_rules! key {
    ($name:ident) => {
        fn $name() -> *const c_void {
            static K: u8 = 0;
            &K as *const u8 as *const c_void
        }
    };
}
key!(raise_key);
key!(tvb_call_slow);
key!(tvb_range_slow);
key!(tvb_len_slow);
key!(range_call_slow);
key!(range_range_slow);
key!(range_len_slow);
key!(range_uint_slow);
key!(range_le_uint_slow);
key!(add_slow);
key!(add_le_slow);
key!(append_text_slow);

/// Calls the mlua version stored under `key` with this call's arguments
/// and returns its results.
unsafe fn slow(state: State, key: *const c_void) -> c_int {
    unsafe {
        let n = ffi::lua_gettop(state);
        if ffi::lua_checkstack(state, 2) == 0 {
            return raise(state, "stack overflow");
        }
        ffi::lua_rawgetp(state, ffi::LUA_REGISTRYINDEX, key);
        ffi::lua_insert(state, 1);
        ffi::lua_call(state, n, ffi::LUA_MULTRET);
        ffi::lua_gettop(state)
    }
}

/// Raises `file:line: msg` (position of the Lua caller) as an mlua
/// callback error, as `lerr` in a callback does.
unsafe fn raise(state: State, msg: &'static str) -> c_int {
    unsafe {
        ffi::lua_settop(state, 0);
        ffi::lua_pushlstring(state, msg.as_ptr() as *const c_char, msg.len());
        raise_top(state)
    }
}

/// [`raise`] for a built message: it is copied to Lua and dropped before
/// anything can jump.
unsafe fn raise_owned(state: State, msg: String) -> c_int {
    unsafe {
        ffi::lua_settop(state, 0);
        if ffi::lua_checkstack(state, 4) == 0 {
            return raise(state, "stack overflow");
        }
        ffi::lua_pushlstring(state, msg.as_ptr() as *const c_char, msg.len());
        drop(msg);
        raise_top(state)
    }
}

/// Raises the message on top of an otherwise empty stack.
unsafe fn raise_top(state: State) -> c_int {
    unsafe {
        ffi::lua_rawgetp(state, ffi::LUA_REGISTRYINDEX, raise_key());
        ffi::luaL_where(state, 1);
        ffi::lua_rotate(state, 1, -1);
        // stack: raise, where, msg
        ffi::lua_concat(state, 2);
        ffi::lua_call(state, 1, 0);
        0
    }
}

/// An optional integer argument: `Err(())` for anything but none, nil or
/// an integer (left to the mlua version).
unsafe fn opt_int(state: State, idx: c_int) -> Result<Option<i64>, ()> {
    unsafe {
        match ffi::lua_type(state, idx) {
            ffi::LUA_TNONE | ffi::LUA_TNIL => Ok(None),
            ffi::LUA_TNUMBER => {
                // Integers and floats with an integral value, as
                // luaL_checkinteger takes them; anything else is left
                // to the mlua version.
                let mut ok = 0;
                let v = ffi::lua_tointegerx(state, idx, &mut ok);
                if ok != 0 { Ok(Some(v)) } else { Err(()) }
            }
            _ => Err(()),
        }
    }
}

/// The epoch of the current packet, or None while the context is busy.
fn epoch_of(ctx: crate::plain::CtxRef) -> Option<u32> {
    ctx.try_borrow().ok().map(|c| c.epoch)
}

/// Wireshark's range rules (`len` -1 = to the end) on a window of `total`.
fn window(total: u32, off: Option<i64>, len: Option<i64>) -> Option<(u32, u32)> {
    let total = total as i64;
    let off = off.unwrap_or(0);
    if off < 0 || off > total {
        return None;
    }
    let len = match len {
        None | Some(-1) => total - off,
        Some(l) if l < -1 => return None,
        Some(l) => l,
    };
    if off + len > total {
        return None;
    }
    Some((off as u32, len as u32))
}

/// Pushes `r`. Upvalue 1 is the TvbRange metatable, upvalue 2 a table
/// of [`RANGE_SLOTS`] recent ranges whose keys `Ctx::range_cache` holds:
/// a dissector asks for the same few ranges again and again (`tvb(1, 2)`
/// for a flags word and each of its bits), and a range is a value that
/// nothing can change, so a repeated one is the object made before
/// instead of new garbage.
unsafe fn push_range(state: State, r: TvbRange) -> c_int {
    unsafe {
        if ffi::lua_checkstack(state, 3) == 0 {
            return raise(state, "stack overflow");
        }
        let key = (r.tvb, r.off, r.len);
        let slot = ((r.off as usize).wrapping_mul(7)
            ^ (r.len as usize).wrapping_mul(13)
            ^ r.tvb.off as usize)
            & (RANGE_SLOTS - 1);
        let cache = ffi::lua_upvalueindex(2);
        // None: the context is busy, so nothing is cached.
        let hit = r
            .ctx
            .try_borrow()
            .ok()
            .map(|c| c.range_cache[slot] == Some(key));
        if hit == Some(true) {
            ffi::lua_rawgeti(state, cache, slot as ffi::lua_Integer + 1);
            return 1;
        }
        // May run a collection step, i.e. finalizers, i.e. this function.
        plain::new_block(state, r);
        ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
        ffi::lua_setmetatable(state, -2);
        // The key is cleared before the slot changes, so the two never
        // disagree; no Lua code runs between here and the end.
        if let Ok(mut c) = r.ctx.try_borrow_mut() {
            c.range_cache[slot] = None;
            drop(c);
            ffi::lua_pushvalue(state, -1);
            // The slot exists (filled at install): storing allocates
            // nothing.
            ffi::lua_rawseti(state, cache, slot as ffi::lua_Integer + 1);
            if let Ok(mut c) = r.ctx.try_borrow_mut() {
                c.range_cache[slot] = Some(key);
            }
        }
        1
    }
}

unsafe extern "C-unwind" fn tvb_call(state: State) -> c_int {
    unsafe { tvb_range_impl(state, tvb_call_slow()) }
}

unsafe extern "C-unwind" fn tvb_range(state: State) -> c_int {
    unsafe { tvb_range_impl(state, tvb_range_slow()) }
}

/// `tvb(off, len)` / `tvb:range(off, len)`.
unsafe fn tvb_range_impl(state: State, slow_key: *const c_void) -> c_int {
    unsafe {
        let (Some(t), Ok(off), Ok(len)) = (
            plain::test::<Tvb>(state, 1),
            opt_int(state, 2),
            opt_int(state, 3),
        ) else {
            return slow(state, slow_key);
        };
        let Some(epoch) = epoch_of(t.ctx) else {
            return slow(state, slow_key);
        };
        if epoch != t.r.epoch {
            return raise(state, "expired Tvb");
        }
        match window(t.r.len, off, len) {
            Some((off, len)) => push_range(
                state,
                TvbRange {
                    ctx: t.ctx,
                    tvb: t.r,
                    off,
                    len,
                },
            ),
            None => raise(state, "Range is out of bounds"),
        }
    }
}

unsafe extern "C-unwind" fn range_call(state: State) -> c_int {
    unsafe { range_range_impl(state, range_call_slow()) }
}

unsafe extern "C-unwind" fn range_range(state: State) -> c_int {
    unsafe { range_range_impl(state, range_range_slow()) }
}

/// `range(off, len)` / `range:range(off, len)`.
unsafe fn range_range_impl(state: State, slow_key: *const c_void) -> c_int {
    unsafe {
        let (Some(r), Ok(off), Ok(len)) = (
            plain::test::<TvbRange>(state, 1),
            opt_int(state, 2),
            opt_int(state, 3),
        ) else {
            return slow(state, slow_key);
        };
        let Some(epoch) = epoch_of(r.ctx) else {
            return slow(state, slow_key);
        };
        if epoch != r.tvb.epoch {
            return raise(state, "expired TvbRange");
        }
        match window(r.len, off, len) {
            Some((o, l)) => push_range(
                state,
                TvbRange {
                    ctx: r.ctx,
                    tvb: r.tvb,
                    off: r.off + o,
                    len: l,
                },
            ),
            None => raise(state, "Range is out of bounds"),
        }
    }
}

unsafe extern "C-unwind" fn tvb_len(state: State) -> c_int {
    unsafe {
        let Some(t) = plain::test::<Tvb>(state, 1) else {
            return slow(state, tvb_len_slow());
        };
        match epoch_of(t.ctx) {
            Some(e) if e == t.r.epoch => {
                ffi::lua_pushinteger(state, t.r.len as i64);
                1
            }
            Some(_) => raise(state, "expired Tvb"),
            None => slow(state, tvb_len_slow()),
        }
    }
}

unsafe extern "C-unwind" fn range_len(state: State) -> c_int {
    unsafe {
        let Some(r) = plain::test::<TvbRange>(state, 1) else {
            return slow(state, range_len_slow());
        };
        ffi::lua_pushinteger(state, r.len as i64);
        1
    }
}

unsafe extern "C-unwind" fn range_uint(state: State) -> c_int {
    unsafe { range_uint_impl(state, false) }
}

unsafe extern "C-unwind" fn range_le_uint(state: State) -> c_int {
    unsafe { range_uint_impl(state, true) }
}

/// `range:uint()` / `range:le_uint()` (1 to 4 bytes).
unsafe fn range_uint_impl(state: State, le: bool) -> c_int {
    unsafe {
        let slow_key = if le {
            range_le_uint_slow()
        } else {
            range_uint_slow()
        };
        let Some(r) = plain::test::<TvbRange>(state, 1) else {
            return slow(state, slow_key);
        };
        let value = {
            let Ok(c) = r.ctx.try_borrow() else {
                return slow(state, slow_key);
            };
            if c.epoch != r.tvb.epoch {
                None
            } else if r.len == 0 || r.len > 4 {
                Some(None)
            } else {
                // As TvbRange::with_bytes: clamped to the buffer.
                let buf = c.bufs.get(r.tvb.buf as usize).map_or(&[][..], |b| &b[..]);
                let start = (r.tvb.off + r.off) as usize;
                let end = (start + r.len as usize).min(buf.len());
                let b = &buf[start.min(end)..end];
                Some(Some(if le {
                    b.iter().rev().fold(0i64, |a, x| (a << 8) | *x as i64)
                } else {
                    b.iter().fold(0i64, |a, x| (a << 8) | *x as i64)
                }))
            }
        };
        match value {
            None => raise(state, "expired TvbRange"),
            Some(Some(v)) => {
                ffi::lua_pushinteger(state, v);
                1
            }
            Some(None) => raise_owned(
                state,
                format!(
                    "TvbRange:{}() does not handle {} byte integers",
                    if le { "le_uint" } else { "uint" },
                    r.len
                ),
            ),
        }
    }
}

unsafe extern "C-unwind" fn add(state: State) -> c_int {
    unsafe { add_impl(state, add_slow()) }
}

unsafe extern "C-unwind" fn add_le(state: State) -> c_int {
    unsafe { add_impl(state, add_le_slow()) }
}

/// The item at 1 when no tree is built under it and it is of this
/// packet.
unsafe fn null_item_at(state: State) -> Option<TreeItem> {
    unsafe {
        let item = plain::test::<TreeItem>(state, 1)?;
        let c = item.ctx.try_borrow().ok()?;
        if c.epoch != item.epoch {
            return None; // expired: the mlua version says so
        }
        (item.node == NO_NODE || !c.build_tree).then_some(item)
    }
}

/// Returns the null item of `item`'s packet: `item` itself when it is
/// one (all null items of a packet behave the same), else the shared one.
unsafe fn push_null(state: State, item: TreeItem) -> c_int {
    unsafe {
        if item.node == NO_NODE {
            ffi::lua_settop(state, 1);
            return 1;
        }
        match crate::lua_api::push_null_item(state, item) {
            Ok(()) => 1,
            Err(e) => raise_owned(state, e.to_string()),
        }
    }
}

/// Whether the value at `idx` is a `Proto` (its metatable is upvalue 1).
unsafe fn is_proto(state: State, idx: c_int) -> bool {
    unsafe {
        if ffi::lua_type(state, idx) != ffi::LUA_TUSERDATA || ffi::lua_getmetatable(state, idx) == 0
        {
            return false;
        }
        let yes = ffi::lua_rawequal(state, -1, ffi::lua_upvalueindex(1)) != 0;
        ffi::lua_pop(state, 1);
        yes
    }
}

/// `tree:add(field, range)`, `tree:add(proto, range)`, `tree:add(field)`
/// or `tree:add(range)` on the null tree: nothing to build or check
/// beyond the objects' types and packet, so it returns the null item.
unsafe fn add_impl(state: State, slow_key: *const c_void) -> c_int {
    unsafe {
        let Some(item) = null_item_at(state) else {
            return slow(state, slow_key);
        };
        let epoch = item.epoch;
        let mut n = ffi::lua_gettop(state);
        while n > 1 && ffi::lua_type(state, n) == ffi::LUA_TNIL {
            n -= 1;
        }
        let live_range =
            |idx: c_int| plain::test::<TvbRange>(state, idx).is_some_and(|r| r.tvb.epoch == epoch);
        let target = |idx: c_int| {
            plain::test::<crate::lua_api::ProtoField>(state, idx).is_some() || is_proto(state, idx)
        };
        let ok = match n {
            2 => live_range(2) || target(2),
            3 => live_range(3) && target(2),
            _ => false,
        };
        if !ok {
            return slow(state, slow_key);
        }
        push_null(state, item)
    }
}

/// `item:append_text(s)` on the null item.
unsafe extern "C-unwind" fn append_text(state: State) -> c_int {
    unsafe {
        match null_item_at(state) {
            Some(item) if item.node == NO_NODE => push_null(state, item),
            _ => slow(state, append_text_slow()),
        }
    }
}

/// `pinfo.cols` / `pinfo.columns`. Upvalues: the Pinfo object, the
/// Columns object, the two names, the mlua `__index`.
unsafe extern "C-unwind" fn pinfo_index(state: State) -> c_int {
    unsafe {
        if ffi::lua_rawequal(state, 1, ffi::lua_upvalueindex(1)) != 0
            && (ffi::lua_rawequal(state, 2, ffi::lua_upvalueindex(3)) != 0
                || ffi::lua_rawequal(state, 2, ffi::lua_upvalueindex(4)) != 0)
        {
            ffi::lua_pushvalue(state, ffi::lua_upvalueindex(2));
            return 1;
        }
        slow_up(state, 5)
    }
}

/// `pinfo.cols.protocol = s` / `pinfo.cols.info = s` with a string.
/// Upvalues: the context, the Columns object, the two names, the mlua
/// `__newindex`.
unsafe extern "C-unwind" fn columns_newindex(state: State) -> c_int {
    unsafe {
        let col = if ffi::lua_rawequal(state, 2, ffi::lua_upvalueindex(3)) != 0 {
            COL_PROTOCOL
        } else if ffi::lua_rawequal(state, 2, ffi::lua_upvalueindex(4)) != 0 {
            COL_INFO
        } else {
            return slow_up(state, 5);
        };
        if ffi::lua_rawequal(state, 1, ffi::lua_upvalueindex(2)) == 0
            || ffi::lua_type(state, 3) != ffi::LUA_TSTRING
        {
            return slow_up(state, 5);
        }
        let mut len = 0usize;
        let p = ffi::lua_tolstring(state, 3, &mut len);
        let ctx = ffi::lua_touserdata(state, ffi::lua_upvalueindex(1)) as *const RefCell<Ctx>;
        if p.is_null() || ctx.is_null() {
            return slow_up(state, 5);
        }
        // SAFETY: Lua keeps the string alive while it is on the stack; the
        // context outlives the state (see plain::CtxRef).
        let bytes = std::slice::from_raw_parts(p as *const u8, len);
        let Ok(text) = std::str::from_utf8(bytes) else {
            return slow_up(state, 5);
        };
        let Ok(mut c) = (*ctx).try_borrow_mut() else {
            return slow_up(state, 5);
        };
        if let Some(column) = c.cols.get_mut(col) {
            column.set(text);
        }
        0
    }
}

/// Calls the function in upvalue `up` with this call's arguments and
/// returns its results.
unsafe fn slow_up(state: State, up: c_int) -> c_int {
    unsafe {
        let n = ffi::lua_gettop(state);
        if ffi::lua_checkstack(state, 2) == 0 {
            return raise(state, "stack overflow");
        }
        ffi::lua_pushvalue(state, ffi::lua_upvalueindex(up));
        ffi::lua_insert(state, 1);
        ffi::lua_call(state, n, ffi::LUA_MULTRET);
        ffi::lua_gettop(state)
    }
}

/// The C functions of this module.
const FNS: [ffi::lua_CFunction; 13] = [
    tvb_call,
    tvb_range,
    tvb_len,
    range_call,
    range_range,
    range_len,
    range_uint,
    range_le_uint,
    add,
    add_le,
    append_text,
    pinfo_index,
    columns_newindex,
];

/// Whether `f` is one of these C functions: errors raised by the mlua
/// version they hand a call to take their position from the Lua code
/// above them.
pub fn is_fast(lua: &Lua, f: &Function) -> bool {
    let mut cf = None;
    // SAFETY: the closure only inspects and pops the pushed function.
    let r: mlua::Result<()> = unsafe {
        lua.exec_raw(f, |state| {
            cf = ffi::lua_tocfunction(state, -1);
            ffi::lua_pop(state, 1);
        })
    };
    r.is_ok()
        && cf.is_some_and(|g| {
            FNS.iter()
                .any(|h| std::ptr::fn_addr_eq(g, *h as ffi::lua_CFunction))
        })
}

/// The metatable of a plain class.
fn metatable<T: Plain>(lua: &Lua) -> mlua::Result<Table> {
    // SAFETY: replaces the pushed nil by one registry value.
    unsafe {
        lua.exec_raw(LuaValue::Nil, |state| {
            ffi::lua_pop(state, 1);
            ffi::lua_rawgetp(state, ffi::LUA_REGISTRYINDEX, T::key());
        })
    }
}

/// Makes the C closure `f` with `ups` as its upvalues.
fn closure(lua: &Lua, f: ffi::lua_CFunction, ups: MultiValue) -> mlua::Result<Function> {
    let n = ups.len() as c_int;
    // SAFETY: pops the pushed upvalues into the new closure; the C
    // functions above follow the Lua C API rules.
    unsafe {
        lua.exec_raw(ups, |state| {
            ffi::lua_pushcclosure(state, f, n);
        })
    }
}

/// Puts `f` (with `ups` as upvalues) in front of the function at
/// `t[name]`, which is kept under `key` for the cases `f` hands on.
fn front(
    lua: &Lua,
    t: &Table,
    name: &str,
    key: *const c_void,
    f: ffi::lua_CFunction,
    ups: MultiValue,
) -> mlua::Result<()> {
    let old: Function = t.raw_get(name)?;
    plain::set_registry(lua, key, old)?;
    t.raw_set(name, closure(lua, f, ups)?)
}

/// The metatable of a Lua value.
fn metatable_of(lua: &Lua, v: &LuaValue) -> mlua::Result<Table> {
    // SAFETY: replaces the pushed value by its metatable.
    unsafe {
        lua.exec_raw(v, |state| {
            if ffi::lua_getmetatable(state, -1) == 0 {
                ffi::lua_pushnil(state);
            }
            ffi::lua_remove(state, -2);
        })
    }
}

/// Installs the C functions in front of the mlua methods (after the plain
/// classes are installed). `proto` is any `Proto` object (for its
/// metatable), `pinfo` and `columns` the one Pinfo and Columns objects.
pub fn install(
    lua: &Lua,
    ctx: &Shared,
    proto: &AnyUserData,
    pinfo: &AnyUserData,
    columns: &AnyUserData,
) -> mlua::Result<()> {
    plain::set_registry(
        lua,
        raise_key(),
        lua.create_function(|_, msg: String| -> mlua::Result<()> {
            Err(mlua::Error::RuntimeError(msg))
        })?,
    )?;
    let none = MultiValue::new;
    let range = metatable::<TvbRange>(lua)?;
    let cache = lua.create_table_with_capacity(RANGE_SLOTS, 0)?;
    for i in 1..=RANGE_SLOTS {
        cache.raw_set(i, false)?;
    }
    let with_range = || {
        MultiValue::from_iter([
            LuaValue::Table(range.clone()),
            LuaValue::Table(cache.clone()),
        ])
    };
    let tvb = metatable::<Tvb>(lua)?;
    let tvb_m: Table = tvb.raw_get("__index")?;
    front(lua, &tvb, "__call", tvb_call_slow(), tvb_call, with_range())?;
    front(
        lua,
        &tvb_m,
        "range",
        tvb_range_slow(),
        tvb_range,
        with_range(),
    )?;
    front(lua, &tvb_m, "len", tvb_len_slow(), tvb_len, none())?;
    let range_m: Table = range.raw_get("__index")?;
    front(
        lua,
        &range,
        "__call",
        range_call_slow(),
        range_call,
        with_range(),
    )?;
    front(
        lua,
        &range_m,
        "range",
        range_range_slow(),
        range_range,
        with_range(),
    )?;
    front(lua, &range_m, "len", range_len_slow(), range_len, none())?;
    front(lua, &range_m, "uint", range_uint_slow(), range_uint, none())?;
    front(
        lua,
        &range_m,
        "le_uint",
        range_le_uint_slow(),
        range_le_uint,
        none(),
    )?;
    let proto_mt = metatable_of(lua, &LuaValue::UserData(proto.clone()))?;
    let with_proto = || MultiValue::from_iter([LuaValue::Table(proto_mt.clone())]);
    let item = metatable::<TreeItem>(lua)?;
    let item_m: Table = item.raw_get("__index")?;
    front(lua, &item_m, "add", add_slow(), add, with_proto())?;
    front(lua, &item_m, "add_le", add_le_slow(), add_le, with_proto())?;
    front(
        lua,
        &item_m,
        "append_text",
        append_text_slow(),
        append_text,
        none(),
    )?;

    let pinfo_v = LuaValue::UserData(pinfo.clone());
    let columns_v = LuaValue::UserData(columns.clone());
    let name = |s: &str| lua.create_string(s).map(LuaValue::String);
    let pinfo_mt = metatable_of(lua, &pinfo_v)?;
    if let LuaValue::Function(old) = pinfo_mt.raw_get::<LuaValue>("__index")? {
        let ups = MultiValue::from_iter([
            pinfo_v.clone(),
            columns_v.clone(),
            name("cols")?,
            name("columns")?,
            LuaValue::Function(old),
        ]);
        pinfo_mt.raw_set("__index", closure(lua, pinfo_index, ups)?)?;
    }
    let columns_mt = metatable_of(lua, &columns_v)?;
    if let LuaValue::Function(old) = columns_mt.raw_get::<LuaValue>("__newindex")? {
        let ups = MultiValue::from_iter([
            LuaValue::LightUserData(mlua::LightUserData(std::rc::Rc::as_ptr(ctx) as *mut c_void)),
            columns_v,
            name("protocol")?,
            name("info")?,
            LuaValue::Function(old),
        ]);
        columns_mt.raw_set("__newindex", closure(lua, columns_newindex, ups)?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::window;

    #[test]
    fn windows_follow_wireshark_rules() {
        assert_eq!(window(10, None, None), Some((0, 10)));
        assert_eq!(window(10, Some(4), Some(-1)), Some((4, 6)));
        assert_eq!(window(10, Some(10), None), Some((10, 0)));
        assert_eq!(window(10, Some(8), Some(3)), None);
        assert_eq!(window(10, Some(-1), None), None);
        assert_eq!(window(10, Some(2), Some(-2)), None);
        assert_eq!(window(10, Some(11), None), None);
    }
}
