//! Process-wide state every worker thread sees: `proc.*` variables, maps
//! and ACL files, the log sink, counters and server health.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::map::MapStore;
use crate::sample::Sample;

/// Where log lines go; the binary decides (stderr), tests collect them.
pub type LogSink = Arc<dyn Fn(u8, &str) + Send + Sync>;

/// Syslog level names, index = level.
pub const LEVELS: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

/// Runtime state of one server, shared across threads.
#[derive(Debug)]
pub struct ServerState {
    /// Whether health checks (or the absence of them) say it is up.
    pub up: AtomicBool,
    /// Connections in use (for `leastconn`).
    pub active: AtomicUsize,
}

impl Default for ServerState {
    fn default() -> Self {
        ServerState {
            up: AtomicBool::new(true),
            active: AtomicUsize::new(0),
        }
    }
}

/// Shared process state.
pub struct Shared {
    proc_vars: Mutex<HashMap<String, Sample>>,
    /// Maps and ACL files by name.
    pub maps: MapStore,
    log: LogSink,
    /// Process start (for `core.get_info` uptime).
    pub started: Instant,
    /// Requests/streams handled.
    pub total_requests: AtomicU64,
    /// Client connections open now.
    pub current_conns: AtomicUsize,
    /// Lua errors (failed actions, services, fetches...).
    pub lua_errors: AtomicU64,
    /// Server states by `backend/server`.
    pub servers: Mutex<HashMap<String, Arc<ServerState>>>,
    /// Number of worker threads.
    pub nbthread: usize,
}

impl Shared {
    /// New shared state logging to `log`.
    pub fn new(log: LogSink, nbthread: usize) -> Shared {
        Shared {
            proc_vars: Mutex::new(HashMap::new()),
            maps: MapStore::default(),
            log,
            started: Instant::now(),
            total_requests: AtomicU64::new(0),
            current_conns: AtomicUsize::new(0),
            lua_errors: AtomicU64::new(0),
            servers: Mutex::new(HashMap::new()),
            nbthread,
        }
    }

    /// Sends one log line at `level` (0..7).
    pub fn log(&self, level: u8, msg: &str) {
        (self.log)(level.min(7), msg);
    }

    /// Reads a `proc.*` variable.
    pub fn get_proc_var(&self, name: &str) -> Option<Sample> {
        self.proc_vars.lock().ok()?.get(name).cloned()
    }

    /// Sets (Some) or removes (None) a `proc.*` variable.
    pub fn set_proc_var(&self, name: &str, value: Option<Sample>) {
        if let Ok(mut v) = self.proc_vars.lock() {
            match value {
                Some(s) => {
                    v.insert(name.to_string(), s);
                }
                None => {
                    v.remove(name);
                }
            }
        }
    }

    /// The state of `backend/server`, created on first use.
    pub fn server(&self, key: &str) -> Arc<ServerState> {
        match self.servers.lock() {
            Ok(mut m) => m.entry(key.to_string()).or_default().clone(),
            Err(_) => Arc::new(ServerState::default()),
        }
    }

    /// Counts one Lua error.
    pub fn count_lua_error(&self) {
        self.lua_errors.fetch_add(1, Ordering::Relaxed);
    }
}
