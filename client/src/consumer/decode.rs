//! Turning the raw bytes of a fetch into records (pure). Compressed batches are decompressed
//! here (by `decode_records`), one at a time, each to at most
//! [`tributary_record::MAX_DECOMPRESSED_RECORDS_SIZE`] bytes.

use bytes::Bytes;
use tributary_record::{BatchIter, DecodedRecord, TimestampType, decode_records};

use crate::ClientError;

/// What a fetch returned besides the records: one entry per data batch (control batches
/// excluded) that holds offsets at or above the fetch offset, in offset order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchInfo {
    /// The batch's first offset (may be below the fetch offset).
    pub base_offset: i64,
    /// The offset after the batch's last record.
    pub next_offset: i64,
    /// What the batch's record timestamps mean.
    pub timestamp_type: TimestampType,
}

/// The records of one fetch, the offset to fetch next and the batches they came from.
pub(crate) struct Decoded {
    pub(crate) records: Vec<DecodedRecord>,
    pub(crate) next_offset: i64,
    pub(crate) batches: Vec<BatchInfo>,
}

/// Decodes the concatenated batches of one partition's fetch from `fetch_offset`.
///
/// Returns the records at or above `fetch_offset` and the offset to fetch next (after the last
/// complete batch, never below `fetch_offset`). A batch may begin before `fetch_offset` (the
/// broker returns whole batches), so its earlier records are skipped; a trailing partial batch
/// (cut by `max_bytes`) is ignored and fetched again next time; control batches advance the
/// offset but yield no records. Bytes that hold no complete batch at all mean the next batch
/// is larger than `max_bytes`, which would stall a consumer, so that is an error.
pub fn decode_fetched_batches(
    topic: &str,
    partition: i32,
    fetch_offset: i64,
    batches: &Bytes,
    max_bytes: i32,
) -> Result<(Vec<DecodedRecord>, i64), ClientError> {
    let decoded = decode_fetch(topic, partition, fetch_offset, batches, max_bytes)?;
    Ok((decoded.records, decoded.next_offset))
}

/// [`decode_fetched_batches`], also describing the batches.
pub(crate) fn decode_fetch(
    topic: &str,
    partition: i32,
    fetch_offset: i64,
    batches: &Bytes,
    max_bytes: i32,
) -> Result<Decoded, ClientError> {
    let corrupt = |source| ClientError::CorruptBatch {
        topic: topic.to_owned(),
        partition,
        offset: fetch_offset,
        source,
    };
    let mut records = Vec::new();
    let mut infos = Vec::new();
    let mut next_offset = fetch_offset;
    let mut iter = BatchIter::new(batches);
    let mut position = 0;
    for item in iter.by_ref() {
        let (header, slice) = item.map_err(corrupt)?;
        let batch = batches.slice(position..position + slice.len());
        position += slice.len();
        if header.next_offset() <= fetch_offset {
            continue;
        }
        next_offset = next_offset.max(header.next_offset());
        if header.attributes.is_control() {
            continue;
        }
        infos.push(BatchInfo {
            base_offset: header.base_offset,
            next_offset: header.next_offset(),
            timestamp_type: header.attributes.timestamp_type(),
        });
        let decoded = decode_records(&batch).map_err(corrupt)?;
        if header.base_offset >= fetch_offset {
            if records.is_empty() {
                records = decoded;
            } else {
                records.extend(decoded);
            }
        } else {
            records.extend(decoded.into_iter().filter(|r| r.offset >= fetch_offset));
        }
    }
    if iter.consumed() == 0 && !batches.is_empty() {
        return Err(ClientError::BatchTooLarge {
            topic: topic.to_owned(),
            partition,
            offset: fetch_offset,
            max_bytes,
        });
    }
    Ok(Decoded {
        records,
        next_offset,
        batches: infos,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_record::{BatchBuilder, Record, set_base_offset};

    fn batch(base_offset: i64, values: &[&str]) -> Vec<u8> {
        let mut builder = BatchBuilder::new();
        for value in values {
            builder.push(&Record {
                key: None,
                value: Some(Bytes::copy_from_slice(value.as_bytes())),
                timestamp: 1,
                headers: Vec::new(),
            });
        }
        let mut bytes = builder.build_vec();
        set_base_offset(&mut bytes, base_offset);
        bytes
    }

    fn values(records: &[DecodedRecord]) -> Vec<(i64, String)> {
        records
            .iter()
            .map(|r| {
                (
                    r.offset,
                    String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn skips_records_below_the_fetch_offset_and_a_partial_tail() {
        let mut buf = batch(10, &["a", "b", "c"]);
        buf.extend(batch(13, &["d", "e"]));
        let tail = batch(15, &["f"]);
        buf.extend(&tail[..tail.len() - 3]);
        let bytes = Bytes::from(buf);
        let (records, next) = decode_fetched_batches("t", 0, 11, &bytes, 1024).unwrap();
        assert_eq!(
            values(&records),
            vec![
                (11, "b".into()),
                (12, "c".into()),
                (13, "d".into()),
                (14, "e".into())
            ]
        );
        assert_eq!(next, 15);
    }

    #[test]
    fn empty_and_stale_responses_keep_the_offset() {
        assert_eq!(
            decode_fetched_batches("t", 0, 5, &Bytes::new(), 1024).unwrap(),
            (vec![], 5)
        );
        let bytes = Bytes::from(batch(0, &["a", "b"]));
        let (records, next) = decode_fetched_batches("t", 0, 7, &bytes, 1024).unwrap();
        assert!(records.is_empty());
        assert_eq!(next, 7);
    }

    #[test]
    fn a_lone_partial_batch_is_too_large() {
        let whole = batch(0, &["aaaaaaaaaa"]);
        let bytes = Bytes::copy_from_slice(&whole[..whole.len() - 1]);
        let error = decode_fetched_batches("t", 3, 0, &bytes, 10).unwrap_err();
        assert!(
            matches!(
                error,
                ClientError::BatchTooLarge {
                    partition: 3,
                    max_bytes: 10,
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn compressed_batches_decode_like_plain_ones() {
        use tributary_record::{Compression, HEADER_SIZE, compute_crc};
        let texts: Vec<String> = (0..30).map(|i| format!("value {i} value value")).collect();
        let batches: Vec<Vec<u8>> = Compression::ALL
            .into_iter()
            .enumerate()
            .map(|(i, codec)| {
                let mut builder = BatchBuilder::new().compression(codec);
                for text in &texts {
                    builder.push(&Record {
                        value: Some(Bytes::copy_from_slice(text.as_bytes())),
                        timestamp: 1,
                        ..Record::default()
                    });
                }
                let mut bytes = builder.build_vec();
                set_base_offset(&mut bytes, 30 * i as i64);
                bytes
            })
            .collect();
        // Start inside the lz4 batch (offsets 90..120).
        let all = Bytes::from(batches.concat());
        let (records, next) = decode_fetched_batches("t", 0, 100, &all, 1 << 20).unwrap();
        assert_eq!(next, 150);
        assert_eq!(records.len(), 50);
        assert_eq!(values(&records)[0], (100, "value 10 value value".into()));

        // A zstd batch whose records section is not zstd (under a correct CRC) is an error.
        let mut zstd = batches[4].clone();
        zstd.truncate(HEADER_SIZE);
        zstd.extend_from_slice(b"definitely not a zstd frame");
        let length = (zstd.len() - 12) as i32;
        zstd[8..12].copy_from_slice(&length.to_be_bytes());
        let crc = compute_crc(&zstd);
        zstd[17..21].copy_from_slice(&crc.to_be_bytes());
        let error = decode_fetched_batches("t", 0, 120, &Bytes::from(zstd), 1 << 20).unwrap_err();
        assert!(
            matches!(
                error,
                ClientError::CorruptBatch {
                    source: tributary_record::RecordError::Decompression { .. },
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn corrupt_batches_are_reported() {
        let mut buf = batch(0, &["a"]);
        let last = buf.len() - 1;
        buf[last] ^= 0xff;
        let error = decode_fetched_batches("t", 0, 0, &Bytes::from(buf), 1024).unwrap_err();
        assert!(matches!(error, ClientError::CorruptBatch { .. }), "{error}");
    }
}
