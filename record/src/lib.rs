//! The record batch codec shared by the Tributary broker and clients.
//!
//! Batches follow Kafka's v2 record batch layout field for field (see `docs/record-format.md`),
//! with one deliberate difference: the CRC is CRC-32 (IEEE, computed with crc32fast) rather
//! than CRC-32C. The CRC covers the bytes from the attributes to the end, so a leader stamps the
//! base offset and its leader epoch in place without recomputing it.
//!
//! * [`BatchBuilder`] encodes records into a batch, compressed if asked (producers, and the
//!   broker for structured records).
//! * [`BatchHeader::parse`], [`validate_batch`] and [`validate_records`] check untrusted bytes
//!   and never panic: every problem is a [`RecordError`].
//! * [`BatchIter`] walks concatenated batches; [`decode_records`] decodes one batch,
//!   decompressing its records first when the attributes name a codec ([`compression`]:
//!   gzip, snappy, lz4, zstd, with Kafka's framing; bounded by
//!   [`MAX_DECOMPRESSED_RECORDS_SIZE`]).
//! * [`set_base_offset`] and [`set_partition_leader_epoch`] stamp a batch in place (outside
//!   the CRC); [`set_log_append_time`] stamps the max timestamp and recomputes the CRC.

mod batch;
mod builder;
pub mod compression;
mod error;
mod iter;
mod record;
pub mod varint;

pub use batch::{
    Attributes, BatchHeader, Compression, HEADER_SIZE, LOG_OVERHEAD, MAGIC_V2, MIN_BATCH_LENGTH,
    TimestampType, compute_crc, set_base_offset, set_log_append_time, set_partition_leader_epoch,
    set_producer, validate_batch,
};
pub use builder::BatchBuilder;
pub use compression::{CompressionError, MAX_DECOMPRESSED_RECORDS_SIZE};
pub use error::RecordError;
pub use iter::BatchIter;
pub use record::{
    DecodedRecord, Header, MIN_RECORD_SIZE, Record, decode_records, validate_records,
};
