//! `tributary perf produce`: batches encoded as the run goes (on their own thread) and sent on
//! one produce stream, several in flight, round robin over the chosen partitions. Each record is
//! a fresh slice of a random payload; each batch is stamped with the time it was built.

use std::time::Instant;

use anyhow::Context;
use bytes::Bytes;
use clap::Args;
use futures::stream::{FuturesOrdered, StreamExt};
use rand::Rng;
use tributary_client::{
    Acks, BatchBuilder, Client, Compression, Producer, ProducerOptions, Record,
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
    /// Target bytes per batch (one batch per request).
    #[arg(long, default_value_t = 1024 * 1024)]
    pub batch_size: usize,
    /// Requests in flight on the produce stream.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Partitions to write to, round robin: `all` or a list such as 0,1,2.
    #[arg(long, default_value = "all", value_parser = crate::cli::args::partitions)]
    pub partitions: PartitionSelection,
    /// Acknowledgement level: -1, 0 or 1.
    #[arg(long, default_value = "1", value_parser = crate::cli::args::acks, allow_hyphen_values = true)]
    pub acks: Acks,
    /// Codec for each batch's records: none, gzip, snappy, lz4 or zstd (compressed on the
    /// encoder thread; a batch that would not get smaller is sent uncompressed).
    #[arg(long, default_value = "none", value_parser = crate::cli::args::compression)]
    pub compression: Compression,
}

/// Random printable bytes from which record values are cut.
pub fn random_payload(record_size: usize) -> Vec<u8> {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(record_size + 1024)
        .collect()
}

/// A batch of at most `max_records` records of `record_size` bytes that stays within
/// `batch_size` bytes before compression (always at least one record), its records compressed
/// with `compression`. Returns the batch and its record count.
pub fn build_batch(
    max_records: u64,
    record_size: usize,
    batch_size: usize,
    payload: &[u8],
    compression: Compression,
) -> (Bytes, u64) {
    let timestamp = now_ms();
    let mut builder =
        BatchBuilder::with_capacity(batch_size.min(64 << 20)).compression(compression);
    for i in 0..max_records {
        let start = (i as usize * 7) % (payload.len() - record_size + 1);
        let record = Record {
            key: None,
            value: Some(Bytes::copy_from_slice(&payload[start..start + record_size])),
            timestamp,
            headers: Vec::new(),
        };
        if !builder.is_empty() && builder.size_with(&record) > batch_size {
            break;
        }
        builder.push(&record);
    }
    let count = builder.len() as u64;
    (builder.build(), count)
}

pub async fn run(client: &Client, args: PerfProduceArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.num_records > 0, "--num-records must be positive");
    anyhow::ensure!(args.concurrency > 0, "--concurrency must be positive");
    let partitions = args.partitions.resolve(client, &args.topic).await?;
    anyhow::ensure!(
        !partitions.is_empty(),
        "topic {} has no partitions",
        args.topic
    );

    // Batches are encoded as the run goes, on a thread of their own, so the figures include the
    // client's encoding work (as a real producer's would) without it serialising the sends.
    let payload = random_payload(args.record_size);
    let (sample, per_batch) = build_batch(
        args.num_records,
        args.record_size,
        args.batch_size,
        &payload,
        args.compression,
    );
    let (batch_tx, mut batches) = tokio::sync::mpsc::channel::<(Bytes, u64)>(args.concurrency * 2);
    let (num_records, record_size, batch_size, compression) = (
        args.num_records,
        args.record_size,
        args.batch_size,
        args.compression,
    );
    let encoder = tokio::task::spawn_blocking(move || {
        let mut left = num_records;
        while left > 0 {
            let (batch, count) = build_batch(
                left.min(per_batch),
                record_size,
                batch_size,
                &payload,
                compression,
            );
            left -= count;
            if batch_tx.blocking_send((batch, count)).is_err() {
                break;
            }
        }
    });
    eprintln!(
        "perf produce: {} records of {} bytes to {} partition(s) of {}, {} records per batch, {} in flight",
        args.num_records,
        args.record_size,
        partitions.len(),
        args.topic,
        per_batch,
        args.concurrency
    );
    if args.compression != Compression::None {
        let sent_with = tributary_record::BatchHeader::parse(&sample)
            .ok()
            .and_then(|header| header.attributes.compression().ok())
            .unwrap_or_default();
        eprintln!(
            "perf produce: {} asked, a full batch goes out as {} bytes with codec {} ({} records)",
            args.compression,
            sample.len(),
            sent_with,
            per_batch
        );
    }

    let producer = Producer::new(
        client,
        ProducerOptions {
            acks: args.acks,
            timeout_ms: 0,
            compression: args.compression,
        },
    );
    let mut stats = Stats::new("produce");
    stats.restart_clock();
    let mut in_flight = FuturesOrdered::new();
    let (mut sent, mut requests) = (0u64, 0usize);
    while sent < args.num_records || !in_flight.is_empty() {
        while in_flight.len() < args.concurrency && sent < args.num_records {
            let Some((batch, count)) = batches.recv().await else {
                anyhow::bail!("the batch encoder stopped early");
            };
            let partition = partitions[requests % partitions.len()];
            let acknowledged = producer.send_batch(&args.topic, partition, batch);
            let sent_at = Instant::now();
            in_flight.push_back(async move { (acknowledged.await, sent_at, count, partition) });
            sent += count;
            requests += 1;
        }
        let Some((ack, sent_at, count, partition)) = in_flight.next().await else {
            break;
        };
        ack.with_context(|| format!("producing to {}-{partition}", args.topic))?;
        stats.record_latency(sent_at.elapsed());
        stats.add(count, count * args.record_size as u64);
        stats.report_progress();
    }
    eprintln!("{}", stats.summary());
    producer.close().await;
    encoder.await.context("batch encoder")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_size_and_count() {
        let payload = random_payload(100);
        let (batch, count) = build_batch(1_000_000, 100, 1 << 20, &payload, Compression::None);
        assert!(batch.len() <= 1 << 20);
        assert!(count > 9000, "{count}");
        let records = tributary_record::decode_records(&batch).unwrap();
        assert_eq!(records.len() as u64, count);
        assert!(
            records
                .iter()
                .all(|r| r.value.as_ref().unwrap().len() == 100)
        );

        assert_eq!(
            build_batch(5, 100, 1 << 20, &payload, Compression::None).1,
            5
        );
        // A record larger than the batch size still goes out alone.
        assert_eq!(build_batch(5, 100, 10, &payload, Compression::None).1, 1);

        // Values are overlapping slices of one payload, so they compress.
        let (plain, _) = build_batch(1000, 100, 1 << 20, &payload, Compression::None);
        let (zstd, count) = build_batch(1000, 100, 1 << 20, &payload, Compression::Zstd);
        assert_eq!(count, 1000);
        assert!(
            zstd.len() < plain.len() / 2,
            "{} of {}",
            zstd.len(),
            plain.len()
        );
        assert_eq!(tributary_record::decode_records(&zstd).unwrap().len(), 1000);
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
            (args.record_size, args.batch_size, args.concurrency),
            (100, 1 << 20, 4)
        );
        assert_eq!(args.acks, Acks::Leader);
        assert_eq!(args.compression, Compression::None);
    }
}
