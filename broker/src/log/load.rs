//! Loading a log directory at startup: leftover cleanup, segment opening, crash recovery.
//!
//! Clean start (the log dir had the clean-shutdown marker): every segment is opened with its
//! indexes trusted after a sanity check. Unclean start: segments before the one containing
//! the recovery point are opened the same way; from that one on every batch is re-validated
//! and the indexes rebuilt. The first invalid or torn byte truncates its segment and deletes
//! every later segment, so the log is always a valid prefix of what was written.

use std::path::Path;

use super::segment::Segment;
use super::{LogConfig, LogError, TopicPartition};

/// The segments and offsets of a loaded log.
#[derive(Debug)]
pub(crate) struct LoadedSegments {
    /// Never empty; the last one is active.
    pub(crate) segments: Vec<Segment>,
    pub(crate) log_start_offset: i64,
    pub(crate) recovery_point: i64,
}

/// Loads (or creates, when empty) the segments in `dir`; see the module docs.
pub(crate) fn load_segments(
    dir: &Path,
    topic_partition: &TopicPartition,
    config: &LogConfig,
    recovery_point: i64,
    log_start_offset: i64,
    clean_shutdown: bool,
    now_ms: i64,
) -> Result<LoadedSegments, LogError> {
    std::fs::create_dir_all(dir).map_err(|e| LogError::io("creating log directory", dir, e))?;
    // Cleaner swaps first: a committed one replaces segments that scan_dir would list.
    super::cleaner::swap::resolve_leftovers(dir)?;
    let bases = scan_dir(dir)?;
    let mut segments: Vec<Segment> = Vec::with_capacity(bases.len().max(1));
    let recover_from = if clean_shutdown {
        usize::MAX
    } else {
        bases
            .partition_point(|&b| b <= recovery_point)
            .saturating_sub(1)
    };
    for (i, &base) in bases.iter().enumerate() {
        let next_base = bases.get(i + 1).copied();
        let (mut segment, outcome) =
            Segment::open(dir, base, next_base, i >= recover_from, config, now_ms)?;
        let truncated = outcome.is_some_and(|o| o.truncated_bytes > 0);
        // A segment that ends before the next one begins (its file was cut at a batch
        // boundary) would leave a hole in the offsets: treat it like a truncated one.
        let short = next_base.is_some_and(|next| segment.next_offset() != next);
        if (truncated || short) && next_base.is_some() {
            tracing::warn!(%topic_partition, base, "deleting every segment after a truncated one");
            for &later in &bases[i + 1..] {
                delete_segment_files(dir, later)?;
            }
            segment.truncate_to(i64::MAX, config)?;
            segments.push(segment);
            break;
        }
        segments.push(segment);
    }
    let mut log_start = log_start_offset.max(segments.first().map_or(0, Segment::base_offset));
    let log_end = segments.last().map_or(i64::MIN, Segment::next_offset);
    if segments.is_empty() || log_end < log_start {
        // Nothing on disk, or everything below a checkpointed log start: start empty there.
        for segment in &segments {
            delete_segment_files(dir, segment.base_offset())?;
        }
        log_start = log_start.max(0);
        segments = vec![Segment::create(dir, log_start, config, now_ms)?];
    }
    let log_end = segments.last().map_or(0, Segment::next_offset);
    let recovery_point = if clean_shutdown {
        log_end
    } else {
        recovery_point.clamp(0, log_end)
    };
    Ok(LoadedSegments {
        segments,
        log_start_offset: log_start,
        recovery_point,
    })
}

/// Base offsets of the `.log` files in `dir`, sorted; removes leftovers of interrupted
/// deletions (`*.deleted`, `*.tmp`; cleaner swaps were resolved before) and orphan indexes.
fn scan_dir(dir: &Path) -> Result<Vec<i64>, LogError> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| LogError::io("listing log directory", dir, e))?;
    let mut bases = Vec::new();
    let mut indexes = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| LogError::io("listing log directory", dir, e))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let leftover = [".deleted", ".cleaned", ".swap", ".tmp"]
            .iter()
            .any(|suffix| name.ends_with(suffix));
        if leftover {
            std::fs::remove_file(&path)
                .map_err(|e| LogError::io("removing leftover file", &path, e))?;
            continue;
        }
        let Some((stem, extension)) = name.split_once('.') else {
            continue;
        };
        let Ok(base) = stem.parse::<i64>() else {
            continue;
        };
        match extension {
            "log" if stem.len() == 20 => bases.push(base),
            "index" | "timeindex" => indexes.push((base, path)),
            _ => {}
        }
    }
    bases.sort_unstable();
    for (base, path) in indexes {
        if bases.binary_search(&base).is_err() {
            std::fs::remove_file(&path)
                .map_err(|e| LogError::io("removing orphan index", &path, e))?;
        }
    }
    Ok(bases)
}

pub(crate) fn delete_segment_files(dir: &Path, base: i64) -> Result<(), LogError> {
    let stem = super::segment::file_stem(base);
    for extension in ["log", "index", "timeindex"] {
        let path = dir.join(format!("{stem}.{extension}"));
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(LogError::io("deleting segment file", &path, e)),
        }
    }
    Ok(())
}
