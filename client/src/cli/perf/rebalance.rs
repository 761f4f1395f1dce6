//! `tributary perf rebalance`: how long a consumer group takes to form and to rebalance.
//!
//! `--members` subscribed consumers run in this process, each polling in its own task. The
//! group is *settled* when every member reports the same generation and their assignments
//! together cover every partition of the topic. Measured: the first formation (from starting
//! the members; it includes the broker's `group.initial.rebalance.delay.ms`), then per round
//! a member leaving (from its `close`, which sends LeaveGroup, to the others settling in a newer
//! generation) and a new member joining (from its start to everyone settling in a newer
//! generation). Members learn of a rebalance from a heartbeat answer, so
//! `--heartbeat-interval-ms` bounds how fast they re-join.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use tributary_client::{Client, Consumer, ConsumerOptions, GroupOptions, OffsetReset};

/// Longest wait for the group to settle.
const SETTLE_LIMIT: Duration = Duration::from_secs(120);
/// How often members poll (a rebalance proceeds inside `poll`) and the settling is checked.
const TICK: Duration = Duration::from_millis(20);

/// Arguments of `perf rebalance`.
#[derive(Debug, Args)]
pub struct PerfRebalanceArgs {
    /// The topic the members subscribe to (its partition count is what they share).
    #[arg(long)]
    pub topic: String,
    /// The group (default: a fresh name per run).
    #[arg(long)]
    pub group: Option<String>,
    /// Members in the group.
    #[arg(long, default_value_t = 10)]
    pub members: usize,
    /// Leave-and-join rounds after the group formed.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// The members' session.timeout.ms.
    #[arg(long, default_value_t = 10_000)]
    pub session_timeout_ms: u64,
    /// The members' heartbeat.interval.ms (Kafka's default 3000).
    #[arg(long, default_value_t = 3_000)]
    pub heartbeat_interval_ms: u64,
}

/// What a member last saw: its generation and how many partitions it has.
type View = Arc<Mutex<Option<(i32, usize)>>>;

struct Member {
    view: View,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

fn start_member(client: &Client, topic: &str, options: &ConsumerOptions) -> anyhow::Result<Member> {
    let mut consumer = Consumer::new(client, options.clone())?;
    consumer.subscribe(&[topic])?;
    let view: View = Arc::new(Mutex::new(None));
    let stop = Arc::new(AtomicBool::new(false));
    let (report, stopped) = (view.clone(), stop.clone());
    let task = tokio::spawn(async move {
        while !stopped.load(Ordering::Acquire) {
            consumer.poll(TICK).await.context("polling")?;
            let now = consumer
                .group_generation()
                .map(|(generation, _)| (generation, consumer.assignment().len()));
            *report.lock().expect("view lock") = now;
        }
        consumer.close().await.context("leaving the group")
    });
    Ok(Member { view, stop, task })
}

/// The common generation once `members` agree on one newer than `after` and cover all
/// `partitions`.
pub fn settled(views: &[Option<(i32, usize)>], after: i32, partitions: usize) -> Option<i32> {
    let generation = views.first()?.as_ref()?.0;
    let agreed = views
        .iter()
        .all(|v| v.is_some_and(|(g, _)| g == generation));
    let covered: usize = views.iter().flatten().map(|(_, n)| n).sum();
    (agreed && generation > after && covered == partitions).then_some(generation)
}

async fn wait_settled(members: &[Member], after: i32, partitions: usize) -> anyhow::Result<i32> {
    let started = Instant::now();
    loop {
        let views: Vec<Option<(i32, usize)>> = members
            .iter()
            .map(|m| *m.view.lock().expect("view lock"))
            .collect();
        if let Some(generation) = settled(&views, after, partitions) {
            return Ok(generation);
        }
        anyhow::ensure!(
            started.elapsed() < SETTLE_LIMIT,
            "the group did not settle within {SETTLE_LIMIT:?}: {views:?}"
        );
        if let Some(failed) = members.iter().find(|m| m.task.is_finished()) {
            anyhow::bail!(
                "a member stopped: {:?}",
                failed.view.lock().expect("view lock")
            );
        }
        tokio::time::sleep(TICK).await;
    }
}

fn summary(label: &str, samples: &mut [Duration]) -> String {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    match samples {
        [] => format!("{label}: no samples"),
        _ => format!(
            "{label}: {} rounds, ms min {:.0} median {:.0} max {:.0}",
            samples.len(),
            ms(samples[0]),
            ms(samples[samples.len() / 2]),
            ms(samples[samples.len() - 1])
        ),
    }
}

pub async fn run(client: &Client, args: PerfRebalanceArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.members >= 2, "--members must be at least 2");
    let partitions = client
        .partitions_of(&args.topic)
        .await
        .with_context(|| format!("looking up {}", args.topic))?
        .len();
    let group = args
        .group
        .clone()
        .unwrap_or_else(|| format!("perf-rebalance-{}", std::process::id()));
    let options = ConsumerOptions {
        auto_offset_reset: OffsetReset::Latest,
        group: Some(GroupOptions {
            client_id: "perf-rebalance".to_owned(),
            session_timeout: Duration::from_millis(args.session_timeout_ms),
            heartbeat_interval: Duration::from_millis(args.heartbeat_interval_ms),
            enable_auto_commit: false,
            ..GroupOptions::new(group.as_str())
        }),
        ..ConsumerOptions::default()
    };
    eprintln!(
        "perf rebalance: {} members of {group} on {} ({partitions} partitions), heartbeat {} ms, session {} ms",
        args.members, args.topic, args.heartbeat_interval_ms, args.session_timeout_ms
    );
    let started = Instant::now();
    let mut members = (0..args.members)
        .map(|_| start_member(client, &args.topic, &options))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut generation = wait_settled(&members, 0, partitions).await?;
    eprintln!(
        "form: {} members settled in generation {generation} after {:.0} ms (includes the broker's group.initial.rebalance.delay.ms)",
        members.len(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    let (mut leaves, mut joins) = (Vec::new(), Vec::new());
    for _ in 0..args.rounds {
        let leaving = members.remove(0);
        let began = Instant::now();
        leaving.stop.store(true, Ordering::Release);
        leaving.task.await.context("member task")??;
        generation = wait_settled(&members, generation, partitions).await?;
        leaves.push(began.elapsed());

        let began = Instant::now();
        members.push(start_member(client, &args.topic, &options)?);
        generation = wait_settled(&members, generation, partitions).await?;
        joins.push(began.elapsed());
    }
    eprintln!("{}", summary("leave", &mut leaves));
    eprintln!("{}", summary("join", &mut joins));
    for member in members {
        member.stop.store(true, Ordering::Release);
        member.task.await.context("member task")??;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settled_needs_one_newer_generation_covering_every_partition() {
        type Row<'a> = (&'a [Option<(i32, usize)>], i32, Option<i32>);
        let table: [Row<'_>; 6] = [
            (&[Some((2, 3)), Some((2, 3))], 1, Some(2)),
            (&[Some((2, 3)), Some((2, 3))], 2, None),
            (&[Some((2, 3)), Some((1, 3))], 0, None),
            (&[Some((2, 3)), None], 0, None),
            (&[Some((2, 3)), Some((2, 2))], 0, None),
            (&[], 0, None),
        ];
        for (views, after, expected) in table {
            assert_eq!(
                settled(views, after, 6),
                expected,
                "{views:?} after {after}"
            );
        }
    }
}
