//! Controller election, resignation, fencing and controller-side writes against a real
//! ZooKeeper.

mod common;

use std::time::Duration;

use common::{close, connect_ready, start_zookeeper};
use tributary_controller::zk::{
    ControllerChange, ElectionOutcome, FencedWriter, OpResult, ZkClient, ZkError, ZkOp, resign,
    try_elect, watch_controller,
};
use tributary_zk_layout::payloads::{
    ControllerRegistration, IsrChangeNotification, PartitionState, Payload, TopicAssignment,
    TopicPartitionRef, decode_controller_epoch,
};
use tributary_zk_layout::{BrokerId, ControllerEpoch, LeaderEpoch, PartitionId, ZkVersion, paths};

async fn controller_epoch(client: &ZkClient) -> (ControllerEpoch, ZkVersion) {
    let (data, stat) = client
        .get(paths::controller_epoch())
        .await
        .expect("read epoch");
    (
        decode_controller_epoch(&data).expect("decode epoch"),
        stat.version,
    )
}

fn elected(outcome: ElectionOutcome) -> (ControllerEpoch, ZkVersion) {
    match outcome {
        ElectionOutcome::Elected {
            epoch,
            epoch_zk_version,
        } => (epoch, epoch_zk_version),
        other => panic!("expected Elected, got {other:?}"),
    }
}

#[tokio::test]
async fn two_candidates_race_one_wins_and_failover_bumps_the_epoch() {
    let zookeeper = start_zookeeper();
    let a = connect_ready(&zookeeper, "/tributary").await;
    let b = connect_ready(&zookeeper, "/tributary").await;

    let (outcome_a, outcome_b) =
        tokio::join!(try_elect(&a, BrokerId(1)), try_elect(&b, BrokerId(2)));
    let (outcome_a, outcome_b) = (outcome_a.expect("a"), outcome_b.expect("b"));
    let (winner, winner_id, loser, loser_id, won, lost) = match (outcome_a, outcome_b) {
        (ElectionOutcome::Elected { .. }, ElectionOutcome::Follower { .. }) => {
            (a, BrokerId(1), b, BrokerId(2), outcome_a, outcome_b)
        }
        (ElectionOutcome::Follower { .. }, ElectionOutcome::Elected { .. }) => {
            (b, BrokerId(2), a, BrokerId(1), outcome_b, outcome_a)
        }
        other => panic!("exactly one candidate must win: {other:?}"),
    };
    assert_eq!(
        elected(won),
        (ControllerEpoch(1), ZkVersion(1)),
        "epoch goes 0 -> 1"
    );
    assert_eq!(
        lost,
        ElectionOutcome::Follower {
            controller_id: winner_id
        }
    );
    assert_eq!(
        controller_epoch(&loser).await,
        (ControllerEpoch(1), ZkVersion(1))
    );
    assert_eq!(
        loser.get(paths::controller_epoch()).await.expect("get").0,
        b"1"
    );

    let (registration, stat) = loser
        .get_payload::<ControllerRegistration>(paths::controller())
        .await
        .expect("controller payload");
    assert_eq!(
        (registration.version, registration.broker_id),
        (1, winner_id)
    );
    assert_eq!(stat.ephemeral_owner, winner.session_id());

    // Electing again while holding it changes nothing.
    assert_eq!(try_elect(&winner, winner_id).await.expect("again"), won);

    // The follower watches /controller; the winner's clean close deletes it.
    let (current, change) = watch_controller(&loser).await.expect("watch");
    assert_eq!(current, Some(winner_id));
    close(winner).await;
    let change = tokio::time::timeout(Duration::from_secs(5), change)
        .await
        .expect("watch fired");
    assert_eq!(change, ControllerChange::Deleted);

    let outcome = try_elect(&loser, loser_id).await.expect("re-elect");
    assert_eq!(
        elected(outcome),
        (ControllerEpoch(2), ZkVersion(2)),
        "failover: epoch 2"
    );
    close(loser).await;
}

#[tokio::test]
async fn watch_reports_creation_of_the_controller() {
    let zookeeper = start_zookeeper();
    let watcher = connect_ready(&zookeeper, "/tributary").await;
    let candidate = connect_ready(&zookeeper, "/tributary").await;
    let (current, change) = watch_controller(&watcher).await.expect("watch");
    assert_eq!(current, None);
    elected(try_elect(&candidate, BrokerId(7)).await.expect("elect"));
    let change = tokio::time::timeout(Duration::from_secs(5), change)
        .await
        .expect("watch fired");
    assert_eq!(change, ControllerChange::Created);
    close(watcher).await;
    close(candidate).await;
}

#[tokio::test]
async fn a_stale_controller_cannot_write_and_resign_only_deletes_our_own_node() {
    let zookeeper = start_zookeeper();
    let old = connect_ready(&zookeeper, "/tributary").await;
    let new = connect_ready(&zookeeper, "/tributary").await;

    let (old_epoch, old_version) = elected(try_elect(&old, BrokerId(1)).await.expect("elect old"));
    let old_writer = FencedWriter::new(old.clone(), old_epoch, old_version);

    // The current controller creates a topic's partition state.
    let topic = "orders";
    old.create_persistent(&paths::topic(topic), b"{}")
        .await
        .expect("topic node");
    let state = |leader: i32, epoch: i32, controller: ControllerEpoch| {
        PartitionState::new(
            BrokerId(leader),
            LeaderEpoch(epoch),
            vec![BrokerId(1), BrokerId(2)],
            controller,
        )
    };
    let versions = old_writer
        .create_partition_states(
            topic,
            &[
                (PartitionId(0), state(1, 0, old_epoch)),
                (PartitionId(1), state(2, 0, old_epoch)),
            ],
        )
        .await
        .expect("create partition states");
    assert_eq!(versions, vec![ZkVersion(0), ZkVersion(0)]);
    let state_path = paths::partition_state(topic, PartitionId(0));
    let (created, _) = old
        .get_payload::<PartitionState>(&state_path)
        .await
        .expect("state");
    assert_eq!(created, state(1, 0, old_epoch));

    // The old controller is superseded while its session lives on (as after a long GC pause
    // or SIGSTOP): it resigns, a new one is elected with a higher epoch.
    assert!(resign(&old, old_version).await.expect("resign"));
    assert!(
        !resign(&old, old_version).await.expect("resign twice"),
        "nothing left to delete"
    );
    let (new_epoch, new_version) = elected(try_elect(&new, BrokerId(2)).await.expect("elect new"));
    assert_eq!(new_epoch, ControllerEpoch(2));
    // A resign with the stale version must not delete the new controller's node.
    assert!(!resign(&old, old_version).await.expect("stale resign"));
    assert!(
        new.exists(paths::controller())
            .await
            .expect("stat")
            .is_some()
    );

    // The stale controller's write fails as a whole and changes nothing.
    let (before, before_stat) = old.get(&state_path).await.expect("read");
    let stale = old_writer
        .set_partition_state(topic, PartitionId(0), &state(2, 1, old_epoch), ZkVersion(0))
        .await;
    assert!(
        matches!(stale, Err(ZkError::ControllerMoved { expected_epoch_zk_version }) if expected_epoch_zk_version == old_version),
        "{stale:?}"
    );
    let stale_multi = old_writer
        .write(vec![
            ZkOp::create(paths::partition(topic, PartitionId(9)), Vec::new()),
            ZkOp::set(&state_path, b"garbage".to_vec(), None),
        ])
        .await;
    assert!(
        matches!(stale_multi, Err(ZkError::ControllerMoved { .. })),
        "{stale_multi:?}"
    );
    let (after, after_stat) = old.get(&state_path).await.expect("read");
    assert_eq!(
        (after, after_stat.version),
        (before, before_stat.version),
        "znode unchanged"
    );
    assert!(
        old.exists(&paths::partition(topic, PartitionId(9)))
            .await
            .expect("stat")
            .is_none()
    );

    // The current controller's conditional write succeeds; a wrong expected version is
    // BadVersion on the state path, not ControllerMoved.
    let new_writer = FencedWriter::new(new.clone(), new_epoch, new_version);
    let written = new_writer
        .set_partition_state(topic, PartitionId(0), &state(2, 1, new_epoch), ZkVersion(0))
        .await
        .expect("current controller writes");
    assert_eq!(written, ZkVersion(1));
    let conflict = new_writer
        .set_partition_state(topic, PartitionId(0), &state(1, 2, new_epoch), ZkVersion(0))
        .await;
    assert!(
        matches!(&conflict, Err(ZkError::BadVersion { path }) if *path == state_path),
        "{conflict:?}"
    );
    let (now, _) = new
        .get_payload::<PartitionState>(&state_path)
        .await
        .expect("state");
    assert_eq!(now, state(2, 1, new_epoch));

    // A session closes when its last clone goes: the writers hold clones.
    drop(old_writer);
    close(old).await;
    drop(new_writer);
    close(new).await;
}

#[tokio::test]
async fn fenced_deletes_of_topics_and_notifications() {
    let zookeeper = start_zookeeper();
    let client = connect_ready(&zookeeper, "/tributary").await;
    let (epoch, version) = elected(try_elect(&client, BrokerId(1)).await.expect("elect"));
    let writer = FencedWriter::new(client.clone(), epoch, version);

    // A topic as the admin path writes it, plus its deletion request.
    let topic = "doomed";
    let assignment = TopicAssignment::new(
        [
            (PartitionId(0), vec![BrokerId(1)]),
            (PartitionId(1), vec![BrokerId(1)]),
        ]
        .into(),
        "AAAAAAAAAAAAAAAAAAAAAA".to_owned(),
    );
    client
        .create_persistent(&paths::topic_config(topic), br#"{"version":1,"config":{}}"#)
        .await
        .expect("config");
    client
        .create_persistent(&paths::topic(topic), &assignment.encode())
        .await
        .expect("topic");
    client
        .create_persistent(&paths::delete_topic(topic), b"")
        .await
        .expect("delete request");
    let states: Vec<_> = (0..2)
        .map(|p| {
            (
                PartitionId(p),
                PartitionState::new(BrokerId(1), LeaderEpoch(0), vec![BrokerId(1)], epoch),
            )
        })
        .collect();
    writer
        .create_partition_states(topic, &states)
        .await
        .expect("states");
    assert_eq!(
        client
            .children(&paths::topic_partitions(topic))
            .await
            .expect("children"),
        ["0", "1"]
    );

    writer
        .delete_topic_znodes(topic)
        .await
        .expect("delete topic znodes");
    for path in [
        paths::topic(topic),
        paths::topic_config(topic),
        paths::delete_topic(topic),
    ] {
        assert!(
            client.exists(&path).await.expect("stat").is_none(),
            "{path} survived"
        );
    }
    // Idempotent.
    writer
        .delete_topic_znodes(topic)
        .await
        .expect("second delete");

    // ISR change notifications: sequential children, deleted after processing.
    let notification =
        IsrChangeNotification::new(vec![TopicPartitionRef::new("orders", PartitionId(0))]);
    let created = client
        .create_sequential(paths::isr_change_prefix(), &notification.encode())
        .await
        .expect("notification");
    let suffix = created
        .strip_prefix(paths::isr_change_prefix())
        .unwrap_or_default();
    assert!(
        suffix.len() == 10 && suffix.bytes().all(|b| b.is_ascii_digit()),
        "{created}"
    );
    let names = client
        .children(paths::isr_change_notification())
        .await
        .expect("children");
    assert_eq!(names.len(), 1);
    writer
        .delete_children(paths::isr_change_notification(), &names)
        .await
        .expect("delete");
    writer
        .delete_children(paths::isr_change_notification(), &names)
        .await
        .expect("again is a no-op");
    assert!(
        client
            .children(paths::isr_change_notification())
            .await
            .expect("children")
            .is_empty()
    );

    // Sequential create and set through the fenced multi report their results.
    let results = writer
        .write(vec![
            ZkOp::Create {
                path: paths::config_change_prefix().to_owned(),
                data: br#"{"version":2,"entity_path":"topics/orders"}"#.to_vec(),
                kind: tributary_controller::zk::CreateKind::PersistentSequential,
            },
            ZkOp::set(paths::brokers_seqid(), Vec::new(), None),
        ])
        .await
        .expect("write");
    assert!(
        matches!(&results[0], OpResult::Created { path } if path.starts_with("/config/changes/config_change_")),
        "{results:?}"
    );
    assert!(
        matches!(&results[1], OpResult::Set { stat } if stat.version == ZkVersion(1)),
        "{results:?}"
    );

    drop(writer);
    close(client).await;
}

#[tokio::test]
async fn session_state_watcher_reports_close() {
    let zookeeper = start_zookeeper();
    let client = connect_ready(&zookeeper, "").await;
    let watcher = client.session_state_watcher();
    assert_eq!(client.chroot(), "/");
    close(client).await;
    assert!(watcher.peek_state().is_terminated());
}

#[tokio::test]
async fn a_lost_election_reply_is_recognised_as_a_win() {
    let zookeeper = start_zookeeper();
    let client = connect_ready(&zookeeper, "/tributary").await;
    let rival = connect_ready(&zookeeper, "/tributary").await;
    client
        .create_persistent(paths::controller_epoch(), b"0")
        .await
        .expect("initial epoch");

    // Our election multi applied on the server but its reply never arrived: exactly the writes
    // `try_elect` makes, sent on our session.
    let ours = ControllerRegistration::new(BrokerId(1), 1).encode();
    client
        .multi(&[
            ZkOp::Create {
                path: paths::controller().to_owned(),
                data: ours,
                kind: tributary_controller::zk::CreateKind::Ephemeral,
            },
            ZkOp::set(paths::controller_epoch(), b"1".to_vec(), Some(ZkVersion(0))),
        ])
        .await
        .expect("the 'lost' election");

    // The retry sees /controller naming us on our session, and the epoch we wrote: elected,
    // without bumping the epoch a second time.
    let outcome = try_elect(&client, BrokerId(1)).await.expect("retry");
    assert_eq!(elected(outcome), (ControllerEpoch(1), ZkVersion(1)));
    assert_eq!(
        controller_epoch(&client).await,
        (ControllerEpoch(1), ZkVersion(1))
    );

    // A broker with the same id on another session (a restarted broker whose old session has
    // not expired yet) is not fooled into thinking it is the controller.
    assert_eq!(
        try_elect(&rival, BrokerId(1)).await.expect("rival"),
        ElectionOutcome::Follower {
            controller_id: BrokerId(1)
        }
    );
    close(client).await;
    close(rival).await;
}
