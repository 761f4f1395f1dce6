//! Golden record batches: the builder must produce these exact bytes and the decoder must read
//! them back.
//!
//! The fixtures in `tests/fixtures/*.hex` are written by `tests/fixtures/gen_golden.py`, an
//! independent Python encoder (struct + zlib.crc32), not by this crate, so they pin the format
//! itself. Each line is `offset: hex bytes  # field`; `docs/record-format.md` walks through them.

use bytes::Bytes;
use tributary_record::{
    BatchBuilder, BatchHeader, BatchIter, Compression, DecodedRecord, Header, Record,
    TimestampType, decode_records, set_base_offset, set_log_append_time,
    set_partition_leader_epoch, validate_batch, validate_records,
};

const T: i64 = 1_700_000_000_000;

/// Parses a fixture: drops `#` comments and the `offset:` prefix of each line.
fn parse_hex(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let line = match line.split_once(':') {
            Some((offset, rest)) => {
                assert_eq!(
                    offset.trim().parse::<usize>().unwrap(),
                    out.len(),
                    "fixture offset column"
                );
                rest
            }
            None => line,
        };
        for byte in line.split_whitespace() {
            out.push(u8::from_str_radix(byte, 16).unwrap());
        }
    }
    out
}

fn bytes(s: &'static [u8]) -> Option<Bytes> {
    Some(Bytes::from_static(s))
}

fn record(
    timestamp: i64,
    key: Option<Bytes>,
    value: Option<Bytes>,
    headers: Vec<Header>,
) -> Record {
    Record {
        key,
        value,
        timestamp,
        headers,
    }
}

fn build(records: &[Record]) -> Vec<u8> {
    let mut builder = BatchBuilder::new();
    for r in records {
        builder.push(r);
    }
    builder.build_vec()
}

/// Checks that `expected` decodes (CRC, records) back to `records` at `base_offset`.
fn assert_decodes(
    expected: &[u8],
    records: &[Record],
    base_offset: i64,
    timestamps: &[i64],
) -> BatchHeader {
    let batch = Bytes::copy_from_slice(expected);
    let header = validate_records(&batch).unwrap();
    assert_eq!(validate_batch(expected).unwrap(), header);
    let decoded = decode_records(&batch).unwrap();
    let want: Vec<DecodedRecord> = records
        .iter()
        .zip(timestamps)
        .enumerate()
        .map(|(i, (r, &timestamp))| DecodedRecord {
            offset: base_offset + i as i64,
            timestamp,
            key: r.key.clone(),
            value: r.value.clone(),
            headers: r.headers.clone(),
        })
        .collect();
    assert_eq!(decoded, want);
    let mut iter = BatchIter::new(expected);
    assert_eq!(iter.next().unwrap().unwrap(), (header, expected));
    assert!(iter.next().is_none());
    header
}

#[test]
fn hello_null_key() {
    let expected = parse_hex(include_str!("fixtures/hello.hex"));
    let records = [record(T, None, bytes(b"hello"), vec![])];
    assert_eq!(build(&records), expected);
    let header = assert_decodes(&expected, &records, 0, &[T]);
    assert_eq!(expected.len(), 73);
    assert_eq!(
        header.crc,
        u32::from_be_bytes(expected[17..21].try_into().unwrap())
    );
    assert_eq!(
        (header.partition_leader_epoch, header.producer_id),
        (-1, -1)
    );
}

#[test]
fn key_value_and_two_headers_one_null() {
    let expected = parse_hex(include_str!("fixtures/headers.hex"));
    let records = [record(
        T,
        bytes(b"key"),
        bytes(b"value"),
        vec![
            Header {
                key: "h1".into(),
                value: bytes(b"v1"),
            },
            Header {
                key: "h2".into(),
                value: None,
            },
        ],
    )];
    assert_eq!(build(&records), expected);
    assert_decodes(&expected, &records, 0, &[T]);
}

#[test]
fn empty_value_and_null_value_tombstone() {
    let expected = parse_hex(include_str!("fixtures/tombstone.hex"));
    let records = [
        record(T, bytes(b"k"), bytes(b""), vec![]),
        record(T, bytes(b"k"), None, vec![]),
    ];
    assert_eq!(build(&records), expected);
    assert_decodes(&expected, &records, 0, &[T, T]);
}

#[test]
fn three_records_with_a_negative_timestamp_delta() {
    let expected = parse_hex(include_str!("fixtures/deltas.hex"));
    let timestamps = [T, T + 500, T - 1000];
    let records: Vec<Record> = timestamps
        .iter()
        .zip([b"a", b"b", b"c"])
        .map(|(&ts, v)| record(ts, None, Some(Bytes::from_static(v)), vec![]))
        .collect();
    assert_eq!(build(&records), expected);
    let header = assert_decodes(&expected, &records, 0, &timestamps);
    assert_eq!(
        (
            header.first_timestamp,
            header.max_timestamp,
            header.last_offset_delta
        ),
        (T, T + 500, 2)
    );
}

#[test]
fn stamped_with_base_offset_42_and_leader_epoch_7() {
    let expected = parse_hex(include_str!("fixtures/stamped.hex"));
    let records = [record(T, None, bytes(b"hello"), vec![])];
    let mut builder = BatchBuilder::new().producer(1000, 3, 5);
    builder.push(&records[0]);
    let mut batch = builder.build_vec();
    set_base_offset(&mut batch, 42);
    set_partition_leader_epoch(&mut batch, 7);
    assert_eq!(batch, expected);
    let header = assert_decodes(&expected, &records, 42, &[T]);
    assert_eq!((header.base_offset, header.partition_leader_epoch), (42, 7));
    assert_eq!(
        (
            header.producer_id,
            header.producer_epoch,
            header.base_sequence
        ),
        (1000, 3, 5)
    );
    assert_eq!((header.last_offset(), header.next_offset()), (42, 43));
}

#[test]
fn log_append_time_restamps_max_timestamp_and_crc() {
    let expected = parse_hex(include_str!("fixtures/log_append_time.hex"));
    let records = [record(T, None, bytes(b"hello"), vec![])];
    let mut batch = build(&records);
    set_log_append_time(&mut batch, T + 1000);
    assert_eq!(batch, expected);
    // Every record reads the broker's append time, not its own create time.
    let header = assert_decodes(&expected, &records, 0, &[T + 1000]);
    assert_eq!(
        header.attributes.timestamp_type(),
        TimestampType::LogAppendTime
    );
}

#[test]
fn compressed_hello_in_every_codec_decodes() {
    // Written by the Python generator with each codec's framing (§3.1 of record-format.md);
    // the records inside are those of hello.hex.
    let fixtures = [
        (Compression::Gzip, include_str!("fixtures/gzip_hello.hex")),
        (
            Compression::Snappy,
            include_str!("fixtures/snappy_hello.hex"),
        ),
        (Compression::Lz4, include_str!("fixtures/lz4_hello.hex")),
        (Compression::Zstd, include_str!("fixtures/zstd_hello.hex")),
    ];
    let plain = parse_hex(include_str!("fixtures/hello.hex"));
    let records = [record(T, None, bytes(b"hello"), vec![])];
    for (codec, text) in fixtures {
        let fixture = parse_hex(text);
        // The header is hello.hex's but for length, CRC and the codec bits.
        assert_eq!(fixture[..8], plain[..8]);
        assert_eq!(fixture[12..17], plain[12..17]);
        assert_eq!(fixture[21..23], [0, codec.bits()]);
        assert_eq!(fixture[23..61], plain[23..61]);
        let header = assert_decodes(&fixture, &records, 0, &[T]);
        assert_eq!(header.attributes.compression(), Ok(codec));
    }
}

#[test]
fn fixtures_concatenated_iterate_in_order() {
    let fixtures = [
        include_str!("fixtures/hello.hex"),
        include_str!("fixtures/headers.hex"),
        include_str!("fixtures/tombstone.hex"),
        include_str!("fixtures/deltas.hex"),
        include_str!("fixtures/stamped.hex"),
        include_str!("fixtures/log_append_time.hex"),
    ]
    .map(parse_hex);
    let all = fixtures.concat();
    let mut iter = BatchIter::new(&all);
    for fixture in &fixtures {
        assert_eq!(iter.next().unwrap().unwrap().1, &fixture[..]);
    }
    assert!(iter.next().is_none());
    assert_eq!(iter.consumed(), all.len());
}

#[test]
fn crc_is_ieee_crc32_not_crc32c() {
    // Standard check values over "123456789": CRC-32 (IEEE) 0xCBF43926, CRC-32C 0xE3069283.
    let mut buf = vec![0u8; 21];
    buf.extend_from_slice(b"123456789");
    assert_eq!(tributary_record::compute_crc(&buf), 0xCBF4_3926);
}
