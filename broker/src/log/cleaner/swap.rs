//! Replacing segments by a cleaned one so that a crash at any moment leaves a readable log
//! with every latest value: the rename protocol, and its completion or roll-back at load.
//!
//! # Files (in the partition directory; `<B>` = 20-digit base offset of the cleaned segment)
//!
//! ```text
//! <B>.log.cleaned  <B>.index.cleaned  <B>.timeindex.cleaned   being written; fsync'd when done
//! <B>.log.swap     <B>.index.swap     <B>.timeindex.swap      committed, not yet in place
//! <old>.log.deleted ...                                       replaced, unlinked later
//! ```
//!
//! # The protocol (all under the log's lock from step 1; the data was written and fsync'd
//! before)
//!
//! 1. rename `<B>.index.cleaned` and `<B>.timeindex.cleaned` to `.swap`; fsync the directory;
//! 2. rename `<B>.log.cleaned` to `<B>.log.swap`; fsync the directory. **This is the commit
//!    point**: from now on the cleaned segment replaces the old ones;
//! 3. rename every file of every replaced segment (`<old>.log`, `.index`, `.timeindex`) to
//!    `<name>.deleted` (open readers keep reading them);
//! 4. rename the index swaps, then `<B>.log.swap`, to their final names; fsync the directory.
//!
//! # After a crash (run by the loader before it lists segments)
//!
//! * `*.cleaned`: an unfinished pass; deleted (the old segments are intact).
//! * `<B>.log.swap`: committed. Its batches end at the offset where the following segment
//!   starts (the cleaner keeps each cleaned segment's last batch), so it replaces every
//!   segment with a base offset in `[B, its end)`: their files (whatever their state) are
//!   deleted, the index swaps (if any) renamed, then the log swap. Missing indexes are rebuilt
//!   when the segment is opened.
//! * index `.swap` files without a `<B>.log.swap`: the crash came before the commit; deleted.
//! * `*.deleted` files are then removed by the loader as before.
//!
//! Every rename is atomic, so a crash leaves the state after some prefix of the steps; the
//! tests in `log/tests/compaction.rs` execute each prefix of the plan and load the log.

use std::path::{Path, PathBuf};

use super::super::LogError;
use super::super::checkpoint::sync_dir;
use super::super::load::delete_segment_files;
use super::super::recovery::scan_batches;
use super::super::segment::{Segment, file_stem};

/// Suffix of a cleaned segment being written.
pub(crate) const CLEANED_SUFFIX: &str = ".cleaned";
/// Suffix of a committed cleaned segment not yet renamed into place.
pub(crate) const SWAP_SUFFIX: &str = ".swap";
/// Suffix of a replaced file waiting for `file.delete.delay.ms`.
pub(crate) const DELETED_SUFFIX: &str = ".deleted";

/// One step of the swap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FileOp {
    /// `rename(from, to)`.
    Rename {
        /// Current path.
        from: PathBuf,
        /// New path.
        to: PathBuf,
    },
    /// fsync the partition directory.
    SyncDir,
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The steps that replace the segments at `old_bases` by the cleaned segment `new_base`
/// (written with [`CLEANED_SUFFIX`]), in order (see the module docs).
pub(crate) fn plan(dir: &Path, new_base: i64, old_bases: &[i64]) -> Vec<FileOp> {
    let rename = |from: PathBuf, to: PathBuf| FileOp::Rename { from, to };
    let (log, index, time) = Segment::paths_with_suffix(dir, new_base, "");
    let mut ops = vec![
        rename(
            with_suffix(&index, CLEANED_SUFFIX),
            with_suffix(&index, SWAP_SUFFIX),
        ),
        rename(
            with_suffix(&time, CLEANED_SUFFIX),
            with_suffix(&time, SWAP_SUFFIX),
        ),
        FileOp::SyncDir,
        rename(
            with_suffix(&log, CLEANED_SUFFIX),
            with_suffix(&log, SWAP_SUFFIX),
        ),
        FileOp::SyncDir,
    ];
    for &old in old_bases {
        let (old_log, old_index, old_time) = Segment::paths_with_suffix(dir, old, "");
        for path in [old_log, old_index, old_time] {
            ops.push(rename(path.clone(), with_suffix(&path, DELETED_SUFFIX)));
        }
    }
    ops.extend([
        rename(with_suffix(&index, SWAP_SUFFIX), index),
        rename(with_suffix(&time, SWAP_SUFFIX), time),
        rename(with_suffix(&log, SWAP_SUFFIX), log),
        FileOp::SyncDir,
    ]);
    ops
}

/// Runs `ops` in order, stopping at the first failure.
pub(crate) fn execute(dir: &Path, ops: &[FileOp]) -> Result<(), LogError> {
    for op in ops {
        #[cfg(test)]
        fault::before_op(dir)?;
        match op {
            FileOp::Rename { from, to } => std::fs::rename(from, to)
                .map_err(|e| LogError::io("renaming for the cleaner swap", from, e))?,
            FileOp::SyncDir => sync_dir(dir)?,
        }
    }
    Ok(())
}

/// The paths of `old_bases`' files once renamed by [`plan`] (for the delayed unlink).
pub(crate) fn deleted_paths(dir: &Path, old_bases: &[i64]) -> Vec<PathBuf> {
    old_bases
        .iter()
        .flat_map(|&old| {
            let (log, index, time) = Segment::paths_with_suffix(dir, old, "");
            [log, index, time].map(|p| with_suffix(&p, DELETED_SUFFIX))
        })
        .collect()
}

/// Deletes the files of a cleaned segment that will not be swapped in (best effort).
pub(crate) fn discard_cleaned(dir: &Path, base: i64) {
    let (log, index, time) = Segment::paths_with_suffix(dir, base, CLEANED_SUFFIX);
    for path in [log, index, time] {
        if let Err(error) = std::fs::remove_file(&path)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(%error, path = %path.display(), "could not delete a cleaned segment file");
        }
    }
}

/// Completes committed swaps and removes unfinished ones in `dir` (see the module docs).
/// Called by the loader before it lists the segments.
pub(crate) fn resolve_leftovers(dir: &Path) -> Result<(), LogError> {
    let mut log_swaps = Vec::new();
    let mut other_swaps = Vec::new();
    let mut log_bases = Vec::new();
    let entries =
        std::fs::read_dir(dir).map_err(|e| LogError::io("listing log directory", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| LogError::io("listing log directory", dir, e))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(CLEANED_SUFFIX) {
            std::fs::remove_file(&path)
                .map_err(|e| LogError::io("removing an unfinished cleaned segment", &path, e))?;
        } else if let Some(stem) = name.strip_suffix(".log.swap") {
            if let Ok(base) = stem.parse::<i64>() {
                log_swaps.push((base, path));
            }
        } else if name.ends_with(SWAP_SUFFIX) {
            other_swaps.push(path);
        } else if let Some(stem) = name.strip_suffix(".log")
            && stem.len() == 20
            && let Ok(base) = stem.parse::<i64>()
        {
            log_bases.push(base);
        }
    }
    if log_swaps.is_empty() && other_swaps.is_empty() {
        return Ok(());
    }
    log_swaps.sort();
    for (base, swap_path) in &log_swaps {
        let end = end_offset(swap_path)?.unwrap_or(*base);
        for &old in log_bases.iter().filter(|&&b| b >= *base && b < end) {
            delete_segment_files(dir, old)?;
        }
        // Index swaps still present are renamed over whatever indexes are at the final
        // names; if they were already renamed (crash just before the log rename), the final
        // names hold them, unless an old `<B>.log` was still there and they were deleted with
        // it, in which case opening the segment rebuilds them.
        let (log, index, time) = Segment::paths_with_suffix(dir, *base, "");
        for target in [index, time] {
            let swap = with_suffix(&target, SWAP_SUFFIX);
            if swap.exists() {
                std::fs::rename(&swap, &target)
                    .map_err(|e| LogError::io("completing a cleaner swap of", &swap, e))?;
            }
        }
        std::fs::rename(swap_path, &log)
            .map_err(|e| LogError::io("completing a cleaner swap of", swap_path, e))?;
        tracing::info!(dir = %dir.display(), segment = %file_stem(*base), end, "completed an interrupted cleaner swap");
    }
    for path in other_swaps {
        // An index swap whose log swap is gone was either used above or predates the commit.
        if path.exists() {
            std::fs::remove_file(&path)
                .map_err(|e| LogError::io("removing an uncommitted swap file", &path, e))?;
        }
    }
    sync_dir(dir)
}

/// The offset after the last batch of the segment file at `path` (`None` if it has none).
fn end_offset(path: &Path) -> Result<Option<i64>, LogError> {
    let file = std::fs::File::open(path).map_err(|e| LogError::io("opening", path, e))?;
    let len = file
        .metadata()
        .map_err(|e| LogError::io("reading metadata of", path, e))?
        .len();
    let mut end = None;
    scan_batches(&file, path, 0, len, |batch| {
        end = Some(batch.header.next_offset());
        Ok(())
    })?;
    Ok(end)
}

/// Test-only crash simulation (per thread, so parallel tests are unaffected): stop the
/// swap before its n-th file operation, leaving the files as a `kill -9` there would.
#[cfg(test)]
pub(crate) mod fault {
    use std::cell::Cell;
    use std::path::Path;

    use super::super::super::LogError;

    thread_local! {
        static CRASH_BEFORE: Cell<Option<usize>> = const { Cell::new(None) };
        static EXECUTED: Cell<usize> = const { Cell::new(0) };
    }

    /// Makes swaps on this thread fail before their `n`-th file operation from now on
    /// (`None`: never), and resets the count of executed operations.
    pub(crate) fn crash_before_op(n: Option<usize>) {
        CRASH_BEFORE.with(|c| c.set(n));
        EXECUTED.with(|c| c.set(0));
    }

    /// File operations executed on this thread since [`crash_before_op`].
    pub(crate) fn executed() -> usize {
        EXECUTED.with(Cell::get)
    }

    pub(super) fn before_op(dir: &Path) -> Result<(), LogError> {
        let done = EXECUTED.with(Cell::get);
        if CRASH_BEFORE.with(Cell::get) == Some(done) {
            return Err(LogError::io(
                "simulated crash in the cleaner swap of",
                dir,
                std::io::Error::other("crash"),
            ));
        }
        EXECUTED.with(|c| c.set(done + 1));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_commits_with_the_log_rename_and_moves_old_files_before_the_new_ones() {
        let dir = Path::new("/d");
        let ops = plan(dir, 0, &[0, 10]);
        let names: Vec<String> = ops
            .iter()
            .map(|op| match op {
                FileOp::Rename { from, to } => format!(
                    "{} -> {}",
                    from.file_name().unwrap().to_string_lossy(),
                    to.file_name().unwrap().to_string_lossy()
                ),
                FileOp::SyncDir => "sync".to_owned(),
            })
            .collect();
        let z = "00000000000000000000";
        let t = "00000000000000000010";
        assert_eq!(
            names,
            [
                format!("{z}.index.cleaned -> {z}.index.swap"),
                format!("{z}.timeindex.cleaned -> {z}.timeindex.swap"),
                "sync".to_owned(),
                format!("{z}.log.cleaned -> {z}.log.swap"),
                "sync".to_owned(),
                format!("{z}.log -> {z}.log.deleted"),
                format!("{z}.index -> {z}.index.deleted"),
                format!("{z}.timeindex -> {z}.timeindex.deleted"),
                format!("{t}.log -> {t}.log.deleted"),
                format!("{t}.index -> {t}.index.deleted"),
                format!("{t}.timeindex -> {t}.timeindex.deleted"),
                format!("{z}.index.swap -> {z}.index"),
                format!("{z}.timeindex.swap -> {z}.timeindex"),
                format!("{z}.log.swap -> {z}.log"),
                "sync".to_owned(),
            ]
        );
        assert_eq!(
            deleted_paths(dir, &[10])[0],
            Path::new("/d/00000000000000000010.log.deleted")
        );
    }
}
