//! `tributary consume TOPIC`: prints records of one or more partitions, read with a
//! [`Consumer`].

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use tributary_client::{
    Client, Consumer, ConsumerOptions, FetchOptions, GroupOptions, OffsetReset, OffsetSpec,
    TopicPartition,
};

use super::args::PartitionSelection;
use super::exit::UsageError;
use super::format::{RecordFormat, render_json};

/// Longest single `poll`, so `--timeout-ms` and the message limit are checked often.
const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Arguments of `consume`.
#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// Topic name.
    pub topic: String,
    /// Partitions to read: `all` or a comma-separated list such as `0,2`.
    #[arg(
        short,
        long,
        default_value = "all",
        value_name = "all|N[,N...]",
        value_parser = super::args::partitions
    )]
    pub partition: PartitionSelection,
    /// Start at the earliest offset (default: the latest, so only new records are printed).
    #[arg(long, conflicts_with_all = ["offset", "from_timestamp"])]
    pub from_beginning: bool,
    /// Start every selected partition at this offset.
    #[arg(short, long, conflicts_with = "from_timestamp")]
    pub offset: Option<i64>,
    /// Start at the first record with a timestamp at or after this (ms since the epoch).
    #[arg(long, value_name = "MS")]
    pub from_timestamp: Option<i64>,
    /// When the position is outside the log (OFFSET_OUT_OF_RANGE): restart at the `earliest`
    /// or `latest` offset, or stop with an error (`none`).
    #[arg(long, default_value = "none", value_name = "earliest|latest|none")]
    pub auto_offset_reset: OffsetReset,
    /// Exit after printing this many records.
    #[arg(short = 'c', long, value_name = "N")]
    pub max_messages: Option<u64>,
    /// Output template, kcat's tokens: %t topic, %p partition, %o offset, %T timestamp (ms),
    /// %k key, %K key length, %s value (or %v), %S value length, %h headers, %% a percent sign;
    /// escapes \n \r \t \\ \xHH. A newline follows each record.
    #[arg(short, long, default_value = "%s", conflicts_with = "json")]
    pub format: RecordFormat,
    /// Print each record as a JSON object on one line.
    #[arg(short = 'J', long)]
    pub json: bool,
    /// Exit when no record arrives for this long.
    #[arg(long, value_name = "MS")]
    pub timeout_ms: Option<u64>,
    /// Largest fetch response per partition.
    #[arg(long, default_value_t = 1024 * 1024)]
    pub max_bytes: i32,
    /// How long each fetch waits on the broker for new records.
    #[arg(long, default_value_t = 500)]
    pub max_wait_ms: i32,
    /// Read as a member of this consumer group: the group's members share the topic's
    /// partitions (all of them; `--partition` must stay `all`), each partition starts at the
    /// group's committed offset (without one: the earliest with `--from-beginning`, else the
    /// latest), and the positions are committed after each batch of records is printed
    /// (at-least-once). Ctrl-C, `--max-messages` and `--timeout-ms` leave the group cleanly.
    #[arg(short, long, value_name = "GROUP", conflicts_with_all = ["offset", "from_timestamp"])]
    pub group: Option<String>,
    /// With `--group`: removed from the group when no heartbeat arrives for this long.
    #[arg(long, default_value_t = 10_000, value_name = "MS", requires = "group")]
    pub session_timeout_ms: u64,
}

/// Where consumption starts.
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

    fn options(&self) -> ConsumerOptions {
        let group = self.group.as_ref().map(|group| {
            let session_timeout = Duration::from_millis(self.session_timeout_ms);
            GroupOptions {
                client_id: "tributary-consume".to_owned(),
                session_timeout,
                // Kafka's ratio: three heartbeats per session timeout.
                heartbeat_interval: (session_timeout / 3).min(Duration::from_secs(3)),
                // Committed explicitly after each printed batch.
                enable_auto_commit: false,
                ..GroupOptions::new(group.as_str())
            }
        });
        // In a group, where to start without a committed offset.
        let auto_offset_reset = match (&group, self.from_beginning) {
            (Some(_), true) => OffsetReset::Earliest,
            (Some(_), false) => OffsetReset::Latest,
            (None, _) => self.auto_offset_reset,
        };
        ConsumerOptions {
            fetch: FetchOptions {
                max_bytes: self.max_bytes,
                max_wait_ms: self.max_wait_ms,
                min_bytes: 1,
            },
            auto_offset_reset,
            group,
            ..ConsumerOptions::default()
        }
    }
}

/// A consumer of the selected partitions, positioned as `start` says; or, with `--group`, a
/// member of the group subscribed to the topic.
async fn consumer(client: &Client, args: &ConsumeArgs) -> anyhow::Result<Consumer> {
    if args.group.is_some() {
        if args.partition != PartitionSelection::All {
            return Err(UsageError(
                "--group reads the partitions the group assigns: leave --partition at all"
                    .to_owned(),
            )
            .into());
        }
        // The topic must exist: a member of a group subscribed to a missing topic waits forever.
        client
            .partitions_of(&args.topic)
            .await
            .with_context(|| format!("looking up {}", args.topic))?;
        let mut consumer = Consumer::new(client, args.options())?;
        consumer.subscribe(&[args.topic.as_str()])?;
        return Ok(consumer);
    }
    let start = args.start()?;
    let partitions: Vec<TopicPartition> = args
        .partition
        .resolve(client, &args.topic)
        .await?
        .into_iter()
        .map(|p| TopicPartition::new(args.topic.as_str(), p))
        .collect();
    let mut consumer = Consumer::new(client, args.options())?;
    consumer.assign(partitions.iter().cloned());
    match start {
        Start::Offset(offset) => {
            for tp in &partitions {
                consumer.seek(tp, offset)?;
            }
        }
        Start::Lookup(OffsetSpec::Earliest) => consumer.seek_to_beginning(&partitions)?,
        Start::Lookup(OffsetSpec::Latest) => consumer.seek_to_end(&partitions)?,
        Start::Lookup(OffsetSpec::Timestamp(ms)) => consumer.seek_to_timestamp(&partitions, ms)?,
    }
    Ok(consumer)
}

pub async fn run(client: &Client, args: ConsumeArgs) -> anyhow::Result<()> {
    let mut consumer = consumer(client, &args).await?;
    let timeout = args.timeout_ms.map(Duration::from_millis);
    let limit = args.max_messages.unwrap_or(u64::MAX);
    let mut printed = 0u64;
    let mut last_record = Instant::now();
    let mut buffer = Vec::with_capacity(64 * 1024);
    while printed < limit {
        let wait = match timeout {
            None => POLL_INTERVAL,
            Some(timeout) => match timeout.checked_sub(last_record.elapsed()) {
                Some(remaining) if !remaining.is_zero() => remaining.min(POLL_INTERVAL),
                _ => break,
            },
        };
        let records = tokio::select! {
            polled = consumer.poll(wait) => polled.with_context(|| format!("reading {}", args.topic))?,
            _ = tokio::signal::ctrl_c() => break,
        };
        if records.is_empty() {
            continue;
        }
        last_record = Instant::now();
        buffer.clear();
        for record in records
            .iter()
            .take((limit - printed).min(usize::MAX as u64) as usize)
        {
            if args.json {
                render_json(&mut buffer, record);
            } else {
                args.format.render(&mut buffer, record);
            }
            buffer.push(b'\n');
            printed += 1;
        }
        let written = {
            let mut out = std::io::stdout().lock();
            out.write_all(&buffer).and_then(|()| out.flush())
        };
        match written {
            Ok(()) => {}
            // `consume ... | head` closes the pipe: stop quietly like other Unix tools.
            Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            Err(error) => return Err(error).context("writing to stdout"),
        }
        if args.group.is_some() {
            // Printed, so processed: commit (at-least-once). A refused commit (a rebalance took
            // the partitions away) is not fatal: the next poll re-joins and the new owner reads
            // from the last commit.
            if let Err(error) = consumer.commit_sync().await {
                eprintln!("warning: commit failed: {error}");
            }
        }
    }
    eprintln!("Processed a total of {printed} messages");
    if args.group.is_some() {
        consumer.close().await.context("leaving the group")?;
    }
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
        // --group takes the group's positions: no explicit start offsets.
        let grouped = parse(&["--group", "g", "--from-beginning"]).unwrap();
        let options = grouped.options();
        assert_eq!(options.auto_offset_reset, OffsetReset::Earliest);
        let group = options.group.expect("group options");
        assert_eq!(
            (group.group_id.as_str(), group.enable_auto_commit),
            ("g", false)
        );
        assert_eq!(
            parse(&["-g", "g"]).unwrap().options().auto_offset_reset,
            OffsetReset::Latest
        );
        assert!(parse(&["--group", "g", "--offset", "3"]).is_err());
        assert!(
            parse(&["--session-timeout-ms", "3000"]).is_err(),
            "needs --group"
        );
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
            (PartitionSelection::List(vec![2]), Some(10), Some(500))
        );
        assert_eq!(args.format, "%s".parse().unwrap());
        assert_eq!(args.auto_offset_reset, OffsetReset::None);
        assert!(parse(&["--json"]).unwrap().json);
        assert!(parse(&["-J"]).unwrap().json);
        let short = parse(&["-p", "0,1", "-c", "3", "-f", "%t %p", "-o", "5"]).unwrap();
        assert_eq!(short.partition, PartitionSelection::List(vec![0, 1]));
        assert_eq!((short.max_messages, short.offset), (Some(3), Some(5)));
        assert_eq!(short.format, "%t %p".parse().unwrap());
        assert_eq!(parse(&[]).unwrap().partition, PartitionSelection::All);
        assert_eq!(
            parse(&["--auto-offset-reset", "earliest"])
                .unwrap()
                .auto_offset_reset,
            OffsetReset::Earliest
        );
        assert!(parse(&["--auto-offset-reset", "smallest"]).is_err());
        assert!(parse(&["--json", "--format", "%k"]).is_err());
        assert!(parse(&["--format", "%q"]).is_err());
    }
}
