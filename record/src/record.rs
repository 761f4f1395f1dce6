//! Records inside a v2 batch (after decompressing its records section, if it is compressed).
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

use crate::batch::{BatchHeader, Compression, HEADER_SIZE};
use crate::varint::{
    VarintError, get_varint, get_varlong, put_varint, put_varlong, varint_len, varlong_len,
};
use crate::{MAX_DECOMPRESSED_RECORDS_SIZE, RecordError};

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
        size +=
            varint_len(header.key.len() as i32) + header.key.len() + varint_len(hv_len) + hv_bytes;
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

/// Decodes every record of one complete batch, decompressing the records section first when
/// the attributes name a codec.
///
/// `batch` must be exactly one batch (as returned by a fetch or [`crate::BatchIter`]); the CRC
/// is checked here too, so a caller can hand it untrusted bytes. Key, value and header values
/// are zero-copy slices of `batch` (of the decompressed records for a compressed batch).
pub fn decode_records(batch: &Bytes) -> Result<Vec<DecodedRecord>, RecordError> {
    let header = crate::batch::validate_batch(batch)?;
    let records = records_section(batch, &header)?;
    // records_section has bounded the count by the (decompressed) bytes, 7 bytes a record, so
    // this reserves at most ~16 bytes of DecodedRecord per record byte: a 61-byte batch
    // claiming i32::MAX records must not reserve ~240 GB.
    let mut decoded = Vec::with_capacity(header.records_count as usize);
    walk_records(&records, &header, OffsetDeltas::Increasing, |record| {
        decoded.push(record)
    })?;
    Ok(decoded)
}

/// Checks that the records of one complete batch are well formed: each record parses and
/// fills exactly its length, offset deltas run 0, 1, 2, ... and the header's `records_count`
/// and `last_offset_delta` agree with them. This is the rule for batches a producer sends;
/// [`decode_records`] also accepts the gaps a compacted batch has. A compressed batch is decompressed first (at most
/// [`MAX_DECOMPRESSED_RECORDS_SIZE`] bytes); a stream that does not decompress is
/// [`RecordError::Decompression`].
pub fn validate_records(batch: &Bytes) -> Result<BatchHeader, RecordError> {
    let header = crate::batch::validate_batch(batch)?;
    let records = records_section(batch, &header)?;
    walk_records(&records, &header, OffsetDeltas::Sequential, |_| ())?;
    Ok(header)
}

/// The records of a batch that passed `validate_batch`: the bytes after the header, or what
/// they decompress to. Also bounds `records_count` by those bytes (7 bytes a record), which
/// `validate_batch` can do only for uncompressed batches.
fn records_section(batch: &Bytes, header: &BatchHeader) -> Result<Bytes, RecordError> {
    let section = batch.slice(HEADER_SIZE..);
    let codec = header.attributes.compression()?;
    if codec == Compression::None {
        return Ok(section);
    }
    let too_many = |bytes: usize| header.records_count as usize > bytes / MIN_RECORD_SIZE;
    // Cheap refusal before decompressing anything.
    if too_many(MAX_DECOMPRESSED_RECORDS_SIZE) {
        return Err(RecordError::InvalidHeader {
            reason: "records_count is larger than a compressed batch can hold",
        });
    }
    let records = crate::compression::decompress(codec, &section, MAX_DECOMPRESSED_RECORDS_SIZE)
        .map_err(|source| RecordError::Decompression { source })?;
    if too_many(records.len()) {
        return Err(RecordError::InvalidHeader {
            reason: "records_count is larger than the decompressed records can hold",
        });
    }
    Ok(Bytes::from(records))
}

/// Which offset deltas a batch may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OffsetDeltas {
    /// 0, 1, 2, ... and `last_offset_delta = records_count - 1`: a batch as produced.
    Sequential,
    /// Strictly increasing from ≥ 0, the last ≤ `last_offset_delta`: a batch as stored, which
    /// the log cleaner may have compacted (records removed, offsets of the others kept).
    Increasing,
}

/// Walks the `records_count` records of `records` (a batch's records section, decompressed).
fn walk_records(
    records: &Bytes,
    header: &BatchHeader,
    deltas: OffsetDeltas,
    mut visit: impl FnMut(DecodedRecord),
) -> Result<(), RecordError> {
    let log_append_time =
        header.attributes.timestamp_type() == crate::batch::TimestampType::LogAppendTime;
    let mut pos = 0;
    let count = header.records_count as usize;
    let mut previous_delta = -1i32;
    for index in 0..count {
        // The length prefix may run to the end of the batch; every later field must stay
        // inside the record it declares.
        let mut reader = Reader {
            buf: records,
            pos,
            end: records.len(),
            index,
        };
        let length = reader.varint()?;
        if length < (MIN_RECORD_SIZE - 1) as i32 {
            return Err(RecordError::InvalidRecord {
                index,
                reason: "record length too small",
            });
        }
        let end = reader
            .pos
            .checked_add(length as usize)
            .filter(|&end| end <= records.len())
            .ok_or(RecordError::InvalidRecord {
                index,
                reason: "record extends past the batch",
            })?;
        reader.end = end;
        let _attributes = reader.byte()?;
        let timestamp_delta = reader.varlong()?;
        let offset_delta = reader.varint()?;
        match deltas {
            OffsetDeltas::Sequential if usize::try_from(offset_delta).ok() != Some(index) => {
                return Err(RecordError::InvalidRecord {
                    index,
                    reason: "offset delta is not sequential",
                });
            }
            OffsetDeltas::Increasing
                if offset_delta <= previous_delta || offset_delta > header.last_offset_delta =>
            {
                return Err(RecordError::InvalidRecord {
                    index,
                    reason: "offset delta does not increase within last_offset_delta",
                });
            }
            _ => {}
        }
        previous_delta = offset_delta;
        let key = reader.optional_bytes()?;
        let value = reader.optional_bytes()?;
        let header_count = reader.varint()?;
        if header_count < 0 {
            return Err(RecordError::InvalidRecord {
                index,
                reason: "negative header count",
            });
        }
        // No capacity from the untrusted count: a header takes at least 2 bytes, and the
        // loop stops at the first one that does not fit.
        let mut headers = Vec::new();
        for _ in 0..header_count {
            let key_bytes = reader.optional_bytes()?.ok_or(RecordError::InvalidRecord {
                index,
                reason: "null header key",
            })?;
            let key =
                String::from_utf8(key_bytes.to_vec()).map_err(|_| RecordError::InvalidRecord {
                    index,
                    reason: "header key is not UTF-8",
                })?;
            let value = reader.optional_bytes()?;
            headers.push(Header { key, value });
        }
        if reader.pos != end {
            return Err(RecordError::InvalidRecord {
                index,
                reason: "record length does not match its fields",
            });
        }
        pos = end;
        let timestamp = if log_append_time {
            header.max_timestamp
        } else {
            header.first_timestamp.wrapping_add(timestamp_delta)
        };
        visit(DecodedRecord {
            // base_offset is not CRC-covered: any value is possible, so wrap rather than panic.
            offset: header.base_offset.wrapping_add(i64::from(offset_delta)),
            timestamp,
            key,
            value,
            headers,
        });
    }
    if pos != records.len() {
        return Err(RecordError::InvalidHeader {
            reason: "bytes left over after records_count records",
        });
    }
    if deltas == OffsetDeltas::Sequential
        && count > 0
        && header.last_offset_delta != (count - 1) as i32
    {
        return Err(RecordError::InvalidHeader {
            reason: "last_offset_delta does not match the records",
        });
    }
    Ok(())
}

/// A cursor over one record.
///
/// Invariant: `pos <= end <= buf.len()`; every read stays below `end`.
struct Reader<'a> {
    buf: &'a Bytes,
    pos: usize,
    end: usize,
    index: usize,
}

impl Reader<'_> {
    fn fail(&self, reason: &'static str) -> RecordError {
        RecordError::InvalidRecord {
            index: self.index,
            reason,
        }
    }

    fn rest(&self) -> &[u8] {
        self.buf.get(self.pos..self.end).unwrap_or(&[])
    }

    fn byte(&mut self) -> Result<u8, RecordError> {
        let byte = *self
            .rest()
            .first()
            .ok_or_else(|| self.fail("record truncated"))?;
        self.pos += 1;
        Ok(byte)
    }

    fn varint(&mut self) -> Result<i32, RecordError> {
        let (value, used) = get_varint(self.rest()).map_err(|e| self.varint_error(e))?;
        self.pos += used;
        Ok(value)
    }

    fn varlong(&mut self) -> Result<i64, RecordError> {
        let (value, used) = get_varlong(self.rest()).map_err(|e| self.varint_error(e))?;
        self.pos += used;
        Ok(value)
    }

    fn varint_error(&self, error: VarintError) -> RecordError {
        match error {
            VarintError::Truncated => self.fail("varint truncated"),
            VarintError::TooLong => self.fail("varint too long"),
        }
    }

    fn optional_bytes(&mut self) -> Result<Option<Bytes>, RecordError> {
        let len = self.varint()?;
        if len == -1 {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| self.fail("negative length"))?;
        let stop = self
            .pos
            .checked_add(len)
            .filter(|&stop| stop <= self.end)
            .ok_or_else(|| self.fail("field extends past the record"))?;
        let slice = self.buf.slice(self.pos..stop);
        self.pos = stop;
        Ok(Some(slice))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{
        ATTRIBUTES_AT, CRC_AT, LAST_OFFSET_DELTA_AT, RECORDS_COUNT_AT, compute_crc,
    };
    use crate::{BatchBuilder, set_base_offset};

    fn one_record_batch() -> Vec<u8> {
        let mut builder = BatchBuilder::new();
        builder.push(&Record {
            value: Some(Bytes::from_static(b"hello")),
            ..Record::default()
        });
        builder.build_vec()
    }

    fn reseal(batch: &mut [u8]) {
        let crc = compute_crc(batch);
        batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    }

    #[test]
    fn regression_base_offset_near_i64_max_does_not_panic() {
        // base_offset is outside the CRC; `base_offset + offset_delta` used to overflow (a
        // panic in debug builds) on the second record.
        let mut builder = BatchBuilder::new();
        builder.push(&Record::default());
        builder.push(&Record::default());
        let mut batch = builder.build_vec();
        set_base_offset(&mut batch, i64::MAX);
        let records = decode_records(&Bytes::from(batch)).unwrap();
        let offsets: Vec<i64> = records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, [i64::MAX, i64::MIN]);
    }

    #[test]
    fn regression_compressed_batch_with_huge_count_does_not_allocate() {
        // 61-byte gzip batch, valid CRC, claiming i32::MAX records: used to reserve
        // i32::MAX DecodedRecords (~240 GB) before noticing the codec.
        let mut batch = BatchBuilder::new().build_vec();
        batch[ATTRIBUTES_AT + 1] = 1;
        batch[RECORDS_COUNT_AT..RECORDS_COUNT_AT + 4].copy_from_slice(&i32::MAX.to_be_bytes());
        batch[LAST_OFFSET_DELTA_AT..LAST_OFFSET_DELTA_AT + 4]
            .copy_from_slice(&(i32::MAX - 1).to_be_bytes());
        reseal(&mut batch);
        assert_eq!(
            decode_records(&Bytes::from(batch)),
            Err(RecordError::InvalidHeader {
                reason: "records_count is larger than a compressed batch can hold"
            })
        );
    }

    /// A batch of `count` records compressed with `codec`, whose count is then raised to
    /// `claimed` (CRC resealed).
    fn compressed_batch_claiming(codec: Compression, count: i32, claimed: i32) -> Vec<u8> {
        let mut builder = BatchBuilder::new().compression(codec);
        for _ in 0..count {
            builder.push(&Record {
                value: Some(Bytes::from_static(b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")),
                ..Record::default()
            });
        }
        let mut batch = builder.build_vec();
        assert_eq!(batch[ATTRIBUTES_AT + 1] & 7, codec.bits(), "{codec} kept");
        batch[RECORDS_COUNT_AT..RECORDS_COUNT_AT + 4].copy_from_slice(&claimed.to_be_bytes());
        batch[LAST_OFFSET_DELTA_AT..LAST_OFFSET_DELTA_AT + 4]
            .copy_from_slice(&(claimed - 1).to_be_bytes());
        reseal(&mut batch);
        batch
    }

    #[test]
    fn compressed_count_must_fit_the_decompressed_records() {
        for codec in Compression::ALL.into_iter().skip(1) {
            // 40 records of 39 bytes decompress to 1,560 bytes: room for at most 222 records.
            let batch = compressed_batch_claiming(codec, 40, 1000);
            assert_eq!(
                validate_records(&Bytes::from(batch)),
                Err(RecordError::InvalidHeader {
                    reason: "records_count is larger than the decompressed records can hold"
                }),
                "{codec}"
            );
            // A count the bytes could hold but the records do not match.
            let batch = compressed_batch_claiming(codec, 40, 41);
            assert!(
                matches!(
                    validate_records(&Bytes::from(batch)),
                    Err(RecordError::InvalidRecord { index: 40, .. })
                ),
                "{codec}"
            );
        }
    }

    #[test]
    fn unassigned_codec_bits_are_refused() {
        for bits in 5..=7u8 {
            let mut batch = one_record_batch();
            batch[ATTRIBUTES_AT + 1] = bits;
            reseal(&mut batch);
            assert_eq!(
                decode_records(&Bytes::from(batch)),
                Err(RecordError::UnsupportedCompression { codec: bits })
            );
        }
    }

    #[test]
    fn regression_field_cannot_borrow_bytes_of_the_next_record() {
        // Two records; shrink the first record's length by one so its header count varint
        // would have to come from the second record. Used to read across the boundary.
        let mut builder = BatchBuilder::new();
        builder.push(&Record {
            value: Some(Bytes::from_static(b"a")),
            ..Record::default()
        });
        builder.push(&Record {
            value: Some(Bytes::from_static(b"b")),
            ..Record::default()
        });
        let mut batch = builder.build_vec();
        assert_eq!(batch[HEADER_SIZE], 14); // zig-zag 7: attrs, ts, off, key, vlen, 'a', hdrs
        batch[HEADER_SIZE] = 12; // zig-zag 6
        reseal(&mut batch);
        assert_eq!(
            validate_records(&Bytes::from(batch)),
            Err(RecordError::InvalidRecord {
                index: 0,
                reason: "varint truncated"
            })
        );
    }

    #[test]
    fn compacted_batches_keep_offsets_and_decode_but_do_not_validate_as_produced() {
        let record = |v: &'static [u8]| Record {
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::from_static(v)),
            timestamp: 10,
            ..Record::default()
        };
        // Records at offsets 100+1 and 100+4 of an original batch of 6 records (deltas 0..=5).
        let mut builder = BatchBuilder::new().last_offset_delta(5);
        builder.push_at(&record(b"a"), 1);
        builder.push_at(&record(b"b"), 4);
        let mut batch = builder.build_vec();
        set_base_offset(&mut batch, 100);
        let batch = Bytes::from(batch);
        let header = crate::validate_batch(&batch).unwrap();
        assert_eq!(
            (
                header.records_count,
                header.last_offset(),
                header.next_offset()
            ),
            (2, 105, 106)
        );
        let offsets: Vec<i64> = decode_records(&batch)
            .unwrap()
            .iter()
            .map(|r| r.offset)
            .collect();
        assert_eq!(offsets, [101, 104]);
        assert_eq!(
            validate_records(&batch),
            Err(RecordError::InvalidRecord {
                index: 0,
                reason: "offset delta is not sequential"
            })
        );

        // An emptied batch (the cleaner keeps such headers) still spans its offsets.
        let mut empty = BatchBuilder::new().last_offset_delta(5).build_vec();
        set_base_offset(&mut empty, 100);
        let empty = Bytes::from(empty);
        assert_eq!(decode_records(&empty).unwrap(), vec![]);
        assert_eq!(crate::validate_batch(&empty).unwrap().next_offset(), 106);
    }

    #[test]
    fn stored_batches_with_bad_offset_deltas_do_not_decode() {
        // Deltas that repeat, or run past last_offset_delta, are corruption in any batch.
        let record = Record::default();
        let build = |deltas: &[i32], last: i32| {
            let mut builder = BatchBuilder::new();
            for &delta in deltas {
                builder.push_at(&record, delta);
            }
            let mut batch = builder.build_vec();
            // Force last_offset_delta (CRC-covered) to `last`.
            batch[LAST_OFFSET_DELTA_AT..LAST_OFFSET_DELTA_AT + 4]
                .copy_from_slice(&last.to_be_bytes());
            reseal(&mut batch);
            Bytes::from(batch)
        };
        let reason = "offset delta does not increase within last_offset_delta";
        assert_eq!(
            decode_records(&build(&[0, 3], 2)),
            Err(RecordError::InvalidRecord { index: 1, reason })
        );
        // A repeated delta (0, 0) patched into a sequential batch.
        let mut batch = build(&[0, 1], 1).to_vec();
        let second = HEADER_SIZE + MIN_RECORD_SIZE; // Record::default() is the smallest record
        assert_eq!(batch[second + 3], 0x02); // zig-zag 1
        batch[second + 3] = 0x00;
        reseal(&mut batch);
        assert_eq!(
            decode_records(&Bytes::from(batch)),
            Err(RecordError::InvalidRecord { index: 1, reason })
        );
        assert!(decode_records(&build(&[0, 3], 3)).is_ok());
    }

    #[test]
    fn malformed_records_are_errors() {
        // (byte index after the header, new value, expected reason)
        let cases: &[(usize, u8, &str)] = &[
            (0, 0x0a, "record length too small"),        // length 5
            (0, 0x7e, "record extends past the batch"),  // length 63
            (3, 0x02, "offset delta is not sequential"), // offset delta 1
            (3, 0x01, "offset delta is not sequential"), // offset delta -1
            (4, 0x03, "negative length"),                // key length -2
            (5, 0x0e, "field extends past the record"),  // value length 7
            (11, 0x01, "negative header count"),         // header count -1
        ];
        for &(at, value, reason) in cases {
            let mut batch = one_record_batch();
            batch[HEADER_SIZE + at] = value;
            reseal(&mut batch);
            let result = validate_records(&Bytes::from(batch));
            assert_eq!(
                result,
                Err(RecordError::InvalidRecord { index: 0, reason }),
                "byte {at} = {value:#x}"
            );
        }
    }
}
