//! Building v2 record batches, uncompressed or with a codec.

use bytes::Bytes;

use crate::batch::{
    ATTRIBUTES_AT, Attributes, BASE_SEQUENCE_AT, CRC_AT, FIRST_TIMESTAMP_AT, HEADER_SIZE,
    LAST_OFFSET_DELTA_AT, LENGTH_AT, LOG_OVERHEAD, MAGIC_AT, MAGIC_V2, MAX_TIMESTAMP_AT,
    PARTITION_LEADER_EPOCH_AT, PRODUCER_EPOCH_AT, PRODUCER_ID_AT, RECORDS_COUNT_AT, TimestampType,
    compute_crc,
};
use crate::record::{self, Record};
use crate::{Compression, MAX_DECOMPRESSED_RECORDS_SIZE};

/// Accumulates records and produces one v2 batch, its records section compressed with the
/// codec set by [`BatchBuilder::compression`] (none by default).
///
/// The base offset is written as 0 and the leader epoch as -1: the leader assigns both on
/// append. Records get offset deltas 0, 1, 2, ... in push order, and timestamp deltas relative
/// to the first record's timestamp. The broker's log cleaner instead rebuilds batches that
/// keep their records' original offsets: [`BatchBuilder::push_at`] takes an explicit,
/// increasing offset delta and [`BatchBuilder::last_offset_delta`] keeps the original batch's
/// last offset delta, so the rebuilt batch spans exactly the offsets of the original.
///
/// Records are encoded uncompressed as they are pushed and compressed once, as one stream, by
/// [`BatchBuilder::build`]. A compressed batch is never larger than the uncompressed one: when
/// the codec does not make the records smaller (or fails, or the records exceed
/// [`MAX_DECOMPRESSED_RECORDS_SIZE`], which readers would refuse), the batch is built
/// uncompressed, codec bits 0. So [`BatchBuilder::size_in_bytes`] is an upper bound of the
/// built size.
#[derive(Debug)]
pub struct BatchBuilder {
    buf: Vec<u8>,
    count: i32,
    first_timestamp: i64,
    max_timestamp: i64,
    attributes: Attributes,
    compression: Compression,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    /// Offset delta of the last pushed record (-1 before the first).
    last_pushed_delta: i32,
    /// Smallest `last_offset_delta` the header gets (set by [`BatchBuilder::last_offset_delta`]).
    min_last_offset_delta: i32,
}

impl Default for BatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::with_capacity(1024)
    }

    /// An empty builder whose buffer starts with room for `bytes` bytes.
    pub fn with_capacity(bytes: usize) -> Self {
        let mut buf = Vec::with_capacity(bytes.max(HEADER_SIZE));
        buf.resize(HEADER_SIZE, 0);
        Self {
            buf,
            count: 0,
            first_timestamp: -1,
            max_timestamp: -1,
            attributes: Attributes::default(),
            compression: Compression::None,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            last_pushed_delta: -1,
            min_last_offset_delta: 0,
        }
    }

    /// Marks the batch as written by an idempotent producer.
    pub fn producer(mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Self {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
        self
    }

    /// Sets the timestamp type attribute.
    pub fn timestamp_type(mut self, kind: TimestampType) -> Self {
        self.attributes = self.attributes.with_timestamp_type(kind);
        self
    }

    /// Sets the codec for the records section (see the type's docs).
    pub fn compression(mut self, codec: Compression) -> Self {
        self.compression = codec;
        self
    }

    /// Makes the header's `last_offset_delta` at least `delta` (a compacted batch keeps the
    /// original batch's value even when its last records were removed, so the batch still
    /// ends at the same offset). Without it the value is the last record's offset delta.
    pub fn last_offset_delta(mut self, delta: i32) -> Self {
        self.min_last_offset_delta = delta.max(0);
        self
    }

    /// Appends a record with offset delta `count` (the next in sequence).
    pub fn push(&mut self, record: &Record) {
        self.push_at(record, self.last_pushed_delta + 1);
    }

    /// Appends a record with the given offset delta, which must be larger than the previous
    /// record's: a compacted batch keeps its surviving records' original offsets, leaving gaps
    /// (`decode_records` accepts them; the producer-side `validate_records` does not).
    ///
    /// # Panics
    /// If `offset_delta` is not larger than the previous record's (a caller bug).
    pub fn push_at(&mut self, record: &Record, offset_delta: i32) {
        assert!(
            offset_delta > self.last_pushed_delta,
            "offset deltas must increase: {offset_delta} after {}",
            self.last_pushed_delta
        );
        if self.count == 0 {
            self.first_timestamp = record.timestamp;
            self.max_timestamp = record.timestamp;
        }
        self.max_timestamp = self.max_timestamp.max(record.timestamp);
        let timestamp_delta = record.timestamp.wrapping_sub(self.first_timestamp);
        record::encode(&mut self.buf, record, offset_delta, timestamp_delta);
        self.count += 1;
        self.last_pushed_delta = offset_delta;
    }

    /// Number of records pushed so far.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether no record was pushed.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Size the finished batch will have, in bytes: exact without compression, an upper bound
    /// with it.
    pub fn size_in_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Bytes a batch would have after pushing `record` (exact without compression, an upper
    /// bound with it).
    pub fn size_with(&self, record: &Record) -> usize {
        let timestamp_delta = if self.count == 0 {
            0
        } else {
            record.timestamp.wrapping_sub(self.first_timestamp)
        };
        let body = record::body_len(record, self.last_pushed_delta + 1, timestamp_delta);
        self.buf.len() + crate::varint::varint_len(body as i32) + body
    }

    /// Compresses the records (if a codec is set), finishes the header (length, counts,
    /// timestamps, attributes, CRC) and returns the batch bytes.
    pub fn build(self) -> Bytes {
        Bytes::from(self.build_vec())
    }

    /// Like [`BatchBuilder::build`], returning the `Vec` itself.
    pub fn build_vec(mut self) -> Vec<u8> {
        self.compress_records();
        let buf = &mut self.buf;
        let batch_length = (buf.len() - LOG_OVERHEAD) as i32;
        let last_offset_delta = self.last_pushed_delta.max(self.min_last_offset_delta);
        buf[0..8].copy_from_slice(&0i64.to_be_bytes());
        buf[LENGTH_AT..LENGTH_AT + 4].copy_from_slice(&batch_length.to_be_bytes());
        buf[PARTITION_LEADER_EPOCH_AT..PARTITION_LEADER_EPOCH_AT + 4]
            .copy_from_slice(&(-1i32).to_be_bytes());
        buf[MAGIC_AT] = MAGIC_V2 as u8;
        buf[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&self.attributes.0.to_be_bytes());
        buf[LAST_OFFSET_DELTA_AT..LAST_OFFSET_DELTA_AT + 4]
            .copy_from_slice(&last_offset_delta.to_be_bytes());
        buf[FIRST_TIMESTAMP_AT..FIRST_TIMESTAMP_AT + 8]
            .copy_from_slice(&self.first_timestamp.to_be_bytes());
        buf[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8]
            .copy_from_slice(&self.max_timestamp.to_be_bytes());
        buf[PRODUCER_ID_AT..PRODUCER_ID_AT + 8].copy_from_slice(&self.producer_id.to_be_bytes());
        buf[PRODUCER_EPOCH_AT..PRODUCER_EPOCH_AT + 2]
            .copy_from_slice(&self.producer_epoch.to_be_bytes());
        buf[BASE_SEQUENCE_AT..BASE_SEQUENCE_AT + 4]
            .copy_from_slice(&self.base_sequence.to_be_bytes());
        buf[RECORDS_COUNT_AT..RECORDS_COUNT_AT + 4].copy_from_slice(&self.count.to_be_bytes());
        let crc = compute_crc(buf);
        buf[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        self.buf
    }

    /// Replaces the records section by its compressed form and sets the codec bits, unless
    /// that would not help (see the type's docs).
    fn compress_records(&mut self) {
        let records = &self.buf[HEADER_SIZE..];
        if self.compression == Compression::None || records.len() > MAX_DECOMPRESSED_RECORDS_SIZE {
            return;
        }
        match crate::compression::compress(self.compression, records) {
            Ok(compressed) if compressed.len() < records.len() => {
                self.buf.truncate(HEADER_SIZE);
                self.buf.extend_from_slice(&compressed);
                self.attributes = self.attributes.with_compression(self.compression);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::{Record, decode_records, validate_records};

    fn records(count: usize) -> Vec<Record> {
        (0..count)
            .map(|i| Record {
                key: Some(Bytes::from(format!("key-{i}"))),
                value: Some(Bytes::from(format!("value {i} of a compressible batch"))),
                timestamp: 1_700_000_000_000 + i as i64,
                headers: Vec::new(),
            })
            .collect()
    }

    #[test]
    fn compressed_batches_decode_to_the_same_records() {
        let records = records(200);
        let mut plain = BatchBuilder::new();
        for record in &records {
            plain.push(record);
        }
        let upper_bound = plain.size_in_bytes();
        let plain = decode_records(&plain.build()).unwrap();
        for codec in Compression::ALL {
            let mut builder = BatchBuilder::new().compression(codec);
            for record in &records {
                builder.push(record);
            }
            let batch = builder.build();
            let header = validate_records(&batch).unwrap();
            assert_eq!(header.attributes.compression(), Ok(codec));
            assert_eq!(header.records_count, 200);
            assert!(batch.len() <= upper_bound);
            if codec != Compression::None {
                assert!(batch.len() < upper_bound / 2, "{codec}: {}", batch.len());
            }
            assert_eq!(decode_records(&batch).unwrap(), plain, "{codec}");
        }
    }

    #[test]
    fn incompressible_records_stay_uncompressed() {
        // 7 bytes of records: every codec's framing alone is larger.
        let mut builder = BatchBuilder::new().compression(Compression::Zstd);
        builder.push(&Record::default());
        let batch = builder.build();
        let header = validate_records(&batch).unwrap();
        assert_eq!(header.attributes.compression(), Ok(Compression::None));
        assert_eq!(batch.len(), HEADER_SIZE + 7);
    }

    #[test]
    fn an_empty_compressed_batch_is_valid() {
        for codec in Compression::ALL {
            let batch = BatchBuilder::new().compression(codec).build();
            assert_eq!(decode_records(&batch).unwrap(), vec![], "{codec}");
        }
    }
}
