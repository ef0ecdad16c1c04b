//! Helpers shared by the store's benchmark examples.

/// CPU seconds (user + system) of this process so far, all threads, from
/// /proc (the machine is shared: wall time alone says little about the cost).
pub fn cpu_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) close with ')'.
    let rest = stat.rsplit_once(')').map_or("", |r| r.1);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line: 11 and 12 here.
    (ticks(11) + ticks(12)) / 100.0
}

/// Bytes of the files under `p`, recursively.
pub fn dir_size(p: &std::path::Path) -> std::io::Result<u64> {
    let mut n = 0;
    for e in std::fs::read_dir(p)? {
        let e = e?;
        let md = e.metadata()?;
        n += if md.is_dir() {
            dir_size(&e.path())?
        } else {
            md.len()
        };
    }
    Ok(n)
}
