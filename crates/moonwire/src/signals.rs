//! SIGINT/SIGTERM set a flag; readers stop and every open session is
//! still saved.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_sig: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Installs the handlers and returns a flag mirroring them.
pub fn install() -> Arc<AtomicBool> {
    // SAFETY: the handler only stores to an atomic, which is
    // async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    let flag = Arc::new(AtomicBool::new(false));
    let mirror = Arc::clone(&flag);
    std::thread::Builder::new()
        .name("mw-signals".into())
        .spawn(move || {
            loop {
                if STOP.load(Ordering::SeqCst) {
                    mirror.store(true, Ordering::SeqCst);
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        })
        .ok();
    flag
}
