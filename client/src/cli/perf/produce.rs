//! `tributary perf produce`: records sent one by one through the batching [`Producer`], as an
//! application would (Kafka's `kafka-producer-perf-test` does the same). Each value is a slice of
//! one random payload (no copy); the latency is per record, from `send` to its acknowledgement.

use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use clap::Args;
use futures::FutureExt;
use rand::Rng;
use tributary_client::{
    Acks, Client, Compression, DeliveryFuture, Partitioner, Producer, ProducerOptions,
    ProducerRecord,
};

use super::stats::Stats;
use crate::cli::args::{PartitionSelection, now_ms};

/// Arguments of `perf produce`.
#[derive(Debug, Args)]
pub struct PerfProduceArgs {
    /// Topic to write to.
    #[arg(long)]
    pub topic: String,
    /// Records to send.
    #[arg(long)]
    pub num_records: u64,
    /// Bytes per record value.
    #[arg(long, default_value_t = 100)]
    pub record_size: usize,
    /// The producer's batch.size in bytes.
    #[arg(long, default_value_t = 1024 * 1024)]
    pub batch_size: usize,
    /// The producer's linger.ms.
    #[arg(long, default_value_t = 0)]
    pub linger_ms: u64,
    /// Requests in flight per broker (max.in.flight.requests.per.connection).
    #[arg(long, visible_alias = "concurrency", default_value_t = 5)]
    pub max_in_flight: usize,
    /// The producer's buffer.memory in bytes.
    #[arg(long, default_value_t = 32 * 1024 * 1024)]
    pub buffer_memory: usize,
    /// Partitions to write to: `all` (the partitioner chooses) or a list such as 0,1,2 (records
    /// name them in turn).
    #[arg(long, default_value = "all", value_parser = crate::cli::args::partitions)]
    pub partitions: PartitionSelection,
    /// Partitioner for `--partitions all`: default (sticky for these keyless records), sticky
    /// or round-robin.
    #[arg(long, default_value = "default", value_parser = partitioner)]
    pub partitioner: Partitioner,
    /// Acknowledgement level: -1, 0 or 1.
    #[arg(long, default_value = "1", value_parser = crate::cli::args::acks, allow_hyphen_values = true)]
    pub acks: Acks,
    /// The producer's compression.type: none, gzip, snappy, lz4 or zstd (a batch that would
    /// not get smaller is sent uncompressed).
    #[arg(long, default_value = "none", value_parser = crate::cli::args::compression)]
    pub compression: Compression,
    /// Idempotent producer (enable.idempotence): retries never duplicate or reorder records.
    /// Needs --acks -1.
    #[arg(long)]
    pub idempotence: bool,
}

fn partitioner(text: &str) -> Result<Partitioner, String> {
    Partitioner::parse(text).map_err(|error| error.to_string())
}

/// Random printable bytes from which record values are cut.
pub fn random_payload(record_size: usize) -> Vec<u8> {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(record_size + 1024)
        .collect()
}

/// The value of record `index`: a slice of `payload` (shared, not copied).
pub fn value_of(payload: &Bytes, record_size: usize, index: u64) -> Bytes {
    let start = (index as usize * 7) % (payload.len() - record_size + 1);
    payload.slice(start..start + record_size)
}

/// Deliveries handed to the collector at a time (one channel message per chunk, not per
/// record).
const CHUNK: usize = 1024;

/// Awaits deliveries in send order, recording each record's latency: the time from `send` to
/// the collector seeing the delivery complete. The clock is read per chunk and after each
/// wait, not per record: deliveries found complete (the rest of a batch) share that reading.
async fn collect(
    mut chunks: tokio::sync::mpsc::UnboundedReceiver<Vec<(DeliveryFuture, Instant)>>,
    mut stats: Stats,
    record_size: u64,
    topic: String,
) -> anyhow::Result<Stats> {
    let mut now;
    while let Some(chunk) = chunks.recv().await {
        now = Instant::now();
        for (mut delivery, sent_at) in chunk {
            let delivered = match (&mut delivery).now_or_never() {
                Some(delivered) => delivered,
                None => {
                    let delivered = delivery.await;
                    now = Instant::now();
                    delivered
                }
            };
            delivered.with_context(|| format!("producing to {topic}"))?;
            stats.record_latency(now.saturating_duration_since(sent_at));
            stats.add(1, record_size);
            if stats.records().is_multiple_of(CHUNK as u64) {
                stats.report_progress();
            }
        }
    }
    Ok(stats)
}

pub async fn run(client: &Client, args: PerfProduceArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.num_records > 0, "--num-records must be positive");
    anyhow::ensure!(args.max_in_flight > 0, "--max-in-flight must be positive");
    let partitions = args.partitions.resolve(client, &args.topic).await?;
    anyhow::ensure!(
        !partitions.is_empty(),
        "topic {} has no partitions",
        args.topic
    );
    let explicit = match &args.partitions {
        PartitionSelection::All => None,
        PartitionSelection::List(list) => Some(list.clone()),
    };
    let producer = Producer::new(
        client,
        ProducerOptions {
            acks: args.acks,
            batch_size: args.batch_size,
            linger: Duration::from_millis(args.linger_ms),
            max_in_flight_requests_per_connection: args.max_in_flight,
            buffer_memory: args.buffer_memory,
            max_request_size: args.batch_size.max(1024 * 1024),
            partitioner: args.partitioner,
            compression: args.compression,
            idempotence: args.idempotence,
            ..ProducerOptions::default()
        },
    )?;
    eprintln!(
        "perf produce: {} records of {} bytes to {} partition(s) of {}, batch.size {}, linger.ms {}, {} in flight per broker, compression {}",
        args.num_records,
        args.record_size,
        partitions.len(),
        args.topic,
        args.batch_size,
        args.linger_ms,
        args.max_in_flight,
        args.compression
    );

    let payload = Bytes::from(random_payload(args.record_size));
    let mut stats = Stats::new("produce");
    stats.restart_clock();
    let (deliveries, receiver) = tokio::sync::mpsc::unbounded_channel();
    let collector = tokio::spawn(collect(
        receiver,
        stats,
        args.record_size as u64,
        args.topic.clone(),
    ));
    let timestamp = now_ms();
    let topic = args.topic.as_str();
    let mut chunk = Vec::with_capacity(CHUNK);
    for index in 0..args.num_records {
        let record = ProducerRecord {
            topic: topic.to_owned(),
            partition: explicit
                .as_ref()
                .map(|list| list[index as usize % list.len()]),
            key: None,
            value: Some(value_of(&payload, args.record_size, index)),
            // One timestamp for the run: the clock is not what is measured.
            timestamp: Some(timestamp),
            headers: Vec::new(),
        };
        let sent_at = Instant::now();
        let delivery = producer
            .send(record)
            .await
            .with_context(|| format!("producing to {topic}"))?;
        chunk.push((delivery, sent_at));
        if chunk.len() == CHUNK {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
            if deliveries.send(full).is_err() {
                break;
            }
        }
    }
    let _ = deliveries.send(chunk);
    drop(deliveries);
    producer.flush().await;
    let stats = collector.await.context("delivery collector")??;
    eprintln!("{}", stats.summary());
    producer.close().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_slices_of_the_payload() {
        let payload = Bytes::from(random_payload(100));
        for index in [0, 1, 146, 1_000_000] {
            let value = value_of(&payload, 100, index);
            assert_eq!(value.len(), 100);
            assert!(value.iter().all(u8::is_ascii_alphanumeric));
        }
    }

    #[test]
    fn parses_flags() {
        use clap::Parser;
        let cli = crate::cli::Args::try_parse_from([
            "tributary",
            "perf",
            "produce",
            "--topic",
            "t",
            "--num-records",
            "10",
            "--partitions",
            "0,1",
        ])
        .unwrap();
        let crate::cli::Command::Perf(super::super::PerfCommand::Produce(args)) = cli.command
        else {
            panic!()
        };
        assert_eq!(args.partitions, PartitionSelection::List(vec![0, 1]));
        assert_eq!(
            (args.record_size, args.batch_size, args.max_in_flight),
            (100, 1 << 20, 5)
        );
        assert_eq!(
            (args.linger_ms, args.partitioner),
            (0, Partitioner::Default)
        );
        assert_eq!(args.acks, Acks::Leader);
        assert_eq!(args.compression, Compression::None);
    }
}
