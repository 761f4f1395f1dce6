//! Shared set-up for the tests against a real ZooKeeper (the harness's standalone server).

#![allow(dead_code)]

use std::time::Duration;

use tributary_controller::zk::ZkClient;
use tributary_integration_tests::ZooKeeper;

/// Short sessions, within the harness server's 500 ms minimum, so expiry is quick.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(4);
/// How long a clean close may take (measured: a few ms).
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

pub fn start_zookeeper() -> ZooKeeper {
    ZooKeeper::start().expect("start ZooKeeper")
}

/// A client whose chroot is `chroot` (e.g. `/tributary`), which need not exist yet.
pub async fn connect(zookeeper: &ZooKeeper, chroot: &str) -> ZkClient {
    let connect = format!("{}{chroot}", zookeeper.connect_string());
    ZkClient::connect(&connect, SESSION_TIMEOUT)
        .await
        .expect("connect to ZooKeeper")
}

/// A client on the whole tree (no chroot), to look at what a chrooted client wrote.
pub async fn connect_root(zookeeper: &ZooKeeper) -> ZkClient {
    ZkClient::connect(&zookeeper.connect_string(), SESSION_TIMEOUT)
        .await
        .expect("connect")
}

/// Connects and ensures the persistent paths under `chroot`.
pub async fn connect_ready(zookeeper: &ZooKeeper, chroot: &str) -> ZkClient {
    let client = connect(zookeeper, chroot).await;
    client
        .ensure_persistent_paths()
        .await
        .expect("ensure persistent paths");
    client
}

pub async fn close(client: ZkClient) {
    assert!(
        client.close(CLOSE_TIMEOUT).await,
        "session did not close cleanly"
    );
}
