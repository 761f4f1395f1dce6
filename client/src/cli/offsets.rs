//! `tributary offsets TOPIC`: earliest, latest and (optionally) by-timestamp offsets per
//! partition.

use std::io::Write;

use anyhow::Context;
use clap::Args;
use tributary_client::{Client, ClientError, ErrorCode, OffsetSpec};

use super::table::Table;

/// Arguments of `offsets`.
#[derive(Debug, Args)]
pub struct OffsetsArgs {
    /// Topic name.
    pub topic: String,
    /// Only this partition (default: all partitions).
    #[arg(long, value_parser = clap::value_parser!(i32).range(0..))]
    pub partition: Option<i32>,
    /// Also show, per partition, the first offset whose record timestamp is at or after MS
    /// (ms since the Unix epoch); `-` when there is none.
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(i64).range(0..))]
    pub timestamp: Option<i64>,
}

/// One partition's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionOffsets {
    pub partition: i32,
    /// The log start offset.
    pub earliest: Option<i64>,
    /// The high watermark.
    pub latest: Option<i64>,
    /// With `--timestamp`: `Some(found)`, `found` being `None` when no record is that recent.
    pub at_timestamp: Option<Option<i64>>,
}

pub async fn run(client: &Client, args: OffsetsArgs) -> anyhow::Result<()> {
    let existing = client
        .partitions_of(&args.topic)
        .await
        .with_context(|| format!("looking up {}", args.topic))?;
    let partitions = match args.partition {
        // Checked here: the leader lookup would retry an unknown partition for 30 s.
        Some(partition) if !existing.contains(&partition) => {
            return Err(ClientError::Broker {
                topic: args.topic.clone(),
                partition: Some(partition),
                code: ErrorCode::UnknownTopicOrPartition,
                message: format!("the topic has {} partitions", existing.len()),
            }
            .into());
        }
        Some(partition) => vec![partition],
        None => existing,
    };
    let mut rows = Vec::new();
    for partition in partitions {
        let at_timestamp = match args.timestamp {
            Some(ms) => {
                Some(lookup(client, &args.topic, partition, OffsetSpec::Timestamp(ms)).await?)
            }
            None => None,
        };
        rows.push(PartitionOffsets {
            partition,
            earliest: lookup(client, &args.topic, partition, OffsetSpec::Earliest).await?,
            latest: lookup(client, &args.topic, partition, OffsetSpec::Latest).await?,
            at_timestamp,
        });
    }
    std::io::stdout()
        .lock()
        .write_all(render_offsets(&rows, args.timestamp.is_some()).as_bytes())?;
    Ok(())
}

async fn lookup(
    client: &Client,
    topic: &str,
    partition: i32,
    spec: OffsetSpec,
) -> anyhow::Result<Option<i64>> {
    let listed = client
        .list_offsets(topic, partition, spec)
        .await
        .with_context(|| format!("listing offsets of {topic}-{partition}"))?;
    Ok(listed.offset)
}

/// `PARTITION EARLIEST LATEST`, and `AT_TIMESTAMP` with `--timestamp`.
pub fn render_offsets(rows: &[PartitionOffsets], with_timestamp: bool) -> String {
    let offset = |found: Option<i64>| found.map_or_else(|| "-".to_owned(), |o| o.to_string());
    let header: &[&'static str] = if with_timestamp {
        &["PARTITION", "EARLIEST", "LATEST", "AT_TIMESTAMP"]
    } else {
        &["PARTITION", "EARLIEST", "LATEST"]
    };
    let mut table = Table::new("", header);
    for row in rows {
        let mut cells = vec![
            row.partition.to_string(),
            offset(row.earliest),
            offset(row.latest),
        ];
        if with_timestamp {
            cells.push(offset(row.at_timestamp.flatten()));
        }
        table.row(cells);
    }
    table.render()
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn parses_offsets() {
        let args = crate::cli::Args::try_parse_from([
            "tributary",
            "offsets",
            "orders",
            "--partition",
            "2",
            "--timestamp",
            "1700000000000",
        ])
        .unwrap();
        let crate::cli::Command::Offsets(args) = args.command else {
            panic!("wrong command");
        };
        assert_eq!(
            (args.topic.as_str(), args.partition, args.timestamp),
            ("orders", Some(2), Some(1_700_000_000_000))
        );
        for bad in [
            ["--partition", "-1"],
            ["--timestamp", "-5"],
            ["--timestamp", "soon"],
        ] {
            let argv = ["tributary", "offsets", "orders"].into_iter().chain(bad);
            assert!(crate::cli::Args::try_parse_from(argv).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn offsets_table() {
        let rows = [
            PartitionOffsets {
                partition: 0,
                earliest: Some(0),
                latest: Some(1200),
                at_timestamp: Some(Some(1100)),
            },
            PartitionOffsets {
                partition: 1,
                earliest: Some(5),
                latest: Some(5),
                at_timestamp: Some(None),
            },
        ];
        assert_eq!(
            render_offsets(&rows, false),
            "PARTITION  EARLIEST  LATEST\n0          0         1200\n1          5         5\n"
        );
        assert_eq!(
            render_offsets(&rows, true),
            "PARTITION  EARLIEST  LATEST  AT_TIMESTAMP\n\
             0          0         1200    1100\n\
             1          5         5       -\n"
        );
    }
}
