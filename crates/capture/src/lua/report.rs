//! What the scripts did during a capture, summed over packet threads.

use std::collections::BTreeMap;

/// Errors of one `script:line`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LuaErrorSite {
    /// `script:line` (or `?` when Lua gave no position).
    pub site: String,
    /// How many times it failed.
    pub count: u64,
    /// The first error message seen there (first line only).
    pub first_message: String,
}

/// Counters of the Lua scripts of a capture.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LuaReport {
    /// Script files loaded, in load order.
    pub files: Vec<String>,
    /// Interpreters that ran (one per packet thread).
    pub interpreters: usize,
    /// Interpreters that failed to load the scripts (that thread ran
    /// without scripts), with the reason.
    pub load_failures: Vec<String>,
    /// Script callbacks run.
    pub callbacks: u64,
    /// Callbacks that failed (any reason, including the two limits below).
    pub errors: u64,
    /// Callbacks interrupted by the instruction budget.
    pub instruction_limit_hits: u64,
    /// Callbacks stopped by the memory cap.
    pub memory_limit_hits: u64,
    /// Failures by `script:line`.
    pub error_sites: Vec<LuaErrorSite>,
    /// Lua memory in use at the end, summed over interpreters (bytes).
    pub memory_in_use: u64,
    /// HTTP responses delivered to scripts.
    pub http_responses: u64,
    /// Requests that got no response (connection or protocol failure;
    /// the callback saw code 0).
    pub http_failures: u64,
    /// Requests refused because a service had `maxRequests` in flight.
    pub http_rejected: u64,
    /// Saves delayed by outstanding operations.
    pub delayed_saves: u64,
    /// Delayed saves that gave up waiting (`luaOutstandingTimeout`).
    pub outstanding_timeouts: u64,
}

impl LuaReport {
    /// Adds one interpreter's counters.
    pub(crate) fn merge(&mut self, other: &LuaReport) {
        self.interpreters += other.interpreters;
        self.load_failures
            .extend(other.load_failures.iter().cloned());
        self.callbacks += other.callbacks;
        self.errors += other.errors;
        self.instruction_limit_hits += other.instruction_limit_hits;
        self.memory_limit_hits += other.memory_limit_hits;
        self.memory_in_use += other.memory_in_use;
        self.http_responses += other.http_responses;
        self.http_failures += other.http_failures;
        self.http_rejected += other.http_rejected;
        self.delayed_saves += other.delayed_saves;
        self.outstanding_timeouts += other.outstanding_timeouts;
        let mut sites: BTreeMap<String, LuaErrorSite> = self
            .error_sites
            .drain(..)
            .map(|s| (s.site.clone(), s))
            .collect();
        for s in &other.error_sites {
            sites
                .entry(s.site.clone())
                .and_modify(|e| e.count += s.count)
                .or_insert_with(|| s.clone());
        }
        self.error_sites = sites.into_values().collect();
    }

    /// Human-readable summary lines (for the end of a capture run).
    pub fn summary_lines(&self) -> Vec<String> {
        let mut out = vec![format!(
            "lua: {} file(s) in {} interpreter(s); {} callbacks, {} errors ({} instruction limit, {} memory limit); {} KiB in use",
            self.files.len(),
            self.interpreters,
            self.callbacks,
            self.errors,
            self.instruction_limit_hits,
            self.memory_limit_hits,
            self.memory_in_use / 1024
        )];
        if self.http_responses + self.http_rejected > 0 {
            out.push(format!(
                "lua: http {} responses, {} failed, {} refused (maxRequests)",
                self.http_responses, self.http_failures, self.http_rejected
            ));
        }
        if self.delayed_saves > 0 {
            out.push(format!(
                "lua: {} saves waited for outstanding operations, {} timed out",
                self.delayed_saves, self.outstanding_timeouts
            ));
        }
        for s in &self.error_sites {
            out.push(format!(
                "lua: error x{} at {}: {}",
                s.count, s.site, s.first_message
            ));
        }
        for f in &self.load_failures {
            out.push(format!("lua: {f}"));
        }
        out
    }
}
