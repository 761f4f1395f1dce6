//! An in-process broker for unit tests: the generated `Broker` and `Admin` services over an
//! in-memory log per partition, served by tonic on 127.0.0.1:0. Only what the client's code
//! paths need: no replication, no retention, HW = LEO.
//!
//! Several fake brokers can share one state ([`FakeBroker::start_cluster`]): they then share
//! the logs, but each serves produce, fetch and offset lookups only for the partitions it leads
//! ([`FakeBroker::set_leader`]; broker 1 by default) and answers `NOT_LEADER_OR_FOLLOWER` for
//! the others, like a real cluster whose leaders move.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use tokio::sync::Notify;
use tonic::{Request, Response, Status};
use tributary_proto::v1 as pb;
use tributary_proto::v1::admin_server::{Admin, AdminServer};
use tributary_proto::v1::broker_server::{Broker, BrokerServer};
use tributary_record::{BatchBuilder, BatchIter, Record, set_base_offset};

#[derive(Debug, Default)]
struct PartitionLog {
    /// (base offset, stamped batch bytes)
    batches: Vec<(i64, Bytes)>,
    log_end: i64,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    /// topic -> partitions
    topics: HashMap<String, Vec<PartitionLog>>,
    /// Produce requests received (for assertions).
    pub(crate) produce_requests: usize,
    /// topic -> config overrides
    configs: HashMap<String, std::collections::BTreeMap<String, String>>,
    /// The last `timeout_ms` of an admin request (for assertions).
    pub(crate) last_admin_timeout_ms: i32,
    /// Produce requests received, per broker id.
    produce_requests_by: HashMap<i32, usize>,
    /// Produce streams being served (for assertions).
    pub(crate) open_produce_streams: usize,
    /// (topic, partition) -> leader; absent = broker 1.
    leaders: HashMap<(String, i32), i32>,
    /// Broker id -> the address it serves on (what Metadata advertises).
    brokers: std::collections::BTreeMap<i32, std::net::SocketAddr>,
}

impl State {
    fn leader_of(&self, topic: &str, partition: i32) -> i32 {
        self.leaders
            .get(&(topic.to_owned(), partition))
            .copied()
            .unwrap_or(1)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct FakeBroker {
    /// This broker's id (1, 2, ...).
    id: i32,
    pub(crate) state: Arc<Mutex<State>>,
    appended: Arc<Notify>,
}

fn code(code: pb::ErrorCode) -> i32 {
    code as i32
}

impl FakeBroker {
    /// Serves broker 1 on 127.0.0.1:0 and returns the address and the broker (for inspecting
    /// state).
    pub(crate) async fn start() -> (String, FakeBroker) {
        let (mut addresses, mut brokers) = FakeBroker::start_cluster(1).await;
        (addresses.remove(0), brokers.remove(0))
    }

    /// Serves brokers 1..=`count` sharing one state; returns their addresses and handles.
    pub(crate) async fn start_cluster(count: i32) -> (Vec<String>, Vec<FakeBroker>) {
        let state = Arc::new(Mutex::new(State::default()));
        let appended = Arc::new(Notify::new());
        let mut addresses = Vec::new();
        let mut brokers = Vec::new();
        for id in 1..=count {
            let broker = FakeBroker {
                id,
                state: Arc::clone(&state),
                appended: Arc::clone(&appended),
            };
            let address = broker.serve().await;
            state.lock().unwrap().brokers.insert(id, address);
            addresses.push(address.to_string());
            brokers.push(broker);
        }
        (addresses, brokers)
    }

    /// Makes `broker` the leader of `topic`/`partition`.
    pub(crate) fn set_leader(&self, topic: &str, partition: i32, broker: i32) {
        let mut state = self.state.lock().unwrap();
        state.leaders.insert((topic.to_owned(), partition), broker);
    }

    /// Produce requests broker `broker` received.
    pub(crate) fn produce_requests_by(&self, broker: i32) -> usize {
        let state = self.state.lock().unwrap();
        state.produce_requests_by.get(&broker).copied().unwrap_or(0)
    }

    async fn serve(&self) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let broker = self.clone();
        let server = tonic::transport::Server::builder()
            .add_service(
                BrokerServer::new(broker.clone())
                    .max_decoding_message_size(crate::MAX_MESSAGE_SIZE)
                    .max_encoding_message_size(crate::MAX_MESSAGE_SIZE),
            )
            .add_service(AdminServer::new(broker.clone()))
            .serve_with_incoming(
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            );
        tokio::spawn(server);
        address
    }

    /// `NOT_LEADER_OR_FOLLOWER` with the leader named, if this broker does not lead.
    fn not_leader(&self, state: &State, topic: &str, partition: i32) -> Option<(i32, String)> {
        let leader = state.leader_of(topic, partition);
        (leader != self.id).then(|| {
            (
                code(pb::ErrorCode::NotLeaderOrFollower),
                format!("broker {} is not the leader; broker {leader} is", self.id),
            )
        })
    }

    pub(crate) fn create(&self, topic: &str, partitions: usize) {
        let mut state = self.state.lock().unwrap();
        state.topics.insert(
            topic.to_owned(),
            (0..partitions).map(|_| PartitionLog::default()).collect(),
        );
    }

    fn handle_produce(&self, request: pb::ProduceRequest) -> pb::ProduceResponse {
        let mut state = self.state.lock().unwrap();
        state.produce_requests += 1;
        *state.produce_requests_by.entry(self.id).or_default() += 1;
        let mut topics = Vec::new();
        for topic in request.topics {
            let mut partitions = Vec::new();
            for data in topic.partitions {
                let mut result = pb::PartitionProduceResponse {
                    partition: data.partition,
                    error_code: 0,
                    error_message: String::new(),
                    base_offset: -1,
                    last_offset: -1,
                    log_append_time_ms: -1,
                    log_start_offset: 0,
                };
                if state.topics.contains_key(&topic.topic)
                    && let Some((error_code, message)) =
                        self.not_leader(&state, &topic.topic, data.partition)
                {
                    result.error_code = error_code;
                    result.error_message = message;
                    partitions.push(result);
                    continue;
                }
                let Some(log) = state
                    .topics
                    .get_mut(&topic.topic)
                    .and_then(|p| p.get_mut(data.partition as usize))
                else {
                    result.error_code = code(pb::ErrorCode::UnknownTopicOrPartition);
                    result.error_message = "no such partition".into();
                    partitions.push(result);
                    continue;
                };
                let raw = if data.records.is_empty() {
                    data.batches
                } else {
                    let mut builder = BatchBuilder::new();
                    for r in &data.records {
                        builder.push(&Record {
                            key: r.key.clone(),
                            value: r.value.clone(),
                            timestamp: r.timestamp_ms.unwrap_or(42),
                            headers: r
                                .headers
                                .iter()
                                .map(|h| tributary_record::Header {
                                    key: h.key.clone(),
                                    value: h.value.clone(),
                                })
                                .collect(),
                        });
                    }
                    builder.build()
                };
                let base = log.log_end;
                for item in BatchIter::new(&raw) {
                    let (header, slice) = item.unwrap();
                    let mut stamped = slice.to_vec();
                    set_base_offset(&mut stamped, log.log_end);
                    log.batches.push((log.log_end, Bytes::from(stamped)));
                    log.log_end += i64::from(header.last_offset_delta) + 1;
                }
                if request.acks != 0 {
                    result.base_offset = base;
                    result.last_offset = log.log_end - 1;
                }
                partitions.push(result);
            }
            topics.push(pb::TopicProduceResponse {
                topic: topic.topic,
                partitions,
            });
        }
        self.appended.notify_waiters();
        pb::ProduceResponse {
            request_id: request.request_id,
            topics,
        }
    }

    fn read(&self, request: &pb::FetchRequest) -> (pb::FetchResponse, usize) {
        let state = self.state.lock().unwrap();
        let mut total = 0;
        let mut topics = Vec::new();
        for topic in &request.topics {
            let mut partitions = Vec::new();
            for p in &topic.partitions {
                let mut result = pb::PartitionFetchResponse {
                    partition: p.partition,
                    ..Default::default()
                };
                let not_leader = state
                    .topics
                    .contains_key(&topic.topic)
                    .then(|| self.not_leader(&state, &topic.topic, p.partition))
                    .flatten();
                if let Some((error_code, message)) = not_leader {
                    result.error_code = error_code;
                    result.error_message = message;
                    partitions.push(result);
                    continue;
                }
                match state
                    .topics
                    .get(&topic.topic)
                    .and_then(|parts| parts.get(p.partition as usize))
                {
                    None => {
                        result.error_code = code(pb::ErrorCode::UnknownTopicOrPartition);
                        result.error_message = "no such partition".into();
                    }
                    Some(log) if p.fetch_offset > log.log_end => {
                        result.error_code = code(pb::ErrorCode::OffsetOutOfRange);
                        result.error_message =
                            format!("offset {} > {}", p.fetch_offset, log.log_end);
                    }
                    Some(log) => {
                        result.high_watermark = log.log_end;
                        result.log_end_offset = log.log_end;
                        let mut out = Vec::new();
                        for (base, batch) in &log.batches {
                            let header = tributary_record::BatchHeader::parse(batch).unwrap();
                            if header.last_offset() < p.fetch_offset {
                                continue;
                            }
                            let _ = base;
                            if !out.is_empty()
                                && out.len() + batch.len() > p.partition_max_bytes as usize
                            {
                                break;
                            }
                            out.extend_from_slice(batch);
                        }
                        total += out.len();
                        if request.format == pb::RecordFormat::Decoded as i32 {
                            let mut records = Vec::new();
                            let bytes = Bytes::from(out);
                            let mut position = 0;
                            for item in BatchIter::new(&bytes) {
                                let (_, slice) = item.unwrap();
                                let batch = bytes.slice(position..position + slice.len());
                                position += slice.len();
                                for r in tributary_record::decode_records(&batch).unwrap() {
                                    records.push(pb::ConsumedRecord {
                                        offset: r.offset,
                                        timestamp_ms: r.timestamp,
                                        timestamp_type: 0,
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
                                        leader_epoch: 0,
                                    });
                                }
                            }
                            result.records = records;
                        } else {
                            result.batches = Bytes::from(out);
                        }
                    }
                }
                partitions.push(result);
            }
            topics.push(pb::TopicFetchResponse {
                topic: topic.topic.clone(),
                partitions,
            });
        }
        (
            pb::FetchResponse {
                request_id: request.request_id,
                topics,
            },
            total,
        )
    }

    async fn handle_fetch(&self, request: pb::FetchRequest) -> pb::FetchResponse {
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(request.max_wait_ms.max(0) as u64);
        loop {
            let notified = self.appended.notified();
            let (response, bytes) = self.read(&request);
            if bytes > 0 || tokio::time::Instant::now() >= deadline {
                return response;
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }
}

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl Broker for FakeBroker {
    async fn produce(
        &self,
        request: Request<pb::ProduceRequest>,
    ) -> Result<Response<pb::ProduceResponse>, Status> {
        Ok(Response::new(self.handle_produce(request.into_inner())))
    }

    type ProduceStreamStream = ResponseStream<pb::ProduceResponse>;

    async fn produce_stream(
        &self,
        request: Request<tonic::Streaming<pb::ProduceRequest>>,
    ) -> Result<Response<Self::ProduceStreamStream>, Status> {
        let mut requests = request.into_inner();
        let broker = self.clone();
        broker.state.lock().unwrap().open_produce_streams += 1;
        let stream = async_stream(move |sender| async move {
            let mut result = Ok(());
            loop {
                let request = match requests.message().await {
                    Ok(Some(request)) => request,
                    Ok(None) => break,
                    Err(status) => {
                        result = Err(status);
                        break;
                    }
                };
                if sender
                    .send(Ok(broker.handle_produce(request)))
                    .await
                    .is_err()
                {
                    break;
                }
            }
            broker.state.lock().unwrap().open_produce_streams -= 1;
            result
        });
        Ok(Response::new(stream))
    }

    async fn fetch(
        &self,
        request: Request<pb::FetchRequest>,
    ) -> Result<Response<pb::FetchResponse>, Status> {
        Ok(Response::new(self.handle_fetch(request.into_inner()).await))
    }

    type FetchStreamStream = ResponseStream<pb::FetchResponse>;

    async fn fetch_stream(
        &self,
        request: Request<tonic::Streaming<pb::FetchRequest>>,
    ) -> Result<Response<Self::FetchStreamStream>, Status> {
        let mut requests = request.into_inner();
        let broker = self.clone();
        let stream = async_stream(move |sender| async move {
            while let Some(request) = requests.message().await? {
                if request.max_bytes < 0 {
                    return Err(Status::invalid_argument("max_bytes must not be negative"));
                }
                if sender
                    .send(Ok(broker.handle_fetch(request).await))
                    .await
                    .is_err()
                {
                    break;
                }
            }
            Ok(())
        });
        Ok(Response::new(stream))
    }

    async fn list_offsets(
        &self,
        request: Request<pb::ListOffsetsRequest>,
    ) -> Result<Response<pb::ListOffsetsResponse>, Status> {
        let state = self.state.lock().unwrap();
        let mut topics = Vec::new();
        for topic in request.into_inner().topics {
            let mut partitions = Vec::new();
            for p in topic.partitions {
                let mut result = pb::ListOffsetsPartitionResponse {
                    partition: p.partition,
                    offset: -1,
                    timestamp: -1,
                    ..Default::default()
                };
                let not_leader = state
                    .topics
                    .contains_key(&topic.topic)
                    .then(|| self.not_leader(&state, &topic.topic, p.partition))
                    .flatten();
                if let Some((error_code, message)) = not_leader {
                    result.error_code = error_code;
                    result.error_message = message;
                    partitions.push(result);
                    continue;
                }
                match state
                    .topics
                    .get(&topic.topic)
                    .and_then(|parts| parts.get(p.partition as usize))
                {
                    None => result.error_code = code(pb::ErrorCode::UnknownTopicOrPartition),
                    Some(_) if p.timestamp == -2 => result.offset = 0,
                    Some(log) if p.timestamp == -1 => result.offset = log.log_end,
                    Some(log) => {
                        // Timestamp lookup over decoded records (fine for tests).
                        'batches: for (_, batch) in &log.batches {
                            for r in tributary_record::decode_records(batch).unwrap() {
                                if r.timestamp >= p.timestamp {
                                    result.offset = r.offset;
                                    result.timestamp = r.timestamp;
                                    break 'batches;
                                }
                            }
                        }
                    }
                }
                partitions.push(result);
            }
            topics.push(pb::ListOffsetsTopicResponse {
                topic: topic.topic,
                partitions,
            });
        }
        Ok(Response::new(pb::ListOffsetsResponse { topics }))
    }

    async fn offset_for_leader_epoch(
        &self,
        _request: Request<pb::OffsetForLeaderEpochRequest>,
    ) -> Result<Response<pb::OffsetForLeaderEpochResponse>, Status> {
        Err(Status::unimplemented(
            "the fake broker has no leader epochs",
        ))
    }

    async fn init_producer_id(
        &self,
        _request: Request<pb::InitProducerIdRequest>,
    ) -> Result<Response<pb::InitProducerIdResponse>, Status> {
        Err(Status::unimplemented("the fake broker has no producer ids"))
    }

    async fn metadata(
        &self,
        request: Request<pb::MetadataRequest>,
    ) -> Result<Response<pb::MetadataResponse>, Status> {
        let requested = request.into_inner().topics;
        let state = self.state.lock().unwrap();
        let names: Vec<String> = if requested.is_empty() {
            state.topics.keys().cloned().collect()
        } else {
            requested
        };
        let topics = names
            .into_iter()
            .map(|name| match state.topics.get(&name) {
                Some(parts) => pb::TopicMetadata {
                    partitions: (0..parts.len() as i32)
                        .map(|p| partition_metadata(p, state.leader_of(&name, p)))
                        .collect(),
                    is_internal: name.starts_with("__"),
                    topic: name,
                    ..Default::default()
                },
                None => pb::TopicMetadata {
                    topic: name,
                    error_code: code(pb::ErrorCode::UnknownTopicOrPartition),
                    error_message: "unknown topic".into(),
                    ..Default::default()
                },
            })
            .collect();
        Ok(Response::new(pb::MetadataResponse {
            cluster_id: "fake-cluster".into(),
            controller_id: 1,
            brokers: state
                .brokers
                .iter()
                .map(|(&id, address)| pb::BrokerInfo {
                    id,
                    host: address.ip().to_string(),
                    port: i32::from(address.port()),
                    rack: None,
                    broker_epoch: None,
                })
                .collect(),
            topics,
            controller_epoch: 1,
        }))
    }
}

fn partition_metadata(partition: i32, leader: i32) -> pb::PartitionMetadata {
    pb::PartitionMetadata {
        partition,
        error_code: 0,
        leader,
        leader_epoch: 0,
        replicas: vec![leader],
        isr: vec![leader],
        offline_replicas: vec![],
    }
}

#[tonic::async_trait]
impl Admin for FakeBroker {
    async fn create_topics(
        &self,
        request: Request<pb::CreateTopicsRequest>,
    ) -> Result<Response<pb::CreateTopicsResponse>, Status> {
        let request = request.into_inner();
        let mut results = Vec::new();
        for topic in request.topics {
            let exists = self.state.lock().unwrap().topics.contains_key(&topic.name);
            let partitions = if topic.num_partitions == 0 {
                1
            } else {
                topic.num_partitions
            };
            if exists {
                results.push(pb::CreateTopicResult {
                    name: topic.name,
                    error_code: code(pb::ErrorCode::TopicAlreadyExists),
                    error_message: "topic exists".into(),
                    ..Default::default()
                });
            } else {
                if !request.validate_only {
                    self.create(&topic.name, partitions as usize);
                }
                results.push(pb::CreateTopicResult {
                    name: topic.name,
                    num_partitions: partitions,
                    replication_factor: 1,
                    ..Default::default()
                });
            }
        }
        Ok(Response::new(pb::CreateTopicsResponse { results }))
    }

    async fn delete_topics(
        &self,
        request: Request<pb::DeleteTopicsRequest>,
    ) -> Result<Response<pb::DeleteTopicsResponse>, Status> {
        let request = request.into_inner();
        let mut state = self.state.lock().unwrap();
        state.last_admin_timeout_ms = request.timeout_ms;
        let results = request
            .topics
            .into_iter()
            .map(|name| {
                let removed = state.topics.remove(&name).is_some();
                pb::DeleteTopicResult {
                    error_code: if removed {
                        0
                    } else {
                        code(pb::ErrorCode::UnknownTopicOrPartition)
                    },
                    error_message: if removed {
                        String::new()
                    } else {
                        "unknown topic".into()
                    },
                    name,
                }
            })
            .collect();
        Ok(Response::new(pb::DeleteTopicsResponse { results }))
    }

    async fn describe_topics(
        &self,
        request: Request<pb::DescribeTopicsRequest>,
    ) -> Result<Response<pb::DescribeTopicsResponse>, Status> {
        let requested = request.into_inner().topics;
        let state = self.state.lock().unwrap();
        let names: Vec<String> = if requested.is_empty() {
            state.topics.keys().cloned().collect()
        } else {
            requested
        };
        let topics = names
            .into_iter()
            .map(|name| match state.topics.get(&name) {
                Some(parts) => pb::TopicDescription {
                    partitions: (0..parts.len() as i32)
                        .map(|p| partition_metadata(p, state.leader_of(&name, p)))
                        .collect(),
                    name,
                    ..Default::default()
                },
                None => pb::TopicDescription {
                    name,
                    error_code: code(pb::ErrorCode::UnknownTopicOrPartition),
                    error_message: "unknown topic".into(),
                    ..Default::default()
                },
            })
            .collect();
        Ok(Response::new(pb::DescribeTopicsResponse { topics }))
    }

    async fn create_partitions(
        &self,
        request: Request<pb::CreatePartitionsRequest>,
    ) -> Result<Response<pb::CreatePartitionsResponse>, Status> {
        let request = request.into_inner();
        let mut state = self.state.lock().unwrap();
        state.last_admin_timeout_ms = request.timeout_ms;
        let mut results = Vec::new();
        for topic in request.topics {
            let (error_code, error_message) = match state.topics.get_mut(&topic.name) {
                None => (pb::ErrorCode::UnknownTopicOrPartition, "unknown topic"),
                Some(parts) if topic.count as usize <= parts.len() => {
                    (pb::ErrorCode::InvalidPartitions, "count must be larger")
                }
                Some(_) if request.validate_only => (pb::ErrorCode::None, ""),
                Some(parts) => {
                    parts.resize_with(topic.count as usize, PartitionLog::default);
                    (pb::ErrorCode::None, "")
                }
            };
            results.push(pb::CreatePartitionsResult {
                name: topic.name,
                error_code: code(error_code),
                error_message: error_message.into(),
            });
        }
        Ok(Response::new(pb::CreatePartitionsResponse { results }))
    }

    async fn describe_configs(
        &self,
        request: Request<pb::DescribeConfigsRequest>,
    ) -> Result<Response<pb::DescribeConfigsResponse>, Status> {
        let state = self.state.lock().unwrap();
        let topics = request
            .into_inner()
            .topics
            .into_iter()
            .map(|name| {
                if !state.topics.contains_key(&name) {
                    return pb::TopicConfigDescription {
                        name,
                        error_code: code(pb::ErrorCode::UnknownTopicOrPartition),
                        error_message: "unknown topic".into(),
                        ..Default::default()
                    };
                }
                let overrides = state.configs.get(&name).cloned().unwrap_or_default();
                let retention = overrides.get("retention.ms").cloned();
                pb::TopicConfigDescription {
                    entries: vec![pb::ConfigEntry {
                        name: "retention.ms".into(),
                        source: if retention.is_some() {
                            pb::ConfigSource::TopicOverride as i32
                        } else {
                            pb::ConfigSource::BrokerDefault as i32
                        },
                        value: retention.unwrap_or_else(|| "604800000".into()),
                    }],
                    overrides: overrides.into_iter().collect(),
                    name,
                    ..Default::default()
                }
            })
            .collect();
        Ok(Response::new(pb::DescribeConfigsResponse { topics }))
    }

    async fn alter_configs(
        &self,
        request: Request<pb::AlterConfigsRequest>,
    ) -> Result<Response<pb::AlterConfigsResponse>, Status> {
        let request = request.into_inner();
        let mut state = self.state.lock().unwrap();
        let mut results = Vec::new();
        for topic in request.topics {
            if !state.topics.contains_key(&topic.name) {
                results.push(pb::AlterConfigsResult {
                    name: topic.name,
                    error_code: code(pb::ErrorCode::UnknownTopicOrPartition),
                    error_message: "unknown topic".into(),
                });
                continue;
            }
            if !request.validate_only {
                let configs = state.configs.entry(topic.name.clone()).or_default();
                configs.extend(topic.set);
                configs.retain(|key, _| !topic.delete.contains(key));
            }
            results.push(pb::AlterConfigsResult {
                name: topic.name,
                ..Default::default()
            });
        }
        Ok(Response::new(pb::AlterConfigsResponse { results }))
    }

    async fn elect_leaders(
        &self,
        request: Request<pb::ElectLeadersRequest>,
    ) -> Result<Response<pb::ElectLeadersResponse>, Status> {
        let state = self.state.lock().unwrap();
        let mut requested: Vec<(String, i32)> = request
            .into_inner()
            .partitions
            .into_iter()
            .map(|p| (p.topic, p.partition))
            .collect();
        if requested.is_empty() {
            for (topic, parts) in &state.topics {
                requested.extend((0..parts.len() as i32).map(|p| (topic.clone(), p)));
            }
            requested.sort();
        }
        let partitions = requested
            .into_iter()
            .map(|(topic, partition)| {
                let known = state
                    .topics
                    .get(&topic)
                    .is_some_and(|parts| (partition as usize) < parts.len());
                pb::ElectLeadersResult {
                    topic,
                    partition,
                    error_code: code(if known {
                        pb::ErrorCode::ElectionNotNeeded
                    } else {
                        pb::ErrorCode::UnknownTopicOrPartition
                    }),
                    error_message: String::new(),
                }
            })
            .collect();
        Ok(Response::new(pb::ElectLeadersResponse {
            partitions,
            ..Default::default()
        }))
    }
}

/// A response stream fed by a spawned task (`producer` gets the sending half).
fn async_stream<T, F, Fut>(producer: F) -> ResponseStream<T>
where
    T: Send + 'static,
    F: FnOnce(tokio::sync::mpsc::Sender<Result<T, Status>>) -> Fut,
    Fut: std::future::Future<Output = Result<(), Status>> + Send + 'static,
{
    let (sender, receiver) = tokio::sync::mpsc::channel(16);
    let task = producer(sender.clone());
    tokio::spawn(async move {
        if let Err(status) = task.await {
            let _ = sender.send(Err(status)).await;
        }
    });
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(receiver))
}
