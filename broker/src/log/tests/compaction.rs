//! Compaction of a `Log`: what survives a pass, offsets, reopening, a crash at every step of
//! the swap, retention under `compact`, followers of a compacted leader, and the manager's
//! cleaner checkpoint.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use tributary_record::{BatchBuilder, BatchIter, Record, decode_records};

use super::super::cleaner::CleanerSettings;
use super::super::cleaner::swap::fault;
use super::super::{
    CLEANER_OFFSET_CHECKPOINT, CleanupPolicy, DirtyRatio, HighWatermarkFn, Log, LogConfig,
    LogError, LogManager, TopicPartition,
};
use super::{open_log, reopen_unclean};

/// (offset, key, value) of a stored record; `None` value = tombstone.
type Stored = (i64, String, Option<String>);

fn compact_config(segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        index_interval_bytes: 128,
        segment_index_bytes: 4096,
        cleanup_policy: CleanupPolicy::COMPACT,
        min_cleanable_dirty_ratio: DirtyRatio::new(0.0).unwrap(),
        ..LogConfig::default()
    }
}

/// One batch of keyed records (`None` value = tombstone).
fn keyed_batch(records: &[(&str, Option<&str>)]) -> BytesMut {
    let mut builder = BatchBuilder::new();
    for (key, value) in records {
        builder.push(&Record {
            key: Some(Bytes::copy_from_slice(key.as_bytes())),
            value: value.map(|v| Bytes::copy_from_slice(v.as_bytes())),
            timestamp: 1_000,
            headers: vec![],
        });
    }
    BytesMut::from(&builder.build_vec()[..])
}

/// Every record from the log start, following batch headers (a compacted log has gaps and
/// may have empty batches).
fn read_stored(log: &Log) -> Vec<Stored> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let result = log.read(offset, 1 << 20, None, true).expect("read");
        let mut iter = BatchIter::new(&result.batches);
        let mut next = offset;
        for item in iter.by_ref() {
            let (header, slice) = item.expect("whole batches");
            next = header.next_offset();
            for r in decode_records(&result.batches.slice_ref(slice)).expect("valid batch") {
                if r.offset >= offset {
                    out.push((
                        r.offset,
                        String::from_utf8(r.key.unwrap().to_vec()).unwrap(),
                        r.value.map(|v| String::from_utf8(v.to_vec()).unwrap()),
                    ));
                }
            }
        }
        assert_eq!(iter.consumed(), result.batches.len());
        assert!(next > offset, "a read at {offset} made no progress");
        offset = next;
    }
    out
}

/// What a pass must leave: below `end`, only the last record of each key; at and above it,
/// everything.
fn expected_after_clean(all: &[Stored], end: i64) -> Vec<Stored> {
    let mut last_below: BTreeMap<&str, i64> = BTreeMap::new();
    for (offset, key, _) in all.iter().filter(|r| r.0 < end) {
        last_below.insert(key, *offset);
    }
    all.iter()
        .filter(|(offset, key, _)| *offset >= end || last_below.get(key.as_str()) == Some(offset))
        .cloned()
        .collect()
}

/// Appends `rounds` rounds of updates to keys k0..k4, with a tombstone for k3 in round 2.
fn fill(log: &Log, rounds: usize) {
    fill_from(log, 0, rounds);
}

/// Rounds `from..to` of [`fill`].
fn fill_from(log: &Log, from: usize, to: usize) {
    for round in from..to {
        for key in 0..5 {
            let key = format!("k{key}");
            let value = format!("{key}-v{round}-{}", "x".repeat(40));
            let tombstone = key == "k3" && round == 2;
            log.append_as_leader(
                keyed_batch(&[(&key, (!tombstone).then_some(&value))]),
                0,
                1_000,
            )
            .unwrap();
        }
    }
}

fn clean(log: &Log) -> super::super::cleaner::CleanOutcome {
    log.clean(
        super::super::now_ms(),
        log.log_end_offset(),
        1 << 20,
        &|| false,
    )
    .unwrap()
}

#[test]
fn a_pass_keeps_the_latest_record_per_key_at_its_offset_and_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let config = compact_config(1024);
    let log = open_log(dir.path(), config.clone());
    fill(&log, 20);
    let before = read_stored(&log);
    let segments_before = log.segment_count();
    assert!(segments_before > 5, "{segments_before}");
    let active_base = *log.segment_base_offsets().last().unwrap();

    let outcome = clean(&log);
    assert!(outcome.segments_swapped > 0);
    assert!(outcome.bytes_after < outcome.bytes_before);
    assert_eq!(outcome.first_dirty_offset, active_base);
    assert_eq!(log.first_dirty_offset(), active_base);
    let expected = expected_after_clean(&before, active_base);
    assert_eq!(read_stored(&log), expected);
    assert_eq!(log.segment_count(), segments_before);
    assert_eq!(log.log_end_offset(), 100);

    // A read at a removed offset returns the next surviving batch.
    let first_kept = expected[0].0;
    assert!(first_kept > 0);
    let read = log.read(0, 1 << 20, None, true).unwrap();
    let (header, _) = BatchIter::new(&read.batches).next().unwrap().unwrap();
    assert!(header.last_offset() >= 0 && header.base_offset <= first_kept);

    // Nothing new: a second pass is a no-op.
    assert_eq!(clean(&log).segments_swapped, 0);
    // With new dirty data the next pass merges the small cleaned segments (Kafka groups by
    // the sources' sizes, so merging starts from the second pass).
    fill_from(&log, 20, 40);
    let before = read_stored(&log);
    let segments_before = log.segment_count();
    clean(&log);
    assert!(
        log.segment_count() < segments_before,
        "small segments were merged"
    );
    let active_base = *log.segment_base_offsets().last().unwrap();
    let expected = expected_after_clean(&before, active_base);
    assert_eq!(read_stored(&log), expected);
    assert_eq!(log.log_end_offset(), 200);

    // Clean and unclean reopening see the same records.
    log.close().unwrap();
    drop(log);
    let reopened = Log::open(&dir.path().join("t-0"), config.clone(), 200, 0, true, 0).unwrap();
    assert_eq!(read_stored(&reopened), expected);
    drop(reopened);
    let reopened = reopen_unclean(dir.path(), config);
    assert_eq!(read_stored(&reopened), expected);
    assert_eq!(reopened.log_end_offset(), 200);
    // Appends continue after the compacted part.
    reopened
        .append_as_leader(keyed_batch(&[("k0", Some("after"))]), 0, 1_000)
        .unwrap();
    assert_eq!(read_stored(&reopened).last().unwrap().0, 200);
}

#[test]
fn tombstones_stay_one_pass_and_go_after_delete_retention() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        delete_retention_ms: 0,
        ..compact_config(1024)
    };
    let log = open_log(dir.path(), config);
    let live = |log: &Log, rounds: std::ops::Range<usize>| {
        for round in rounds {
            let value = format!("v{round}-{}", "y".repeat(60));
            log.append_as_leader(keyed_batch(&[("live", Some(&value))]), 0, 1_000)
                .unwrap();
        }
    };
    for value in ["d0", "d1"] {
        log.append_as_leader(keyed_batch(&[("dead", Some(value))]), 0, 1_000)
            .unwrap();
    }
    log.append_as_leader(keyed_batch(&[("dead", None)]), 0, 1_000)
        .unwrap();
    live(&log, 0..20);
    clean(&log);
    let after_first = read_stored(&log);
    let dead: Vec<&Stored> = after_first.iter().filter(|(_, k, _)| k == "dead").collect();
    assert_eq!(
        dead,
        [&(2, "dead".to_owned(), None)],
        "only the tombstone survives the pass that first cleans it"
    );
    // More data: at the next pass the tombstone's segment is in the clean head, and with
    // delete.retention.ms = 0 it is past the horizon.
    live(&log, 20..40);
    clean(&log);
    let after_second = read_stored(&log);
    assert!(
        after_second.iter().all(|(_, k, _)| k != "dead"),
        "{after_second:?}"
    );
    assert!(after_second.iter().any(|(_, k, _)| k == "live"));
}

#[test]
fn a_crash_at_every_step_of_the_swap_leaves_a_readable_log_with_every_latest_value() {
    let config = compact_config(1024);
    let setup = || {
        let dir = tempfile::tempdir().unwrap();
        let log = open_log(dir.path(), config.clone());
        fill(&log, 12);
        (dir, log)
    };
    // How many file operations a whole pass takes.
    let (_dir, log) = setup();
    let original = read_stored(&log);
    let end = *log.segment_base_offsets().last().unwrap();
    let cleaned = expected_after_clean(&original, end);
    fault::crash_before_op(None);
    clean(&log);
    let total = fault::executed();
    assert!(total >= 15, "{total}");
    drop(log);

    let latest = |records: &[Stored]| -> BTreeMap<String, (i64, Option<String>)> {
        records
            .iter()
            .map(|(o, k, v)| (k.clone(), (*o, v.clone())))
            .collect()
    };
    for crash_at in 0..=total {
        let (dir, log) = setup();
        fault::crash_before_op(Some(crash_at));
        let result = log.clean(
            super::super::now_ms(),
            log.log_end_offset(),
            1 << 20,
            &|| false,
        );
        fault::crash_before_op(None);
        assert_eq!(
            result.is_err(),
            crash_at < total,
            "crash before op {crash_at}"
        );
        drop(log); // kill -9: no close, no marker

        for recovery_point in [0, 60] {
            let log = Log::open(
                &dir.path().join("t-0"),
                config.clone(),
                recovery_point,
                0,
                false,
                0,
            )
            .unwrap_or_else(|e| panic!("crash before op {crash_at}: reopen failed: {e}"));
            let stored = read_stored(&log);
            assert_eq!(log.log_end_offset(), 60, "crash before op {crash_at}");
            assert_eq!(
                latest(&stored),
                latest(&original),
                "crash before op {crash_at}"
            );
            // Every record is an original one at its original offset, and at least the
            // cleaned set survives.
            let originals: HashSet<&Stored> = original.iter().collect();
            assert!(
                stored.iter().all(|r| originals.contains(r)),
                "crash before op {crash_at}"
            );
            let present: HashSet<&Stored> = stored.iter().collect();
            assert!(
                cleaned.iter().all(|r| present.contains(r)),
                "crash before op {crash_at}"
            );
            if crash_at == 0 {
                assert_eq!(stored, original);
            }
            if crash_at == total {
                assert_eq!(stored, cleaned);
            }
            let leftovers: Vec<String> = std::fs::read_dir(dir.path().join("t-0"))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| {
                    n.ends_with(".cleaned") || n.ends_with(".swap") || n.ends_with(".deleted")
                })
                .collect();
            assert!(
                leftovers.is_empty(),
                "crash before op {crash_at}: {leftovers:?}"
            );
            if recovery_point > 0 {
                // The reopened log cleans to the same result.
                clean(&log);
                assert_eq!(read_stored(&log), cleaned, "crash before op {crash_at}");
            }
        }
    }
}

#[test]
fn the_active_segment_and_records_above_the_high_watermark_are_never_cleaned() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path(), compact_config(1024));
    fill(&log, 12);
    let before = read_stored(&log);
    let bases = log.segment_base_offsets();
    // HW inside the third segment: only the first two are cleanable.
    let high_watermark = bases[2] + 1;
    let outcome = log
        .clean(super::super::now_ms(), high_watermark, 1 << 20, &|| false)
        .unwrap();
    assert_eq!(outcome.first_dirty_offset, bases[2]);
    assert_eq!(read_stored(&log), expected_after_clean(&before, bases[2]));
    // A log that is not compacted is left alone.
    let other = tempfile::tempdir().unwrap();
    let plain = open_log(
        other.path(),
        LogConfig {
            segment_bytes: 1024,
            ..LogConfig::default()
        },
    );
    fill(&plain, 12);
    let before = read_stored(&plain);
    assert_eq!(clean(&plain).segments_swapped, 0);
    assert_eq!(read_stored(&plain), before);
    assert!(plain.cleanable(0, plain.log_end_offset()).is_none());
}

#[test]
fn a_stop_request_ends_the_pass_with_the_log_intact() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path(), compact_config(1024));
    fill(&log, 12);
    let before = read_stored(&log);
    let outcome = log
        .clean(
            super::super::now_ms(),
            log.log_end_offset(),
            1 << 20,
            &|| true,
        )
        .unwrap();
    assert!(outcome.interrupted);
    assert_eq!(outcome.segments_swapped, 0);
    assert_eq!(log.first_dirty_offset(), 0);
    assert_eq!(read_stored(&log), before);
}

#[test]
fn a_small_dedupe_buffer_cleans_over_several_passes() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path(), compact_config(1024));
    fill(&log, 12);
    let before = read_stored(&log);
    let end = *log.segment_base_offsets().last().unwrap();
    let mut passes = 0;
    while log.first_dirty_offset() < end {
        log.clean(super::super::now_ms(), log.log_end_offset(), 1, &|| false)
            .unwrap();
        passes += 1;
        assert!(passes < 100);
    }
    assert!(passes > 1, "{passes}");
    assert_eq!(read_stored(&log), expected_after_clean(&before, end));
}

#[test]
fn retention_by_time_and_size_applies_only_with_the_delete_policy() {
    for (policy, expect_deleted) in [
        (CleanupPolicy::COMPACT, false),
        (
            CleanupPolicy {
                delete: true,
                compact: true,
            },
            true,
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            retention_ms: 1,
            cleanup_policy: policy,
            ..compact_config(1024)
        };
        let log = open_log(dir.path(), config);
        fill(&log, 12);
        let deleted = log
            .apply_retention(1_000_000, log.log_end_offset())
            .unwrap();
        assert_eq!(deleted > 0, expect_deleted, "{policy}");
    }
}

#[test]
fn a_compacted_follower_accepts_the_gaps_of_a_compacted_leader() {
    let leader_dir = tempfile::tempdir().unwrap();
    let leader = open_log(leader_dir.path(), compact_config(1024));
    fill(&leader, 12);
    clean(&leader);
    let expected = read_stored(&leader);

    for (config, accepted) in [(compact_config(1024), true), (LogConfig::default(), false)] {
        let dir = tempfile::tempdir().unwrap();
        let follower = open_log(dir.path(), config);
        let mut offset = 0;
        let mut result = Ok(());
        while offset < leader.log_end_offset() && result.is_ok() {
            let fetched = leader.read(offset, 4096, None, true).unwrap().batches;
            result = follower
                .append_as_follower(BytesMut::from(&fetched[..]))
                .map(|info| offset = info.last_offset + 1);
        }
        if accepted {
            result.unwrap();
            assert_eq!(read_stored(&follower), expected);
            assert_eq!(follower.log_end_offset(), leader.log_end_offset());
        } else {
            assert!(matches!(result, Err(LogError::NonContiguousAppend { .. })));
        }
    }
}

#[test]
fn the_manager_cleans_due_logs_and_checkpoints_their_first_dirty_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let dirs = [dir.path().to_path_buf()];
    let tp = TopicPartition::new("c", 0);
    let hw: Box<HighWatermarkFn> = Box::new(|_| Some(i64::MAX));
    let end = {
        let manager = LogManager::open(&dirs, LogConfig::default()).unwrap();
        let log = manager.get_or_create(&tp, compact_config(1024)).unwrap();
        fill(&log, 12);
        let failed = manager.clean_due_logs(
            &*hw,
            CleanerSettings::default(),
            &Default::default(),
            &|| false,
        );
        assert!(failed.is_empty());
        let end = log.first_dirty_offset();
        assert!(end > 0);
        let text = std::fs::read_to_string(dir.path().join(CLEANER_OFFSET_CHECKPOINT)).unwrap();
        assert_eq!(text, format!("0\n1\nc 0 {end}\n"));
        manager.shutdown(&*hw).unwrap();
        end
    };
    let manager = LogManager::open(&dirs, compact_config(1024)).unwrap();
    assert_eq!(manager.get(&tp).unwrap().first_dirty_offset(), end);
    // A partition without a high watermark (not hosted by the replica layer) is not cleaned.
    let log = manager.get(&tp).unwrap();
    fill(&log, 12);
    let none: Box<HighWatermarkFn> = Box::new(|_| None);
    manager.clean_due_logs(
        &*none,
        CleanerSettings::default(),
        &Default::default(),
        &|| false,
    );
    assert_eq!(log.first_dirty_offset(), end);
}

fn arbitrary_updates() -> impl Strategy<Value = Vec<Vec<(u8, Option<u8>)>>> {
    // Batches of 1..4 records on keys 0..6; value None = tombstone.
    prop::collection::vec(
        prop::collection::vec((0u8..6, prop::option::weighted(0.85, any::<u8>())), 1..4),
        1..80,
    )
}

fn append_updates(log: &Log, batches: &[Vec<(u8, Option<u8>)>]) {
    for batch in batches {
        let records: Vec<(String, Option<String>)> = batch
            .iter()
            .map(|(k, v)| {
                (
                    format!("key{k}"),
                    v.map(|v| format!("{v:03}-{}", "z".repeat(30))),
                )
            })
            .collect();
        let refs: Vec<(&str, Option<&str>)> = records
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_deref()))
            .collect();
        log.append_as_leader(keyed_batch(&refs), 0, 1_000).unwrap();
    }
}

/// The records `append_updates` writes, at offsets from `from`.
fn appended(batches: &[Vec<(u8, Option<u8>)>], from: i64) -> Vec<Stored> {
    batches
        .iter()
        .flatten()
        .zip(from..)
        .map(|((k, v), offset)| {
            (
                offset,
                format!("key{k}"),
                v.map(|v| format!("{v:03}-{}", "z".repeat(30))),
            )
        })
        .collect()
}

fn open_at(dir: &Path, config: LogConfig) -> Log {
    Log::open(&dir.join("t-0"), config, 0, 0, false, 0).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// After passes interleaved with appends, the log below the first dirty offset has
    /// exactly the last record of each key (tombstones kept: delete.retention.ms is a day),
    /// everything at its original offset, the rest untouched; the same after reopening.
    #[test]
    fn cleaned_logs_hold_exactly_the_latest_record_per_key(
        first in arbitrary_updates(),
        second in arbitrary_updates(),
        segment_bytes in 300u64..1500,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let config = compact_config(segment_bytes);
        let log = open_log(dir.path(), config.clone());
        append_updates(&log, &first);
        prop_assert_eq!(read_stored(&log), appended(&first, 0));
        clean(&log);
        append_updates(&log, &second);
        clean(&log);
        let mut all = appended(&first, 0);
        all.extend(appended(&second, all.len() as i64));
        let end = log.first_dirty_offset();
        prop_assert_eq!(end, *log.segment_base_offsets().last().unwrap());
        let expected = expected_after_clean(&all, end);
        prop_assert_eq!(read_stored(&log), expected.clone());
        drop(log);
        let reopened = open_at(dir.path(), config);
        prop_assert_eq!(read_stored(&reopened), expected);
    }
}
