//! `tributary topics ...`

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use tributary_client::{Client, ElectionResult, TopicDescription};

/// Topic management commands.
#[derive(Debug, Subcommand)]
pub enum TopicsCommand {
    /// Create a topic.
    Create {
        /// Topic name.
        name: String,
        /// Number of partitions (default: the broker's num.partitions).
        #[arg(long)]
        partitions: Option<i32>,
        /// Replication factor (default: the broker's default.replication.factor).
        #[arg(long)]
        replication_factor: Option<i32>,
        /// Topic configuration override, e.g. --config retention.ms=86400000 (repeatable).
        #[arg(long = "config", value_name = "KEY=VALUE", value_parser = super::args::key_value)]
        configs: Vec<(String, String)>,
    },
    /// List topic names.
    List,
    /// Describe topics (all when none are named): partitions, leaders, replicas, ISR.
    Describe {
        /// Topics to describe.
        names: Vec<String>,
    },
    /// Delete topics and all their data.
    Delete {
        /// Topics to delete.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Grow a topic to a larger number of partitions.
    AddPartitions {
        /// Topic name.
        #[arg(long)]
        topic: String,
        /// The new total number of partitions (larger than the current count).
        #[arg(long)]
        partitions: i32,
    },
    /// Make the preferred replica (the first of each assignment) the leader: of one partition,
    /// of every partition of a topic, or of every partition of every topic.
    ElectLeaders {
        /// Only this topic's partitions.
        #[arg(long)]
        topic: Option<String>,
        /// Only this partition of --topic.
        #[arg(long, requires = "topic")]
        partition: Option<i32>,
    },
}

pub async fn run(client: &Client, command: TopicsCommand) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match command {
        TopicsCommand::Create {
            name,
            partitions,
            replication_factor,
            configs,
        } => {
            let created = client
                .create_topic(
                    &name,
                    partitions.unwrap_or(0),
                    replication_factor.unwrap_or(0),
                    &configs,
                )
                .await
                .with_context(|| format!("creating topic {name}"))?;
            writeln!(
                out,
                "Created topic {} with {} partitions and replication factor {}.",
                created.name, created.num_partitions, created.replication_factor
            )?;
        }
        TopicsCommand::List => {
            for name in client.list_topics().await.context("listing topics")? {
                writeln!(out, "{name}")?;
            }
        }
        TopicsCommand::Describe { names } => {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let mut topics = client
                .describe_topics(&names)
                .await
                .context("describing topics")?;
            topics.sort_by(|a, b| a.name.cmp(&b.name));
            out.write_all(render_descriptions(&topics).as_bytes())?;
        }
        TopicsCommand::Delete { names } => {
            for name in names {
                client
                    .delete_topic(&name)
                    .await
                    .with_context(|| format!("deleting topic {name}"))?;
                writeln!(out, "Deleted topic {name}.")?;
            }
        }
        TopicsCommand::AddPartitions { topic, partitions } => {
            client
                .create_partitions(&topic, partitions, Duration::ZERO)
                .await
                .with_context(|| format!("adding partitions to topic {topic}"))?;
            writeln!(out, "Topic {topic} now has {partitions} partitions.")?;
        }
        TopicsCommand::ElectLeaders { topic, partition } => {
            let partitions: Vec<(String, i32)> = match (topic, partition) {
                (Some(topic), Some(partition)) => vec![(topic, partition)],
                (Some(topic), None) => client
                    .partitions_of(&topic)
                    .await
                    .with_context(|| format!("listing the partitions of {topic}"))?
                    .into_iter()
                    .map(|p| (topic.clone(), p))
                    .collect(),
                (None, _) => Vec::new(),
            };
            let results = client
                .elect_leaders(&partitions)
                .await
                .context("electing preferred leaders")?;
            out.write_all(render_elections(&results).as_bytes())?;
        }
    }
    Ok(())
}

/// One line per partition: `orders-0: elected`, or the code and message.
pub fn render_elections(results: &[ElectionResult]) -> String {
    let mut out = String::new();
    for result in results {
        let outcome = match &result.error {
            None => "elected".to_owned(),
            Some((code, message)) if message.is_empty() => code.to_string(),
            Some((code, message)) => format!("{code}: {message}"),
        };
        out.push_str(&format!(
            "{}-{}: {outcome}\n",
            result.topic, result.partition
        ));
    }
    out
}

fn ids(list: &[i32]) -> String {
    list.iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// The `describe` output: a summary line per topic, then one table row per partition.
pub fn render_descriptions(topics: &[TopicDescription]) -> String {
    let mut out = String::new();
    for topic in topics {
        let configs: Vec<String> = topic
            .configs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let replication = topic.partitions.first().map_or(0, |p| p.replicas.len());
        out.push_str(&format!(
            "Topic: {}\tPartitionCount: {}\tReplicationFactor: {}\tConfigs: {}\n",
            topic.name,
            topic.partitions.len(),
            replication,
            configs.join(",")
        ));
        let rows: Vec<[String; 5]> = topic
            .partitions
            .iter()
            .map(|p| {
                [
                    p.partition.to_string(),
                    p.leader
                        .map_or_else(|| "none".to_owned(), |l| l.to_string()),
                    p.leader_epoch.to_string(),
                    ids(&p.replicas),
                    ids(&p.isr),
                ]
            })
            .collect();
        let header = ["PARTITION", "LEADER", "LEADER_EPOCH", "REPLICAS", "ISR"];
        let widths: Vec<usize> = (0..5)
            .map(|i| {
                rows.iter()
                    .map(|r| r[i].len())
                    .chain([header[i].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut line = |cells: [&str; 5]| {
            let padded: Vec<String> = cells
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            out.push_str("  ");
            out.push_str(padded.join("  ").trim_end());
            out.push('\n');
        };
        line(header);
        for row in &rows {
            line([&row[0], &row[1], &row[2], &row[3], &row[4]]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use tributary_client::PartitionInfo;

    #[test]
    fn parses_create() {
        let args = crate::cli::Args::try_parse_from([
            "tributary",
            "topics",
            "create",
            "orders",
            "--partitions",
            "3",
            "--replication-factor",
            "2",
            "--config",
            "retention.ms=1000",
            "--config",
            "cleanup.policy=compact",
        ])
        .unwrap();
        let crate::cli::Command::Topics(TopicsCommand::Create {
            name,
            partitions,
            replication_factor,
            configs,
        }) = args.command
        else {
            panic!("wrong command");
        };
        assert_eq!(
            (name.as_str(), partitions, replication_factor),
            ("orders", Some(3), Some(2))
        );
        assert_eq!(configs[1], ("cleanup.policy".into(), "compact".into()));
        assert!(crate::cli::Args::try_parse_from(["tributary", "topics", "delete"]).is_err());
        assert!(
            crate::cli::Args::try_parse_from([
                "tributary",
                "topics",
                "create",
                "t",
                "--config",
                "x"
            ])
            .is_err()
        );
    }

    #[test]
    fn parses_add_partitions_and_elect_leaders() {
        let args = crate::cli::Args::try_parse_from([
            "tributary",
            "topics",
            "add-partitions",
            "--topic",
            "orders",
            "--partitions",
            "6",
        ])
        .unwrap();
        assert!(matches!(
            args.command,
            crate::cli::Command::Topics(TopicsCommand::AddPartitions { ref topic, partitions: 6 })
                if topic == "orders"
        ));
        let args =
            crate::cli::Args::try_parse_from(["tributary", "topics", "elect-leaders"]).unwrap();
        assert!(matches!(
            args.command,
            crate::cli::Command::Topics(TopicsCommand::ElectLeaders {
                topic: None,
                partition: None
            })
        ));
        // --partition needs --topic.
        assert!(
            crate::cli::Args::try_parse_from([
                "tributary",
                "topics",
                "elect-leaders",
                "--partition",
                "1"
            ])
            .is_err()
        );
    }

    #[test]
    fn election_lines() {
        let results = [
            ElectionResult {
                topic: "t".into(),
                partition: 0,
                error: None,
            },
            ElectionResult {
                topic: "t".into(),
                partition: 1,
                error: Some((
                    tributary_client::ErrorCode::ElectionNotNeeded,
                    String::new(),
                )),
            },
        ];
        assert_eq!(
            render_elections(&results),
            "t-0: elected\nt-1: ELECTION_NOT_NEEDED\n"
        );
    }

    #[test]
    fn describe_table() {
        let partition = |partition, leader| PartitionInfo {
            partition,
            leader,
            leader_epoch: 12,
            replicas: vec![1, 2, 3],
            isr: vec![1, 2],
            offline_replicas: vec![],
            error: None,
        };
        let topic = TopicDescription {
            name: "orders".into(),
            partitions: vec![partition(0, Some(1)), partition(1, None)],
            configs: [("retention.ms".to_owned(), "1000".to_owned())].into(),
        };
        let expected = "\
Topic: orders\tPartitionCount: 2\tReplicationFactor: 3\tConfigs: retention.ms=1000
  PARTITION  LEADER  LEADER_EPOCH  REPLICAS  ISR
  0          1       12            1,2,3     1,2
  1          none    12            1,2,3     1,2
";
        assert_eq!(render_descriptions(&[topic]), expected);
    }
}
