//! Per-thread analysis of sessions: classify first data, feed parsers.

use std::any::Any;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use fields::FieldRegistry;

use crate::classify::{ClassifierSet, ClassifyAction, ClassifyContext};
use crate::parsers::ExprIds;
use crate::{Direction, SessionFields};

/// The transport a session's data arrives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// A reassembled TCP stream per direction.
    Tcp,
    /// UDP datagrams.
    Udp,
    /// SCTP packets (chunks).
    Sctp,
    /// Anything else (no parsers run).
    Other,
}

/// What parsers may know about a session.
#[derive(Debug, Clone)]
pub struct SessionMeta {
    /// Transport.
    pub transport: Transport,
    /// Source (client) address.
    pub src_ip: Option<IpAddr>,
    /// Destination (server) address.
    pub dst_ip: Option<IpAddr>,
    /// Source port (0 without ports).
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// IP protocol number.
    pub ip_protocol: u8,
    /// Time of the session's first packet, microseconds since the epoch
    /// (certificate "remaining" times count from it).
    pub first_ts_us: i64,
}

/// Parser settings: the effective config.ini keys (parsers read their own,
/// e.g. `parseHTTPHeaderRequestAll`) and extra sections.
#[derive(Debug, Clone, Default)]
pub struct ProtocolConfig {
    /// `key → value` from `[default]`, the node section and `-o`.
    pub settings: BTreeMap<String, String>,
    /// Other sections (`headers-http-request`, `custom-fields`, ...).
    pub sections: BTreeMap<String, BTreeMap<String, String>>,
}

impl ProtocolConfig {
    /// A setting's value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.settings.get(key).map(String::as_str)
    }

    /// A boolean setting (Arkime spelling), `default` when absent.
    pub fn get_bool(&self, key: &str, default: bool) -> bool {
        let Some(v) = self.get(key) else {
            return default;
        };
        let is = |words: [&str; 4]| words.iter().any(|w| v.eq_ignore_ascii_case(w));
        if is(["true", "yes", "1", "on"]) {
            true
        } else if is(["false", "no", "0", "off"]) {
            false
        } else {
            default
        }
    }

    /// An integer setting, `default` when absent or not a number.
    pub fn get_int(&self, key: &str, default: i64) -> i64 {
        self.get(key)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(default)
    }
}

/// Parser settings read from the config once per analyzer instead of at
/// every session (each read is a map lookup by name).
pub(crate) struct ParserSettings {
    pub http: crate::parsers::http::HttpSettings,
    pub ja3_strings: bool,
    pub ja4_raw: bool,
    pub dns_output_answers: bool,
    pub dns_record_all: bool,
}

impl ParserSettings {
    pub(crate) fn new(config: &ProtocolConfig) -> ParserSettings {
        ParserSettings {
            http: crate::parsers::http::HttpSettings::new(config),
            ja3_strings: config.get_bool("ja3Strings", false),
            ja4_raw: config.get_bool("ja4Raw", false),
            dns_output_answers: config.get_bool("dnsOutputAnswers", false),
            dns_record_all: config.get_bool("parseDNSRecordAll", false),
        }
    }
}

/// Whether a parser wants more data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParserStatus {
    /// Keep feeding.
    Continue,
    /// Done with this session: stop feeding.
    Done,
}

/// What a parser may touch while it parses.
pub struct ParseContext<'a> {
    /// The session's field values.
    pub fields: &'a mut SessionFields,
    /// The field registry.
    pub registry: &'a FieldRegistry,
    /// Addresses, ports and transport.
    pub meta: &'a SessionMeta,
    /// Parser settings.
    pub config: &'a ProtocolConfig,
    /// The thread's script host, if scripts are loaded.
    pub(crate) scripts: Option<&'a mut (dyn ScriptHooks + 'static)>,
    /// The session's script state.
    pub(crate) script_state: &'a mut Option<Box<dyn Any>>,
    /// Set by [`ParseContext::reclassify`].
    pub(crate) reclassify: bool,
    /// The analyzer's memo of field lookups.
    pub(crate) ids: &'a mut ExprIds,
    /// Settings resolved once.
    pub(crate) settings: &'a ParserSettings,
}

impl ParseContext<'_> {
    /// Asks for the next data of each direction to be classified again
    /// (a tunnel or STARTTLS starts a new protocol inside the session).
    pub fn reclassify(&mut self) {
        self.reclassify = true;
    }

    /// Seconds since the epoch of the session's first packet.
    pub fn meta_first_secs(&self) -> i64 {
        self.meta.first_ts_us.div_euclid(1_000_000)
    }

    /// Reports an HTTP parser event to scripts (`http_on`). Cheap when no
    /// script listens: parsers may call it unconditionally.
    pub fn http_event(&mut self, event: HttpEvent, data: Option<&[u8]>, dir: Direction) {
        if let Some(s) = self.scripts.as_deref_mut()
            && s.wants_http(event)
        {
            let mut session = ScriptSession {
                fields: self.fields,
                registry: self.registry,
                meta: self.meta,
                state: self.script_state,
            };
            s.http_event(&mut session, event, data, dir);
        }
    }

    /// Whether any script listens for this HTTP event (so a parser can
    /// skip work that only scripts need).
    pub fn wants_http(&self, event: HttpEvent) -> bool {
        self.scripts.as_deref().is_some_and(|s| s.wants_http(event))
    }

    /// Feeds decoded body bytes of protocol `kind` ("http", "smtp") to
    /// scripts (`register_body_feed`).
    pub fn body(&mut self, kind: &str, data: &[u8]) {
        if let Some(s) = self.scripts.as_deref_mut()
            && s.wants_body(kind)
        {
            let mut session = ScriptSession {
                fields: self.fields,
                registry: self.registry,
                meta: self.meta,
                state: self.script_state,
            };
            s.body(&mut session, kind, data);
        }
    }
}

/// HTTP parser events scripts can ask for (Arkime's `http_on` types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HttpEvent {
    /// A message starts; data is the method for requests, none for
    /// responses.
    MessageBegin,
    /// The request URL.
    Url,
    /// A header name, lower-cased.
    HeaderField,
    /// A header name as sent.
    HeaderFieldRaw,
    /// A header value.
    HeaderValue,
    /// All headers of a message were seen.
    HeadersComplete,
    /// A piece of the decoded body.
    Body,
    /// The message ended.
    MessageComplete,
}

/// The session as scripts see it from a hook.
pub struct ScriptSession<'a> {
    /// Field values, protocols and tags.
    pub fields: &'a mut SessionFields,
    /// The field registry.
    pub registry: &'a FieldRegistry,
    /// Addresses, ports and transport.
    pub meta: &'a SessionMeta,
    /// Per-session state of the script host (its session table, script
    /// parsers, ...), created by the host on first use.
    pub state: &'a mut Option<Box<dyn Any>>,
}

/// A protocol parser attached to one session.
///
/// Template for a new parser: keep per-direction state in the struct;
/// in [`Parser::parse`] consume what is complete and keep only what a
/// message boundary needs (bounded: give up with [`ParserStatus::Done`]
/// past a size you choose from the config); add values with
/// `cx.fields.add_string(cx.registry, id, value)` using field ids looked up
/// once when the parser is created; never panic on any input. A complete,
/// tested example to copy is `parsers/template.rs`
/// ([`crate::parsers::template`]).
pub trait Parser {
    /// A short name (one parser of a name per session).
    fn name(&self) -> &'static str;
    /// Data of one direction: the next in-order bytes of a TCP stream, or
    /// one UDP datagram / SCTP packet payload.
    fn parse(&mut self, cx: &mut ParseContext<'_>, dir: Direction, data: &[u8]) -> ParserStatus;
    /// The session is being saved.
    fn finish(&mut self, _cx: &mut ParseContext<'_>) {}
}

/// Callbacks into the packet thread's script host (the Arkime Lua API):
/// script classifiers, script parsers, HTTP events, body feeds and save
/// hooks. Every method but `classify` has a do-nothing default.
pub trait ScriptHooks {
    /// Runs script classifier `id` on a direction's first data.
    fn classify(&mut self, id: u32, cx: &mut ClassifyContext<'_>, data: &[u8], dir: Direction);
    /// Session data for script parsers (`session:register_parser`), after
    /// the built-in parsers saw it.
    fn data(&mut self, _session: &mut ScriptSession<'_>, _data: &[u8], _dir: Direction) {}
    /// Whether a script listens for this HTTP event.
    fn wants_http(&self, _event: HttpEvent) -> bool {
        false
    }
    /// An HTTP event (see [`ParseContext::http_event`]).
    fn http_event(
        &mut self,
        _session: &mut ScriptSession<'_>,
        _event: HttpEvent,
        _data: Option<&[u8]>,
        _dir: Direction,
    ) {
    }
    /// Whether a script wants bodies of this protocol.
    fn wants_body(&self, _kind: &str) -> bool {
        false
    }
    /// Body bytes of a protocol.
    fn body(&mut self, _session: &mut ScriptSession<'_>, _kind: &str, _data: &[u8]) {}
    /// Before a session is saved (`register_pre_save`); `last` is false
    /// for mid-session saves.
    fn pre_save(&mut self, _session: &mut ScriptSession<'_>, _last: bool) {}
    /// When a session is saved (`register_save`).
    fn save(&mut self, _session: &mut ScriptSession<'_>, _last: bool) {}
}

/// Application state of one session.
#[derive(Default)]
pub struct AppSession {
    /// Field values, protocols and tags.
    pub fields: SessionFields,
    parsers: Vec<Box<dyn Parser>>,
    classified: [bool; 2],
    /// The script host's per-session state.
    pub script_state: Option<Box<dyn Any>>,
}

impl AppSession {
    /// Fresh state.
    pub fn new() -> AppSession {
        AppSession {
            fields: SessionFields::new(),
            parsers: Vec::new(),
            classified: [false; 2],
            script_state: None,
        }
    }

    /// Parsers attached now.
    pub fn parser_names(&self) -> Vec<&'static str> {
        self.parsers.iter().map(|p| p.name()).collect()
    }
}

impl std::fmt::Debug for AppSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppSession")
            .field("fields", &self.fields)
            .field("parsers", &self.parser_names())
            .finish()
    }
}

/// One packet thread's analyzer.
pub struct Analyzer {
    registry: Arc<FieldRegistry>,
    classifiers: Arc<ClassifierSet>,
    config: Arc<ProtocolConfig>,
    scripts: Option<Box<dyn ScriptHooks>>,
    /// Field lookups of the parsers, remembered (same registry for life).
    ids: ExprIds,
    settings: ParserSettings,
    /// Memory for the classifiers matching a first data (always empty
    /// between calls).
    found: Vec<(&'static str, ClassifyAction)>,
}

/// An empty vector of matches keeping `v`'s memory: the names borrow the
/// classifier set only while one data is classified. (Collecting a
/// vector's own iterator into a same-sized item reuses its allocation.)
fn recycle<'b>(mut v: Vec<(&str, ClassifyAction)>) -> Vec<(&'b str, ClassifyAction)> {
    v.clear();
    v.into_iter().map(|(_, a)| ("", a)).collect()
}

impl Analyzer {
    /// An analyzer over shared registry, classifiers and config.
    pub fn new(
        registry: Arc<FieldRegistry>,
        classifiers: Arc<ClassifierSet>,
        config: Arc<ProtocolConfig>,
    ) -> Analyzer {
        Analyzer {
            settings: ParserSettings::new(&config),
            registry,
            classifiers,
            config,
            scripts: None,
            ids: ExprIds::default(),
            found: Vec::new(),
        }
    }

    /// Installs the thread's script host.
    pub fn set_scripts(&mut self, scripts: Box<dyn ScriptHooks>) {
        self.scripts = Some(scripts);
    }

    /// The field registry.
    pub fn registry(&self) -> &FieldRegistry {
        &self.registry
    }

    /// Data of one direction (see [`Parser::parse`]). The first data of
    /// each direction is classified first.
    pub fn data(&mut self, app: &mut AppSession, meta: &SessionMeta, dir: Direction, data: &[u8]) {
        if data.is_empty() || meta.transport == Transport::Other {
            return;
        }
        if !app.classified[dir.index()] {
            app.classified[dir.index()] = true;
            let mut found = recycle(std::mem::take(&mut self.found));
            self.classifiers.matches(meta, data, &mut found);
            for &(_, action) in &found {
                let mut cx = ClassifyContext {
                    fields: &mut app.fields,
                    registry: &self.registry,
                    meta,
                    config: &self.config,
                    attached: &mut app.parsers,
                    settings: &self.settings,
                };
                match action {
                    ClassifyAction::Native(f) => f(&mut cx, data, dir),
                    ClassifyAction::Script(id) => {
                        if let Some(s) = self.scripts.as_mut() {
                            s.classify(id, &mut cx, data, dir);
                        }
                    }
                }
            }
            self.found = recycle(found);
        }
        if !app.parsers.is_empty() {
            let mut cx = ParseContext {
                fields: &mut app.fields,
                registry: &self.registry,
                meta,
                config: &self.config,
                scripts: self.scripts.as_deref_mut(),
                script_state: &mut app.script_state,
                reclassify: false,
                ids: &mut self.ids,
                settings: &self.settings,
            };
            app.parsers
                .retain_mut(|p| p.parse(&mut cx, dir, data) == ParserStatus::Continue);
            if cx.reclassify {
                app.classified = [false; 2];
            }
        }
        if let Some(s) = self.scripts.as_deref_mut() {
            let mut session = ScriptSession {
                fields: &mut app.fields,
                registry: &self.registry,
                meta,
                state: &mut app.script_state,
            };
            s.data(&mut session, data, dir);
        }
    }

    /// One SCTP DATA chunk: records its payload protocol id (`sctp.protoId`)
    /// and feeds its user data like any other data.
    pub fn sctp_data(
        &mut self,
        app: &mut AppSession,
        meta: &SessionMeta,
        dir: Direction,
        ppid: u32,
        data: &[u8],
    ) {
        if let Some(id) = self.registry.lookup_expr("sctp.protoId") {
            app.fields.add_int(id, i64::from(ppid));
        }
        self.data(app, meta, dir, data);
    }

    /// Runs the scripts' pre-save and save hooks (`last` is false for a
    /// mid-session save).
    pub fn save_hooks(&mut self, app: &mut AppSession, meta: &SessionMeta, last: bool) {
        if let Some(s) = self.scripts.as_deref_mut() {
            let mut session = ScriptSession {
                fields: &mut app.fields,
                registry: &self.registry,
                meta,
                state: &mut app.script_state,
            };
            s.pre_save(&mut session, last);
            s.save(&mut session, last);
        }
    }

    /// The session is being saved: parsers finish.
    pub fn finish(&mut self, app: &mut AppSession, meta: &SessionMeta) {
        let mut cx = ParseContext {
            fields: &mut app.fields,
            registry: &self.registry,
            meta,
            config: &self.config,
            scripts: self.scripts.as_deref_mut(),
            script_state: &mut app.script_state,
            reclassify: false,
            ids: &mut self.ids,
            settings: &self.settings,
        };
        for p in app.parsers.iter_mut() {
            p.finish(&mut cx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counter {
        bytes: usize,
    }

    impl Parser for Counter {
        fn name(&self) -> &'static str {
            "counter"
        }
        fn parse(
            &mut self,
            cx: &mut ParseContext<'_>,
            _dir: Direction,
            data: &[u8],
        ) -> ParserStatus {
            self.bytes += data.len();
            if self.bytes >= 10 {
                cx.fields.add_tag("ten-bytes");
                return ParserStatus::Done;
            }
            ParserStatus::Continue
        }
    }

    fn hello(cx: &mut ClassifyContext<'_>, _data: &[u8], _dir: Direction) {
        cx.add_protocol("hello");
        cx.attach(Box::new(Counter { bytes: 0 }));
    }

    #[test]
    fn classify_then_parse_until_done() {
        let mut set = ClassifierSet::new();
        set.add_tcp("hello", 0, b"HELO", ClassifyAction::Native(hello));
        set.add_tcp("never", 2, b"XX", ClassifyAction::Native(hello));
        let mut a = Analyzer::new(
            Arc::new(FieldRegistry::builtin()),
            Arc::new(set),
            Arc::new(ProtocolConfig::default()),
        );
        let meta = SessionMeta {
            transport: Transport::Tcp,
            src_ip: None,
            dst_ip: None,
            src_port: 1,
            dst_port: 2,
            ip_protocol: 6,
            first_ts_us: 0,
        };
        let mut app = AppSession::new();
        a.data(&mut app, &meta, Direction::FromSource, b"HELO x");
        assert!(app.fields.has_protocol("hello"));
        assert_eq!(app.parser_names(), vec!["counter"]);
        a.data(&mut app, &meta, Direction::FromDestination, b"abcdef");
        assert!(app.parser_names().is_empty());
        assert_eq!(app.fields.tags(), ["ten-bytes"]);
    }

    #[test]
    fn bool_settings_and_recycled_matches() {
        let mut c = ProtocolConfig::default();
        for (k, v) in [("a", "TRUE"), ("b", "Off"), ("c", "maybe")] {
            c.settings.insert(k.into(), v.into());
        }
        assert!(c.get_bool("a", false));
        assert!(!c.get_bool("b", true));
        assert!(c.get_bool("c", true) && !c.get_bool("c", false));
        assert!(c.get_bool("missing", true));
        let name = String::from("x");
        let mut v = Vec::with_capacity(8);
        v.push((name.as_str(), ClassifyAction::Script(1)));
        let v = recycle(v);
        assert!(v.is_empty() && v.capacity() >= 8);
    }

    #[test]
    fn port_classifiers() {
        let mut set = ClassifierSet::new();
        set.add_udp_port("hello", 53, ClassifyAction::Native(hello));
        let meta = SessionMeta {
            transport: Transport::Udp,
            src_ip: None,
            dst_ip: None,
            src_port: 5000,
            dst_port: 53,
            ip_protocol: 17,
            first_ts_us: 0,
        };
        let mut found = Vec::new();
        set.matches(&meta, b"x", &mut found);
        assert_eq!(found.len(), 1);
        // The port may be on either side; other ports match nothing.
        let swapped = SessionMeta {
            src_port: 53,
            dst_port: 5000,
            ..meta.clone()
        };
        found.clear();
        set.matches(&swapped, b"x", &mut found);
        assert_eq!(found.len(), 1);
        let other = SessionMeta {
            dst_port: 54,
            ..meta
        };
        found.clear();
        set.matches(&other, b"x", &mut found);
        assert!(found.is_empty());
    }
}
