//! Which records survive a cleaning pass, and the rewriting of one batch: pure (bytes in,
//! bytes out, no files).
//!
//! A record survives unless
//!
//! * its key has a later record in the dirty part of the log ([`OffsetMap`] holds, per key,
//!   the offset of its latest record there), or
//! * it is a tombstone (null value) in a segment older than the **delete horizon**:
//!   tombstones are kept for `delete.retention.ms` once they are in the clean head, so that a
//!   consumer that read the old value has time to see the deletion. As in Kafka the age is
//!   measured on segment modification times: horizon = mtime of the last clean-head segment
//!   − `delete.retention.ms` (no clean head: nothing is old enough), and a segment's
//!   tombstones go when its mtime is ≤ the horizon. Cleaned segments keep the newest mtime
//!   of their sources, so the clock is the data's, not the cleaner's.
//!
//! Records without a key are always kept (Kafka refuses them on compacted topics at produce
//! time; Tributary's produce path does not, so the cleaner never drops data it cannot
//! attribute to a key). Control and transactional batches are copied unchanged.
//!
//! A batch whose records all survive is copied byte for byte. Otherwise it is rebuilt with
//! the same base offset, `last_offset_delta`, leader epoch, producer id/epoch/base sequence,
//! timestamp type and codec (recompressed; left uncompressed when that is not smaller, as
//! `BatchBuilder` does), and the surviving records at their original offsets. A batch left
//! with no records is dropped, unless its header must stay (`keep_header`): the last batch of
//! a cleaned segment (so the segment still ends where the next begins) and the last batch of
//! each producer id (its sequence state is rebuilt from batch headers).

use std::collections::HashMap;

use bytes::Bytes;
use tributary_record::{
    BatchBuilder, BatchHeader, Record, RecordError, TimestampType, decode_records, set_base_offset,
    set_log_append_time, set_partition_leader_epoch, validate_batch,
};

/// Estimated memory per key besides the key bytes: the `Bytes` handle (32), the offset (8)
/// and the hash table's control byte and slack at its 7/8 load factor (~8).
pub const MAP_ENTRY_OVERHEAD: usize = 48;

/// Key → offset of its latest record in the dirty part of the log (Kafka's dedupe buffer,
/// exact rather than hashed).
#[derive(Debug, Default)]
pub struct OffsetMap {
    latest: HashMap<Bytes, i64>,
    estimated_bytes: usize,
}

impl OffsetMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `key` has a record at `offset` (the larger offset wins).
    pub fn insert(&mut self, key: &[u8], offset: i64) {
        match self.latest.get_mut(key) {
            Some(latest) => *latest = (*latest).max(offset),
            None => {
                self.estimated_bytes += key.len() + MAP_ENTRY_OVERHEAD;
                self.latest.insert(Bytes::copy_from_slice(key), offset);
            }
        }
    }

    /// The offset of the latest record of `key` in the dirty part, if any.
    pub fn latest(&self, key: &[u8]) -> Option<i64> {
        self.latest.get(key).copied()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.latest.len()
    }

    /// Whether the map has no key.
    pub fn is_empty(&self) -> bool {
        self.latest.is_empty()
    }

    /// Estimated memory held, for `log.cleaner.dedupe.buffer.size`.
    pub fn estimated_bytes(&self) -> usize {
        self.estimated_bytes
    }
}

/// The delete horizon (see the module docs): tombstones in segments modified at or before it
/// are dropped.
pub fn delete_horizon_ms(
    last_clean_segment_modified_ms: Option<i64>,
    delete_retention_ms: i64,
) -> i64 {
    last_clean_segment_modified_ms
        .unwrap_or(0)
        .saturating_sub(delete_retention_ms)
}

/// Whether a segment modified at `segment_modified_ms` keeps its tombstones.
pub fn retains_tombstones(segment_modified_ms: i64, delete_horizon_ms: i64) -> bool {
    segment_modified_ms > delete_horizon_ms
}

/// Whether a record survives (see the module docs).
pub fn keep_record(
    key: Option<&[u8]>,
    is_tombstone: bool,
    offset: i64,
    map: &OffsetMap,
    retain_tombstones: bool,
) -> bool {
    let Some(key) = key else {
        return true;
    };
    if map.latest(key).is_some_and(|latest| offset < latest) {
        return false;
    }
    !is_tombstone || retain_tombstones
}

/// The rules for one batch.
#[derive(Debug, Clone, Copy)]
pub struct BatchRules<'a> {
    /// The dirty part's key map.
    pub map: &'a OffsetMap,
    /// Whether the batch's segment keeps its tombstones.
    pub retain_tombstones: bool,
    /// Whether the batch's header must stay even with no record left.
    pub keep_header: bool,
}

/// What becomes of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filtered {
    /// Every record survives: copy the stored bytes.
    Unchanged,
    /// Some records go: write these bytes instead (same offsets).
    Rewritten(Vec<u8>),
    /// Nothing survives and the header need not stay.
    Dropped,
}

/// Applies the rules to one stored batch (exactly one whole batch).
pub fn filter_batch(batch: &Bytes, rules: BatchRules<'_>) -> Result<Filtered, RecordError> {
    let header = validate_batch(batch)?;
    if header.attributes.is_control() || header.attributes.is_transactional() {
        return Ok(Filtered::Unchanged);
    }
    let records = decode_records(batch)?;
    let kept: Vec<_> = records
        .iter()
        .filter(|r| {
            keep_record(
                r.key.as_deref(),
                r.value.is_none(),
                r.offset,
                rules.map,
                rules.retain_tombstones,
            )
        })
        .collect();
    if kept.is_empty() && !rules.keep_header {
        return Ok(Filtered::Dropped);
    }
    if kept.len() == records.len() {
        return Ok(Filtered::Unchanged);
    }
    let mut builder = BatchBuilder::with_capacity(batch.len())
        .compression(header.attributes.compression()?)
        .timestamp_type(header.attributes.timestamp_type())
        .producer(
            header.producer_id,
            header.producer_epoch,
            header.base_sequence,
        )
        .last_offset_delta(header.last_offset_delta);
    for record in kept {
        builder.push_at(
            &Record {
                key: record.key.clone(),
                value: record.value.clone(),
                timestamp: record.timestamp,
                headers: record.headers.clone(),
            },
            offset_delta(&header, record.offset),
        );
    }
    let mut rebuilt = builder.build_vec();
    set_base_offset(&mut rebuilt, header.base_offset);
    set_partition_leader_epoch(&mut rebuilt, header.partition_leader_epoch);
    if header.attributes.timestamp_type() == TimestampType::LogAppendTime {
        set_log_append_time(&mut rebuilt, header.max_timestamp);
    }
    Ok(Filtered::Rewritten(rebuilt))
}

/// `offset − base offset`; decoded offsets are `base + delta` with `0 <= delta <=
/// last_offset_delta`, so this fits.
fn offset_delta(header: &BatchHeader, offset: i64) -> i32 {
    i32::try_from(offset.wrapping_sub(header.base_offset)).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use tributary_record::{Compression, DecodedRecord};

    use super::*;

    fn map(entries: &[(&str, i64)]) -> OffsetMap {
        let mut map = OffsetMap::new();
        for (key, offset) in entries {
            map.insert(key.as_bytes(), *offset);
        }
        map
    }

    #[test]
    fn the_map_keeps_the_latest_offset_and_estimates_its_size() {
        let m = map(&[("a", 5), ("b", 7), ("a", 3), ("a", 9)]);
        assert_eq!(
            (m.latest(b"a"), m.latest(b"b"), m.latest(b"c")),
            (Some(9), Some(7), None)
        );
        assert_eq!(m.len(), 2);
        assert_eq!(m.estimated_bytes(), 2 * (1 + MAP_ENTRY_OVERHEAD));
    }

    #[test]
    fn record_survival() {
        let m = map(&[("k", 10)]);
        // (key, tombstone, offset, retain tombstones, kept)
        let cases: &[(Option<&str>, bool, i64, bool, bool)] = &[
            (Some("k"), false, 5, true, false),    // superseded
            (Some("k"), false, 10, true, true),    // the latest
            (Some("k"), false, 12, true, true),    // newer than the map (beyond the range)
            (Some("other"), false, 1, true, true), // key not in the dirty part
            (Some("k"), true, 10, true, true),     // latest tombstone, horizon not passed
            (Some("k"), true, 10, false, false),   // latest tombstone, horizon passed
            (Some("k"), true, 4, true, false),     // superseded tombstone
            (None, false, 1, false, true),         // keyless: kept
            (None, true, 1, false, true),          // keyless null: kept
        ];
        for &(key, tombstone, offset, retain, kept) in cases {
            assert_eq!(
                keep_record(key.map(str::as_bytes), tombstone, offset, &m, retain),
                kept,
                "{key:?} tombstone={tombstone} offset={offset} retain={retain}"
            );
        }
    }

    #[test]
    fn delete_horizon() {
        assert_eq!(delete_horizon_ms(None, 1000), -1000);
        assert_eq!(delete_horizon_ms(Some(5000), 1000), 4000);
        assert_eq!(delete_horizon_ms(Some(i64::MIN + 5), 1000), i64::MIN);
        assert!(retains_tombstones(4001, 4000));
        assert!(!retains_tombstones(4000, 4000));
        assert!(retains_tombstones(1, delete_horizon_ms(None, 0)));
    }

    /// A batch at `base` with `(key, value)` records at deltas 0, 1, ...
    fn batch(base: i64, records: &[(&str, Option<&str>)], codec: Compression) -> Bytes {
        let mut builder = BatchBuilder::new().compression(codec).producer(42, 3, 100);
        for (i, (key, value)) in records.iter().enumerate() {
            builder.push(&Record {
                key: Some(Bytes::copy_from_slice(key.as_bytes())),
                value: value.map(|v| Bytes::copy_from_slice(v.as_bytes())),
                timestamp: 1000 + i as i64,
                headers: vec![],
            });
        }
        let mut bytes = builder.build_vec();
        set_base_offset(&mut bytes, base);
        set_partition_leader_epoch(&mut bytes, 7);
        Bytes::from(bytes)
    }

    fn rules(map: &OffsetMap, keep_header: bool) -> BatchRules<'_> {
        BatchRules {
            map,
            retain_tombstones: true,
            keep_header,
        }
    }

    fn decoded(bytes: Vec<u8>) -> (BatchHeader, Vec<DecodedRecord>) {
        let bytes = Bytes::from(bytes);
        (
            validate_batch(&bytes).unwrap(),
            decode_records(&bytes).unwrap(),
        )
    }

    #[test]
    fn a_rewritten_batch_keeps_offsets_header_fields_and_codec() {
        let long = "a value long enough that every codec makes it smaller; ".repeat(4);
        let records = [
            ("a", Some(long.as_str())),
            ("b", Some(long.as_str())),
            ("a", Some(long.as_str())),
            ("c", None),
            ("b", Some(long.as_str())),
        ];
        for codec in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let original = batch(100, &records, codec);
            let m = map(&[("a", 102), ("b", 104), ("c", 103)]);
            let Filtered::Rewritten(bytes) = filter_batch(&original, rules(&m, false)).unwrap()
            else {
                panic!("{codec}: expected a rewrite");
            };
            let before = validate_batch(&original).unwrap();
            let (header, kept) = decoded(bytes);
            let offsets: Vec<i64> = kept.iter().map(|r| r.offset).collect();
            assert_eq!(offsets, [102, 103, 104], "{codec}");
            assert_eq!(
                kept[1].value, None,
                "the tombstone stays before the horizon"
            );
            assert_eq!(kept[0].timestamp, 1002);
            assert_eq!(
                (
                    header.base_offset,
                    header.last_offset(),
                    header.partition_leader_epoch
                ),
                (100, 104, 7)
            );
            assert_eq!(
                (
                    header.producer_id,
                    header.producer_epoch,
                    header.base_sequence
                ),
                (42, 3, 100)
            );
            assert_eq!(
                header.attributes.compression().unwrap(),
                before.attributes.compression().unwrap(),
                "{codec}"
            );
            assert_eq!(header.records_count, 3);
        }
    }

    #[test]
    fn untouched_emptied_and_kept_headers() {
        let original = batch(0, &[("a", Some("1")), ("b", Some("2"))], Compression::None);
        // Nothing superseded.
        assert_eq!(
            filter_batch(&original, rules(&map(&[("a", 0)]), false)).unwrap(),
            Filtered::Unchanged
        );
        // Everything superseded: dropped, or kept empty when the header must stay.
        let later = map(&[("a", 10), ("b", 10)]);
        assert_eq!(
            filter_batch(&original, rules(&later, false)).unwrap(),
            Filtered::Dropped
        );
        let Filtered::Rewritten(bytes) = filter_batch(&original, rules(&later, true)).unwrap()
        else {
            panic!("expected an empty batch");
        };
        let (header, kept) = decoded(bytes);
        assert!(kept.is_empty());
        assert_eq!(
            (
                header.base_offset,
                header.next_offset(),
                header.records_count
            ),
            (0, 2, 0)
        );
        assert_eq!((header.producer_id, header.base_sequence), (42, 100));
        // An already empty batch goes once its header is no longer needed.
        let Filtered::Rewritten(empty) = filter_batch(&original, rules(&later, true)).unwrap()
        else {
            unreachable!()
        };
        let empty = Bytes::from(empty);
        assert_eq!(
            filter_batch(&empty, rules(&later, true)).unwrap(),
            Filtered::Unchanged
        );
        assert_eq!(
            filter_batch(&empty, rules(&later, false)).unwrap(),
            Filtered::Dropped
        );
    }

    #[test]
    fn tombstones_go_after_the_horizon() {
        let original = batch(0, &[("a", None), ("b", Some("2"))], Compression::None);
        let m = OffsetMap::new();
        let past = BatchRules {
            map: &m,
            retain_tombstones: false,
            keep_header: false,
        };
        let Filtered::Rewritten(bytes) = filter_batch(&original, past).unwrap() else {
            panic!("expected a rewrite");
        };
        let (_, kept) = decoded(bytes);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].key.as_deref(), Some(&b"b"[..]));
    }

    #[test]
    fn log_append_time_batches_keep_their_timestamp() {
        let mut bytes = batch(0, &[("a", Some("1")), ("b", Some("2"))], Compression::None).to_vec();
        set_log_append_time(&mut bytes, 77_777);
        let original = Bytes::from(bytes);
        let Filtered::Rewritten(rebuilt) =
            filter_batch(&original, rules(&map(&[("a", 5)]), false)).unwrap()
        else {
            panic!("expected a rewrite");
        };
        let (header, kept) = decoded(rebuilt);
        assert_eq!(
            header.attributes.timestamp_type(),
            TimestampType::LogAppendTime
        );
        assert_eq!(header.max_timestamp, 77_777);
        assert_eq!(kept[0].timestamp, 77_777);
    }

    #[test]
    fn corrupt_batches_are_errors() {
        let mut bytes = batch(0, &[("a", Some("1"))], Compression::None).to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        assert!(matches!(
            filter_batch(&Bytes::from(bytes), rules(&OffsetMap::new(), false)),
            Err(RecordError::CrcMismatch { .. })
        ));
    }
}
