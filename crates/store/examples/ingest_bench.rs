//! Indexing cost of real capture documents, apart from the capture: reads
//! the JSON lines of `moonwire capture --json` into memory, then indexes
//! them through `StoreWriter` in batches of BATCH (default 32, about what
//! the capture's output thread hands over at once; 1 is the per-session
//! hand-over of earlier builds) with the offline commit rule (one commit at the
//! end), and prints the CPU time of indexing (all threads, the final
//! commit and merges included) per document.
//!
//! Usage: ingest_bench FILE.jsonl [DIR] [ROUNDS] [BATCH] [THREADS]
//!
//! THREADS: tantivy indexing threads (default 1). The wall-clock rate is
//! printed too: with more threads it shows whether indexing spreads over
//! the cores (on an otherwise idle machine).
//!
//! With ROUNDS > 1 the documents are indexed again into a fresh store each
//! round and the median is printed (the machine is shared).

mod common;
use common::{cpu_secs, dir_size};

use std::io::BufRead;
use std::sync::Arc;

use fields::FieldRegistry;
use store::{Store, WriterOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let file = args
        .next()
        .ok_or("usage: ingest_bench FILE.jsonl [DIR] [ROUNDS] [BATCH] [THREADS]")?;
    let tmp = tempfile::tempdir()?;
    let dir = args
        .next()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| tmp.path().join("data"));
    let rounds: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1);
    let batch: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(32);
    let threads: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1);
    let reader = std::io::BufReader::new(std::fs::File::open(&file)?);
    let mut bodies = Vec::new();
    for line in reader.lines() {
        // The store sink puts the store's file id where the capture leaves
        // an empty list.
        bodies.push(line?.replacen("\"fileId\":[]", "\"fileId\":[1]", 1));
    }
    let bytes: usize = bodies.iter().map(String::len).sum();
    eprintln!(
        "{} documents, {:.0} bytes of JSON each",
        bodies.len(),
        bytes as f64 / bodies.len().max(1) as f64
    );
    let mut cpu = Vec::new();
    for round in 0..rounds {
        let _ = std::fs::remove_dir_all(&dir);
        let batches: Vec<Vec<String>> = bodies
            .chunks(batch.max(1))
            .map(<[String]>::to_vec)
            .collect();
        let reg = Arc::new(FieldRegistry::builtin());
        let store = Store::open_or_create(&dir, reg)?;
        let c0 = cpu_secs();
        let t0 = std::time::Instant::now();
        let w = store.writer(WriterOptions {
            threads,
            ..WriterOptions::default()
        })?;
        w.set_commit_interval(None)?;
        for b in batches {
            w.add_json_batch(b)?;
        }
        let stats = w.finish()?;
        let c = cpu_secs() - c0;
        let wall = t0.elapsed().as_secs_f64();
        let size = dir_size(&dir.join("index"))?;
        eprintln!(
            "round {}: {:.2} s CPU, {:.1} µs per document, {:.2} s wall = {:.0} documents/s, {} documents, {} commits, {:.0} bytes per document",
            round + 1,
            c,
            c / stats.documents.max(1) as f64 * 1e6,
            wall,
            stats.documents as f64 / wall,
            stats.documents,
            stats.commits,
            size as f64 / stats.documents.max(1) as f64
        );
        cpu.push(c / stats.documents.max(1) as f64 * 1e6);
    }
    cpu.sort_by(f64::total_cmp);
    println!("median: {:.1} µs per document", cpu[cpu.len() / 2]);
    Ok(())
}
