//! `/latest_producer_id_block`: every broker claims blocks of 1000 producer ids for its
//! idempotent producers (Kafka's `ProducerIdManager` in ZooKeeper mode).
//!
//! The znode is created empty at start-up (it is one of the persistent paths). A broker reads
//! it, computes the next block ([`ProducerIdBlock::next`]; the first is 0..=999) and writes
//! it with a conditional set on the version it read; when another broker won the race the
//! set fails with `BadVersion` and the broker reads again. A block is never handed out twice,
//! so producer ids are unique in the cluster; ids of a block a broker did not use up before it
//! stopped are skipped.

use tributary_zk_layout::ids::BrokerId;
use tributary_zk_layout::paths;
use tributary_zk_layout::payloads::{Payload, ProducerIdBlock};

use super::client::ZkClient;
use super::error::ZkError;

/// Claims the next block of producer ids for `broker`.
pub async fn claim_producer_id_block(
    client: &ZkClient,
    broker: BrokerId,
) -> Result<ProducerIdBlock, ZkError> {
    let path = paths::latest_producer_id_block();
    loop {
        let Some((data, stat)) = client.get_if_exists(path).await? else {
            let block = ProducerIdBlock::next(None, broker);
            match client.create_persistent(path, &block.encode()).await {
                Ok(_) => return Ok(block),
                Err(ZkError::NodeExists { .. }) => continue,
                Err(error) => return Err(error),
            }
        };
        let previous = if data.is_empty() {
            None
        } else {
            Some(
                ProducerIdBlock::decode(&data).map_err(|source| ZkError::Payload {
                    path: path.to_owned(),
                    source,
                })?,
            )
        };
        let block = ProducerIdBlock::next(previous.as_ref(), broker);
        match client.set(path, &block.encode(), Some(stat.version)).await {
            Ok(_) => return Ok(block),
            Err(ZkError::BadVersion { .. }) => {
                tracing::debug!(%broker, "another broker claimed a producer id block first; retrying");
            }
            Err(error) => return Err(error),
        }
    }
}
