//! `tributary cluster [describe]`: the cluster id, the controller, the live brokers and a
//! summary of partition health.

use std::io::Write;

use anyhow::Context;
use clap::{Args, Subcommand};
use tributary_client::{Admin, ClusterDescription};

use super::table::{Table, ids};

/// Arguments of `cluster`.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// What to do (default: describe).
    #[command(subcommand)]
    pub command: Option<ClusterCommand>,
}

/// Cluster commands.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Show the cluster id, the controller, the live brokers and partition health.
    Describe,
}

pub async fn run(admin: &Admin, args: ClusterArgs) -> anyhow::Result<()> {
    match args.command.unwrap_or(ClusterCommand::Describe) {
        ClusterCommand::Describe => {
            let cluster = admin
                .describe_cluster()
                .await
                .context("describing the cluster")?;
            std::io::stdout()
                .lock()
                .write_all(render_cluster(&cluster).as_bytes())?;
        }
    }
    Ok(())
}

/// The `cluster describe` output.
pub fn render_cluster(cluster: &ClusterDescription) -> String {
    let controller = match (cluster.controller_id, cluster.controller_epoch) {
        (Some(id), Some(epoch)) => format!("{id} (epoch {epoch})"),
        (Some(id), None) => id.to_string(),
        (None, _) => "unknown".to_owned(),
    };
    let mut out = format!(
        "Cluster id: {}\nController: {controller}\nBrokers: {}\n",
        cluster.cluster_id,
        cluster.brokers.len()
    );
    let mut table = Table::new("  ", &["ID", "ADDRESS", "RACK", "EPOCH", "ROLE"]);
    for broker in &cluster.brokers {
        let role = if Some(broker.id) == cluster.controller_id {
            "controller"
        } else {
            ""
        };
        table.row(vec![
            broker.id.to_string(),
            broker.address(),
            broker.rack.clone().unwrap_or_else(|| "-".to_owned()),
            broker
                .epoch
                .map_or_else(|| "-".to_owned(), |e| e.to_string()),
            role.to_owned(),
        ]);
    }
    out.push_str(&table.render());
    let health = &cluster.health;
    out.push_str(&format!(
        "Topics: {}\nPartitions: {}\nOffline partitions: {}\nUnder-replicated partitions: {}\n\
         Offline brokers with replicas: {}\n",
        health.topics,
        health.partitions,
        health.offline_partitions,
        health.under_replicated_partitions,
        ids(&health.offline_brokers),
    ));
    out
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use tributary_client::{BrokerInfo, ClusterHealth};

    use super::*;

    #[test]
    fn parses_cluster_with_and_without_describe() {
        for args in [
            &["tributary", "cluster"][..],
            &["tributary", "cluster", "describe"],
        ] {
            let parsed = crate::cli::Args::try_parse_from(args).unwrap();
            assert!(matches!(parsed.command, crate::cli::Command::Cluster(_)));
        }
        assert!(crate::cli::Args::try_parse_from(["tributary", "cluster", "explode"]).is_err());
    }

    #[test]
    fn cluster_output() {
        let broker = |id, rack: Option<&str>| BrokerInfo {
            id,
            host: "127.0.0.1".into(),
            port: 9090 + id,
            rack: rack.map(str::to_owned),
            epoch: (id == 1).then_some(4294967321),
        };
        let cluster = ClusterDescription {
            cluster_id: "Xk3lQ0tWQ2mVgR6vJc8bNA".into(),
            controller_id: Some(2),
            controller_epoch: Some(3),
            brokers: vec![broker(1, Some("r1")), broker(2, None)],
            health: ClusterHealth {
                topics: 2,
                partitions: 6,
                offline_partitions: 0,
                under_replicated_partitions: 3,
                offline_brokers: vec![3],
            },
        };
        let expected = "\
Cluster id: Xk3lQ0tWQ2mVgR6vJc8bNA
Controller: 2 (epoch 3)
Brokers: 2
  ID  ADDRESS         RACK  EPOCH       ROLE
  1   127.0.0.1:9091  r1    4294967321
  2   127.0.0.1:9092  -     -           controller
Topics: 2
Partitions: 6
Offline partitions: 0
Under-replicated partitions: 3
Offline brokers with replicas: 3
";
        assert_eq!(render_cluster(&cluster), expected);
        let unknown = ClusterDescription {
            controller_id: None,
            health: ClusterHealth::default(),
            ..cluster
        };
        let rendered = render_cluster(&unknown);
        assert!(rendered.contains("Controller: unknown\n"), "{rendered}");
        assert!(
            rendered.ends_with("Offline brokers with replicas: -\n"),
            "{rendered}"
        );
    }
}
