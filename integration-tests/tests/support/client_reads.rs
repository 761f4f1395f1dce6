//! Reading a partition back through the Rust client library, for tests that check what a
//! producer or consumer left in the log, and a group's committed offsets.

use tributary_client::{Client, OffsetSpec, TopicPartition};
use tributary_record::DecodedRecord;

/// Every record of `topic`-`partition` from offset 0 up to the latest offset when called, read
/// with unary fetches from the current leader.
pub async fn partition_records(client: &Client, topic: &str, partition: i32) -> Vec<DecodedRecord> {
    let latest = client
        .list_offsets(topic, partition, OffsetSpec::Latest)
        .await
        .expect("latest offset")
        .offset
        .unwrap_or(0);
    let mut offset = 0;
    let mut records = Vec::new();
    while offset < latest {
        let fetched = client
            .fetch(topic, partition, offset, 1 << 20, 100)
            .await
            .expect("fetch");
        records.extend(fetched.records);
        offset = fetched.next_offset;
    }
    records
}

/// A record's value as text (empty for a null value; invalid UTF-8 replaced).
pub fn value_text(record: &DecodedRecord) -> String {
    String::from_utf8_lossy(record.value.as_deref().unwrap_or_default()).into_owned()
}

/// `group`'s committed offsets (OffsetFetch) of partitions `0..partitions` of `topic`, in
/// partition order; `None` where nothing is committed.
pub async fn committed_offsets(
    client: &Client,
    group: &str,
    topic: &str,
    partitions: i32,
) -> Vec<(i32, Option<i64>)> {
    let partitions: Vec<TopicPartition> = (0..partitions)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    client
        .group(group)
        .expect("group")
        .committed(&partitions)
        .await
        .expect("OffsetFetch")
        .into_iter()
        .map(|(tp, offset)| (tp.partition, offset.map(|o| o.offset)))
        .collect()
}
