//! `tributary topics ...`

use std::io::Write;

use anyhow::Context;
use clap::Subcommand;
use tributary_client::{
    Admin, AdminOptions, ElectionResult, ErrorCode, ListTopicsOptions, NewTopic, PartitionInfo,
    TopicDescription,
};

use super::exit::UsageError;
use super::table::{Table, ids};

/// Topic management commands.
#[derive(Debug, Subcommand)]
pub enum TopicsCommand {
    /// Create a topic.
    Create {
        /// Topic name.
        name: String,
        /// Number of partitions (default: the broker's num.partitions).
        #[arg(long, value_parser = clap::value_parser!(i32).range(1..))]
        partitions: Option<i32>,
        /// Replication factor (default: the broker's default.replication.factor).
        #[arg(long, value_parser = clap::value_parser!(i32).range(1..))]
        replication_factor: Option<i32>,
        /// Topic configuration override, e.g. --config retention.ms=86400000 (repeatable).
        #[arg(long = "config", value_name = "KEY=VALUE", value_parser = super::args::key_value)]
        configs: Vec<(String, String)>,
        /// Check the request on the broker without creating the topic.
        #[arg(long)]
        validate_only: bool,
        /// Succeed without doing anything if the topic exists.
        #[arg(long)]
        if_not_exists: bool,
    },
    /// List topic names.
    List {
        /// Leave out internal topics (names starting with "__").
        #[arg(long)]
        exclude_internal: bool,
    },
    /// Describe topics (all when none are named): per partition the leader, leader epoch,
    /// replicas, in-sync replicas, offline replicas and a status (ok, under-replicated,
    /// offline).
    Describe {
        /// Topics to describe.
        names: Vec<String>,
        /// Only partitions whose ISR is smaller than their replica set.
        #[arg(long, visible_alias = "under-replicated-partitions")]
        under_replicated: bool,
        /// Only partitions without a leader.
        #[arg(long, visible_alias = "unavailable-partitions")]
        unavailable: bool,
        /// Leave out internal topics (names starting with "__").
        #[arg(long)]
        exclude_internal: bool,
    },
    /// Grow a topic's partition count, like kafka-topics.sh --alter (configs: `configs alter`).
    Alter {
        /// Topic name.
        name: String,
        /// The new total number of partitions (larger than the current count).
        #[arg(long)]
        partitions: Option<i32>,
        /// Refused: topic configs change with `tributary configs alter`.
        #[arg(long = "config", value_name = "KEY=VALUE", hide = true)]
        configs: Vec<String>,
        /// Check the change on the broker without applying it.
        #[arg(long)]
        validate_only: bool,
    },
    /// Delete topics and all their data.
    Delete {
        /// Topics to delete.
        #[arg(required = true)]
        names: Vec<String>,
        /// Skip topics that do not exist instead of failing.
        #[arg(long)]
        if_exists: bool,
    },
    /// Grow a topic to a larger number of partitions.
    AddPartitions {
        /// Topic name.
        #[arg(long)]
        topic: String,
        /// The new total number of partitions (larger than the current count).
        #[arg(long)]
        partitions: i32,
        /// Check the change on the broker without applying it.
        #[arg(long)]
        validate_only: bool,
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

/// Which partitions `topics describe` shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartitionFilter {
    /// Only under-replicated partitions.
    pub under_replicated: bool,
    /// Only partitions without a leader.
    pub unavailable: bool,
}

impl PartitionFilter {
    /// Whether `partition` is shown: every partition without a filter, else those matching
    /// any filter given.
    pub fn shows(self, partition: &PartitionInfo) -> bool {
        if !self.under_replicated && !self.unavailable {
            return true;
        }
        (self.under_replicated && partition.is_under_replicated())
            || (self.unavailable && partition.is_offline())
    }

    fn is_set(self) -> bool {
        self.under_replicated || self.unavailable
    }
}

pub async fn run(admin: &Admin, command: TopicsCommand) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match command {
        TopicsCommand::Create {
            name,
            partitions,
            replication_factor,
            configs,
            validate_only,
            if_not_exists,
        } => {
            let topic = NewTopic {
                name: name.clone(),
                partitions,
                replication_factor,
                configs: configs.into_iter().collect(),
            };
            let options = AdminOptions {
                validate_only,
                ..AdminOptions::default()
            };
            match admin.create_topic(&topic, &options).await {
                Ok(created) => {
                    let verb = if validate_only {
                        "Would create"
                    } else {
                        "Created"
                    };
                    writeln!(
                        out,
                        "{verb} topic {} with {} partitions and replication factor {}.",
                        created.name, created.num_partitions, created.replication_factor
                    )?;
                }
                Err(error)
                    if if_not_exists
                        && error.error_code() == Some(ErrorCode::TopicAlreadyExists) =>
                {
                    writeln!(out, "Topic {name} already exists.")?;
                }
                Err(error) => {
                    return Err(error).with_context(|| format!("creating topic {name}"));
                }
            }
        }
        TopicsCommand::List { exclude_internal } => {
            let options = ListTopicsOptions {
                include_internal: !exclude_internal,
            };
            for topic in admin.list_topics(options).await.context("listing topics")? {
                writeln!(out, "{}", topic.name)?;
            }
        }
        TopicsCommand::Describe {
            names,
            under_replicated,
            unavailable,
            exclude_internal,
        } => {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let mut topics = admin
                .describe_topics(&names)
                .await
                .context("describing topics")?;
            if exclude_internal {
                topics.retain(|topic| !topic.is_internal());
            }
            topics.sort_by(|a, b| a.name.cmp(&b.name));
            let filter = PartitionFilter {
                under_replicated,
                unavailable,
            };
            out.write_all(render_descriptions(&topics, filter).as_bytes())?;
        }
        TopicsCommand::Alter {
            name,
            partitions,
            configs,
            validate_only,
        } => {
            if !configs.is_empty() {
                return Err(UsageError(format!(
                    "topics alter changes the partition count only; change configs with \
                     `tributary configs alter --topic {name} --set KEY=VALUE`"
                ))
                .into());
            }
            let Some(partitions) = partitions else {
                return Err(UsageError(
                    "nothing to change: give --partitions N (configs: `tributary configs alter`)"
                        .to_owned(),
                )
                .into());
            };
            add_partitions(admin, &mut out, &name, partitions, validate_only).await?;
        }
        TopicsCommand::Delete { names, if_exists } => {
            for name in names {
                match admin.delete_topic(&name, &AdminOptions::default()).await {
                    Ok(()) => writeln!(out, "Deleted topic {name}.")?,
                    Err(error)
                        if if_exists
                            && error.error_code() == Some(ErrorCode::UnknownTopicOrPartition) =>
                    {
                        writeln!(out, "Topic {name} does not exist.")?;
                    }
                    Err(error) => {
                        return Err(error).with_context(|| format!("deleting topic {name}"));
                    }
                }
            }
        }
        TopicsCommand::AddPartitions {
            topic,
            partitions,
            validate_only,
        } => add_partitions(admin, &mut out, &topic, partitions, validate_only).await?,
        TopicsCommand::ElectLeaders { topic, partition } => {
            let partitions: Vec<(String, i32)> = match (topic, partition) {
                (Some(topic), Some(partition)) => vec![(topic, partition)],
                (Some(topic), None) => admin
                    .partitions_of(&topic)
                    .await
                    .with_context(|| format!("listing the partitions of {topic}"))?
                    .into_iter()
                    .map(|p| (topic.clone(), p))
                    .collect(),
                (None, _) => Vec::new(),
            };
            let results = admin
                .elect_preferred_leaders(&partitions)
                .await
                .context("electing preferred leaders")?;
            out.write_all(render_elections(&results).as_bytes())?;
        }
    }
    Ok(())
}

async fn add_partitions(
    admin: &Admin,
    out: &mut impl Write,
    topic: &str,
    partitions: i32,
    validate_only: bool,
) -> anyhow::Result<()> {
    let options = AdminOptions {
        validate_only,
        ..AdminOptions::default()
    };
    admin
        .create_partitions(topic, partitions, &options)
        .await
        .with_context(|| format!("adding partitions to topic {topic}"))?;
    if validate_only {
        writeln!(
            out,
            "Topic {topic} can grow to {partitions} partitions (not applied)."
        )?;
    } else {
        writeln!(out, "Topic {topic} now has {partitions} partitions.")?;
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

/// `offline` (no leader), `under-replicated` (ISR smaller than the replicas) or `ok`.
pub fn partition_status(partition: &PartitionInfo) -> &'static str {
    if partition.is_offline() {
        "offline"
    } else if partition.is_under_replicated() {
        "under-replicated"
    } else {
        "ok"
    }
}

/// The `describe` output: a summary line per topic, then one table row per partition. With a
/// filter, only the partitions it shows, and only topics that have some.
pub fn render_descriptions(topics: &[TopicDescription], filter: PartitionFilter) -> String {
    let mut out = String::new();
    for topic in topics {
        let shown: Vec<&PartitionInfo> = topic
            .partitions
            .iter()
            .filter(|p| filter.shows(p))
            .collect();
        if shown.is_empty() && filter.is_set() {
            continue;
        }
        let configs: Vec<String> = topic
            .configs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        out.push_str(&format!(
            "Topic: {}\tPartitionCount: {}\tReplicationFactor: {}\tConfigs: {}\n",
            topic.name,
            topic.partitions.len(),
            topic.replication_factor(),
            configs.join(",")
        ));
        let mut table = Table::new(
            "  ",
            &[
                "PARTITION",
                "LEADER",
                "LEADER_EPOCH",
                "REPLICAS",
                "ISR",
                "OFFLINE",
                "STATUS",
            ],
        );
        for p in shown {
            table.row(vec![
                p.partition.to_string(),
                p.leader
                    .map_or_else(|| "none".to_owned(), |l| l.to_string()),
                p.leader_epoch.to_string(),
                ids(&p.replicas),
                ids(&p.isr),
                ids(&p.offline_replicas),
                partition_status(p).to_owned(),
            ]);
        }
        out.push_str(&table.render());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

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
            validate_only: false,
            if_not_exists: false,
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
            crate::cli::Command::Topics(TopicsCommand::AddPartitions {
                ref topic,
                partitions: 6,
                validate_only: false
            }) if topic == "orders"
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
    fn parses_describe_list_alter_and_delete_flags() {
        let parse = |args: &[&str]| {
            crate::cli::Args::try_parse_from(["tributary", "topics"].iter().chain(args))
                .map(|args| args.command)
        };
        assert!(matches!(
            parse(&["describe", "a", "b", "--under-replicated"]).unwrap(),
            crate::cli::Command::Topics(TopicsCommand::Describe {
                ref names,
                under_replicated: true,
                unavailable: false,
                exclude_internal: false,
            }) if names == &["a", "b"]
        ));
        assert!(matches!(
            parse(&[
                "describe",
                "--under-replicated-partitions",
                "--unavailable-partitions"
            ])
            .unwrap(),
            crate::cli::Command::Topics(TopicsCommand::Describe {
                under_replicated: true,
                unavailable: true,
                ..
            })
        ));
        assert!(matches!(
            parse(&["list", "--exclude-internal"]).unwrap(),
            crate::cli::Command::Topics(TopicsCommand::List {
                exclude_internal: true
            })
        ));
        assert!(matches!(
            parse(&["alter", "orders", "--partitions", "4", "--validate-only"]).unwrap(),
            crate::cli::Command::Topics(TopicsCommand::Alter {
                partitions: Some(4),
                validate_only: true,
                ..
            })
        ));
        assert!(matches!(
            parse(&["delete", "x", "--if-exists"]).unwrap(),
            crate::cli::Command::Topics(TopicsCommand::Delete {
                if_exists: true,
                ..
            })
        ));
        assert!(parse(&["create", "t", "--partitions", "0"]).is_err());
        assert!(parse(&["create", "t", "--replication-factor", "-1"]).is_err());
        assert!(parse(&["create", "t", "--partitions", "x"]).is_err());
        assert!(parse(&["alter"]).is_err(), "the topic is required");
    }

    fn partition(id: i32, leader: Option<i32>, isr: &[i32], offline: &[i32]) -> PartitionInfo {
        PartitionInfo {
            partition: id,
            leader,
            leader_epoch: 12,
            replicas: vec![1, 2, 3],
            isr: isr.to_vec(),
            offline_replicas: offline.to_vec(),
            error: None,
        }
    }

    fn orders() -> TopicDescription {
        TopicDescription {
            name: "orders".into(),
            partitions: vec![
                partition(0, Some(1), &[1, 2, 3], &[]),
                partition(1, Some(2), &[2, 1], &[3]),
                partition(2, None, &[3], &[3]),
            ],
            configs: [("retention.ms".to_owned(), "1000".to_owned())].into(),
        }
    }

    #[test]
    fn describe_table_marks_under_replicated_and_offline_partitions() {
        let expected = "\
Topic: orders\tPartitionCount: 3\tReplicationFactor: 3\tConfigs: retention.ms=1000
  PARTITION  LEADER  LEADER_EPOCH  REPLICAS  ISR    OFFLINE  STATUS
  0          1       12            1,2,3     1,2,3  -        ok
  1          2       12            1,2,3     2,1    3        under-replicated
  2          none    12            1,2,3     3      3        offline
";
        assert_eq!(
            render_descriptions(&[orders()], PartitionFilter::default()),
            expected
        );
    }

    #[test]
    fn describe_filters_keep_only_matching_partitions_and_topics() {
        let healthy = TopicDescription {
            name: "healthy".into(),
            partitions: vec![partition(0, Some(1), &[1, 2, 3], &[])],
            configs: Default::default(),
        };
        let topics = [healthy, orders()];
        let under = PartitionFilter {
            under_replicated: true,
            unavailable: false,
        };
        let expected = "\
Topic: orders\tPartitionCount: 3\tReplicationFactor: 3\tConfigs: retention.ms=1000
  PARTITION  LEADER  LEADER_EPOCH  REPLICAS  ISR  OFFLINE  STATUS
  1          2       12            1,2,3     2,1  3        under-replicated
  2          none    12            1,2,3     3    3        offline
";
        assert_eq!(render_descriptions(&topics, under), expected);
        let unavailable = PartitionFilter {
            under_replicated: false,
            unavailable: true,
        };
        let rendered = render_descriptions(&topics, unavailable);
        assert_eq!(rendered.lines().count(), 3, "{rendered}");
        assert!(rendered.lines().last().unwrap().ends_with("offline"));
        assert_eq!(render_descriptions(&topics[..1], under), "");
        // (filter, partition 0 shown, 1 shown, 2 shown)
        let table = [
            (PartitionFilter::default(), [true, true, true]),
            (under, [false, true, true]),
            (unavailable, [false, false, true]),
        ];
        for (filter, expected) in table {
            let shown: Vec<bool> = orders()
                .partitions
                .iter()
                .map(|p| filter.shows(p))
                .collect();
            assert_eq!(shown, expected, "{filter:?}");
        }
    }
}
