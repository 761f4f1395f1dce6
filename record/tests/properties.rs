//! Property tests: round trips, stamping, and "never panics, always detects" on hostile input.

use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;
use tributary_record::{
    BatchBuilder, BatchHeader, BatchIter, Compression, DecodedRecord, HEADER_SIZE, Header, Record,
    RecordError, compute_crc, decode_records, set_base_offset, set_partition_leader_epoch,
    validate_batch, validate_records,
};

const CRC_AT: usize = 17;
const LENGTH_AT: usize = 8;

fn nullable_bytes(max: usize) -> impl Strategy<Value = Option<Bytes>> {
    prop::option::weighted(0.8, vec(any::<u8>(), 0..max).prop_map(Bytes::from))
}

fn header() -> impl Strategy<Value = Header> {
    (".{0,8}", nullable_bytes(16)).prop_map(|(key, value)| Header { key, value })
}

/// Timestamps near a base (deltas of both signs) and now and then anything at all.
fn timestamp() -> impl Strategy<Value = i64> {
    prop_oneof![
        8 => (-5_000_000i64..5_000_000).prop_map(|d| 1_700_000_000_000 + d),
        1 => any::<i64>(),
    ]
}

fn record() -> impl Strategy<Value = Record> {
    (
        nullable_bytes(40),
        nullable_bytes(200),
        timestamp(),
        vec(header(), 0..4),
    )
        .prop_map(|(key, value, timestamp, headers)| Record {
            key,
            value,
            timestamp,
            headers,
        })
}

fn build(records: &[Record]) -> Vec<u8> {
    let mut builder = BatchBuilder::new();
    for r in records {
        builder.push(r);
    }
    builder.build_vec()
}

fn small_batch() -> impl Strategy<Value = Vec<u8>> {
    let small = (
        nullable_bytes(8),
        nullable_bytes(16),
        timestamp(),
        vec(header(), 0..2),
    )
        .prop_map(|(key, value, timestamp, headers)| Record {
            key,
            value,
            timestamp,
            headers,
        });
    vec(small, 0..4).prop_map(|records| build(&records))
}

fn codec() -> impl Strategy<Value = Compression> {
    prop::sample::select(Compression::ALL.to_vec())
}

/// Records that compress (repeated keys and values), so the builder keeps the codec.
fn compressible_records() -> impl Strategy<Value = Vec<Record>> {
    (vec(record(), 1..6), 2usize..40).prop_map(|(records, times)| {
        records
            .iter()
            .cycle()
            .take(records.len() * times)
            .cloned()
            .collect()
    })
}

fn valid_batch() -> impl Strategy<Value = Vec<u8>> {
    vec(record(), 0..8).prop_map(|records| build(&records))
}

/// Runs every decoder on `buf`; the property is that none of them panics.
fn exercise(buf: &[u8]) {
    let _ = BatchHeader::parse(buf).map(|h| (h.total_size(), h.last_offset(), h.next_offset()));
    let _ = validate_batch(buf);
    let bytes = Bytes::copy_from_slice(buf);
    let _ = validate_records(&bytes);
    let _ = decode_records(&bytes);
    let mut iter = BatchIter::new(buf);
    for (header, _) in iter.by_ref().flatten() {
        let _ = (header.last_offset(), header.next_offset());
    }
    assert!(iter.consumed() <= buf.len());
}

fn reseal(batch: &mut [u8]) {
    let crc = compute_crc(batch);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Bytes 0..8 (base offset) and 12..16 (leader epoch) are the only ones a change to which
/// leaves a batch valid.
fn is_stampable(index: usize) -> bool {
    index < 8 || (12..16).contains(&index)
}

proptest! {
    #[test]
    fn build_validate_decode_round_trips(records in vec(record(), 0..20)) {
        let mut builder = BatchBuilder::new();
        for r in &records {
            let predicted = builder.size_with(r);
            builder.push(r);
            prop_assert_eq!(builder.size_in_bytes(), predicted);
        }
        let batch = builder.build();
        let header = validate_records(&batch).unwrap();
        prop_assert_eq!(header.records_count as usize, records.len());
        prop_assert_eq!(header.total_size(), batch.len());
        if let Some(max) = records.iter().map(|r| r.timestamp).max() {
            prop_assert_eq!(header.first_timestamp, records[0].timestamp);
            prop_assert_eq!(header.max_timestamp, max);
            prop_assert_eq!(header.last_offset_delta as usize, records.len() - 1);
        }
        let decoded = decode_records(&batch).unwrap();
        let want: Vec<DecodedRecord> = records.iter().enumerate().map(|(i, r)| DecodedRecord {
            offset: i as i64,
            timestamp: r.timestamp,
            key: r.key.clone(),
            value: r.value.clone(),
            headers: r.headers.clone(),
        }).collect();
        prop_assert_eq!(decoded, want);
    }

    #[test]
    fn compressed_batches_round_trip(records in compressible_records(), codec in codec()) {
        let mut builder = BatchBuilder::new().compression(codec);
        for r in &records {
            builder.push(r);
        }
        let upper_bound = builder.size_in_bytes();
        let batch = builder.build();
        prop_assert!(batch.len() <= upper_bound);
        let header = validate_records(&batch).unwrap();
        prop_assert_eq!(header.records_count as usize, records.len());
        let decoded = decode_records(&batch).unwrap();
        prop_assert_eq!(decoded.len(), records.len());
        for (i, (got, want)) in decoded.iter().zip(&records).enumerate() {
            prop_assert_eq!(got.offset, i as i64);
            prop_assert_eq!(got.timestamp, want.timestamp);
            prop_assert_eq!(&got.key, &want.key);
            prop_assert_eq!(&got.value, &want.value);
            prop_assert_eq!(&got.headers, &want.headers);
        }
    }

    #[test]
    fn resealed_mutations_of_compressed_records_are_errors_or_whole_batches(
        records in compressible_records(),
        codec in codec(),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        // Corrupt the compressed stream and fix the CRC, so the codec sees the damage.
        let mut builder = BatchBuilder::new().compression(codec);
        for r in &records {
            builder.push(r);
        }
        let mut batch = builder.build_vec();
        for (index, value) in edits {
            let at = HEADER_SIZE + index.index(batch.len() - HEADER_SIZE);
            batch[at] = value;
        }
        reseal(&mut batch);
        exercise(&batch);
        match decode_records(&Bytes::from(batch)) {
            Ok(decoded) => prop_assert_eq!(decoded.len(), records.len()),
            Err(RecordError::Decompression { .. }
                | RecordError::InvalidRecord { .. }
                | RecordError::InvalidHeader { .. }) => {}
            Err(other) => prop_assert!(false, "unexpected error {:?}", other),
        }
    }

    #[test]
    fn stamping_base_offset_and_epoch_keeps_the_crc(
        mut batch in valid_batch(), base_offset in any::<i64>(), epoch in any::<i32>(),
    ) {
        let before = validate_batch(&batch).unwrap();
        set_base_offset(&mut batch, base_offset);
        set_partition_leader_epoch(&mut batch, epoch);
        let header = validate_records(&Bytes::from(batch.clone())).unwrap();
        prop_assert_eq!(header.crc, before.crc);
        prop_assert_eq!((header.base_offset, header.partition_leader_epoch), (base_offset, epoch));
        for (i, record) in decode_records(&Bytes::from(batch)).unwrap().iter().enumerate() {
            prop_assert_eq!(record.offset, base_offset.wrapping_add(i as i64));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(buf in vec(any::<u8>(), 0..300)) {
        exercise(&buf);
    }

    #[test]
    fn arbitrary_bytes_behind_a_plausible_header_never_panic(
        buf in vec(any::<u8>(), 0..300),
        attributes in prop_oneof![Just(0i16), Just(0x08), any::<i16>()],
        count in prop_oneof![0i32..40, any::<i32>()],
        last_offset_delta in prop_oneof![0i32..40, any::<i32>()],
    ) {
        // Valid magic, length and CRC around random records: reaches the record walker.
        let mut batch = BatchBuilder::new().build_vec();
        batch.extend_from_slice(&buf);
        let length = (batch.len() - 12) as i32;
        batch[LENGTH_AT..LENGTH_AT + 4].copy_from_slice(&length.to_be_bytes());
        batch[21..23].copy_from_slice(&attributes.to_be_bytes());
        batch[23..27].copy_from_slice(&last_offset_delta.to_be_bytes());
        batch[57..61].copy_from_slice(&count.to_be_bytes());
        reseal(&mut batch);
        exercise(&batch);
    }

    #[test]
    fn resealed_mutations_of_records_never_panic(
        mut batch in valid_batch(), edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        // Corrupt the records section and fix the CRC, so the walker sees the damage.
        if batch.len() > HEADER_SIZE {
            for (index, value) in edits {
                let at = HEADER_SIZE + index.index(batch.len() - HEADER_SIZE);
                batch[at] = value;
            }
            reseal(&mut batch);
        }
        exercise(&batch);
    }

    #[test]
    fn any_change_outside_the_stampable_fields_is_detected(
        batch in valid_batch(), index in any::<prop::sample::Index>(), burst in vec(any::<u8>(), 1..=4),
    ) {
        // A CRC-32 catches every error burst of up to 32 bits, so a change to 1-4 adjacent
        // bytes of [16, end) must always be caught; 8..12 is the length, checked exactly.
        let start = index.index(batch.len());
        let mut bad = batch.clone();
        for (k, x) in burst.iter().enumerate() {
            if let Some(byte) = bad.get_mut(start + k) {
                *byte ^= x;
            }
        }
        exercise(&bad);
        let changed: Vec<usize> = (0..batch.len()).filter(|&i| bad[i] != batch[i]).collect();
        if changed.iter().any(|&i| !is_stampable(i)) {
            prop_assert!(validate_batch(&bad).is_err(), "change at {:?} not detected", changed);
            prop_assert!(validate_records(&Bytes::from(bad)).is_err());
        } else {
            prop_assert!(validate_records(&Bytes::from(bad)).is_ok());
        }
    }

    #[test]
    fn truncation_at_every_length_is_an_error(batch in valid_batch()) {
        for len in 0..batch.len() {
            let short = &batch[..len];
            exercise(short);
            prop_assert!(validate_batch(short).is_err());
            prop_assert!(validate_records(&Bytes::copy_from_slice(short)).is_err());
            let mut iter = BatchIter::new(short);
            prop_assert!(iter.next().is_none(), "partial batch of {} bytes yielded", len);
            prop_assert_eq!(iter.consumed(), 0);
        }
    }

    #[test]
    fn corrupt_length_field_never_panics(mut batch in valid_batch(), length in any::<i32>()) {
        let original = validate_batch(&batch).unwrap().batch_length;
        batch[LENGTH_AT..LENGTH_AT + 4].copy_from_slice(&length.to_be_bytes());
        exercise(&batch);
        prop_assert_eq!(validate_batch(&batch).is_ok(), length == original);
    }

    #[test]
    fn iter_yields_exactly_the_concatenated_batches(
        batches in vec(valid_batch(), 0..6), cut in any::<prop::sample::Index>(),
    ) {
        let all = batches.concat();
        let mut iter = BatchIter::new(&all);
        for batch in &batches {
            let (header, bytes) = iter.next().unwrap().unwrap();
            prop_assert_eq!(bytes, &batch[..]);
            prop_assert_eq!(header.total_size(), batch.len());
        }
        prop_assert!(iter.next().is_none());
        prop_assert_eq!(iter.consumed(), all.len());

        // Cut anywhere: only the batches that end at or before the cut come out.
        let cut = cut.index(all.len() + 1);
        let mut ends = batches.iter().scan(0, |end, b| { *end += b.len(); Some(*end) });
        let complete: Vec<usize> = ends.by_ref().take_while(|&end| end <= cut).collect();
        let mut iter = BatchIter::new(&all[..cut]);
        let yielded: Vec<usize> = iter.by_ref().map(|item| item.unwrap().1.len()).collect();
        prop_assert_eq!(yielded.len(), complete.len());
        prop_assert_eq!(iter.consumed(), complete.last().copied().unwrap_or(0));
    }
}

proptest! {
    // Exhaustive over the bits of each batch, so fewer and smaller batches.
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_single_bit_flip_is_detected(batch in small_batch()) {
        for i in 0..batch.len() {
            for bit in 0..8 {
                let mut bad = batch.clone();
                bad[i] ^= 1 << bit;
                exercise(&bad);
                prop_assert_eq!(validate_batch(&bad).is_ok(), is_stampable(i), "byte {} bit {}", i, bit);
            }
        }
    }
}
