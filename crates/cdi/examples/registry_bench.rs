//! Where the time of reading a spec dir goes: for one spec file, the median over ITERATIONS
//! (interleaved) of parsing it alone, checking its rules alone, and loading its dir as the
//! runtime does, without and with the parse cache (a hit: the file is unchanged).
//!
//! usage: registry_bench SPEC_FILE CACHE_DIR [ITERATIONS]
//!        (CACHE_DIR: a private dir of this user, or one to make; the file must have been
//!        unchanged for 2 s, else it is not cached)

use std::path::{Path, PathBuf};
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let usage = "usage: registry_bench SPEC_FILE CACHE_DIR [ITERATIONS]";
    let file = PathBuf::from(args.next().expect(usage));
    let cache = PathBuf::from(args.next().expect(usage));
    let iterations: usize = args.next().map_or(1000, |n| n.parse().expect(usage));
    let dirs = [file.parent().expect("a file in a dir").to_owned()];
    let bytes = std::fs::read(&file).expect("the spec file");
    let spec = cdi::Spec::parse(&bytes, &file).expect("a valid spec");
    let json = spec.to_json().unwrap();
    cdi::Registry::load_cached(&dirs, &cache);
    assert_eq!(
        cdi::Registry::load_cached(&dirs, &cache).cache_use(),
        (1, 0),
        "not served from the cache (changed less than 2 s ago?)"
    );

    type Step<'a> = (&'a str, Box<dyn Fn() + 'a>);
    let steps: Vec<Step> = vec![
        (
            "parse (no rule checks)",
            Box::new(|| {
                cdi::Spec::parse_unvalidated(&bytes, &file).unwrap();
            }),
        ),
        ("rule checks", Box::new(|| spec.validate(&file).unwrap())),
        (
            "serde_json::from_str::<Spec> of its JSON form",
            Box::new(|| {
                serde_json::from_str::<cdi::Spec>(&json).unwrap();
            }),
        ),
        (
            "Registry::load",
            Box::new(|| {
                assert_eq!(
                    cdi::Registry::load(&dirs).devices().len(),
                    spec.devices.len()
                );
            }),
        ),
        (
            "Registry::load_cached (hit)",
            Box::new(|| {
                let reg = cdi::Registry::load_cached(&dirs, &cache);
                assert_eq!(reg.cache_use(), (1, 0));
            }),
        ),
    ];
    let mut times: Vec<Vec<u64>> = vec![Vec::with_capacity(iterations); steps.len()];
    for round in 0..iterations {
        for k in 0..steps.len() {
            let i = (round + k) % steps.len();
            let start = Instant::now();
            (steps[i].1)();
            times[i].push(start.elapsed().as_nanos() as u64);
        }
    }
    println!(
        "{} ({} bytes), {iterations} iterations",
        display(&file),
        bytes.len()
    );
    println!("| step | median µs | min µs |");
    println!("| --- | --- | --- |");
    for ((name, _), t) in steps.iter().zip(&mut times) {
        t.sort_unstable();
        let us = |ns: u64| ns as f64 / 1000.0;
        println!("| {name} | {:.1} | {:.1} |", us(t[t.len() / 2]), us(t[0]));
    }
}

fn display(p: &Path) -> String {
    p.display().to_string()
}
