//! Packet-lifetime Lua objects (`Tvb`, `TvbRange`, `TreeItem`) as plain
//! Lua userdata: a few bytes copied in and out of the Lua stack, one shared
//! metatable per class, no finalizer.
//!
//! A dissector makes a dozen or more of these per packet. As mlua userdata
//! each one carried a destructor the collector had to run, and every method
//! call paid a type-id lookup, a borrow and a Lua `__index` closure; plain
//! userdata cost an allocation and nothing else. Their methods are ordinary
//! mlua functions whose first argument converts straight from the stack.

use std::cell::{Cell, RefCell};
use std::ffi::{CStr, c_int, c_void};
use std::marker::PhantomData;
use std::rc::Rc;

use lua::mlua::{
    self, FromLua, FromLuaMulti, Function, IntoLua, IntoLuaMulti, Lua, MetaMethod, MultiValue,
    Table, Value as LuaValue, ffi, state::RawLua,
};

use crate::ctx::{Ctx, Shared};

/// The engine context as plain userdata hold it: a pointer, valid while
/// the Lua state lives (the state is owned by the engine, and the context
/// is also kept by the state's app data, so it outlives every callback).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CtxRef(*const RefCell<Ctx>);

impl CtxRef {
    /// The pointer of a shared context.
    pub fn of(ctx: &Shared) -> CtxRef {
        CtxRef(Rc::as_ptr(ctx))
    }
}

impl std::ops::Deref for CtxRef {
    type Target = RefCell<Ctx>;
    fn deref(&self) -> &RefCell<Ctx> {
        // SAFETY: see the type's documentation: the context outlives the
        // Lua state, and plain userdata are only reachable from it.
        unsafe { &*self.0 }
    }
}

/// A class of plain userdata: `Copy` data and the registry key of its
/// metatable.
pub trait Plain: Copy + 'static {
    /// Class name (`__name`, used by `typeof` and in messages).
    const NAME: &'static str;
    /// Registry key of the metatable: the address of a static, so looking
    /// it up hashes a pointer instead of comparing strings.
    fn key() -> *const c_void;
}

/// Stores `v` in the registry under a pointer key.
pub fn set_registry(lua: &Lua, key: *const c_void, v: impl IntoLua) -> mlua::Result<()> {
    // SAFETY: the closure pops the one pushed value into the registry.
    unsafe {
        lua.exec_raw::<()>(v, |state| {
            ffi::lua_rawsetp(state, ffi::LUA_REGISTRYINDEX, key);
        })
    }
}

thread_local! {
    /// Smallest memory cap of the interpreters on this thread (0 = none):
    /// below it an allocation cannot fail, so objects are made without a
    /// protected call.
    static MEMORY_CAP: Cell<usize> = const { Cell::new(0) };
}

/// Records an interpreter's memory cap (0 = no cap).
pub fn note_memory_cap(cap: usize) {
    if cap > 0 {
        MEMORY_CAP.with(|c| {
            let cur = c.get();
            c.set(if cur == 0 { cap } else { cur.min(cap) });
        });
    }
}

/// Room left before the cap that makes an unprotected allocation safe.
const HEADROOM: usize = 1 << 20;

unsafe fn can_allocate(state: *mut ffi::lua_State) -> bool {
    let cap = MEMORY_CAP.with(|c| c.get());
    if cap == 0 {
        return true;
    }
    // SAFETY: a count query neither allocates nor raises.
    let kb = unsafe { ffi::lua_gc(state, ffi::LUA_GCCOUNT, 0) };
    kb >= 0 && (kb as usize) * 1024 + HEADROOM < cap
}

/// The memory block of a plain object: its class key, then its value.
/// Checking the key read from the block costs two API calls, where the
/// metatable took five.
#[repr(C)]
struct Block<T> {
    key: *const c_void,
    value: T,
}

/// The class key of the plain object at `idx` (null for anything else).
///
/// # Safety
/// `state` is a valid Lua state with `idx` acceptable.
pub unsafe fn class_of(state: *mut ffi::lua_State, idx: c_int) -> *const c_void {
    unsafe {
        // Full userdata only: a light userdata has no block to read.
        if ffi::lua_type(state, idx) != ffi::LUA_TUSERDATA
            || ffi::lua_rawlen(state, idx) < std::mem::size_of::<*const c_void>()
        {
            return std::ptr::null();
        }
        // Only C code can make a full userdata, and only ours stores a
        // pointer to one of our statics in its first word.
        let p = ffi::lua_touserdata(state, idx) as *const *const c_void;
        if p.is_null() {
            return std::ptr::null();
        }
        std::ptr::read_unaligned(p)
    }
}

/// Reads the object at `idx` whose [`class_of`] is `T::key()`.
///
/// # Safety
/// As [`class_of`].
pub unsafe fn read<T: Plain>(state: *mut ffi::lua_State, idx: c_int) -> Option<T> {
    unsafe {
        if ffi::lua_rawlen(state, idx) != std::mem::size_of::<Block<T>>() {
            return None;
        }
        let p = ffi::lua_touserdata(state, idx) as *const Block<T>;
        (!p.is_null()).then(|| std::ptr::read_unaligned(&raw const (*p).value))
    }
}

/// Reads the value at `idx` when it is a `T`.
///
/// # Safety
/// `state` is a valid Lua state with `idx` acceptable.
#[inline]
pub unsafe fn test<T: Plain>(state: *mut ffi::lua_State, idx: c_int) -> Option<T> {
    unsafe {
        // A string or table of that length has no userdata pointer, a
        // light userdata has length 0: a block of the right size at a
        // non-null pointer is a full userdata.
        if ffi::lua_rawlen(state, idx) != std::mem::size_of::<Block<T>>() {
            return None;
        }
        let p = ffi::lua_touserdata(state, idx) as *const Block<T>;
        if p.is_null() || !std::ptr::eq(std::ptr::read_unaligned(&raw const (*p).key), T::key()) {
            return None;
        }
        Some(std::ptr::read_unaligned(&raw const (*p).value))
    }
}

/// Makes the userdata of `v` (without its metatable) on top of the stack.
///
/// # Safety
/// `state` is a valid Lua state with room for one value; may raise a
/// memory error.
#[inline]
pub unsafe fn new_block<T: Plain>(state: *mut ffi::lua_State, v: T) {
    unsafe {
        let p = ffi::lua_newuserdatauv(state, std::mem::size_of::<Block<T>>(), 0) as *mut Block<T>;
        std::ptr::write_unaligned(
            p,
            Block {
                key: T::key(),
                value: v,
            },
        );
    }
}

unsafe fn write_new<T: Plain>(state: *mut ffi::lua_State, v: T) {
    unsafe {
        new_block(state, v);
        ffi::lua_rawgetp(state, ffi::LUA_REGISTRYINDEX, T::key());
        ffi::lua_setmetatable(state, -2);
    }
}

unsafe extern "C-unwind" fn make_protected<T: Plain>(state: *mut ffi::lua_State) -> c_int {
    unsafe {
        let v = std::ptr::read_unaligned(ffi::lua_touserdata(state, 1) as *const T);
        write_new(state, v);
    }
    1
}

/// Pushes a new `T`. Near the memory cap the allocation runs in a
/// protected call, so running out of memory is an error, not a jump over
/// Rust frames.
///
/// # Safety
/// `state` is a valid Lua state.
pub unsafe fn push<T: Plain>(state: *mut ffi::lua_State, v: T) -> mlua::Result<()> {
    unsafe {
        if ffi::lua_checkstack(state, 4) == 0 {
            return Err(mlua::Error::StackError);
        }
        if can_allocate(state) {
            write_new(state, v);
            return Ok(());
        }
        let mut v = v;
        ffi::lua_pushcfunction(state, make_protected::<T>);
        ffi::lua_pushlightuserdata(state, &mut v as *mut T as *mut c_void);
        if ffi::lua_pcall(state, 1, 1, 0) != ffi::LUA_OK {
            ffi::lua_pop(state, 1);
            return Err(mlua::Error::MemoryError(format!(
                "not enough memory for a {}",
                T::NAME
            )));
        }
        Ok(())
    }
}

/// Converts a Lua value to `T` (the slow path, outside argument lists).
pub fn from_value<T: Plain>(lua: &Lua, v: &LuaValue) -> Option<T> {
    let LuaValue::UserData(ud) = v else {
        return None;
    };
    let mut out = None;
    // SAFETY: the closure only inspects the pushed value.
    let r: mlua::Result<()> = unsafe {
        lua.exec_raw(ud.clone(), |state| {
            out = test::<T>(state, -1);
            ffi::lua_pop(state, 1);
        })
    };
    r.ok().and(out)
}

/// Makes a Lua value of `T` (the slow path, outside return lists).
pub fn to_value<T: Plain>(lua: &Lua, v: T) -> mlua::Result<LuaValue> {
    // SAFETY: exec_raw runs the closure in a protected call.
    unsafe {
        lua.exec_raw(LuaValue::Nil, |state| {
            ffi::lua_pop(state, 1);
            write_new(state, v);
        })
    }
}

fn conversion_error<T: Plain>(from: &'static str) -> mlua::Error {
    mlua::Error::FromLuaConversionError {
        from,
        to: T::NAME.to_string(),
        message: Some(format!("expected a {}", T::NAME)),
    }
}

/// Implements `FromLua`/`IntoLua` for a plain class.
macro_rules! plain_class {
    ($t:ty, $name:literal) => {
        impl $crate::plain::Plain for $t {
            const NAME: &'static str = $name;
            fn key() -> *const std::ffi::c_void {
                static KEY: u8 = 0;
                &KEY as *const u8 as *const std::ffi::c_void
            }
        }
        impl lua::mlua::FromLua for $t {
            fn from_lua(v: lua::mlua::Value, lua: &lua::mlua::Lua) -> lua::mlua::Result<Self> {
                $crate::plain::from_value::<$t>(lua, &v)
                    .ok_or_else(|| $crate::plain::conversion_error_of::<$t>(v.type_name()))
            }
            unsafe fn from_stack(
                idx: std::ffi::c_int,
                lua: &lua::mlua::state::RawLua,
            ) -> lua::mlua::Result<Self> {
                unsafe { $crate::plain::from_stack::<$t>(idx, lua) }
            }
        }
        impl lua::mlua::IntoLua for $t {
            fn into_lua(self, lua: &lua::mlua::Lua) -> lua::mlua::Result<lua::mlua::Value> {
                $crate::plain::to_value(lua, self)
            }
            unsafe fn push_into_stack(
                self,
                lua: &lua::mlua::state::RawLua,
            ) -> lua::mlua::Result<()> {
                unsafe { $crate::plain::push(lua.state(), self) }
            }
        }
    };
}
pub(crate) use plain_class;

/// Error for a value that is not a `T`.
pub fn conversion_error_of<T: Plain>(from: &'static str) -> mlua::Error {
    conversion_error::<T>(from)
}

/// `FromLua::from_stack` for plain classes.
///
/// # Safety
/// As `FromLua::from_stack`.
pub unsafe fn from_stack<T: Plain>(idx: c_int, lua: &RawLua) -> mlua::Result<T> {
    let state = lua.state();
    unsafe {
        match test::<T>(state, idx) {
            Some(v) => Ok(v),
            None => {
                let tn = CStr::from_ptr(ffi::luaL_typename(state, idx));
                Err(conversion_error::<T>(match tn.to_bytes() {
                    b"nil" => "nil",
                    b"number" => "number",
                    b"string" => "string",
                    b"table" => "table",
                    b"boolean" => "boolean",
                    b"function" => "function",
                    _ => "userdata",
                }))
            }
        }
    }
}

/// A method's arguments: the object, then the rest.
pub struct With<T, A>(pub T, pub A);

impl<T: FromLua, A: FromLuaMulti> FromLuaMulti for With<T, A> {
    fn from_lua_multi(mut values: MultiValue, lua: &Lua) -> mlua::Result<Self> {
        let t = T::from_lua(values.pop_front().unwrap_or(LuaValue::Nil), lua)?;
        Ok(With(t, A::from_lua_multi(values, lua)?))
    }

    fn from_lua_args(
        mut args: MultiValue,
        i: usize,
        to: Option<&str>,
        lua: &Lua,
    ) -> mlua::Result<Self> {
        let t = T::from_lua_arg(args.pop_front().unwrap_or(LuaValue::Nil), i, to, lua)?;
        Ok(With(t, A::from_lua_args(args, i + 1, to, lua)?))
    }

    unsafe fn from_stack_args(
        nargs: c_int,
        i: usize,
        to: Option<&str>,
        lua: &RawLua,
    ) -> mlua::Result<Self> {
        unsafe {
            if nargs == 0 {
                return Err(mlua::Error::RuntimeError(format!(
                    "calling a {} method needs the object (use ':')",
                    std::any::type_name::<T>().rsplit("::").next().unwrap_or("")
                )));
            }
            let t = T::from_stack_arg(-nargs, i, to, lua)?;
            Ok(With(t, A::from_stack_args(nargs - 1, i + 1, to, lua)?))
        }
    }
}

/// Arguments whose conversion error is kept, so it can be given the
/// method's name (`bad argument #2 to \`Tvb.__call\``), as mlua names
/// its own userdata methods.
pub struct Args<A>(mlua::Result<A>);

impl<A: FromLuaMulti> FromLuaMulti for Args<A> {
    fn from_lua_multi(values: MultiValue, lua: &Lua) -> mlua::Result<Self> {
        Ok(Args(A::from_lua_multi(values, lua)))
    }

    fn from_lua_args(
        args: MultiValue,
        i: usize,
        to: Option<&str>,
        lua: &Lua,
    ) -> mlua::Result<Self> {
        Ok(Args(A::from_lua_args(args, i, to, lua)))
    }

    unsafe fn from_stack_args(
        nargs: c_int,
        i: usize,
        to: Option<&str>,
        lua: &RawLua,
    ) -> mlua::Result<Self> {
        Ok(Args(unsafe { A::from_stack_args(nargs, i, to, lua) }))
    }
}

impl<A> Args<A> {
    /// The arguments, or the conversion error naming `to`.
    fn named(self, to: &str) -> mlua::Result<A> {
        self.0.map_err(|e| match e {
            mlua::Error::BadArgument {
                to: None,
                pos,
                name,
                cause,
            } => mlua::Error::BadArgument {
                to: Some(to.to_string()),
                pos,
                name,
                cause,
            },
            other => other,
        })
    }
}

/// Collects the methods and metamethods of a plain class.
pub struct Methods<'a, T> {
    lua: &'a Lua,
    methods: Table,
    meta: Table,
    error: Option<mlua::Error>,
    _t: PhantomData<T>,
}

impl<'a, T: Plain + FromLua> Methods<'a, T> {
    fn keep(&mut self, r: mlua::Result<()>) {
        if let Err(e) = r
            && self.error.is_none()
        {
            self.error = Some(e);
        }
    }

    fn function<F, A, R>(&mut self, name: &str, f: F) -> Option<Function>
    where
        F: Fn(&Lua, &T, A) -> mlua::Result<R> + 'static,
        A: FromLuaMulti,
        R: IntoLuaMulti,
    {
        let to = format!("{}.{name}", T::NAME);
        match self
            .lua
            .create_function(move |lua, args: Args<With<T, A>>| {
                let With(this, args) = args.named(&to)?;
                f(lua, &this, args)
            }) {
            Ok(f) => Some(f),
            Err(e) => {
                self.keep(Err(e));
                None
            }
        }
    }

    /// A method called as `obj:name(args)`.
    pub fn add_method<F, A, R>(&mut self, name: &str, f: F)
    where
        F: Fn(&Lua, &T, A) -> mlua::Result<R> + 'static,
        A: FromLuaMulti,
        R: IntoLuaMulti,
    {
        if let Some(func) = self.function(name, f) {
            let r = self.methods.raw_set(name, func);
            self.keep(r);
        }
    }

    /// A method given its raw arguments (the object included).
    pub fn add_function<F, A, R>(&mut self, name: &str, f: F)
    where
        F: Fn(&Lua, A) -> mlua::Result<R> + 'static,
        A: FromLuaMulti,
        R: IntoLuaMulti,
    {
        let to = format!("{}.{name}", T::NAME);
        let r = self
            .lua
            .create_function(move |lua, args: Args<A>| f(lua, args.named(&to)?))
            .and_then(|func| self.methods.raw_set(name, func));
        self.keep(r);
    }

    /// A metamethod with the object as first argument.
    pub fn add_meta_method<F, A, R>(&mut self, m: MetaMethod, f: F)
    where
        F: Fn(&Lua, &T, A) -> mlua::Result<R> + 'static,
        A: FromLuaMulti,
        R: IntoLuaMulti,
    {
        if let Some(func) = self.function(m.name(), f) {
            let r = self.meta.raw_set(m.name(), func);
            self.keep(r);
        }
    }
}

/// Builds and registers the metatable of a plain class. Unknown method
/// names raise `Class:name() is not supported by moonwire`.
pub fn install<T: Plain + FromLua>(
    lua: &Lua,
    add: impl FnOnce(&mut Methods<'_, T>),
) -> mlua::Result<()> {
    let mut m = Methods {
        lua,
        methods: lua.create_table()?,
        meta: lua.create_table_with_capacity(0, 8)?,
        error: None,
        _t: PhantomData,
    };
    add(&mut m);
    if let Some(e) = m.error {
        return Err(e);
    }
    let missing = lua.create_table()?;
    missing.raw_set(
        "__index",
        lua.create_function(|lua, (_t, key): (LuaValue, LuaValue)| -> mlua::Result<()> {
            let key = match key {
                LuaValue::String(s) => s.to_string_lossy(),
                other => other.to_string()?,
            };
            Err(crate::lua_tvb::lerr(
                lua,
                format!("{}:{key}() is not supported by moonwire", T::NAME),
            ))
        })?,
    )?;
    m.methods.set_metatable(Some(missing))?;
    m.meta.raw_set("__index", m.methods)?;
    m.meta.raw_set("__name", T::NAME)?;
    set_registry(lua, T::key(), m.meta)
}
