//! `tributary produce TOPIC`: one record per input line.
//!
//! A reader thread reads lines (blocking I/O) and encodes them into batches; the async side
//! sends the batches on one produce stream to the partition's leader with up to [`IN_FLIGHT`]
//! unacknowledged.

use std::io::BufRead;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use bytes::Bytes;
use clap::Args;
use futures::stream::{FuturesOrdered, StreamExt};
use tributary_client::{
    Acks, BatchBuilder, Client, Compression, Header, Producer, ProducerOptions, Record,
};

use super::args::now_ms;

/// Batches sent and not yet acknowledged.
const IN_FLIGHT: usize = 4;

/// Arguments of `produce`.
#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// Topic name.
    pub topic: String,
    /// Partition to write to.
    #[arg(long, default_value_t = 0)]
    pub partition: i32,
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
    /// Most lines per batch.
    #[arg(long, default_value_t = 1000)]
    pub batch_records: usize,
    /// Most bytes per batch (before compression).
    #[arg(long, default_value_t = 1024 * 1024)]
    pub batch_bytes: usize,
    /// Codec for each batch's records: none, gzip, snappy, lz4 or zstd. A batch that would
    /// not get smaller is sent uncompressed.
    #[arg(long, default_value = "none", value_parser = super::args::compression)]
    pub compression: Compression,
}

/// Turns input lines into records and full batches (pure: no I/O).
#[derive(Debug)]
pub struct LineBatcher {
    builder: BatchBuilder,
    compression: Compression,
    max_records: usize,
    max_bytes: usize,
    key_separator: Option<Vec<u8>>,
    headers: Vec<Header>,
    line_number: u64,
}

/// A finished batch and its record count.
pub type Batch = (Bytes, usize);

impl LineBatcher {
    pub fn new(
        max_records: usize,
        max_bytes: usize,
        key_separator: Option<&str>,
        headers: Vec<Header>,
    ) -> Self {
        LineBatcher {
            builder: BatchBuilder::with_capacity(max_bytes.min(1 << 20)),
            compression: Compression::None,
            max_records: max_records.max(1),
            max_bytes,
            key_separator: key_separator.map(|sep| sep.as_bytes().to_vec()),
            headers,
            line_number: 0,
        }
    }

    /// Compresses every batch's records with `codec` (sizes are checked before compression).
    pub fn compression(mut self, codec: Compression) -> Self {
        self.compression = codec;
        self.builder = BatchBuilder::with_capacity(self.max_bytes.min(1 << 20)).compression(codec);
        self
    }

    /// The record for one line (without its line ending).
    fn record(&self, line: &[u8], timestamp: i64) -> anyhow::Result<Record> {
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
        Ok(Record {
            key,
            value: Some(Bytes::copy_from_slice(value)),
            timestamp,
            headers: self.headers.clone(),
        })
    }

    /// Adds a line (a trailing `\n` or `\r\n` is removed). Returns a batch when one is full.
    pub fn push_line(&mut self, line: &[u8], timestamp: i64) -> anyhow::Result<Option<Batch>> {
        self.line_number += 1;
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let record = self.record(line, timestamp)?;
        let mut full = None;
        if !self.builder.is_empty() && self.builder.size_with(&record) > self.max_bytes {
            full = self.take();
        }
        self.builder.push(&record);
        if full.is_none() && self.builder.len() >= self.max_records {
            full = self.take();
        }
        Ok(full)
    }

    /// The batch being filled, if it holds any record.
    pub fn take(&mut self) -> Option<Batch> {
        if self.builder.is_empty() {
            return None;
        }
        let builder = std::mem::replace(
            &mut self.builder,
            BatchBuilder::with_capacity(self.max_bytes.min(1 << 20)).compression(self.compression),
        );
        let count = builder.len();
        Some((builder.build(), count))
    }
}

/// Reads every line of `input` and sends full batches to `batches`.
fn read_lines(
    mut input: Box<dyn BufRead + Send>,
    mut batcher: LineBatcher,
    batches: &tokio::sync::mpsc::Sender<anyhow::Result<Batch>>,
) -> anyhow::Result<()> {
    let mut line = Vec::new();
    loop {
        line.clear();
        if input
            .read_until(b'\n', &mut line)
            .context("reading input")?
            == 0
        {
            break;
        }
        if let Some(batch) = batcher.push_line(&line, now_ms())?
            && batches.blocking_send(Ok(batch)).is_err()
        {
            return Ok(());
        }
    }
    if let Some(batch) = batcher.take() {
        let _ = batches.blocking_send(Ok(batch));
    }
    Ok(())
}

pub async fn run(client: &Client, args: ProduceArgs) -> anyhow::Result<()> {
    let input: Box<dyn BufRead + Send> = match &args.file {
        Some(path) => Box::new(std::io::BufReader::with_capacity(
            1 << 20,
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?,
        )),
        None => Box::new(std::io::BufReader::with_capacity(1 << 20, std::io::stdin())),
    };
    let batcher = LineBatcher::new(
        args.batch_records,
        args.batch_bytes,
        args.key_separator.as_deref(),
        args.headers.clone(),
    )
    .compression(args.compression);
    let (sender, mut batches) = tokio::sync::mpsc::channel(IN_FLIGHT);
    std::thread::Builder::new()
        .name("produce-reader".into())
        .spawn(move || {
            if let Err(error) = read_lines(input, batcher, &sender) {
                let _ = sender.blocking_send(Err(error));
            }
        })?;

    let target = format!("{}-{}", args.topic, args.partition);
    // With the leader known before the first send, every batch is queued on the leader's
    // stream as it is sent, so the lines keep their order.
    let leader = client
        .leader_for(&args.topic, args.partition)
        .await
        .with_context(|| format!("finding the leader of {target}"))?;
    tracing::debug!(
        broker = leader.broker_id(),
        address = leader.address(),
        "producing to the leader"
    );
    let producer = Producer::new(
        client,
        ProducerOptions {
            acks: args.acks,
            timeout_ms: 0,
            compression: args.compression,
        },
    );
    let started = Instant::now();
    let (mut records, mut sent_batches, mut first, mut last) = (0usize, 0usize, None, None);
    let mut in_flight = FuturesOrdered::new();
    let mut input_done = false;
    loop {
        tokio::select! {
            batch = batches.recv(), if !input_done && in_flight.len() < IN_FLIGHT => {
                let Some(batch) = batch else {
                    input_done = true;
                    continue;
                };
                let (bytes, count) = batch?;
                let acknowledged = producer.send_batch(&args.topic, args.partition, bytes);
                in_flight.push_back(async move { (acknowledged.await, count) });
                sent_batches += 1;
            }
            Some((ack, count)) = in_flight.next(), if !in_flight.is_empty() => {
                let ack: tributary_client::ProduceAck = ack.with_context(|| format!("producing to {target}"))?;
                records += count;
                first = first.or(Some(ack.base_offset));
                last = Some(ack.last_offset);
            }
            else => break,
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let offsets = match (first, last, args.acks) {
        (_, _, Acks::None) | (None, _, _) => String::new(),
        (Some(first), Some(last), _) => format!(", offsets {first}..={last}"),
        (Some(_), None, _) => String::new(),
    };
    eprintln!(
        "Produced {records} records in {sent_batches} batches to {target}{offsets} in {elapsed:.2}s"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(batch: &Batch) -> Vec<(Option<String>, String)> {
        tributary_record::decode_records(&batch.0)
            .unwrap()
            .into_iter()
            .map(|r| {
                (
                    r.key.map(|k| String::from_utf8(k.to_vec()).unwrap()),
                    String::from_utf8(r.value.unwrap().to_vec()).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn lines_become_records_with_keys_and_headers() {
        let header = Header {
            key: "h".into(),
            value: None,
        };
        let mut batcher = LineBatcher::new(1000, 1 << 20, Some("::"), vec![header.clone()]);
        assert!(batcher.push_line(b"k1::v1\n", 5).unwrap().is_none());
        assert!(batcher.push_line(b"k2::v::2\r\n", 5).unwrap().is_none());
        assert!(batcher.push_line(b"::empty key", 5).unwrap().is_none());
        let batch = batcher.take().unwrap();
        assert_eq!(batch.1, 3);
        assert_eq!(
            decode(&batch),
            vec![
                (Some("k1".into()), "v1".into()),
                (Some("k2".into()), "v::2".into()),
                (Some(String::new()), "empty key".into())
            ]
        );
        let decoded = tributary_record::decode_records(&batch.0).unwrap();
        assert_eq!(decoded[0].headers, vec![header]);
        assert!(batcher.take().is_none());
        let error = batcher.push_line(b"no separator", 5).unwrap_err();
        assert!(error.to_string().contains("line 4"), "{error}");
    }

    #[test]
    fn batches_are_cut_by_count_and_size() {
        let mut batcher = LineBatcher::new(3, 1 << 20, None, vec![]);
        let full: Vec<Batch> = (0..7)
            .filter_map(|i| batcher.push_line(format!("{i}").as_bytes(), 1).unwrap())
            .collect();
        assert_eq!(full.iter().map(|b| b.1).collect::<Vec<_>>(), vec![3, 3]);
        assert_eq!(batcher.take().unwrap().1, 1);

        let mut batcher = LineBatcher::new(1000, 200, None, vec![]);
        let line = [b'x'; 50];
        let full: Vec<Batch> = (0..10)
            .filter_map(|_| batcher.push_line(&line, 1).unwrap())
            .collect();
        assert!(!full.is_empty());
        assert!(
            full.iter().all(|b| b.0.len() <= 200),
            "{:?}",
            full.iter().map(|b| b.0.len()).collect::<Vec<_>>()
        );
        let total: usize =
            full.iter().map(|b| b.1).sum::<usize>() + batcher.take().map_or(0, |b| b.1);
        assert_eq!(total, 10);
    }

    #[test]
    fn batches_are_compressed_when_asked() {
        for codec in Compression::ALL {
            let mut batcher = LineBatcher::new(1000, 1 << 20, None, vec![]).compression(codec);
            for i in 0..100 {
                batcher
                    .push_line(format!("line {i} of a repetitive file\n").as_bytes(), 5)
                    .unwrap();
            }
            let batch = batcher.take().unwrap();
            let header = tributary_record::validate_records(&batch.0).unwrap();
            assert_eq!(header.attributes.compression(), Ok(codec));
            let lines = decode(&batch);
            assert_eq!(lines.len(), 100);
            assert_eq!(lines[42].1, "line 42 of a repetitive file");
        }
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
        assert_eq!(args.compression, Compression::None);
        assert_eq!(args.partition, 0);
        assert_eq!(args.headers[0].key, "a");
        assert!(
            crate::cli::Args::try_parse_from(["tributary", "produce", "t", "--acks", "2"]).is_err()
        );
    }
}
