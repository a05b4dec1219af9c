//! Times `inject_bundle` alone — everything between reading and rewriting `config.json` — on
//! a bundle, restoring the pristine `config.json` before each iteration.
//!
//! usage: inject_bench BUNDLE ITERATIONS   (config from $NVIDIA_CTK_CONFIG_FILE_PATH)

use std::path::PathBuf;

fn median(values: &mut [u64]) -> u64 {
    values.sort_unstable();
    values[values.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let bundle = PathBuf::from(args.next().expect("usage: inject_bench BUNDLE ITERATIONS"));
    let iterations: usize = args.next().map_or(200, |n| n.parse().expect("a number"));
    let config = inject::Config::load().expect("config");
    let config_path = bundle.join("config.json");
    let pristine = std::fs::read(&config_path).expect("config.json");

    let mut stages: Vec<[u64; 7]> = Vec::with_capacity(iterations);
    let (mut hits, mut stored, mut not_stored) = (0, 0, 0);
    for _ in 0..iterations {
        std::fs::write(&config_path, &pristine).expect("restore config.json");
        match inject::inject_bundle(&bundle, &config).expect("inject") {
            inject::Outcome::Rewritten { timings: t, .. } => {
                match t.inventory_cache {
                    Some(inventory::CacheUse::Hit) => hits += 1,
                    Some(inventory::CacheUse::Stored) => stored += 1,
                    Some(inventory::CacheUse::NotStored) => not_stored += 1,
                    None => {}
                }
                stages.push([
                    t.read_spec_us,
                    t.inventory_us,
                    t.plan_us,
                    t.rootfs_links_us,
                    t.ld_cache_us,
                    t.write_spec_us,
                    t.total_us,
                ])
            }
            other => panic!("expected an injection, got {other:?}"),
        }
    }
    std::fs::write(&config_path, &pristine).expect("restore config.json");
    let names = [
        "read+parse spec",
        "inventory",
        "plan",
        "rootfs links",
        "ld.so.cache",
        "write spec",
        "total",
    ];
    println!("inject_bundle over {iterations} iterations (microseconds)");
    match &config.inventory_cache {
        None => println!("inventory cache: off"),
        Some(dir) => println!(
            "inventory cache {}: {hits} hits, {stored} stored, {not_stored} found but not stored",
            dir.display()
        ),
    }
    println!("| stage | median | min | max |");
    println!("| --- | --- | --- | --- |");
    for (i, name) in names.iter().enumerate() {
        let mut column: Vec<u64> = stages.iter().map(|s| s[i]).collect();
        let (min, max) = (*column.iter().min().unwrap(), *column.iter().max().unwrap());
        println!("| {name} | {} | {min} | {max} |", median(&mut column));
    }
}
