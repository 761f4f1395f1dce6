//! Loading a log after clean and unclean shutdowns: torn tails, corruption, missing or broken
//! indexes.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use super::*;
use crate::log::LogConfig;

fn segment_file(root: &Path, base: i64, extension: &str) -> PathBuf {
    root.join(format!("t-0/{base:020}.{extension}"))
}

/// A log of `batches` batches of 3 records (values filled with the batch number), closed
/// without a clean shutdown (dropped).
fn written_log(root: &Path, config: &LogConfig, batches: u8) -> Vec<i64> {
    let log = open_log(root, config.clone());
    for i in 0..batches {
        log.append_as_leader(bytes_mut(&[&batch(3, 40, i, i64::from(i))]), 0, 0)
            .unwrap();
    }
    log.segment_base_offsets()
}

fn set_len(path: &Path, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

fn flip_byte(path: &Path, at: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at as usize] ^= 0x55;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn torn_tail_is_truncated_and_the_log_accepts_appends() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig::default();
    written_log(dir.path(), &config, 5);
    let path = segment_file(dir.path(), 0, "log");
    let len = std::fs::metadata(&path).unwrap().len();
    let batch_size = len / 5;
    set_len(&path, len - batch_size / 2); // the last batch is half written

    let log = reopen_unclean(dir.path(), config);
    assert_eq!(log.log_end_offset(), 12);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 4 * batch_size);
    assert_eq!(read_all(&log, 0, 1 << 20).len(), 12);
    assert_eq!(
        log.append_as_leader(bytes_mut(&[&batch(1, 1, 0, 0)]), 0, 0)
            .unwrap()
            .base_offset,
        12
    );
    assert_eq!(read_all(&log, 0, 1 << 20).len(), 13);
}

#[test]
fn corrupt_crc_in_the_middle_drops_everything_from_there() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 1_000,
        ..small_config()
    };
    let bases = written_log(dir.path(), &config, 20);
    assert!(bases.len() >= 4, "{bases:?}");
    // Corrupt the second batch of the second segment (a byte in its records).
    let path = segment_file(dir.path(), bases[1], "log");
    let first_size = std::fs::metadata(&path).unwrap().len() / ((bases[2] - bases[1]) / 3) as u64;
    flip_byte(&path, first_size + 100);

    // A clean start trusts the sealed segment and does not notice.
    let clean = Log::open(&dir.path().join("t-0"), config.clone(), 0, 0, true, 0).unwrap();
    assert_eq!(clean.segment_count(), bases.len());
    drop(clean);

    // An unclean start whose recovery point is past the segment does not re-check it either.
    let past = Log::open(
        &dir.path().join("t-0"),
        config.clone(),
        bases[2],
        0,
        false,
        0,
    )
    .unwrap();
    assert_eq!(past.segment_count(), bases.len());
    drop(past);

    let log = reopen_unclean(dir.path(), config);
    assert_eq!(
        log.log_end_offset(),
        bases[1] + 3,
        "the corrupt batch and all after it are gone"
    );
    assert_eq!(log.segment_base_offsets(), bases[..2]);
    for later in &bases[2..] {
        assert!(!segment_file(dir.path(), *later, "log").exists());
        assert!(!segment_file(dir.path(), *later, "index").exists());
    }
    let all = read_all(&log, 0, 1 << 20);
    assert_eq!(all.len() as i64, bases[1] + 3);
    assert_eq!(
        log.append_as_leader(bytes_mut(&[&batch(1, 1, 0, 0)]), 0, 0)
            .unwrap()
            .base_offset,
        bases[1] + 3
    );
}

#[test]
fn missing_or_broken_indexes_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 2_000,
        index_interval_bytes: 100,
        ..LogConfig::default()
    };
    let bases = written_log(dir.path(), &config, 30);
    assert!(bases.len() >= 3);
    let log = Log::open(&dir.path().join("t-0"), config.clone(), 0, 0, true, 0).unwrap();
    log.close().unwrap();
    let expected = read_all(&log, 0, 1 << 20);
    drop(log);
    let index = segment_file(dir.path(), bases[0], "index");
    let index_len = std::fs::metadata(&index).unwrap().len();
    assert!(index_len > 0, "entries were written");
    assert_eq!(index_len % 8, 0, "trimmed to whole entries");

    std::fs::remove_file(&index).unwrap();
    std::fs::write(segment_file(dir.path(), bases[1], "index"), [0xFF; 13]).unwrap(); // not whole entries
    std::fs::write(segment_file(dir.path(), bases[2], "timeindex"), [0u8; 24]).unwrap(); // unsorted
    let log = Log::open(&dir.path().join("t-0"), config, 0, 0, true, 0).unwrap();
    assert_eq!(read_all(&log, 0, 1 << 20), expected);
    for offset in [0, 5, bases[1], bases[1] + 4, bases[2] + 1] {
        let first = records(&log.read(offset, 1, None, true).unwrap().batches);
        assert!(
            first.iter().any(|(o, _)| *o == offset),
            "lookup of {offset}"
        );
    }
    assert_eq!(
        std::fs::metadata(&index).unwrap().len(),
        index_len,
        "rebuilt to the same entries"
    );
}

#[test]
fn clean_reopen_keeps_offsets_and_continues_the_active_segment() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config();
    written_log(dir.path(), &config, 12);
    let log = Log::open(&dir.path().join("t-0"), config.clone(), 0, 0, true, 0).unwrap();
    let (end, segments) = (log.log_end_offset(), log.segment_count());
    log.close().unwrap();
    assert!(
        log.append_as_leader(bytes_mut(&[&batch(1, 1, 0, 0)]), 0, 0)
            .is_err(),
        "closed"
    );
    drop(log);

    let log = Log::open(&dir.path().join("t-0"), config.clone(), end, 0, true, 0).unwrap();
    assert_eq!(
        (
            log.log_end_offset(),
            log.segment_count(),
            log.recovery_point()
        ),
        (end, segments, end)
    );
    log.append_as_leader(bytes_mut(&[&batch(2, 1, 0, 0)]), 0, 0)
        .unwrap();
    assert_eq!(
        log.segment_count(),
        segments,
        "the reopened active segment takes appends again"
    );
    assert_eq!(read_all(&log, 0, 1 << 20).len() as i64, end + 2);

    // A checkpointed log start above the first segment's base is kept.
    drop(log);
    let log = Log::open(&dir.path().join("t-0"), config, 0, 7, false, 0).unwrap();
    assert_eq!(log.log_start_offset(), 7);
    assert_eq!(read_all(&log, 7, 1 << 20).first().unwrap().0, 7);
}

#[test]
fn leftover_files_are_removed_at_load() {
    let dir = tempfile::tempdir().unwrap();
    written_log(dir.path(), &LogConfig::default(), 2);
    for name in [
        "00000000000000000000.log.deleted",
        "x.swap",
        "00000000000000000999.index",
        "00000000000000000000.log.tmp",
        "leader-epoch-checkpoint.tmp",
    ] {
        std::fs::write(dir.path().join("t-0").join(name), b"junk").unwrap();
    }
    let log = reopen_unclean(dir.path(), LogConfig::default());
    assert_eq!(log.log_end_offset(), 6);
    let mut names: Vec<String> = std::fs::read_dir(dir.path().join("t-0"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "00000000000000000000.index",
            "00000000000000000000.log",
            "00000000000000000000.timeindex",
            "leader-epoch-checkpoint",
            // An unclean load marks the log until the controller has checked it.
            "needs-verification"
        ]
    );
    assert!(log.needs_verification());
}

/// Regression (found by the cut-at-any-byte property test): a sealed segment cut exactly at a
/// batch boundary used to be accepted with its end taken from the next segment's base offset,
/// leaving a hole in the offsets. Now everything from the hole on is dropped.
#[test]
fn a_sealed_segment_cut_at_a_batch_boundary_ends_the_log_there() {
    for clean in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_bytes: 1_000,
            ..small_config()
        };
        let bases = written_log(dir.path(), &config, 20);
        assert!(bases.len() >= 3, "{bases:?}");
        // Drop the last batch of the first segment: the cut lands on a batch boundary.
        let path = segment_file(dir.path(), bases[0], "log");
        let len = std::fs::metadata(&path).unwrap().len();
        let batches_in_first = (bases[1] - bases[0]) / 3;
        set_len(&path, len - len / batches_in_first as u64);

        let log = Log::open(&dir.path().join("t-0"), config.clone(), 0, 0, clean, 0).unwrap();
        let end = bases[1] - 3;
        assert_eq!(log.log_end_offset(), end, "clean={clean}");
        assert_eq!(
            log.segment_count(),
            1,
            "later segments are deleted (clean={clean})"
        );
        let offsets: Vec<i64> = read_all(&log, 0, 1 << 20).iter().map(|(o, _)| *o).collect();
        assert_eq!(
            offsets,
            (0..end).collect::<Vec<_>>(),
            "no hole (clean={clean})"
        );
    }
}
