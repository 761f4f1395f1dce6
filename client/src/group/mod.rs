//! A consumer group's committed offsets: [`Group`], from [`Client::group`].
//!
//! ```text
//!   Group::commit / committed ──▶ cached coordinator ──▶ OffsetCommit / OffsetFetch
//!        ▲                         │ none cached: FindCoordinator on the bootstrap broker
//!        │ NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE, unreachable: forget it, back off
//!        └ COORDINATOR_LOAD_IN_PROGRESS: back off, same coordinator
//! ```
//!
//! Retries follow the client's [`RetryPolicy`] (50 ms doubling to 1 s, within
//! [`Client::retry_timeout`]). Commits are Kafka's "simple" commits (generation -1, no member
//! id) unless [`Group::commit_as`] names a generation and member. The membership RPCs
//! (`members.rs`: [`Group::join`], [`Group::sync`], [`Group::heartbeat`], [`Group::leave`])
//! carry [`crate::Consumer::subscribe`]. Administration (`admin.rs`): [`Group::describe`],
//! [`Group::delete`] and [`crate::Admin::list_groups`].

mod admin;
mod members;
mod wire;

pub use admin::{GroupDescription, GroupListing, GroupMember, GroupState};
pub use members::{Generation, JoinOutcome, JoinRequest};

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use tonic::transport::Channel;
use tributary_proto::v1::group_coordinator_client::GroupCoordinatorClient;
use tributary_proto::v1::{FindCoordinatorRequest, OffsetCommitRequest, OffsetFetchRequest};

use crate::client::endpoint;
use crate::routing::RetryPolicy;
use crate::{Client, ClientError, MAX_MESSAGE_SIZE, TopicPartition};

use wire::{commit_outcome, commit_topics, fetch_outcome, fetch_topics, group_error};

/// The generation of commits from outside group management.
pub const NO_GENERATION: i32 = -1;

/// The internal topic holding groups' offsets and metadata.
const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// One partition's offset to commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupOffset {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The next offset to consume (the last processed record's offset + 1).
    pub offset: i64,
    /// The leader epoch of the last processed record, if known.
    pub leader_epoch: Option<i32>,
    /// Free text stored with the offset (at most the broker's `offset.metadata.max.bytes`).
    pub metadata: String,
}

impl GroupOffset {
    /// `offset` for `topic`-`partition`, without leader epoch or metadata.
    pub fn new(topic: impl Into<String>, partition: i32, offset: i64) -> GroupOffset {
        GroupOffset {
            topic: topic.into(),
            partition,
            offset,
            leader_epoch: None,
            metadata: String::new(),
        }
    }
}

/// An offset as the group committed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The next offset to consume.
    pub offset: i64,
    /// The leader epoch committed with it, if any.
    pub leader_epoch: Option<i32>,
    /// The metadata committed with it.
    pub metadata: String,
}

/// Where a group's coordinator is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coordinator {
    /// The coordinator's broker id.
    pub broker_id: i32,
    /// Its URI (`http://host:port`).
    pub address: String,
    /// The `__consumer_offsets` partition holding the group.
    pub partition: i32,
}

/// A consumer group's offsets, reached through its coordinator. Cheap to clone: clones share
/// the cached coordinator.
#[derive(Debug, Clone)]
pub struct Group {
    client: Client,
    group_id: String,
    bootstrap: GroupCoordinatorClient<Channel>,
    coordinator: Arc<Mutex<Option<Found>>>,
}

/// A coordinator found by FindCoordinator and the connection to it.
type Found = (Coordinator, GroupCoordinatorClient<Channel>);

fn service(uri: &str) -> Result<GroupCoordinatorClient<Channel>, ClientError> {
    Ok(
        GroupCoordinatorClient::new(endpoint(uri, uri)?.connect_lazy())
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE),
    )
}

impl Client {
    /// The group `group_id` (nothing is sent until the first call). FindCoordinator goes to
    /// this client's bootstrap broker.
    pub fn group(&self, group_id: impl Into<String>) -> Result<Group, ClientError> {
        Ok(Group {
            client: self.clone(),
            group_id: group_id.into(),
            bootstrap: service(self.address())?,
            coordinator: Arc::new(Mutex::new(None)),
        })
    }
}

impl Group {
    /// The group id.
    pub fn id(&self) -> &str {
        &self.group_id
    }

    /// The group's coordinator, looked up now (FindCoordinator, retried while the
    /// coordinator is not available, e.g. while `__consumer_offsets` is being created).
    pub async fn find_coordinator(&self) -> Result<Coordinator, ClientError> {
        self.forget_coordinator();
        self.on_coordinator(|coordinator, _| async move { Ok(coordinator) })
            .await
    }

    /// Commits `offsets` outside group management (generation -1, no member id): Kafka's
    /// "simple" commit, accepted while the group has no members. Returns once every in-sync
    /// replica of the group's offsets partition has the commit. A partition refused on its
    /// own (metadata too long, unknown partition) is returned as [`ClientError::Broker`]; the
    /// other partitions were committed. A refusal of the whole commit is
    /// [`ClientError::Group`].
    pub async fn commit(&self, offsets: &[GroupOffset]) -> Result<(), ClientError> {
        self.commit_as(NO_GENERATION, "", offsets).await
    }

    /// Commits `offsets` as member `member_id` of generation `generation_id` (refused with
    /// ILLEGAL_GENERATION or UNKNOWN_MEMBER_ID unless the group has that member and
    /// generation).
    pub async fn commit_as(
        &self,
        generation_id: i32,
        member_id: &str,
        offsets: &[GroupOffset],
    ) -> Result<(), ClientError> {
        let request = OffsetCommitRequest {
            group_id: self.group_id.clone(),
            generation_id,
            member_id: member_id.to_owned(),
            topics: commit_topics(offsets),
        };
        let group = self.group_id.as_str();
        self.on_coordinator(|_, mut service| {
            let request = request.clone();
            async move {
                let response = service.offset_commit(request).await;
                commit_outcome(
                    group,
                    response
                        .map_err(ClientError::rpc("OffsetCommit"))?
                        .into_inner(),
                )
            }
        })
        .await
    }

    /// The committed offsets of `partitions`, in order (`None` where the group committed
    /// nothing).
    pub async fn committed(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<Vec<(TopicPartition, Option<CommittedOffset>)>, ClientError> {
        if partitions.is_empty() {
            return Ok(Vec::new());
        }
        self.fetch(fetch_topics(partitions)).await
    }

    /// Every committed offset of the group, sorted by topic and partition.
    pub async fn committed_all(
        &self,
    ) -> Result<Vec<(TopicPartition, CommittedOffset)>, ClientError> {
        Ok(self
            .fetch(Vec::new())
            .await?
            .into_iter()
            .filter_map(|(tp, committed)| committed.map(|c| (tp, c)))
            .collect())
    }

    async fn fetch(
        &self,
        topics: Vec<tributary_proto::v1::OffsetFetchTopic>,
    ) -> Result<Vec<(TopicPartition, Option<CommittedOffset>)>, ClientError> {
        let request = OffsetFetchRequest {
            group_id: self.group_id.clone(),
            topics,
        };
        let group = self.group_id.as_str();
        self.on_coordinator(|_, mut service| {
            let request = request.clone();
            async move {
                let response = service.offset_fetch(request).await;
                fetch_outcome(
                    group,
                    response
                        .map_err(ClientError::rpc("OffsetFetch"))?
                        .into_inner(),
                )
            }
        })
        .await
    }

    fn cached(&self) -> Option<Found> {
        self.coordinator
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn forget_coordinator(&self) {
        *self
            .coordinator
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// One FindCoordinator on the bootstrap broker; the answer is cached.
    async fn lookup(&self) -> Result<Found, ClientError> {
        if let Some(cached) = self.cached() {
            return Ok(cached);
        }
        let response = self
            .bootstrap
            .clone()
            .find_coordinator(FindCoordinatorRequest {
                group_id: self.group_id.clone(),
            })
            .await
            .map_err(ClientError::rpc("FindCoordinator"))?
            .into_inner();
        if let Some(error) =
            group_error(&self.group_id, response.error_code, &response.error_message)
        {
            return Err(error);
        }
        let broker = response
            .coordinator
            .ok_or_else(|| ClientError::MalformedResponse {
                operation: "FindCoordinator",
                topic: String::new(),
                partition: None,
                reason: "no coordinator in a successful answer".to_owned(),
            })?;
        let address = format!("http://{}:{}", broker.host, broker.port);
        let found = (
            Coordinator {
                broker_id: broker.id,
                address: address.clone(),
                partition: response.partition,
            },
            service(&address)?,
        );
        *self
            .coordinator
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(found.clone());
        Ok(found)
    }

    /// Runs `call` against the coordinator, retrying coordinator changes and loads within the
    /// client's retry timeout (see the module documentation); other errors return at once.
    async fn on_coordinator<T, F, Fut>(&self, call: F) -> Result<T, ClientError>
    where
        F: FnMut(Coordinator, GroupCoordinatorClient<Channel>) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        self.on_coordinator_with(retry_decision, call).await
    }

    /// [`Group::on_coordinator`] with another retry decision (retry at all, look the
    /// coordinator up again first).
    async fn on_coordinator_with<T, F, Fut>(
        &self,
        decide: fn(&ClientError) -> (bool, bool),
        mut call: F,
    ) -> Result<T, ClientError>
    where
        F: FnMut(Coordinator, GroupCoordinatorClient<Channel>) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let policy: RetryPolicy = self.client.retry;
        let started = tokio::time::Instant::now();
        let mut retry = 0;
        loop {
            let result = match self.lookup().await {
                Ok((coordinator, service)) => call(coordinator, service).await,
                Err(error) => Err(error),
            };
            let error = match result {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            let (retriable, lookup_again) = decide(&error);
            if !retriable {
                return Err(error);
            }
            if lookup_again {
                self.forget_coordinator();
            }
            retry += 1;
            let Some(delay) = policy.delay_before(retry, started.elapsed()) else {
                return Err(error);
            };
            tracing::debug!(group = %self.group_id, retry, %error, "retrying a group request");
            tokio::time::sleep(delay).await;
        }
    }
}

/// Whether a failed group request is worth retrying, and whether the coordinator must be
/// looked up again first: NOT_COORDINATOR and COORDINATOR_NOT_AVAILABLE (it moved or is being
/// elected), an unreachable broker (it may be dead) → both; COORDINATOR_LOAD_IN_PROGRESS →
/// retry the same coordinator; anything else → neither.
fn retry_decision(error: &ClientError) -> (bool, bool) {
    match error {
        ClientError::Group { code, .. } => (code.is_retriable(), code.needs_coordinator_lookup()),
        ClientError::Connect { .. } | ClientError::Rpc { .. } => {
            let transport = error.needs_metadata_refresh();
            (transport, transport)
        }
        _ => (false, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    #[test]
    fn coordinator_errors_are_retried_and_moves_looked_up_again() {
        let group = |code| ClientError::Group {
            group: "g".into(),
            code,
            message: String::new(),
        };
        let table = [
            (group(ErrorCode::NotCoordinator), (true, true)),
            (group(ErrorCode::CoordinatorNotAvailable), (true, true)),
            (group(ErrorCode::CoordinatorLoadInProgress), (true, false)),
            (group(ErrorCode::IllegalGeneration), (false, false)),
            (group(ErrorCode::UnknownMemberId), (false, false)),
            (group(ErrorCode::InvalidGroupId), (false, false)),
            (
                ClientError::Rpc {
                    operation: "OffsetCommit",
                    source: tonic::Status::unavailable("connection refused"),
                },
                (true, true),
            ),
            (
                ClientError::Rpc {
                    operation: "OffsetCommit",
                    source: tonic::Status::invalid_argument("bad"),
                },
                (false, false),
            ),
        ];
        for (error, expected) in table {
            assert_eq!(retry_decision(&error), expected, "{error:?}");
        }
    }
}
