//! The v2 record batch header: layout, parsing, validation and in-place stamping.
//!
//! ```text
//! offset  size  field                 notes
//!      0     8  base_offset           i64, assigned by the leader on append
//!      8     4  batch_length          i32, bytes after this field (= total size - 12)
//!     12     4  partition_leader_epoch i32, stamped by the leader; NOT covered by the CRC
//!     16     1  magic                 i8, always 2
//!     17     4  crc                   u32, CRC-32 (IEEE) of bytes [21, end)
//!     21     2  attributes            i16: bits 0-2 codec, bit 3 timestamp type,
//!                                     bit 4 transactional, bit 5 control
//!     23     4  last_offset_delta     i32, last offset - base offset
//!     27     8  first_timestamp       i64
//!     35     8  max_timestamp         i64
//!     43     8  producer_id           i64, -1 when not idempotent
//!     51     2  producer_epoch        i16, -1
//!     53     4  base_sequence         i32, -1
//!     57     4  records_count         i32
//!     61     …  records
//! ```
//! All integers are big-endian. Because the CRC starts at the attributes, a leader can
//! overwrite `base_offset` and `partition_leader_epoch` without recomputing it.
//!
//! Kafka computes this CRC with CRC-32C (Castagnoli); Tributary uses CRC-32 (IEEE, via
//! crc32fast) over exactly the same bytes. Everything else is Kafka's layout.

use crate::RecordError;

/// Bytes before `batch_length` ends: base offset (8) + length (4).
pub const LOG_OVERHEAD: usize = 12;
/// Size of the v2 header, up to the first record.
pub const HEADER_SIZE: usize = 61;
/// The only supported format version.
pub const MAGIC_V2: i8 = 2;
/// Smallest legal `batch_length` (a header with no records).
pub const MIN_BATCH_LENGTH: i32 = (HEADER_SIZE - LOG_OVERHEAD) as i32;

pub(crate) const BASE_OFFSET_AT: usize = 0;
pub(crate) const LENGTH_AT: usize = 8;
pub(crate) const PARTITION_LEADER_EPOCH_AT: usize = 12;
pub(crate) const MAGIC_AT: usize = 16;
pub(crate) const CRC_AT: usize = 17;
pub(crate) const ATTRIBUTES_AT: usize = 21;
pub(crate) const LAST_OFFSET_DELTA_AT: usize = 23;
pub(crate) const FIRST_TIMESTAMP_AT: usize = 27;
pub(crate) const MAX_TIMESTAMP_AT: usize = 35;
pub(crate) const PRODUCER_ID_AT: usize = 43;
pub(crate) const PRODUCER_EPOCH_AT: usize = 51;
pub(crate) const BASE_SEQUENCE_AT: usize = 53;
pub(crate) const RECORDS_COUNT_AT: usize = 57;

/// Compression codec named by attribute bits 0-2 (see [`crate::compression`] for the framing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// 0: records stored as they are.
    #[default]
    None,
    /// 1: gzip.
    Gzip,
    /// 2: snappy.
    Snappy,
    /// 3: lz4.
    Lz4,
    /// 4: zstd.
    Zstd,
}

impl Compression {
    /// The codec for attribute bits 0-2, or an error for the unassigned values 5-7.
    pub fn from_bits(bits: u8) -> Result<Self, RecordError> {
        match bits {
            0 => Ok(Self::None),
            1 => Ok(Self::Gzip),
            2 => Ok(Self::Snappy),
            3 => Ok(Self::Lz4),
            4 => Ok(Self::Zstd),
            codec => Err(RecordError::UnsupportedCompression { codec }),
        }
    }

    /// Every codec, in attribute-bit order.
    pub const ALL: [Compression; 5] = [Self::None, Self::Gzip, Self::Snappy, Self::Lz4, Self::Zstd];

    /// The codec's name as Kafka spells it in `compression.type`: `none`, `gzip`, `snappy`,
    /// `lz4` or `zstd`.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Gzip => "gzip",
            Self::Snappy => "snappy",
            Self::Lz4 => "lz4",
            Self::Zstd => "zstd",
        }
    }

    /// The codec called `name` (see [`Compression::name`]; case-insensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|codec| codec.name().eq_ignore_ascii_case(name.trim()))
    }

    /// The attribute bits of this codec.
    pub fn bits(self) -> u8 {
        match self {
            Self::None => 0,
            Self::Gzip => 1,
            Self::Snappy => 2,
            Self::Lz4 => 3,
            Self::Zstd => 4,
        }
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Meaning of a batch's timestamps (attribute bit 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimestampType {
    /// The producer's create time.
    CreateTime,
    /// The broker's append time.
    LogAppendTime,
}

/// The batch attributes word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Attributes(pub i16);

impl Attributes {
    const COMPRESSION_MASK: i16 = 0x07;
    const TIMESTAMP_TYPE_BIT: i16 = 0x08;
    const TRANSACTIONAL_BIT: i16 = 0x10;
    const CONTROL_BIT: i16 = 0x20;

    /// The compression codec bits (0-7); see [`Compression::from_bits`].
    pub fn compression_bits(self) -> u8 {
        (self.0 & Self::COMPRESSION_MASK) as u8
    }

    /// The compression codec, or an error for an unassigned value.
    pub fn compression(self) -> Result<Compression, RecordError> {
        Compression::from_bits(self.compression_bits())
    }

    /// What the batch's timestamps mean.
    pub fn timestamp_type(self) -> TimestampType {
        if self.0 & Self::TIMESTAMP_TYPE_BIT != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    /// Whether the batch belongs to a transaction.
    pub fn is_transactional(self) -> bool {
        self.0 & Self::TRANSACTIONAL_BIT != 0
    }

    /// Whether the batch is a control batch (transaction marker).
    pub fn is_control(self) -> bool {
        self.0 & Self::CONTROL_BIT != 0
    }

    /// These attributes with the given codec.
    pub fn with_compression(self, codec: Compression) -> Self {
        Self((self.0 & !Self::COMPRESSION_MASK) | i16::from(codec.bits()))
    }

    /// These attributes with the given timestamp type.
    pub fn with_timestamp_type(self, kind: TimestampType) -> Self {
        match kind {
            TimestampType::CreateTime => Self(self.0 & !Self::TIMESTAMP_TYPE_BIT),
            TimestampType::LogAppendTime => Self(self.0 | Self::TIMESTAMP_TYPE_BIT),
        }
    }
}

/// The fixed 61-byte header of a v2 record batch, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Bytes after the length field; the whole batch is `batch_length + 12` bytes.
    pub batch_length: i32,
    /// Leader epoch of the leader that appended the batch.
    pub partition_leader_epoch: i32,
    /// Format version (2).
    pub magic: i8,
    /// Stored CRC-32 of bytes [21, end).
    pub crc: u32,
    /// Codec, timestamp type, transactional and control flags.
    pub attributes: Attributes,
    /// Last offset minus base offset.
    pub last_offset_delta: i32,
    /// Timestamp of the first record.
    pub first_timestamp: i64,
    /// Largest timestamp in the batch.
    pub max_timestamp: i64,
    /// Idempotent producer id, or -1.
    pub producer_id: i64,
    /// Producer epoch, or -1.
    pub producer_epoch: i16,
    /// Sequence number of the first record, or -1.
    pub base_sequence: i32,
    /// Number of records.
    pub records_count: i32,
}

impl BatchHeader {
    /// Decodes the header at the front of `buf` (which may hold more than one batch).
    ///
    /// Checks only what the header alone can tell: enough bytes for the header, magic 2 and
    /// a plausible length. The CRC and the records are checked by [`validate_batch`].
    pub fn parse(buf: &[u8]) -> Result<Self, RecordError> {
        if buf.len() < HEADER_SIZE {
            // Report the magic first when it is readable: a v0/v1 message set is shorter.
            if buf.len() > MAGIC_AT && buf[MAGIC_AT] as i8 != MAGIC_V2 {
                return Err(RecordError::UnsupportedMagic {
                    magic: buf[MAGIC_AT] as i8,
                });
            }
            return Err(RecordError::Truncated {
                needed: HEADER_SIZE,
                available: buf.len(),
            });
        }
        let magic = buf[MAGIC_AT] as i8;
        if magic != MAGIC_V2 {
            return Err(RecordError::UnsupportedMagic { magic });
        }
        let batch_length = read_i32(buf, LENGTH_AT);
        if batch_length < MIN_BATCH_LENGTH {
            return Err(RecordError::InvalidLength {
                length: batch_length,
                minimum: MIN_BATCH_LENGTH,
            });
        }
        Ok(Self {
            base_offset: read_i64(buf, BASE_OFFSET_AT),
            batch_length,
            partition_leader_epoch: read_i32(buf, PARTITION_LEADER_EPOCH_AT),
            magic,
            crc: read_u32(buf, CRC_AT),
            attributes: Attributes(read_i16(buf, ATTRIBUTES_AT)),
            last_offset_delta: read_i32(buf, LAST_OFFSET_DELTA_AT),
            first_timestamp: read_i64(buf, FIRST_TIMESTAMP_AT),
            max_timestamp: read_i64(buf, MAX_TIMESTAMP_AT),
            producer_id: read_i64(buf, PRODUCER_ID_AT),
            producer_epoch: read_i16(buf, PRODUCER_EPOCH_AT),
            base_sequence: read_i32(buf, BASE_SEQUENCE_AT),
            records_count: read_i32(buf, RECORDS_COUNT_AT),
        })
    }

    /// Total size of the batch in bytes, including the 12-byte log overhead.
    ///
    /// A negative `batch_length` (impossible after [`BatchHeader::parse`], possible in a
    /// hand-built header) counts as 0 rather than wrapping to a huge size.
    pub fn total_size(&self) -> usize {
        usize::try_from(self.batch_length).unwrap_or(0) + LOG_OVERHEAD
    }

    /// Offset of the last record (`base_offset + last_offset_delta`).
    ///
    /// Wraps on overflow, as Kafka's Java arithmetic does: `base_offset` is not covered by the
    /// CRC, so a header read from untrusted bytes may hold any value and this must not panic.
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .wrapping_add(i64::from(self.last_offset_delta))
    }

    /// The offset after this batch (`last_offset + 1`); wraps on overflow like
    /// [`BatchHeader::last_offset`].
    pub fn next_offset(&self) -> i64 {
        self.last_offset().wrapping_add(1)
    }
}

/// CRC-32 (IEEE) of the batch's CRC-covered bytes, from the attributes to the end.
///
/// `batch` must hold exactly one batch of at least [`HEADER_SIZE`] bytes.
///
/// # Panics
/// If `batch` is shorter than 21 bytes (there is no CRC-covered range). The decoders call it
/// only after checking the length.
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32fast::hash(&batch[ATTRIBUTES_AT..])
}

/// Checks one complete batch: header, exact length, CRC and header consistency.
///
/// `batch` must be exactly one batch. Records are not decoded; use
/// [`crate::validate_records`] for that.
pub fn validate_batch(batch: &[u8]) -> Result<BatchHeader, RecordError> {
    let header = BatchHeader::parse(batch)?;
    if header.total_size() != batch.len() {
        return Err(RecordError::LengthMismatch {
            declared: header.total_size(),
            actual: batch.len(),
        });
    }
    let computed = compute_crc(batch);
    if computed != header.crc {
        return Err(RecordError::CrcMismatch {
            stored: header.crc,
            computed,
        });
    }
    check_header_consistency(&header)?;
    Ok(header)
}

fn check_header_consistency(header: &BatchHeader) -> Result<(), RecordError> {
    header.attributes.compression()?;
    if header.records_count < 0 {
        return Err(RecordError::InvalidHeader {
            reason: "negative records_count",
        });
    }
    if header.last_offset_delta < 0 {
        return Err(RecordError::InvalidHeader {
            reason: "negative last_offset_delta",
        });
    }
    if header.records_count > 0 && header.last_offset_delta < header.records_count - 1 {
        return Err(RecordError::InvalidHeader {
            reason: "last_offset_delta is smaller than records_count - 1",
        });
    }
    // A record takes at least 7 bytes, so the count cannot exceed what the bytes can hold
    // (checked on the uncompressed size only; a compressed batch can be smaller).
    if header.attributes.compression_bits() == 0 {
        let record_bytes = header.total_size() - HEADER_SIZE;
        if header.records_count as usize > record_bytes / crate::record::MIN_RECORD_SIZE {
            return Err(RecordError::InvalidHeader {
                reason: "records_count is larger than the batch's bytes can hold",
            });
        }
    }
    Ok(())
}

/// Overwrites the base offset of the batch at the front of `batch` (not covered by the CRC).
///
/// # Panics
/// If `batch` is shorter than 8 bytes.
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    batch[BASE_OFFSET_AT..BASE_OFFSET_AT + 8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Overwrites the partition leader epoch of the batch at the front of `batch` (not covered by
/// the CRC).
///
/// # Panics
/// If `batch` is shorter than 16 bytes.
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    batch[PARTITION_LEADER_EPOCH_AT..PARTITION_LEADER_EPOCH_AT + 4]
        .copy_from_slice(&epoch.to_be_bytes());
}

/// Stamps the batch at the front of `batch` for a topic with
/// `message.timestamp.type=LogAppendTime`: sets `max_timestamp` to the broker's append time,
/// sets attribute bit 3 and recomputes the CRC (both fields are CRC-covered, unlike the base
/// offset and leader epoch). Record timestamp deltas are left alone; readers of a
/// LogAppendTime batch take every record's timestamp from `max_timestamp`.
///
/// `batch` must be exactly one batch (the CRC runs to its end).
///
/// # Panics
/// If `batch` is shorter than [`HEADER_SIZE`].
pub fn set_log_append_time(batch: &mut [u8], append_time: i64) {
    assert!(
        batch.len() >= HEADER_SIZE,
        "a batch is at least {HEADER_SIZE} bytes"
    );
    batch[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&append_time.to_be_bytes());
    let attributes = Attributes(read_i16(batch, ATTRIBUTES_AT))
        .with_timestamp_type(TimestampType::LogAppendTime);
    batch[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.0.to_be_bytes());
    let crc = compute_crc(batch);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Rewrites the idempotent-producer fields of a batch (producer id, epoch, base sequence) and
/// its CRC, which covers them: for a producer that stamps a batch again under a new producer
/// id before resending it.
///
/// # Panics
/// If `batch` is shorter than a header.
pub fn set_producer(batch: &mut [u8], producer_id: i64, producer_epoch: i16, base_sequence: i32) {
    assert!(
        batch.len() >= HEADER_SIZE,
        "a batch is at least {HEADER_SIZE} bytes"
    );
    batch[PRODUCER_ID_AT..PRODUCER_ID_AT + 8].copy_from_slice(&producer_id.to_be_bytes());
    batch[PRODUCER_EPOCH_AT..PRODUCER_EPOCH_AT + 2].copy_from_slice(&producer_epoch.to_be_bytes());
    batch[BASE_SEQUENCE_AT..BASE_SEQUENCE_AT + 4].copy_from_slice(&base_sequence.to_be_bytes());
    let crc = compute_crc(batch);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
}

pub(crate) fn read_i16(buf: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([buf[at], buf[at + 1]])
}

pub(crate) fn read_i32(buf: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

pub(crate) fn read_u32(buf: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

pub(crate) fn read_i64(buf: &[u8], at: usize) -> i64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&buf[at..at + 8]);
    i64::from_be_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BatchBuilder, Record};

    #[test]
    fn total_size_of_a_hand_built_negative_length_does_not_wrap() {
        let mut header = BatchHeader::parse(&BatchBuilder::new().build_vec()).unwrap();
        header.batch_length = -1;
        assert_eq!(header.total_size(), LOG_OVERHEAD);
    }

    #[test]
    fn restamping_the_producer_keeps_the_crc_valid() {
        let mut builder = BatchBuilder::new().producer(7, 0, 40);
        builder.push(&Record::default());
        let mut batch = builder.build_vec();
        set_producer(&mut batch, 9000, 2, 0);
        let header = validate_batch(&batch).unwrap();
        assert_eq!(
            (
                header.producer_id,
                header.producer_epoch,
                header.base_sequence
            ),
            (9000, 2, 0)
        );
    }

    #[test]
    fn log_append_time_stamp_keeps_the_crc_valid() {
        let mut builder = BatchBuilder::new();
        builder.push(&Record {
            timestamp: 5,
            ..Record::default()
        });
        let mut batch = builder.build_vec();
        set_log_append_time(&mut batch, 1_700_000_000_000);
        let header = validate_batch(&batch).unwrap();
        assert_eq!(header.max_timestamp, 1_700_000_000_000);
        assert_eq!(header.first_timestamp, 5);
        assert_eq!(
            header.attributes.timestamp_type(),
            TimestampType::LogAppendTime
        );
    }

    #[test]
    fn short_and_wrong_magic_headers_are_errors() {
        let batch = BatchBuilder::new().build_vec();
        for len in 0..HEADER_SIZE {
            assert_eq!(
                BatchHeader::parse(&batch[..len]),
                Err(RecordError::Truncated {
                    needed: HEADER_SIZE,
                    available: len
                })
            );
        }
        let mut v1 = batch.clone();
        v1[MAGIC_AT] = 1;
        assert_eq!(
            BatchHeader::parse(&v1[..20]),
            Err(RecordError::UnsupportedMagic { magic: 1 })
        );
        let mut short = batch;
        short[LENGTH_AT..LENGTH_AT + 4].copy_from_slice(&48i32.to_be_bytes());
        assert_eq!(
            BatchHeader::parse(&short),
            Err(RecordError::InvalidLength {
                length: 48,
                minimum: MIN_BATCH_LENGTH
            })
        );
    }
}
