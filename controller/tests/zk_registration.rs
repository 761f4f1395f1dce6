//! Start-up paths, cluster id and broker registration against a real ZooKeeper.

mod common;

use std::time::{Duration, Instant};

use common::{close, connect, connect_ready, connect_root, start_zookeeper};
use tributary_controller::zk::{ZkError, create_or_get_cluster_id, live_brokers, register_broker};
use tributary_zk_layout::payloads::{BrokerRegistration, EndPoint};
use tributary_zk_layout::{BrokerEpoch, BrokerId, paths};

fn registration(port: u16) -> BrokerRegistration {
    BrokerRegistration::new(
        &[EndPoint::plaintext("127.0.0.1", port)],
        None,
        1_610_264_776_275,
    )
}

#[tokio::test]
async fn persistent_paths_are_created_under_a_missing_chroot_idempotently() {
    let zookeeper = start_zookeeper();
    let client = connect(&zookeeper, "/tributary/cluster-a").await;
    client
        .ensure_persistent_paths()
        .await
        .expect("first ensure");
    client
        .ensure_persistent_paths()
        .await
        .expect("second ensure is a no-op");

    let root = connect_root(&zookeeper).await;
    assert!(
        root.exists("/tributary/cluster-a")
            .await
            .expect("stat")
            .is_some()
    );
    for path in paths::PERSISTENT_PATHS {
        let absolute = format!("/tributary/cluster-a{path}");
        let stat = root.exists(&absolute).await.expect("stat");
        assert!(stat.is_some(), "{absolute} missing");
        // Created empty, as Kafka does.
        let (data, _) = root.get(&absolute).await.expect("get");
        assert!(data.is_empty(), "{absolute} has data");
    }
    // Nothing leaked outside the chroot.
    assert!(root.exists("/brokers").await.expect("stat").is_none());
    close(client).await;
    close(root).await;
}

#[tokio::test]
async fn concurrent_ensures_tolerate_each_other() {
    let zookeeper = start_zookeeper();
    let a = connect(&zookeeper, "/race").await;
    let b = connect(&zookeeper, "/race").await;
    let (ra, rb) = tokio::join!(a.ensure_persistent_paths(), b.ensure_persistent_paths());
    ra.expect("a");
    rb.expect("b");
    close(a).await;
    close(b).await;
}

#[tokio::test]
async fn cluster_id_is_created_once_and_read_back_by_others() {
    let zookeeper = start_zookeeper();
    let first = connect_ready(&zookeeper, "/tributary").await;
    let second = connect_ready(&zookeeper, "/tributary").await;

    let id = create_or_get_cluster_id(&first, "Vw3v5QnGRWqSg6V1m4QpVg")
        .await
        .expect("create");
    assert_eq!(id, "Vw3v5QnGRWqSg6V1m4QpVg");
    let again = create_or_get_cluster_id(&second, "someOtherProposedIdxxxx")
        .await
        .expect("get");
    assert_eq!(again, id, "the second broker adopts the existing id");

    let (data, _) = second.get(paths::cluster_id()).await.expect("get");
    assert_eq!(data, br#"{"version":"1","id":"Vw3v5QnGRWqSg6V1m4QpVg"}"#);
    close(first).await;
    close(second).await;
}

#[tokio::test]
async fn broker_registration_epoch_ownership_and_clean_close() {
    let zookeeper = start_zookeeper();
    let first = connect_ready(&zookeeper, "/tributary").await;
    let id = BrokerId(1);
    let path = paths::broker_id(id);

    let epoch = register_broker(&first, id, &registration(9092))
        .await
        .expect("register");

    // Byte for byte Kafka's v5 format.
    let (data, stat) = first.get(&path).await.expect("get registration");
    assert_eq!(
        String::from_utf8_lossy(&data),
        r#"{"features":{},"listener_security_protocol_map":{"PLAINTEXT":"PLAINTEXT"},"endpoints":["PLAINTEXT://127.0.0.1:9092"],"jmx_port":-1,"port":9092,"host":"127.0.0.1","version":5,"timestamp":"1610264776275"}"#
    );
    assert_eq!(
        epoch,
        BrokerEpoch(stat.czxid),
        "the broker epoch is the czxid"
    );
    assert_eq!(stat.ephemeral_owner, first.session_id());
    assert_eq!(
        stat.version.0, 1,
        "created empty, then set once in the same multi"
    );

    // Registering again on the same session (a retry after a lost reply) is ours: same epoch.
    let retried = register_broker(&first, id, &registration(9092))
        .await
        .expect("re-register");
    assert_eq!(retried, epoch);

    // Another session with the same id is refused.
    let second = connect_ready(&zookeeper, "/tributary").await;
    match register_broker(&second, id, &registration(9093)).await {
        Err(ZkError::BrokerIdInUse { id: in_use }) => assert_eq!(in_use, id),
        other => panic!("expected BrokerIdInUse, got {other:?}"),
    }

    let live = live_brokers(&second).await.expect("live brokers");
    assert_eq!(live.len(), 1);
    assert_eq!((live[0].0, live[0].1), (id, epoch));

    // A clean close removes the ephemeral at once (not after the session timeout).
    let closed_at = Instant::now();
    close(first).await;
    wait_until_absent(&second, &path, Duration::from_secs(2)).await;
    assert!(closed_at.elapsed() < Duration::from_secs(2));

    // The id is free again, with a larger epoch.
    let new_epoch = register_broker(&second, id, &registration(9093))
        .await
        .expect("register");
    assert!(
        new_epoch > epoch,
        "{new_epoch:?} should be larger than {epoch:?}"
    );
    close(second).await;
}

async fn wait_until_absent(
    client: &tributary_controller::zk::ZkClient,
    path: &str,
    limit: Duration,
) {
    let deadline = Instant::now() + limit;
    while client.exists(path).await.expect("stat").is_some() {
        assert!(
            Instant::now() < deadline,
            "{path} still exists after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn losing_the_server_is_reported_as_disconnected_and_requests_are_retriable() {
    let mut zookeeper = start_zookeeper();
    let client = connect_ready(&zookeeper, "/tributary").await;
    let mut states = client.session_state_watcher();
    zookeeper.kill9().expect("kill ZooKeeper");

    let state = tokio::time::timeout(Duration::from_secs(10), states.changed())
        .await
        .expect("a state change within the connection timeout");
    assert_eq!(state, tributary_controller::zk::SessionState::Disconnected);
    let err = client
        .get(paths::broker_ids())
        .await
        .expect_err("no server");
    assert!(err.is_retriable() || err.is_session_lost(), "{err:?}");
    assert!(err.to_string().contains("/brokers/ids"), "{err}");
    // No server to send CloseSession to: just drop the handle.
    drop(client);
}

/// Sends a job-control signal (`STOP`, `CONT`) to the ZooKeeper server.
fn signal(zookeeper: &tributary_integration_tests::ZooKeeper, name: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg(zookeeper.pid().to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} failed");
}

#[tokio::test]
async fn after_session_expiry_a_new_session_re_registers_with_a_larger_epoch() {
    let zookeeper = start_zookeeper();
    // 1 s sessions (the harness server allows 500 ms): the client gives up on its session after
    // about that long without a server.
    let connect = format!("{}/tributary", zookeeper.connect_string());
    let client = tributary_controller::zk::ZkClient::connect(&connect, Duration::from_secs(1))
        .await
        .expect("connect");
    client.ensure_persistent_paths().await.expect("paths");
    let id = BrokerId(5);
    let epoch = register_broker(&client, id, &registration(9092))
        .await
        .expect("register");
    let mut states = client.session_state_watcher();

    // Freeze the server past the session timeout: the client cannot reconnect in time and
    // declares the session expired; when the server resumes it expires the session too.
    signal(&zookeeper, "STOP");
    let state = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            let state = states.changed().await;
            if state.is_terminated() {
                return state;
            }
        }
    })
    .await;
    signal(&zookeeper, "CONT");
    assert_eq!(
        state.ok(),
        Some(tributary_controller::zk::SessionState::Expired)
    );
    let err = client.get(paths::broker_ids()).await.expect_err("expired");
    assert!(err.is_session_lost(), "{err:?}");
    drop(client);

    // Recovery: a new client (new session) registers again once the server has dropped the old
    // ephemeral; the epoch grows.
    let fresh = connect_ready(&zookeeper, "/tributary").await;
    wait_until_absent(&fresh, &paths::broker_id(id), Duration::from_secs(10)).await;
    let new_epoch = register_broker(&fresh, id, &registration(9092))
        .await
        .expect("re-register");
    assert!(new_epoch > epoch);
    close(fresh).await;
}
