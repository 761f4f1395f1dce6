//! Records for consumer-group scenarios: numbered values a test can check for gaps and
//! duplicates per partition.

use std::ops::Range;

use bytes::Bytes;
use tributary_client::{Acks, Client};
use tributary_record::Record;

/// Produces, with `acks=-1`, to each of partitions `0..partitions` of `topic` one keyless
/// record per number in `numbers`, valued `p<partition>-<number>`.
pub async fn produce_numbered(
    client: &Client,
    topic: &str,
    partitions: i32,
    numbers: Range<usize>,
) {
    for partition in 0..partitions {
        let records: Vec<Record> = numbers
            .clone()
            .map(|i| Record {
                key: None,
                value: Some(Bytes::from(format!("p{partition}-{i}"))),
                timestamp: 1_700_000_000_000,
                headers: vec![],
            })
            .collect();
        client
            .produce(topic, partition, &records, Acks::All)
            .await
            .expect("produce");
    }
}
