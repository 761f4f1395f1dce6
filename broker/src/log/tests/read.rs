//! Reads of one `Log`: offsets, limits, timestamps, concurrency with appends.

use super::*;
use crate::log::{LogConfig, LogError};

#[test]
fn read_semantics() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path(), LogConfig::default());
    for i in 0..10u8 {
        log.append_as_leader(bytes_mut(&[&batch(10, 20, i, 0)]), 0, 0)
            .unwrap();
    }
    let batch_size = log.size_in_bytes() as usize / 10;

    // An offset inside a batch returns that whole batch first.
    let result = log.read(15, 1 << 20, None, false).unwrap();
    assert_eq!(records(&result.batches).first().unwrap().0, 10);
    assert_eq!(result.batches.len(), batch_size * 9);

    // max_offset (the HW) excludes every batch whose last offset reaches it.
    let result = log.read(15, 1 << 20, Some(35), false).unwrap();
    assert_eq!(records(&result.batches).last().unwrap().0, 29);
    assert!(
        log.read(30, 1 << 20, Some(35), true)
            .unwrap()
            .batches
            .is_empty()
    );
    assert!(
        log.read(40, 1 << 20, Some(35), true)
            .unwrap()
            .batches
            .is_empty()
    );

    // max_bytes is soft only for the first batch, and only with min_one_batch.
    assert_eq!(
        log.read(0, 10, None, true).unwrap().batches.len(),
        batch_size
    );
    assert!(log.read(0, 10, None, false).unwrap().batches.is_empty());
    assert_eq!(
        log.read(0, batch_size * 2 + 5, None, false)
            .unwrap()
            .batches
            .len(),
        batch_size * 2
    );

    // The log end reads empty; beyond it is out of range.
    let result = log.read(100, 1 << 20, None, true).unwrap();
    assert!(result.batches.is_empty());
    assert_eq!(result.log_end_offset, 100);
    match log.read(101, 1 << 20, None, true) {
        Err(LogError::OffsetOutOfRange {
            requested: 101,
            log_start: 0,
            log_end: 100,
            ..
        }) => {}
        other => panic!("expected OffsetOutOfRange, got {other:?}"),
    }
    assert!(matches!(
        log.read(-1, 10, None, true),
        Err(LogError::OffsetOutOfRange { .. })
    ));
}

#[test]
fn offset_for_timestamp_finds_the_first_record_at_or_after() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(
        dir.path(),
        LogConfig {
            segment_bytes: 200,
            ..LogConfig::default()
        },
    );
    log.append_as_leader(bytes_mut(&[&batch_with_timestamps(&[100, 110, 120])]), 0, 0)
        .unwrap(); // 0..=2
    log.append_as_leader(bytes_mut(&[&batch_with_timestamps(&[200, 150, 250])]), 0, 0)
        .unwrap(); // 3..=5
    log.append_as_leader(bytes_mut(&[&batch_with_timestamps(&[300, 310])]), 0, 0)
        .unwrap(); // 6..=7
    assert!(log.segment_count() > 1);
    assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((0, 100)));
    assert_eq!(log.offset_for_timestamp(110).unwrap(), Some((1, 110)));
    assert_eq!(log.offset_for_timestamp(121).unwrap(), Some((3, 200)));
    assert_eq!(log.offset_for_timestamp(201).unwrap(), Some((5, 250)));
    assert_eq!(log.offset_for_timestamp(305).unwrap(), Some((7, 310)));
    assert_eq!(log.offset_for_timestamp(311).unwrap(), None);
}

#[test]
fn concurrent_appends_and_reads() {
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(open_log(
        dir.path(),
        LogConfig {
            segment_bytes: 8_192,
            ..small_config()
        },
    ));
    let writers: Vec<_> = (0..2u8)
        .map(|w| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for i in 0..200u8 {
                    log.append_as_leader(
                        bytes_mut(&[&batch(5, 30, w.wrapping_mul(100).wrapping_add(i), 0)]),
                        0,
                        0,
                    )
                    .unwrap();
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut offset = 0;
                while offset < 2_000 {
                    let result = log.read(offset, 4_096, None, true).unwrap();
                    for (o, _) in records(&result.batches) {
                        assert!(o < result.log_end_offset);
                        if o >= offset {
                            assert_eq!(o, offset, "no gaps");
                            offset += 1;
                        }
                    }
                }
            })
        })
        .collect();
    for handle in writers.into_iter().chain(readers) {
        handle.join().unwrap();
    }
    assert_eq!(log.log_end_offset(), 2_000);
    assert!(log.segment_count() > 1);
}
