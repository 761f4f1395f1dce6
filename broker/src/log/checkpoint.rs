//! Offset checkpoint files: `recovery-point-offset-checkpoint`, `log-start-offset-checkpoint`,
//! `replication-offset-checkpoint` (high watermarks) and `cleaner-offset-checkpoint` (each
//! compacted log's first dirty offset) in each log directory, and the atomic write shared
//! with `leader-epoch-checkpoint`.
//!
//! # File format (Kafka's `OffsetCheckpointFile`, version 0), UTF-8 text, `\n` line ends
//!
//! ```text
//! 0                      version
//! 2                      number of entries
//! orders 0 1200          <topic> <partition> <offset>, one line per entry
//! orders 1 1175
//! ```
//!
//! Topic names cannot contain spaces, so the line splits unambiguously. Entries are written in
//! `TopicPartition` order (Kafka does not sort; readers must not depend on order).
//!
//! # Crash safety
//!
//! Written to `<name>.tmp`, fsync'd, renamed over `<name>`, then the directory is fsync'd. A
//! crash leaves either the old or the new file; a leftover `.tmp` is ignored and overwritten.
//! A missing file reads as empty (every partition then recovers from offset 0 / keeps the
//! log start of its first segment). A corrupt file is an error: the broker refuses to start
//! rather than silently skip recovery.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::Path;

use super::{LogError, TopicPartition};

/// Name of the per-directory recovery point checkpoint.
pub const RECOVERY_POINT_CHECKPOINT: &str = "recovery-point-offset-checkpoint";
/// Name of the per-directory log start offset checkpoint.
pub const LOG_START_OFFSET_CHECKPOINT: &str = "log-start-offset-checkpoint";
/// Name of the per-directory high watermark checkpoint (Kafka's name).
pub const REPLICATION_OFFSET_CHECKPOINT: &str = "replication-offset-checkpoint";
/// Name of the per-directory cleaner checkpoint (Kafka's name): for each log whose
/// `cleanup.policy` includes `compact`, its first dirty offset. A missing entry (or file)
/// means the whole log is dirty: the next pass cleans it from the log start, which only
/// costs work (cleaning is idempotent).
pub const CLEANER_OFFSET_CHECKPOINT: &str = "cleaner-offset-checkpoint";

const VERSION: u32 = 0;

/// Renders the checkpoint text for `entries`.
pub fn encode(entries: &BTreeMap<TopicPartition, i64>) -> String {
    encode_lines(
        entries
            .iter()
            .map(|(tp, offset)| format!("{} {} {offset}", tp.topic, tp.partition)),
    )
}

/// Parses checkpoint text; `path` is only used in errors.
pub fn decode(path: &Path, text: &str) -> Result<BTreeMap<TopicPartition, i64>, LogError> {
    let mut entries = BTreeMap::new();
    for (line_no, line) in entry_lines(path, text)? {
        let mut fields = line.split(' ');
        let (Some(topic), Some(partition), Some(offset), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(corrupt(
                path,
                line_no,
                "expected `<topic> <partition> <offset>`",
            ));
        };
        let partition = partition
            .parse()
            .map_err(|_| corrupt(path, line_no, "partition is not a number"))?;
        let offset = offset
            .parse()
            .map_err(|_| corrupt(path, line_no, "offset is not a number"))?;
        if topic.is_empty() {
            return Err(corrupt(path, line_no, "empty topic"));
        }
        entries.insert(TopicPartition::new(topic, partition), offset);
    }
    Ok(entries)
}

/// The text of a version-0 checkpoint (Kafka's `CheckpointFile` framing: the version, the
/// number of entries, then one entry per line) whose entries are `lines`.
pub(crate) fn encode_lines(lines: impl ExactSizeIterator<Item = String>) -> String {
    let mut text = format!("{VERSION}\n{}\n", lines.len());
    for line in lines {
        text.push_str(&line);
        text.push('\n');
    }
    text
}

/// The entry lines of a version-0 checkpoint with their 1-based line numbers, after checking
/// the version, the count, and that nothing but blank lines follows the entries.
pub(crate) fn entry_lines<'a>(
    path: &Path,
    text: &'a str,
) -> Result<Vec<(usize, &'a str)>, LogError> {
    let mut lines = text.lines();
    match lines.next() {
        Some(version) if version.trim() == "0" => {}
        Some(_) => return Err(corrupt(path, 1, "unsupported version (expected 0)")),
        None => return Err(corrupt(path, 1, "empty file")),
    }
    let count: usize = lines
        .next()
        .ok_or_else(|| corrupt(path, 2, "missing entry count"))?
        .trim()
        .parse()
        .map_err(|_| corrupt(path, 2, "entry count is not a number"))?;
    let mut entries = Vec::with_capacity(count.min(4096));
    for index in 0..count {
        let line_no = index + 3;
        let line = lines
            .next()
            .ok_or_else(|| corrupt(path, line_no, "fewer entries than the count says"))?;
        entries.push((line_no, line));
    }
    if lines.any(|line| !line.trim().is_empty()) {
        return Err(corrupt(path, count + 3, "more entries than the count says"));
    }
    Ok(entries)
}

/// A [`LogError::CorruptCheckpoint`] for `path` at `line`.
pub(crate) fn corrupt(path: &Path, line: usize, reason: &'static str) -> LogError {
    LogError::CorruptCheckpoint {
        path: path.to_path_buf(),
        line,
        reason,
    }
}

/// Reads the checkpoint at `path`; a missing file is empty.
pub fn read(path: &Path) -> Result<BTreeMap<TopicPartition, i64>, LogError> {
    match std::fs::read_to_string(path) {
        Ok(text) => decode(path, &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(LogError::io("reading checkpoint", path, e)),
    }
}

/// Atomically replaces the checkpoint at `path` (tmp file, fsync, rename, fsync directory).
pub fn write(path: &Path, entries: &BTreeMap<TopicPartition, i64>) -> Result<(), LogError> {
    write_atomically(path, &encode(entries))
}

/// Replaces the file at `path` with `text` so that a crash leaves the old or the new
/// content: writes `<path>.tmp`, fsyncs it, renames it over `path`, fsyncs the directory.
pub(crate) fn write_atomically(path: &Path, text: &str) -> Result<(), LogError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let mut file = File::create(&tmp).map_err(|e| LogError::io("creating checkpoint", &tmp, e))?;
    file.write_all(text.as_bytes())
        .map_err(|e| LogError::io("writing checkpoint", &tmp, e))?;
    file.sync_all()
        .map_err(|e| LogError::io("fsync of checkpoint", &tmp, e))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(|e| LogError::io("renaming checkpoint onto", path, e))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// fsyncs a directory so renames and creations in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| LogError::io("fsync of directory", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BTreeMap<TopicPartition, i64> {
        BTreeMap::from([
            (TopicPartition::new("orders", 1), 1175),
            (TopicPartition::new("orders", 0), 1200),
            (TopicPartition::new("a-b-c", 12), 0),
        ])
    }

    #[test]
    fn golden_bytes() {
        assert_eq!(
            encode(&sample()),
            "0\n3\na-b-c 12 0\norders 0 1200\norders 1 1175\n"
        );
        assert_eq!(encode(&BTreeMap::new()), "0\n0\n");
    }

    #[test]
    fn golden_cleaner_checkpoint_file() {
        // The cleaner checkpoint is the same version-0 format, one line per compacted log.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CLEANER_OFFSET_CHECKPOINT);
        let entries = BTreeMap::from([
            (TopicPartition::new("compacted", 0), 4210),
            (TopicPartition::new("compacted", 1), 0),
        ]);
        write(&path, &entries).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "0\n2\ncompacted 0 4210\ncompacted 1 0\n"
        );
        assert_eq!(read(&path).unwrap(), entries);
    }

    #[test]
    fn round_trip_through_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(RECOVERY_POINT_CHECKPOINT);
        assert!(
            read(&path).unwrap().is_empty(),
            "missing file reads as empty"
        );
        write(&path, &sample()).unwrap();
        assert_eq!(read(&path).unwrap(), sample());
        assert!(
            !dir.path()
                .join(format!("{RECOVERY_POINT_CHECKPOINT}.tmp"))
                .exists()
        );
        write(&path, &BTreeMap::new()).unwrap();
        assert!(read(&path).unwrap().is_empty());
    }

    #[test]
    fn corrupt_files_are_errors() {
        let path = Path::new("cp");
        for (text, line) in [
            ("", 1),
            ("1\n0\n", 1),
            ("0\nx\n", 2),
            ("0\n2\norders 0 5\n", 4),
            ("0\n1\norders 0\n", 3),
            ("0\n1\norders zero 5\n", 3),
            ("0\n1\norders 0 5\nextra 1 2\n", 4),
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
