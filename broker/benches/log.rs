//! Storage engine benchmarks: leader appends of 1000 × 100-byte-record batches, sequential
//! reads with 1 MiB max_bytes, and random-offset lookups (segment search + offset index +
//! header scan), and one compaction pass over 100 000 keyed records in 1 MiB segments (1000
//! keys, so 99% of the records go). Each runs against a fresh temporary directory (page
//! cache, no fsync: the default flush policy; the cleaner does fsync its cleaned segments).

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::BatchSize;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tributary_broker::log::{CleanupPolicy, DirtyRatio, Log, LogConfig};
use tributary_record::{BatchBuilder, Record};

const RECORDS_PER_BATCH: usize = 1000;
const VALUE_BYTES: usize = 100;

fn batch() -> Vec<u8> {
    let mut builder = BatchBuilder::with_capacity(RECORDS_PER_BATCH * (VALUE_BYTES + 16));
    for i in 0..RECORDS_PER_BATCH {
        let value = Bytes::from(vec![(i % 251) as u8; VALUE_BYTES]);
        builder.push(&Record {
            value: Some(value),
            timestamp: 1_700_000_000_000 + i as i64,
            ..Record::default()
        });
    }
    builder.build_vec()
}

fn open(dir: &std::path::Path) -> Log {
    Log::open(&dir.join("bench-0"), LogConfig::default(), 0, 0, true, 0).expect("open log")
}

fn append(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    let batch = batch();
    let mut group = c.benchmark_group("log");
    group.throughput(Throughput::Elements(RECORDS_PER_BATCH as u64));
    group.bench_function("append_1000x100B", |b| {
        b.iter(|| {
            // The copy stands in for the request buffer the gRPC layer hands over.
            let info = log
                .append_as_leader(BytesMut::from(&batch[..]), 1, 1_700_000_000_000)
                .expect("append");
            if log.size_in_bytes() > 512 << 20 {
                log.truncate_to(0).expect("truncate");
            }
            black_box(info)
        })
    });
    group.finish();
}

fn read(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    let batch = batch();
    const BATCHES: usize = 100;
    for _ in 0..BATCHES {
        log.append_as_leader(BytesMut::from(&batch[..]), 1, 0)
            .expect("append");
    }
    let end = log.log_end_offset();
    let mut group = c.benchmark_group("log");
    group.throughput(Throughput::Elements((BATCHES * RECORDS_PER_BATCH) as u64));
    group.bench_function("read_sequential_1MiB", |b| {
        b.iter(|| {
            let mut offset = 0;
            let mut bytes = 0;
            while offset < end {
                let result = log.read(offset, 1 << 20, None, true).expect("read");
                bytes += result.batches.len();
                // Each read returns whole batches; the next starts after the last one.
                offset += (result.batches.len() / batch.len() * RECORDS_PER_BATCH) as i64;
            }
            black_box(bytes)
        })
    });
    group.finish();

    let mut group = c.benchmark_group("log");
    group.throughput(Throughput::Elements(1));
    let mut offset = 0i64;
    group.bench_function("lookup_random_offset", |b| {
        b.iter(|| {
            offset = (offset + 7_919 * 13) % end;
            black_box(log.read(offset, 1, None, false).expect("read"))
        })
    });
    group.finish();
}

fn clean(c: &mut Criterion) {
    const KEYS: usize = 1000;
    const RECORDS: usize = 100_000;
    let config = LogConfig {
        segment_bytes: 1 << 20,
        cleanup_policy: CleanupPolicy::COMPACT,
        min_cleanable_dirty_ratio: DirtyRatio::new(0.0).expect("ratio"),
        ..LogConfig::default()
    };
    let setup = || {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = Log::open(&dir.path().join("bench-0"), config.clone(), 0, 0, true, 0)
            .expect("open log");
        for chunk in 0..RECORDS / 100 {
            let mut builder = BatchBuilder::new();
            for i in 0..100 {
                let n = chunk * 100 + i;
                builder.push(&Record {
                    key: Some(Bytes::from(format!("key-{}", n % KEYS))),
                    value: Some(Bytes::from(vec![(n % 251) as u8; VALUE_BYTES])),
                    timestamp: 1_700_000_000_000,
                    ..Record::default()
                });
            }
            log.append_as_leader(BytesMut::from(&builder.build_vec()[..]), 1, 0)
                .expect("append");
        }
        (dir, log)
    };
    let mut group = c.benchmark_group("log");
    group.sample_size(10);
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.bench_function("clean_100k_records_1000_keys", |b| {
        b.iter_batched(
            setup,
            |(dir, log)| {
                let outcome = log
                    .clean(1_800_000_000_000, log.log_end_offset(), 128 << 20, &|| {
                        false
                    })
                    .expect("clean");
                black_box((dir, outcome))
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, append, read, clean);
criterion_main!(benches);
