//! A broker described the logs of leaderless partitions (Control `DescribeReplicaLogs`): record
//! what it said and retry those partitions' elections (see [`crate::last_replica`]).

use std::collections::BTreeMap;

use tributary_zk_layout::BrokerId;

use crate::cluster::{ClusterModel, TopicPartition};
use crate::decision::{Decision, RequestBatch};
use crate::handlers::broker_change::repair_partitions;
use crate::last_replica::ReplicaLog;

/// Records `broker`'s answer for the partitions in `asked` (`None`: it refused the request, so
/// they will be asked again on the next change) and re-runs their elections.
pub fn handle_replica_logs_described(
    model: &mut ClusterModel,
    broker: BrokerId,
    asked: &[TopicPartition],
    logs: Option<BTreeMap<TopicPartition, ReplicaLog>>,
) -> Decision {
    for tp in asked {
        model.replica_logs_asked.remove(&(tp.clone(), broker));
    }
    let Some(logs) = logs else {
        return Decision::default();
    };
    if !model.is_registered(broker) {
        return Decision::default();
    }
    let mut described = Vec::new();
    for (tp, log) in logs {
        let leaderless = model
            .partition_states
            .get(&tp)
            .is_some_and(|s| s.leader_and_isr.leader == BrokerId::NONE);
        if asked.contains(&tp) && leaderless && model.replicas(&tp).contains(&broker) {
            model
                .replica_logs
                .entry(tp.clone())
                .or_default()
                .insert(broker, log);
            described.push(tp);
        }
    }
    let mut decision = Decision::default();
    let mut batch = RequestBatch::default();
    repair_partitions(model, &described, &mut decision, &mut batch);
    batch.finish(model, &mut decision);
    decision
}
