//! The leader epoch cache of a `Log`: leader and follower appends, truncation, retention,
//! and loading `leader-epoch-checkpoint` (missing, corrupt, stale after a crash).

use std::path::{Path, PathBuf};

use tributary_record::{BatchIter, set_base_offset, set_partition_leader_epoch};

use super::*;
use crate::log::{EpochEntry, LEADER_EPOCH_CHECKPOINT, LogError};

fn epoch_file(root: &Path) -> PathBuf {
    root.join("t-0").join(LEADER_EPOCH_CHECKPOINT)
}

fn entries(pairs: &[(i32, i64)]) -> Vec<EpochEntry> {
    pairs
        .iter()
        .map(|&(epoch, start_offset)| EpochEntry {
            epoch,
            start_offset,
        })
        .collect()
}

/// A batch of `count` records as a leader at `epoch` would have stored it at `base`.
fn stamped(count: usize, base: i64, epoch: i32) -> Vec<u8> {
    let mut bytes = batch(count, 8, epoch as u8, 0);
    set_base_offset(&mut bytes, base);
    set_partition_leader_epoch(&mut bytes, epoch);
    bytes
}

/// Appends, as leader, one 2-record batch per listed epoch.
fn lead(log: &Log, epochs: &[i32]) {
    for &epoch in epochs {
        log.append_as_leader(bytes_mut(&[&batch(2, 8, 0, 0)]), epoch, 0)
            .unwrap();
    }
}

#[test]
fn leader_appends_record_where_each_epoch_starts() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path(), LogConfig::default());
    assert_eq!(log.latest_epoch(), None);
    assert!(!epoch_file(dir.path()).exists(), "no file for an empty log");
    lead(&log, &[0, 0, 2, 2, 5]);
    assert_eq!(
        log.leader_epoch_entries(),
        entries(&[(0, 0), (2, 4), (5, 8)])
    );
    assert_eq!(log.latest_epoch(), Some(5));
    assert_eq!(
        std::fs::read_to_string(epoch_file(dir.path())).unwrap(),
        "0\n3\n0 0\n2 4\n5 8\n"
    );
    for (epoch, answer) in [
        (0, Some((0, 4))),
        (1, Some((0, 4))),
        (2, Some((2, 8))),
        (4, Some((2, 8))),
        (5, Some((5, 10))),
        (6, None),
    ] {
        assert_eq!(log.end_offset_for_epoch(epoch), answer, "epoch {epoch}");
    }
}

#[test]
fn follower_appends_keep_offsets_and_epochs_and_fill_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path(), LogConfig::default());
    let fetched = bytes_mut(&[&stamped(3, 0, 1), &stamped(2, 3, 1), &stamped(4, 5, 4)]);
    let expected = fetched.clone().freeze();
    let info = log.append_as_follower(fetched).unwrap();
    assert_eq!((info.base_offset, info.last_offset), (0, 8));
    assert_eq!(
        log.read(0, 1 << 20, None, true).unwrap().batches,
        expected,
        "stored unchanged"
    );
    assert_eq!(log.leader_epoch_entries(), entries(&[(1, 0), (4, 5)]));
    log.append_as_follower(bytes_mut(&[&stamped(1, 9, 4), &stamped(1, 10, 7)]))
        .unwrap();
    assert_eq!(
        log.leader_epoch_entries(),
        entries(&[(1, 0), (4, 5), (7, 10)])
    );

    // A gap inside one request: nothing is appended.
    let gap = bytes_mut(&[&stamped(1, 11, 7), &stamped(1, 13, 7)]);
    match log.append_as_follower(gap) {
        Err(LogError::NonContiguousAppend {
            expected: 12,
            found: 13,
            ..
        }) => {}
        other => panic!("expected NonContiguousAppend, got {other:?}"),
    }
    // An overlap with what the log already has.
    assert!(matches!(
        log.append_as_follower(bytes_mut(&[&stamped(1, 10, 8)])),
        Err(LogError::NonContiguousAppend {
            expected: 11,
            found: 10,
            ..
        })
    ));
    assert_eq!(log.log_end_offset(), 11);
    assert_eq!(
        log.latest_epoch(),
        Some(7),
        "a refused append changes no epoch"
    );

    // Survives a clean reopen and a crash.
    drop(log);
    let log = open_log(dir.path(), LogConfig::default());
    assert_eq!(
        log.leader_epoch_entries(),
        entries(&[(1, 0), (4, 5), (7, 10)])
    );
    drop(log);
    let log = reopen_unclean(dir.path(), LogConfig::default());
    assert_eq!(
        log.leader_epoch_entries(),
        entries(&[(1, 0), (4, 5), (7, 10)])
    );
    assert_eq!(log.end_offset_for_epoch(4), Some((4, 10)));
}

#[test]
fn follower_batches_without_a_leader_epoch_add_no_entry() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path(), LogConfig::default());
    log.append_as_follower(bytes_mut(&[&stamped(2, 0, -1), &stamped(2, 2, 3)]))
        .unwrap();
    assert_eq!(log.leader_epoch_entries(), entries(&[(3, 2)]));
}

#[test]
fn truncation_cuts_the_cache_and_rewrites_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path(), small_config());
    lead(&log, &[0, 0, 1, 1, 3, 3]);
    assert_eq!(
        log.leader_epoch_entries(),
        entries(&[(0, 0), (1, 4), (3, 8)])
    );

    log.truncate_to(9).unwrap(); // the batch 8..=9 goes whole
    assert_eq!(log.log_end_offset(), 8);
    assert_eq!(log.leader_epoch_entries(), entries(&[(0, 0), (1, 4)]));
    assert_eq!(
        std::fs::read_to_string(epoch_file(dir.path())).unwrap(),
        "0\n2\n0 0\n1 4\n"
    );
    assert_eq!(log.end_offset_for_epoch(1), Some((1, 8)));

    // A new leader at epoch 4 continues the log.
    lead(&log, &[4]);
    assert_eq!(
        log.leader_epoch_entries(),
        entries(&[(0, 0), (1, 4), (4, 8)])
    );

    // Emptying the log empties the cache.
    log.truncate_to(0).unwrap();
    assert!(log.leader_epoch_entries().is_empty());
    assert_eq!(
        std::fs::read_to_string(epoch_file(dir.path())).unwrap(),
        "0\n0\n"
    );
}

#[test]
fn retention_moves_the_first_epoch_start_to_the_log_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 200,
        retention_bytes: 1,
        file_delete_delay_ms: 0,
        ..LogConfig::default()
    };
    let log = open_log(dir.path(), config);
    lead(&log, &[0, 0, 0, 2, 2, 2]);
    assert!(log.segment_count() > 2, "{:?}", log.segment_base_offsets());
    assert_eq!(log.leader_epoch_entries(), entries(&[(0, 0), (2, 6)]));
    log.apply_retention(0, log.log_end_offset()).unwrap();
    let log_start = log.log_start_offset();
    assert!(
        log_start > 6,
        "retention kept only the last segment: {log_start}"
    );
    assert_eq!(log.leader_epoch_entries(), entries(&[(2, log_start)]));
    drop(log);
    let log = open_log(
        dir.path(),
        LogConfig {
            segment_bytes: 200,
            ..LogConfig::default()
        },
    );
    assert_eq!(log.leader_epoch_entries(), entries(&[(2, log_start)]));
}

#[test]
fn a_missing_or_corrupt_file_is_rebuilt_from_the_batches() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 300,
        ..small_config()
    };
    let log = open_log(dir.path(), config.clone());
    lead(&log, &[0, 1, 1, 1, 1, 1, 1, 1, 1, 6, 6]);
    assert!(log.segment_count() > 1, "several segments to scan");
    let expected = entries(&[(0, 0), (1, 2), (6, 18)]);
    assert_eq!(log.leader_epoch_entries(), expected);
    drop(log);

    std::fs::remove_file(epoch_file(dir.path())).unwrap();
    let log = open_log(dir.path(), config.clone());
    assert_eq!(
        log.leader_epoch_entries(),
        expected,
        "rebuilt after deletion"
    );
    assert_eq!(
        std::fs::read_to_string(epoch_file(dir.path())).unwrap(),
        "0\n3\n0 0\n1 2\n6 18\n",
        "and written back"
    );
    drop(log);

    for garbage in ["0\n3\n0 0\n1 2\n", "0\n2\n5 0\n1 2\n", "\u{0}\u{0}"] {
        std::fs::write(epoch_file(dir.path()), garbage).unwrap();
        let log = open_log(dir.path(), config.clone());
        assert_eq!(
            log.leader_epoch_entries(),
            expected,
            "rebuilt from {garbage:?}"
        );
        assert_eq!(
            std::fs::read_to_string(epoch_file(dir.path())).unwrap(),
            "0\n3\n0 0\n1 2\n6 18\n"
        );
    }
}

#[test]
fn a_stale_file_is_repaired_by_unclean_recovery_and_trimmed_to_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path(), LogConfig::default());
    lead(&log, &[0, 0, 3, 3]);
    drop(log);
    // The file lost the last entry (crash before its write), and says nothing of a truncation.
    std::fs::write(epoch_file(dir.path()), "0\n2\n0 0\n9 100\n").unwrap();
    let log = reopen_unclean(dir.path(), LogConfig::default());
    assert_eq!(log.leader_epoch_entries(), entries(&[(0, 0), (3, 4)]));
    drop(log);
    // A clean open trusts the file but drops entries beyond the log end.
    std::fs::write(epoch_file(dir.path()), "0\n3\n0 0\n3 4\n9 8\n").unwrap();
    let log = open_log(dir.path(), LogConfig::default());
    assert_eq!(log.leader_epoch_entries(), entries(&[(0, 0), (3, 4)]));
    assert_eq!(
        std::fs::read_to_string(epoch_file(dir.path())).unwrap(),
        "0\n2\n0 0\n3 4\n"
    );
}

#[test]
fn a_torn_tail_takes_its_epoch_entry_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path(), LogConfig::default());
    lead(&log, &[0, 0, 2]);
    drop(log);
    let segment = dir.path().join(format!("t-0/{:020}.log", 0));
    let bytes = std::fs::read(&segment).unwrap();
    let last_batch_len = BatchIter::new(&bytes).last().unwrap().unwrap().1.len();
    std::fs::write(&segment, &bytes[..bytes.len() - last_batch_len / 2]).unwrap();
    let log = reopen_unclean(dir.path(), LogConfig::default());
    assert_eq!(log.log_end_offset(), 4);
    assert_eq!(log.leader_epoch_entries(), entries(&[(0, 0)]));
    assert_eq!(log.end_offset_for_epoch(0), Some((0, 4)));
}
