//! `tributary perf commit`: offset commits per second through a group's coordinator.
//!
//! Each commit carries `--partitions` offsets of one topic (generation -1, a group without
//! members) and is acknowledged once every in-sync replica of the group's `__consumer_offsets`
//! partition has it, like Kafka's commits (acks=all). `--concurrency` commits are kept in
//! flight.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use futures::stream::{FuturesUnordered, StreamExt};
use hdrhistogram::Histogram;
use tributary_client::{Client, GroupOffset};

use super::stats::latency_text;

/// Arguments of `perf commit`.
#[derive(Debug, Args)]
pub struct PerfCommitArgs {
    /// The group to commit for (it must have no members).
    #[arg(long)]
    pub group: String,
    /// The topic the offsets are for (it must exist).
    #[arg(long)]
    pub topic: String,
    /// Offsets per commit (partitions 0..N).
    #[arg(long, default_value_t = 1)]
    pub partitions: i32,
    /// Commits to send.
    #[arg(long, default_value_t = 10_000)]
    pub commits: u64,
    /// Commits in flight at once.
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
}

pub async fn run(client: &Client, args: PerfCommitArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.partitions >= 1, "--partitions must be at least 1");
    anyhow::ensure!(args.concurrency >= 1, "--concurrency must be at least 1");
    let group = client.group(&args.group)?;
    let coordinator = group
        .find_coordinator()
        .await
        .with_context(|| format!("finding the coordinator of {:?}", args.group))?;
    eprintln!(
        "perf commit: {} commits of {} offsets for group {} at broker {}, {} in flight",
        args.commits, args.partitions, args.group, coordinator.broker_id, args.concurrency
    );
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut in_flight = FuturesUnordered::new();
    let started = Instant::now();
    let mut sent = 0u64;
    let mut done = 0u64;
    while done < args.commits {
        while sent < args.commits && in_flight.len() < args.concurrency {
            let offsets: Vec<GroupOffset> = (0..args.partitions)
                .map(|p| GroupOffset::new(&args.topic, p, sent as i64))
                .collect();
            let group = group.clone();
            in_flight.push(async move {
                let began = Instant::now();
                group.commit(&offsets).await.map(|()| began.elapsed())
            });
            sent += 1;
        }
        let latency: Duration = in_flight
            .next()
            .await
            .expect("a commit is in flight")
            .context("committing")?;
        histogram.saturating_record((latency.as_micros() as u64).max(1));
        done += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "offset commits: {done} commits in {seconds:.2} s, {:.0} commits/s, {:.0} offsets/s{}",
        done as f64 / seconds,
        (done * args.partitions as u64) as f64 / seconds,
        latency_text(&histogram)
    );
    Ok(())
}
