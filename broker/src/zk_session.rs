//! This broker's presence in ZooKeeper: connect (with the chroot from `zookeeper.connect`),
//! ensure the persistent paths, agree on the cluster id, register the ephemeral
//! `/brokers/ids/<id>` (its czxid is the broker epoch), and register again after a session
//! expiry.
//!
//! One task — the session keeper — owns the ZooKeeper session after start-up and publishes the
//! current session on a watch channel ([`ZkPresence::sessions`]); others read the current
//! broker epoch through [`ZkPresence::broker_epoch`].

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tributary_controller::zk::{ZkClient, ZkError, register_broker};
use tributary_zk_layout::payloads::{BrokerRegistration, EndPoint};
use tributary_zk_layout::{BrokerEpoch, BrokerId};

use crate::config::BrokerConfig;
use crate::state::now_ms;

/// Pause between attempts to re-establish a session after an expiry.
const REREGISTER_BACKOFF: Duration = Duration::from_millis(500);
/// Pause between attempts to reach ZooKeeper at start-up.
const CONNECT_BACKOFF: Duration = Duration::from_millis(200);
/// How long a clean shutdown waits for ZooKeeper to confirm the session is closed.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// What this broker tells ZooKeeper about itself.
#[derive(Debug, Clone)]
pub struct Identity {
    /// `broker.id`.
    pub broker_id: BrokerId,
    /// Advertised host.
    pub host: String,
    /// Advertised port (the bound one when configured as 0).
    pub port: u16,
    /// `broker.rack`.
    pub rack: Option<String>,
}

impl Identity {
    fn endpoint(&self) -> EndPoint {
        EndPoint::plaintext(self.host.clone(), self.port)
    }

    fn registration(&self) -> BrokerRegistration {
        BrokerRegistration::new(&[self.endpoint()], self.rack.clone(), now_ms())
    }
}

/// Connects to ZooKeeper and makes sure the tree exists. Keeps trying for
/// `zookeeper.connection.timeout.ms` (a broker started together with ZooKeeper, or during a
/// ZooKeeper restart, waits rather than failing on the first refused connection).
pub async fn connect(config: &BrokerConfig, connect: &str) -> Result<ZkClient, ZkError> {
    let session_timeout = Duration::from_millis(config.zookeeper_session_timeout_ms);
    let deadline =
        tokio::time::Instant::now() + Duration::from_millis(config.zookeeper_connection_timeout_ms);
    loop {
        let attempt = async {
            let client = ZkClient::connect(connect, session_timeout).await?;
            client.ensure_persistent_paths().await?;
            Ok::<_, ZkError>(client)
        };
        match attempt.await {
            Ok(client) => return Ok(client),
            Err(error @ ZkError::InvalidConnectString { .. }) => return Err(error),
            Err(error) if tokio::time::Instant::now() >= deadline => return Err(error),
            Err(error) => {
                tracing::info!(%error, "ZooKeeper not reachable yet; retrying");
                tokio::time::sleep(CONNECT_BACKOFF).await;
            }
        }
    }
}

/// The registered broker and the task that keeps it registered.
#[derive(Debug)]
pub struct ZkPresence {
    /// The current session; replaced after an expiry, `None` once closed.
    session: watch::Sender<Option<ZkClient>>,
    broker_epoch: Arc<AtomicI64>,
    keeper: tokio::task::JoinHandle<()>,
    stop: watch::Sender<bool>,
}

impl ZkPresence {
    /// Registers `/brokers/ids/<id>` and starts the session keeper. Fails with
    /// [`ZkError::BrokerIdInUse`] when another live broker has this id.
    pub async fn register(
        client: ZkClient,
        connect: String,
        config: BrokerConfig,
        identity: Identity,
    ) -> Result<Self, ZkError> {
        let epoch = register_at_start(&client, &identity).await?;
        tracing::info!(broker_id = %identity.broker_id, broker_epoch = epoch.0, "registered in ZooKeeper");
        let (session, _) = watch::channel(Some(client));
        let broker_epoch = Arc::new(AtomicI64::new(epoch.0));
        let (stop, stopped) = watch::channel(false);
        let keeper = tokio::spawn(keep_session(
            session.clone(),
            broker_epoch.clone(),
            connect,
            config,
            identity,
            stopped,
        ));
        Ok(Self {
            session,
            broker_epoch,
            keeper,
            stop,
        })
    }

    /// The current session, and every replacement after an expiry. Holders must drop their
    /// clones before [`close`](Self::close) for the session to end at once.
    pub fn sessions(&self) -> watch::Receiver<Option<ZkClient>> {
        self.session.subscribe()
    }

    /// The shared cell holding the current broker epoch (updated on re-registration).
    pub fn broker_epoch_cell(&self) -> Arc<AtomicI64> {
        self.broker_epoch.clone()
    }

    /// The current broker epoch (czxid of the current registration).
    pub fn broker_epoch(&self) -> BrokerEpoch {
        BrokerEpoch(self.broker_epoch.load(Ordering::Acquire))
    }

    /// Stops the keeper and closes the session, so `/brokers/ids/<id>` disappears at once
    /// rather than after the session timeout.
    pub async fn close(self) {
        let _ = self.stop.send(true);
        let _ = self.keeper.await;
        if let Some(client) = self.session.send_replace(None)
            && !client.close(CLOSE_TIMEOUT).await
        {
            tracing::warn!("ZooKeeper session did not confirm closing; it will expire instead");
        }
    }
}

/// Registers at start-up. A registration with this id held by another session that advertises
/// exactly our endpoint is this broker's previous process (killed before it could close its
/// session: nobody else can serve the port we have just bound): wait for ZooKeeper to expire it
/// rather than refuse to start. Any other holder is another live broker: refuse.
async fn register_at_start(client: &ZkClient, identity: &Identity) -> Result<BrokerEpoch, ZkError> {
    // Expiry happens within the session timeout plus one server tick; allow twice the timeout.
    let deadline = tokio::time::Instant::now() + client.session_timeout() * 2;
    let mut waiting_logged = false;
    loop {
        match register_broker(client, identity.broker_id, &identity.registration()).await {
            Err(ZkError::BrokerIdInUse { id }) => {
                let path = tributary_zk_layout::paths::broker_id(id);
                let holder = client
                    .get_payload_if_exists::<BrokerRegistration>(&path)
                    .await?;
                let Some((holder, _)) = holder else {
                    // It expired between our attempt and this read: register again now.
                    continue;
                };
                let ours = holder.parsed_endpoints() == vec![identity.endpoint()];
                if !ours || tokio::time::Instant::now() >= deadline {
                    return Err(ZkError::BrokerIdInUse { id });
                }
                if !waiting_logged {
                    tracing::info!(
                        broker_id = %id,
                        "a previous process of this broker is still registered; waiting for its session to expire"
                    );
                    waiting_logged = true;
                }
                tokio::time::sleep(REREGISTER_BACKOFF).await;
            }
            other => return other,
        }
    }
}

/// Watches the session; after an expiry (the ephemeral is gone, watches are dead) it builds a
/// new session and registers again, retrying until it succeeds or the broker stops.
async fn keep_session(
    session: watch::Sender<Option<ZkClient>>,
    broker_epoch: Arc<AtomicI64>,
    connect: String,
    config: BrokerConfig,
    identity: Identity,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let Some(mut states) = session
            .borrow()
            .as_ref()
            .map(ZkClient::session_state_watcher)
        else {
            return;
        };
        // Wait for a terminal state (Expired, Closed, AuthFailed) or shutdown.
        let expired = loop {
            tokio::select! {
                _ = stopped.changed() => return,
                state = states.changed() => {
                    if state.is_terminated() {
                        break state;
                    }
                    tracing::info!(?state, "ZooKeeper session state changed");
                }
            }
        };
        tracing::warn!(state = ?expired, "ZooKeeper session ended; registering again with a new session");
        loop {
            if *stopped.borrow() {
                return;
            }
            match reregister(&connect, &config, &identity).await {
                Ok((new_client, epoch)) => {
                    broker_epoch.store(epoch.0, Ordering::Release);
                    session.send_replace(Some(new_client));
                    tracing::info!(broker_epoch = epoch.0, "registered again in ZooKeeper");
                    break;
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot register in ZooKeeper yet; retrying");
                    tokio::select! {
                        _ = stopped.changed() => return,
                        _ = tokio::time::sleep(REREGISTER_BACKOFF) => {}
                    }
                }
            }
        }
    }
}

async fn reregister(
    connect: &str,
    config: &BrokerConfig,
    identity: &Identity,
) -> Result<(ZkClient, BrokerEpoch), ZkError> {
    let client = self::connect(config, connect).await?;
    let epoch = register_broker(&client, identity.broker_id, &identity.registration()).await?;
    Ok((client, epoch))
}
