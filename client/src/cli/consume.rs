//! `tributary consume TOPIC`

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use tributary_client::{Client, FetchOptions, OffsetSpec, PartitionConsumer};

use super::format::{RecordFormat, render_json};

/// Arguments of `consume`.
#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// Topic name.
    pub topic: String,
    /// Partition to read.
    #[arg(long, default_value_t = 0)]
    pub partition: i32,
    /// Start at the earliest offset (default: the latest, so only new records are printed).
    #[arg(long, conflicts_with_all = ["offset", "from_timestamp"])]
    pub from_beginning: bool,
    /// Start at this offset.
    #[arg(long, conflicts_with = "from_timestamp")]
    pub offset: Option<i64>,
    /// Start at the first record with a timestamp at or after this (ms since the epoch).
    #[arg(long, value_name = "MS")]
    pub from_timestamp: Option<i64>,
    /// Exit after printing this many records.
    #[arg(long)]
    pub max_messages: Option<u64>,
    /// Output template: %k key, %v value, %o offset, %p partition, %t timestamp, %T topic,
    /// %h headers, %% a percent sign; \t and \n escapes.
    #[arg(long, default_value = "%v", conflicts_with = "json")]
    pub format: RecordFormat,
    /// Print each record as a JSON object.
    #[arg(long)]
    pub json: bool,
    /// Exit when no record arrives for this long.
    #[arg(long, value_name = "MS")]
    pub timeout_ms: Option<u64>,
    /// Largest fetch response.
    #[arg(long, default_value_t = 8 * 1024 * 1024)]
    pub max_bytes: i32,
    /// How long each fetch waits on the broker for new records.
    #[arg(long, default_value_t = 500)]
    pub max_wait_ms: i32,
}

/// Where consumption starts, before asking the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// An absolute offset.
    Offset(i64),
    /// An offset to look up.
    Lookup(OffsetSpec),
}

impl ConsumeArgs {
    /// The start the flags ask for; latest (like Kafka) when none is given.
    pub fn start(&self) -> anyhow::Result<Start> {
        Ok(
            match (self.from_beginning, self.offset, self.from_timestamp) {
                (true, _, _) => Start::Lookup(OffsetSpec::Earliest),
                (_, Some(offset), _) if offset < 0 => {
                    anyhow::bail!("--offset {offset} is negative")
                }
                (_, Some(offset), _) => Start::Offset(offset),
                (_, _, Some(ms)) if ms < 0 => anyhow::bail!("--from-timestamp {ms} is negative"),
                (_, _, Some(ms)) => Start::Lookup(OffsetSpec::Timestamp(ms)),
                _ => Start::Lookup(OffsetSpec::Latest),
            },
        )
    }
}

/// Turns a [`Start`] into an offset; a timestamp after the last record means "the latest".
async fn resolve(
    client: &Client,
    topic: &str,
    partition: i32,
    start: Start,
) -> anyhow::Result<i64> {
    let spec = match start {
        Start::Offset(offset) => return Ok(offset),
        Start::Lookup(spec) => spec,
    };
    let context = || format!("looking up the start offset of {topic}-{partition}");
    if let Some(offset) = client
        .list_offsets(topic, partition, spec)
        .await
        .with_context(context)?
        .offset
    {
        return Ok(offset);
    }
    let latest = client
        .list_offsets(topic, partition, OffsetSpec::Latest)
        .await
        .with_context(context)?;
    Ok(latest.offset.unwrap_or(0))
}

pub async fn run(client: &Client, args: ConsumeArgs) -> anyhow::Result<()> {
    let start = resolve(client, &args.topic, args.partition, args.start()?).await?;
    let options = FetchOptions {
        max_bytes: args.max_bytes,
        max_wait_ms: args.max_wait_ms,
        min_bytes: 1,
    };
    let mut consumer = PartitionConsumer::new(client, &args.topic, args.partition, start, options)?;
    let timeout = args.timeout_ms.map(Duration::from_millis);
    let limit = args.max_messages.unwrap_or(u64::MAX);
    let mut printed = 0u64;
    let mut last_record = Instant::now();
    let mut buffer = Vec::with_capacity(64 * 1024);
    while printed < limit {
        let result = match timeout {
            None => consumer.next().await,
            Some(timeout) => {
                let Some(remaining) = timeout.checked_sub(last_record.elapsed()) else {
                    break;
                };
                match tokio::time::timeout(remaining, consumer.next()).await {
                    Ok(result) => result,
                    Err(_) => break,
                }
            }
        };
        let fetched =
            result.with_context(|| format!("reading {}-{}", args.topic, args.partition))?;
        if fetched.records.is_empty() {
            continue;
        }
        last_record = Instant::now();
        buffer.clear();
        for record in fetched
            .records
            .iter()
            .take((limit - printed).min(usize::MAX as u64) as usize)
        {
            if args.json {
                render_json(&mut buffer, &args.topic, args.partition, record);
            } else {
                args.format
                    .render(&mut buffer, &args.topic, args.partition, record);
            }
            buffer.push(b'\n');
            printed += 1;
        }
        let mut out = std::io::stdout().lock();
        match out.write_all(&buffer).and_then(|()| out.flush()) {
            Ok(()) => {}
            // `consume ... | head` closes the pipe: stop quietly like other Unix tools.
            Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            Err(error) => return Err(error).context("writing to stdout"),
        }
    }
    eprintln!("Processed a total of {printed} messages");
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Args as Cli, Command};

    fn parse(extra: &[&str]) -> Result<ConsumeArgs, clap::Error> {
        let mut argv = vec!["tributary", "consume", "t"];
        argv.extend_from_slice(extra);
        Cli::try_parse_from(argv).map(|cli| match cli.command {
            Command::Consume(args) => args,
            other => panic!("{other:?}"),
        })
    }

    #[test]
    fn start_positions() {
        let table: [(&[&str], Start); 4] = [
            (&[], Start::Lookup(OffsetSpec::Latest)),
            (&["--from-beginning"], Start::Lookup(OffsetSpec::Earliest)),
            (&["--offset", "17"], Start::Offset(17)),
            (
                &["--from-timestamp", "1700000000000"],
                Start::Lookup(OffsetSpec::Timestamp(1_700_000_000_000)),
            ),
        ];
        for (flags, expected) in table {
            assert_eq!(
                parse(flags).unwrap().start().unwrap(),
                expected,
                "{flags:?}"
            );
        }
        assert!(
            parse(&["--offset", "-3"]).is_err()
                || parse(&["--offset=-3"]).unwrap().start().is_err()
        );
        assert!(parse(&["--from-beginning", "--offset", "3"]).is_err());
        assert!(parse(&["--offset", "3", "--from-timestamp", "5"]).is_err());
    }

    #[test]
    fn output_flags() {
        let args = parse(&[
            "--partition",
            "2",
            "--max-messages",
            "10",
            "--timeout-ms",
            "500",
        ])
        .unwrap();
        assert_eq!(
            (args.partition, args.max_messages, args.timeout_ms),
            (2, Some(10), Some(500))
        );
        assert_eq!(args.format, "%v".parse().unwrap());
        assert!(parse(&["--json"]).unwrap().json);
        assert!(parse(&["--json", "--format", "%k"]).is_err());
        assert!(parse(&["--format", "%q"]).is_err());
    }
}
