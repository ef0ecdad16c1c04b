//! The lazy instruction budget: callbacks run without any Lua hook, and a
//! watchdog thread gives Lua's count hook only to a callback that is still
//! running after a time slice.
//!
//! In Lua 5.4 any active hook sends every VM instruction through the trace
//! path (about a quarter of the interpreter's speed), even when the hook
//! itself runs once per thousand instructions. Callbacks are short, so the
//! interpreter's main state normally has no hook at all:
//!
//! - [`Registration::callback_starts`] (called by `Budget::arm`) moves the
//!   interpreter's *epoch* on: one atomic store, plus a `lua_sethook` to
//!   remove the hook when an earlier long callback left it installed.
//! - The watchdog thread looks at every registered interpreter each
//!   [`TICK`]. One whose epoch did not move since the previous look has been
//!   in the same callback for at least one tick (or is idle). The watchdog
//!   marks it and sends its thread `SIGURG`.
//! - The signal handler, on the interpreter's own thread, installs the count
//!   hook with `lua_sethook`, which Lua allows asynchronously (its own `lua`
//!   program does the same from its SIGINT handler; loops re-read the trap
//!   flag it sets). From then on the budget counts the callback's
//!   instructions.
//!
//! `lua_sethook` is only ever called on the interpreter's own thread (by the
//! owner or by the handler interrupting it), never from the watchdog, so no
//! thread touches a Lua state another thread is changing. Registrations live
//! in a fixed static table that is never freed, so a late signal always finds
//! valid memory; entries carry the owning thread id and the epoch the
//! watchdog saw stuck, so a stale signal does nothing.

use std::ffi::c_int;
use std::sync::OnceLock;
use std::sync::atomic::{
    AtomicBool, AtomicI32, AtomicPtr, AtomicU64, AtomicUsize, Ordering::SeqCst, compiler_fence,
};
use std::thread::Thread;
use std::time::Duration;

use mlua::ffi;

/// How often the watchdog looks at the interpreters. A callback gets the
/// count hook after running between one and two ticks.
pub(crate) const TICK: Duration = Duration::from_millis(5);

/// Interpreters that can be watched at once; beyond that an interpreter
/// keeps the count hook permanently (the budget still holds, it just costs
/// more).
const SLOTS: usize = 256;

/// The signal the watchdog sends. Its default action is to be ignored, so a
/// stray one never kills the process.
const SIGNAL: c_int = libc::SIGURG;

/// One watched interpreter. Every field is atomic because the watchdog
/// reads them from its own thread and the signal handler from the owner's.
struct Slot {
    taken: AtomicBool,
    /// Kernel id of the owning thread; 0 while the slot is free.
    tid: AtomicI32,
    /// Moves on at every callback start; only the owner writes it.
    epoch: AtomicU64,
    /// The epoch the watchdog found stuck (0: none); the handler hooks only
    /// if it is still the current one.
    pending: AtomicU64,
    /// Whether the count hook may be installed on the main state (a false
    /// "true" only costs an unneeded `lua_sethook`).
    hooked: AtomicBool,
    state: AtomicPtr<ffi::lua_State>,
    hook: AtomicPtr<()>,
    count: AtomicI32,
}

impl Slot {
    const fn new() -> Slot {
        Slot {
            taken: AtomicBool::new(false),
            tid: AtomicI32::new(0),
            epoch: AtomicU64::new(0),
            pending: AtomicU64::new(0),
            hooked: AtomicBool::new(false),
            state: AtomicPtr::new(std::ptr::null_mut()),
            hook: AtomicPtr::new(std::ptr::null_mut()),
            count: AtomicI32::new(0),
        }
    }

    /// Installs the count hook on the main state (owner thread or its
    /// signal handler only).
    fn install_hook(&self) {
        let hook = self.hook.load(SeqCst);
        if hook.is_null() {
            return;
        }
        // SAFETY: `hook` was stored from a `lua_Hook` in `register`; the
        // state belongs to the calling thread and lives while the slot is
        // registered to it.
        unsafe {
            let hook: ffi::lua_Hook = std::mem::transmute::<*mut (), ffi::lua_Hook>(hook);
            ffi::lua_sethook(
                self.state.load(SeqCst),
                Some(hook),
                ffi::LUA_MASKCOUNT,
                self.count.load(SeqCst),
            );
        }
    }
}

static TABLE: [Slot; SLOTS] = [const { Slot::new() }; SLOTS];
/// Registered interpreters; the watchdog sleeps for good while it is 0.
static LIVE: AtomicUsize = AtomicUsize::new(0);
/// Epochs of successive registrations start far apart, so a reused slot
/// never looks stuck at its previous owner's epoch.
static NEXT_EPOCH: AtomicU64 = AtomicU64::new(1 << 40);
/// The previous SIGURG handler, called after ours (0: none).
static PREVIOUS: AtomicUsize = AtomicUsize::new(0);
static PREVIOUS_SIGINFO: AtomicBool = AtomicBool::new(false);

/// The watchdog thread, started (with the signal handler) on first use;
/// `None` when either could not be set up.
fn watchdog() -> Option<&'static Thread> {
    static WATCHDOG: OnceLock<Option<Thread>> = OnceLock::new();
    WATCHDOG
        .get_or_init(|| {
            if !install_handler() {
                return None;
            }
            std::thread::Builder::new()
                .name("lua-watchdog".into())
                .spawn(run)
                .ok()
                .map(|h| h.thread().clone())
        })
        .as_ref()
}

fn install_handler() -> bool {
    // SAFETY: plain sigaction calls on a zeroed, fully initialised struct.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_signal as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(SIGNAL, &action, &mut old) != 0 {
            return false;
        }
        if old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN {
            PREVIOUS_SIGINFO.store(old.sa_flags & libc::SA_SIGINFO != 0, SeqCst);
            PREVIOUS.store(old.sa_sigaction, SeqCst);
        }
    }
    true
}

/// Runs on the interrupted thread: hooks this thread's interpreters whose
/// current callback the watchdog found stuck. Only async-signal-safe work:
/// atomics, `gettid` and `lua_sethook`.
extern "C" fn on_signal(sig: c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: errno is thread-local; restored before returning.
    let errno = unsafe { *libc::__errno_location() };
    // SAFETY: gettid has no preconditions.
    let me = unsafe { libc::gettid() };
    for slot in &TABLE {
        if slot.tid.load(SeqCst) != me {
            continue;
        }
        let stuck = slot.pending.swap(0, SeqCst);
        if stuck != 0 && stuck == slot.epoch.load(SeqCst) {
            slot.install_hook();
            slot.hooked.store(true, SeqCst);
        }
    }
    let previous = PREVIOUS.load(SeqCst);
    if previous != 0 {
        // SAFETY: a handler the process installed before us, called the
        // way its flags say.
        unsafe {
            if PREVIOUS_SIGINFO.load(SeqCst) {
                let f: extern "C" fn(c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    std::mem::transmute(previous);
                f(sig, info, ctx);
            } else {
                let f: extern "C" fn(c_int) = std::mem::transmute(previous);
                f(sig);
            }
        }
    }
    // SAFETY: see above.
    unsafe { *libc::__errno_location() = errno };
}

fn run() {
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    let mut seen = [0u64; SLOTS];
    loop {
        if LIVE.load(SeqCst) == 0 {
            std::thread::park();
            continue;
        }
        std::thread::sleep(TICK);
        for (slot, seen) in TABLE.iter().zip(seen.iter_mut()) {
            let tid = slot.tid.load(SeqCst);
            if tid == 0 {
                continue;
            }
            let epoch = slot.epoch.load(SeqCst);
            if epoch == *seen && !slot.hooked.load(SeqCst) {
                slot.pending.store(epoch, SeqCst);
                // SAFETY: tgkill only names a thread of this process; a
                // thread that is gone yields ESRCH, which is fine.
                unsafe { libc::tgkill(pid, tid, SIGNAL) };
            }
            *seen = epoch;
        }
    }
}

/// An interpreter's place in the watchdog's table, released on drop. Not
/// `Send`: it belongs to the thread that registered it.
pub(crate) struct Registration {
    slot: &'static Slot,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Registration {
    /// Watches the interpreter whose main state is `state`, hooking it with
    /// `hook` every `count` instructions when a callback runs long. The
    /// caller removes any hook from `state` once this returns `Some`.
    ///
    /// # Safety
    /// `state` must be the main state of a Lua interpreter owned by the
    /// calling thread that outlives the returned registration.
    pub(crate) unsafe fn register(
        state: *mut ffi::lua_State,
        hook: ffi::lua_Hook,
        count: c_int,
    ) -> Option<Registration> {
        let watchdog = watchdog()?;
        let slot = TABLE.iter().find(|s| {
            s.taken
                .compare_exchange(false, true, SeqCst, SeqCst)
                .is_ok()
        })?;
        slot.state.store(state, SeqCst);
        slot.hook.store(hook as *mut (), SeqCst);
        slot.count.store(count, SeqCst);
        slot.epoch
            .store(NEXT_EPOCH.fetch_add(1 << 40, SeqCst), SeqCst);
        slot.pending.store(0, SeqCst);
        slot.hooked.store(false, SeqCst);
        // SAFETY: gettid has no preconditions.
        slot.tid.store(unsafe { libc::gettid() }, SeqCst);
        LIVE.fetch_add(1, SeqCst);
        watchdog.unpark();
        Some(Registration {
            slot,
            _not_send: std::marker::PhantomData,
        })
    }

    /// A callback starts: the watchdog's clock for it starts now, and a
    /// hook an earlier long callback left behind goes.
    #[inline]
    pub(crate) fn callback_starts(&self) {
        let e = self.slot.epoch.load(SeqCst);
        self.slot
            .epoch
            .store(e.wrapping_add(1), std::sync::atomic::Ordering::Relaxed);
        compiler_fence(SeqCst);
        if self.slot.hooked.load(std::sync::atomic::Ordering::Relaxed) {
            self.unhook();
        }
    }

    #[cold]
    #[inline(never)]
    fn unhook(&self) {
        self.slot.hooked.store(false, SeqCst);
        // SAFETY: the state is this thread's (see `register`).
        unsafe { ffi::lua_sethook(self.slot.state.load(SeqCst), None, 0, 0) };
        compiler_fence(SeqCst);
        if self.slot.hooked.load(SeqCst) {
            // The handler hooked the new callback while we unhooked (the
            // watchdog already found it stuck): keep its hook.
            self.slot.install_hook();
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let s = self.slot;
        // From here on the handler ignores the slot.
        s.tid.store(0, SeqCst);
        s.pending.store(0, SeqCst);
        s.hooked.store(false, SeqCst);
        s.hook.store(std::ptr::null_mut(), SeqCst);
        s.state.store(std::ptr::null_mut(), SeqCst);
        LIVE.fetch_sub(1, SeqCst);
        s.taken.store(false, SeqCst);
    }
}

/// Puts `lua` (whose global count hook is set) under the watchdog: removes
/// the hook from its main state and makes `coroutine.create`/`wrap` give
/// each new coroutine the hook, since the watchdog only ever hooks the main
/// state. `None` (the hook stays on for good) when the watchdog is not
/// available.
pub(crate) fn watch(lua: &mlua::Lua, count: c_int) -> mlua::Result<Option<Box<Registration>>> {
    let mut main: *mut ffi::lua_State = std::ptr::null_mut();
    // SAFETY: reads the registry's main-thread entry and leaves the stack
    // as it was.
    unsafe {
        lua.exec_raw::<()>((), |l| {
            ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, ffi::LUA_RIDX_MAINTHREAD);
            main = ffi::lua_tothread(l, -1);
            ffi::lua_pop(l, 1);
        })?;
    }
    if main.is_null() {
        return Ok(None);
    }
    // SAFETY: `main` is this interpreter's main state.
    let Some(hook) = (unsafe { ffi::lua_gethook(main) }) else {
        return Ok(None);
    };
    hook_coroutines(lua, hook, count)?;
    // SAFETY: `main` belongs to `lua`, which the caller keeps on this thread
    // for longer than the registration (`LuaHost` drops it first).
    let Some(reg) = (unsafe { Registration::register(main, hook, count) }) else {
        return Ok(None);
    };
    // SAFETY: as above; the main state runs hook-free from now on.
    unsafe { ffi::lua_sethook(main, None, 0, 0) };
    Ok(Some(Box::new(reg)))
}

/// Wraps `coroutine.create` and `coroutine.wrap` so the coroutines they
/// make carry the count hook (a coroutine copies its creator's hook, and
/// the main state normally has none).
fn hook_coroutines(lua: &mlua::Lua, hook: ffi::lua_Hook, count: c_int) -> mlua::Result<()> {
    let Ok(co) = lua.globals().get::<mlua::Table>("coroutine") else {
        return Ok(());
    };
    let create: mlua::Function = co.get("create")?;
    let wrap: mlua::Function = co.get("wrap")?;
    co.set(
        "create",
        lua.create_function(move |_, f: mlua::Value| {
            let thread: mlua::Thread = create.call(f)?;
            // SAFETY: a thread value's pointer is its lua_State, alive
            // while `thread` holds it.
            unsafe {
                ffi::lua_sethook(
                    thread.to_pointer() as *mut ffi::lua_State,
                    Some(hook),
                    ffi::LUA_MASKCOUNT,
                    count,
                )
            };
            Ok(thread)
        })?,
    )?;
    co.set(
        "wrap",
        lua.create_function(move |lua, f: mlua::Value| {
            // SAFETY: calls the original `wrap` with `f` (both pushed by
            // exec_raw, protected), then hooks the coroutine it keeps as
            // its closure's first upvalue; leaves the wrapped function as
            // the only result.
            unsafe {
                lua.exec_raw::<mlua::Function>((wrap.clone(), f), |l| {
                    ffi::lua_call(l, 1, 1);
                    if !ffi::lua_getupvalue(l, -1, 1).is_null() {
                        let co = ffi::lua_tothread(l, -1);
                        if !co.is_null() {
                            ffi::lua_sethook(co, Some(hook), ffi::LUA_MASKCOUNT, count);
                        }
                        ffi::lua_pop(l, 1);
                    }
                })
            }
        })?,
    )?;
    Ok(())
}
