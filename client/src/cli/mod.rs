//! The `tributary` command line: argument definitions and dispatch. One module per command.

mod args;
mod cluster;
mod configs;
mod consume;
pub mod exit;
mod format;
mod groups;
mod offsets;
mod perf;
mod produce;
mod table;
mod topics;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tributary_client::Client;

/// Tributary command-line client.
#[derive(Debug, Parser)]
#[command(
    name = "tributary",
    version,
    about = "Tributary command-line client",
    propagate_version = true
)]
pub struct Args {
    /// Broker to connect to: host:port or http://host:port.
    #[arg(
        long,
        global = true,
        env = "TRIBUTARY_BOOTSTRAP_SERVER",
        default_value = "127.0.0.1:9092",
        value_name = "ADDRESS"
    )]
    pub bootstrap_server: String,

    #[command(subcommand)]
    pub command: Command,
}

/// The top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, list, describe, alter and delete topics; add partitions; elect preferred
    /// leaders.
    #[command(subcommand)]
    Topics(topics::TopicsCommand),
    /// Describe and change topic configuration overrides.
    #[command(subcommand)]
    Configs(configs::ConfigsCommand),
    /// Describe the cluster: id, controller, brokers, partition health.
    Cluster(cluster::ClusterArgs),
    /// Write records, one per line, from stdin or a file.
    Produce(produce::ProduceArgs),
    /// Print the records of a topic (all or some of its partitions).
    Consume(consume::ConsumeArgs),
    /// Show the earliest and latest offsets of a topic's partitions.
    Offsets(offsets::OffsetsArgs),
    /// Consumer groups: list, describe (members, lag), delete; reset offsets.
    #[command(subcommand)]
    Groups(groups::GroupsCommand),
    /// Measure throughput and latency.
    #[command(subcommand)]
    Perf(perf::PerfCommand),
}

/// Runs one command.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = Client::connect(&args.bootstrap_server)
        .await
        .with_context(|| format!("connecting to {}", args.bootstrap_server))?;
    match args.command {
        Command::Topics(command) => topics::run(&client.admin(), command).await,
        Command::Configs(command) => configs::run(&client.admin(), command).await,
        Command::Cluster(args) => cluster::run(&client.admin(), args).await,
        Command::Produce(args) => produce::run(&client, args).await,
        Command::Consume(args) => consume::run(&client, args).await,
        Command::Offsets(args) => offsets::run(&client, args).await,
        Command::Groups(command) => groups::run(&client, command).await,
        Command::Perf(command) => perf::run(&client, command).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Args::command().debug_assert();
    }

    #[test]
    fn bootstrap_default_and_global_flag() {
        // The env var would override the default; the tests do not set it.
        let args = Args::try_parse_from(["tributary", "topics", "list"]).unwrap();
        if std::env::var_os("TRIBUTARY_BOOTSTRAP_SERVER").is_none() {
            assert_eq!(args.bootstrap_server, "127.0.0.1:9092");
        }
        let args =
            Args::try_parse_from(["tributary", "topics", "list", "--bootstrap-server", "h:1"])
                .unwrap();
        assert_eq!(args.bootstrap_server, "h:1");
    }
}
