//! `tributary produce TOPIC`: one record per input line, through the batching [`Producer`].
//!
//! A reader thread reads lines (blocking I/O) and parses them into records; the async side hands
//! them to the producer in input order, and a collector task awaits their deliveries (in order)
//! for the summary. The producer batches per partition (`--batch-size`, `--linger-ms`) and picks
//! partitions with `--partitioner` unless `--partition` is given.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use clap::Args;
use tributary_client::{
    Acks, Client, Compression, DeliveryFuture, Header, Partitioner, Producer, ProducerOptions,
    ProducerRecord,
};

use super::args::now_ms;

/// Lines handed from the reader thread to the producer at a time.
const CHUNK: usize = 1000;

/// Arguments of `produce`.
#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// Topic name.
    pub topic: String,
    /// Partition to write every record to (default: chosen by --partitioner).
    #[arg(long)]
    pub partition: Option<i32>,
    /// Split each line at the first SEP into key and value (default: no key).
    #[arg(long, value_name = "SEP")]
    pub key_separator: Option<String>,
    /// Header added to every record, key=value or key alone for a null value (repeatable).
    #[arg(long = "header", value_name = "KEY=VALUE", value_parser = super::args::header)]
    pub headers: Vec<Header>,
    /// Acknowledgement level: -1 (all in-sync replicas), 0 (none) or 1 (leader).
    #[arg(long, default_value = "1", value_parser = super::args::acks, allow_hyphen_values = true)]
    pub acks: Acks,
    /// Read lines from this file instead of stdin.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Most bytes per batch (the producer's batch.size).
    #[arg(long, alias = "batch-bytes", default_value_t = 1024 * 1024)]
    pub batch_size: usize,
    /// How long a batch waits for more lines before it is sent (linger.ms).
    #[arg(long, default_value_t = 5)]
    pub linger_ms: u64,
    /// Where records without --partition go: default (keys by murmur2, keyless sticky),
    /// sticky, or round-robin.
    #[arg(long, default_value = "default", value_parser = partitioner)]
    pub partitioner: Partitioner,
    /// Codec for each batch's records (compression.type): none, gzip, snappy, lz4 or zstd. A
    /// batch that would not get smaller is sent uncompressed.
    #[arg(long, default_value = "none", value_parser = super::args::compression)]
    pub compression: Compression,
    /// Idempotent producer (enable.idempotence): retries never duplicate or reorder records.
    /// Needs --acks -1.
    #[arg(long)]
    pub idempotence: bool,
}

fn partitioner(text: &str) -> Result<Partitioner, String> {
    Partitioner::parse(text).map_err(|error| error.to_string())
}

/// Turns input lines into records (pure: no I/O).
#[derive(Debug)]
pub struct LineParser {
    key_separator: Option<Vec<u8>>,
    headers: Vec<Header>,
    line_number: u64,
}

impl LineParser {
    pub fn new(key_separator: Option<&str>, headers: Vec<Header>) -> Self {
        LineParser {
            key_separator: key_separator.map(|sep| sep.as_bytes().to_vec()),
            headers,
            line_number: 0,
        }
    }

    /// The record for one line (a trailing `\n` or `\r\n` is removed).
    pub fn parse(&mut self, line: &[u8]) -> anyhow::Result<(Option<Bytes>, Bytes)> {
        self.line_number += 1;
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let (key, value) = match &self.key_separator {
            None => (None, line),
            Some(separator) => {
                let at = line
                    .windows(separator.len())
                    .position(|window| window == separator.as_slice())
                    .with_context(|| format!("line {} has no key separator", self.line_number))?;
                (
                    Some(Bytes::copy_from_slice(&line[..at])),
                    &line[at + separator.len()..],
                )
            }
        };
        Ok((key, Bytes::copy_from_slice(value)))
    }

    /// A producer record for `topic` from one line.
    fn record(
        &mut self,
        topic: &str,
        partition: Option<i32>,
        line: &[u8],
        timestamp: i64,
    ) -> anyhow::Result<ProducerRecord> {
        let (key, value) = self.parse(line)?;
        Ok(ProducerRecord {
            topic: topic.to_owned(),
            partition,
            key,
            value: Some(value),
            timestamp: Some(timestamp),
            headers: self.headers.clone(),
        })
    }
}

/// Reads every line of `input` and sends records to `records` in chunks.
fn read_lines(
    mut input: Box<dyn BufRead + Send>,
    mut parser: LineParser,
    topic: &str,
    partition: Option<i32>,
    records: &tokio::sync::mpsc::Sender<anyhow::Result<Vec<ProducerRecord>>>,
) -> anyhow::Result<()> {
    let mut line = Vec::new();
    let mut chunk = Vec::with_capacity(CHUNK);
    loop {
        line.clear();
        if input
            .read_until(b'\n', &mut line)
            .context("reading input")?
            == 0
        {
            break;
        }
        chunk.push(parser.record(topic, partition, &line, now_ms())?);
        if chunk.len() == CHUNK
            && records
                .blocking_send(Ok(std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK))))
                .is_err()
        {
            return Ok(());
        }
    }
    if !chunk.is_empty() {
        let _ = records.blocking_send(Ok(chunk));
    }
    Ok(())
}

/// What the deliveries added up to.
#[derive(Debug, Default)]
struct Delivered {
    records: usize,
    /// Partition -> (first, last) offset written.
    offsets: BTreeMap<i32, (i64, i64)>,
}

/// Awaits deliveries in send order; stops at the first failure.
async fn collect(
    mut deliveries: tokio::sync::mpsc::UnboundedReceiver<DeliveryFuture>,
) -> anyhow::Result<Delivered> {
    let mut delivered = Delivered::default();
    while let Some(delivery) = deliveries.recv().await {
        let written = delivery.await?;
        delivered.records += 1;
        let range = delivered
            .offsets
            .entry(written.partition)
            .or_insert((written.offset, written.offset));
        range.1 = written.offset;
    }
    Ok(delivered)
}

pub async fn run(client: &Client, args: ProduceArgs) -> anyhow::Result<()> {
    let input: Box<dyn BufRead + Send> = match &args.file {
        Some(path) => Box::new(std::io::BufReader::with_capacity(
            1 << 20,
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?,
        )),
        None => Box::new(std::io::BufReader::with_capacity(1 << 20, std::io::stdin())),
    };
    let parser = LineParser::new(args.key_separator.as_deref(), args.headers.clone());
    let (sender, mut chunks) = tokio::sync::mpsc::channel(4);
    let (topic, partition) = (args.topic.clone(), args.partition);
    std::thread::Builder::new()
        .name("produce-reader".into())
        .spawn(move || {
            if let Err(error) = read_lines(input, parser, &topic, partition, &sender) {
                let _ = sender.blocking_send(Err(error));
            }
        })?;

    let producer = Producer::new(
        client,
        ProducerOptions {
            acks: args.acks,
            batch_size: args.batch_size,
            linger: Duration::from_millis(args.linger_ms),
            partitioner: args.partitioner,
            compression: args.compression,
            idempotence: args.idempotence,
            ..ProducerOptions::default()
        },
    )?;
    let (deliveries, receiver) = tokio::sync::mpsc::unbounded_channel();
    let collector = tokio::spawn(collect(receiver));
    let started = Instant::now();
    let produced: anyhow::Result<()> = async {
        while let Some(chunk) = chunks.recv().await {
            for record in chunk? {
                let delivery = producer
                    .send(record)
                    .await
                    .with_context(|| format!("producing to {}", args.topic))?;
                if deliveries.send(delivery).is_err() {
                    // The collector stopped at a failed delivery; it reports it below.
                    return Ok(());
                }
            }
        }
        Ok(())
    }
    .await;
    drop(deliveries);
    producer.close().await;
    produced?;
    let delivered = collector
        .await
        .context("delivery collector")?
        .with_context(|| format!("producing to {}", args.topic))?;
    let elapsed = started.elapsed().as_secs_f64();
    let offsets = match args.acks {
        Acks::None => String::new(),
        _ => delivered
            .offsets
            .iter()
            .map(|(partition, (first, last))| {
                format!(", {}-{partition} offsets {first}..={last}", args.topic)
            })
            .collect(),
    };
    eprintln!(
        "Produced {} records to {}{offsets} in {elapsed:.2}s",
        delivered.records, args.topic
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_records_with_keys_and_headers() {
        let header = Header {
            key: "h".into(),
            value: None,
        };
        let mut parser = LineParser::new(Some("::"), vec![header.clone()]);
        let lines: [&[u8]; 3] = [b"k1::v1\n", b"k2::v::2\r\n", b"::empty key"];
        let records: Vec<ProducerRecord> = lines
            .iter()
            .map(|line| parser.record("t", Some(2), line, 5).unwrap())
            .collect();
        let text = |b: &Option<Bytes>| b.as_ref().map(|b| String::from_utf8(b.to_vec()).unwrap());
        assert_eq!(
            records
                .iter()
                .map(|r| (text(&r.key), text(&r.value)))
                .collect::<Vec<_>>(),
            vec![
                (Some("k1".into()), Some("v1".into())),
                (Some("k2".into()), Some("v::2".into())),
                (Some(String::new()), Some("empty key".into()))
            ]
        );
        assert_eq!(records[0].headers, vec![header]);
        assert_eq!(
            (records[0].partition, records[0].timestamp),
            (Some(2), Some(5))
        );
        let error = parser.record("t", None, b"no separator", 5).unwrap_err();
        assert!(error.to_string().contains("line 4"), "{error}");
        let mut plain = LineParser::new(None, vec![]);
        assert_eq!(plain.parse(b"a:b\n").unwrap(), (None, Bytes::from("a:b")));
    }

    #[test]
    fn parses_flags() {
        use clap::Parser;
        let cli = crate::cli::Args::try_parse_from([
            "tributary",
            "produce",
            "t",
            "--acks",
            "-1",
            "--header",
            "a=1",
            "--key-separator",
            ":",
        ])
        .unwrap();
        let crate::cli::Command::Produce(args) = cli.command else {
            panic!()
        };
        assert_eq!(args.acks, Acks::All);
        assert_eq!(args.partition, None);
        assert_eq!(args.partitioner, Partitioner::Default);
        assert_eq!(args.compression, Compression::None);
        assert_eq!((args.batch_size, args.linger_ms), (1 << 20, 5));
        assert_eq!(args.headers[0].key, "a");
        let cli = crate::cli::Args::try_parse_from([
            "tributary",
            "produce",
            "t",
            "--partitioner",
            "round-robin",
            "--batch-bytes",
            "100",
            "--linger-ms",
            "0",
            "--compression",
            "lz4",
        ])
        .unwrap();
        let crate::cli::Command::Produce(args) = cli.command else {
            panic!()
        };
        assert_eq!(args.partitioner, Partitioner::RoundRobin);
        assert_eq!((args.batch_size, args.linger_ms), (100, 0));
        assert_eq!(args.compression, Compression::Lz4);
        assert!(
            crate::cli::Args::try_parse_from(["tributary", "produce", "t", "--acks", "2"]).is_err()
        );
    }
}
