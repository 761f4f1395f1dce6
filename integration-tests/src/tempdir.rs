//! Per-process temp dirs that are removed on drop, unless `TRIBUTARY_KEEP_TEST_DIRS=1` asks to
//! keep them for a post-mortem (their paths are printed then).

use std::path::Path;

use anyhow::{Context as _, Result};
use tempfile::TempDir;

/// Set to `1` to keep every harness temp dir (configs, data, logs) after the test.
pub const KEEP_DIRS_ENV: &str = "TRIBUTARY_KEEP_TEST_DIRS";

/// A fresh directory under the system temp dir, named `tributary-<label>-XXXXXX`.
#[derive(Debug)]
pub struct TestDir {
    dir: Option<TempDir>,
}

impl TestDir {
    /// Creates the directory.
    pub fn new(label: &str) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("tributary-{label}-"))
            .tempdir()
            .context("cannot create a temp dir")?;
        Ok(Self { dir: Some(dir) })
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        self.dir.as_ref().map_or(Path::new(""), TempDir::path)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let keep = std::env::var(KEEP_DIRS_ENV).is_ok_and(|value| value == "1");
        if let (true, Some(dir)) = (keep, self.dir.take()) {
            eprintln!("harness: kept {}", dir.keep().display());
        }
    }
}
