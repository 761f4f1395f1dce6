//! Append, roll, truncate, flush and retention of one `Log`.

use tributary_record::{BatchHeader, BatchIter, RecordError, TimestampType, validate_batch};

use super::*;
use crate::log::{LogConfig, LogError};

#[test]
fn append_assigns_offsets_and_stamps_the_leader_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path(), LogConfig::default());
    let info = log
        .append_as_leader(
            bytes_mut(&[&batch(3, 10, 1, 100), &batch(2, 10, 2, 100)]),
            7,
            1_000,
        )
        .unwrap();
    assert_eq!(
        (
            info.base_offset,
            info.last_offset,
            info.records,
            info.log_append_time
        ),
        (0, 4, 5, -1)
    );
    assert_eq!(info.log_start_offset, 0);
    let info = log
        .append_as_leader(bytes_mut(&[&batch(1, 10, 3, 100)]), 8, 1_000)
        .unwrap();
    assert_eq!((info.base_offset, info.last_offset), (5, 5));
    assert_eq!(log.log_end_offset(), 6);

    let result = log.read(0, 1 << 20, None, true).unwrap();
    assert_eq!((result.log_start_offset, result.log_end_offset), (0, 6));
    let headers: Vec<BatchHeader> = BatchIter::new(&result.batches)
        .map(|item| validate_batch(item.unwrap().1).unwrap())
        .collect();
    let stamped: Vec<(i64, i32)> = headers
        .iter()
        .map(|h| (h.base_offset, h.partition_leader_epoch))
        .collect();
    assert_eq!(stamped, [(0, 7), (3, 7), (5, 8)]);
    let offsets: Vec<i64> = records(&result.batches).iter().map(|r| r.0).collect();
    assert_eq!(offsets, [0, 1, 2, 3, 4, 5]);
    assert_eq!(
        info.bytes as u64 + headers[0].total_size() as u64 + headers[1].total_size() as u64,
        log.size_in_bytes()
    );
}

#[test]
fn append_rejects_bad_input_and_appends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        max_message_bytes: 2_000,
        ..LogConfig::default()
    };
    let log = open_log(dir.path(), config);
    log.append_as_leader(bytes_mut(&[&batch(2, 10, 0, 0)]), 0, 0)
        .unwrap();
    let (size, end) = (log.size_in_bytes(), log.log_end_offset());

    let good = batch(3, 10, 1, 0);
    let mut corrupt = batch(3, 10, 2, 0);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xFF;
    let mut bad_magic = good.clone();
    bad_magic[16] = 1;
    let empty_batch = batch(0, 0, 0, 0);
    type Case<'a> = (&'a str, Vec<&'a [u8]>, Box<dyn Fn(&LogError) -> bool>);
    let cases: Vec<Case<'_>> = vec![
        (
            "garbage",
            vec![b"definitely not a record batch, just some bytes here..................."],
            Box::new(|e| matches!(e, LogError::InvalidBatch { batch_index: 0, .. })),
        ),
        (
            "empty request",
            vec![],
            Box::new(|e| {
                matches!(
                    e,
                    LogError::InvalidBatch {
                        batch_index: 0,
                        source: RecordError::Truncated { .. },
                        ..
                    }
                )
            }),
        ),
        (
            "corrupt CRC in the second batch",
            vec![&good, &corrupt],
            Box::new(|e| {
                matches!(
                    e,
                    LogError::InvalidBatch {
                        batch_index: 1,
                        source: RecordError::CrcMismatch { .. },
                        ..
                    }
                )
            }),
        ),
        (
            "bad magic",
            vec![&bad_magic],
            Box::new(|e| {
                matches!(
                    e,
                    LogError::InvalidBatch {
                        source: RecordError::UnsupportedMagic { magic: 1 },
                        ..
                    }
                )
            }),
        ),
        (
            "trailing bytes",
            vec![&good, b"xyz"],
            Box::new(|e| matches!(e, LogError::InvalidBatch { batch_index: 1, .. })),
        ),
        (
            "truncated batch",
            vec![&good, &good[..good.len() - 1]],
            Box::new(|e| {
                matches!(
                    e,
                    LogError::InvalidBatch {
                        batch_index: 1,
                        source: RecordError::LengthMismatch { .. },
                        ..
                    }
                )
            }),
        ),
        (
            "batch without records",
            vec![&empty_batch],
            Box::new(|e| {
                matches!(
                    e,
                    LogError::InvalidBatch {
                        source: RecordError::InvalidHeader { .. },
                        ..
                    }
                )
            }),
        ),
    ];
    for (name, parts, expected) in cases {
        let error = log
            .append_as_leader(bytes_mut(&parts), 0, 0)
            .expect_err(name);
        assert!(expected(&error), "{name}: unexpected error {error:?}");
        assert_eq!(
            (log.size_in_bytes(), log.log_end_offset()),
            (size, end),
            "{name}: nothing appended"
        );
    }
    let oversized = batch(1, 3_000, 0, 0);
    match log.append_as_leader(bytes_mut(&[&good, &oversized]), 0, 0) {
        Err(LogError::MessageTooLarge {
            size, max: 2_000, ..
        }) => assert_eq!(size, oversized.len()),
        other => panic!("expected MessageTooLarge, got {other:?}"),
    }
    assert_eq!((log.size_in_bytes(), log.log_end_offset()), (size, end));
    // The log still works.
    assert_eq!(
        log.append_as_leader(bytes_mut(&[&good]), 0, 0)
            .unwrap()
            .base_offset,
        2
    );
}

#[test]
fn log_append_time_stamps_the_broker_clock() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        message_timestamp_type: TimestampType::LogAppendTime,
        ..LogConfig::default()
    };
    let log = open_log(dir.path(), config);
    let info = log
        .append_as_leader(
            bytes_mut(&[&batch(2, 5, 0, 10), &batch(1, 5, 0, 20)]),
            0,
            5_555,
        )
        .unwrap();
    assert_eq!(info.log_append_time, 5_555);
    let result = log.read(0, 1 << 20, None, true).unwrap();
    for item in BatchIter::new(&result.batches) {
        let header = validate_batch(item.unwrap().1).expect("CRC recomputed");
        assert_eq!(header.max_timestamp, 5_555);
        assert_eq!(
            header.attributes.timestamp_type(),
            TimestampType::LogAppendTime
        );
    }
    assert_eq!(log.offset_for_timestamp(5_000).unwrap(), Some((0, 5_555)));
}

#[test]
fn rolls_on_size_and_reads_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path(), small_config());
    let mut expected = 0;
    for i in 0..40u8 {
        log.append_as_leader(bytes_mut(&[&batch(5, 50, i, 0)]), 0, 0)
            .unwrap();
        expected += 5;
    }
    assert!(
        log.segment_count() > 3,
        "4 KiB segments must roll: {}",
        log.segment_count()
    );
    let bases = log.segment_base_offsets();
    assert!(bases.windows(2).all(|w| w[0] < w[1]));
    for base in &bases {
        assert!(dir.path().join(format!("t-0/{base:020}.log")).exists());
    }
    // Sealed segments' indexes are trimmed.
    let sealed_index = dir.path().join(format!("t-0/{:020}.index", bases[0]));
    assert!(std::fs::metadata(sealed_index).unwrap().len() < 1024);
    let all = read_all(&log, 0, 1_000);
    assert_eq!(all.len(), expected);
    assert!(
        all.iter()
            .enumerate()
            .all(|(i, (offset, _))| *offset == i as i64)
    );
    assert!(log.segment_count() * 4096 >= log.size_in_bytes() as usize);
}

#[test]
fn rolls_on_time_and_on_full_index() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_ms: 1_000,
        ..LogConfig::default()
    };
    let log = open_log(dir.path(), config);
    log.append_as_leader(bytes_mut(&[&batch(1, 5, 0, 10_000)]), 0, 10_000)
        .unwrap();
    log.append_as_leader(bytes_mut(&[&batch(1, 5, 0, 10_500)]), 0, 10_500)
        .unwrap();
    assert_eq!(log.segment_count(), 1);
    log.append_as_leader(bytes_mut(&[&batch(1, 5, 0, 11_001)]), 0, 11_001)
        .unwrap();
    assert_eq!(
        log.segment_base_offsets(),
        [0, 2],
        "first batch's timestamp + segment.ms passed"
    );

    let dir = tempfile::tempdir().unwrap();
    // Room for 3 offset-index entries (and 2 time-index entries); one entry per batch.
    let config = LogConfig {
        segment_index_bytes: 24,
        index_interval_bytes: 0,
        ..LogConfig::default()
    };
    let log = open_log(dir.path(), config);
    for i in 0..10 {
        log.append_as_leader(bytes_mut(&[&batch(1, 5, 0, i)]), 0, 0)
            .unwrap();
    }
    assert!(
        log.segment_count() >= 4,
        "index full forces rolls: {:?}",
        log.segment_base_offsets()
    );
    assert_eq!(read_all(&log, 0, 1 << 20).len(), 10);
}

#[test]
fn follower_appends_must_continue_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let leader = open_log(dir.path(), LogConfig::default());
    leader
        .append_as_leader(bytes_mut(&[&batch(3, 5, 0, 0), &batch(2, 5, 1, 0)]), 4, 0)
        .unwrap();
    let fetched = leader.read(0, 1 << 20, None, true).unwrap().batches;

    let follower_dir = tempfile::tempdir().unwrap();
    let follower = open_log(follower_dir.path(), LogConfig::default());
    let second_batch = fetched.slice(BatchIter::new(&fetched).next().unwrap().unwrap().1.len()..);
    match follower.append_as_follower(BytesMut::from(&second_batch[..])) {
        Err(LogError::NonContiguousAppend {
            expected: 0,
            found: 3,
            ..
        }) => {}
        other => panic!("expected NonContiguousAppend, got {other:?}"),
    }
    assert_eq!(follower.log_end_offset(), 0);
    let info = follower
        .append_as_follower(BytesMut::from(&fetched[..]))
        .unwrap();
    assert_eq!(
        (info.base_offset, info.last_offset, info.records),
        (0, 4, 5)
    );
    assert_eq!(
        follower.read(0, 1 << 20, None, true).unwrap().batches,
        fetched,
        "stored byte for byte"
    );
    let mut corrupt = BytesMut::from(&second_batch[..]);
    corrupt[30] ^= 1;
    assert!(matches!(
        follower.append_as_follower(corrupt),
        Err(LogError::InvalidBatch { .. })
    ));
}

#[test]
fn truncate_to_drops_the_batch_containing_the_offset_and_after() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(
        dir.path(),
        LogConfig {
            segment_bytes: 1024,
            ..small_config()
        },
    );
    for i in 0..30u8 {
        log.append_as_leader(bytes_mut(&[&batch(4, 60, i, i64::from(i))]), 0, 0)
            .unwrap();
    }
    let segments = log.segment_count();
    assert!(segments > 3);
    log.truncate_to(200).unwrap();
    assert_eq!(log.log_end_offset(), 120, "beyond the end: no-op");
    log.truncate_to(50).unwrap(); // inside batch 48..=51
    assert_eq!(log.log_end_offset(), 48);
    assert!(log.segment_count() < segments);
    assert_eq!(read_all(&log, 0, 1 << 20).len(), 48);
    assert!(log.recovery_point() <= 48);
    let info = log
        .append_as_leader(bytes_mut(&[&batch(2, 60, 99, 0)]), 1, 0)
        .unwrap();
    assert_eq!(info.base_offset, 48);
    assert_eq!(read_all(&log, 40, 1 << 20).last().unwrap().0, 49);
    // Time index entries of truncated batches are gone.
    assert_eq!(log.offset_for_timestamp(11).unwrap(), Some((44, 11)));
    assert_eq!(log.offset_for_timestamp(12).unwrap(), None);

    log.truncate_to(0).unwrap();
    assert_eq!(
        (
            log.log_start_offset(),
            log.log_end_offset(),
            log.segment_count()
        ),
        (0, 0, 1)
    );
    assert_eq!(
        log.append_as_leader(bytes_mut(&[&batch(1, 1, 0, 0)]), 0, 0)
            .unwrap()
            .base_offset,
        0
    );
}

#[test]
fn flush_advances_the_recovery_point_and_flush_messages_triggers_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path(), LogConfig::default());
    log.append_as_leader(bytes_mut(&[&batch(3, 5, 0, 0)]), 0, 0)
        .unwrap();
    assert_eq!(log.recovery_point(), 0);
    log.flush().unwrap();
    assert_eq!(log.recovery_point(), 3);

    log.set_config(LogConfig {
        flush_messages: 5,
        ..LogConfig::default()
    });
    log.append_as_leader(bytes_mut(&[&batch(3, 5, 0, 0)]), 0, 0)
        .unwrap();
    assert_eq!(log.recovery_point(), 3);
    log.append_as_leader(bytes_mut(&[&batch(2, 5, 0, 0)]), 0, 0)
        .unwrap();
    assert_eq!(log.recovery_point(), 8, "5 records since the last flush");
}

#[test]
fn retention_deletes_whole_segments_below_the_high_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let day = 86_400_000;
    let config = LogConfig {
        segment_bytes: 300,
        retention_ms: 7 * day,
        file_delete_delay_ms: 1_000,
        ..small_config()
    };
    let log = open_log(dir.path(), config);
    for i in 0..6 {
        log.append_as_leader(bytes_mut(&[&batch(2, 60, 0, i * day)]), 0, i * day)
            .unwrap();
    }
    let bases = log.segment_base_offsets();
    assert_eq!(bases.len(), 6, "one batch per segment: {bases:?}");
    let now = 10 * day; // batches at days 0..=2 are more than 7 days old
    assert_eq!(
        log.apply_retention(now, 2).unwrap(),
        1,
        "the HW (2) protects the second segment"
    );
    assert_eq!(log.log_start_offset(), 2);
    assert!(matches!(
        log.read(0, 100, None, true),
        Err(LogError::OffsetOutOfRange { log_start: 2, .. })
    ));
    assert_eq!(log.apply_retention(now, 12).unwrap(), 2);
    assert_eq!(log.log_start_offset(), 6);
    let deleted = dir.path().join(format!("t-0/{:020}.log.deleted", 0));
    assert!(
        deleted.exists(),
        "renamed, unlinked after file.delete.delay.ms"
    );
    log.delete_expired_files(now + 999);
    assert!(deleted.exists());
    log.delete_expired_files(now + 1_000);
    assert!(!deleted.exists());

    // Everything expired: roll an empty active segment first, log start = log end.
    assert_eq!(log.apply_retention(20 * day, 12).unwrap(), 3);
    assert_eq!(
        (
            log.log_start_offset(),
            log.log_end_offset(),
            log.segment_count()
        ),
        (12, 12, 1)
    );
    assert_eq!(
        log.append_as_leader(bytes_mut(&[&batch(1, 1, 0, 20 * day)]), 0, 20 * day)
            .unwrap()
            .base_offset,
        12
    );

    let sized = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 300,
        retention_ms: -1,
        retention_bytes: 500,
        ..small_config()
    };
    let log = open_log(sized.path(), config);
    for _ in 0..6 {
        log.append_as_leader(bytes_mut(&[&batch(2, 60, 0, 0)]), 0, 0)
            .unwrap();
    }
    log.apply_retention(0, i64::MAX).unwrap();
    // Like Kafka, retention.bytes is a floor: a segment goes only if the rest still holds
    // at least retention.bytes.
    let size = log.size_in_bytes();
    assert!((500..800).contains(&size), "{size}");
}

#[test]
fn a_failed_write_is_rolled_back_and_the_log_stays_usable() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(
        dir.path(),
        LogConfig {
            index_interval_bytes: 0,
            ..LogConfig::default()
        },
    );
    log.append_as_leader(bytes_mut(&[&batch(3, 50, 1, 0)]), 0, 0)
        .unwrap();
    let (size, end) = (log.size_in_bytes(), log.log_end_offset());
    let path = dir.path().join("t-0/00000000000000000000.log");

    crate::log::segment::fault::fail_next_write(100);
    match log.append_as_leader(bytes_mut(&[&batch(2, 50, 2, 0), &batch(2, 50, 3, 0)]), 0, 0) {
        Err(LogError::Io { source, .. }) => assert_eq!(source.raw_os_error(), Some(28)),
        other => panic!("expected an I/O error, got {other:?}"),
    }
    assert_eq!((log.size_in_bytes(), log.log_end_offset()), (size, end));
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        size,
        "partial write truncated away"
    );

    let info = log
        .append_as_leader(bytes_mut(&[&batch(2, 50, 4, 0)]), 0, 0)
        .unwrap();
    assert_eq!(info.base_offset, 3);
    let expected = read_all(&log, 0, 1 << 20);
    assert_eq!(expected.len(), 5);
    assert_eq!(
        records(&log.read(3, 1, None, true).unwrap().batches)[0].0,
        3,
        "index entry is right"
    );
    drop(log);
    assert_eq!(
        read_all(
            &reopen_unclean(dir.path(), LogConfig::default()),
            0,
            1 << 20
        ),
        expected
    );
}
