//! A small harness for parser unit tests: one session, classify + parse.

use std::sync::Arc;

use fields::FieldRegistry;

use crate::Direction;
use crate::analyzer::{Analyzer, AppSession, ProtocolConfig, SessionMeta, Transport};

pub(crate) struct Harness {
    pub analyzer: Analyzer,
    pub app: AppSession,
    pub meta: SessionMeta,
}

impl Harness {
    pub fn new(transport: Transport, port: u16, config: ProtocolConfig) -> Harness {
        let set = super::classifiers(&config);
        Harness {
            analyzer: Analyzer::new(
                Arc::new(FieldRegistry::builtin()),
                Arc::new(set),
                Arc::new(config),
            ),
            app: AppSession::new(),
            meta: SessionMeta {
                transport,
                src_ip: Some("10.0.0.1".parse().unwrap()),
                dst_ip: Some("10.0.0.2".parse().unwrap()),
                src_port: 40000,
                dst_port: port,
                ip_protocol: if transport == Transport::Tcp { 6 } else { 17 },
                first_ts_us: 0,
            },
        }
    }

    pub fn tcp(port: u16) -> Harness {
        let mut c = ProtocolConfig::default();
        for (k, v) in [
            ("maxReqBody", "2000"),
            ("supportSha256", "true"),
            ("parseQSValue", "true"),
            ("parseCookieValue", "true"),
            ("dnsOutputAnswers", "true"),
            ("ja3Strings", "true"),
            ("ja4Raw", "true"),
            ("parseHTTPHeaderRequestAll", "true"),
            ("parseHTTPHeaderResponseAll", "true"),
            ("parseSMTPHeaderAll", "true"),
            ("parseDNSRecordAll", "true"),
        ] {
            c.settings.insert(k.into(), v.into());
        }
        Harness::new(Transport::Tcp, port, c)
    }

    /// A session with Arkime's defaults but for one setting (`None`: left
    /// unset, so its default applies).
    pub fn with_setting(
        transport: Transport,
        port: u16,
        key: &str,
        value: Option<&str>,
    ) -> Harness {
        let mut c = ProtocolConfig::default();
        if let Some(v) = value {
            c.settings.insert(key.into(), v.into());
        }
        Harness::new(transport, port, c)
    }

    /// A TCP session with none of the optional settings (Arkime's defaults).
    pub fn tcp_defaults(port: u16) -> Harness {
        Harness::new(Transport::Tcp, port, ProtocolConfig::default())
    }

    pub fn udp(port: u16) -> Harness {
        let mut h = Harness::tcp(port);
        h.meta.transport = Transport::Udp;
        h.meta.ip_protocol = 17;
        h
    }

    pub fn feed(&mut self, dir: usize, data: &[u8]) {
        self.analyzer
            .data(&mut self.app, &self.meta, Direction::from_index(dir), data);
    }

    pub fn finish(&mut self) {
        self.analyzer.finish(&mut self.app, &self.meta);
    }

    pub fn json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        self.app.fields.write_json(self.analyzer.registry(), &mut m);
        m.insert(
            "protocol".into(),
            serde_json::json!(self.app.fields.protocols()),
        );
        m.insert("tags".into(), serde_json::json!(self.app.fields.tags()));
        serde_json::Value::Object(m)
    }
}
