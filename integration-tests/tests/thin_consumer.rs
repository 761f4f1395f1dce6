//! Streaming consume for thin clients (`GroupConsumer.ConsumeStream`) on real brokers: two
//! streams, each on its own broker, split four partitions and together receive every record
//! once; no stream ever receives more records than its credit; commits through the stream are
//! what OffsetFetch reads; closing one stream hands its partitions, at the committed offsets, to
//! the other. And the refusals: a first message that is not a Subscribe, an empty group id, an
//! unknown topic, a malformed Commit, a Commit of a partition the stream does not own.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use support::cluster::{LIMIT, create, start_cluster_with};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Streaming};
use tributary_client::{Acks, Client};
use tributary_integration_tests::{Broker, ZooKeeper};
use tributary_proto::v1::consume_client_message::Message as ClientMessage;
use tributary_proto::v1::consume_server_message::Message as ServerMessage;
use tributary_proto::v1::group_consumer_client::GroupConsumerClient;
use tributary_proto::v1::{
    ConsumeClientMessage, ConsumeCommit, ConsumeCommitResult, ConsumeCredit, ConsumeOffset,
    ConsumeOffsetReset, ConsumeServerMessage, ConsumeSubscribe, ErrorCode,
};
use tributary_record::Record;

const TOPIC: &str = "thin";
const PARTITIONS: i32 = 4;
const GROUP: &str = "thin-group";

/// Short group timers so rebalances take well under a second.
const BROKER_OVERRIDES: &[(&str, &str)] = &[
    ("group.min.session.timeout.ms", "1000"),
    ("group.initial.rebalance.delay.ms", "300"),
    ("offsets.topic.num.partitions", "5"),
];

/// One open stream, with what it has received and the credit it granted.
struct Thin {
    name: &'static str,
    requests: Option<mpsc::Sender<ConsumeClientMessage>>,
    responses: Streaming<ConsumeServerMessage>,
    granted: u64,
    /// (partition, offset) of every record received, in order.
    records: Vec<(i32, i64)>,
    last_sequence: u64,
    /// The latest Assignment: generation and partitions of TOPIC.
    generation: i32,
    assigned: BTreeSet<i32>,
    commit_results: Vec<ConsumeCommitResult>,
}

fn message(message: ClientMessage) -> ConsumeClientMessage {
    ConsumeClientMessage {
        message: Some(message),
    }
}

fn subscribe(group: &str, topics: &[&str], credit: u32) -> ClientMessage {
    ClientMessage::Subscribe(ConsumeSubscribe {
        group_id: group.to_owned(),
        topics: topics.iter().map(|t| (*t).to_owned()).collect(),
        session_timeout_ms: 3000,
        rebalance_timeout_ms: 10_000,
        auto_offset_reset: ConsumeOffsetReset::Earliest as i32,
        initial_credit: credit,
        client_id: "thin-test".to_owned(),
    })
}

/// Opens a stream on `broker` and sends `first`.
async fn open(broker: &Broker, name: &'static str, first: ClientMessage) -> Thin {
    let (tx, rx) = mpsc::channel(16);
    tx.send(message(first))
        .await
        .expect("queue the first message");
    let mut service = GroupConsumerClient::new(broker.channel().expect("channel"));
    let responses = service
        .consume_stream(ReceiverStream::new(rx))
        .await
        .expect("ConsumeStream")
        .into_inner();
    let granted = 0;
    Thin {
        name,
        requests: Some(tx),
        responses,
        granted,
        records: Vec::new(),
        last_sequence: 0,
        generation: -1,
        assigned: BTreeSet::new(),
        commit_results: Vec::new(),
    }
}

impl Thin {
    async fn send(&mut self, message: ClientMessage) {
        if let ClientMessage::Credit(credit) = &message {
            self.granted += u64::from(credit.records);
        }
        self.requests
            .as_ref()
            .expect("open")
            .send(self::message(message))
            .await
            .expect("send");
    }

    /// Reads one message and records it; checks the credit on every Records message.
    async fn next(&mut self) -> Option<ServerMessage> {
        let message = tokio::time::timeout(LIMIT, self.responses.message())
            .await
            .unwrap_or_else(|_| panic!("{}: no message within {LIMIT:?}", self.name))
            .unwrap_or_else(|status| panic!("{}: stream failed: {status}", self.name))?;
        let inner = message.message.expect("a server message names its kind");
        match &inner {
            ServerMessage::Assignment(assignment) => {
                self.generation = assignment.generation_id;
                self.assigned = assignment
                    .assigned
                    .iter()
                    .filter(|t| t.topic == TOPIC)
                    .flat_map(|t| t.partitions.iter().copied())
                    .collect();
            }
            ServerMessage::Records(records) => {
                assert!(
                    !records.records.is_empty(),
                    "{}: an empty Records",
                    self.name
                );
                assert_eq!(
                    records.sequence,
                    self.last_sequence + 1,
                    "{}: sequences count up by one",
                    self.name
                );
                self.last_sequence = records.sequence;
                assert!(self.assigned.contains(&records.partition));
                self.records.extend(
                    records
                        .records
                        .iter()
                        .map(|r| (records.partition, r.offset)),
                );
                assert!(
                    self.records.len() as u64 <= self.granted,
                    "{}: {} records received with only {} granted",
                    self.name,
                    self.records.len(),
                    self.granted
                );
            }
            ServerMessage::CommitResult(result) => self.commit_results.push(result.clone()),
        }
        Some(inner)
    }

    /// Reads until `done` holds.
    async fn until(&mut self, what: &str, done: impl Fn(&Thin) -> bool) {
        while !done(self) {
            if self.next().await.is_none() {
                panic!("{}: the stream ended while waiting for {what}", self.name);
            }
        }
    }

    /// Commits through the last sequence received and returns the result.
    async fn commit_all(&mut self) -> ConsumeCommitResult {
        let through = self.last_sequence;
        self.commit(ConsumeCommit {
            through_sequence: through,
            offsets: vec![],
        })
        .await
    }

    async fn commit(&mut self, commit: ConsumeCommit) -> ConsumeCommitResult {
        let before = self.commit_results.len();
        self.send(ClientMessage::Commit(commit)).await;
        self.until("a CommitResult", |t| t.commit_results.len() > before)
            .await;
        self.commit_results.last().cloned().expect("just received")
    }

    /// Closes the client's side and reads the stream to its end; returns the final status.
    async fn close(mut self) -> tonic::Status {
        self.requests = None;
        loop {
            match tokio::time::timeout(LIMIT, self.responses.message())
                .await
                .expect("the stream ends after the client closes")
            {
                Ok(Some(_)) => {}
                Ok(None) => return tonic::Status::ok(""),
                Err(status) => return status,
            }
        }
    }
}

async fn produce(client: &Client, range: std::ops::Range<i64>) {
    for partition in 0..PARTITIONS {
        let records: Vec<Record> = range
            .clone()
            .map(|i| Record {
                key: Some(Bytes::from(format!("k{i}"))),
                value: Some(Bytes::from(format!("p{partition}-{i}"))),
                timestamp: 1_700_000_000_000,
                headers: vec![],
            })
            .collect();
        client
            .produce(TOPIC, partition, &records, Acks::All)
            .await
            .expect("produce");
    }
}

async fn committed(client: &Client) -> BTreeMap<i32, Option<i64>> {
    support::client_reads::committed_offsets(client, GROUP, TOPIC, PARTITIONS)
        .await
        .into_iter()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thin_streams_split_the_partitions_within_their_credit_and_hand_over_on_close() {
    let zookeeper = ZooKeeper::start().expect("zookeeper");
    let brokers = start_cluster_with(&zookeeper, &[1, 2], BROKER_OVERRIDES).await;
    create(&brokers[0], TOPIC, PARTITIONS, 2).await;
    let client = Client::connect(&brokers[0].bootstrap_server())
        .await
        .expect("connect")
        .with_retry_timeout(LIMIT);
    produce(&client, 0..10).await;

    // Without credit nothing is delivered, so nothing read in a short-lived first generation
    // can be delivered twice: wait until both streams are in one generation, split 2/2.
    let mut a = open(&brokers[0], "a", subscribe(GROUP, &[TOPIC], 0)).await;
    let mut b = open(&brokers[1], "b", subscribe(GROUP, &[TOPIC], 0)).await;
    a.until("an assignment", |t| t.generation >= 0).await;
    b.until("an assignment", |t| t.generation >= 0).await;
    while a.generation != b.generation || a.assigned.len() + b.assigned.len() != 4 {
        if a.generation < b.generation || a.assigned.len() == 4 {
            a.next().await.expect("a open");
        } else {
            b.next().await.expect("b open");
        }
    }
    assert_eq!((a.assigned.len(), b.assigned.len()), (2, 2));
    assert!(a.assigned.is_disjoint(&b.assigned));

    // Credit 3: exactly three records (the credit check in `next` catches a fourth before the
    // CommitResult, which the server sends after everything it pushed earlier).
    a.send(ClientMessage::Credit(ConsumeCredit { records: 3 }))
        .await;
    a.until("3 records", |t| t.records.len() == 3).await;
    let result = a.commit_all().await;
    assert_eq!(result.error_code, ErrorCode::None as i32, "{result:?}");
    assert_eq!(a.records.len(), 3);
    let mut expected_offsets: BTreeMap<i32, i64> = BTreeMap::new();
    for (partition, offset) in &a.records {
        expected_offsets.insert(*partition, offset + 1);
    }
    let reported: BTreeMap<i32, i64> = result
        .offsets
        .iter()
        .map(|o| (o.partition, o.offset))
        .collect();
    assert_eq!(
        reported, expected_offsets,
        "the offsets after what was delivered"
    );
    let offsets = committed(&client).await;
    for (partition, offset) in &expected_offsets {
        assert_eq!(offsets[partition], Some(*offset));
    }

    // Enough credit for everything: together they read every record exactly once.
    a.send(ClientMessage::Credit(ConsumeCredit { records: 1000 }))
        .await;
    b.send(ClientMessage::Credit(ConsumeCredit { records: 1000 }))
        .await;
    a.until("20 records", |t| t.records.len() == 20).await;
    b.until("20 records", |t| t.records.len() == 20).await;
    let mut all: Vec<(i32, i64)> = a.records.iter().chain(&b.records).copied().collect();
    all.sort_unstable();
    let expected: Vec<(i32, i64)> = (0..PARTITIONS)
        .flat_map(|p| (0..10).map(move |o| (p, o)))
        .collect();
    assert_eq!(all, expected, "every record once");
    for (stream, owner) in [(&a, &a.assigned), (&b, &b.assigned)] {
        assert!(stream.records.iter().all(|(p, _)| owner.contains(p)));
    }
    for stream in [&mut a, &mut b] {
        let result = stream.commit_all().await;
        assert_eq!(result.error_code, ErrorCode::None as i32, "{result:?}");
        assert_eq!(result.offsets.len(), 2);
        assert!(result.offsets.iter().all(|o| o.offset == 10), "{result:?}");
    }
    let offsets = committed(&client).await;
    assert!(offsets.values().all(|o| *o == Some(10)), "{offsets:?}");

    // A commit of a partition the stream does not own commits nothing.
    let foreign = *b.assigned.first().unwrap();
    let result = a
        .commit(ConsumeCommit {
            through_sequence: 0,
            offsets: vec![ConsumeOffset {
                topic: TOPIC.to_owned(),
                partition: foreign,
                offset: 0,
            }],
        })
        .await;
    assert_eq!(
        result.error_code,
        ErrorCode::UnknownTopicOrPartition as i32,
        "{result:?}"
    );
    assert_eq!(committed(&client).await[&foreign], Some(10));

    // Closing `a` leaves the group: `b` gets all four partitions, from the committed offsets.
    let status = a.close().await;
    assert_eq!(status.code(), Code::Ok, "{status}");
    b.until("all four partitions", |t| t.assigned.len() == 4)
        .await;
    produce(&client, 10..15).await;
    b.until("the 20 new records", |t| t.records.len() == 40)
        .await;
    let mut new: Vec<(i32, i64)> = b.records[20..].to_vec();
    new.sort_unstable();
    let expected: Vec<(i32, i64)> = (0..PARTITIONS)
        .flat_map(|p| (10..15).map(move |o| (p, o)))
        .collect();
    assert_eq!(new, expected, "nothing read twice, nothing skipped");
    let result = b.commit_all().await;
    assert_eq!(result.error_code, ErrorCode::None as i32, "{result:?}");
    let offsets = committed(&client).await;
    assert!(offsets.values().all(|o| *o == Some(15)), "{offsets:?}");
    assert_eq!(b.close().await.code(), Code::Ok);
}

/// Opens a stream with `first` and returns its final status.
async fn refused(broker: &Broker, first: ClientMessage) -> tonic::Status {
    let mut stream = open(broker, "refused", first).await;
    match tokio::time::timeout(LIMIT, stream.responses.message())
        .await
        .expect("an answer")
    {
        Err(status) => status,
        Ok(other) => panic!("expected a final status, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_streams_end_with_a_status() {
    let zookeeper = ZooKeeper::start().expect("zookeeper");
    let brokers = start_cluster_with(&zookeeper, &[1], BROKER_OVERRIDES).await;
    let broker = &brokers[0];
    create(broker, TOPIC, PARTITIONS, 1).await;

    let status = refused(broker, ClientMessage::Credit(ConsumeCredit { records: 5 })).await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status}");
    assert!(status.message().contains("Subscribe"), "{status}");

    let status = refused(broker, subscribe("", &[TOPIC], 1)).await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status}");
    assert!(status.message().contains("group id"), "{status}");

    let status = refused(broker, subscribe(GROUP, &[], 1)).await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status}");

    let status = refused(broker, subscribe(GROUP, &[TOPIC, "no-such-topic"], 1)).await;
    assert_eq!(status.code(), Code::NotFound, "{status}");
    assert!(status.message().contains("no-such-topic"), "{status}");

    // A Commit naming neither a sequence nor offsets, after a valid Subscribe.
    let mut stream = open(broker, "bad-commit", subscribe(GROUP, &[TOPIC], 0)).await;
    stream.until("an assignment", |t| t.generation >= 0).await;
    stream
        .send(ClientMessage::Commit(ConsumeCommit::default()))
        .await;
    let status = loop {
        match tokio::time::timeout(LIMIT, stream.responses.message())
            .await
            .expect("an answer")
        {
            Ok(Some(_)) => {}
            Ok(None) => panic!("the stream ended OK after a malformed Commit"),
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), Code::InvalidArgument, "{status}");
    assert!(status.message().contains("Commit"), "{status}");
}
