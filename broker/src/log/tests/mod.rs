//! Tests of `Log` and `LogManager` through their public API (the per-file unit tests live
//! beside each file).

mod compaction;
mod compression;
mod leader_epoch;
mod log;
mod manager;
mod producer;
mod prop;
mod read;
mod recovery;

use std::path::Path;

use bytes::{Bytes, BytesMut};
use tributary_record::{BatchBuilder, BatchIter, Record, decode_records};

use super::{Log, LogConfig};

/// A batch of `count` records with values `value_len` bytes long, each filled with the byte
/// `fill`, all at `timestamp`.
pub(super) fn batch(count: usize, value_len: usize, fill: u8, timestamp: i64) -> Vec<u8> {
    let mut builder = BatchBuilder::new();
    for i in 0..count {
        let mut value = vec![fill; value_len];
        if let Some(first) = value.first_mut() {
            *first = i as u8;
        }
        builder.push(&Record {
            key: None,
            value: Some(Bytes::from(value)),
            timestamp,
            headers: vec![],
        });
    }
    builder.build_vec()
}

/// A batch whose records have the given timestamps.
pub(super) fn batch_with_timestamps(timestamps: &[i64]) -> Vec<u8> {
    let mut builder = BatchBuilder::new();
    for &timestamp in timestamps {
        builder.push(&Record {
            value: Some(Bytes::from_static(b"x")),
            timestamp,
            ..Record::default()
        });
    }
    builder.build_vec()
}

pub(super) fn bytes_mut(parts: &[&[u8]]) -> BytesMut {
    let mut buf = BytesMut::new();
    for part in parts {
        buf.extend_from_slice(part);
    }
    buf
}

/// (offset, value) of every record in `batches`, which must be whole valid batches.
pub(super) fn records(batches: &Bytes) -> Vec<(i64, Bytes)> {
    let mut out = Vec::new();
    let mut iter = BatchIter::new(batches);
    for item in iter.by_ref() {
        let (_, slice) = item.expect("valid header");
        for record in decode_records(&batches.slice_ref(slice)).expect("valid batch") {
            out.push((record.offset, record.value.unwrap_or_default()));
        }
    }
    assert_eq!(
        iter.consumed(),
        batches.len(),
        "reads return whole batches only"
    );
    out
}

/// Every record from `from` to the log end, read in chunks of `max_bytes`.
pub(super) fn read_all(log: &Log, from: i64, max_bytes: usize) -> Vec<(i64, Bytes)> {
    let mut out = Vec::new();
    let mut offset = from;
    while offset < log.log_end_offset() {
        let result = log.read(offset, max_bytes, None, true).expect("read");
        let batch_records = records(&result.batches);
        assert!(
            !batch_records.is_empty(),
            "read at {offset} returned nothing before the log end"
        );
        out.extend(batch_records.into_iter().filter(|(o, _)| *o >= offset));
        offset = out.last().map_or(offset, |(o, _)| o + 1);
    }
    out
}

pub(super) fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 4096,
        index_interval_bytes: 256,
        segment_index_bytes: 1024,
        ..LogConfig::default()
    }
}

/// A fresh log for partition `t-0` under `root`.
pub(super) fn open_log(root: &Path, config: LogConfig) -> Log {
    Log::open(&root.join("t-0"), config, 0, 0, true, 0).expect("open log")
}

/// Reopens `t-0` under `root` as after a crash (no marker, recovery point 0).
pub(super) fn reopen_unclean(root: &Path, config: LogConfig) -> Log {
    Log::open(&root.join("t-0"), config, 0, 0, false, 0).expect("reopen log")
}

#[test]
fn logs_and_the_manager_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Log>();
    assert_send_sync::<super::LogManager>();
}

#[test]
fn topic_partition_names_split_at_the_last_dash() {
    use super::TopicPartition;
    let tp = TopicPartition::new("orders-eu", 12);
    assert_eq!(tp.to_string(), "orders-eu-12");
    assert_eq!(TopicPartition::parse_dir_name("orders-eu-12"), Some(tp));
    assert_eq!(
        TopicPartition::parse_dir_name("orders--1"),
        Some(TopicPartition::new("orders-", 1))
    );
    for bad in [
        "orders",
        "-1",
        "orders-",
        "orders-x",
        "orders-+1",
        "orders-01",
        "orders-1.abc-delete",
    ] {
        assert_eq!(TopicPartition::parse_dir_name(bad), None, "{bad}");
    }
    let dir = tempfile::tempdir().unwrap();
    let error = Log::open(
        &dir.path().join("no_partition"),
        LogConfig::default(),
        0,
        0,
        true,
        0,
    )
    .unwrap_err();
    assert!(
        matches!(error, super::LogError::InvalidLogDirName { .. }),
        "{error:?}"
    );
}
