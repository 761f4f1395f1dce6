//! FindCoordinator: the leader of the group's `__consumer_offsets` partition, creating the
//! topic on first use through the same ZooKeeper write as CreateTopics (the controller then
//! creates its partitions and elects their leaders).

use tributary_proto::v1::{ErrorCode, NewTopic};

use super::commit::check_group_id;
use super::coordinator::offsets_partition_count;
use super::error::GroupError;
use super::offsets_topic::{OFFSETS_TOPIC, partition_for, plan};
use crate::server::admin::{TopicDefaults, create_one, load_cluster};
use crate::state::BrokerState;

/// Where a group's coordinator is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoordinatorLookup {
    /// The `__consumer_offsets` partition holding the group.
    pub partition: i32,
    /// Its leader, the coordinator.
    pub broker_id: i32,
    /// The coordinator's advertised host.
    pub host: String,
    /// The coordinator's advertised port.
    pub port: u16,
    /// The coordinator's rack.
    pub rack: Option<String>,
}

/// The coordinator of `group_id` as this broker's metadata shows it. Before
/// `__consumer_offsets` exists this creates it and answers COORDINATOR_NOT_AVAILABLE, as
/// while the group's partition has no leader: the client retries.
pub async fn find_coordinator(
    state: &BrokerState,
    group_id: &str,
) -> Result<CoordinatorLookup, GroupError> {
    check_group_id(group_id)?;
    let not_available = |reason: String| GroupError::CoordinatorNotAvailable {
        group: group_id.to_owned(),
        reason,
    };
    let Some(count) = offsets_partition_count(state) else {
        let reason = match ensure_offsets_topic(state).await {
            Ok(()) => "__consumer_offsets is being created; retry".to_owned(),
            Err(reason) => reason,
        };
        return Err(not_available(reason));
    };
    let partition = partition_for(group_id, count);
    state.metadata.read(|snapshot| {
        let leader = snapshot
            .topics
            .get(OFFSETS_TOPIC)
            .and_then(|partitions| partitions.get(&partition))
            .map_or(-1, |p| p.leader);
        let broker = (leader >= 0).then(|| snapshot.broker(leader)).flatten();
        match broker {
            Some(broker) => Ok(CoordinatorLookup {
                partition,
                broker_id: leader,
                host: broker.host.clone(),
                port: broker.port,
                rack: broker.rack.clone(),
            }),
            None => Err(not_available(format!(
                "__consumer_offsets partition {partition} has no live leader right now; retry"
            ))),
        }
    })
}

/// Creates `__consumer_offsets` unless ZooKeeper already has it; `Err` says why it could not
/// be created (the client retries either way).
async fn ensure_offsets_topic(state: &BrokerState) -> Result<(), String> {
    let (client, existing, live) = load_cluster(state).await.map_err(|e| e.message)?;
    if existing.contains(OFFSETS_TOPIC) {
        return Ok(());
    }
    let settings = state.groups.settings();
    let plan = plan(settings, live.len());
    if let Some(configured) = plan.capped_from {
        tracing::warn!(
            configured,
            replication_factor = plan.replication_factor,
            live_brokers = live.len(),
            "offsets.topic.replication.factor is larger than the number of live brokers; creating __consumer_offsets with fewer replicas (it keeps them when brokers join)"
        );
    }
    let topic = NewTopic {
        name: OFFSETS_TOPIC.to_owned(),
        num_partitions: plan.partitions,
        replication_factor: plan.replication_factor,
        configs: plan.configs.into_iter().collect(),
    };
    let defaults = TopicDefaults {
        num_partitions: plan.partitions,
        replication_factor: plan.replication_factor,
    };
    match create_one(&client, &topic, defaults, &existing, &live, false).await {
        Ok(_) => {
            tracing::info!(
                partitions = plan.partitions,
                replication_factor = plan.replication_factor,
                "creating __consumer_offsets on the first FindCoordinator"
            );
            Ok(())
        }
        // Another broker created it in between.
        Err(error) if error.code == ErrorCode::TopicAlreadyExists => Ok(()),
        Err(error) => Err(format!(
            "cannot create __consumer_offsets: {}",
            error.message
        )),
    }
}
