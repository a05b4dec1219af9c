//! Where discovery's time goes on this host: reading and parsing the host's ld.so.cache, and
//! whole discoveries with and without a capability filter (medians over N runs, microseconds).
//!
//! usage: profile [ROOT] [N]

use std::time::Instant;

use inventory::{discover_with, Capability, Options, Roots};

fn median_us(n: usize, mut f: impl FnMut()) -> u128 {
    let mut times: Vec<u128> = (0..n)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_micros()
        })
        .collect();
    times.sort_unstable();
    times[n / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let root = args.next().unwrap_or_else(|| "/".into());
    let n: usize = args.next().map_or(200, |s| s.parse().expect("a number"));
    let roots = Roots::all(&root);
    let cache = std::path::Path::new(&root).join("etc/ld.so.cache");
    let bytes = std::fs::read(&cache).expect("ld.so.cache");
    let entries = ldcache::Cache::parse(&bytes)
        .map(|c| c.entries.len())
        .unwrap_or(0);
    println!("host ld.so.cache: {} bytes, {entries} entries", bytes.len());
    println!("read   {} us", median_us(n, || drop(std::fs::read(&cache))));
    println!(
        "parse  {} us",
        median_us(n, || drop(ldcache::Cache::parse(&bytes)))
    );
    let filtered = Options {
        capabilities: Some(vec![Capability::Compute, Capability::Utility]),
        ..Options::default()
    };
    println!(
        "discover compute,utility {} us",
        median_us(n, || drop(discover_with(&roots, &filtered)))
    );
    println!(
        "discover all             {} us",
        median_us(n, || drop(discover_with(&roots, &Options::default())))
    );
}
