//! `tributary perf e2e`: a steady-rate producer and a long-polling consumer in one process.
//!
//! Every record's value starts with its send time (8 bytes, big-endian nanoseconds since the
//! run's start on the monotonic clock of this process), stamped just before its batch is
//! sent; the consumer subtracts it from the time it hands the record over. The producer wakes
//! every millisecond and sends the records that are due since the last wake-up, so at 10,000
//! records/s batches hold about ten records.

use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::{BufMut, Bytes, BytesMut};
use clap::Args;
use futures::stream::{FuturesOrdered, StreamExt};
use tributary_client::{
    Acks, BatchBuilder, BatchSender, BatchSenderOptions, Client, Compression, FetchOptions,
    OffsetSpec, PartitionConsumer, Record,
};

use super::stats::Stats;
use crate::cli::args::now_ms;

/// Producer wake-up period.
const TICK: Duration = Duration::from_millis(1);
/// How long the consumer may lag behind the producer at the end before the run gives up.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Arguments of `perf e2e`.
#[derive(Debug, Args)]
pub struct PerfE2eArgs {
    /// Topic to use.
    #[arg(long)]
    pub topic: String,
    /// Partition to use.
    #[arg(long, default_value_t = 0)]
    pub partition: i32,
    /// Records per second.
    #[arg(long)]
    pub rate: u64,
    /// How long to produce.
    #[arg(long)]
    pub duration_secs: u64,
    /// Bytes per record value (at least 8).
    #[arg(long, default_value_t = 100)]
    pub record_size: usize,
    /// Acknowledgement level: -1, 0 or 1.
    #[arg(long, default_value = "1", value_parser = crate::cli::args::acks, allow_hyphen_values = true)]
    pub acks: Acks,
    /// How long each fetch long-polls on the broker.
    #[arg(long, default_value_t = 500)]
    pub max_wait_ms: i32,
    /// Codec for each batch's records: none, gzip, snappy, lz4 or zstd (compressing and
    /// decompressing are part of the measured latency).
    #[arg(long, default_value = "none", value_parser = crate::cli::args::compression)]
    pub compression: Compression,
}

/// A batch of `count` records whose values start with `sent_nanos`, compressed with
/// `compression`.
pub fn stamped_batch(
    count: u64,
    record_size: usize,
    sent_nanos: u64,
    compression: Compression,
) -> Bytes {
    let mut value = BytesMut::with_capacity(record_size);
    value.put_u64(sent_nanos);
    value.resize(record_size.max(8), b'x');
    let value = value.freeze();
    let timestamp = now_ms();
    let mut builder = BatchBuilder::with_capacity(count as usize * (record_size + 16) + 128)
        .compression(compression);
    for _ in 0..count {
        builder.push(&Record {
            key: None,
            value: Some(value.clone()),
            timestamp,
            headers: Vec::new(),
        });
    }
    builder.build()
}

/// The send time stamped in a value, if it has one.
pub fn sent_nanos(value: Option<&[u8]>) -> Option<u64> {
    let stamp: [u8; 8] = value?.get(..8)?.try_into().ok()?;
    Some(u64::from_be_bytes(stamp))
}

async fn consume(
    mut consumer: PartitionConsumer,
    expected: u64,
    base: Instant,
) -> anyhow::Result<Stats> {
    let mut stats = Stats::new("end-to-end");
    while stats.records() < expected {
        let fetched = consumer.next().await.context("consuming")?;
        let now = base.elapsed().as_nanos() as u64;
        for record in &fetched.records {
            if let Some(sent) = sent_nanos(record.value.as_deref()) {
                stats.record_latency(Duration::from_nanos(now.saturating_sub(sent)));
            }
            stats.add(1, record.value.as_ref().map_or(0, |v| v.len() as u64));
        }
        stats.report_progress();
    }
    Ok(stats)
}

pub async fn run(client: &Client, args: PerfE2eArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.rate > 0, "--rate must be positive");
    anyhow::ensure!(
        args.record_size >= 8,
        "--record-size must be at least 8 (the send time)"
    );
    let total = args.rate * args.duration_secs;
    let start = client
        .list_offsets(&args.topic, args.partition, OffsetSpec::Latest)
        .await
        .with_context(|| {
            format!(
                "looking up the latest offset of {}-{}",
                args.topic, args.partition
            )
        })?
        .offset
        .unwrap_or(0);
    let base = Instant::now();
    let options = FetchOptions {
        max_bytes: 8 * 1024 * 1024,
        max_wait_ms: args.max_wait_ms,
        min_bytes: 1,
    };
    let consumer = PartitionConsumer::new(client, &args.topic, args.partition, start, options)?;
    let mut consumer_task = tokio::spawn(consume(consumer, total, base));
    eprintln!(
        "perf e2e: {} records/s for {} s ({} records of {} bytes) to {}-{} from offset {start}",
        args.rate, args.duration_secs, total, args.record_size, args.topic, args.partition
    );

    let producer = BatchSender::new(
        client,
        BatchSenderOptions {
            acks: args.acks,
            ..BatchSenderOptions::default()
        },
    );
    let mut acks = Stats::new("produce acks");
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut in_flight = FuturesOrdered::new();
    let producing_since = Instant::now();
    let mut sent = 0u64;
    let mut consumed = None;
    while sent < total || !in_flight.is_empty() {
        tokio::select! {
            _ = ticker.tick(), if sent < total => {
                let due = ((producing_since.elapsed().as_secs_f64() * args.rate as f64) as u64).min(total);
                if due > sent {
                    let count = due - sent;
                    let batch = stamped_batch(
                        count,
                        args.record_size,
                        base.elapsed().as_nanos() as u64,
                        args.compression,
                    );
                    let acknowledged = producer.send_batch(&args.topic, args.partition, batch);
                    let sent_at = Instant::now();
                    in_flight.push_back(async move { (acknowledged.await, sent_at, count) });
                    sent = due;
                }
            }
            Some((ack, sent_at, count)) = in_flight.next(), if !in_flight.is_empty() => {
                ack.with_context(|| format!("producing to {}-{}", args.topic, args.partition))?;
                acks.record_latency(sent_at.elapsed());
                acks.add(count, count * args.record_size as u64);
            }
            finished = &mut consumer_task, if consumed.is_none() => {
                // All records arrived before their last acknowledgements, or the consumer failed.
                consumed = Some(finished.context("consumer task")??);
            }
        }
    }
    let stats = match consumed {
        Some(stats) => stats,
        None => match tokio::time::timeout(DRAIN_TIMEOUT, &mut consumer_task).await {
            Ok(finished) => finished.context("consumer task")??,
            Err(_) => {
                consumer_task.abort();
                anyhow::bail!(
                    "the consumer did not receive all {total} records within {DRAIN_TIMEOUT:?} after the last send"
                );
            }
        },
    };
    eprintln!("{}", acks.summary());
    eprintln!("{}", stats.summary());
    producer.close().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip() {
        for codec in [Compression::None, Compression::Lz4, Compression::Zstd] {
            let batch = stamped_batch(3, 20, 123_456_789, codec);
            let records = tributary_record::decode_records(&batch).unwrap();
            assert_eq!(records.len(), 3);
            for record in &records {
                assert_eq!(record.value.as_ref().unwrap().len(), 20);
                assert_eq!(sent_nanos(record.value.as_deref()), Some(123_456_789));
            }
        }
        assert_eq!(sent_nanos(Some(b"short")), None);
        assert_eq!(sent_nanos(None), None);
    }
}
