//! Picking the one result a request asked about out of a response (per topic, or per topic and
//! partition) and turning its error code into a [`ClientError`]. Every single-partition call
//! goes through here.

use tributary_proto::v1 as pb;

use crate::error::{ClientError, check};

/// A per-partition result carrying Kafka's error code and message.
pub(crate) trait PartitionOutcome {
    fn partition(&self) -> i32;
    fn error_code(&self) -> i32;
    fn error_message(&self) -> &str;
}

/// A per-topic result (admin operations) carrying an error code and message.
pub(crate) trait TopicOutcome {
    fn name(&self) -> &str;
    fn error_code(&self) -> i32;
    fn error_message(&self) -> &str;
}

macro_rules! partition_outcome {
    ($($t:ty),*) => {$(
        impl PartitionOutcome for $t {
            fn partition(&self) -> i32 { self.partition }
            fn error_code(&self) -> i32 { self.error_code }
            fn error_message(&self) -> &str { &self.error_message }
        }
    )*};
}

macro_rules! topic_outcome {
    ($($t:ty),*) => {$(
        impl TopicOutcome for $t {
            fn name(&self) -> &str { &self.name }
            fn error_code(&self) -> i32 { self.error_code }
            fn error_message(&self) -> &str { &self.error_message }
        }
    )*};
}

partition_outcome!(
    pb::PartitionProduceResponse,
    pb::PartitionFetchResponse,
    pb::ListOffsetsPartitionResponse
);
topic_outcome!(
    pb::CreateTopicResult,
    pb::DeleteTopicResult,
    pb::CreatePartitionsResult,
    pb::AlterConfigsResult
);

/// The result for `partition` among `partitions` (those of `topic`), if it succeeded.
pub(crate) fn partition_result<P: PartitionOutcome>(
    partitions: impl IntoIterator<Item = P>,
    operation: &'static str,
    topic: &str,
    partition: i32,
) -> Result<P, ClientError> {
    let found = partitions
        .into_iter()
        .find(|p| p.partition() == partition)
        .ok_or_else(|| ClientError::MalformedResponse {
            operation,
            topic: topic.to_owned(),
            partition: Some(partition),
            reason: "no result for the partition".to_owned(),
        })?;
    check(
        found.error_code(),
        found.error_message(),
        topic,
        Some(partition),
    )?;
    Ok(found)
}

/// The result for topic `name` among `results`, if it succeeded.
pub(crate) fn topic_result<T: TopicOutcome>(
    results: impl IntoIterator<Item = T>,
    operation: &'static str,
    name: &str,
) -> Result<T, ClientError> {
    let found = results
        .into_iter()
        .find(|r| r.name() == name)
        .ok_or_else(|| ClientError::MalformedResponse {
            operation,
            topic: name.to_owned(),
            partition: None,
            reason: "no result for the topic".to_owned(),
        })?;
    check(found.error_code(), found.error_message(), name, None)?;
    Ok(found)
}
