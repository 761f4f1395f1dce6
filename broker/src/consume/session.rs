//! One consume stream's I/O: a [`Consumer`] of the Rust client subscribed for the stream's
//! client, the client's messages, and the records pushed back. One task owns the consumer, the
//! ledger and the records not yet delivered; a reader task only forwards the client's
//! messages to it.
//!
//! ```text
//!  client ──▶ reader task ──mpsc──▶ session loop: handle Credit / Commit (commit as the member)
//!                                      │ deliver pending records within the credit (Ledger)
//!                                      │ poll the Consumer when the group wants a rebalance, or
//!                                      │   when there is credit and nothing pending; else wait
//!                                      ▼   for a client message (at most IDLE_WAIT)
//!  client ◀── Assignment / Records / CommitResult
//! ```
//!
//! The consumer is never polled while the client has no credit and records are pending, so at
//! most `MAX_POLL_RECORDS` records wait here; its background heartbeat keeps the member alive
//! meanwhile. `poll` is never cancelled (it may be half-way through a rebalance): client
//! messages wait in the channel until it returns.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc;
use tonic::{Status, Streaming};
use tributary_client::{
    Client, Consumer, ConsumerOptions, ConsumerRecord, ErrorCode, GroupOffset, GroupOptions,
    OffsetReset, RebalanceListener, TimestampType, TopicPartition, by_topic,
};
use tributary_proto::v1 as pb;
use tributary_proto::v1::consume_client_message::Message as ClientMessage;
use tributary_proto::v1::consume_server_message::Message as ServerMessage;

use super::ConsumeError;
use super::ledger::{Batch, CommitPlan, Ledger, Positioned};
use crate::server::errors::consume_status;
use crate::state::BrokerState;

/// How long one poll waits for records (it returns at the first). Short, because client
/// messages (a Commit) wait while it runs.
const POLL_WAIT: Duration = Duration::from_millis(100);
/// How long the loop waits for a client message when it has no reason to poll, before it
/// looks again whether the group wants a rebalance (the heartbeat notices that every third
/// of the session timeout, so 100 ms adds little).
const IDLE_WAIT: Duration = Duration::from_millis(100);
/// Records one poll returns at most (`max.poll.records`): the most records held here beyond
/// the client's credit.
const MAX_POLL_RECORDS: usize = 500;
/// Defaults of the Subscribe's optional fields (Kafka's session timeout; a rebalance timeout
/// well above the ~100 ms this loop needs to re-join).
const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_REBALANCE_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_CLIENT_ID: &str = "thin-consumer";
/// Client messages read ahead of the session loop.
const INBOX: usize = 64;

type Outbound = mpsc::Sender<Result<pb::ConsumeServerMessage, Status>>;

/// Runs a consume stream to its end and sends its final status (nothing for OK).
pub async fn run(
    state: Arc<BrokerState>,
    inbound: Streaming<pb::ConsumeClientMessage>,
    out: Outbound,
) {
    let (inbox_tx, inbox) = mpsc::channel(INBOX);
    let reader = tokio::spawn(forward(inbound, inbox_tx));
    let result = Session::start(&state, inbox, out.clone()).await;
    let result = match result {
        Ok(mut session) => {
            let result = session.serve().await;
            session.close().await;
            result
        }
        Err(error) => Err(error),
    };
    reader.abort();
    if let Err(error) = result {
        tracing::info!(error = %crate::server::errors::error_chain(&error), "consume stream failed");
        // The client may be gone already; then nobody reads the status.
        let _ = out.send(Err(consume_status(&error))).await;
    }
}

/// The reader task: the client's messages into the inbox, until the client closes its side
/// (or breaks the stream) or the session is gone.
async fn forward(
    mut inbound: Streaming<pb::ConsumeClientMessage>,
    inbox: mpsc::Sender<pb::ConsumeClientMessage>,
) {
    while let Ok(Some(message)) = inbound.message().await {
        if inbox.send(message).await.is_err() {
            break;
        }
    }
}

/// The validated Subscribe.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    /// The consumer's options (group settings included).
    pub options: ConsumerOptions,
    /// The topics.
    pub topics: Vec<String>,
    /// The initial credit.
    pub initial_credit: u32,
}

/// Checks a Subscribe and fills in the defaults (pure).
pub fn subscription(subscribe: pb::ConsumeSubscribe) -> Result<Subscription, ConsumeError> {
    if subscribe.group_id.is_empty() {
        return Err(ConsumeError::EmptyGroupId);
    }
    if subscribe.topics.is_empty() || subscribe.topics.iter().any(String::is_empty) {
        return Err(ConsumeError::NoTopics);
    }
    let timeout = |field, value: i32, default| match value {
        0 => Ok(default),
        v if v < 0 => Err(ConsumeError::NegativeTimeout { field, value }),
        v => Ok(Duration::from_millis(v as u64)),
    };
    let session_timeout = timeout(
        "session_timeout_ms",
        subscribe.session_timeout_ms,
        DEFAULT_SESSION_TIMEOUT,
    )?;
    let rebalance_timeout = timeout(
        "rebalance_timeout_ms",
        subscribe.rebalance_timeout_ms,
        DEFAULT_REBALANCE_TIMEOUT,
    )?;
    let auto_offset_reset = match pb::ConsumeOffsetReset::try_from(subscribe.auto_offset_reset) {
        Ok(pb::ConsumeOffsetReset::Earliest) => OffsetReset::Earliest,
        Ok(pb::ConsumeOffsetReset::None) => OffsetReset::None,
        // Unknown values read as the default, as proto3 enums do.
        _ => OffsetReset::Latest,
    };
    let client_id = if subscribe.client_id.is_empty() {
        DEFAULT_CLIENT_ID.to_owned()
    } else {
        subscribe.client_id
    };
    let group = GroupOptions {
        client_id,
        session_timeout,
        // Kafka's ratio: two heartbeats may be lost before the session expires.
        heartbeat_interval: session_timeout / 3,
        max_poll_interval: rebalance_timeout,
        // The client commits what it processed; the broker never commits on its own.
        enable_auto_commit: false,
        ..GroupOptions::new(subscribe.group_id)
    };
    Ok(Subscription {
        options: ConsumerOptions {
            auto_offset_reset,
            max_poll_records: MAX_POLL_RECORDS,
            group: Some(group),
            ..ConsumerOptions::default()
        },
        topics: subscribe.topics,
        initial_credit: subscribe.initial_credit,
    })
}

/// The assignments the consumer's rebalances produced, collected during a poll.
#[derive(Debug, Clone, Default)]
struct Rebalances(Arc<Mutex<Vec<Vec<TopicPartition>>>>);

impl RebalanceListener for Rebalances {
    fn on_partitions_revoked(&mut self, _revoked: &[TopicPartition]) {}

    fn on_partitions_assigned(&mut self, assigned: &[TopicPartition]) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(assigned.to_vec());
    }
}

impl Positioned for ConsumerRecord {
    fn topic(&self) -> &str {
        &self.topic
    }
    fn partition(&self) -> i32 {
        self.partition
    }
    fn offset(&self) -> i64 {
        self.offset
    }
}

/// One stream's state; see the module documentation.
struct Session {
    consumer: Consumer,
    ledger: Ledger,
    /// Records polled but not yet delivered, in the order poll returned them.
    pending: VecDeque<ConsumerRecord>,
    rebalances: Rebalances,
    inbox: mpsc::Receiver<pb::ConsumeClientMessage>,
    out: Outbound,
}

/// What the loop does after handling a client message.
enum Flow {
    Continue,
    /// The client closed its side (or the server side is gone).
    Stop,
}

impl Session {
    /// Reads the Subscribe, checks the topics and subscribes a consumer through this broker.
    async fn start(
        state: &BrokerState,
        mut inbox: mpsc::Receiver<pb::ConsumeClientMessage>,
        out: Outbound,
    ) -> Result<Session, ConsumeError> {
        let Some(ClientMessage::Subscribe(subscribe)) = inbox.recv().await.and_then(|m| m.message)
        else {
            return Err(ConsumeError::NotSubscribe);
        };
        let subscription = subscription(subscribe)?;
        // Through this broker's own listener: the client library finds the coordinator and
        // the partition leaders, and retries as any client would.
        let bootstrap = format!("{}:{}", state.advertised_host, state.advertised_port);
        let client = Client::connect(&bootstrap)
            .await
            .map_err(ConsumeError::Consumer)?;
        for topic in &subscription.topics {
            match client.partitions_of(topic).await {
                Ok(_) => {}
                Err(error) if error.error_code() == Some(ErrorCode::UnknownTopicOrPartition) => {
                    return Err(ConsumeError::UnknownTopic {
                        topic: topic.clone(),
                    });
                }
                Err(error) => return Err(ConsumeError::Consumer(error)),
            }
        }
        let mut consumer =
            Consumer::new(&client, subscription.options).map_err(ConsumeError::Consumer)?;
        let rebalances = Rebalances::default();
        consumer.set_rebalance_listener(rebalances.clone());
        let topics: Vec<&str> = subscription.topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(ConsumeError::Consumer)?;
        Ok(Session {
            consumer,
            ledger: Ledger::new(subscription.initial_credit),
            pending: VecDeque::new(),
            rebalances,
            inbox,
            out,
        })
    }

    /// The loop; returns when the client closes its side or the stream fails.
    async fn serve(&mut self) -> Result<(), ConsumeError> {
        loop {
            loop {
                match self.inbox.try_recv() {
                    Ok(message) => {
                        if let Flow::Stop = self.handle(message).await? {
                            return Ok(());
                        }
                    }
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => return Ok(()),
                }
            }
            for batch in self.ledger.deliver(&mut self.pending) {
                if !send(&self.out, ServerMessage::Records(records_message(batch))).await {
                    return Ok(());
                }
            }
            let want_records = self.ledger.credit() > 0 && self.pending.is_empty();
            if want_records || self.consumer.rebalance_pending() {
                let records = self
                    .consumer
                    .poll(POLL_WAIT)
                    .await
                    .map_err(ConsumeError::Consumer)?;
                if !self.announce_rebalances().await {
                    return Ok(());
                }
                self.pending.extend(records);
            } else {
                match tokio::time::timeout(IDLE_WAIT, self.inbox.recv()).await {
                    Ok(Some(message)) => {
                        if let Flow::Stop = self.handle(message).await? {
                            return Ok(());
                        }
                    }
                    Ok(None) => return Ok(()),
                    Err(_idle) => {}
                }
            }
        }
    }

    /// Leaves the group (the stream's partitions go to the other members at once).
    async fn close(self) {
        if let Err(error) = self.consumer.close().await {
            tracing::warn!(%error, "the consume stream's member could not leave its group");
        }
    }

    /// After a poll: an Assignment per rebalance it ran. Records held from before a
    /// rebalance are dropped: the consumer starts again at the committed offsets.
    async fn announce_rebalances(&mut self) -> bool {
        let assignments: Vec<Vec<TopicPartition>> = std::mem::take(
            &mut *self
                .rebalances
                .0
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for assigned in assignments {
            self.pending.clear();
            let revoked = self.ledger.assign(&assigned);
            let (generation_id, member_id) = self
                .consumer
                .group_generation()
                .unwrap_or((-1, String::new()));
            let message = pb::ConsumeAssignment {
                generation_id,
                member_id,
                revoked: by_topic(&revoked),
                assigned: by_topic(&assigned),
            };
            if !send(&self.out, ServerMessage::Assignment(message)).await {
                return false;
            }
        }
        true
    }

    async fn handle(&mut self, message: pb::ConsumeClientMessage) -> Result<Flow, ConsumeError> {
        match message.message {
            None => Err(ConsumeError::EmptyMessage),
            Some(ClientMessage::Subscribe(_)) => Err(ConsumeError::SubscribeAgain),
            Some(ClientMessage::Credit(credit)) => {
                self.ledger.grant(credit.records);
                Ok(Flow::Continue)
            }
            Some(ClientMessage::Commit(commit)) => {
                let result = self.commit(commit).await?;
                Ok(
                    if send(&self.out, ServerMessage::CommitResult(result)).await {
                        Flow::Continue
                    } else {
                        Flow::Stop
                    },
                )
            }
        }
    }

    async fn commit(
        &mut self,
        commit: pb::ConsumeCommit,
    ) -> Result<pb::ConsumeCommitResult, ConsumeError> {
        let through = commit.through_sequence;
        let plan = match (through, commit.offsets.is_empty()) {
            (0, false) => self.ledger.explicit(
                commit
                    .offsets
                    .into_iter()
                    .map(|o| (TopicPartition::new(o.topic, o.partition), o.offset))
                    .collect(),
            ),
            (0, true) | (_, false) => return Err(ConsumeError::BadCommit),
            (_, true) => CommitPlan::Offsets(self.ledger.through(through)),
        };
        let offsets = match plan {
            CommitPlan::Offsets(offsets) => offsets,
            CommitPlan::NotAssigned(tp) => {
                return Ok(pb::ConsumeCommitResult {
                    through_sequence: through,
                    error_code: pb::ErrorCode::UnknownTopicOrPartition as i32,
                    error_message: format!(
                        "partition {} of {:?} is not assigned to this stream; nothing committed",
                        tp.partition, tp.topic
                    ),
                    offsets: Vec::new(),
                });
            }
        };
        let wire: Vec<pb::ConsumeOffset> = offsets
            .iter()
            .map(|(tp, offset)| pb::ConsumeOffset {
                topic: tp.topic.clone(),
                partition: tp.partition,
                offset: *offset,
            })
            .collect();
        if offsets.is_empty() {
            return Ok(commit_result(through, None, wire));
        }
        let group_offsets: Vec<GroupOffset> = offsets
            .into_iter()
            .map(|(tp, offset)| GroupOffset::new(tp.topic, tp.partition, offset))
            .collect();
        match self.consumer.commit_offsets_sync(&group_offsets).await {
            Ok(()) => {
                self.ledger.committed_through(through);
                Ok(commit_result(through, None, wire))
            }
            Err(error) => Ok(commit_result(through, Some(&error), wire)),
        }
    }
}

/// Sends a message; false when the client is gone. (A free function: a `&Session` held
/// across the await would need the consumer's listener to be `Sync`.)
async fn send(out: &Outbound, message: ServerMessage) -> bool {
    out.send(Ok(pb::ConsumeServerMessage {
        message: Some(message),
    }))
    .await
    .is_ok()
}

fn commit_result(
    through_sequence: u64,
    error: Option<&tributary_client::ClientError>,
    offsets: Vec<pb::ConsumeOffset>,
) -> pb::ConsumeCommitResult {
    let (error_code, error_message) = match error {
        None => (pb::ErrorCode::None as i32, String::new()),
        Some(error) => (
            error.error_code().map_or(
                pb::ErrorCode::UnknownServerError as i32,
                ErrorCode::wire_value,
            ),
            crate::server::errors::error_chain(error),
        ),
    };
    pb::ConsumeCommitResult {
        through_sequence,
        error_code,
        error_message,
        offsets,
    }
}

fn records_message(batch: Batch<ConsumerRecord>) -> pb::ConsumeRecords {
    pb::ConsumeRecords {
        sequence: batch.sequence,
        topic: batch.partition.topic,
        partition: batch.partition.partition,
        records: batch
            .records
            .into_iter()
            .map(|r| pb::ConsumedRecord {
                offset: r.offset,
                timestamp_ms: r.timestamp,
                timestamp_type: match r.timestamp_type {
                    TimestampType::CreateTime => pb::TimestampType::CreateTime,
                    TimestampType::LogAppendTime => pb::TimestampType::LogAppendTime,
                } as i32,
                key: r.key,
                value: r.value,
                headers: r
                    .headers
                    .into_iter()
                    .map(|h| pb::RecordHeader {
                        key: h.key,
                        value: h.value,
                    })
                    .collect(),
                // The consumer does not keep the batch's epoch; see ConsumeRecords.
                leader_epoch: -1,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscribe(group: &str, topics: &[&str]) -> pb::ConsumeSubscribe {
        pb::ConsumeSubscribe {
            group_id: group.to_owned(),
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn a_subscribe_gets_the_defaults() {
        let s = subscription(subscribe("g", &["t"])).expect("valid");
        let group = s.options.group.expect("a group");
        assert_eq!(group.group_id, "g");
        assert_eq!(group.client_id, "thin-consumer");
        assert_eq!(group.session_timeout, Duration::from_secs(10));
        assert_eq!(group.heartbeat_interval, Duration::from_secs(10) / 3);
        assert_eq!(group.max_poll_interval, Duration::from_secs(60));
        assert!(!group.enable_auto_commit);
        assert_eq!(s.options.auto_offset_reset, OffsetReset::Latest);
        assert_eq!(s.initial_credit, 0);
    }

    #[test]
    fn a_subscribe_sets_timeouts_reset_and_credit() {
        let s = subscription(pb::ConsumeSubscribe {
            session_timeout_ms: 6000,
            rebalance_timeout_ms: 9000,
            auto_offset_reset: pb::ConsumeOffsetReset::Earliest as i32,
            initial_credit: 7,
            client_id: "py".to_owned(),
            ..subscribe("g", &["t", "u"])
        })
        .expect("valid");
        let group = s.options.group.expect("a group");
        assert_eq!(group.session_timeout, Duration::from_secs(6));
        assert_eq!(group.heartbeat_interval, Duration::from_secs(2));
        assert_eq!(group.max_poll_interval, Duration::from_secs(9));
        assert_eq!(group.client_id, "py");
        assert_eq!(s.options.auto_offset_reset, OffsetReset::Earliest);
        assert_eq!(s.topics, vec!["t", "u"]);
        assert_eq!(s.initial_credit, 7);
    }

    #[test]
    fn bad_subscribes_are_refused() {
        assert!(matches!(
            subscription(subscribe("", &["t"])),
            Err(ConsumeError::EmptyGroupId)
        ));
        assert!(matches!(
            subscription(subscribe("g", &[])),
            Err(ConsumeError::NoTopics)
        ));
        assert!(matches!(
            subscription(subscribe("g", &["t", ""])),
            Err(ConsumeError::NoTopics)
        ));
        assert!(matches!(
            subscription(pb::ConsumeSubscribe {
                session_timeout_ms: -1,
                ..subscribe("g", &["t"])
            }),
            Err(ConsumeError::NegativeTimeout {
                field: "session_timeout_ms",
                value: -1
            })
        ));
    }
}
