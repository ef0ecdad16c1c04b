//! `MolochData` / `ArkimeData`: a handle over bytes the engine owns, handed
//! to HTTP and body-feed callbacks without copying.
//!
//! A borrowed handle is a light userdata ([`super::handles`]) that carries
//! the data *generation* it was lent in. Making one allocates nothing (no
//! userdata, no garbage to collect); its methods look the generation up in
//! the thread's current loan. The generation moves on once the callbacks
//! for those bytes are done, so a handle kept past them (in a table, an
//! upvalue) no longer matches and every use raises a Lua error instead of
//! reading freed memory. `data:copy()` and `MolochData.new(str)` make owned
//! handles (full userdata) that stay valid.

use std::cell::Cell;

use lua::mlua::{
    self, IntoLuaMulti, LightUserData, Lua, MetaMethod, MultiValue, UserData, UserDataMethods,
    UserDataRef, Value,
};

use super::handles;

thread_local! {
    /// The data generation of this thread's interpreters. Only ever
    /// increases; see [`end_callback`].
    static GENERATION: Cell<u64> = const { Cell::new(1) };
    /// The bytes lent for the current generation: (generation, start,
    /// length).
    static LOAN: Cell<(u64, *const u8, usize)> = const { Cell::new((0, std::ptr::null(), 0)) };
}

/// Invalidates every borrowed handle made so far on this thread. Called
/// after the callbacks that received a piece of borrowed data.
#[inline]
pub(crate) fn end_callback() {
    GENERATION.with(|g| g.set(g.get() + 1));
}

fn generation() -> u64 {
    GENERATION.with(Cell::get)
}

/// Lends `data` to the callbacks about to run and returns the handle to
/// pass them (a light userdata). The caller must call [`end_callback`]
/// before `data` goes away.
#[inline]
pub(crate) fn lend(data: &[u8]) -> LightUserData {
    let g = generation();
    LOAN.with(|l| l.set((g, data.as_ptr(), data.len())));
    handles::data_handle(g)
}

/// Where the bytes behind a borrowed handle are, or a Lua error when it
/// outlived its callback.
fn lent(token: LightUserData) -> mlua::Result<(*const u8, usize)> {
    let (g, ptr, len) = LOAN.with(Cell::get);
    if handles::data_generation(token) != Some(g) || g != generation() || ptr.is_null() {
        return Err(mlua::Error::runtime(
            "MolochData used after its callback returned (keep data:copy() instead)",
        ));
    }
    Ok((ptr, len))
}

/// An owned `MolochData` value (`copy()`, `new()`).
pub(crate) struct LuaData {
    bytes: Vec<u8>,
}

impl LuaData {
    /// An owned handle.
    pub(crate) fn owned(data: Vec<u8>) -> LuaData {
        LuaData { bytes: data }
    }
}

/// Runs `f` on the bytes of a `MolochData` value, borrowed or owned.
fn with_bytes<R>(this: &Value, f: impl FnOnce(&[u8]) -> mlua::Result<R>) -> mlua::Result<R> {
    match this {
        Value::LightUserData(t) => {
            let (ptr, len) = lent(*t)?;
            // SAFETY: the loan's generation is still current, so the
            // callback that received this handle is running and the engine
            // keeps the buffer alive and unchanged until it returns; the
            // slice does not outlive this method call.
            f(unsafe { std::slice::from_raw_parts(ptr, len) })
        }
        Value::UserData(ud) => f(&ud.borrow::<LuaData>()?.bytes),
        other => Err(mlua::Error::runtime(format!(
            "expected MolochData, got {}",
            other.type_name()
        ))),
    }
}

/// A compiled `MolochData.pcre_create` expression.
pub(crate) struct LuaPcre(pub(crate) lua::Pcre);

impl UserData for LuaPcre {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::ToString, |_, _, ()| Ok("MolochPcre"));
    }
}

/// A compiled `MolochData.pattern_create` glob.
pub(crate) struct LuaGlob(pub(crate) lua::Glob);

impl UserData for LuaGlob {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::ToString, |_, _, ()| Ok("MolochPattern"));
    }
}

/// Position of `needle` in `hay` (an empty needle is at 0).
pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    if needle.len() > hay.len() {
        return None;
    }
    let first = needle[0];
    let last_start = hay.len() - needle.len();
    let mut i = 0;
    while i <= last_start {
        // memchr-like skip to the next candidate first byte.
        match hay[i..=last_start].iter().position(|&b| b == first) {
            None => return None,
            Some(off) => i += off,
        }
        if &hay[i..i + needle.len()] == needle {
            return Some(i);
        }
        i += 1;
    }
    None
}

impl UserData for LuaData {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("get", |lua, this, ()| lua.create_string(&this.bytes));
        methods.add_meta_method(MetaMethod::ToString, |lua, this, ()| {
            lua.create_string(&this.bytes)
        });
        methods.add_meta_method(MetaMethod::Len, |_, this, ()| Ok(this.bytes.len()));
        methods.add_method("copy", |_, this, ()| Ok(LuaData::owned(this.bytes.clone())));
        methods.add_method("memmem", |_, this, needle: mlua::LuaString| {
            Ok(find(&this.bytes, &needle.as_bytes()).is_some())
        });
        methods.add_method("pcre_ismatch", |_, this, re: UserDataRef<LuaPcre>| {
            Ok(re.0.is_match(&this.bytes))
        });
        methods.add_method("pcre_match", |lua, this, re: UserDataRef<LuaPcre>| {
            pcre_match(lua, &this.bytes, &re.0)
        });
        methods.add_method("pattern_ismatch", |_, this, p: UserDataRef<LuaGlob>| {
            Ok(p.0.is_match(&this.bytes))
        });
    }
}

/// What borrowed handles do: the same methods as owned ones, plus
/// `tostring` and `#`.
pub(crate) fn borrowed(lua: &Lua) -> mlua::Result<(mlua::Table, mlua::Function, mlua::Function)> {
    let methods = lua.create_table()?;
    methods.set(
        "get",
        lua.create_function(|lua, this: Value| with_bytes(&this, |b| lua.create_string(b)))?,
    )?;
    methods.set(
        "copy",
        lua.create_function(|_, this: Value| {
            with_bytes(&this, |b| Ok(LuaData::owned(b.to_vec())))
        })?,
    )?;
    methods.set(
        "memmem",
        lua.create_function(|_, (this, needle): (Value, mlua::LuaString)| {
            with_bytes(&this, |b| Ok(find(b, &needle.as_bytes()).is_some()))
        })?,
    )?;
    methods.set(
        "pcre_ismatch",
        lua.create_function(|_, (this, re): (Value, UserDataRef<LuaPcre>)| {
            with_bytes(&this, |b| Ok(re.0.is_match(b)))
        })?,
    )?;
    methods.set(
        "pcre_match",
        lua.create_function(|lua, (this, re): (Value, UserDataRef<LuaPcre>)| {
            with_bytes(&this, |b| pcre_match(lua, b, &re.0))
        })?,
    )?;
    methods.set(
        "pattern_ismatch",
        lua.create_function(|_, (this, p): (Value, UserDataRef<LuaGlob>)| {
            with_bytes(&this, |b| Ok(p.0.is_match(b)))
        })?,
    )?;
    let tostring =
        lua.create_function(|lua, this: Value| with_bytes(&this, |b| lua.create_string(b)))?;
    let len = lua.create_function(|_, this: Value| with_bytes(&this, |b| Ok(b.len())))?;
    Ok((methods, tostring, len))
}

/// `true, match, group1, ...` (a group that did not take part is nil), or
/// `false` alone.
fn pcre_match(lua: &Lua, hay: &[u8], re: &lua::Pcre) -> mlua::Result<MultiValue> {
    let Some(groups) = re.captures(hay) else {
        return false.into_lua_multi(lua);
    };
    let mut out = Vec::with_capacity(groups.len() + 1);
    out.push(Value::Boolean(true));
    for g in groups {
        out.push(match g {
            Some(b) => Value::String(lua.create_string(b)?),
            None => Value::Nil,
        });
    }
    Ok(MultiValue::from_vec(out))
}

/// Installs the `MolochData` / `ArkimeData` tables.
pub(crate) fn install(lua: &Lua) -> mlua::Result<()> {
    let t = lua.create_table()?;
    t.set(
        "new",
        lua.create_function(|_, s: mlua::LuaString| Ok(LuaData::owned(s.as_bytes().to_vec())))?,
    )?;
    t.set(
        "pcre_create",
        lua.create_function(|_, re: mlua::LuaString| {
            let re = re.to_str()?;
            lua::Pcre::new(&re)
                .map(LuaPcre)
                .map_err(|e| mlua::Error::runtime(format!("pcre_create: {e}")))
        })?,
    )?;
    t.set(
        "pattern_create",
        lua.create_function(|_, p: mlua::LuaString| Ok(LuaGlob(lua::Glob::new(&p.to_str()?))))?,
    )?;
    lua.globals().set("MolochData", t.clone())?;
    lua.globals().set("ArkimeData", t)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_needles() {
        assert_eq!(find(b"hello world", b"world"), Some(6));
        assert_eq!(find(b"hello", b""), Some(0));
        assert_eq!(find(b"hello", b"hello!"), None);
        assert_eq!(find(b"aaab", b"ab"), Some(2));
        assert_eq!(find(b"abc", b"d"), None);
    }

    #[test]
    fn borrowed_data_expires_with_its_callback() {
        let lua = Lua::new();
        install(&lua).unwrap();
        let (data_methods, data_tostring, data_len) = borrowed(&lua).unwrap();
        let none = lua.create_function(|_, ()| Ok(())).unwrap();
        handles::install(
            &lua,
            handles::Kinds {
                data_methods,
                data_tostring,
                data_len,
                session_methods: lua.create_table().unwrap(),
                session_property: none.clone(),
                session_tostring: none,
            },
        )
        .unwrap();
        let buf = b"card 4111 1111 1111 1111 end".to_vec();
        let f: mlua::Function = lua
            .load(
                r#"
                re = MolochData.pcre_create([[(\d{4}) (\d{4})]])
                glob = MolochData.pattern_create("card*end")
                return function(d)
                  kept = d
                  owned = d:copy()
                  local ok, m, g1, g2 = d:pcre_match(re)
                  return d:get(), tostring(d), d:memmem("1111"), d:memmem("zz"),
                         d:pcre_ismatch(re), ok, m, g1, g2, d:pattern_ismatch(glob), #d
                end
                "#,
            )
            .eval()
            .unwrap();
        let data = lend(&buf);
        let r: (
            String,
            String,
            bool,
            bool,
            bool,
            bool,
            String,
            String,
            String,
            bool,
            usize,
        ) = f.call(data).unwrap();
        end_callback();
        assert_eq!(r.0, "card 4111 1111 1111 1111 end");
        assert_eq!(r.1, r.0);
        assert!(r.2 && !r.3 && r.4 && r.5);
        assert_eq!(
            (r.6.as_str(), r.7.as_str(), r.8.as_str()),
            ("4111 1111", "4111", "1111")
        );
        assert!(r.9);
        assert_eq!(r.10, buf.len());
        let err = lua.load("return kept:get()").exec().unwrap_err();
        assert!(err.to_string().contains("after its callback"), "{err}");
        // Nor does it come back to life when other bytes are lent later.
        let other = b"other bytes".to_vec();
        let fresh = lend(&other);
        let g: mlua::Function = lua
            .load("return function(d) return d:get(), pcall(kept.get, kept) end")
            .eval()
            .unwrap();
        let (now, ok): (String, bool) = g.call(fresh).unwrap();
        end_callback();
        assert_eq!(now, "other bytes");
        assert!(!ok, "a kept handle read a later callback's bytes");
        let s: String = lua.load("return owned:get()").eval().unwrap();
        assert_eq!(s, "card 4111 1111 1111 1111 end");
        let s: String = lua
            .load("return ArkimeData.new('xyz'):copy():get()")
            .eval()
            .unwrap();
        assert_eq!(s, "xyz");
        let no: bool = lua
            .load("return MolochData.new('abc'):pcre_match(re)")
            .eval()
            .unwrap();
        assert!(!no);
        assert!(lua.load("MolochData.pcre_create('(')").exec().is_err());
    }
}
