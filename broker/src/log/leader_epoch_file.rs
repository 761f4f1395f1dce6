//! `leader-epoch-checkpoint`: the persisted [`LeaderEpochCache`] of a log, loading it at open
//! (or rebuilding it from the batches), and the `Log` methods that query and persist it.
//!
//! # File format (Kafka's `LeaderEpochCheckpointFile`, version 0), UTF-8 text, `\n` line ends
//!
//! ```text
//! 0            version
//! 3            number of entries
//! 0 0          <epoch> <start offset>, oldest first, both strictly increasing
//! 1 250
//! 3 871
//! ```
//!
//! # Crash safety
//!
//! Written like the offset checkpoints (tmp file, fsync, rename, fsync directory) whenever the
//! cache changes: a new epoch appended (rare), a truncation, a log start move. A write that
//! fails is retried by the next flush, which writes the file *before* it advances the
//! recovery point, so every epoch start below the recovery point is in the file. At open:
//!
//! * missing file (a new log, or one written before this file existed) or a corrupt one
//!   (logged): rebuilt from the `partition_leader_epoch` of every batch from the log start;
//! * after an unclean shutdown, the entries from the segment containing the recovery point on
//!   are rebuilt from its batches (they may not have reached the file before the crash, or
//!   the file may predate a truncation of that unflushed data);
//! * entries at or after the log end are dropped and the first one is raised to the log
//!   start (the file may be older than a truncation or a retention pass).
//!
//! The file is rewritten at open when any of this changed it.

use std::path::Path;

use super::checkpoint::{corrupt, encode_lines, entry_lines, write_atomically};
use super::leader_epoch::{EpochEntry, LeaderEpochCache};
use super::recovery::{ScanEnd, scan_batches};
use super::segment::Segment;
use super::{Log, LogError, TopicPartition};

/// Name of the leader epoch checkpoint in each partition directory.
pub const LEADER_EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";

/// Renders the checkpoint text for `entries`.
pub(crate) fn encode(entries: &[EpochEntry]) -> String {
    encode_lines(
        entries
            .iter()
            .map(|entry| format!("{} {}", entry.epoch, entry.start_offset)),
    )
}

/// Parses checkpoint text; `path` is only used in errors.
pub(crate) fn decode(path: &Path, text: &str) -> Result<LeaderEpochCache, LogError> {
    let mut entries = Vec::new();
    for (line_no, line) in entry_lines(path, text)? {
        let mut fields = line.split(' ');
        let (Some(epoch), Some(start_offset), None) = (fields.next(), fields.next(), fields.next())
        else {
            return Err(corrupt(path, line_no, "expected `<epoch> <start offset>`"));
        };
        entries.push(EpochEntry {
            epoch: epoch
                .parse()
                .map_err(|_| corrupt(path, line_no, "epoch is not a number"))?,
            start_offset: start_offset
                .parse()
                .map_err(|_| corrupt(path, line_no, "start offset is not a number"))?,
        });
    }
    LeaderEpochCache::from_entries(entries)
        .map_err(|invalid| corrupt(path, invalid.index + 3, invalid.reason))
}

/// Reads the checkpoint at `path`; `None` when the file does not exist.
pub(crate) fn read(path: &Path) -> Result<Option<LeaderEpochCache>, LogError> {
    match std::fs::read_to_string(path) {
        Ok(text) => decode(path, &text).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(LogError::io("reading checkpoint", path, e)),
    }
}

/// Atomically replaces the checkpoint at `path`.
pub(crate) fn write(path: &Path, entries: &[EpochEntry]) -> Result<(), LogError> {
    write_atomically(path, &encode(entries))
}

/// The cache of a log being opened, and whether the file must be rewritten.
pub(crate) struct LoadedEpochs {
    pub(crate) cache: LeaderEpochCache,
    pub(crate) needs_write: bool,
}

/// Reads (or rebuilds) the cache of the log in `dir`; see the module docs. `rescan_from`:
/// after an unclean shutdown, the recovery point (batches from the segment containing it are
/// re-read).
pub(crate) fn load(
    dir: &Path,
    topic_partition: &TopicPartition,
    segments: &[Segment],
    log_start_offset: i64,
    log_end_offset: i64,
    rescan_from: Option<i64>,
) -> Result<LoadedEpochs, LogError> {
    let path = dir.join(LEADER_EPOCH_CHECKPOINT);
    let (stored, scan_from) = match read(&path) {
        Ok(Some(cache)) => (Some(cache), rescan_from),
        Ok(None) => (None, Some(log_start_offset)),
        Err(error @ LogError::CorruptCheckpoint { .. }) => {
            tracing::warn!(%error, %topic_partition, "rebuilding the leader epoch cache from the log");
            (None, Some(log_start_offset))
        }
        Err(error) => return Err(error),
    };
    let mut cache = stored.clone().unwrap_or_default();
    if let Some(from) = scan_from {
        scan_segments(segments, from, &mut cache)?;
    }
    cache.truncate_from_end(log_end_offset);
    cache.truncate_from_start(log_start_offset);
    let needs_write = match &stored {
        Some(stored) => *stored != cache,
        // A missing file for an empty log reads the same as an empty file: skip the fsyncs.
        None => !cache.entries().is_empty() || log_end_offset > log_start_offset,
    };
    Ok(LoadedEpochs { cache, needs_write })
}

/// Rebuilds the entries from the segment containing `from` to the end out of the batches:
/// entries starting at or after that segment's base are dropped, then each batch whose epoch
/// is newer than the latest entry adds one (Kafka's recovery rule; an older epoch after a
/// newer one is an anomaly the scan does not undo). Entries before the segment are kept: that
/// data was below the recovery point, and the file is written before the recovery point
/// passes an epoch start.
fn scan_segments(
    segments: &[Segment],
    from: i64,
    cache: &mut LeaderEpochCache,
) -> Result<(), LogError> {
    let first = segments
        .partition_point(|s| s.base_offset() <= from)
        .saturating_sub(1);
    if let Some(segment) = segments.get(first) {
        cache.truncate_from_end(segment.base_offset());
    }
    for segment in &segments[first..] {
        let snapshot = segment.read_snapshot(segment.base_offset());
        let (_, end) = scan_batches(
            &snapshot.file,
            &snapshot.path,
            snapshot.start,
            snapshot.end,
            |batch| {
                let header = &batch.header;
                if cache
                    .latest_epoch()
                    .is_none_or(|latest| header.partition_leader_epoch > latest)
                {
                    cache.assign(header.partition_leader_epoch, header.base_offset);
                }
                Ok(())
            },
        )?;
        if end != ScanEnd::Clean {
            // Loading already cut the log after its last valid batch; nothing else to read.
            tracing::warn!(path = %snapshot.path.display(), reason = ?end, "leader epoch scan stopped early");
            break;
        }
    }
    Ok(())
}

impl Log {
    /// OffsetsForLeaderEpoch: `(epoch, end offset)` for `epoch` (see
    /// [`LeaderEpochCache::end_offset_for`]); `None` is Kafka's UNDEFINED `(-1, -1)`.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        let state = self.lock();
        state
            .leader_epochs
            .end_offset_for(epoch, state.log_end_offset())
    }

    /// The newest leader epoch that wrote to the log.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.lock().leader_epochs.latest_epoch()
    }

    /// The leader epoch cache's entries, oldest first.
    pub fn leader_epoch_entries(&self) -> Vec<EpochEntry> {
        self.lock().leader_epochs.entries().to_vec()
    }

    /// Writes `leader-epoch-checkpoint` if the cache changed since the last write. Writers
    /// are serialised and each writes the cache as it is once it holds the file lock, so the
    /// last write is the newest cache. The log's mutex is not held during the fsyncs.
    pub(crate) fn persist_leader_epochs(&self) -> Result<(), LogError> {
        let _writer = self
            .leader_epoch_writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (entries, version) = {
            let state = self.lock();
            if state.leader_epochs_version == state.leader_epochs_persisted {
                return Ok(());
            }
            (
                state.leader_epochs.entries().to_vec(),
                state.leader_epochs_version,
            )
        };
        write(&self.dir.join(LEADER_EPOCH_CHECKPOINT), &entries)?;
        let mut state = self.lock();
        state.leader_epochs_persisted = state.leader_epochs_persisted.max(version);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> LeaderEpochCache {
        LeaderEpochCache::from_entries(vec![
            EpochEntry {
                epoch: 0,
                start_offset: 0,
            },
            EpochEntry {
                epoch: 1,
                start_offset: 250,
            },
            EpochEntry {
                epoch: 3,
                start_offset: 871,
            },
        ])
        .unwrap()
    }

    #[test]
    fn golden_bytes() {
        assert_eq!(encode(sample().entries()), "0\n3\n0 0\n1 250\n3 871\n");
        assert_eq!(encode(&[]), "0\n0\n");
    }

    #[test]
    fn round_trip_through_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LEADER_EPOCH_CHECKPOINT);
        assert_eq!(read(&path).unwrap(), None);
        write(&path, sample().entries()).unwrap();
        assert_eq!(read(&path).unwrap(), Some(sample()));
        assert!(
            !dir.path()
                .join(format!("{LEADER_EPOCH_CHECKPOINT}.tmp"))
                .exists()
        );
    }

    #[test]
    fn corrupt_files_are_errors() {
        let path = Path::new("leader-epoch-checkpoint");
        for (text, line) in [
            ("", 1),
            ("1\n0\n", 1),
            ("0\nx\n", 2),
            ("0\n2\n0 0\n", 4),
            ("0\n1\n0\n", 3),
            ("0\n1\n0 0 0\n", 3),
            ("0\n1\nzero 0\n", 3),
            ("0\n2\n0 0\n1 0\n", 4),
            ("0\n2\n1 0\n0 5\n", 4),
            ("0\n1\n0 0\n1 5\n", 4),
        ] {
            match decode(path, text) {
                Err(LogError::CorruptCheckpoint { line: found, .. }) => {
                    assert_eq!(found, line, "{text:?}")
                }
                other => panic!("{text:?}: expected CorruptCheckpoint, got {other:?}"),
            }
        }
    }
}
