//! CDI names resolved at create through the parse cache in the inventory cache's dir: what a
//! container gets is always what its spec file says now, cached or not.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use inject::cdi_request::resolve;
use inject::Config;

const SPEC: &str = "cdiVersion: 0.6.0\nkind: example.com/dev\ndevices:\n- name: a\n  containerEdits: {env: [DEV=a1]}\n";

fn env_of(config: &Config) -> Vec<String> {
    let spec = serde_json::json!({"process": {"env": []}});
    resolve(&["example.com/dev=a".to_owned()], config, &spec)
        .unwrap()
        .edits
        .env
}

/// The one entry in the cache dir, by inode (a rewrite replaces it: another inode).
fn entry_inode(cache: &Path) -> Option<u64> {
    let dir = cache.join(cdi::cache::SUBDIR);
    let entries: Vec<_> = fs::read_dir(dir).ok()?.map(|e| e.unwrap().path()).collect();
    assert!(entries.len() <= 1, "{entries:?}");
    entries.first().map(|p| fs::metadata(p).unwrap().ino())
}

#[test]
fn a_spec_edited_after_it_was_cached_is_read_anew() {
    let t = tempfile::tempdir().unwrap();
    let (specs, cache) = (t.path().join("specs"), t.path().join("cache"));
    fs::create_dir(&specs).unwrap();
    let file = specs.join("dev.yaml");
    fs::write(&file, SPEC).unwrap();
    let config = Config {
        cdi_spec_dirs: vec![specs.clone()],
        inventory_cache: Some(cache.clone()),
        ..Config::default()
    };

    // Changed moments ago: parsed, not stored.
    assert_eq!(env_of(&config), ["DEV=a1"]);
    assert_eq!(entry_inode(&cache), None);
    // Settled (the ctime cannot be set back, so this waits): stored once, then served.
    std::thread::sleep(cdi::cache::SETTLE + Duration::from_millis(100));
    assert_eq!(env_of(&config), ["DEV=a1"]);
    let stored = entry_inode(&cache).expect("an entry");
    assert_eq!(env_of(&config), ["DEV=a1"]);
    assert_eq!(
        entry_inode(&cache),
        Some(stored),
        "a hit leaves the entry alone"
    );

    // Edited in place, same size: the next create gets the new edits at once.
    fs::write(&file, SPEC.replace("a1", "a2")).unwrap();
    assert_eq!(env_of(&config), ["DEV=a2"]);
    assert_eq!(entry_inode(&cache), Some(stored), "too fresh to store");

    // The cache off: nothing read from or written to any cache dir.
    let off = Config {
        inventory_cache: None,
        ..config.clone()
    };
    fs::remove_dir_all(&cache).unwrap();
    assert_eq!(env_of(&off), ["DEV=a2"]);
    assert!(!cache.exists());
}
