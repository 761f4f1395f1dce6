//! Compressed batches against a real broker and ZooKeeper: every codec produced (raw bytes, the
//! client library, the CLI), stored and served byte for byte, and consumed back; a batch whose
//! compressed records are corrupt (under a correct CRC) is refused with CORRUPT_MESSAGE and
//! nothing is appended.

mod support;

use std::io::Write as _;
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use support::*;
use tributary_client::{
    Acks, BatchSender, BatchSenderOptions, Client, Compression, Producer, ProducerOptions,
    ProducerRecord,
};
use tributary_proto::v1::{ErrorCode, RecordFormat};
use tributary_record::{BatchBuilder, BatchHeader, BatchIter, HEADER_SIZE, Record, compute_crc};

/// One batch of `records` compressed with `codec`; asserts the builder kept the codec.
fn compressed_batch(records: &[Record], codec: Compression) -> Bytes {
    let mut builder = BatchBuilder::new().compression(codec);
    for record in records {
        builder.push(record);
    }
    let batch = builder.build();
    let header = BatchHeader::parse(&batch).unwrap();
    assert_eq!(header.attributes.compression(), Ok(codec), "{codec} kept");
    batch
}

/// The codec of every batch in `batches`, in order.
fn codecs_of(batches: &Bytes) -> Vec<Compression> {
    BatchIter::new(batches)
        .map(|item| item.unwrap().0.attributes.compression().unwrap())
        .collect()
}

fn values(records: &[tributary_record::DecodedRecord]) -> Vec<String> {
    records
        .iter()
        .map(|r| String::from_utf8(r.value.clone().unwrap_or_default().to_vec()).unwrap())
        .collect()
}

#[tokio::test]
async fn every_codec_is_stored_as_sent_and_consumed_back() {
    let (_zk, broker) = start().await;
    create_topic(&broker, "codecs", 3, &[]).await;
    let mut raw = broker.broker_client().unwrap();

    // Raw batches, one per codec, on partition 0.
    let mut written = Vec::new();
    let mut sent = Vec::new();
    for (i, codec) in Compression::ALL.into_iter().enumerate() {
        let records = records(codec.name(), 40, 1_000 * i as i64);
        let batch = compressed_batch(&records, codec);
        let (base, last) = produce_ok(&mut raw, "codecs", 0, batch.clone()).await;
        assert_eq!((base, last), (40 * i as i64, 40 * i as i64 + 39), "{codec}");
        written.extend(records);
        sent.push(batch);
    }
    // Fetched bytes are the produced bytes, only base offset and leader epoch stamped.
    let fetched = fetch_raw(&mut raw, "codecs", 0, 0).await;
    assert_eq!(codecs_of(&fetched.batches), Compression::ALL.to_vec());
    for ((_, stored), produced) in BatchIter::new(&fetched.batches)
        .map(Result::unwrap)
        .zip(&sent)
    {
        assert_eq!(stored.len(), produced.len());
        assert_eq!(stored[16..], produced[16..], "bytes after the leader epoch");
    }
    assert_records(&read_all(&mut raw, "codecs", 0, 0).await, &written, 0);
    // The broker decompresses for clients that ask it to decode.
    let decoded = raw
        .fetch(fetch_request("codecs", 0, 50, RecordFormat::Decoded, 0))
        .await
        .unwrap()
        .into_inner();
    let decoded = &decoded.topics[0].partitions[0];
    assert_eq!(decoded.error_code, ErrorCode::None as i32);
    assert_eq!(decoded.records.len(), 150);
    assert_eq!(decoded.records[0].value, written[50].value);
    // Timestamp lookups find the record inside a compressed batch.
    let at = list_offset(&mut raw, "codecs", 0, written[125].timestamp).await;
    assert_eq!((at.offset, at.timestamp), (125, written[125].timestamp));

    // The client library: unary produce, the pipelined BatchSender and the Producer, on
    // partition 1.
    let client = Client::connect(&broker.bootstrap_server()).await.unwrap();
    let mut expected = Vec::new();
    for codec in Compression::ALL {
        let records = records(&format!("unary-{codec}"), 30, 0);
        client
            .produce_compressed("codecs", 1, &records, Acks::Leader, codec)
            .await
            .unwrap();
        expected.extend(records);
    }
    for codec in Compression::ALL {
        let sender = BatchSender::new(
            &client,
            BatchSenderOptions {
                compression: codec,
                ..BatchSenderOptions::default()
            },
        );
        let records = records(&format!("stream-{codec}"), 30, 0);
        sender.send_records("codecs", 1, &records).await.unwrap();
        sender.close().await;
        expected.extend(records);
    }
    // The record-level Producer: a long linger and a flush make one batch per codec.
    for codec in Compression::ALL {
        let producer = Producer::new(
            &client,
            ProducerOptions {
                compression: codec,
                linger: Duration::from_secs(60),
                delivery_timeout: Duration::from_secs(120),
                ..ProducerOptions::default()
            },
        )
        .unwrap();
        let records = records(&format!("producer-{codec}"), 30, 0);
        let mut deliveries = Vec::new();
        for record in &records {
            let sent = ProducerRecord {
                topic: "codecs".to_owned(),
                partition: Some(1),
                key: record.key.clone(),
                value: record.value.clone(),
                timestamp: Some(record.timestamp),
                headers: record.headers.clone(),
            };
            deliveries.push(producer.send(sent).await.unwrap());
        }
        producer.flush().await;
        for delivery in deliveries {
            delivery.await.unwrap();
        }
        producer.close().await;
        expected.extend(records);
    }
    let fetched = client
        .fetch("codecs", 1, 0, 8 << 20, 0)
        .await
        .expect("client fetch");
    assert_eq!(fetched.next_offset, 450);
    assert_eq!(values(&fetched.records).len(), 450);
    assert_records(&fetched.records, &expected, 0);
    let stored = fetch_raw(&mut raw, "codecs", 1, 0).await.batches;
    let thrice = [Compression::ALL, Compression::ALL, Compression::ALL].concat();
    assert_eq!(codecs_of(&stored), thrice);

    // The CLI, on partition 2.
    let lines: Vec<String> = (0..200)
        .map(|i| format!("a line from the cli, number {i}"))
        .collect();
    let mut produce = broker
        .cli()
        .unwrap()
        .args([
            "produce",
            "codecs",
            "--partition",
            "2",
            "--compression",
            "zstd",
        ])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tributary produce");
    produce
        .stdin
        .take()
        .unwrap()
        .write_all((lines.join("\n") + "\n").as_bytes())
        .unwrap();
    let output = produce.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "tributary produce: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stored = fetch_raw(&mut raw, "codecs", 2, 0).await.batches;
    assert_eq!(codecs_of(&stored), vec![Compression::Zstd]);
    assert_eq!(values(&read_all(&mut raw, "codecs", 2, 0).await), lines);
    let output = broker
        .cli()
        .unwrap()
        .args(["consume", "codecs", "--partition", "2", "--from-beginning"])
        .args(["--max-messages", "200", "--timeout-ms", "20000"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let consumed: Vec<String> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(consumed, lines);

    let refused = broker
        .cli()
        .unwrap()
        .args(["produce", "codecs", "--compression", "brotli"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("must be none, gzip, snappy, lz4 or zstd")
    );
}

/// `batch` with its compressed records section replaced by `section`, length and CRC fixed:
/// only the codec can notice.
fn with_records_section(batch: &Bytes, section: &[u8]) -> Bytes {
    let mut bad = batch[..HEADER_SIZE].to_vec();
    bad.extend_from_slice(section);
    let length = (bad.len() - 12) as i32;
    bad[8..12].copy_from_slice(&length.to_be_bytes());
    let crc = compute_crc(&bad);
    bad[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(bad)
}

#[tokio::test]
async fn corrupt_compressed_batches_are_refused_and_nothing_is_appended() {
    let (_zk, broker) = start().await;
    create_topic(&broker, "guarded", 1, &[]).await;
    let mut client = broker.broker_client().unwrap();
    let good = records("good", 20, 0);
    produce_ok(
        &mut client,
        "guarded",
        0,
        compressed_batch(&good, Compression::Gzip),
    )
    .await;

    for codec in Compression::ALL.into_iter().skip(1) {
        let valid = compressed_batch(&records(codec.name(), 30, 10), codec);
        let section = &valid[HEADER_SIZE..];
        let mut garbled = section.to_vec();
        let middle = garbled.len() / 2;
        garbled[middle..middle + 8].fill(0xa5);
        let foreign = compressed_batch(&records(codec.name(), 30, 10), Compression::Zstd);
        let cases = [
            ("garbled stream", with_records_section(&valid, &garbled)),
            (
                "truncated stream",
                with_records_section(&valid, &section[..section.len() / 2]),
            ),
            (
                "another codec's stream",
                with_records_section(
                    &valid,
                    &foreign[HEADER_SIZE..]
                        .iter()
                        .copied()
                        .chain(if codec == Compression::Zstd {
                            b"trailing".to_vec()
                        } else {
                            Vec::new()
                        })
                        .collect::<Vec<u8>>(),
                ),
            ),
            ("good batch then a bad one", {
                let mut both = valid.to_vec();
                both.extend_from_slice(&with_records_section(&valid, &garbled));
                Bytes::from(both)
            }),
        ];
        for (what, bytes) in cases {
            let result = produce_raw(&mut client, "guarded", 0, bytes).await;
            assert_eq!(
                result.error_code,
                ErrorCode::CorruptMessage as i32,
                "{codec} {what}: {}",
                result.error_message
            );
            assert!(!result.error_message.is_empty(), "{codec} {what}");
            assert_eq!(result.base_offset, -1, "{codec} {what}");
            assert_eq!(
                latest(&mut client, "guarded", 0).await,
                20,
                "{codec} {what}"
            );
            assert_records(&read_all(&mut client, "guarded", 0, 0).await, &good, 0);
        }
    }

    // The log takes good compressed data afterwards, at the next offset.
    let more = records("more", 10, 100);
    assert_eq!(
        produce_ok(
            &mut client,
            "guarded",
            0,
            compressed_batch(&more, Compression::Lz4)
        )
        .await,
        (20, 29)
    );
}
