//! The controller's channels to brokers (Kafka's `ControllerChannelManager`): one queue and one
//! sender task per registered broker, so requests to a broker arrive in decision order, and a
//! slow or dead broker delays nobody else.
//!
//! A request that cannot be delivered (connection refused, timeout) is retried with backoff
//! until it is delivered or the broker leaves `/brokers/ids` (its queue is then dropped; when
//! it returns, failover-style requests bring it up to date). A broker that answers with an
//! error (a stale epoch, a partition it could not apply) is not retried: the error is logged.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint};
use tributary_proto::v1 as pb;
use tributary_proto::v1::control_client::ControlClient;
use tributary_zk_layout::{BrokerId, ControllerEpoch, ZkVersion};

use crate::cluster::{LiveBroker, TopicPartition};
use crate::decision::{BrokerRequest, PartitionLeadership, PartitionMetadata};
use crate::event::Event;
use crate::last_replica::ReplicaLog;
use crate::model::LeaderAndIsr;

/// How long one control RPC may take (Kafka's `controller.socket.timeout.ms`).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// First and longest pause between delivery attempts.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// One sender per registered broker.
#[derive(Debug)]
pub(crate) struct BrokerChannels {
    me: BrokerId,
    epoch: ControllerEpoch,
    /// Responses that are events (StopReplica with delete done) go back to the loop here.
    feedback: mpsc::UnboundedSender<Event>,
    senders: BTreeMap<BrokerId, Sender>,
}

#[derive(Debug)]
struct Sender {
    broker: LiveBroker,
    queue: mpsc::UnboundedSender<BrokerRequest>,
    task: JoinHandle<()>,
}

impl BrokerChannels {
    pub(crate) fn new(
        me: BrokerId,
        epoch: ControllerEpoch,
        feedback: mpsc::UnboundedSender<Event>,
    ) -> Self {
        Self {
            me,
            epoch,
            feedback,
            senders: BTreeMap::new(),
        }
    }

    /// Matches the senders to the registered brokers: new ones get a sender, departed ones
    /// lose theirs (pending requests dropped), bounced ones (new epoch or endpoint) get a fresh
    /// one.
    pub(crate) fn sync(&mut self, live: &BTreeMap<BrokerId, LiveBroker>) {
        self.senders.retain(|id, sender| {
            let keep = live.get(id) == Some(&sender.broker);
            if !keep {
                sender.task.abort();
            }
            keep
        });
        for (id, broker) in live {
            if !self.senders.contains_key(id) {
                let (queue, requests) = mpsc::unbounded_channel();
                let task = tokio::spawn(deliver(
                    *id,
                    broker.clone(),
                    self.me,
                    self.epoch,
                    requests,
                    self.feedback.clone(),
                ));
                self.senders.insert(
                    *id,
                    Sender {
                        broker: broker.clone(),
                        queue,
                        task,
                    },
                );
            }
        }
    }

    /// Queues `request` for its recipient; a request to an unknown broker is dropped.
    pub(crate) fn send(&self, request: BrokerRequest) {
        match self.senders.get(&request.to()) {
            Some(sender) => {
                let _ = sender.queue.send(request);
            }
            None => {
                tracing::debug!(to = %request.to(), "dropping a request to an unregistered broker")
            }
        }
    }
}

impl Drop for BrokerChannels {
    fn drop(&mut self) {
        for sender in self.senders.values() {
            sender.task.abort();
        }
    }
}

/// Delivers `requests` to `broker` in order until the queue closes.
async fn deliver(
    id: BrokerId,
    broker: LiveBroker,
    me: BrokerId,
    epoch: ControllerEpoch,
    mut requests: mpsc::UnboundedReceiver<BrokerRequest>,
    feedback: mpsc::UnboundedSender<Event>,
) {
    let endpoint = match Endpoint::from_shared(format!("http://{}:{}", broker.host, broker.port)) {
        Ok(endpoint) => endpoint
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(REQUEST_TIMEOUT)
            .tcp_nodelay(true),
        Err(error) => {
            tracing::error!(broker = %id, host = %broker.host, %error, "broker endpoint is not a valid URI; not sending it requests");
            return;
        }
    };
    let mut client = ControlClient::new(endpoint.connect_lazy());
    while let Some(request) = requests.recv().await {
        let mut backoff = BACKOFF_MIN;
        loop {
            match send_one(&mut client, me, epoch, &request).await {
                Ok(events) => {
                    for event in events {
                        let _ = feedback.send(event);
                    }
                    break;
                }
                Err(status) => {
                    tracing::debug!(broker = %id, %status, "control request not delivered; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }
}

/// Sends one request; `Err` only when it was not delivered (worth retrying). Returns the
/// events its response produces.
async fn send_one(
    client: &mut ControlClient<Channel>,
    me: BrokerId,
    epoch: ControllerEpoch,
    request: &BrokerRequest,
) -> Result<Vec<Event>, tonic::Status> {
    let to = request.to();
    match request {
        BrokerRequest::LeaderAndIsr {
            broker_epoch,
            partitions,
            live_leaders,
            ..
        } => {
            let response = client
                .leader_and_isr(pb::LeaderAndIsrRequest {
                    header: Some(header(me, epoch, broker_epoch.0)),
                    partitions: partitions.iter().map(leadership).collect(),
                    live_leaders: broker_infos(live_leaders),
                })
                .await?
                .into_inner();
            log_errors(
                to,
                "LeaderAndIsr",
                response.error_code,
                &response.error_message,
                &response.partitions,
            );
            Ok(Vec::new())
        }
        BrokerRequest::UpdateMetadata {
            broker_epoch,
            live_brokers,
            partitions,
            deleted,
            ..
        } => {
            let response = client
                .update_metadata(pb::UpdateMetadataRequest {
                    header: Some(header(me, epoch, broker_epoch.0)),
                    live_brokers: broker_infos(live_brokers),
                    partitions: partitions.iter().map(metadata).collect(),
                    deleted: deleted.iter().map(partition_ref).collect(),
                })
                .await?
                .into_inner();
            log_errors(
                to,
                "UpdateMetadata",
                response.error_code,
                &response.error_message,
                &[],
            );
            Ok(Vec::new())
        }
        BrokerRequest::DescribeReplicaLogs {
            broker_epoch,
            partitions,
            ..
        } => {
            let response = client
                .describe_replica_logs(pb::DescribeReplicaLogsRequest {
                    header: Some(header(me, epoch, broker_epoch.0)),
                    partitions: partitions.iter().map(partition_ref).collect(),
                })
                .await?
                .into_inner();
            log_errors(
                to,
                "DescribeReplicaLogs",
                response.error_code,
                &response.error_message,
                &[],
            );
            Ok(vec![described_event(to, partitions, &response)])
        }
        BrokerRequest::StopReplica {
            broker_epoch,
            partitions,
            delete,
            ..
        } => {
            let response = client
                .stop_replica(pb::StopReplicaRequest {
                    header: Some(header(me, epoch, broker_epoch.0)),
                    partitions: partitions.iter().map(partition_ref).collect(),
                    delete: *delete,
                })
                .await?
                .into_inner();
            log_errors(
                to,
                "StopReplica",
                response.error_code,
                &response.error_message,
                &response.partitions,
            );
            Ok(deletion_events(to, *delete, partitions, &response))
        }
    }
}

/// The topics whose replicas on `broker` are now all deleted, as events.
fn deletion_events(
    broker: BrokerId,
    delete: bool,
    partitions: &[TopicPartition],
    response: &pb::StopReplicaResponse,
) -> Vec<Event> {
    if !delete || response.error_code != pb::ErrorCode::None as i32 {
        return Vec::new();
    }
    let failed: std::collections::BTreeSet<&str> = response
        .partitions
        .iter()
        .filter(|p| p.error_code != pb::ErrorCode::None as i32)
        .map(|p| p.topic.as_str())
        .collect();
    let topics: std::collections::BTreeSet<&str> =
        partitions.iter().map(|tp| tp.topic.as_str()).collect();
    topics
        .into_iter()
        .filter(|t| !failed.contains(t))
        .map(|topic| Event::ReplicaDeletionDone {
            topic: topic.to_owned(),
            broker,
        })
        .collect()
}

/// The event a DescribeReplicaLogs response makes: the logs of the asked partitions, or
/// `None` if the broker refused the request or left an asked partition out.
fn described_event(
    broker: BrokerId,
    asked: &[TopicPartition],
    response: &pb::DescribeReplicaLogsResponse,
) -> Event {
    let logs = (response.error_code == pb::ErrorCode::None as i32).then(|| {
        response
            .partitions
            .iter()
            .map(|p| {
                (
                    TopicPartition::new(p.topic.clone(), p.partition),
                    ReplicaLog {
                        last_leader_epoch: p.last_leader_epoch,
                        log_end_offset: p.log_end_offset,
                        needs_verification: p.needs_verification || !p.has_log,
                    },
                )
            })
            .collect::<BTreeMap<_, _>>()
    });
    let logs = logs.filter(|logs| asked.iter().all(|tp| logs.contains_key(tp)));
    Event::ReplicaLogsDescribed {
        broker,
        asked: asked.to_vec(),
        logs,
    }
}

fn log_errors(
    to: BrokerId,
    kind: &str,
    code: i32,
    message: &str,
    partitions: &[pb::ControlPartitionResult],
) {
    if code != pb::ErrorCode::None as i32 {
        tracing::warn!(broker = %to, request = kind, code, message, "broker refused a control request");
    }
    for p in partitions
        .iter()
        .filter(|p| p.error_code != pb::ErrorCode::None as i32)
    {
        if p.error_code == pb::ErrorCode::StaleControllerEpoch as i32 {
            // A partition already at (or past) this leader epoch: routine after a failover,
            // when every loaded state is sent again.
            tracing::info!(broker = %to, request = kind, topic = %p.topic, partition = p.partition, message = %p.error_message, "broker kept its newer or equal state of a partition");
        } else {
            tracing::warn!(broker = %to, request = kind, topic = %p.topic, partition = p.partition, code = p.error_code, message = %p.error_message, "broker could not apply a partition");
        }
    }
}

fn header(me: BrokerId, epoch: ControllerEpoch, broker_epoch: i64) -> pb::ControlHeader {
    pb::ControlHeader {
        controller_id: me.0,
        controller_epoch: epoch.0,
        broker_epoch,
    }
}

fn ids(brokers: &[BrokerId]) -> Vec<i32> {
    brokers.iter().map(|b| b.0).collect()
}

fn leadership(p: &PartitionLeadership) -> pb::PartitionState {
    wire_state(
        &p.partition,
        &p.leader_and_isr,
        &p.replicas,
        &[],
        p.zk_version,
        p.is_new,
    )
}

fn metadata(p: &PartitionMetadata) -> pb::PartitionState {
    let offline = &p.offline_replicas;
    wire_state(
        &p.partition,
        &p.leader_and_isr,
        &p.replicas,
        offline,
        p.zk_version,
        false,
    )
}

/// A partition's state as the Control service carries it.
fn wire_state(
    tp: &TopicPartition,
    state: &LeaderAndIsr,
    replicas: &[BrokerId],
    offline_replicas: &[BrokerId],
    zk_version: ZkVersion,
    is_new: bool,
) -> pb::PartitionState {
    pb::PartitionState {
        topic: tp.topic.clone(),
        partition: tp.partition.0,
        controller_epoch: state.controller_epoch.0,
        leader: state.leader.0,
        leader_epoch: state.leader_epoch.0,
        isr: ids(&state.isr),
        zk_version: zk_version.0,
        replicas: ids(replicas),
        offline_replicas: ids(offline_replicas),
        is_new,
    }
}

fn partition_ref(tp: &TopicPartition) -> pb::TopicPartitionRef {
    pb::TopicPartitionRef {
        topic: tp.topic.clone(),
        partition: tp.partition.0,
    }
}

fn broker_infos(brokers: &BTreeMap<BrokerId, LiveBroker>) -> Vec<pb::BrokerInfo> {
    brokers
        .iter()
        .map(|(id, b)| pb::BrokerInfo {
            id: id.0,
            host: b.host.clone(),
            port: i32::from(b.port),
            rack: b.rack.clone(),
            broker_epoch: Some(b.epoch.0),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(topic: &str, partition: i32, code: pb::ErrorCode) -> pb::ControlPartitionResult {
        pb::ControlPartitionResult {
            topic: topic.into(),
            partition,
            error_code: code as i32,
            error_message: String::new(),
        }
    }

    #[test]
    fn a_topic_counts_as_deleted_on_a_broker_only_when_all_its_partitions_were() {
        let partitions = vec![
            TopicPartition::new("a", 0),
            TopicPartition::new("a", 1),
            TopicPartition::new("b", 0),
        ];
        let response = pb::StopReplicaResponse {
            error_code: pb::ErrorCode::None as i32,
            error_message: String::new(),
            partitions: vec![
                result("a", 0, pb::ErrorCode::None),
                result("a", 1, pb::ErrorCode::KafkaStorageError),
                result("b", 0, pb::ErrorCode::None),
            ],
        };
        assert_eq!(
            deletion_events(BrokerId(2), true, &partitions, &response),
            vec![Event::ReplicaDeletionDone {
                topic: "b".into(),
                broker: BrokerId(2)
            }]
        );
        assert!(deletion_events(BrokerId(2), false, &partitions, &response).is_empty());
        let refused = pb::StopReplicaResponse {
            error_code: pb::ErrorCode::StaleControllerEpoch as i32,
            ..response
        };
        assert!(deletion_events(BrokerId(2), true, &partitions, &refused).is_empty());
    }

    #[test]
    fn described_logs_become_an_event_and_a_refusal_or_gap_becomes_none() {
        let asked = vec![TopicPartition::new("a", 0), TopicPartition::new("a", 1)];
        let state = |partition, has_log, needs_verification| pb::ReplicaLogState {
            topic: "a".into(),
            partition,
            has_log,
            last_leader_epoch: if has_log { 4 } else { -1 },
            log_end_offset: if has_log { 50 } else { 0 },
            needs_verification,
        };
        let response = pb::DescribeReplicaLogsResponse {
            error_code: pb::ErrorCode::None as i32,
            error_message: String::new(),
            partitions: vec![state(0, true, false), state(1, false, false)],
        };
        let Event::ReplicaLogsDescribed { broker, logs, .. } =
            described_event(BrokerId(3), &asked, &response)
        else {
            panic!("wrong event");
        };
        assert_eq!(broker, BrokerId(3));
        let logs = logs.expect("logs");
        assert_eq!(
            logs[&asked[0]],
            ReplicaLog {
                last_leader_epoch: 4,
                log_end_offset: 50,
                needs_verification: false
            }
        );
        // No log at all cannot vouch for anything.
        assert!(logs[&asked[1]].needs_verification);

        let partial = pb::DescribeReplicaLogsResponse {
            partitions: vec![state(0, true, false)],
            ..response.clone()
        };
        let refused = pb::DescribeReplicaLogsResponse {
            error_code: pb::ErrorCode::StaleBrokerEpoch as i32,
            ..response
        };
        for response in [partial, refused] {
            assert!(matches!(
                described_event(BrokerId(3), &asked, &response),
                Event::ReplicaLogsDescribed { logs: None, .. }
            ));
        }
    }
}
