//! Light userdata handles: session objects and borrowed `MolochData`.
//!
//! Both are passed to every callback, so making them must cost nothing: a
//! handle is a Lua *light userdata* (a pointer-sized value, no allocation,
//! nothing for the collector) whose bits say what it is. Sessions are
//! `serial << 1 | 1`, borrowed data `generation << 1`. All light userdata
//! of an interpreter share one metatable, installed here: its `__index`
//! picks the method table by the tag bit (and falls back to the session
//! properties `srcIp`, `dstPort`, ...), and `__tostring`/`__len` dispatch
//! the same way. Scripts cannot make light userdata, so every one they hold
//! came from the engine; a stale one is caught by the methods (a saved
//! session is not bound, an old generation is not the current loan).

use std::ffi::{c_int, c_void};

use lua::mlua::{self, Function, LightUserData, Lua, Table, Value, ffi};

/// The handle of the session with this serial.
#[inline]
pub(crate) fn session_handle(serial: u64) -> LightUserData {
    LightUserData(((serial as usize) << 1 | 1) as *mut c_void)
}

/// The serial a session handle stands for.
pub(crate) fn session_serial(h: LightUserData) -> mlua::Result<u64> {
    let v = h.0 as usize;
    if v & 1 == 1 {
        Ok((v >> 1) as u64)
    } else {
        Err(mlua::Error::runtime(
            "expected a MolochSession, got a MolochData",
        ))
    }
}

/// The handle of data lent in this generation.
#[inline]
pub(crate) fn data_handle(generation: u64) -> LightUserData {
    LightUserData(((generation as usize) << 1) as *mut c_void)
}

/// The generation a data handle was lent in, or `None` for a session.
pub(crate) fn data_generation(h: LightUserData) -> Option<u64> {
    let v = h.0 as usize;
    (v & 1 == 0).then_some((v >> 1) as u64)
}

/// `__index` of light userdata: upvalues are the data methods, the session
/// methods and the session property function.
unsafe extern "C-unwind" fn index(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua as a metamethod with (handle, key); only plain
    // stack operations within the C function's guaranteed stack space, and
    // no Rust value with a destructor is alive if `lua_call` raises.
    unsafe {
        let session = (ffi::lua_touserdata(l, 1) as usize) & 1 == 1;
        let methods = ffi::lua_upvalueindex(if session { 2 } else { 1 });
        ffi::lua_pushvalue(l, 2);
        ffi::lua_rawget(l, methods);
        if session && ffi::lua_type(l, -1) == ffi::LUA_TNIL {
            ffi::lua_settop(l, 2);
            ffi::lua_pushvalue(l, ffi::lua_upvalueindex(3));
            ffi::lua_insert(l, 1);
            ffi::lua_call(l, 2, 1);
        }
        1
    }
}

/// What each kind of handle does.
pub(crate) struct Kinds {
    /// Methods of borrowed data.
    pub data_methods: Table,
    /// `tostring(data)`, `#data`.
    pub data_tostring: Function,
    pub data_len: Function,
    /// Methods of sessions.
    pub session_methods: Table,
    /// `session.srcIp` and the other properties: `fn(session, key)`.
    pub session_property: Function,
    /// `tostring(session)`.
    pub session_tostring: Function,
}

/// Installs the metatable of light userdata.
pub(crate) fn install(lua: &Lua, k: Kinds) -> mlua::Result<()> {
    // SAFETY: pushes the three upvalues and makes the closure inside
    // exec_raw's protected call, leaving it as the only result.
    let index_fn: Function = unsafe {
        lua.exec_raw(
            (k.data_methods, k.session_methods, k.session_property),
            |l| {
                ffi::lua_pushcclosure(l, index, 3);
            },
        )?
    };
    let mt = lua.create_table()?;
    mt.set("__index", index_fn)?;
    let (dts, sts) = (k.data_tostring, k.session_tostring);
    mt.set(
        "__tostring",
        lua.create_function(move |_, h: LightUserData| -> mlua::Result<Value> {
            if data_generation(h).is_some() {
                dts.call(h)
            } else {
                sts.call(h)
            }
        })?,
    )?;
    let len = k.data_len;
    mt.set(
        "__len",
        lua.create_function(move |_, h: LightUserData| -> mlua::Result<Value> {
            if data_generation(h).is_some() {
                len.call(h)
            } else {
                Err(mlua::Error::runtime(
                    "attempt to get length of a MolochSession",
                ))
            }
        })?,
    )?;
    lua.set_type_metatable::<LightUserData>(Some(mt));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_keep_sessions_and_data_apart() {
        for n in [1u64, 2, 77, 1 << 40] {
            assert_eq!(session_serial(session_handle(n)).unwrap(), n);
            assert_eq!(data_generation(session_handle(n)), None);
            assert_eq!(data_generation(data_handle(n)), Some(n));
            assert!(session_serial(data_handle(n)).is_err());
        }
    }
}
