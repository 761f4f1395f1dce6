//! Leader routing: which broker a partition's requests go to, and retrying when the leader
//! moves.
//!
//! ```text
//!   produce / fetch / list_offsets / Producer / PartitionConsumer
//!        │ (topic, partition)
//!        ▼
//!   Client::on_leader ──▶ LeaderTable (last Metadata answer) ──▶ connection of that broker
//!        ▲                      ▲                                   (opened on first use)
//!        │ NOT_LEADER_OR_FOLLOWER, LEADER_NOT_AVAILABLE, unreachable broker, ...
//!        └── forget the topic, back off, Metadata from the bootstrap (or any known broker)
//! ```
//!
//! [`LeaderTable`] decides (pure); [`Router`] owns it and the connections behind one short
//! lock; [`RetryPolicy`] says how long to keep trying. Requests are single-partition, so none
//! has to be split between leaders.

mod leaders;
mod retry;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tonic::transport::Channel;
use tributary_proto::v1::broker_client::BrokerClient;

use crate::client::endpoint;
use crate::{Client, ClientError, ClusterMetadata, ErrorCode, MAX_MESSAGE_SIZE, bootstrap_uri};

use leaders::{LeaderAddress, LeaderTable};
pub use retry::DEFAULT_RETRY_TIMEOUT;
pub(crate) use retry::RetryPolicy;

/// A partition's leader as the client's metadata names it, with the connection to it.
#[derive(Debug, Clone)]
pub struct PartitionLeader {
    broker_id: i32,
    address: String,
    leader_epoch: i32,
    service: BrokerClient<Channel>,
}

impl PartitionLeader {
    /// The leader's broker id.
    pub fn broker_id(&self) -> i32 {
        self.broker_id
    }

    /// The leader's URI (`http://host:port` from its advertised listener).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The leader epoch in the metadata the client used.
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch
    }

    /// The generated `Broker` service client on the connection to the leader.
    pub fn broker_service(&self) -> BrokerClient<Channel> {
        self.service.clone()
    }
}

/// The metadata and the per-broker connections shared by the clones of a [`Client`].
#[derive(Debug)]
pub(crate) struct Router {
    /// The bootstrap broker's URI, normalised like the URIs built from metadata.
    bootstrap_uri: String,
    bootstrap: BrokerClient<Channel>,
    state: Mutex<RouterState>,
}

#[derive(Debug, Default)]
struct RouterState {
    table: LeaderTable,
    /// Broker id -> (URI, service). Invariant: the URI is the one the broker had when the
    /// entry was made; a broker seen at another address gets a new connection.
    connections: HashMap<i32, (String, BrokerClient<Channel>)>,
}

impl Router {
    pub(crate) fn new(bootstrap_address: &str, bootstrap: BrokerClient<Channel>) -> Router {
        Router {
            bootstrap_uri: bootstrap_uri(bootstrap_address)
                .unwrap_or_else(|_| bootstrap_address.to_owned()),
            bootstrap,
            state: Mutex::new(RouterState::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, RouterState> {
        // Every update leaves the state consistent; a panic elsewhere must not stop routing.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn record(&self, metadata: &ClusterMetadata) {
        self.lock().table.update(metadata);
    }

    pub(crate) fn forget(&self, topic: &str) {
        self.lock().table.forget(topic);
    }

    /// The cached leader: `None` when the topic's metadata has not been fetched.
    fn cached_leader(
        &self,
        topic: &str,
        partition: i32,
    ) -> Option<Result<PartitionLeader, ClientError>> {
        let mut state = self.lock();
        let found = state.table.leader(topic, partition)?;
        Some(found.and_then(|leader| self.connect(&mut state, leader)))
    }

    fn partition_count(&self, topic: &str) -> Option<Result<i32, ClientError>> {
        self.lock().table.partition_count(topic)
    }

    fn available_partitions(&self, topic: &str) -> Vec<i32> {
        self.lock().table.available_partitions(topic)
    }

    /// The connection to `leader`, made now (lazily: the TCP connection is opened by the first
    /// request) if there is none to its current address.
    fn connect(
        &self,
        state: &mut RouterState,
        leader: LeaderAddress,
    ) -> Result<PartitionLeader, ClientError> {
        let service = match state.connections.get(&leader.broker_id) {
            Some((uri, service)) if *uri == leader.uri => service.clone(),
            _ => {
                let service = if leader.uri == self.bootstrap_uri {
                    self.bootstrap.clone()
                } else {
                    let channel = endpoint(&leader.uri, &leader.uri)?.connect_lazy();
                    BrokerClient::new(channel)
                        .max_decoding_message_size(MAX_MESSAGE_SIZE)
                        .max_encoding_message_size(MAX_MESSAGE_SIZE)
                };
                state
                    .connections
                    .insert(leader.broker_id, (leader.uri.clone(), service.clone()));
                service
            }
        };
        Ok(PartitionLeader {
            broker_id: leader.broker_id,
            address: leader.uri,
            leader_epoch: leader.leader_epoch,
            service,
        })
    }

    /// Where to ask for metadata, in order: the bootstrap broker, then every other broker the
    /// last answer listed (so a dead bootstrap broker does not stop routing).
    pub(crate) fn metadata_sources(&self) -> Vec<BrokerClient<Channel>> {
        let mut state = self.lock();
        let others = state.table.other_brokers(&self.bootstrap_uri);
        let mut sources = vec![self.bootstrap.clone()];
        for (broker_id, uri) in others {
            let leader = LeaderAddress {
                broker_id,
                uri,
                leader_epoch: -1,
            };
            if let Ok(connected) = self.connect(&mut state, leader) {
                sources.push(connected.service);
            }
        }
        sources
    }
}

impl Client {
    /// Fetches metadata for `topics` (every topic when empty) and uses it for routing from now
    /// on. Asks the bootstrap broker, or, if it cannot be reached, the other brokers known
    /// from earlier metadata; fails with the bootstrap broker's error when none answers.
    pub async fn refresh_metadata(&self, topics: &[&str]) -> Result<(), ClientError> {
        let mut first_error = None;
        for service in self.router.metadata_sources() {
            match crate::admin::fetch_metadata(service, topics).await {
                Ok(metadata) => {
                    self.router.record(&metadata);
                    return Ok(());
                }
                Err(error) => {
                    tracing::debug!(%error, "Metadata request failed; trying the next broker");
                    first_error.get_or_insert(error);
                }
            }
        }
        Err(first_error.expect("the bootstrap broker is always a metadata source"))
    }

    /// The leader of `topic`/`partition` and the connection to it, from cached metadata when
    /// the client has it. When the partition has no usable leader yet (a topic being
    /// created, a leader election under way), fresh metadata is fetched and the lookup
    /// retried like a data-path request, for up to [`Client::retry_timeout`].
    pub async fn leader_for(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<PartitionLeader, ClientError> {
        self.on_leader(topic, partition, |leader| async move { Ok(leader) })
            .await
    }

    /// How long a request keeps being retried while its partition's leader moves (default
    /// [`DEFAULT_RETRY_TIMEOUT`]).
    pub fn retry_timeout(&self) -> Duration {
        self.retry.timeout
    }

    /// This client (sharing connections and metadata with `self`) with another retry timeout;
    /// `Duration::ZERO` turns the retries off (the first error is returned).
    #[must_use]
    pub fn with_retry_timeout(mut self, timeout: Duration) -> Client {
        self.retry = RetryPolicy { timeout };
        self
    }

    /// The cached leader if it is known and usable (no I/O, no waiting).
    pub(crate) fn cached_leader(&self, topic: &str, partition: i32) -> Option<PartitionLeader> {
        self.router.cached_leader(topic, partition)?.ok()
    }

    /// The partition count of `topic` from cached metadata (no I/O): `None` when the topic has
    /// not been looked up.
    pub(crate) fn cached_partition_count(&self, topic: &str) -> Option<Result<i32, ClientError>> {
        self.router.partition_count(topic)
    }

    /// The partitions of `topic` that have a live leader in the cached metadata (no I/O).
    pub(crate) fn available_partitions(&self, topic: &str) -> Vec<i32> {
        self.router.available_partitions(topic)
    }

    /// Drops the cached metadata of `topic`, so its next request fetches fresh metadata.
    pub(crate) fn forget_leaders(&self, topic: &str) {
        self.router.forget(topic);
    }

    /// One lookup: cached metadata, or fresh metadata when the topic is not cached.
    pub(crate) async fn lookup_leader(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<PartitionLeader, ClientError> {
        if let Some(found) = self.router.cached_leader(topic, partition) {
            return found;
        }
        self.refresh_metadata(&[topic]).await?;
        self.router
            .cached_leader(topic, partition)
            .unwrap_or_else(|| {
                Err(ClientError::Broker {
                    topic: topic.to_owned(),
                    partition: Some(partition),
                    code: ErrorCode::UnknownTopicOrPartition,
                    message: "the Metadata answer does not describe the topic".to_owned(),
                })
            })
    }

    /// Runs `call` against the leader of `topic`/`partition`. When the leader cannot be found
    /// or `call` fails with an error that [needs a metadata
    /// refresh](ClientError::needs_metadata_refresh), forgets the topic's metadata, backs off
    /// and tries again (with fresh metadata) until the retry timeout; then returns the last
    /// error. Other errors are returned at once.
    pub(crate) async fn on_leader<T, F, Fut>(
        &self,
        topic: &str,
        partition: i32,
        mut call: F,
    ) -> Result<T, ClientError>
    where
        F: FnMut(PartitionLeader) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let started = tokio::time::Instant::now();
        let mut retry = 0;
        loop {
            let result = match self.lookup_leader(topic, partition).await {
                Ok(leader) => call(leader).await,
                Err(error) => Err(error),
            };
            let error = match result {
                Ok(value) => return Ok(value),
                Err(error) if error.needs_metadata_refresh() => error,
                Err(error) => return Err(error),
            };
            retry += 1;
            let Some(delay) = self.retry.delay_before(retry, started.elapsed()) else {
                return Err(error);
            };
            tracing::debug!(topic, partition, retry, %error, "refreshing metadata and retrying");
            self.forget_leaders(topic);
            tokio::time::sleep(delay).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use tributary_record::Record;

    use crate::fake_broker::FakeBroker;
    use crate::{Acks, Client, ErrorCode, OffsetSpec};

    fn records(values: &[&str]) -> Vec<Record> {
        values
            .iter()
            .map(|value| Record {
                key: None,
                value: Some(Bytes::copy_from_slice(value.as_bytes())),
                timestamp: 7,
                headers: vec![],
            })
            .collect()
    }

    #[tokio::test]
    async fn partition_requests_go_to_the_leader() {
        let (addresses, brokers) = FakeBroker::start_cluster(3).await;
        brokers[0].create("t", 3);
        brokers[0].set_leader("t", 1, 2);
        brokers[0].set_leader("t", 2, 3);
        // Bootstrap through broker 3, which leads partition 2 only.
        let client = Client::connect(&addresses[2]).await.unwrap();
        for partition in 0..3 {
            let leader = client.leader_for("t", partition).await.unwrap();
            assert_eq!(leader.broker_id(), partition + 1);
            assert_eq!(
                leader.address(),
                format!("http://{}", addresses[partition as usize])
            );
            let ack = client
                .produce("t", partition, &records(&["a", "b"]), Acks::Leader)
                .await
                .unwrap();
            assert_eq!((ack.base_offset, ack.last_offset), (0, 1));
            let fetched = client.fetch("t", partition, 1, 1 << 20, 0).await.unwrap();
            assert_eq!(fetched.records[0].value.as_deref(), Some(&b"b"[..]));
            let decoded = client
                .fetch_decoded("t", partition, 0, 1 << 20, 0)
                .await
                .unwrap();
            assert_eq!(decoded.records.len(), 2);
            let latest = client
                .list_offsets("t", partition, OffsetSpec::Latest)
                .await
                .unwrap();
            assert_eq!(latest.offset, Some(2));
        }
        for broker in 1..=3 {
            assert_eq!(brokers[0].produce_requests_by(broker), 1, "broker {broker}");
        }
    }

    #[tokio::test]
    async fn not_leader_refreshes_metadata_and_retries_on_the_new_leader() {
        let (addresses, brokers) = FakeBroker::start_cluster(2).await;
        brokers[0].create("t", 1);
        let client = Client::connect(&addresses[0]).await.unwrap();
        client
            .produce_structured("t", 0, &records(&["a"]), Acks::All)
            .await
            .unwrap();
        assert_eq!(client.leader_for("t", 0).await.unwrap().broker_id(), 1);

        brokers[0].set_leader("t", 0, 2);
        let ack = client
            .produce_structured("t", 0, &records(&["b"]), Acks::All)
            .await
            .unwrap();
        assert_eq!(ack.base_offset, 1);
        assert_eq!(brokers[0].produce_requests_by(1), 2, "one refused attempt");
        assert_eq!(brokers[0].produce_requests_by(2), 1);
        assert_eq!(client.leader_for("t", 0).await.unwrap().broker_id(), 2);
    }

    #[tokio::test]
    async fn retries_are_bounded_by_the_retry_timeout() {
        let (addresses, brokers) = FakeBroker::start_cluster(1).await;
        brokers[0].create("t", 1);
        // Broker 9 is not a live broker: the partition has no usable leader.
        brokers[0].set_leader("t", 0, 9);
        let client = Client::connect(&addresses[0])
            .await
            .unwrap()
            .with_retry_timeout(Duration::from_millis(400));
        assert_eq!(client.retry_timeout(), Duration::from_millis(400));
        let started = std::time::Instant::now();
        let error = client
            .produce("t", 0, &records(&["a"]), Acks::Leader)
            .await
            .unwrap_err();
        let elapsed = started.elapsed();
        assert_eq!(
            error.error_code(),
            Some(ErrorCode::LeaderNotAvailable),
            "{error}"
        );
        assert!(
            elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(3),
            "{elapsed:?}"
        );

        // No retries at all: the first answer is the result.
        let once = client.clone().with_retry_timeout(Duration::ZERO);
        let error = once
            .list_offsets("missing", 0, OffsetSpec::Latest)
            .await
            .unwrap_err();
        assert_eq!(error.error_code(), Some(ErrorCode::UnknownTopicOrPartition));
        // Errors a new leader cannot cure are not retried.
        brokers[0].set_leader("t", 0, 1);
        let error = client.fetch("t", 0, 99, 1 << 20, 0).await.unwrap_err();
        assert_eq!(error.error_code(), Some(ErrorCode::OffsetOutOfRange));
    }

    #[tokio::test]
    async fn metadata_calls_update_the_routes() {
        let (addresses, brokers) = FakeBroker::start_cluster(2).await;
        brokers[0].create("t", 1);
        brokers[0].set_leader("t", 0, 2);
        let client = Client::connect(&addresses[0]).await.unwrap();
        client.metadata(&["t"]).await.unwrap();
        let cached = client.cached_leader("t", 0).expect("cached by metadata()");
        assert_eq!(cached.broker_id(), 2);
        brokers[0].set_leader("t", 0, 1);
        client.refresh_metadata(&[]).await.unwrap();
        assert_eq!(client.cached_leader("t", 0).unwrap().broker_id(), 1);
    }
}
