//! Throughput smoke checks against the in-process fake broker (which shares the CPU, so the
//! numbers are lower bounds for the client). Run with
//! `cargo test --release -p tributary-client --lib -- --ignored --nocapture throughput`.
use std::time::Instant;

use futures::stream::{FuturesOrdered, StreamExt};

use bytes::Bytes;
use tributary_record::Record;

use crate::fake_broker::FakeBroker;
use crate::{BatchSender, BatchSenderOptions, Client, PartitionConsumer};
use crate::{FetchOptions, OffsetSpec};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "throughput measurement; run in release"]
async fn throughput_produce_then_consume() {
    let (address, broker) = FakeBroker::start().await;
    broker.create("t", 1);
    let client = Client::connect(&address).await.unwrap();
    let value = Bytes::from(vec![b'x'; 100]);
    let mut builder = tributary_record::BatchBuilder::with_capacity(1 << 20);
    let record = Record {
        key: None,
        value: Some(value),
        timestamp: 1,
        headers: vec![],
    };
    while builder.size_with(&record) <= 1 << 20 {
        builder.push(&record);
    }
    let per_batch = builder.len() as u64;
    let batch = builder.build();
    let total: u64 = 5_000_000;
    let producer = BatchSender::new(&client, BatchSenderOptions::default());
    let started = Instant::now();
    let mut in_flight = FuturesOrdered::new();
    let mut sent = 0;
    while sent < total || !in_flight.is_empty() {
        while in_flight.len() < 4 && sent < total {
            in_flight.push_back(producer.send_batch("t", 0, batch.clone()));
            sent += per_batch;
        }
        in_flight.next().await.unwrap().unwrap();
    }
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "produce: {sent} records in {seconds:.2} s = {:.0} records/s",
        sent as f64 / seconds
    );

    let end = client
        .list_offsets("t", 0, OffsetSpec::Latest)
        .await
        .unwrap()
        .offset
        .unwrap();
    let options = FetchOptions {
        max_bytes: 8 << 20,
        max_wait_ms: 100,
        min_bytes: 1,
    };
    let mut consumer = PartitionConsumer::new(&client, "t", 0, 0, options).unwrap();
    let started = Instant::now();
    let mut received = 0i64;
    while received < end {
        received += consumer.next().await.unwrap().records.len() as i64;
    }
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "consume: {received} records in {seconds:.2} s = {:.0} records/s",
        received as f64 / seconds
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "latency measurement; run in release"]
async fn throughput_e2e_latency_at_10k_per_second() {
    let (address, broker) = FakeBroker::start().await;
    broker.create("t", 1);
    let client = Client::connect(&address).await.unwrap();
    let base = Instant::now();
    let options = FetchOptions {
        max_bytes: 8 << 20,
        max_wait_ms: 500,
        min_bytes: 1,
    };
    let mut consumer = PartitionConsumer::new(&client, "t", 0, 0, options).unwrap();
    let total = 30_000u64;
    let reader = tokio::spawn(async move {
        let mut latencies = Vec::new();
        while (latencies.len() as u64) < total {
            let fetched = consumer.next().await.unwrap();
            let now = base.elapsed().as_nanos() as u64;
            for record in fetched.records {
                let stamp = u64::from_be_bytes(record.value.unwrap()[..8].try_into().unwrap());
                latencies.push(now - stamp);
            }
        }
        latencies.sort_unstable();
        latencies
    });
    let producer = BatchSender::new(&client, BatchSenderOptions::default());
    let mut ticker = tokio::time::interval(std::time::Duration::from_millis(1));
    let started = Instant::now();
    let mut sent = 0;
    let mut acks = FuturesOrdered::new();
    while sent < total {
        ticker.tick().await;
        let due = ((started.elapsed().as_secs_f64() * 10_000.0) as u64).min(total);
        if due > sent {
            let mut value = (base.elapsed().as_nanos() as u64).to_be_bytes().to_vec();
            value.resize(100, b'x');
            let record = Record {
                key: None,
                value: Some(Bytes::from(value)),
                timestamp: 1,
                headers: vec![],
            };
            let records = vec![record; (due - sent) as usize];
            acks.push_back(producer.send_records("t", 0, &records));
            sent = due;
        }
        while let Some(Some(ack)) = futures::FutureExt::now_or_never(acks.next()) {
            ack.unwrap();
        }
    }
    let latencies = reader.await.unwrap();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize] as f64 / 1e6;
    eprintln!(
        "e2e ms: p50 {:.3} p99 {:.3} p99.9 {:.3} max {:.3}",
        at(0.5),
        at(0.99),
        at(0.999),
        at(1.0)
    );
}
