//! `tributary offsets TOPIC`

use std::io::Write;

use anyhow::Context;
use clap::Args;
use tributary_client::{Client, OffsetSpec};

/// Arguments of `offsets`.
#[derive(Debug, Args)]
pub struct OffsetsArgs {
    /// Topic name.
    pub topic: String,
    /// Only this partition (default: all partitions).
    #[arg(long)]
    pub partition: Option<i32>,
}

pub async fn run(client: &Client, args: OffsetsArgs) -> anyhow::Result<()> {
    let partitions = match args.partition {
        Some(partition) => vec![partition],
        None => client
            .partitions_of(&args.topic)
            .await
            .with_context(|| format!("looking up {}", args.topic))?,
    };
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<10} {:>20} {:>20}",
        "PARTITION", "EARLIEST", "LATEST"
    )?;
    for partition in partitions {
        let earliest = lookup(client, &args.topic, partition, OffsetSpec::Earliest).await?;
        let latest = lookup(client, &args.topic, partition, OffsetSpec::Latest).await?;
        writeln!(out, "{partition:<10} {earliest:>20} {latest:>20}")?;
    }
    Ok(())
}

async fn lookup(
    client: &Client,
    topic: &str,
    partition: i32,
    spec: OffsetSpec,
) -> anyhow::Result<i64> {
    let listed = client
        .list_offsets(topic, partition, spec)
        .await
        .with_context(|| format!("listing offsets of {topic}-{partition}"))?;
    Ok(listed.offset.unwrap_or(-1))
}
