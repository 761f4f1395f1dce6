//! The idempotent producer's sequence state through the `Log` API: duplicates, gaps, fencing,
//! and the state surviving restarts (clean and unclean), rolls and truncation.

use bytes::Bytes;
use tributary_record::{BatchBuilder, Record};

use super::{bytes_mut, open_log, read_all, reopen_unclean, small_config};
use crate::log::{Log, LogError, SequenceError};

const PRODUCER: i64 = 4000;

/// A batch of `count` 100-byte records of `PRODUCER` at `epoch`, starting at `sequence`.
fn producer_batch(epoch: i16, sequence: i32, count: usize) -> Vec<u8> {
    let mut builder = BatchBuilder::new().producer(PRODUCER, epoch, sequence);
    for i in 0..count {
        builder.push(&Record {
            value: Some(Bytes::from(format!("{sequence}+{i}:{:>90}", ""))),
            timestamp: 1000,
            ..Record::default()
        });
    }
    builder.build_vec()
}

fn append(
    log: &Log,
    epoch: i16,
    sequence: i32,
    count: usize,
) -> Result<(i64, i64, bool), LogError> {
    log.append_as_leader(
        bytes_mut(&[&producer_batch(epoch, sequence, count)]),
        0,
        1000,
    )
    .map(|info| (info.base_offset, info.last_offset, info.duplicate))
}

fn sequence_error(result: Result<(i64, i64, bool), LogError>) -> SequenceError {
    match result {
        Err(LogError::Sequence { source, .. }) => source,
        other => panic!("expected a sequence error, got {other:?}"),
    }
}

#[test]
fn a_retry_gets_the_original_offsets_and_appends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path(), small_config());
    assert_eq!(append(&log, 0, 0, 3).unwrap(), (0, 2, false));
    assert_eq!(append(&log, 0, 3, 2).unwrap(), (3, 4, false));
    // Both batches retried (their first answers were lost): the same offsets, nothing new.
    assert_eq!(append(&log, 0, 0, 3).unwrap(), (0, 2, true));
    assert_eq!(append(&log, 0, 3, 2).unwrap(), (3, 4, true));
    assert_eq!(log.log_end_offset(), 5);
    assert_eq!(read_all(&log, 0, 1 << 20).len(), 5);
}

#[test]
fn gaps_reorderings_and_fenced_epochs_append_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path(), small_config());
    assert!(matches!(
        sequence_error(append(&log, 0, 5, 1)),
        SequenceError::UnknownProducer { found: 5, .. }
    ));
    append(&log, 1, 0, 3).unwrap();
    assert!(matches!(
        sequence_error(append(&log, 1, 4, 1)),
        SequenceError::OutOfOrder {
            expected: 3,
            found: 4,
            ..
        }
    ));
    assert!(matches!(
        sequence_error(append(&log, 0, 3, 1)),
        SequenceError::InvalidEpoch {
            current: 1,
            found: 0,
            ..
        }
    ));
    assert_eq!(log.log_end_offset(), 3);
    // A request of two batches whose second has a gap appends neither.
    let request = bytes_mut(&[&producer_batch(1, 3, 1), &producer_batch(1, 9, 1)]);
    assert!(log.append_as_leader(request, 0, 1000).is_err());
    assert_eq!(log.log_end_offset(), 3);
    // Two batches that follow each other go in together.
    let request = bytes_mut(&[&producer_batch(1, 3, 1), &producer_batch(1, 4, 2)]);
    assert_eq!(
        log.append_as_leader(request, 0, 1000).unwrap().last_offset,
        5
    );
}

#[test]
fn the_state_survives_clean_and_unclean_restarts_and_rolls() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config();
    let log = open_log(dir.path(), config.clone());
    // 60 batches of 3 records over a 4 KiB segment size: several rolls, each with a snapshot.
    let mut sequence = 0;
    for _ in 0..60 {
        append(&log, 0, sequence, 3).unwrap();
        sequence += 3;
    }
    assert!(log.segment_count() > 3, "{} segments", log.segment_count());
    let snapshots = |dir: &std::path::Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir.join("t-0"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".snapshot"))
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        snapshots(dir.path()).len(),
        1,
        "only the newest snapshot is kept"
    );
    drop(log);

    // Unclean: from the roll's snapshot plus the active segment's batches.
    let log = reopen_unclean(dir.path(), config.clone());
    assert_eq!(append(&log, 0, sequence - 3, 3).unwrap(), (177, 179, true));
    // Without any snapshot: from the whole log.
    for name in snapshots(dir.path()) {
        std::fs::remove_file(dir.path().join("t-0").join(name)).unwrap();
    }
    drop(log);
    let log = reopen_unclean(dir.path(), config.clone());
    assert_eq!(append(&log, 0, sequence - 6, 3).unwrap(), (174, 176, true));
    assert!(matches!(
        sequence_error(append(&log, 0, sequence + 1, 1)),
        SequenceError::OutOfOrder { .. }
    ));
    // Clean: the close writes a snapshot at the log end, which is all the next start reads.
    log.close().unwrap();
    assert_eq!(snapshots(dir.path()), [format!("{:020}.snapshot", 180)]);
    let log = open_log(dir.path(), config);
    assert_eq!(append(&log, 0, sequence, 1).unwrap(), (180, 180, false));
}

#[test]
fn a_truncated_batch_is_appended_again_not_taken_for_a_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path(), small_config());
    for sequence in (0..18).step_by(3) {
        append(&log, 0, sequence, 3).unwrap();
    }
    // A new leader did not have the last two batches: this replica truncates them away.
    log.truncate_to(12).unwrap();
    assert_eq!(append(&log, 0, 12, 3).unwrap(), (12, 14, false));
    // Truncating every cached batch of the producer forces a rebuild from the log.
    log.truncate_to(3).unwrap();
    assert_eq!(append(&log, 0, 0, 3).unwrap(), (0, 2, true));
    assert_eq!(append(&log, 0, 3, 3).unwrap(), (3, 5, false));
    log.truncate_fully_and_start_at(100).unwrap();
    assert!(matches!(
        sequence_error(append(&log, 0, 6, 3)),
        SequenceError::UnknownProducer { .. }
    ));
}

#[test]
fn followers_learn_the_state_from_what_they_copy() {
    let dir = tempfile::tempdir().unwrap();
    let leader = open_log(&dir.path().join("leader"), small_config());
    let follower = open_log(&dir.path().join("follower"), small_config());
    append(&leader, 0, 0, 2).unwrap();
    append(&leader, 0, 2, 2).unwrap();
    let copied = leader.read(0, 1 << 20, None, true).unwrap().batches;
    follower
        .append_as_follower(bytes::BytesMut::from(&copied[..]))
        .unwrap();
    // The follower, now leader, answers the retry of the second batch as a duplicate.
    assert_eq!(append(&follower, 0, 2, 2).unwrap(), (2, 3, true));
    assert_eq!(append(&follower, 0, 4, 1).unwrap(), (4, 4, false));
}
