//! Producer state snapshots: `<20-digit offset>.snapshot` in the partition directory, the
//! idempotent producers' state ([`ProducerStates`]) as of that offset, so a restart re-reads
//! only the batches after it instead of the whole log.
//!
//! # File format (version 0), UTF-8 text, `\n` line ends
//!
//! ```text
//! 0                          version
//! 2                          number of batch lines
//! 7 2 0 4 100 104            <producer id> <epoch> <first seq> <last seq> <first offset> <last offset>
//! 7 2 5 9 105 109            one line per cached batch, by producer id, oldest batch first
//! ```
//!
//! The name's offset is the log end offset when it was written: the state covers every batch
//! below it. Written at each segment roll (the new segment's base offset) and at a clean
//! shutdown (the log end), through the same write-fsync-rename as the checkpoint files; only
//! the newest file is kept.
//!
//! # After a crash
//!
//! A snapshot is a cache of what the log holds. On load the newest one at or below the log
//! end is used and the batches from its offset on are re-read; one above the log end (its
//! batches were lost with the page cache) is deleted. A corrupt file is deleted with a
//! warning and the state is rebuilt from the log start. A truncation below a snapshot's
//! offset deletes it.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use super::LogError;
use super::checkpoint::{corrupt, encode_lines, entry_lines, write_atomically};
use super::producer_state::{BatchSequence, ProducerEntry, ProducerStates};
use super::segment::file_stem;

const SUFFIX: &str = ".snapshot";

/// The snapshot file of `offset` in `dir`.
pub(crate) fn path(dir: &Path, offset: i64) -> PathBuf {
    dir.join(format!("{}{SUFFIX}", file_stem(offset)))
}

/// The snapshot files in `dir`, by offset.
pub(crate) fn list(dir: &Path) -> Result<Vec<(i64, PathBuf)>, LogError> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| LogError::io("listing snapshots in", dir, e))?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| LogError::io("listing snapshots in", dir, e))?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(SUFFIX)) else {
            continue;
        };
        if stem.len() == 20
            && let Ok(offset) = stem.parse::<i64>()
        {
            found.push((offset, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

/// Renders the file text of `states`.
pub(crate) fn encode(states: &ProducerStates) -> String {
    let mut entries: Vec<(i64, &ProducerEntry)> = states.entries().collect();
    entries.sort_by_key(|(id, _)| *id);
    let lines: Vec<String> = entries
        .into_iter()
        .flat_map(|(id, entry)| {
            entry.batches.iter().map(move |b| {
                format!(
                    "{id} {} {} {} {} {}",
                    entry.epoch, b.first_sequence, b.last_sequence, b.first_offset, b.last_offset
                )
            })
        })
        .collect();
    encode_lines(lines.into_iter())
}

/// Parses file text; `path` is only used in errors.
pub(crate) fn decode(path: &Path, text: &str) -> Result<ProducerStates, LogError> {
    let mut states = ProducerStates::default();
    let mut current: Option<(i64, ProducerEntry)> = None;
    for (line_no, line) in entry_lines(path, text)? {
        let fields: Vec<&str> = line.split(' ').collect();
        let [
            id,
            epoch,
            first_sequence,
            last_sequence,
            first_offset,
            last_offset,
        ] = fields[..]
        else {
            return Err(corrupt(path, line_no, "expected 6 fields"));
        };
        let number = |field: &str| -> Result<i64, LogError> {
            field
                .parse()
                .map_err(|_| corrupt(path, line_no, "a field is not a number"))
        };
        let (id, epoch) = (number(id)?, number(epoch)?);
        let batch = BatchSequence {
            first_sequence: number(first_sequence)? as i32,
            last_sequence: number(last_sequence)? as i32,
            first_offset: number(first_offset)?,
            last_offset: number(last_offset)?,
        };
        let epoch =
            i16::try_from(epoch).map_err(|_| corrupt(path, line_no, "epoch out of range"))?;
        if batch.first_offset > batch.last_offset || id < 0 {
            return Err(corrupt(
                path,
                line_no,
                "not a batch of an idempotent producer",
            ));
        }
        match &mut current {
            Some((current_id, entry)) if *current_id == id => {
                if entry.epoch != epoch
                    || entry
                        .batches
                        .back()
                        .is_some_and(|b| b.last_offset >= batch.first_offset)
                {
                    return Err(corrupt(path, line_no, "batches out of order"));
                }
                entry.batches.push_back(batch);
            }
            _ => {
                if let Some((done_id, entry)) = current.take() {
                    states.restore(done_id, entry);
                }
                current = Some((
                    id,
                    ProducerEntry {
                        epoch,
                        batches: VecDeque::from([batch]),
                    },
                ));
            }
        }
    }
    if let Some((id, entry)) = current {
        states.restore(id, entry);
    }
    Ok(states)
}

/// Writes the snapshot of `offset` and deletes every other snapshot in `dir`.
pub(crate) fn write(dir: &Path, offset: i64, states: &ProducerStates) -> Result<(), LogError> {
    let target = path(dir, offset);
    write_atomically(&target, &encode(states))?;
    for (other, other_path) in list(dir)? {
        if other != offset {
            remove(&other_path)?;
        }
    }
    Ok(())
}

/// Deletes the snapshots above `offset` (a truncation or a crash lost their batches).
pub(crate) fn delete_above(dir: &Path, offset: i64) -> Result<(), LogError> {
    for (other, other_path) in list(dir)? {
        if other > offset {
            remove(&other_path)?;
        }
    }
    Ok(())
}

/// The newest readable snapshot at or below `max_offset`: its offset and state. Snapshots
/// above `max_offset` and corrupt ones are deleted.
pub(crate) fn load_latest(
    dir: &Path,
    max_offset: i64,
) -> Result<Option<(i64, ProducerStates)>, LogError> {
    delete_above(dir, max_offset)?;
    for (offset, file) in list(dir)?.into_iter().rev() {
        let text =
            std::fs::read_to_string(&file).map_err(|e| LogError::io("reading snapshot", &file, e));
        match text.and_then(|text| decode(&file, &text)) {
            Ok(states) => return Ok(Some((offset, states))),
            Err(error) => {
                tracing::warn!(%error, "deleting an unreadable producer state snapshot; the state is rebuilt from the log");
                remove(&file)?;
            }
        }
    }
    Ok(None)
}

fn remove(path: &Path) -> Result<(), LogError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LogError::io("deleting snapshot", path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ProducerStates {
        let mut states = ProducerStates::default();
        let batch = |first_sequence, last_sequence, first_offset, last_offset| BatchSequence {
            first_sequence,
            last_sequence,
            first_offset,
            last_offset,
        };
        states.record(7, 2, batch(0, 4, 100, 104));
        states.record(7, 2, batch(5, 9, 105, 109));
        states.record(3, 0, batch(i32::MAX, 1, 110, 112));
        states
    }

    #[test]
    fn golden_bytes() {
        assert_eq!(
            encode(&sample()),
            "0\n3\n3 0 2147483647 1 110 112\n7 2 0 4 100 104\n7 2 5 9 105 109\n"
        );
    }

    #[test]
    fn newest_readable_snapshot_wins_and_stale_ones_go() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), 120, &sample()).unwrap();
        assert_eq!(list(dir.path()).unwrap().len(), 1);
        // A second write replaces the first.
        write(dir.path(), 200, &ProducerStates::default()).unwrap();
        let names: Vec<i64> = list(dir.path())
            .unwrap()
            .into_iter()
            .map(|(o, _)| o)
            .collect();
        assert_eq!(names, [200]);
        std::fs::write(path(dir.path(), 120), encode(&sample())).unwrap();
        // 200 is above a log end of 150 (lost in a crash): deleted; 120 is used.
        let (offset, states) = load_latest(dir.path(), 150).unwrap().unwrap();
        assert_eq!((offset, states), (120, sample()));
        assert!(!path(dir.path(), 200).exists());
        // A corrupt snapshot is deleted and the caller rebuilds from the log.
        std::fs::write(path(dir.path(), 120), "0\n1\n7 2 0 4\n").unwrap();
        assert_eq!(load_latest(dir.path(), 150).unwrap(), None);
        assert!(list(dir.path()).unwrap().is_empty());
    }

    #[test]
    fn corrupt_files_are_refused() {
        let p = Path::new("x.snapshot");
        for text in [
            "1\n0\n",
            "0\n1\n7 2 0 4 104 100\n",
            "0\n1\n-1 0 0 0 1 1\n",
            "0\n2\n7 2 5 9 105 109\n7 2 0 4 100 104\n",
            "0\n1\n7 99999 0 4 100 104\n",
            "0\n1\n7 2 0 x 100 104\n",
        ] {
            assert!(decode(p, text).is_err(), "{text:?}");
        }
        assert_eq!(decode(p, &encode(&sample())).unwrap(), sample());
    }
}
