//! `tributary groups list|describe|delete|reset-offsets`: consumer groups, their members,
//! committed offsets and lag, and moving or deleting them (Kafka's `kafka-consumer-groups.sh
//! --list`, `--describe`, `--delete` and `--reset-offsets`).
//!
//! Lag = the partition's high watermark (what a consumer can read) − the committed offset (the
//! next offset the group will read). A reset is computed first and shown; it is committed only
//! with `--execute` (a dry run is the default, as in Kafka). New offsets are clamped to the
//! partition's `[earliest, latest]`, and the commit is a commit from outside group management
//! (generation -1), which the coordinator accepts only while the group has no members. A
//! deletion is refused (NON_EMPTY_GROUP, exit status 1) while the group has members.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use anyhow::Context;
use clap::{Args, Subcommand};
use tributary_client::{
    Client, GroupDescription, GroupListing, GroupOffset, GroupState, OffsetSpec, TopicPartition,
};

use super::exit::UsageError;
use super::table::Table;

/// `groups` subcommands.
#[derive(Debug, Subcommand)]
pub enum GroupsCommand {
    /// Every group of the cluster: its coordinator and state.
    List(ListArgs),
    /// A group's state and members, and per partition: committed offset, log end, lag and
    /// owner; the total lag.
    Describe(DescribeArgs),
    /// Delete a group without members: its committed offsets and metadata.
    Delete(DeleteArgs),
    /// Move a group's committed offsets (dry run unless --execute).
    ResetOffsets(ResetArgs),
}

/// Arguments of `groups list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only groups in these states (comma-separated or repeated: Empty, PreparingRebalance,
    /// CompletingRebalance, Stable; any case).
    #[arg(long = "state", value_name = "STATE", value_delimiter = ',', value_parser = state)]
    pub states: Vec<GroupState>,
}

/// A state name known to the broker.
fn state(text: &str) -> Result<GroupState, String> {
    match GroupState::parse(text.trim()) {
        GroupState::Unknown(name) => Err(format!(
            "unknown group state {name:?} (Empty, PreparingRebalance, CompletingRebalance, Stable or Dead)"
        )),
        known => Ok(known),
    }
}

/// Arguments of `groups describe`.
#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// The group id.
    pub group: String,
}

/// Arguments of `groups delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
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
        GroupsCommand::List(args) => list(client, args).await,
        GroupsCommand::Describe(args) => describe(client, args).await,
        GroupsCommand::Delete(args) => delete(client, args).await,
        GroupsCommand::ResetOffsets(args) => reset(client, args).await,
    }
}

async fn list(client: &Client, args: ListArgs) -> anyhow::Result<()> {
    let groups = client
        .admin()
        .list_groups(&args.states)
        .await
        .context("listing groups")?;
    std::io::stdout()
        .lock()
        .write_all(render_list(&groups).as_bytes())?;
    Ok(())
}

/// `GROUP COORDINATOR STATE`, one row per group; a note when there is none.
pub fn render_list(groups: &[GroupListing]) -> String {
    if groups.is_empty() {
        return "no groups\n".to_owned();
    }
    let mut table = Table::new("", &["GROUP", "COORDINATOR", "STATE"]);
    for group in groups {
        table.row(vec![
            group.group_id.clone(),
            group.coordinator.to_string(),
            group.state.to_string(),
        ]);
    }
    table.render()
}

async fn delete(client: &Client, args: DeleteArgs) -> anyhow::Result<()> {
    client
        .group(&args.group)?
        .delete()
        .await
        .with_context(|| format!("deleting group {:?}", args.group))?;
    writeln!(std::io::stdout().lock(), "deleted group {}", args.group)?;
    Ok(())
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
    /// The member assigned the partition, if any.
    pub owner: Option<String>,
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
    let description = group
        .describe()
        .await
        .with_context(|| format!("describing group {:?}", args.group))?;
    let committed: BTreeMap<TopicPartition, i64> = group
        .committed_all()
        .await
        .with_context(|| format!("reading the offsets of group {:?}", args.group))?
        .into_iter()
        .map(|(tp, offset)| (tp, offset.offset))
        .collect();
    // Committed partitions and assigned ones (committed or not yet), in order.
    let partitions: BTreeSet<TopicPartition> = committed
        .keys()
        .cloned()
        .chain(
            description
                .members
                .iter()
                .flat_map(|m| m.assignment.iter().cloned()),
        )
        .collect();
    let mut rows = Vec::new();
    for tp in partitions {
        let log_end = client
            .list_offsets(&tp.topic, tp.partition, OffsetSpec::Latest)
            .await
            .ok()
            .and_then(|listed| listed.offset);
        rows.push(LagRow {
            committed: committed.get(&tp).copied(),
            log_end,
            owner: description
                .owner_of(&tp.topic, tp.partition)
                .map(|m| m.member_id.clone()),
            topic: tp.topic,
            partition: tp.partition,
        });
    }
    let out = render_describe(&description, &rows);
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(())
}

/// The whole `describe` output: the coordinator, the state, the members, the lag table.
pub fn render_describe(description: &GroupDescription, rows: &[LagRow]) -> String {
    let coordinator = &description.coordinator;
    let mut out = format!(
        "group {}: coordinator broker {} ({}), __consumer_offsets partition {}\n",
        description.group_id, coordinator.broker_id, coordinator.address, coordinator.partition
    );
    out.push_str(&render_members(description));
    out.push_str(&render_lag(rows));
    out
}

/// The state line, then the members table and a blank line (neither for a group without
/// members).
pub fn render_members(description: &GroupDescription) -> String {
    let protocol = match (
        description.protocol_type.as_str(),
        description.protocol.as_str(),
    ) {
        ("", _) => String::new(),
        (kind, "") => format!(", protocol {kind}"),
        (kind, name) => format!(", protocol {kind}/{name}"),
    };
    let mut out = match (&description.state, description.members.len()) {
        (GroupState::Dead, _) => "state Dead (the coordinator knows no such group)\n".to_owned(),
        (state, 0) => format!(
            "state {state}{protocol}, generation {}, no members\n",
            description.generation_id
        ),
        (state, count) => format!(
            "state {state}{protocol}, generation {}, {count} member{}\n",
            description.generation_id,
            if count == 1 { "" } else { "s" }
        ),
    };
    if description.members.is_empty() {
        return out;
    }
    let mut table = Table::new("", &["MEMBER-ID", "CLIENT-ID", "HOST", "PARTITIONS"]);
    for member in &description.members {
        table.row(vec![
            member.member_id.clone(),
            dash(&member.client_id),
            dash(&member.client_host),
            assignment(&member.assignment),
        ]);
    }
    out.push_str(&table.render());
    // A blank line between the members and the partitions.
    out.push('\n');
    out
}

fn dash(text: &str) -> String {
    if text.is_empty() {
        "-".to_owned()
    } else {
        text.to_owned()
    }
}

/// Partitions as Kafka's tool shows an assignment: `events(0,1,2), audit(3)`; `-` for none.
pub fn assignment(partitions: &[TopicPartition]) -> String {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        by_topic.entry(&tp.topic).or_default().push(tp.partition);
    }
    if by_topic.is_empty() {
        return "-".to_owned();
    }
    by_topic
        .into_iter()
        .map(|(topic, mut ids)| {
            ids.sort_unstable();
            let ids: Vec<String> = ids.iter().map(i32::to_string).collect();
            format!("{topic}({})", ids.join(","))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The lag table with each partition's owner and a total line; a note when the group has
/// neither committed offsets nor assigned partitions.
pub fn render_lag(rows: &[LagRow]) -> String {
    if rows.is_empty() {
        return "no committed offsets\n".to_owned();
    }
    let offset = |o: Option<i64>| o.map_or_else(|| "-".to_owned(), |o| o.to_string());
    let mut table = Table::new(
        "",
        &[
            "TOPIC",
            "PARTITION",
            "COMMITTED",
            "LOG-END",
            "LAG",
            "CONSUMER-ID",
        ],
    );
    for row in rows {
        table.row(vec![
            row.topic.clone(),
            row.partition.to_string(),
            offset(row.committed),
            offset(row.log_end),
            offset(row.lag()),
            row.owner.clone().unwrap_or_else(|| "-".to_owned()),
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

    fn row(
        partition: i32,
        committed: Option<i64>,
        log_end: Option<i64>,
        owner: Option<&str>,
    ) -> LagRow {
        LagRow {
            topic: "t".into(),
            partition,
            committed,
            log_end,
            owner: owner.map(str::to_owned),
        }
    }

    #[test]
    fn the_lag_table_has_owners_and_a_total() {
        let rows = [
            row(0, Some(5), Some(12), Some("c-1")),
            row(1, Some(9), Some(9), None),
            row(2, Some(9), None, None),
            row(3, None, Some(4), Some("c-2")),
        ];
        assert_eq!(
            render_lag(&rows),
            "TOPIC  PARTITION  COMMITTED  LOG-END  LAG  CONSUMER-ID\n\
             t      0          5          12       7    c-1\n\
             t      1          9          9        0    -\n\
             t      2          9          -        -    -\n\
             t      3          -          4        -    c-2\n\
             total lag 7\n"
        );
        assert_eq!(render_lag(&[]), "no committed offsets\n");
    }

    fn description(
        state: GroupState,
        members: Vec<tributary_client::GroupMember>,
    ) -> GroupDescription {
        GroupDescription {
            group_id: "g".into(),
            coordinator: tributary_client::Coordinator {
                broker_id: 2,
                address: "http://127.0.0.1:9093".into(),
                partition: 4,
            },
            state,
            protocol_type: if members.is_empty() {
                String::new()
            } else {
                "consumer".into()
            },
            protocol: if members.is_empty() {
                String::new()
            } else {
                "range".into()
            },
            generation_id: 3,
            leader: String::new(),
            members,
        }
    }

    fn member(id: &str, partitions: &[(&str, i32)]) -> tributary_client::GroupMember {
        tributary_client::GroupMember {
            member_id: id.into(),
            client_id: "app".into(),
            client_host: "/127.0.0.1".into(),
            assignment: partitions
                .iter()
                .map(|(t, p)| TopicPartition::new(*t, *p))
                .collect(),
            metadata: Default::default(),
            raw_assignment: Default::default(),
        }
    }

    #[test]
    fn members_are_shown_with_their_partitions() {
        let stable = description(
            GroupState::Stable,
            vec![
                member("app-1", &[("b", 0), ("a", 2), ("a", 0)]),
                member("app-2", &[]),
            ],
        );
        assert_eq!(
            render_describe(&stable, &[row(0, Some(1), Some(1), Some("app-1"))]),
            "group g: coordinator broker 2 (http://127.0.0.1:9093), __consumer_offsets partition 4\n\
             state Stable, protocol consumer/range, generation 3, 2 members\n\
             MEMBER-ID  CLIENT-ID  HOST        PARTITIONS\n\
             app-1      app        /127.0.0.1  a(0,2), b(0)\n\
             app-2      app        /127.0.0.1  -\n\
             \n\
             TOPIC  PARTITION  COMMITTED  LOG-END  LAG  CONSUMER-ID\n\
             t      0          1          1        0    app-1\n\
             total lag 0\n"
        );
        assert_eq!(
            render_members(&description(GroupState::Empty, vec![])),
            "state Empty, generation 3, no members\n"
        );
        let mut emptied = description(GroupState::Empty, vec![]);
        emptied.protocol_type = "consumer".into();
        assert_eq!(
            render_members(&emptied),
            "state Empty, protocol consumer, generation 3, no members\n"
        );
        assert_eq!(
            render_members(&description(GroupState::Dead, vec![])),
            "state Dead (the coordinator knows no such group)\n"
        );
    }

    #[test]
    fn the_group_list_has_coordinators_and_states() {
        let listing = |id: &str, coordinator, state| GroupListing {
            group_id: id.into(),
            protocol_type: "consumer".into(),
            state,
            coordinator,
        };
        assert_eq!(
            render_list(&[
                listing("audit", 3, GroupState::Empty),
                listing("readers", 1, GroupState::Stable),
            ]),
            "GROUP    COORDINATOR  STATE\n\
             audit    3            Empty\n\
             readers  1            Stable\n"
        );
        assert_eq!(render_list(&[]), "no groups\n");
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
        let parsed =
            Cli::try_parse_from(["x", "list", "--state", "stable,Empty", "--state", "dead"])
                .unwrap();
        let GroupsCommand::List(args) = parsed.command else {
            panic!()
        };
        assert_eq!(
            args.states,
            [GroupState::Stable, GroupState::Empty, GroupState::Dead]
        );
        assert!(Cli::try_parse_from(["x", "list", "--state", "asleep"]).is_err());
        assert!(Cli::try_parse_from(["x", "delete"]).is_err());
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
