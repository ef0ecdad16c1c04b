//! Errors of the dissection engine.

use thiserror::Error;

/// What can stop a dissection run (per-packet script errors never do: they
/// are shown in that packet's tree and counted).
#[derive(Debug, Error)]
pub enum DissectError {
    /// A file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The capture file is not valid pcap/pcapng.
    #[error("{path}: bad capture file: {message}")]
    Capture {
        /// The file.
        path: String,
        /// What the parser said.
        message: String,
    },
    /// Building the Lua interpreter or running a script's top level failed.
    #[error(transparent)]
    Lua(#[from] lua::LuaHostError),
    /// A Lua API call outside packet dissection failed (e.g. in `init`).
    #[error("Lua: {0}")]
    Script(String),
    /// A command-line option is invalid (`-o`, `-e`, `-Y`, `-X`).
    #[error("{0}")]
    Usage(String),
    /// Writing the output failed.
    #[error("writing output: {0}")]
    Output(#[source] std::io::Error),
}
