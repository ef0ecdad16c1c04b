//! `MolochData` / `ArkimeData`: a handle over bytes the engine owns, handed
//! to HTTP and body-feed callbacks without copying.
//!
//! One borrowed handle is made per piece of data and handed to every
//! callback registered for it. It carries the *generation* it was made in;
//! the generation moves on once those callbacks are done, so a handle kept
//! past them (in a table, an upvalue) no longer matches and every use
//! raises a Lua error instead of reading freed memory.
//! `data:copy()` and `MolochData.new(str)` make owned handles that stay
//! valid.

use std::cell::Cell;

use lua::mlua::{
    self, IntoLuaMulti, Lua, MetaMethod, MultiValue, UserData, UserDataMethods, UserDataRef, Value,
};

thread_local! {
    /// The data generation of this thread's interpreters. Only ever
    /// increases; see [`end_callback`].
    static GENERATION: Cell<u64> = const { Cell::new(1) };
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

enum Bytes {
    /// Points into a buffer the engine keeps alive while `generation` is
    /// current (the callback that received it is running).
    Borrowed {
        ptr: *const u8,
        len: usize,
        generation: u64,
    },
    /// Owned bytes (`copy()`, `new()`).
    Owned(Vec<u8>),
}

/// A `MolochData` value.
pub(crate) struct LuaData {
    bytes: Bytes,
}

impl LuaData {
    /// A borrowed handle over `data`. The caller must call
    /// [`end_callback`] before `data` goes away.
    pub(crate) fn borrowed(data: &[u8]) -> LuaData {
        LuaData {
            bytes: Bytes::Borrowed {
                ptr: data.as_ptr(),
                len: data.len(),
                generation: generation(),
            },
        }
    }

    /// An owned handle.
    pub(crate) fn owned(data: Vec<u8>) -> LuaData {
        LuaData {
            bytes: Bytes::Owned(data),
        }
    }

    /// The bytes, or a Lua error when a borrowed handle outlived its
    /// callback.
    pub(crate) fn bytes(&self) -> mlua::Result<&[u8]> {
        match &self.bytes {
            Bytes::Owned(v) => Ok(v),
            Bytes::Borrowed {
                ptr,
                len,
                generation: g,
            } => {
                if *g != generation() {
                    return Err(mlua::Error::runtime(
                        "MolochData used after its callback returned (keep data:copy() instead)",
                    ));
                }
                // SAFETY: the generation is still current, so the callback
                // that received this handle is running and the engine keeps
                // the buffer alive and unchanged until it returns.
                Ok(unsafe { std::slice::from_raw_parts(*ptr, *len) })
            }
        }
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
        methods.add_method("get", |lua, this, ()| lua.create_string(this.bytes()?));
        methods.add_meta_method(MetaMethod::ToString, |lua, this, ()| {
            lua.create_string(this.bytes()?)
        });
        methods.add_meta_method(MetaMethod::Len, |_, this, ()| Ok(this.bytes()?.len()));
        methods.add_method("copy", |_, this, ()| {
            Ok(LuaData::owned(this.bytes()?.to_vec()))
        });
        methods.add_method("memmem", |_, this, needle: mlua::LuaString| {
            Ok(find(this.bytes()?, &needle.as_bytes()).is_some())
        });
        methods.add_method("pcre_ismatch", |_, this, re: UserDataRef<LuaPcre>| {
            Ok(re.0.is_match(this.bytes()?))
        });
        methods.add_method("pcre_match", |lua, this, re: UserDataRef<LuaPcre>| {
            pcre_match(lua, this.bytes()?, &re.0)
        });
        methods.add_method("pattern_ismatch", |_, this, p: UserDataRef<LuaGlob>| {
            Ok(p.0.is_match(this.bytes()?))
        });
    }
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
        let data = LuaData::borrowed(&buf);
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
