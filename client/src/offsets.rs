//! Offset lookups (`ListOffsets`).

use tributary_proto::v1 as pb;

use crate::response::partition_result;
use crate::{Client, ClientError};

/// Which offset to look up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start offset.
    Earliest,
    /// The high watermark: the offset the next committed record will get.
    Latest,
    /// The first offset whose timestamp is at or after this many ms since the epoch.
    Timestamp(i64),
}

impl OffsetSpec {
    /// The `ListOffsetsPartition.timestamp` value: -2 earliest, -1 latest, else the timestamp.
    pub fn to_wire(self) -> Result<i64, ClientError> {
        match self {
            OffsetSpec::Earliest => Ok(-2),
            OffsetSpec::Latest => Ok(-1),
            OffsetSpec::Timestamp(ms) if ms >= 0 => Ok(ms),
            OffsetSpec::Timestamp(ms) => Err(ClientError::InvalidArgument {
                argument: "timestamp",
                reason: format!("{ms} is negative; timestamps are ms since the Unix epoch"),
            }),
        }
    }
}

/// The answer to a `ListOffsets` lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedOffset {
    /// The offset found; `None` when a timestamp lookup finds no record at or after it.
    pub offset: Option<i64>,
    /// For timestamp lookups, the found record's timestamp.
    pub timestamp: Option<i64>,
}

impl Client {
    /// Looks up the earliest offset, the latest offset (the HW), or the first offset at or
    /// after a timestamp, on the partition's leader (retried while the leader moves).
    pub async fn list_offsets(
        &self,
        topic: &str,
        partition: i32,
        spec: OffsetSpec,
    ) -> Result<ListedOffset, ClientError> {
        let request = pb::ListOffsetsRequest {
            topics: vec![pb::ListOffsetsTopic {
                topic: topic.to_owned(),
                partitions: vec![pb::ListOffsetsPartition {
                    partition,
                    timestamp: spec.to_wire()?,
                }],
            }],
        };
        let found = self
            .on_leader(topic, partition, |leader| {
                let request = request.clone();
                async move {
                    let response = leader
                        .broker_service()
                        .list_offsets(request)
                        .await
                        .map_err(ClientError::rpc("ListOffsets"))?;
                    partition_result(
                        response
                            .into_inner()
                            .topics
                            .into_iter()
                            .filter(|t| t.topic == topic)
                            .flat_map(|t| t.partitions),
                        "ListOffsets",
                        topic,
                        partition,
                    )
                }
            })
            .await?;
        Ok(ListedOffset {
            offset: (found.offset >= 0).then_some(found.offset),
            timestamp: (found.timestamp >= 0).then_some(found.timestamp),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_specs_on_the_wire() {
        assert_eq!(OffsetSpec::Earliest.to_wire().unwrap(), -2);
        assert_eq!(OffsetSpec::Latest.to_wire().unwrap(), -1);
        assert_eq!(OffsetSpec::Timestamp(0).to_wire().unwrap(), 0);
        assert_eq!(
            OffsetSpec::Timestamp(1_700_000_000_000).to_wire().unwrap(),
            1_700_000_000_000
        );
        assert!(matches!(
            OffsetSpec::Timestamp(-5).to_wire(),
            Err(ClientError::InvalidArgument {
                argument: "timestamp",
                ..
            })
        ));
    }
}
