//! The seam between the runtime and GPU injection: before libcontainer reads
//! `<bundle>/config.json`, rewrite it with what the container asked for.

use std::path::Path;

use anyhow::Result;

/// What one injection left on disk, so a failed create can undo it.
pub struct Injection;

impl Injection {
    pub fn rollback(self) {}
}

pub fn prepare_bundle(_bundle: &Path, _id: &str, _root: &Path) -> Result<Injection> {
    Ok(Injection)
}

/// Removes what injection kept for a container once it is deleted.
pub fn cleanup(_root: &Path, _id: &str) {}
