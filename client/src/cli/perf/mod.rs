//! `tributary perf ...`: throughput and latency measurements.

mod commit;
mod consume;
mod e2e;
mod produce;
mod rebalance;
mod stats;

use clap::Subcommand;
use tributary_client::Client;

/// Benchmarks.
#[derive(Debug, Subcommand)]
pub enum PerfCommand {
    /// Produce pre-built batches as fast as possible; per-request ack latency.
    Produce(produce::PerfProduceArgs),
    /// Consume from the earliest offset as fast as possible.
    Consume(consume::PerfConsumeArgs),
    /// Produce at a steady rate and measure each record's end-to-end latency.
    E2e(e2e::PerfE2eArgs),
    /// Commit offsets for a group as fast as possible; per-commit latency.
    Commit(commit::PerfCommitArgs),
    /// Time a consumer group's formation, and rebalances as members leave and join.
    Rebalance(rebalance::PerfRebalanceArgs),
}

pub async fn run(client: &Client, command: PerfCommand) -> anyhow::Result<()> {
    match command {
        PerfCommand::Produce(args) => produce::run(client, args).await,
        PerfCommand::Consume(args) => consume::run(client, args).await,
        PerfCommand::E2e(args) => e2e::run(client, args).await,
        PerfCommand::Commit(args) => commit::run(client, args).await,
        PerfCommand::Rebalance(args) => rebalance::run(client, args).await,
    }
}
