//! Reading a partition back through the Rust client library, for tests that check what a
//! producer or consumer left in the log.

use tributary_client::{Client, OffsetSpec};
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
