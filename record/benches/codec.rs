//! Codec throughput: building, CRC validation, full record walk, decoding, and iterating a
//! fetch-sized buffer of batches.
//!
//! Run: `cargo bench -p tributary-record -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use tributary_record::{
    BatchBuilder, BatchIter, Record, decode_records, validate_batch, validate_records,
};

const RECORDS: usize = 1000;
const VALUE_SIZE: usize = 100;
const FETCH_BYTES: usize = 1 << 20;

fn records() -> Vec<Record> {
    (0..RECORDS)
        .map(|i| Record {
            key: Some(Bytes::from(format!("key-{i:06}"))),
            value: Some(Bytes::from(vec![(i % 251) as u8; VALUE_SIZE])),
            timestamp: 1_700_000_000_000 + i as i64,
            headers: Vec::new(),
        })
        .collect()
}

fn build(records: &[Record]) -> Bytes {
    let mut builder = BatchBuilder::with_capacity(records.len() * (VALUE_SIZE + 32));
    for r in records {
        builder.push(r);
    }
    builder.build()
}

fn codec(c: &mut Criterion) {
    let records = records();
    let batch = build(&records);

    let mut group = c.benchmark_group("batch_1000x100B");
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.bench_function("build", |b| b.iter(|| build(black_box(&records))));
    group.bench_function("validate_batch", |b| {
        b.iter(|| validate_batch(black_box(&batch)).unwrap())
    });
    group.bench_function("validate_records", |b| {
        b.iter(|| validate_records(black_box(&batch)).unwrap())
    });
    group.bench_function("decode_records", |b| {
        b.iter_batched(
            || batch.clone(),
            |batch| decode_records(&batch).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.finish();

    let mut group = c.benchmark_group("batch_1000x100B_bytes");
    group.throughput(Throughput::Bytes(batch.len() as u64));
    group.bench_function("validate_batch", |b| {
        b.iter(|| validate_batch(black_box(&batch)).unwrap())
    });
    group.bench_function("validate_records", |b| {
        b.iter(|| validate_records(black_box(&batch)).unwrap())
    });
    group.bench_function("decode_records", |b| {
        b.iter_batched(
            || batch.clone(),
            |batch| decode_records(&batch).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.finish();

    // A 1 MiB fetch of small batches (10 records each), as a follower or consumer sees it.
    let small = build(&records[..10]);
    let fetch: Vec<u8> = small
        .iter()
        .copied()
        .cycle()
        .take(FETCH_BYTES / small.len() * small.len())
        .collect();
    let batches = fetch.len() / small.len();
    let mut group = c.benchmark_group("batch_iter_1MiB");
    group.throughput(Throughput::Bytes(fetch.len() as u64));
    group.bench_function("bytes", |b| {
        b.iter(|| BatchIter::new(black_box(&fetch)).count())
    });
    group.throughput(Throughput::Elements((batches * 10) as u64));
    group.bench_function("records", |b| {
        b.iter(|| BatchIter::new(black_box(&fetch)).count())
    });
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
