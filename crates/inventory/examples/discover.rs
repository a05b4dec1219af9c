//! Prints what discovery finds as JSON, and how long it took on stderr.
//!
//! `cargo run -p inventory --example discover [ROOT]`: ROOT (default `/`) serves as driver, dev
//! and proc root, as with a simulated root from `tests/fixtures/make-driver-root.sh`.

use std::time::Instant;

fn main() {
    let root = std::env::args().nth(1).unwrap_or_else(|| "/".into());
    let roots = inventory::Roots::all(root);
    let start = Instant::now();
    let inv = inventory::discover(&roots);
    let took = start.elapsed();
    if std::env::var_os("DISCOVER_TWICE").is_some() {
        let again = Instant::now();
        let _ = inventory::discover(&roots);
        eprintln!("again in {:?}", again.elapsed());
    }
    match inv {
        Ok(inv) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&inv).expect("serialisable")
            );
            eprintln!("discovered in {took:?}");
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
