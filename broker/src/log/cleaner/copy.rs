//! The I/O of a cleaning pass, without the log's lock: reading sealed segments through the
//! file handles taken under it, building the key map, and writing cleaned segments under
//! the `.cleaned` suffix (fsync'd, indexes built, ready for `swap.rs`).

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use tributary_record::{RecordError, decode_records};

use super::super::recovery::{ScanEnd, ScannedBatch, scan_batches};
use super::super::segment::{BatchMeta, Segment};
use super::super::{LogConfig, LogError};
use super::retain::{BatchRules, Filtered, OffsetMap, filter_batch, retains_tombstones};
use super::swap::{CLEANED_SUFFIX, discard_cleaned};

/// Bytes of batches gathered before one write to the cleaned segment.
const WRITE_CHUNK: usize = 1 << 20;

/// A sealed segment as the cleaner reads it (taken under the log's lock; sealed segments do
/// not change, and the handle stays readable if retention renames or unlinks the file).
#[derive(Debug, Clone)]
pub(crate) struct SourceSegment {
    pub(crate) base_offset: i64,
    pub(crate) next_offset: i64,
    pub(crate) size: u64,
    pub(crate) modified_ms: i64,
    pub(crate) file: Arc<File>,
    pub(crate) path: PathBuf,
}

/// Walks every batch of `source`, failing on anything but a clean end (a sealed segment was
/// validated when it was written or recovered, so a bad batch now is corruption).
fn for_each_batch(
    source: &SourceSegment,
    mut visit: impl FnMut(&ScannedBatch<'_>) -> Result<(), LogError>,
) -> Result<(), LogError> {
    let mut failure = None;
    let (position, end) = scan_batches(&source.file, &source.path, 0, source.size, |batch| {
        visit(batch).map_err(|error| {
            failure = Some(error);
            // Stops the scan; the real error is `failure`.
            RecordError::InvalidHeader {
                reason: "cleaner stopped",
            }
        })
    })?;
    if let Some(error) = failure {
        return Err(error);
    }
    match end {
        ScanEnd::Clean => Ok(()),
        ScanEnd::Torn => Err(LogError::CorruptSegment {
            path: source.path.clone(),
            position,
            source: RecordError::Truncated {
                needed: 1,
                available: 0,
            },
        }),
        ScanEnd::Invalid(source_error) => Err(LogError::CorruptSegment {
            path: source.path.clone(),
            position,
            source: source_error,
        }),
    }
}

fn corrupt(source: &SourceSegment, position: u64, error: RecordError) -> LogError {
    LogError::CorruptSegment {
        path: source.path.clone(),
        position,
        source: error,
    }
}

/// What the first read of a pass found.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// Key → latest offset over the dirty batches of the mapped segments.
    pub(crate) map: OffsetMap,
    /// Producer id → last offset of its last batch in the mapped segments.
    pub(crate) producer_last_offsets: HashMap<i64, i64>,
    /// How many sources (from the first) were read; the pass recopies only these. Fewer
    /// than all when the map reached its memory budget.
    pub(crate) mapped_segments: usize,
}

/// Reads `sources` in order: headers of every batch (for producer ids), records of the
/// batches at or above `first_dirty_offset` into the key map. Stops before a dirty segment
/// once the map holds `budget_bytes` (after at least one dirty segment, so a pass always
/// makes progress).
pub(crate) fn scan(
    sources: &[SourceSegment],
    first_dirty_offset: i64,
    budget_bytes: usize,
    stop: &dyn Fn() -> bool,
) -> Result<Scan, LogError> {
    let mut scan = Scan::default();
    let mut mapped_dirty = 0;
    for source in sources {
        let dirty = source.next_offset > first_dirty_offset;
        if stop() || (dirty && mapped_dirty > 0 && scan.map.estimated_bytes() >= budget_bytes) {
            break;
        }
        for_each_batch(source, |batch| {
            let header = &batch.header;
            if header.producer_id >= 0 {
                scan.producer_last_offsets
                    .insert(header.producer_id, header.last_offset());
            }
            if header.last_offset() < first_dirty_offset
                || header.attributes.is_control()
                || header.attributes.is_transactional()
            {
                return Ok(());
            }
            let bytes = Bytes::copy_from_slice(batch.bytes);
            let records = decode_records(&bytes).map_err(|e| corrupt(source, batch.position, e))?;
            for record in records {
                if let Some(key) = &record.key
                    && record.offset >= first_dirty_offset
                {
                    scan.map.insert(key, record.offset);
                }
            }
            Ok(())
        })?;
        mapped_dirty += usize::from(dirty);
        scan.mapped_segments += 1;
    }
    Ok(scan)
}

/// A cleaned segment written and fsync'd under the `.cleaned` suffix.
#[derive(Debug)]
pub(crate) struct CleanedSegment {
    /// Its base offset (the first source's).
    pub(crate) base_offset: i64,
    /// Bytes of the sources.
    pub(crate) bytes_before: u64,
    /// Bytes written.
    pub(crate) bytes_after: u64,
}

/// Everything that decides what survives, for one pass.
#[derive(Debug)]
pub(crate) struct PassRules<'a> {
    pub(crate) scan: &'a Scan,
    pub(crate) delete_horizon_ms: i64,
}

/// Recopies `group` (adjacent sources) into one cleaned segment named after the first, or
/// returns `None` when that would change nothing (one source, every batch kept as is).
/// The last batch of the group is always kept (emptied if need be) so the cleaned segment
/// ends exactly where the group did.
pub(crate) fn write_cleaned(
    dir: &Path,
    group: &[SourceSegment],
    rules: &PassRules<'_>,
    config: &LogConfig,
    now_ms: i64,
) -> Result<Option<CleanedSegment>, LogError> {
    let (Some(first), Some(last)) = (group.first(), group.last()) else {
        return Ok(None);
    };
    let base_offset = first.base_offset;
    let group_end = last.next_offset;
    let mut segment =
        Segment::create_with_suffix(dir, base_offset, CLEANED_SUFFIX, config, now_ms)?;
    let written = (|| {
        let mut changed = group.len() > 1;
        let mut buf: Vec<u8> = Vec::with_capacity(WRITE_CHUNK);
        let mut metas: Vec<BatchMeta> = Vec::new();
        for source in group {
            let retain_tombstones = retains_tombstones(source.modified_ms, rules.delete_horizon_ms);
            for_each_batch(source, |batch| {
                let header = batch.header;
                let keep_header = header.next_offset() == group_end
                    || (header.producer_id >= 0
                        && rules.scan.producer_last_offsets.get(&header.producer_id)
                            == Some(&header.last_offset()));
                let batch_rules = BatchRules {
                    map: &rules.scan.map,
                    retain_tombstones,
                    keep_header,
                };
                let bytes = Bytes::copy_from_slice(batch.bytes);
                let filtered = filter_batch(&bytes, batch_rules)
                    .map_err(|e| corrupt(source, batch.position, e))?;
                let kept: &[u8] = match &filtered {
                    Filtered::Unchanged => &bytes,
                    Filtered::Rewritten(rewritten) => rewritten,
                    Filtered::Dropped => &[],
                };
                changed |= !matches!(filtered, Filtered::Unchanged);
                if !kept.is_empty() {
                    let mut meta = BatchMeta::from(&header);
                    meta.size = kept.len();
                    meta.max_timestamp = tributary_record::BatchHeader::parse(kept)
                        .map_or(header.max_timestamp, |h| h.max_timestamp);
                    buf.extend_from_slice(kept);
                    metas.push(meta);
                }
                if buf.len() >= WRITE_CHUNK {
                    segment.append(&buf, &metas, config)?;
                    buf.clear();
                    metas.clear();
                }
                Ok(())
            })?;
        }
        if !buf.is_empty() {
            segment.append(&buf, &metas, config)?;
        }
        Ok::<bool, LogError>(changed)
    })();
    let changed = match written {
        Ok(changed) => changed,
        Err(error) => {
            drop(segment);
            discard_cleaned(dir, base_offset);
            return Err(error);
        }
    };
    if !changed {
        drop(segment);
        discard_cleaned(dir, base_offset);
        return Ok(None);
    }
    let finished = (|| {
        segment.seal()?;
        segment.flush_indexes()?;
        let modified = group.iter().map(|s| s.modified_ms).max().unwrap_or(now_ms);
        segment.set_modified_ms(modified)?;
        for (file, path) in segment.sync_handles() {
            file.sync_all()
                .map_err(|e| LogError::io("fsync of", &path, e))?;
        }
        debug_assert!(
            segment.size() == 0 || segment.next_offset() == group_end,
            "a cleaned segment ends where its group did"
        );
        Ok::<u64, LogError>(segment.size())
    })();
    drop(segment);
    match finished {
        Ok(bytes_after) => Ok(Some(CleanedSegment {
            base_offset,
            bytes_before: group.iter().map(|s| s.size).sum(),
            bytes_after,
        })),
        Err(error) => {
            discard_cleaned(dir, base_offset);
            Err(error)
        }
    }
}
