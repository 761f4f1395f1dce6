//! Records inside an uncompressed v2 batch.
//!
//! ```text
//! length            varint  bytes of the record after this field
//! attributes        int8    unused, 0
//! timestamp_delta   varlong timestamp - batch first_timestamp
//! offset_delta      varint  offset - batch base_offset
//! key_length        varint  -1 = null key
//! key               bytes
//! value_length      varint  -1 = null value (a tombstone)
//! value             bytes
//! header_count      varint
//! headers           header_count × (key_length varint, UTF-8 key, value_length varint (-1 = null), value)
//! ```

use bytes::Bytes;

use crate::RecordError;
use crate::batch::{BatchHeader, HEADER_SIZE};
use crate::varint::{VarintError, get_varint, get_varlong, put_varint, put_varlong, varint_len, varlong_len};

/// Smallest possible encoded record: seven one-byte fields.
pub const MIN_RECORD_SIZE: usize = 7;

/// One record header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Header key (UTF-8).
    pub key: String,
    /// Header value; `None` is null.
    pub value: Option<Bytes>,
}

/// A record to be written: the producer's view.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// Record key; `None` is null.
    pub key: Option<Bytes>,
    /// Record value; `None` is null (a tombstone).
    pub value: Option<Bytes>,
    /// Create time in ms since the epoch.
    pub timestamp: i64,
    /// Headers, in order.
    pub headers: Vec<Header>,
}

/// A record read back from a batch: the consumer's view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedRecord {
    /// Absolute offset (`base_offset + offset_delta`).
    pub offset: i64,
    /// Absolute timestamp (`first_timestamp + timestamp_delta`, or the batch's max timestamp for
    /// LogAppendTime batches).
    pub timestamp: i64,
    /// Record key; `None` is null.
    pub key: Option<Bytes>,
    /// Record value; `None` is null.
    pub value: Option<Bytes>,
    /// Headers, in order.
    pub headers: Vec<Header>,
}

fn opt_len(field: &Option<Bytes>) -> (i32, usize) {
    match field {
        None => (-1, 0),
        Some(b) => (b.len() as i32, b.len()),
    }
}

/// Encoded size of the record body (everything after the length varint).
pub(crate) fn body_len(record: &Record, offset_delta: i32, timestamp_delta: i64) -> usize {
    let (key_len, key_bytes) = opt_len(&record.key);
    let (value_len, value_bytes) = opt_len(&record.value);
    let mut size = 1 // attributes
        + varlong_len(timestamp_delta)
        + varint_len(offset_delta)
        + varint_len(key_len)
        + key_bytes
        + varint_len(value_len)
        + value_bytes
        + varint_len(record.headers.len() as i32);
    for header in &record.headers {
        let (hv_len, hv_bytes) = opt_len(&header.value);
        size += varint_len(header.key.len() as i32) + header.key.len() + varint_len(hv_len) + hv_bytes;
    }
    size
}

/// Appends one record (length prefix included) to `out`.
pub(crate) fn encode(out: &mut Vec<u8>, record: &Record, offset_delta: i32, timestamp_delta: i64) {
    let body = body_len(record, offset_delta, timestamp_delta);
    put_varint(out, body as i32);
    out.push(0); // attributes
    put_varlong(out, timestamp_delta);
    put_varint(out, offset_delta);
    put_opt(out, &record.key);
    put_opt(out, &record.value);
    put_varint(out, record.headers.len() as i32);
    for header in &record.headers {
        put_varint(out, header.key.len() as i32);
        out.extend_from_slice(header.key.as_bytes());
        put_opt(out, &header.value);
    }
}

fn put_opt(out: &mut Vec<u8>, field: &Option<Bytes>) {
    match field {
        None => put_varint(out, -1),
        Some(b) => {
            put_varint(out, b.len() as i32);
            out.extend_from_slice(b);
        }
    }
}

/// Decodes every record of one complete, uncompressed batch.
///
/// `batch` must be exactly one batch (as returned by a fetch or [`crate::BatchIter`]); the CRC
/// is checked here too, so a caller can hand it untrusted bytes. Key, value and header values
/// are zero-copy slices of `batch`.
pub fn decode_records(batch: &Bytes) -> Result<Vec<DecodedRecord>, RecordError> {
    let header = crate::batch::validate_batch(batch)?;
    let mut records = Vec::with_capacity(header.records_count as usize);
    walk_records(batch, &header, |record| records.push(record))?;
    Ok(records)
}

/// Checks that the records of one complete, uncompressed batch are well formed: each record
/// parses and fills exactly its length, offset deltas run 0, 1, 2, ... and the header's
/// `records_count` and `last_offset_delta` agree with them.
///
/// Compressed batches are refused with [`RecordError::UnsupportedCompression`] (this build has
/// no codecs yet).
pub fn validate_records(batch: &Bytes) -> Result<BatchHeader, RecordError> {
    let header = crate::batch::validate_batch(batch)?;
    walk_records(batch, &header, |_| ())?;
    Ok(header)
}

fn walk_records(
    batch: &Bytes,
    header: &BatchHeader,
    mut visit: impl FnMut(DecodedRecord),
) -> Result<(), RecordError> {
    let codec = header.attributes.compression_bits();
    if codec != 0 {
        return Err(RecordError::UnsupportedCompression { codec });
    }
    let log_append_time =
        header.attributes.timestamp_type() == crate::batch::TimestampType::LogAppendTime;
    let mut pos = HEADER_SIZE;
    let count = header.records_count as usize;
    for index in 0..count {
        let mut reader = Reader { buf: batch, pos, index };
        let length = reader.varint("record length")?;
        if length < (MIN_RECORD_SIZE - 1) as i32 {
            return Err(RecordError::InvalidRecord { index, reason: "record length too small" });
        }
        let body_start = reader.pos;
        let end = body_start
            .checked_add(length as usize)
            .filter(|&end| end <= batch.len())
            .ok_or(RecordError::InvalidRecord { index, reason: "record extends past the batch" })?;
        let _attributes = reader.byte()?;
        let timestamp_delta = reader.varlong("timestamp delta")?;
        let offset_delta = reader.varint("offset delta")?;
        if offset_delta as usize != index {
            return Err(RecordError::InvalidRecord { index, reason: "offset delta is not sequential" });
        }
        let key = reader.optional_bytes(end, "key")?;
        let value = reader.optional_bytes(end, "value")?;
        let header_count = reader.varint("header count")?;
        if header_count < 0 {
            return Err(RecordError::InvalidRecord { index, reason: "negative header count" });
        }
        let mut headers = Vec::new();
        for _ in 0..header_count {
            let key_bytes = reader
                .optional_bytes(end, "header key")?
                .ok_or(RecordError::InvalidRecord { index, reason: "null header key" })?;
            let key = String::from_utf8(key_bytes.to_vec())
                .map_err(|_| RecordError::InvalidRecord { index, reason: "header key is not UTF-8" })?;
            let value = reader.optional_bytes(end, "header value")?;
            headers.push(Header { key, value });
        }
        if reader.pos != end {
            return Err(RecordError::InvalidRecord { index, reason: "record length does not match its fields" });
        }
        pos = end;
        let timestamp = if log_append_time {
            header.max_timestamp
        } else {
            header.first_timestamp.wrapping_add(timestamp_delta)
        };
        visit(DecodedRecord {
            offset: header.base_offset + i64::from(offset_delta),
            timestamp,
            key,
            value,
            headers,
        });
    }
    if pos != batch.len() {
        return Err(RecordError::InvalidHeader { reason: "bytes left over after records_count records" });
    }
    if count > 0 && header.last_offset_delta != (count - 1) as i32 {
        return Err(RecordError::InvalidHeader { reason: "last_offset_delta does not match the records" });
    }
    Ok(())
}

struct Reader<'a> {
    buf: &'a Bytes,
    pos: usize,
    index: usize,
}

impl Reader<'_> {
    fn fail(&self, reason: &'static str) -> RecordError {
        RecordError::InvalidRecord { index: self.index, reason }
    }

    fn byte(&mut self) -> Result<u8, RecordError> {
        let byte = *self.buf.get(self.pos).ok_or_else(|| self.fail("record truncated"))?;
        self.pos += 1;
        Ok(byte)
    }

    fn varint(&mut self, what: &'static str) -> Result<i32, RecordError> {
        let (value, used) = get_varint(&self.buf[self.pos..]).map_err(|e| self.varint_error(e, what))?;
        self.pos += used;
        Ok(value)
    }

    fn varlong(&mut self, what: &'static str) -> Result<i64, RecordError> {
        let (value, used) = get_varlong(&self.buf[self.pos..]).map_err(|e| self.varint_error(e, what))?;
        self.pos += used;
        Ok(value)
    }

    fn varint_error(&self, error: VarintError, what: &'static str) -> RecordError {
        let _ = what;
        match error {
            VarintError::Truncated => self.fail("varint truncated"),
            VarintError::TooLong => self.fail("varint too long"),
        }
    }

    fn optional_bytes(&mut self, end: usize, what: &'static str) -> Result<Option<Bytes>, RecordError> {
        let len = self.varint(what)?;
        if len == -1 {
            return Ok(None);
        }
        if len < -1 {
            return Err(self.fail("negative length"));
        }
        let stop = self.pos + len as usize;
        if stop > end {
            return Err(self.fail("field extends past the record"));
        }
        let slice = self.buf.slice(self.pos..stop);
        self.pos = stop;
        Ok(Some(slice))
    }
}
