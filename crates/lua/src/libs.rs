//! Which standard libraries a script may open.

use mlua::StdLib;
use thiserror::Error;

/// Failure to parse a library list such as `"base,string,table"`.
#[derive(Debug, Error)]
#[error(
    "unknown Lua library '{0}' (known: base, coroutine, table, io, os, string, utf8, math, package, debug, all, safe)"
)]
pub struct LibSetError(pub String);

/// A set of standard libraries plus whether process control is allowed.
///
/// The default (`safe`) opens every library but removes process control and
/// native code loading: `os.execute`, `os.exit`, `io.popen`,
/// `package.loadlib` and the C module searchers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LibSet {
    /// Libraries opened in the interpreter (the base library is always open).
    pub libs: StdLib,
    /// When false, process-control and native-loading functions are removed.
    pub allow_process_control: bool,
}

impl Default for LibSet {
    fn default() -> Self {
        LibSet {
            libs: StdLib::ALL_SAFE,
            allow_process_control: false,
        }
    }
}

impl LibSet {
    /// Parses a comma, semicolon or space separated list: library names,
    /// `safe` (the default set), or `all` (everything, including process
    /// control). An empty list means the default.
    pub fn parse(list: &str) -> Result<LibSet, LibSetError> {
        let mut set = LibSet {
            libs: StdLib::NONE,
            allow_process_control: false,
        };
        let mut any = false;
        for name in list
            .split([',', ';', ' '])
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            any = true;
            let lib = match name {
                "all" => {
                    set.allow_process_control = true;
                    StdLib::ALL_SAFE
                }
                "safe" => StdLib::ALL_SAFE,
                "base" => StdLib::NONE,
                "coroutine" => StdLib::COROUTINE,
                "table" => StdLib::TABLE,
                "io" => StdLib::IO,
                "os" => StdLib::OS,
                "string" => StdLib::STRING,
                "utf8" => StdLib::UTF8,
                "math" => StdLib::MATH,
                "package" => StdLib::PACKAGE,
                "debug" => StdLib::DEBUG,
                other => return Err(LibSetError(other.to_string())),
            };
            set.libs |= lib;
        }
        if !any {
            return Ok(LibSet::default());
        }
        Ok(set)
    }
}
