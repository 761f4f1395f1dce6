//! The coordinator on one broker without ZooKeeper: role changes of a one-partition
//! `__consumer_offsets` load and drop the shard, commits are stored in the log and survive a
//! reload, refused commits append nothing; groups are listed, described, deleted and expired,
//! and stay so after a reload.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::watch;
use tributary_zk_layout::{BrokerId, ControllerEpoch, LeaderEpoch, ZkVersion};

use super::*;
use crate::log::TopicPartition;
use crate::metadata_cache::{CachedBroker, CachedPartition};
use crate::replica::LeaderAndIsrState;
use crate::server::control_tests::{ME, broker};
use crate::state::BrokerState;

fn offsets_tp() -> TopicPartition {
    TopicPartition::new(OFFSETS_TOPIC, 0)
}

fn leadership(leader: i32, leader_epoch: i32) -> LeaderAndIsrState {
    LeaderAndIsrState {
        controller_epoch: ControllerEpoch(1),
        leader: BrokerId(leader),
        leader_epoch: LeaderEpoch(leader_epoch),
        isr: vec![BrokerId(ME)],
        replicas: vec![BrokerId(ME), BrokerId(2)],
        zk_version: ZkVersion(leader_epoch),
    }
}

/// The metadata cache knows this broker, a one-partition `__consumer_offsets` it leads and a
/// data topic `t` with two partitions.
fn describe_cluster(state: &BrokerState) {
    let partition = CachedPartition {
        leader: ME,
        leader_epoch: 0,
        isr: vec![ME],
        replicas: vec![ME],
        offline_replicas: vec![],
        zk_version: 0,
    };
    state.metadata.apply(
        BTreeMap::from([(
            ME,
            CachedBroker {
                host: "127.0.0.1".into(),
                port: 9092,
                rack: None,
                epoch: None,
            },
        )]),
        vec![
            (offsets_tp(), partition.clone()),
            (TopicPartition::new("t", 0), partition.clone()),
            (TopicPartition::new("t", 1), partition),
        ],
        &[],
    );
}

fn entry(partition: i32, offset: i64, metadata: &str) -> CommitEntry {
    CommitEntry {
        topic: "t".into(),
        partition,
        offset,
        leader_epoch: Some(3),
        metadata: metadata.into(),
    }
}

fn simple_commit(group: &str, entries: Vec<CommitEntry>) -> CommitRequest {
    CommitRequest {
        group_id: group.into(),
        generation: -1,
        member_id: String::new(),
        entries,
    }
}

/// Waits until the group's shard answers (loaded).
async fn loaded(state: &BrokerState, group: &str) {
    for _ in 0..500 {
        match fetch(state, group, None) {
            Err(GroupError::LoadInProgress { .. } | GroupError::NotCoordinator { .. }) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            _ => return,
        }
    }
    panic!("the shard never loaded");
}

fn offsets_of(state: &BrokerState, group: &str) -> Vec<(String, i32, i64, String)> {
    fetch(state, group, None)
        .unwrap()
        .into_iter()
        .map(|(topic, partition, committed)| {
            let committed = committed.unwrap();
            (topic, partition, committed.offset, committed.metadata)
        })
        .collect()
}

fn log_end(state: &BrokerState) -> i64 {
    state
        .replicas
        .get(&offsets_tp())
        .unwrap()
        .log()
        .log_end_offset()
}

#[tokio::test]
async fn commits_are_stored_refusals_change_nothing_and_a_new_leadership_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let state = broker(&dir);
    describe_cluster(&state);
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(run(
        state.clone(),
        state.replicas.subscribe_roles(),
        stopped,
    ));

    assert!(matches!(
        fetch(&state, "app", None),
        Err(GroupError::NotCoordinator { .. })
    ));
    state
        .replicas
        .make_leader(&offsets_tp(), leadership(ME, 1), Default::default())
        .unwrap();
    loaded(&state, "app").await;
    assert!(fetch(&state, "app", None).unwrap().is_empty());

    let outcomes = commit(
        &state,
        &simple_commit(
            "app",
            vec![entry(0, 10, "first"), entry(1, 20, ""), {
                let mut unknown = entry(7, 1, "");
                unknown.topic = "nope".into();
                unknown
            }],
        ),
    )
    .await
    .unwrap();
    assert!(outcomes[0].is_ok() && outcomes[1].is_ok());
    assert!(matches!(
        outcomes[2],
        Err(EntryRefusal::UnknownTopicOrPartition { .. })
    ));
    assert_eq!(log_end(&state), 2, "one record per committed partition");
    let too_long = "x".repeat(4097);
    let outcomes = commit(
        &state,
        &simple_commit("app", vec![entry(0, 11, "second"), entry(1, 99, &too_long)]),
    )
    .await
    .unwrap();
    assert!(outcomes[0].is_ok());
    assert!(matches!(
        outcomes[1],
        Err(EntryRefusal::MetadataTooLarge {
            size: 4097,
            max: 4096,
            ..
        })
    ));
    let committed = vec![
        ("t".to_owned(), 0, 11, "second".to_owned()),
        ("t".to_owned(), 1, 20, String::new()),
    ];
    assert_eq!(offsets_of(&state, "app"), committed);
    let asked = fetch(&state, "app", Some(&[("t".into(), 1), ("t".into(), 5)])).unwrap();
    assert_eq!(asked[0].2.as_ref().map(|c| c.offset), Some(20));
    assert_eq!(asked[1].2, None, "nothing committed for t-5");

    // A generation or a member the group does not have: refused, nothing appended.
    let end = log_end(&state);
    for (generation, member) in [(0, ""), (4, "m1"), (-1, "m1")] {
        let request = CommitRequest {
            generation,
            member_id: member.into(),
            ..simple_commit("app", vec![entry(0, 500, "")])
        };
        let result = commit(&state, &request).await;
        if generation < 0 {
            // Kafka accepts generation -1 on an Empty group whatever the member id.
            result.unwrap();
            continue;
        }
        assert!(
            matches!(result, Err(GroupError::UnknownMember { .. })),
            "{result:?}"
        );
    }
    assert_eq!(
        log_end(&state),
        end + 1,
        "only the accepted commit appended"
    );
    let request = CommitRequest {
        generation: 2,
        ..simple_commit("never-seen", vec![entry(0, 1, "")])
    };
    assert!(matches!(
        commit(&state, &request).await,
        Err(GroupError::IllegalGeneration { received: 2, .. })
    ));
    assert_eq!(log_end(&state), end + 1);
    assert!(fetch(&state, "never-seen", None).unwrap().is_empty());
    assert!(matches!(
        commit(&state, &simple_commit("", vec![])).await,
        Err(GroupError::InvalidGroupId { .. })
    ));

    // Losing the leadership drops the cache; leading again reloads it from the log.
    state
        .replicas
        .make_follower(&offsets_tp(), leadership(2, 2), Default::default())
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(matches!(
        commit(&state, &simple_commit("app", vec![entry(0, 1, "")])).await,
        Err(GroupError::NotCoordinator { .. } | GroupError::LoadInProgress { .. })
    ));
    state
        .replicas
        .make_leader(&offsets_tp(), leadership(ME, 3), Default::default())
        .unwrap();
    loaded(&state, "app").await;
    assert_eq!(
        offsets_of(&state, "app"),
        vec![
            ("t".to_owned(), 0, 500, String::new()),
            ("t".to_owned(), 1, 20, String::new()),
        ]
    );

    let _ = stop.send(true);
    task.await.unwrap();
}

/// One member joins `group` (protocol "consumer", subscribed to `t`) from `/10.1.2.3` and
/// gets t-0 and t-1: returns its member id and generation once the group is Stable.
async fn join_alone(state: &std::sync::Arc<BrokerState>, group: &str) -> (String, i32) {
    use prost::Message;
    let subscription = tributary_proto::v1::ConsumerSubscription {
        topics: vec!["t".into()],
        owned_partitions: vec![],
        generation: -1,
        user_data: bytes::Bytes::new(),
    };
    let mut request = JoinRequest {
        member_id: String::new(),
        group_instance_id: String::new(),
        client_id: "worker".into(),
        client_host: "/10.1.2.3".into(),
        session_timeout_ms: 30_000,
        rebalance_timeout_ms: 30_000,
        protocol_type: CONSUMER_PROTOCOL_TYPE.into(),
        protocols: vec![("range".into(), subscription.encode_to_vec().into())],
    };
    let Err(GroupError::MemberIdRequired { member_id, .. }) =
        join_group(state, group, request.clone()).await
    else {
        panic!("a first join gets an id");
    };
    request.member_id = member_id.clone();
    let joined = join_group(state, group, request).await.unwrap();
    let assignment = tributary_proto::v1::ConsumerAssignment {
        partitions: vec![tributary_proto::v1::ConsumerTopicPartitions {
            topic: "t".into(),
            partitions: vec![0, 1],
        }],
        user_data: bytes::Bytes::new(),
    };
    sync_group(
        state,
        group,
        &member_id,
        joined.generation,
        vec![(member_id.clone(), assignment.encode_to_vec().into())],
    )
    .await
    .unwrap();
    (member_id, joined.generation)
}

fn listed(state: &BrokerState) -> Vec<(String, String, &'static str)> {
    let listing = list_groups(state, &[]);
    assert!(listing.loading.is_empty());
    listing
        .groups
        .into_iter()
        .map(|g| (g.group_id, g.protocol_type, g.state.name()))
        .collect()
}

const DAY_MS: i64 = 24 * 3600 * 1000;

#[tokio::test]
async fn groups_are_listed_described_deleted_and_expired_and_stay_so_after_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let state = crate::server::control_tests::broker_with(
        &dir,
        &[
            ("group.initial.rebalance.delay.ms", "0"),
            ("group.min.session.timeout.ms", "1000"),
        ],
    );
    describe_cluster(&state);
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(run(
        state.clone(),
        state.replicas.subscribe_roles(),
        stopped,
    ));
    state
        .replicas
        .make_leader(&offsets_tp(), leadership(ME, 1), Default::default())
        .unwrap();
    loaded(&state, "busy").await;

    // "busy" has a member that committed t-0; "idle" only simple commits.
    let (member, generation) = join_alone(&state, "busy").await;
    let request = CommitRequest {
        generation,
        member_id: member.clone(),
        ..simple_commit("busy", vec![entry(0, 7, "")])
    };
    commit(&state, &request).await.unwrap();
    commit(&state, &simple_commit("idle", vec![entry(1, 3, "")]))
        .await
        .unwrap();
    assert_eq!(
        listed(&state),
        [
            ("busy".into(), "consumer".into(), "Stable"),
            ("idle".into(), "".into(), "Empty"),
        ]
    );
    assert_eq!(list_groups(&state, &[GroupState::Empty]).groups.len(), 1);

    let busy = describe_group(&state, "busy").unwrap();
    assert_eq!(
        (busy.state, busy.protocol.as_str(), busy.leader.as_str()),
        (GroupState::Stable, "range", member.as_str())
    );
    assert_eq!(busy.members.len(), 1);
    assert_eq!(
        (
            busy.members[0].client_id.as_str(),
            busy.members[0].client_host.as_str()
        ),
        ("worker", "/10.1.2.3")
    );
    assert!(!busy.members[0].assignment.is_empty());
    assert_eq!(
        describe_group(&state, "nobody").unwrap().state,
        GroupState::Dead
    );
    assert!(matches!(
        describe_group(&state, ""),
        Err(GroupError::InvalidGroupId { .. })
    ));

    // Deletion: refused with members or for an unknown group, done for an empty one.
    let end = log_end(&state);
    assert!(matches!(
        delete_group(&state, "busy").await,
        Err(GroupError::NonEmptyGroup { members: 1, .. })
    ));
    assert!(matches!(
        delete_group(&state, "nobody").await,
        Err(GroupError::GroupIdNotFound { .. })
    ));
    assert_eq!(log_end(&state), end, "refusals append nothing");
    delete_group(&state, "idle").await.unwrap();
    assert_eq!(
        log_end(&state),
        end + 2,
        "an offset and the group tombstoned"
    );
    assert!(fetch(&state, "idle", None).unwrap().is_empty());
    assert_eq!(
        describe_group(&state, "idle").unwrap().state,
        GroupState::Dead
    );
    assert!(matches!(
        delete_group(&state, "idle").await,
        Err(GroupError::GroupIdNotFound { .. })
    ));
    assert_eq!(
        listed(&state),
        [("busy".into(), "consumer".into(), "Stable")]
    );

    // Expiry: a Stable group keeps the offsets of topics it subscribes to, however old.
    let now = crate::state::now_ms();
    assert_eq!(
        expire_partition(&state, 0, now + 30 * DAY_MS),
        Expired::default()
    );
    // Once Empty, its offsets go 7 days (offsets.retention.minutes) after it became Empty.
    leave_group(&state, "busy", &member).unwrap();
    for _ in 0..100 {
        if describe_group(&state, "busy").unwrap().state == GroupState::Empty {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let emptied = crate::state::now_ms();
    assert_eq!(
        listed(&state),
        [("busy".into(), "consumer".into(), "Empty")]
    );
    assert_eq!(
        expire_partition(&state, 0, now + 7 * DAY_MS - 1),
        Expired::default()
    );
    assert_eq!(offsets_of(&state, "busy").len(), 1);
    let end = log_end(&state);
    assert_eq!(
        expire_partition(&state, 0, emptied + 7 * DAY_MS + 1000),
        Expired {
            offsets: 1,
            groups: 1
        }
    );
    assert_eq!(log_end(&state), end + 2);
    assert!(listed(&state).is_empty());
    assert!(fetch(&state, "busy", None).unwrap().is_empty());

    // A new coordinator reading the log finds neither group.
    state
        .replicas
        .make_follower(&offsets_tp(), leadership(2, 2), Default::default())
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    state
        .replicas
        .make_leader(&offsets_tp(), leadership(ME, 3), Default::default())
        .unwrap();
    loaded(&state, "busy").await;
    assert!(listed(&state).is_empty());
    assert!(fetch(&state, "busy", None).unwrap().is_empty());
    assert!(fetch(&state, "idle", None).unwrap().is_empty());

    let _ = stop.send(true);
    task.await.unwrap();
}
