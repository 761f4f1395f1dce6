//! Keeps [`TopicConfigs`](crate::topic_configs::TopicConfigs) in step with
//! `/config/topics/<t>`: loaded when the broker starts hosting a topic.

use tributary_controller::zk::ZkError;
use tributary_zk_layout::paths;
use tributary_zk_layout::payloads::EntityConfig;

use crate::state::BrokerState;

/// Loads the overrides of `topic` from ZooKeeper unless already known. Without a session the
/// broker defaults apply until the next load.
pub async fn ensure_loaded(state: &BrokerState, topic: &str) -> Result<(), ZkError> {
    if state.topic_configs.contains(topic) {
        return Ok(());
    }
    reload(state, topic).await
}

/// Reads `/config/topics/<topic>` and replaces the known overrides (none if it is absent).
pub async fn reload(state: &BrokerState, topic: &str) -> Result<(), ZkError> {
    let Some(client) = state.zk_client() else {
        return Ok(());
    };
    let config = client
        .get_payload_if_exists::<EntityConfig>(&paths::topic_config(topic))
        .await?
        .map(|(config, _)| config.config)
        .unwrap_or_default();
    state.topic_configs.set(topic, config);
    Ok(())
}
