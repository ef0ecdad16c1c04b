//! Start-up: which scripts to load (`luaFiles`, `.lua` files in
//! `parsersDir`, `--lua`), the interpreter limits (`luaMaxInstructions`,
//! `luaMaxMemory`, `luaLibraries`, `luaOutstandingTimeout`), and a first
//! load on the main thread that checks the scripts and collects their
//! classifiers for the shared classifier set.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lua::{HostOptions, LibSet};
use protocols::fields::FieldRegistry;
use protocols::{ClassifierSet, ClassifyAction};
use thiserror::Error;

use super::report::LuaReport;
use super::scripts::LuaScripts;
use crate::Settings;

/// Seconds a session waits for outstanding script operations before it is
/// saved anyway, unless `luaOutstandingTimeout` says otherwise.
const DEFAULT_OUTSTANDING_TIMEOUT: u64 = 30;

/// The scripts could not be set up.
#[derive(Debug, Error)]
pub enum LuaSetupError {
    /// A script file could not be read.
    #[error("reading Lua script {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A `parsersDir` directory could not be listed.
    #[error("listing parsersDir {path}: {source}")]
    Dir {
        /// The directory.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A Lua setting has a bad value.
    #[error("{key}={value}: {message}")]
    Setting {
        /// The key.
        key: String,
        /// The value as given.
        value: String,
        /// What is wrong.
        message: String,
    },
    /// The interpreter could not be built, or a script failed to load
    /// (the message names the file and line). Lua errors are not `Send`,
    /// so the message is kept as text.
    #[error("{0}")]
    Host(String),
    /// The API could not be installed.
    #[error("installing the Lua API: {0}")]
    Api(String),
}

/// What every packet thread needs to build its interpreter.
#[derive(Debug)]
pub struct LuaSetup {
    /// (chunk name, source) in load order, read once.
    pub(crate) sources: Vec<(String, Vec<u8>)>,
    pub(crate) options: HostOptions,
    /// How long a save waits for outstanding operations.
    pub(crate) outstanding_timeout: Duration,
    /// Counters merged by the packet threads as they finish.
    pub(crate) report: Mutex<LuaReport>,
}

fn parse_size(key: &str, value: &str) -> Result<usize, LuaSetupError> {
    let v = value.trim().to_ascii_lowercase();
    let (num, mult) = match v.chars().last() {
        Some('k') => (&v[..v.len() - 1], 1usize << 10),
        Some('m') => (&v[..v.len() - 1], 1 << 20),
        Some('g') => (&v[..v.len() - 1], 1 << 30),
        _ => (v.as_str(), 1),
    };
    num.trim()
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| LuaSetupError::Setting {
            key: key.into(),
            value: value.into(),
            message: "expected a size in bytes (suffix k, m or g allowed; 0 = no cap)".into(),
        })
}

fn parse_u64(key: &str, value: &str) -> Result<u64, LuaSetupError> {
    value.trim().parse().map_err(|_| LuaSetupError::Setting {
        key: key.into(),
        value: value.into(),
        message: "expected a non-negative integer".into(),
    })
}

/// The script files to load: `luaFiles` (and `--lua`, which the command
/// line adds there) in order, then every `*.lua` in the `parsersDir`
/// directories (sorted; a file name seen in an earlier directory wins, as
/// Arkime does for parsers). Missing `parsersDir` directories are skipped.
pub fn script_paths(settings: &Settings) -> Result<Vec<String>, LuaSetupError> {
    let mut out: Vec<String> = settings.lua_files.clone();
    let mut seen_names: Vec<std::ffi::OsString> = Vec::new();
    for dir in &settings.parsers_dirs {
        let rd = match std::fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(LuaSetupError::Dir {
                    path: dir.clone(),
                    source,
                });
            }
        };
        let mut found: Vec<std::path::PathBuf> = rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "lua") && p.is_file())
            .collect();
        found.sort();
        for p in found {
            let Some(name) = p.file_name().map(|n| n.to_os_string()) else {
                continue;
            };
            if seen_names.contains(&name) {
                continue;
            }
            seen_names.push(name);
            out.push(p.to_string_lossy().into_owned());
        }
    }
    Ok(out)
}

impl LuaSetup {
    /// Reads the scripts and limits from `settings`. `None` when no script
    /// is configured.
    pub fn from_settings(settings: &Settings) -> Result<Option<LuaSetup>, LuaSetupError> {
        let paths = script_paths(settings)?;
        if paths.is_empty() {
            return Ok(None);
        }
        let mut sources = Vec::with_capacity(paths.len());
        for p in &paths {
            let src = std::fs::read(Path::new(p)).map_err(|source| LuaSetupError::Read {
                path: p.clone(),
                source,
            })?;
            sources.push((p.clone(), src));
        }
        let mut options = HostOptions::default();
        let raw = |k: &str| settings.raw.get(k).map(|e| e.value.clone());
        if let Some(v) = raw("luaMaxInstructions") {
            options.max_instructions = parse_u64("luaMaxInstructions", &v)?;
        }
        if let Some(v) = raw("luaMaxMemory") {
            options.max_memory = parse_size("luaMaxMemory", &v)?;
        }
        if let Some(v) = raw("luaLibraries") {
            options.libs = LibSet::parse(&v).map_err(|e| LuaSetupError::Setting {
                key: "luaLibraries".into(),
                value: v.clone(),
                message: e.to_string(),
            })?;
        }
        let timeout = match raw("luaOutstandingTimeout") {
            Some(v) => parse_u64("luaOutstandingTimeout", &v)?,
            None => DEFAULT_OUTSTANDING_TIMEOUT,
        };
        Ok(Some(LuaSetup {
            sources,
            options,
            outstanding_timeout: Duration::from_secs(timeout),
            report: Mutex::new(LuaReport {
                files: paths,
                ..LuaReport::default()
            }),
        }))
    }

    /// Loads the scripts once on this thread (reporting load errors before
    /// any packet is read) and adds their classifiers to `set`, numbered in
    /// registration order as every packet thread's interpreter numbers them.
    pub fn add_classifiers(
        &self,
        registry: &Arc<FieldRegistry>,
        set: &mut ClassifierSet,
    ) -> Result<usize, LuaSetupError> {
        let probe = LuaScripts::new(self, Arc::clone(registry), true)?;
        let regs = probe.registrations();
        for (i, c) in regs.classifiers.iter().enumerate() {
            let action = ClassifyAction::Script(i as u32);
            if c.udp {
                set.add_udp(&c.name, c.offset, &c.pattern, action);
            } else {
                set.add_tcp(&c.name, c.offset, &c.pattern, action);
            }
        }
        Ok(regs.classifiers.len())
    }

    /// The script files, in load order.
    pub fn files(&self) -> Vec<String> {
        self.sources.iter().map(|(n, _)| n.clone()).collect()
    }

    /// The counters so far (complete once every packet thread finished).
    pub fn report(&self) -> LuaReport {
        self.report
            .lock()
            .map(|r| r.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Adds a thread's counters.
    pub(crate) fn merge(&self, r: &LuaReport) {
        let mut g = self.report.lock().unwrap_or_else(|e| e.into_inner());
        g.merge(r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("k", "64m").unwrap(), 64 << 20);
        assert_eq!(parse_size("k", "1024").unwrap(), 1024);
        assert_eq!(parse_size("k", "2K").unwrap(), 2048);
        assert_eq!(parse_size("k", "0").unwrap(), 0);
        assert!(parse_size("k", "lots").is_err());
    }

    #[test]
    fn parsers_dir_lua_files() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        std::fs::write(a.path().join("z.lua"), "").unwrap();
        std::fs::write(a.path().join("a.lua"), "").unwrap();
        std::fs::write(a.path().join("notes.txt"), "").unwrap();
        std::fs::write(b.path().join("a.lua"), "").unwrap();
        std::fs::write(b.path().join("b.lua"), "").unwrap();
        let s = Settings {
            lua_files: vec!["first.lua".into()],
            parsers_dirs: vec![
                a.path().to_string_lossy().into_owned(),
                "/nonexistent/dir".into(),
                b.path().to_string_lossy().into_owned(),
            ],
            ..Settings::default()
        };
        let p = script_paths(&s).unwrap();
        let names: Vec<String> = p
            .iter()
            .map(|p| {
                Path::new(p)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| p.clone())
            })
            .collect();
        assert_eq!(names, ["first.lua", "a.lua", "z.lua", "b.lua"]);
        assert!(p[1].starts_with(&*a.path().to_string_lossy()));
    }
}
