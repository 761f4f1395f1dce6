//! The one error type of the codec.

/// Why a record batch or record could not be decoded or validated.
///
/// Decoding never panics on arbitrary input; every malformed input maps to one of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Fewer bytes than the structure being read needs.
    #[error("record batch truncated: needs {needed} bytes, only {available} available")]
    Truncated {
        /// Bytes the structure needs.
        needed: usize,
        /// Bytes that were available.
        available: usize,
    },
    /// The magic byte is not 2 (only the v2 record batch format is supported).
    #[error(
        "unsupported record batch magic {magic}: only magic 2 (the v2 record batch) is supported"
    )]
    UnsupportedMagic {
        /// The magic byte found.
        magic: i8,
    },
    /// The batch length field is impossible (smaller than the v2 header).
    #[error("invalid record batch length {length}: must be at least {minimum}")]
    InvalidLength {
        /// The length field found.
        length: i32,
        /// The smallest legal value.
        minimum: i32,
    },
    /// The buffer holds more or fewer bytes than the batch's length field says.
    #[error("record batch declares {declared} bytes but {actual} bytes were given")]
    LengthMismatch {
        /// Total size according to the length field (including the 12-byte log overhead).
        declared: usize,
        /// Size of the buffer.
        actual: usize,
    },
    /// The CRC stored in the batch does not match its content.
    #[error("record batch CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// The CRC in the header.
        stored: u32,
        /// The CRC of the bytes from attributes to the end.
        computed: u32,
    },
    /// The compression codec bits name a codec this build cannot decode (or no codec at all).
    #[error("unsupported compression codec {codec} in record batch attributes")]
    UnsupportedCompression {
        /// The value of attribute bits 0-2.
        codec: u8,
    },
    /// The records section of a compressed batch could not be decompressed: it is corrupt,
    /// not a stream of the codec the attributes name, or larger than
    /// [`crate::MAX_DECOMPRESSED_RECORDS_SIZE`].
    #[error("cannot decompress the records of the batch")]
    Decompression {
        /// What the codec reported.
        #[source]
        source: crate::CompressionError,
    },
    /// A header field is inconsistent (negative count, negative offset delta, ...).
    #[error("invalid record batch header: {reason}")]
    InvalidHeader {
        /// What is wrong.
        reason: &'static str,
    },
    /// A record inside the batch is malformed.
    #[error("invalid record {index} in batch: {reason}")]
    InvalidRecord {
        /// Position of the record in the batch (0-based).
        index: usize,
        /// What is wrong.
        reason: &'static str,
    },
}
