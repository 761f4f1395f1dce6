//! Preferred leader elections (`ElectLeaders`), run by the controller.

use tributary_proto::v1 as pb;

use super::Admin;
use crate::error::{check, error_of_result};
use crate::{ClientError, ErrorCode};

/// One partition's outcome of a preferred leader election.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElectionResult {
    /// Topic name.
    pub topic: String,
    /// Partition id.
    pub partition: i32,
    /// `None` when the preferred replica now leads; else the code (`ELECTION_NOT_NEEDED` when
    /// it already led, `PREFERRED_LEADER_NOT_AVAILABLE`, `UNKNOWN_TOPIC_OR_PARTITION`) and the
    /// broker's message.
    pub error: Option<(ErrorCode, String)>,
}

impl Admin {
    /// Makes the preferred replica (the first of the assignment) the leader of each of
    /// `partitions` (`(topic, partition)`; empty = every partition of every topic). Sent to
    /// the bootstrap broker, which forwards it to the controller.
    ///
    /// Per-partition refusals are in the results (`ELECTION_NOT_NEEDED`,
    /// `PREFERRED_LEADER_NOT_AVAILABLE`, `UNKNOWN_TOPIC_OR_PARTITION`). Errors: a refusal of
    /// the whole request, `REQUEST_TIMED_OUT` (no controller known or reachable) or
    /// `NOT_CONTROLLER` (it moved meanwhile; retry), reported for topic `*`.
    pub async fn elect_preferred_leaders(
        &self,
        partitions: &[(String, i32)],
    ) -> Result<Vec<ElectionResult>, ClientError> {
        let request = pb::ElectLeadersRequest {
            partitions: partitions
                .iter()
                .map(|(topic, partition)| pb::ElectLeadersPartition {
                    topic: topic.clone(),
                    partition: *partition,
                })
                .collect(),
        };
        let response = self
            .client
            .admin_service()
            .elect_leaders(request)
            .await
            .map_err(ClientError::rpc("ElectLeaders"))?
            .into_inner();
        check(response.error_code, &response.error_message, "*", None)?;
        Ok(response
            .partitions
            .into_iter()
            .map(|p| ElectionResult {
                error: error_of_result(p.error_code, p.error_message),
                topic: p.topic,
                partition: p.partition,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use crate::fake_broker::FakeBroker;
    use crate::{Client, ErrorCode};

    #[tokio::test]
    async fn per_partition_outcomes() {
        let (address, broker) = FakeBroker::start().await;
        broker.create("t", 2);
        let client = Client::connect(&address).await.unwrap();
        let all = client.elect_leaders(&[]).await.unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(
            all[1].error.as_ref().map(|e| e.0),
            Some(ErrorCode::ElectionNotNeeded)
        );
        let one = client.elect_leaders(&[("zzz".into(), 0)]).await.unwrap();
        assert_eq!(
            one[0].error.as_ref().map(|e| e.0),
            Some(ErrorCode::UnknownTopicOrPartition)
        );
    }
}
