//! Times `inject_bundle` alone — everything between reading and rewriting `config.json` — on
//! bundles, undoing each injection (as a failed create does: `config.json`, the links and
//! files written into the rootfs, the bundle's own directory) before the next, so every
//! iteration injects a fresh bundle, as every container's create does.
//!
//! usage: inject_bench BUNDLE ITERATIONS
//!            one series, config from $NVIDIA_CTK_CONFIG_FILE_PATH
//!        inject_bench ITERATIONS NAME CONFIG BUNDLE [NAME CONFIG BUNDLE]...
//!            several series, interleaved: each iteration injects every bundle once, starting
//!            with another series each time, so that a load change on the machine hits all
//!            series alike. Also prints, for each series, the median over iterations of its
//!            total minus the first series' total in the same iteration.

use std::path::{Path, PathBuf};

/// The static binary's allocator, so that a musl build of this measures what it ships.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

/// Untimed iterations first: the first injection fills the page cache and the inventory cache.
const WARMUP: usize = 3;

const STAGES: [&str; 7] = [
    "read+parse spec (+ CDI resolution)",
    "inventory",
    "plan",
    "rootfs links",
    "ld.so.cache",
    "write spec",
    "total",
];

struct Series {
    name: String,
    config: inject::Config,
    bundle: PathBuf,
    pristine: Vec<u8>,
    stages: Vec<[u64; 7]>,
    cache: [usize; 3],
}

impl Series {
    fn new(name: String, config: inject::Config, bundle: PathBuf) -> Self {
        let pristine = std::fs::read(bundle.join("config.json")).expect("config.json");
        Self {
            name,
            config,
            bundle,
            pristine,
            stages: Vec::new(),
            cache: [0; 3],
        }
    }

    /// One injection, undone; its timings are kept when `keep`.
    fn run(&mut self, keep: bool) {
        std::fs::write(self.bundle.join("config.json"), &self.pristine).expect("restore");
        let outcome = inject::inject_bundle(&self.bundle, &self.config)
            .unwrap_or_else(|e| panic!("{}: inject: {e}", self.name));
        let inject::Outcome::Rewritten { timings: t, .. } = &outcome else {
            panic!("{}: expected an injection, got {outcome:?}", self.name);
        };
        let t = *t;
        outcome.rollback();
        if !keep {
            return;
        }
        match t.inventory_cache {
            Some(inventory::CacheUse::Hit) => self.cache[0] += 1,
            Some(inventory::CacheUse::Stored) => self.cache[1] += 1,
            Some(inventory::CacheUse::NotStored) => self.cache[2] += 1,
            None => {}
        }
        self.stages.push([
            t.read_spec_us,
            t.inventory_us,
            t.plan_us,
            t.rootfs_links_us,
            t.ld_cache_us,
            t.write_spec_us,
            t.total_us,
        ]);
    }

    fn column(&self, stage: usize) -> Vec<u64> {
        self.stages.iter().map(|s| s[stage]).collect()
    }

    fn print_stages(&self) {
        let iterations = self.stages.len();
        println!("#### {}", self.name);
        println!("inject_bundle over {iterations} iterations (microseconds)");
        let [hits, stored, not_stored] = self.cache;
        match &self.config.inventory_cache {
            None => println!("inventory cache: off"),
            Some(dir) => println!(
                "inventory cache {}: {hits} hits, {stored} stored, {not_stored} found but not stored",
                dir.display()
            ),
        }
        println!("| stage | median | min | max |");
        println!("| --- | --- | --- | --- |");
        for (i, name) in STAGES.iter().enumerate() {
            let column = self.column(i);
            let (min, max) = (*column.iter().min().unwrap(), *column.iter().max().unwrap());
            println!("| {name} | {} | {min} | {max} |", percentile(column, 50));
        }
        println!();
    }
}

/// The `p`th percentile (nearest rank) of `values`.
fn percentile(mut values: Vec<u64>, p: usize) -> u64 {
    values.sort_unstable();
    values[(values.len() * p / 100).min(values.len() - 1)]
}

fn signed_median(mut values: Vec<i64>) -> i64 {
    values.sort_unstable();
    values[values.len() / 2]
}

fn load_config(path: &Path) -> inject::Config {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    inject::Config::parse(&text, path).unwrap_or_else(|e| panic!("{e}"))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: inject_bench BUNDLE ITERATIONS | \
                 inject_bench ITERATIONS NAME CONFIG BUNDLE [NAME CONFIG BUNDLE]...";
    let (iterations, mut series): (usize, Vec<Series>) = match args.first() {
        Some(first) if first.parse::<usize>().is_ok() => {
            let rest = &args[1..];
            assert!(!rest.is_empty() && rest.len().is_multiple_of(3), "{usage}");
            let series = rest
                .chunks(3)
                .map(|c| {
                    let config = load_config(Path::new(&c[1]));
                    Series::new(c[0].clone(), config, PathBuf::from(&c[2]))
                })
                .collect();
            (first.parse().unwrap(), series)
        }
        Some(bundle) => {
            let iterations = args.get(1).map_or(200, |n| n.parse().expect("a number"));
            let config = inject::Config::load().expect("config");
            let series = Series::new(bundle.clone(), config, PathBuf::from(bundle));
            (iterations, vec![series])
        }
        None => panic!("{usage}"),
    };
    assert!(iterations > 0, "{usage}");

    let n = series.len();
    for round in 0..WARMUP + iterations {
        for k in 0..n {
            series[(round + k) % n].run(round >= WARMUP);
        }
    }

    for s in &series {
        s.print_stages();
    }
    if n == 1 {
        return;
    }
    let total = STAGES.len() - 1;
    let base = series[0].column(total);
    println!("#### interleaved, {iterations} iterations each (microseconds)");
    println!(
        "| series | median total | p90 | min | median of (total − {} total), same iteration |",
        series[0].name
    );
    println!("| --- | --- | --- | --- | --- |");
    for s in &series {
        let column = s.column(total);
        let diffs: Vec<i64> = column
            .iter()
            .zip(&base)
            .map(|(&a, &b)| a as i64 - b as i64)
            .collect();
        println!(
            "| {} | {} | {} | {} | {:+} |",
            s.name,
            percentile(column.clone(), 50),
            percentile(column.clone(), 90),
            column.iter().min().unwrap(),
            signed_median(diffs)
        );
    }
}
