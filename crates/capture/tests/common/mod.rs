//! Helpers shared by the capture integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use capture::{
    CaptureJob, CaptureReport, CollectSink, FileRegistry, IniFile, Input, Settings, Stats,
};
use protocols::fields::FieldRegistry;
use serde_json::{Map, Value};

/// The Arkime compatibility corpus beside the repository, if present.
pub fn corpus() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/arkime-compat");
    if p.join("pcaps").is_dir() {
        return Some(p);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "the corpus ../shared/arkime-compat must be beside the repository in CI"
    );
    eprintln!("skipped: ../shared/arkime-compat not found beside the repository");
    None
}

/// Settings from the corpus config (node `test`) plus overrides.
pub fn corpus_settings(overrides: &[&str]) -> Settings {
    let base = corpus().expect("corpus");
    let path = base.join("config.test.ini");
    let ini = IniFile::load(&path).expect("config");
    let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    capture::load_settings(Some((&path, &ini)), "test", &o)
        .expect("settings")
        .0
}

/// Runs a capture over `inputs` and returns the report and the bodies.
pub fn run(settings: Settings, inputs: Vec<PathBuf>) -> (CaptureReport, Vec<Map<String, Value>>) {
    run_with(settings, inputs, protocols::ClassifierSet::new())
}

/// [`run`] with the built-in protocol parsers.
pub fn run_with_parsers(
    settings: Settings,
    inputs: Vec<PathBuf>,
) -> (CaptureReport, Vec<Map<String, Value>>) {
    let classifiers = protocols::parsers::classifiers(&protocols::ProtocolConfig::default());
    run_with(settings, inputs, classifiers)
}

fn run_with(
    settings: Settings,
    inputs: Vec<PathBuf>,
    classifiers: protocols::ClassifierSet,
) -> (CaptureReport, Vec<Map<String, Value>>) {
    let sink = CollectSink::new();
    let job = CaptureJob {
        settings,
        node: "test".into(),
        inputs: inputs.into_iter().map(Input::File).collect(),
        sink: Box::new(sink.clone()),
        stop: Arc::new(AtomicBool::new(false)),
        stats: Arc::new(Stats::default()),
        files: Arc::new(FileRegistry::default()),
        registry: Arc::new(FieldRegistry::builtin()),
        classifiers: Arc::new(classifiers),
        packet_store: None,
    };
    let report = capture::run(job).expect("capture runs");
    let bodies = sink
        .documents()
        .iter()
        .map(|d| d.body().expect("valid JSON"))
        .collect();
    (report, bodies)
}

/// Asserts that every packet read was processed or dropped with a reason.
pub fn assert_accounted(report: &CaptureReport) {
    let s = &report.stats;
    assert_eq!(
        s.packets_read,
        s.packets_processed + s.dropped_total(),
        "packets read must equal processed + dropped: {s:?}"
    );
}
