//! Crashes: `kill -9` at any moment keeps every acknowledged record, and a torn or corrupt
//! segment tail is cut back to a valid prefix on restart.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use support::*;
use tributary_record::Record;

#[tokio::test]
async fn kill9_during_production_keeps_every_acknowledged_record() {
    let (_zk, mut broker) = start().await;
    // flush.messages=1: every acknowledged record has been fsync'd, so it survives even a
    // machine crash; a process crash alone would keep page-cache data anyway.
    create_topic(
        &broker,
        "acked",
        2,
        &[("flush.messages", "1"), ("segment.bytes", "16384")],
    )
    .await;

    let stop = Arc::new(AtomicBool::new(false));
    let mut producers = Vec::new();
    for partition in 0..2 {
        let mut client = broker.broker_client().unwrap();
        let stop = stop.clone();
        producers.push(tokio::spawn(async move {
            let mut acked: Vec<(i64, Vec<Record>)> = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let recs = records(&format!("p{partition}-{i}"), 1 + i % 4, i as i64);
                match client
                    .produce(raw_request("acked", partition, 1, batch(&recs)))
                    .await
                {
                    Ok(response) => {
                        let p = &response.into_inner().topics[0].partitions[0];
                        assert_eq!(p.error_code, 0, "{}", p.error_message);
                        acked.push((p.base_offset, recs));
                    }
                    Err(_) => break, // the broker died under us: this one was not acknowledged
                }
                i += 1;
            }
            acked
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    broker.kill9().unwrap();
    stop.store(true, Ordering::Relaxed);
    let mut acked_per_partition = Vec::new();
    for producer in producers {
        acked_per_partition.push(producer.await.unwrap());
    }
    assert!(
        acked_per_partition.iter().all(|a| a.len() > 5),
        "producers made progress before the kill"
    );

    broker.restart().await.unwrap();
    wait_online(&broker, "acked", acked_per_partition.len() as i32).await;
    let mut client = broker.broker_client().unwrap();
    for (partition, acked) in acked_per_partition.iter().enumerate() {
        let stored = read_all(&mut client, "acked", partition as i32, 0).await;
        let mut expected_offset = 0;
        for (base, recs) in acked {
            assert_eq!(*base, expected_offset, "acknowledged offsets are dense");
            let start = *base as usize;
            assert!(
                stored.len() >= start + recs.len(),
                "partition {partition}: acknowledged batch at {base} lost"
            );
            assert_records(&stored[start..start + recs.len()], recs, *base);
            expected_offset += recs.len() as i64;
        }
        // Appends continue right after whatever survived.
        let end = stored.len() as i64;
        let (base, _) = produce_ok(
            &mut client,
            "acked",
            partition as i32,
            batch(&records("after", 2, 0)),
        )
        .await;
        assert_eq!(base, end);
    }
}

/// The newest segment file of a partition.
fn active_segment(dir: &std::path::Path) -> std::path::PathBuf {
    let mut logs: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    logs.pop().expect("a segment")
}

#[tokio::test]
async fn a_torn_tail_is_truncated_to_the_last_whole_batch() {
    let (_zk, mut broker) = start().await;
    create_topic(&broker, "torn", 1, &[]).await;
    let mut client = broker.broker_client().unwrap();
    let mut written = Vec::new();
    for i in 0..5 {
        let recs = records(&format!("b{i}"), 3, i);
        produce_ok(&mut client, "torn", 0, batch(&recs)).await;
        written.push(recs);
    }
    broker.kill9().unwrap();

    // Cut the file in the middle of the last batch, as a crash during a write would.
    let segment = active_segment(&broker.data_dir().join("torn-0"));
    let len = std::fs::metadata(&segment).unwrap().len();
    let last_batch_len = batch(&written[4]).len() as u64;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap();
    file.set_len(len - last_batch_len / 2).unwrap();
    drop(file);

    broker.restart().await.unwrap();
    wait_online(&broker, "torn", 1).await;
    let mut client = broker.broker_client().unwrap();
    assert_eq!(
        latest(&mut client, "torn", 0).await,
        12,
        "the torn batch is gone, the four before it stay"
    );
    let stored = read_all(&mut client, "torn", 0, 0).await;
    assert_records(&stored, &written[..4].concat(), 0);
    assert_eq!(
        produce_ok(&mut client, "torn", 0, batch(&written[4])).await,
        (12, 14),
        "appends resume at the cut"
    );
}

#[tokio::test]
async fn a_corrupt_batch_after_a_crash_cuts_the_log_there() {
    let (_zk, mut broker) = start().await;
    create_topic(&broker, "rotten", 1, &[]).await;
    let mut client = broker.broker_client().unwrap();
    let mut written = Vec::new();
    for i in 0..6 {
        let recs = records(&format!("c{i}"), 2, i);
        produce_ok(&mut client, "rotten", 0, batch(&recs)).await;
        written.push(recs);
    }
    broker.kill9().unwrap();

    // Flip a byte inside the fourth batch's records (CRC-covered).
    let segment = active_segment(&broker.data_dir().join("rotten-0"));
    let mut bytes = std::fs::read(&segment).unwrap();
    let offset_of_fourth: usize = written[..3].iter().map(|r| batch(r).len()).sum();
    bytes[offset_of_fourth + 70] ^= 0x55;
    std::fs::write(&segment, &bytes).unwrap();

    broker.restart().await.unwrap();
    wait_online(&broker, "rotten", 1).await;
    let mut client = broker.broker_client().unwrap();
    assert_eq!(
        latest(&mut client, "rotten", 0).await,
        6,
        "everything from the corrupt batch on is dropped"
    );
    assert_records(
        &read_all(&mut client, "rotten", 0, 0).await,
        &written[..3].concat(),
        0,
    );
}
