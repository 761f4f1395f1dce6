//! `tributary perf consume`: one pipelined consumer per partition from the earliest offset.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use tokio::sync::mpsc;
use tributary_client::{Client, FetchOptions, OffsetSpec, PartitionConsumer};

use super::stats::Stats;
use crate::cli::args::PartitionSelection;

/// Arguments of `perf consume`.
#[derive(Debug, Args)]
pub struct PerfConsumeArgs {
    /// Topic to read.
    #[arg(long)]
    pub topic: String,
    /// Stop after this many records.
    #[arg(long)]
    pub num_records: u64,
    /// Largest fetch response.
    #[arg(long, default_value_t = 8 * 1024 * 1024)]
    pub max_bytes: i32,
    /// Partitions to read: `all` or a list such as 0,1,2.
    #[arg(long, default_value = "all", value_parser = crate::cli::args::partitions)]
    pub partitions: PartitionSelection,
    /// Give up when no record arrives for this long.
    #[arg(long, default_value_t = 10_000)]
    pub timeout_ms: u64,
}

/// What one partition's task reports per non-empty fetch.
#[derive(Debug)]
struct Fetched {
    records: u64,
    bytes: u64,
    waited: Duration,
}

async fn read_partition(
    mut consumer: PartitionConsumer,
    report: mpsc::UnboundedSender<anyhow::Result<Fetched>>,
) {
    loop {
        let asked = Instant::now();
        let result = consumer
            .next()
            .await
            .with_context(|| format!("reading {}-{}", consumer.topic(), consumer.partition()));
        let fetched = result.map(|fetched| Fetched {
            records: fetched.records.len() as u64,
            bytes: fetched
                .records
                .iter()
                .map(|r| {
                    (r.key.as_ref().map_or(0, |k| k.len())
                        + r.value.as_ref().map_or(0, |v| v.len())) as u64
                })
                .sum(),
            waited: asked.elapsed(),
        });
        let failed = fetched.is_err();
        if report.send(fetched).is_err() || failed {
            return;
        }
    }
}

pub async fn run(client: &Client, args: PerfConsumeArgs) -> anyhow::Result<()> {
    let partitions = args.partitions.resolve(client, &args.topic).await?;
    anyhow::ensure!(
        !partitions.is_empty(),
        "topic {} has no partitions",
        args.topic
    );
    let options = FetchOptions {
        max_bytes: args.max_bytes,
        max_wait_ms: 500,
        min_bytes: 1,
    };
    let (report, mut reports) = mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for &partition in &partitions {
        let start = client
            .list_offsets(&args.topic, partition, OffsetSpec::Earliest)
            .await
            .with_context(|| {
                format!(
                    "looking up the earliest offset of {}-{partition}",
                    args.topic
                )
            })?
            .offset
            .unwrap_or(0);
        let consumer = PartitionConsumer::new(client, &args.topic, partition, start, options)?;
        tasks.push(tokio::spawn(read_partition(consumer, report.clone())));
    }
    drop(report);
    eprintln!(
        "perf consume: {} records from {} partition(s) of {}, max_bytes {}",
        args.num_records,
        partitions.len(),
        args.topic,
        args.max_bytes
    );

    let mut stats = Stats::new("consume (fetch wait)");
    let timeout = Duration::from_millis(args.timeout_ms);
    let mut outcome = Ok(());
    let mut last_progress = Instant::now();
    while stats.records() < args.num_records {
        let remaining = timeout.saturating_sub(last_progress.elapsed());
        match tokio::time::timeout(remaining, reports.recv()).await {
            Err(_) => {
                outcome = Err(anyhow::anyhow!(
                    "only {} of {} records arrived: nothing for {} ms",
                    stats.records(),
                    args.num_records,
                    args.timeout_ms
                ));
                break;
            }
            Ok(None) => break,
            Ok(Some(fetched)) => {
                let fetched = fetched?;
                if fetched.records == 0 {
                    continue;
                }
                last_progress = Instant::now();
                stats.add(fetched.records, fetched.bytes);
                stats.record_latency(fetched.waited);
                stats.report_progress();
            }
        }
    }
    for task in tasks {
        task.abort();
    }
    eprintln!("{}", stats.summary());
    outcome
}
