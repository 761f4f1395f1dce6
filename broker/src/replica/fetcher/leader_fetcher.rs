//! The fetch loop for one leader broker (Kafka's `ReplicaFetcherThread`).
//!
//! Each partition goes through: **truncating** (OffsetForLeaderEpoch for the follower's
//! latest epoch, then truncation; see [`super::truncation`]) → **fetching** (one `Fetch` per
//! round for all fetching partitions, `replica_id` = this broker, the partition's leader
//! epoch, a `replica.fetch.wait.max.ms` long poll; batches are appended unchanged and the follower's HW becomes
//! min(leader HW, own LEO)). On errors:
//!
//! * transport failure or timeout: every partition waits `replica.fetch.backoff.ms` and retries;
//! * FENCED_LEADER_EPOCH (this broker's epoch is older than the leader's): the partition is
//!   **fenced** and waits for the LeaderAndIsr that is on its way;
//! * UNKNOWN_LEADER_EPOCH, NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION (the leader has
//!   not applied its own LeaderAndIsr yet) and other errors: wait the backoff and retry until
//!   a LeaderAndIsr re-points the partition;
//! * a diverging epoch in the response (the leader's log for our last fetched epoch ends below
//!   our log end, or it does not know that epoch): back to truncating;
//! * OFFSET_OUT_OF_RANGE: truncate to the leader's log end if beyond it, or restart the log
//!   at the leader's log start if below it (retention deleted what was next);
//! * an append the log refuses (not contiguous, corrupt): back to truncating after the
//!   backoff.
//!
//! A command (partition added or removed) interrupts whatever is in flight, so a re-pointed
//! partition does not wait for a long poll or a backoff to end.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint};
use tributary_proto::v1::broker_client::BrokerClient;
use tributary_proto::v1::{
    ErrorCode, FetchPartition, FetchRequest, FetchResponse, OffsetForLeaderEpochPartition,
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, OffsetForLeaderEpochTopic,
    RecordFormat, TopicFetchData,
};
use tributary_zk_layout::{BrokerId, LeaderEpoch};

use super::truncation::{self, Step};
use super::{Command, FetchSettings};
use crate::log::TopicPartition;
use crate::replica::{FollowerError, Partition};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Truncating,
    Fetching,
    /// FENCED_LEADER_EPOCH: idle until a LeaderAndIsr re-adds the partition.
    Fenced,
}

#[derive(Debug)]
struct Followed {
    partition: Arc<Partition>,
    leader_epoch: LeaderEpoch,
    state: State,
    /// Not before this instant (after an error).
    retry_at: Option<Instant>,
    /// `replica.fetch.backoff.ms`.
    backoff: Duration,
}

impl Followed {
    fn due(&self, now: Instant) -> bool {
        self.retry_at.is_none_or(|at| at <= now)
    }

    fn back_off(&mut self) {
        self.retry_at = Some(Instant::now() + self.backoff);
    }
}

type Partitions = BTreeMap<TopicPartition, Followed>;

/// Runs the loop for `leader` at `endpoint` until the command channel closes.
pub(super) async fn run(
    me: BrokerId,
    leader: BrokerId,
    endpoint: String,
    settings: FetchSettings,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let channel = match Endpoint::from_shared(format!("http://{endpoint}")) {
        Ok(e) => e
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .connect_lazy(),
        Err(error) => {
            tracing::error!(leader = leader.0, %endpoint, %error, "invalid leader endpoint; not fetching");
            while commands.recv().await.is_some() {}
            return;
        }
    };
    let client = BrokerClient::new(channel).max_decoding_message_size(
        usize::try_from(settings.response_max_bytes).unwrap_or(0) * 2 + (1 << 20),
    );
    let mut partitions = Partitions::new();
    let mut session: Option<FetchSession> = None;
    loop {
        loop {
            match commands.try_recv() {
                Ok(command) => apply(&mut partitions, command, settings.backoff),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => return,
            }
        }
        let now = Instant::now();
        let truncating: Vec<_> = partitions
            .iter()
            .filter(|(_, f)| f.state == State::Truncating && f.due(now))
            .map(|(tp, f)| (tp.clone(), f.partition.clone(), f.leader_epoch))
            .collect();
        let fetching: Vec<_> = partitions
            .iter()
            .filter(|(_, f)| f.state == State::Fetching && f.due(now))
            .map(|(tp, f)| (tp.clone(), f.partition.clone(), f.leader_epoch))
            .collect();
        let work = async {
            if !truncating.is_empty() {
                Work::Truncated(truncate(&client, me, settings, &truncating).await)
            } else if !fetching.is_empty() {
                Work::Fetched(fetch(&client, &mut session, me, settings, &fetching).await)
            } else {
                let next = partitions.values().filter_map(|f| f.retry_at).min();
                match next {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
                Work::Idle
            }
        };
        let done = tokio::select! {
            command = commands.recv() => match command {
                Some(command) => {
                    apply(&mut partitions, command, settings.backoff);
                    continue;
                }
                None => return,
            },
            done = work => done,
        };
        match done {
            Work::Idle => {}
            Work::Truncated(outcomes) => {
                for (tp, epoch, outcome) in outcomes {
                    settle(&mut partitions, &tp, epoch, outcome, leader);
                }
            }
            Work::Fetched(Ok(response)) => {
                handle_fetch(&mut partitions, &fetching, response, leader)
            }
            Work::Fetched(Err(error)) => {
                tracing::warn!(leader = leader.0, %endpoint, %error, "fetch failed; backing off");
                for (tp, _, _) in &fetching {
                    if let Some(f) = partitions.get_mut(tp) {
                        f.back_off();
                    }
                }
            }
        }
    }
}

enum Work {
    Idle,
    Truncated(Vec<(TopicPartition, LeaderEpoch, Outcome)>),
    Fetched(Result<FetchResponse, String>),
}

/// What a truncation attempt left a partition as.
#[derive(Debug)]
enum Outcome {
    /// Truncated; fetch from the LEO now.
    Fetch,
    /// Truncated part of the way (KIP-279); ask again.
    AskAgain,
    Fenced,
    /// No longer a follower at this epoch: drop it.
    Gone,
    Retry,
}

fn apply(partitions: &mut Partitions, command: Command, backoff: Duration) {
    match command {
        Command::Add {
            partition,
            leader_epoch,
        } => {
            partitions.insert(
                partition.topic_partition().clone(),
                Followed {
                    partition,
                    leader_epoch,
                    state: State::Truncating,
                    retry_at: None,
                    backoff,
                },
            );
        }
        Command::Remove(tp) => {
            partitions.remove(&tp);
        }
    }
}

fn settle(
    partitions: &mut Partitions,
    tp: &TopicPartition,
    epoch: LeaderEpoch,
    outcome: Outcome,
    leader: BrokerId,
) {
    let Some(f) = partitions.get_mut(tp) else {
        return;
    };
    if f.leader_epoch != epoch {
        return;
    }
    match outcome {
        Outcome::Fetch => {
            f.state = State::Fetching;
            f.retry_at = None;
            tracing::info!(topic_partition = %tp, leader = leader.0, leader_epoch = epoch.0, log_end = f.partition.log().log_end_offset(), "following: fetching from the leader");
        }
        Outcome::AskAgain => f.retry_at = None,
        Outcome::Fenced => f.state = State::Fenced,
        Outcome::Gone => {
            partitions.remove(tp);
        }
        Outcome::Retry => f.back_off(),
    }
}

/// One OffsetForLeaderEpoch round for the partitions that have epochs, and the truncation
/// each answer calls for.
async fn truncate(
    client: &BrokerClient<Channel>,
    me: BrokerId,
    settings: FetchSettings,
    truncating: &[(TopicPartition, Arc<Partition>, LeaderEpoch)],
) -> Vec<(TopicPartition, LeaderEpoch, Outcome)> {
    let mut outcomes = Vec::new();
    let mut asking = Vec::new();
    for (tp, partition, epoch) in truncating {
        match partition.log().latest_epoch() {
            Some(latest) => asking.push((tp, partition, *epoch, latest)),
            // No epochs: nothing to compare, see `truncation`.
            None => {
                let outcome = apply_step(partition, *epoch, None, None).await;
                outcomes.push((tp.clone(), *epoch, outcome));
            }
        }
    }
    if asking.is_empty() {
        return outcomes;
    }
    let mut topics: BTreeMap<&str, Vec<OffsetForLeaderEpochPartition>> = BTreeMap::new();
    for (tp, _, epoch, latest) in &asking {
        topics
            .entry(tp.topic.as_str())
            .or_default()
            .push(OffsetForLeaderEpochPartition {
                partition: tp.partition,
                current_leader_epoch: epoch.0,
                leader_epoch: *latest,
            });
    }
    let request = OffsetForLeaderEpochRequest {
        replica_id: me.0,
        topics: topics
            .into_iter()
            .map(|(topic, partitions)| OffsetForLeaderEpochTopic {
                topic: topic.to_owned(),
                partitions,
            })
            .collect(),
    };
    let mut client = client.clone();
    let response: Result<OffsetForLeaderEpochResponse, String> = match tokio::time::timeout(
        settings.socket_timeout,
        client.offset_for_leader_epoch(request),
    )
    .await
    {
        Ok(Ok(response)) => Ok(response.into_inner()),
        Ok(Err(status)) => Err(status.to_string()),
        Err(_) => Err("timed out".to_owned()),
    };
    let response = match response {
        Ok(response) => response,
        Err(error) => {
            tracing::warn!(%error, "OffsetForLeaderEpoch failed; backing off");
            outcomes.extend(
                asking
                    .into_iter()
                    .map(|(tp, _, epoch, _)| (tp.clone(), epoch, Outcome::Retry)),
            );
            return outcomes;
        }
    };
    for (tp, partition, epoch, latest) in asking {
        let answer = response
            .topics
            .iter()
            .filter(|t| t.topic == tp.topic)
            .flat_map(|t| t.partitions.iter())
            .find(|p| p.partition == tp.partition);
        let outcome = match answer {
            None => Outcome::Retry,
            Some(a) => match ErrorCode::try_from(a.error_code) {
                Ok(ErrorCode::None) => {
                    let leader_answer = (a.leader_epoch >= 0 && a.end_offset >= 0)
                        .then_some((a.leader_epoch, a.end_offset));
                    apply_step(partition, epoch, Some(latest), leader_answer).await
                }
                Ok(ErrorCode::FencedLeaderEpoch) => Outcome::Fenced,
                _ => {
                    tracing::debug!(topic_partition = %tp, code = a.error_code, message = %a.error_message, "OffsetForLeaderEpoch refused; retrying");
                    Outcome::Retry
                }
            },
        };
        outcomes.push((tp.clone(), epoch, outcome));
    }
    outcomes
}

/// Decides (pure) and applies one truncation step, off the async workers (it rewrites files).
async fn apply_step(
    partition: &Arc<Partition>,
    epoch: LeaderEpoch,
    latest: Option<i32>,
    leader_answer: Option<(i32, i64)>,
) -> Outcome {
    let partition = partition.clone();
    let applied = tokio::task::spawn_blocking(move || {
        let log = partition.log();
        let step = truncation::step(
            latest,
            leader_answer,
            |e| log.end_offset_for_epoch(e),
            log.log_end_offset(),
            partition.high_watermark(),
        );
        let (offset, outcome) = match step {
            Step::TruncateTo(offset) => (offset, Outcome::Fetch),
            Step::TruncateAndAskAgain(offset) => (offset, Outcome::AskAgain),
        };
        let before = log.log_end_offset();
        let result = partition.truncate_as_follower(epoch, offset);
        if result.is_ok() && offset < before {
            tracing::info!(
                topic_partition = %partition.topic_partition(),
                leader_epoch = epoch.0,
                latest_local_epoch = ?latest,
                leader_answer = ?leader_answer,
                from = before,
                to = log.log_end_offset(),
                "truncated the follower's log to the leader's"
            );
        }
        (result, outcome)
    })
    .await;
    match applied {
        Ok((Ok(()), outcome)) => outcome,
        Ok((Err(FollowerError::NotFollower { .. }), _)) => Outcome::Gone,
        Ok((Err(error), _)) => {
            tracing::error!(%error, "truncation failed; retrying");
            Outcome::Retry
        }
        Err(error) => {
            tracing::error!(%error, "truncation task failed; retrying");
            Outcome::Retry
        }
    }
}

/// The loop's `FetchStream` to the leader: one request, then its response, in turn. One
/// long-lived HTTP/2 stream costs both sides less per round than a unary call each time.
struct FetchSession {
    requests: mpsc::Sender<FetchRequest>,
    responses: tonic::Streaming<FetchResponse>,
}

impl FetchSession {
    async fn open(client: &BrokerClient<Channel>) -> Result<Self, tonic::Status> {
        let (requests, receiver) = mpsc::channel(1);
        let responses = client
            .clone()
            .fetch_stream(tokio_stream::wrappers::ReceiverStream::new(receiver))
            .await?
            .into_inner();
        Ok(Self {
            requests,
            responses,
        })
    }

    async fn exchange(&mut self, request: FetchRequest) -> Result<FetchResponse, String> {
        self.requests
            .send(request)
            .await
            .map_err(|_| "the fetch stream closed".to_owned())?;
        match self.responses.message().await {
            Ok(Some(response)) => Ok(response),
            Ok(None) => Err("the leader ended the fetch stream".to_owned()),
            Err(status) => Err(status.to_string()),
        }
    }
}

/// One fetch round on the loop's session (opened if there is none). The session is kept
/// only after a complete exchange: if this future is dropped mid-round (a command arrived) or
/// the round fails, the stream goes with it, so a late response can never be taken for the
/// next request's.
async fn fetch(
    client: &BrokerClient<Channel>,
    session: &mut Option<FetchSession>,
    me: BrokerId,
    settings: FetchSettings,
    fetching: &[(TopicPartition, Arc<Partition>, LeaderEpoch)],
) -> Result<FetchResponse, String> {
    let mut topics: BTreeMap<&str, Vec<FetchPartition>> = BTreeMap::new();
    for (tp, partition, epoch) in fetching {
        topics
            .entry(tp.topic.as_str())
            .or_default()
            .push(FetchPartition {
                partition: tp.partition,
                fetch_offset: partition.log().log_end_offset(),
                partition_max_bytes: settings.max_bytes,
                current_leader_epoch: epoch.0,
                last_fetched_epoch: partition.log().latest_epoch(),
            });
    }
    let request = FetchRequest {
        request_id: 0,
        replica_id: me.0,
        max_wait_ms: settings.wait_max_ms,
        min_bytes: 1,
        max_bytes: settings.response_max_bytes,
        format: RecordFormat::Raw as i32,
        topics: topics
            .into_iter()
            .map(|(topic, partitions)| TopicFetchData {
                topic: topic.to_owned(),
                partitions,
            })
            .collect(),
    };
    let round = async {
        let mut current = match session.take() {
            Some(current) => current,
            None => FetchSession::open(client)
                .await
                .map_err(|status| status.to_string())?,
        };
        let response = current.exchange(request).await?;
        *session = Some(current);
        Ok(response)
    };
    match tokio::time::timeout(settings.socket_timeout, round).await {
        Ok(result) => result,
        Err(_) => Err("timed out".to_owned()),
    }
}

fn handle_fetch(
    partitions: &mut Partitions,
    fetched: &[(TopicPartition, Arc<Partition>, LeaderEpoch)],
    response: FetchResponse,
    leader: BrokerId,
) {
    for topic in response.topics {
        for p in topic.partitions {
            let tp = TopicPartition::new(topic.topic.clone(), p.partition);
            let Some(requested) = fetched
                .iter()
                .find(|(t, _, _)| *t == tp)
                .map(|(_, _, e)| *e)
            else {
                continue;
            };
            let Some(f) = partitions.get_mut(&tp) else {
                continue;
            };
            if f.leader_epoch != requested || f.state != State::Fetching {
                continue;
            }
            match ErrorCode::try_from(p.error_code) {
                Ok(ErrorCode::None) if p.diverging_epoch.is_some() => {
                    // The leader's log parts from ours below our log end: truncate again, by
                    // OffsetForLeaderEpoch, before fetching more.
                    tracing::warn!(topic_partition = %tp, leader = leader.0, diverging = ?p.diverging_epoch, log_end = f.partition.log().log_end_offset(), "the leader reports a diverging epoch; truncating again");
                    f.state = State::Truncating;
                    f.retry_at = None;
                }
                Ok(ErrorCode::None) => {
                    if !p.batches.is_empty() {
                        match f
                            .partition
                            .append_as_follower(f.leader_epoch, BytesMut::from(&p.batches[..]))
                        {
                            Ok(_) => {}
                            Err(FollowerError::NotFollower { .. }) => {
                                partitions.remove(&tp);
                                continue;
                            }
                            Err(error) => {
                                tracing::error!(topic_partition = %tp, %error, "cannot append fetched batches; truncating again");
                                f.state = State::Truncating;
                                f.back_off();
                                continue;
                            }
                        }
                    }
                    f.partition
                        .update_follower_high_watermark(f.leader_epoch, p.high_watermark);
                }
                Ok(ErrorCode::OffsetOutOfRange) => {
                    let outcome = out_of_range(f, p.log_start_offset, p.log_end_offset);
                    if matches!(outcome, Err(FollowerError::NotFollower { .. })) {
                        partitions.remove(&tp);
                    } else if let Err(error) = outcome {
                        tracing::error!(topic_partition = %tp, %error, "cannot reset an out-of-range follower; retrying");
                        f.back_off();
                    }
                }
                Ok(ErrorCode::FencedLeaderEpoch) => {
                    tracing::info!(topic_partition = %tp, leader = leader.0, leader_epoch = f.leader_epoch.0, "fenced by the leader: waiting for LeaderAndIsr");
                    f.state = State::Fenced;
                }
                _ => {
                    tracing::debug!(topic_partition = %tp, leader = leader.0, code = p.error_code, message = %p.error_message, "fetch refused; retrying");
                    f.back_off();
                }
            }
        }
    }
}

/// OFFSET_OUT_OF_RANGE: beyond the leader's log end → truncate to it (only after an unclean
/// election can the epochs not have caught that); below its log start → restart the log
/// there.
fn out_of_range(f: &mut Followed, leader_start: i64, leader_end: i64) -> Result<(), FollowerError> {
    let end = f.partition.log().log_end_offset();
    if leader_end >= 0 && end > leader_end {
        tracing::warn!(topic_partition = %f.partition.topic_partition(), log_end = end, leader_end, "follower is beyond the leader's log end; truncating");
        f.partition.truncate_as_follower(f.leader_epoch, leader_end)
    } else if leader_start >= 0 && end < leader_start {
        tracing::info!(topic_partition = %f.partition.topic_partition(), log_end = end, leader_start, "follower is below the leader's log start; restarting its log there");
        f.partition
            .restart_as_follower_at(f.leader_epoch, leader_start)
    } else {
        f.back_off();
        Ok(())
    }
}
