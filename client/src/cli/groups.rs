//! `tributary groups describe|reset-offsets`: a consumer group's committed offsets and lag, and
//! moving them (Kafka's `kafka-consumer-groups.sh --describe` and `--reset-offsets`).
//!
//! Lag = the partition's high watermark (what a consumer can read) − the committed offset (the
//! next offset the group will read). A reset is computed first and shown; it is committed only
//! with `--execute` (a dry run is the default, as in Kafka). New offsets are clamped to the
//! partition's `[earliest, latest]`, and the commit is a commit from outside group management
//! (generation -1), which the coordinator accepts only while the group has no members.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Context;
use clap::{Args, Subcommand};
use tributary_client::{Client, GroupOffset, OffsetSpec, TopicPartition};

use super::exit::UsageError;
use super::table::Table;

/// `groups` subcommands.
#[derive(Debug, Subcommand)]
pub enum GroupsCommand {
    /// A group's coordinator, and per partition: committed offset, log end, lag; and the total lag.
    Describe(DescribeArgs),
    /// Move a group's committed offsets (dry run unless --execute).
    ResetOffsets(ResetArgs),
}

/// Arguments of `groups describe`.
#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// The group id.
    pub group: String,
}

/// Arguments of `groups reset-offsets`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(
    ["to_earliest", "to_latest", "to_offset", "to_timestamp", "shift_by"]
)))]
pub struct ResetArgs {
    /// The group id.
    pub group: String,
    /// The topic whose offsets to move.
    #[arg(long)]
    pub topic: String,
    /// Only these partitions (comma-separated; default: all).
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(i32).range(0..))]
    pub partitions: Vec<i32>,
    /// To the log start offset.
    #[arg(long)]
    pub to_earliest: bool,
    /// To the high watermark (skip everything written so far).
    #[arg(long)]
    pub to_latest: bool,
    /// To this offset.
    #[arg(long, value_name = "OFFSET")]
    pub to_offset: Option<i64>,
    /// To the first record at or after this time (ms since the Unix epoch); the latest
    /// offset where no record is that recent.
    #[arg(long, value_name = "MS")]
    pub to_timestamp: Option<i64>,
    /// Move by N from the committed offset (negative: back), or from the latest offset where
    /// nothing is committed.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub shift_by: Option<i64>,
    /// Commit the new offsets (without it only the plan is printed).
    #[arg(long)]
    pub execute: bool,
}

pub async fn run(client: &Client, command: GroupsCommand) -> anyhow::Result<()> {
    match command {
        GroupsCommand::Describe(args) => describe(client, args).await,
        GroupsCommand::ResetOffsets(args) => reset(client, args).await,
    }
}

/// One partition's row of `describe`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LagRow {
    pub topic: String,
    pub partition: i32,
    /// The committed offset, `None` when the group committed nothing for it.
    pub committed: Option<i64>,
    /// The high watermark.
    pub log_end: Option<i64>,
}

impl LagRow {
    /// The lag, when both offsets are known (never negative: a committed offset beyond the log
    /// end, after a truncation, has nothing to read).
    pub fn lag(&self) -> Option<i64> {
        Some((self.log_end? - self.committed?).max(0))
    }
}

async fn describe(client: &Client, args: DescribeArgs) -> anyhow::Result<()> {
    let group = client.group(&args.group)?;
    let coordinator = group
        .find_coordinator()
        .await
        .with_context(|| format!("finding the coordinator of group {:?}", args.group))?;
    let committed = group
        .committed_all()
        .await
        .with_context(|| format!("reading the offsets of group {:?}", args.group))?;
    let mut rows = Vec::new();
    for (tp, offset) in committed {
        let log_end = client
            .list_offsets(&tp.topic, tp.partition, OffsetSpec::Latest)
            .await
            .ok()
            .and_then(|listed| listed.offset);
        rows.push(LagRow {
            topic: tp.topic,
            partition: tp.partition,
            committed: Some(offset.offset),
            log_end,
        });
    }
    let mut out = format!(
        "group {}: coordinator broker {} ({}), __consumer_offsets partition {}\n",
        args.group, coordinator.broker_id, coordinator.address, coordinator.partition
    );
    out.push_str(&render_lag(&rows));
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(())
}

/// The lag table and a total line; a note when the group has no committed offsets.
pub fn render_lag(rows: &[LagRow]) -> String {
    if rows.is_empty() {
        return "no committed offsets\n".to_owned();
    }
    let offset = |o: Option<i64>| o.map_or_else(|| "-".to_owned(), |o| o.to_string());
    let mut table = Table::new("", &["TOPIC", "PARTITION", "COMMITTED", "LOG-END", "LAG"]);
    for row in rows {
        table.row(vec![
            row.topic.clone(),
            row.partition.to_string(),
            offset(row.committed),
            offset(row.log_end),
            offset(row.lag()),
        ]);
    }
    let total: i64 = rows.iter().filter_map(LagRow::lag).sum();
    format!("{}total lag {total}\n", table.render())
}

/// Where a reset moves a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetTarget {
    Earliest,
    Latest,
    Offset(i64),
    /// The looked-up offset of a timestamp (`None`: no record that recent).
    Timestamp(Option<i64>),
    ShiftBy(i64),
}

/// The new offset of one partition: the target, clamped to `[earliest, latest]` (Kafka
/// refuses nothing here and clamps too).
pub fn new_offset(target: ResetTarget, earliest: i64, latest: i64, committed: Option<i64>) -> i64 {
    let wanted = match target {
        ResetTarget::Earliest => earliest,
        ResetTarget::Latest => latest,
        ResetTarget::Offset(offset) => offset,
        ResetTarget::Timestamp(found) => found.unwrap_or(latest),
        ResetTarget::ShiftBy(delta) => committed.unwrap_or(latest).saturating_add(delta),
    };
    wanted.clamp(earliest, latest.max(earliest))
}

async fn reset(client: &Client, args: ResetArgs) -> anyhow::Result<()> {
    let existing = client
        .partitions_of(&args.topic)
        .await
        .with_context(|| format!("looking up {}", args.topic))?;
    let partitions = if args.partitions.is_empty() {
        existing
    } else {
        if let Some(missing) = args.partitions.iter().find(|p| !existing.contains(p)) {
            return Err(UsageError(format!(
                "{} has no partition {missing} (it has {})",
                args.topic,
                existing.len()
            ))
            .into());
        }
        args.partitions.clone()
    };
    let group = client.group(&args.group)?;
    let wanted: Vec<TopicPartition> = partitions
        .iter()
        .map(|&p| TopicPartition::new(&args.topic, p))
        .collect();
    let committed: BTreeMap<i32, Option<i64>> = group
        .committed(&wanted)
        .await
        .with_context(|| format!("reading the offsets of group {:?}", args.group))?
        .into_iter()
        .map(|(tp, c)| (tp.partition, c.map(|c| c.offset)))
        .collect();
    let mut plan = Vec::new();
    for &partition in &partitions {
        let topic = args.topic.as_str();
        let lookup = |spec| async move {
            client
                .list_offsets(topic, partition, spec)
                .await
                .with_context(|| format!("listing offsets of {topic}-{partition}"))
                .map(|listed| listed.offset)
        };
        let earliest = lookup(OffsetSpec::Earliest).await?.unwrap_or(0);
        let latest = lookup(OffsetSpec::Latest).await?.unwrap_or(earliest);
        let target = if args.to_earliest {
            ResetTarget::Earliest
        } else if args.to_latest {
            ResetTarget::Latest
        } else if let Some(offset) = args.to_offset {
            ResetTarget::Offset(offset)
        } else if let Some(ms) = args.to_timestamp {
            ResetTarget::Timestamp(lookup(OffsetSpec::Timestamp(ms)).await?)
        } else {
            ResetTarget::ShiftBy(args.shift_by.expect("clap requires one target"))
        };
        let current = committed.get(&partition).copied().flatten();
        plan.push((
            partition,
            current,
            new_offset(target, earliest, latest, current),
        ));
    }
    let mut table = Table::new("", &["TOPIC", "PARTITION", "COMMITTED", "NEW-OFFSET"]);
    for (partition, current, new) in &plan {
        table.row(vec![
            args.topic.clone(),
            partition.to_string(),
            current.map_or_else(|| "-".to_owned(), |o| o.to_string()),
            new.to_string(),
        ]);
    }
    let mut out = table.render();
    if args.execute {
        let offsets: Vec<GroupOffset> = plan
            .iter()
            .map(|&(partition, _, new)| GroupOffset::new(&args.topic, partition, new))
            .collect();
        group
            .commit(&offsets)
            .await
            .with_context(|| format!("committing the new offsets of group {:?}", args.group))?;
        out.push_str("committed\n");
    } else {
        out.push_str("dry run: nothing committed (add --execute)\n");
    }
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn new_offsets_are_clamped_to_the_log() {
        use ResetTarget::*;
        let table = [
            // (target, earliest, latest, committed, expected)
            (Earliest, 10, 50, Some(30), 10),
            (Latest, 10, 50, None, 50),
            (Offset(5), 10, 50, None, 10),
            (Offset(99), 10, 50, None, 50),
            (Offset(20), 10, 50, Some(30), 20),
            (Timestamp(Some(42)), 10, 50, None, 42),
            (Timestamp(None), 10, 50, None, 50),
            (ShiftBy(-5), 10, 50, Some(30), 25),
            (ShiftBy(-50), 10, 50, Some(30), 10),
            (ShiftBy(3), 10, 50, None, 50),
            (ShiftBy(i64::MAX), 10, 50, Some(30), 50),
        ];
        for (target, earliest, latest, committed, expected) in table {
            assert_eq!(
                new_offset(target, earliest, latest, committed),
                expected,
                "{target:?}"
            );
        }
    }

    #[test]
    fn the_lag_table_has_a_total() {
        let rows = [
            LagRow {
                topic: "t".into(),
                partition: 0,
                committed: Some(5),
                log_end: Some(12),
            },
            LagRow {
                topic: "t".into(),
                partition: 1,
                committed: Some(9),
                log_end: Some(9),
            },
            LagRow {
                topic: "t".into(),
                partition: 2,
                committed: Some(9),
                log_end: None,
            },
        ];
        assert_eq!(
            render_lag(&rows),
            "TOPIC  PARTITION  COMMITTED  LOG-END  LAG\n\
             t      0          5          12       7\n\
             t      1          9          9        0\n\
             t      2          9          -        -\n\
             total lag 7\n"
        );
        assert_eq!(render_lag(&[]), "no committed offsets\n");
    }

    #[test]
    fn a_reset_needs_exactly_one_target() {
        #[derive(Debug, Parser)]
        struct Cli {
            #[command(subcommand)]
            command: GroupsCommand,
        }
        let parsed = Cli::try_parse_from([
            "x",
            "reset-offsets",
            "g",
            "--topic",
            "t",
            "--shift-by",
            "-3",
        ])
        .unwrap();
        let GroupsCommand::ResetOffsets(args) = parsed.command else {
            panic!()
        };
        assert_eq!((args.shift_by, args.execute), (Some(-3), false));
        assert!(Cli::try_parse_from(["x", "reset-offsets", "g", "--topic", "t"]).is_err());
        assert!(
            Cli::try_parse_from([
                "x",
                "reset-offsets",
                "g",
                "--topic",
                "t",
                "--to-earliest",
                "--to-latest"
            ])
            .is_err()
        );
    }
}
