//! The coordinator on one broker without ZooKeeper: role changes of a one-partition
//! `__consumer_offsets` load and drop the shard, commits are stored in the log and survive a
//! reload, refused commits append nothing.

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
