//! Codec throughput on a typical batch: 1,000 records with 100-byte JSON-like values (the
//! records section, ~118 KB), compressed and decompressed as one stream per codec, plus the
//! full decode of a compressed batch. Throughput is in uncompressed bytes.
//!
//! Run: `cargo bench -p tributary-record --bench compression -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tributary_record::compression::{compress, decompress};
use tributary_record::{
    BatchBuilder, Compression, HEADER_SIZE, MAX_DECOMPRESSED_RECORDS_SIZE, Record, decode_records,
};

const RECORDS: usize = 1000;
const VALUE_SIZE: usize = 100;

/// A 100-byte event such as an application would log: field names repeat, numbers vary.
fn value(i: usize) -> Bytes {
    let mut text = format!(
        r#"{{"user":{},"event":"{}","page":"/items/{}","ms":{}}}"#,
        (i * 7919) % 100_000,
        ["view", "click", "purchase", "scroll"][i % 4],
        (i * 31) % 5000,
        1_700_000_000_000u64 + i as u64 * 13
    );
    text.truncate(VALUE_SIZE);
    while text.len() < VALUE_SIZE {
        text.push(' ');
    }
    Bytes::from(text)
}

fn batch(codec: Compression) -> Bytes {
    let mut builder = BatchBuilder::with_capacity(RECORDS * (VALUE_SIZE + 32)).compression(codec);
    for i in 0..RECORDS {
        builder.push(&Record {
            key: Some(Bytes::from(format!("user-{}", i % 100))),
            value: Some(value(i)),
            timestamp: 1_700_000_000_000 + i as i64,
            headers: Vec::new(),
        });
    }
    builder.build()
}

fn codecs(c: &mut Criterion) {
    let plain = batch(Compression::None);
    let records = &plain[HEADER_SIZE..];
    for codec in Compression::ALL.into_iter().skip(1) {
        let compressed = compress(codec, records).unwrap();
        eprintln!(
            "{codec}: {} record bytes -> {} ({:.1}%)",
            records.len(),
            compressed.len(),
            100.0 * compressed.len() as f64 / records.len() as f64
        );
        let mut group = c.benchmark_group(format!("{codec}_1000x100B"));
        group.throughput(Throughput::Bytes(records.len() as u64));
        group.bench_function("compress", |b| {
            b.iter(|| compress(codec, black_box(records)).unwrap())
        });
        group.bench_function("decompress", |b| {
            b.iter(|| {
                decompress(codec, black_box(&compressed), MAX_DECOMPRESSED_RECORDS_SIZE).unwrap()
            })
        });
        let whole = batch(codec);
        group.bench_function("decode_records", |b| {
            b.iter(|| decode_records(black_box(&whole)).unwrap())
        });
        group.finish();
    }
}

criterion_group!(benches, codecs);
criterion_main!(benches);
