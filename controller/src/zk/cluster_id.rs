//! `/cluster/id`: created by the first broker, read by all later ones.

use tributary_zk_layout::paths;
use tributary_zk_layout::payloads::{ClusterId, Payload};

use super::client::ZkClient;
use super::error::ZkError;

/// Returns the cluster id in ZooKeeper, creating `/cluster/id` with `proposed` if there is none
/// yet (Kafka's `createOrGetClusterId`). When several brokers race, exactly one create wins and
/// every broker returns the winner's id. The caller compares it with `meta.properties`.
pub async fn create_or_get_cluster_id(
    client: &ZkClient,
    proposed: &str,
) -> Result<String, ZkError> {
    let path = paths::cluster_id();
    if let Some((existing, _)) = client.get_payload_if_exists::<ClusterId>(path).await? {
        return Ok(existing.id);
    }
    if let Some((parent, _)) = path.rsplit_once('/') {
        client.ensure_path(parent).await?;
    }
    match client
        .create_persistent(path, &ClusterId::new(proposed).encode())
        .await
    {
        Ok(_) => Ok(proposed.to_owned()),
        Err(ZkError::NodeExists { .. }) => {
            let (winner, _) = client.get_payload::<ClusterId>(path).await?;
            Ok(winner.id)
        }
        Err(err) => Err(err),
    }
}
