//! Helpers for single-partition replication scenarios: create an RF-3 topic, produce with a
//! chosen `acks`, read back what a consumer may see, and compare replica logs byte for byte
//! (followers append the leader's batches unchanged, so every replica's `.log` files must end
//! up identical).

use tributary_integration_tests::Broker;
use tributary_proto::v1::{ErrorCode, PartitionProduceResponse, RecordFormat};

use super::cluster::{LIMIT, agreed_partitions, eventually, partition_state, segment_bytes};
use super::{batch, fetch_request, raw_request, records, try_create_topic};

pub async fn create_replicated(broker: &Broker, topic: &str, min_insync: &str) {
    let mut admin = broker.admin_client().unwrap();
    let result = try_create_topic(
        &mut admin,
        topic,
        1,
        3,
        &[("min.insync.replicas", min_insync)],
    )
    .await;
    assert_eq!(
        result.error_code,
        ErrorCode::None as i32,
        "{}",
        result.error_message
    );
}

/// Waits until every live broker agrees partition 0 of `topic` has a leader and an ISR of
/// `isr_size`; returns the leader.
pub async fn leader_with_isr(brokers: &[&Broker], topic: &str, isr_size: usize) -> i32 {
    agreed_partitions(brokers, topic, 1, |p| {
        p.leader >= 0 && p.isr.len() == isr_size
    })
    .await[0]
        .leader
}

pub fn by_id(brokers: &[Broker], id: i32) -> &Broker {
    brokers.iter().find(|b| b.id() == id).unwrap()
}

pub async fn produce(
    broker: &Broker,
    topic: &str,
    acks: i32,
    timeout_ms: i32,
    prefix: &str,
) -> PartitionProduceResponse {
    let mut client = broker.broker_client().unwrap();
    let mut request = raw_request(topic, 0, acks, batch(&records(prefix, 3, 0)));
    request.timeout_ms = timeout_ms;
    let response = client.produce(request).await.unwrap().into_inner();
    response.topics[0].partitions[0].clone()
}

/// Every record a consumer can read from `broker` (the leader): (offset, value).
pub async fn consume(broker: &Broker, topic: &str) -> Vec<(i64, Vec<u8>)> {
    let mut client = broker.broker_client().unwrap();
    let mut out = Vec::new();
    loop {
        let next = out.last().map_or(0, |(o, _)| o + 1);
        let response = client
            .fetch(fetch_request(topic, 0, next, RecordFormat::Decoded, 0))
            .await
            .unwrap()
            .into_inner();
        let p = &response.topics[0].partitions[0];
        assert_eq!(p.error_code, ErrorCode::None as i32, "{}", p.error_message);
        if p.records.is_empty() {
            return out;
        }
        for r in &p.records {
            assert!(
                r.offset < p.high_watermark,
                "a consumer saw offset {} at or above the HW {}",
                r.offset,
                p.high_watermark
            );
            out.push((r.offset, r.value.clone().unwrap_or_default().to_vec()));
        }
    }
}

/// Waits until the logs of `topic`-0 on every broker are byte-identical and `expected_len`
/// long (when given); returns the length.
pub async fn identical_logs(brokers: &[&Broker], topic: &str) -> usize {
    eventually("byte-identical replica logs", LIMIT, || async {
        let first = segment_bytes(&brokers[0].data_dir(), topic, 0);
        let same = !first.is_empty()
            && brokers[1..]
                .iter()
                .all(|b| segment_bytes(&b.data_dir(), topic, 0) == first);
        same.then_some(first.len())
    })
    .await
}

pub async fn isr_in_zk(client: &zookeeper_client::Client, topic: &str) -> Vec<i32> {
    let (state, _) = partition_state(client, topic, 0).await;
    state.isr.iter().map(|b| b.0).collect()
}
