//! Arkime's `config.ini`: a `[default]` section, node sections that
//! override it, and `-o key=value` overrides on top. Typed settings with
//! Arkime's defaults come out; unknown keys and missing files come out as
//! warnings, malformed lines as errors naming file and line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// A configuration that cannot be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line is neither a section, a comment nor `key=value`.
    #[error("{path}:{line}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A value does not fit its key.
    #[error("{origin}: bad value for {key}: {message}")]
    Value {
        /// `file:line` or `-o` where the value came from.
        origin: String,
        /// The key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// `-o` was not `key=value`.
    #[error("-o {0}: expected key=value")]
    Override(String),
}

/// One `key=value` with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The value, trimmed.
    pub value: String,
    /// `file:line`, or `-o` for command-line overrides.
    pub origin: String,
}

/// A parsed ini file: sections in order, keys in order.
#[derive(Debug, Clone, Default)]
pub struct IniFile {
    sections: Vec<(String, Vec<(String, Entry)>)>,
}

impl IniFile {
    /// Parses ini text; `path` is used in positions.
    pub fn parse(path: &Path, text: &str) -> Result<IniFile, ConfigError> {
        let mut ini = IniFile::default();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(rest) = line.strip_prefix('[') {
                let Some(name) = rest.strip_suffix(']') else {
                    return Err(ConfigError::Syntax {
                        path: path.to_path_buf(),
                        line: n + 1,
                        message: format!("section header without closing ']': {line}"),
                    });
                };
                ini.sections.push((name.trim().to_string(), Vec::new()));
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(ConfigError::Syntax {
                    path: path.to_path_buf(),
                    line: n + 1,
                    message: format!("expected key=value, got {line:?}"),
                });
            };
            let key = key.trim();
            if key.is_empty() {
                return Err(ConfigError::Syntax {
                    path: path.to_path_buf(),
                    line: n + 1,
                    message: "empty key".into(),
                });
            }
            let Some((_, entries)) = ini.sections.last_mut() else {
                return Err(ConfigError::Syntax {
                    path: path.to_path_buf(),
                    line: n + 1,
                    message: "key before any [section]".into(),
                });
            };
            entries.push((
                key.to_string(),
                Entry {
                    value: value.trim().to_string(),
                    origin: format!("{}:{}", path.display(), n + 1),
                },
            ));
        }
        Ok(ini)
    }

    /// Reads and parses a file.
    pub fn load(path: &Path) -> Result<IniFile, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        IniFile::parse(path, &text)
    }

    /// The entries of a section (the last one wins for repeated keys).
    pub fn section(&self, name: &str) -> BTreeMap<String, Entry> {
        let mut out = BTreeMap::new();
        for (n, entries) in &self.sections {
            if n == name {
                for (k, e) in entries {
                    out.insert(k.clone(), e.clone());
                }
            }
        }
        out
    }

    /// Whether a section exists.
    pub fn has_section(&self, name: &str) -> bool {
        self.sections.iter().any(|(n, _)| n == name)
    }

    /// Section names in file order.
    pub fn section_names(&self) -> Vec<&str> {
        self.sections.iter().map(|(n, _)| n.as_str()).collect()
    }
}

/// How the session key uses VLAN/VNI ids (`sessionIdTracking`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionIdTracking {
    /// Ignore VLANs and VNIs.
    None,
    /// Sessions on different VLANs are different sessions.
    Vlan,
    /// Sessions on different VNIs are different sessions.
    Vni,
}

/// Capture settings with Arkime's defaults.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Packet threads (`packetThreads`, 1..=24).
    pub packet_threads: usize,
    /// Where live captures write their packet files (`pcapDir`,
    /// `;`-separated, used in turn); empty: the store's own directory.
    pub pcap_dirs: Vec<String>,
    /// Live interfaces (`interface`, `;`-separated).
    pub interfaces: Vec<String>,
    /// Live capture snap length (`snapLen`).
    pub snap_len: u32,
    /// Idle timeouts in seconds.
    pub tcp_timeout: u32,
    /// UDP idle timeout.
    pub udp_timeout: u32,
    /// ICMP idle timeout.
    pub icmp_timeout: u32,
    /// SCTP idle timeout.
    pub sctp_timeout: u32,
    /// ESP idle timeout.
    pub esp_timeout: u32,
    /// Idle timeout of sessions with no transport (ARP, unknown, corrupt).
    pub other_timeout: u32,
    /// Long TCP sessions are saved (and continue) after this many seconds.
    pub tcp_save_timeout: u32,
    /// Closed TCP sessions linger this long for stray packets.
    pub tcp_closing_timeout: u32,
    /// A session is saved and continued after this many packets.
    pub max_packets: u32,
    /// `maxStreams`: sessions the whole capture tracks at once; each packet
    /// thread's share per session kind is [`Settings::stream_limits`].
    pub max_streams: usize,
    /// Read packets whose captured length is below their wire length.
    pub read_truncated_packets: bool,
    /// Write `packetLen`.
    pub enable_packet_len: bool,
    /// VLAN/VNI in session identity.
    pub session_id_tracking: SessionIdTracking,
    /// ESP sessions (otherwise ESP is an unknown IP protocol).
    pub track_esp: bool,
    /// Make sessions of unknown EtherTypes / IP protocols.
    pub save_unknown: bool,
    /// Make sessions of corrupt packets.
    pub save_corrupt: bool,
    /// Lua files (`luaFiles`).
    pub lua_files: Vec<String>,
    /// Plugins named (`plugins`); only `lua.so` means anything here.
    pub plugins: Vec<String>,
    /// Parser directories (`parsersDir`).
    pub parsers_dirs: Vec<String>,
    /// Out-of-order TCP segments queued per direction before giving up.
    pub max_tcp_out_of_order: usize,
    /// IPv4/IPv6 datagrams awaiting reassembly.
    pub max_frags: usize,
    /// Seconds a datagram may wait for its fragments.
    pub frags_timeout: u32,
    /// Index threads of the session store (`indexThreads`, moonwire's own
    /// key); 0 picks a number from the cores, see
    /// [`Settings::store_index_threads`].
    pub index_threads: usize,
    /// Every effective key and value (for parsers and Lua that read their
    /// own keys).
    pub raw: BTreeMap<String, Entry>,
    /// Sections other than default/node (e.g. `[custom-fields]`).
    pub sections: BTreeMap<String, BTreeMap<String, Entry>>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            packet_threads: 1,
            pcap_dirs: Vec::new(),
            interfaces: Vec::new(),
            snap_len: 16384,
            tcp_timeout: 480,
            udp_timeout: 60,
            icmp_timeout: 10,
            sctp_timeout: 60,
            esp_timeout: 600,
            other_timeout: 60,
            tcp_save_timeout: 480,
            tcp_closing_timeout: 5,
            max_packets: 10000,
            max_streams: 1_500_000,
            read_truncated_packets: false,
            enable_packet_len: false,
            session_id_tracking: SessionIdTracking::None,
            track_esp: false,
            save_unknown: false,
            save_corrupt: false,
            lua_files: Vec::new(),
            plugins: Vec::new(),
            parsers_dirs: Vec::new(),
            max_tcp_out_of_order: 256,
            max_frags: 10000,
            frags_timeout: 480,
            index_threads: 0,
            raw: BTreeMap::new(),
            sections: BTreeMap::new(),
        }
    }
}

/// How a packet thread's live sessions of one kind are bounded, as in
/// Arkime: `maxStreams / packetThreads` scaled by the kind's share (TCP
/// 1.25, UDP/SCTP/other 1/20, ICMP/ESP 1/200), at least 64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLimits {
    /// TCP sessions.
    pub tcp: usize,
    /// UDP sessions.
    pub udp: usize,
    /// SCTP sessions.
    pub sctp: usize,
    /// ICMP sessions.
    pub icmp: usize,
    /// ESP sessions.
    pub esp: usize,
    /// Other sessions (ARP, unknown protocols).
    pub other: usize,
}

/// Most index threads `indexThreads` may ask for.
const MAX_INDEX_THREADS: i64 = 16;

impl Settings {
    /// Each packet thread's bound on live sessions per kind (`maxStreams`).
    pub fn stream_limits(&self) -> StreamLimits {
        let per_thread = self.max_streams as f64 / self.packet_threads.max(1) as f64;
        let share = |f: f64| ((per_thread * f) as usize).max(64);
        StreamLimits {
            tcp: share(1.25),
            udp: share(1.0 / 20.0),
            sctp: share(1.0 / 20.0),
            icmp: share(1.0 / 200.0),
            esp: share(1.0 / 200.0),
            other: share(1.0 / 20.0),
        }
    }

    /// The session store's index threads on a machine with `cores` cores:
    /// `indexThreads` when set, else every core the packet threads and the
    /// reader leave, at least 2 and at most 8. Indexing costs more CPU per
    /// session than parsing and one indexing thread is the capture's
    /// critical path: even on 2 cores a second one finishes sooner (it runs
    /// while the capture threads wait for the index), and with cores to
    /// spare more of them keep up with the packet threads.
    pub fn store_index_threads(&self, cores: usize) -> usize {
        if self.index_threads > 0 {
            return self.index_threads;
        }
        cores.saturating_sub(self.packet_threads + 1).clamp(2, 8)
    }
}

/// Keys moonwire's capture reads itself.
const CAPTURE_KEYS: &[&str] = &[
    "packetThreads",
    "pcapDir",
    "interface",
    "snapLen",
    "tcpTimeout",
    "udpTimeout",
    "icmpTimeout",
    "sctpTimeout",
    "espTimeout",
    "tcpSaveTimeout",
    "tcpClosingTimeout",
    "maxPackets",
    "maxStreams",
    "readTruncatedPackets",
    "enablePacketLen",
    "sessionIdTracking",
    "trackESP",
    "saveUnknownPackets",
    "luaFiles",
    "plugins",
    "parsersDir",
    "maxTcpOutOfOrderPackets",
    "maxFrags",
    "fragsTimeout",
    "maxFileSizeG",
    "luaMaxInstructions",
    "luaMaxMemory",
    "luaLibraries",
    "luaOutstandingTimeout",
    "indexThreads",
];

/// Keys the protocol parsers read (they take them from [`Settings::raw`]).
const PARSER_KEYS: &[&str] = &[
    "parseHTTPHeaderRequestAll",
    "parseHTTPHeaderResponseAll",
    "parseHTTPHeaderValueMaxLen",
    "parseSMTPHeaderAll",
    "smtpIpHeaders",
    "parseQSValue",
    "parseCookieValue",
    "maxReqBody",
    "dnsOutputAnswers",
    "ja3Strings",
    "ja4Raw",
    "supportSha256",
    "magicMode",
    "parseDNSRecordAll",
    "disableParsers",
    "parseSMTP",
    "parseSMB",
    "parseSMBMax",
    "reqBodyOnlyUtf8",
    "maxMidSaveSessions",
];

/// Arkime keys moonwire accepts without using them (viewer, cluster,
/// enrichment and plugin settings): no warning for these.
const ARKIME_KEYS_NOT_USED: &[&str] = &[
    "elasticsearch",
    "elasticsearchScrollTimeout",
    "geoLite2ASN",
    "geoLite2Country",
    "rirFile",
    "ouiFile",
    "pluginsDir",
    "yara",
    "keyFile",
    "spiDataMaxIndices",
    "passwordSecret",
    "viewPort",
    "viewerPlugins",
    "rulesFiles",
    "autoGenerateId",
    "maxESConns",
    "enablePacketDedup",
    "authMode",
    "rotateIndex",
    "esAdminUsers",
    "rules_communityId",
    "rules_value_2",
    "zeekIntelFiles",
    "zeekIntelTag",
    "filenameOps",
    "scrubspi",
    "pcapWriteMethod",
    "prefix",
    "packetPortalListen",
    "mcpEnabled",
    "mcpAuthMode",
    "mcpMaxQueryDays",
    "cronQueries",
    "dontSaveBPFs",
    "viewUrl",
    "gapPacketPos",
    "pcapReadMethod",
    "usersPrefix",
    "usersElasticsearch",
    "webBasePath",
    "businessDayStart",
    "businessDayEnd",
    "businessDays",
    "arkimeWebURL",
    "turnOffGraphDays",
    "disableUserPasswordUI",
    "loginMessage",
    "defaultTimeRange",
    "multiES",
    "multiESPort",
    "multiESNodes",
    "isLocalViewRegExp",
    "suricataExpireMinutes",
    "suricataAlertFile",
    "simpleEncoding",
    "simpleKEKId",
    "packetPortalConnect",
    "userNameHeader",
    "uploadRoles",
    "uploadCommand",
    "includes",
    "authUserIdField",
    "authCookieSecure",
    "s3Region",
    "s3Bucket",
    "s3Host",
    "s3UseHttp",
    "s3AccessKeyId",
    "s3SecretAccessKey",
    "s3PathAccessStyle",
    "s3Compression",
    "sqsAccessKeyId",
    "sqsSecretAccessKey",
    "aes256Encryption",
    "dropUser",
    "dropGroup",
    "freeSpaceG",
    "bpf",
    "compressES",
    "dbBulkSize",
    "dbFlushTimeout",
    "hashSalt",
    "magicMode2",
    "pcapWriteSize",
    "tpacketv3NumThreads",
    "logEveryXPackets",
    "logUnknownProtocols",
    "logESRequests",
    "logFileCreation",
    "maxFileTimeM",
    "tcpClosingTimeout2",
    "caTrustFile",
    "rulesFile",
    "wiseHost",
    "wisePort",
    "wiseURL",
    "certFile",
    "accessLogFile",
    "smtpTimeout",
];

/// Keys whose value names a file Arkime would read.
const FILE_KEYS: &[&str] = &[
    "geoLite2ASN",
    "geoLite2Country",
    "rirFile",
    "ouiFile",
    "yara",
    "rulesFiles",
    "zeekIntelFiles",
];

/// Loads settings: `[default]`, then the node's section, then overrides.
/// Returns the settings and the warnings to show (one per unknown key or
/// missing file).
pub fn load_settings(
    ini: Option<(&Path, &IniFile)>,
    node: &str,
    overrides: &[String],
) -> Result<(Settings, Vec<String>), ConfigError> {
    let mut warnings = Vec::new();
    let mut merged: BTreeMap<String, Entry> = BTreeMap::new();
    let mut sections = BTreeMap::new();
    let mut base_dir = PathBuf::from(".");
    if let Some((path, ini)) = ini {
        base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        merged.extend(ini.section("default"));
        if !node.is_empty() && node != "default" {
            if !ini.has_section(node) {
                warnings.push(format!(
                    "{}: no [{node}] section; using [default] only",
                    path.display()
                ));
            }
            merged.extend(ini.section(node));
        }
        for name in ini.section_names() {
            if name != "default" && name != node {
                sections.insert(name.to_string(), ini.section(name));
            }
        }
    }
    for o in overrides {
        let Some((k, v)) = o.split_once('=') else {
            return Err(ConfigError::Override(o.clone()));
        };
        merged.insert(
            k.trim().to_string(),
            Entry {
                value: v.trim().to_string(),
                origin: "-o".into(),
            },
        );
    }
    let mut s = Settings {
        sections,
        ..Settings::default()
    };
    for (key, entry) in &merged {
        let known = CAPTURE_KEYS.contains(&key.as_str())
            || PARSER_KEYS.contains(&key.as_str())
            || ARKIME_KEYS_NOT_USED.contains(&key.as_str());
        if !known {
            warnings.push(format!("{}: unknown setting {key} (ignored)", entry.origin));
        }
        if FILE_KEYS.contains(&key.as_str()) {
            for f in entry
                .value
                .split(';')
                .map(str::trim)
                .filter(|f| !f.is_empty())
            {
                let p = base_dir.join(f);
                if !Path::new(f).exists() && !p.exists() {
                    warnings.push(format!(
                        "{}: {key} file {f} not found; its data is left out",
                        entry.origin
                    ));
                }
            }
        }
        apply(&mut s, key, entry)?;
    }
    s.raw = merged;
    Ok((s, warnings))
}

fn int<T: std::str::FromStr>(key: &str, e: &Entry, min: i64, max: i64) -> Result<T, ConfigError> {
    let bad = |m: String| ConfigError::Value {
        origin: e.origin.clone(),
        key: key.into(),
        message: m,
    };
    let n: i64 = e
        .value
        .parse()
        .map_err(|_| bad(format!("{:?} is not a whole number", e.value)))?;
    if n < min || n > max {
        return Err(bad(format!("{n} is outside {min}..={max}")));
    }
    n.to_string()
        .parse()
        .map_err(|_| bad(format!("{n} does not fit")))
}

/// Arkime's boolean spelling: true/yes/1 (any case) or false/no/0.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "on" => Some(true),
        "false" | "no" | "0" | "off" | "" => Some(false),
        _ => None,
    }
}

fn boolean(key: &str, e: &Entry) -> Result<bool, ConfigError> {
    parse_bool(&e.value).ok_or_else(|| ConfigError::Value {
        origin: e.origin.clone(),
        key: key.into(),
        message: format!("{:?} is not true or false", e.value),
    })
}

fn list(v: &str) -> Vec<String> {
    v.split([';', ','])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

fn apply(s: &mut Settings, key: &str, e: &Entry) -> Result<(), ConfigError> {
    match key {
        "packetThreads" => s.packet_threads = int(key, e, 1, 24)?,
        "indexThreads" => s.index_threads = int(key, e, 0, MAX_INDEX_THREADS)?,
        "pcapDir" => s.pcap_dirs = list(&e.value),
        "interface" => s.interfaces = list(&e.value),
        "snapLen" => s.snap_len = int(key, e, 1, 262_144)?,
        "tcpTimeout" => s.tcp_timeout = int(key, e, 1, 86_400 * 7)?,
        "udpTimeout" => s.udp_timeout = int(key, e, 1, 86_400 * 7)?,
        "icmpTimeout" => s.icmp_timeout = int(key, e, 1, 86_400 * 7)?,
        "sctpTimeout" => s.sctp_timeout = int(key, e, 1, 86_400 * 7)?,
        "espTimeout" => s.esp_timeout = int(key, e, 1, 86_400 * 7)?,
        "tcpSaveTimeout" => s.tcp_save_timeout = int(key, e, 10, 86_400 * 7)?,
        "tcpClosingTimeout" => s.tcp_closing_timeout = int(key, e, 1, 255)?,
        "maxPackets" => s.max_packets = int(key, e, 1, 0xffff)?,
        "maxStreams" => s.max_streams = int(key, e, 1, 100_000_000)?,
        "readTruncatedPackets" => s.read_truncated_packets = boolean(key, e)?,
        "enablePacketLen" => s.enable_packet_len = boolean(key, e)?,
        "trackESP" => s.track_esp = boolean(key, e)?,
        "sessionIdTracking" => {
            s.session_id_tracking = match e.value.as_str() {
                "" | "none" => SessionIdTracking::None,
                "vlan" => SessionIdTracking::Vlan,
                "vni" => SessionIdTracking::Vni,
                other => {
                    return Err(ConfigError::Value {
                        origin: e.origin.clone(),
                        key: key.into(),
                        message: format!("{other:?} is not none, vlan or vni"),
                    });
                }
            }
        }
        "saveUnknownPackets" => {
            for v in list(&e.value) {
                match v.as_str() {
                    "all" => s.save_unknown = true,
                    "corrupt" => s.save_corrupt = true,
                    _ => s.save_unknown = true,
                }
            }
        }
        "luaFiles" => s.lua_files = list(&e.value),
        "plugins" => s.plugins = list(&e.value),
        "parsersDir" => s.parsers_dirs = list(&e.value),
        "maxTcpOutOfOrderPackets" => s.max_tcp_out_of_order = int(key, e, 64, 10_000)?,
        "maxFrags" => s.max_frags = int(key, e, 1, 1_000_000)?,
        "fragsTimeout" => s.frags_timeout = int(key, e, 1, 86_400)?,
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const INI: &str = "[default]\n# comment\npacketThreads=2\ntcpTimeout = 100\nbogusKey=1\ngeoLite2ASN=/nonexistent/asn.mmdb\n[node1]\ntcpTimeout=200\nsessionIdTracking=vlan\n[custom-fields]\nentropy.http=kind:integer;count:false\n";

    #[test]
    fn default_node_and_overrides() {
        let p = Path::new("t.ini");
        let ini = IniFile::parse(p, INI).unwrap();
        let (s, w) = load_settings(Some((p, &ini)), "node1", &["udpTimeout=7".into()]).unwrap();
        assert_eq!(s.packet_threads, 2);
        assert_eq!(s.tcp_timeout, 200);
        assert_eq!(s.udp_timeout, 7);
        assert_eq!(s.session_id_tracking, SessionIdTracking::Vlan);
        assert_eq!(s.icmp_timeout, 10);
        assert!(s.sections.contains_key("custom-fields"));
        assert_eq!(
            w.iter()
                .filter(|w| w.contains("unknown setting bogusKey"))
                .count(),
            1
        );
        assert!(
            w.iter()
                .any(|w| w.contains("t.ini:6") && w.contains("not found"))
        );
    }

    #[test]
    fn stream_limits_share_max_streams_like_arkime() {
        let mut s = Settings::default();
        let l = s.stream_limits();
        assert_eq!((l.tcp, l.udp, l.icmp), (1_875_000, 75_000, 7_500));
        // The corpus config: maxStreams=1000 over 2 packet threads.
        s.max_streams = 1000;
        s.packet_threads = 2;
        let l = s.stream_limits();
        assert_eq!(
            (l.tcp, l.udp, l.sctp, l.icmp, l.esp, l.other),
            (625, 64, 64, 64, 64, 64)
        );
    }

    #[test]
    fn index_threads_follow_the_cores_unless_set() {
        let mut s = Settings::default();
        // One packet thread and the reader: the cores left index, with
        // two at least.
        assert_eq!(s.store_index_threads(1), 2);
        assert_eq!(s.store_index_threads(2), 2);
        assert_eq!(s.store_index_threads(8), 6);
        assert_eq!(s.store_index_threads(64), 8);
        s.packet_threads = 4;
        assert_eq!(s.store_index_threads(4), 2);
        let (s, _) = load_settings(None, "", &["indexThreads=3".into()]).unwrap();
        assert_eq!(s.store_index_threads(2), 3);
        let err = load_settings(None, "", &["indexThreads=99".into()]).unwrap_err();
        assert!(err.to_string().contains("outside 0..=16"), "{err}");
    }

    #[test]
    fn malformed_line_names_file_and_line() {
        let err =
            IniFile::parse(Path::new("x.ini"), "[default]\nok=1\nno equals here\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "x.ini:3: expected key=value, got \"no equals here\""
        );
        let err = IniFile::parse(Path::new("x.ini"), "key=1\n").unwrap_err();
        assert!(err.to_string().starts_with("x.ini:1:"));
    }

    #[test]
    fn bad_values_name_origin() {
        let p = Path::new("v.ini");
        let ini = IniFile::parse(p, "[default]\npacketThreads=lots\n").unwrap();
        let err = load_settings(Some((p, &ini)), "", &[]).unwrap_err();
        assert!(err.to_string().contains("v.ini:2"), "{err}");
        assert!(load_settings(None, "", &["noequals".into()]).is_err());
        let err = load_settings(None, "", &["maxPackets=0".into()]).unwrap_err();
        assert!(err.to_string().contains("outside"), "{err}");
    }
}
