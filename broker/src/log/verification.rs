//! The `needs-verification` mark: a log recovered after an unclean shutdown may have lost
//! writes that were only in the page cache, so it must not be trusted as the last in-sync
//! replica until the controller has compared it with the partition's other replicas (see
//! `docs/replication.md`, "Last replica standing").
//!
//! The mark is an empty file in the partition directory, created (and fsynced with its
//! directory) when a log is loaded from a log dir without the clean-shutdown marker, and removed
//! when the broker learns the partition has a leader again. Being a file, it survives a later
//! clean shutdown: a broker stopped cleanly before the check still needs it after a restart.

use std::fs::File;
use std::path::Path;

use super::LogError;
use super::checkpoint::sync_dir;

/// Name of the mark inside `<log.dir>/<topic>-<partition>/`.
pub const NEEDS_VERIFICATION_FILE: &str = "needs-verification";

/// Whether the log in `dir` needs verification, marking it first if it was just recovered
/// from an unclean shutdown (`clean_shutdown == false`).
pub(crate) fn load(dir: &Path, clean_shutdown: bool) -> Result<bool, LogError> {
    let path = dir.join(NEEDS_VERIFICATION_FILE);
    if clean_shutdown {
        return Ok(path.exists());
    }
    if !path.exists() {
        File::create(&path)
            .and_then(|f| f.sync_all())
            .map_err(|e| LogError::io("creating the needs-verification mark", &path, e))?;
        sync_dir(dir)?;
    }
    Ok(true)
}

/// Removes the mark (a no-op when there is none).
pub(crate) fn clear(dir: &Path) -> Result<(), LogError> {
    let path = dir.join(NEEDS_VERIFICATION_FILE);
    match std::fs::remove_file(&path) {
        Ok(()) => sync_dir(dir),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LogError::io(
            "removing the needs-verification mark",
            &path,
            e,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unclean_load_marks_the_log_until_cleared_even_across_clean_loads() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!load(dir.path(), true).unwrap());
        assert!(load(dir.path(), false).unwrap());
        // A clean shutdown before the check does not forget it.
        assert!(load(dir.path(), true).unwrap());
        clear(dir.path()).unwrap();
        assert!(!load(dir.path(), true).unwrap());
        clear(dir.path()).unwrap();
    }
}
