//! Every broker is a controller candidate: it watches `/controller` and runs for election
//! whenever the node is vacant (Kafka's `elect()`: an ephemeral `/controller` created in one
//! multi with the conditional increment of `/controller_epoch`).
//!
//! The candidate publishes who the controller is on a watch channel (read by `Metadata`). When
//! its session ends it first stops considering itself controller — before anything else — and
//! runs again once the session keeper has a new session.
//!
//! While elected it runs the controller loop ([`tributary_controller::runtime::run`]) and
//! publishes its [`ControllerHandle`]. The loop ends when the session ends, when this broker is
//! told to stop, or when a write fails (fenced by a newer controller, or ZooKeeper trouble);
//! then the candidate resigns (deletes `/controller` if it still holds it) and campaigns again.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tributary_controller::runtime::{self, ControllerHandle, RuntimeConfig};
use tributary_controller::zk::{
    ControllerChange, ElectionOutcome, FencedWriter, ZkClient, ZkError, resign, try_elect,
    watch_controller,
};
use tributary_zk_layout::{BrokerId, ControllerEpoch, ZkVersion, paths};

/// Pause after an unexpected ZooKeeper error before campaigning again.
const RETRY_BACKOFF: Duration = Duration::from_millis(500);
/// How long a stopping controller loop may take to finish its current decision.
const LOOP_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Who the controller is, as far as this broker knows.
#[derive(Debug, Clone)]
pub struct ControllerView {
    /// The controller's broker id, if one is elected.
    pub controller: Option<BrokerId>,
    /// This broker's controller epoch while it is the controller (from its own election).
    pub my_epoch: Option<ControllerEpoch>,
    /// The running controller loop, while this broker is the controller.
    pub handle: Option<ControllerHandle>,
}

impl ControllerView {
    /// Nothing known (no session, or between elections).
    pub const UNKNOWN: ControllerView = ControllerView {
        controller: None,
        my_epoch: None,
        handle: None,
    };
}

enum Exit {
    Stop,
    SessionLost,
}

/// The controller loop while this broker leads.
struct Running {
    epoch_zk_version: ZkVersion,
    stop: watch::Sender<bool>,
    task: JoinHandle<runtime::Exit>,
}

impl Running {
    fn start(
        client: &ZkClient,
        config: &RuntimeConfig,
        epoch: ControllerEpoch,
        epoch_zk_version: ZkVersion,
    ) -> (Self, ControllerHandle) {
        let writer = FencedWriter::new(client.clone(), epoch, epoch_zk_version);
        let (handle, requests) = ControllerHandle::channel();
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(runtime::run(writer, config.clone(), requests, stopped));
        (
            Self {
                epoch_zk_version,
                stop,
                task,
            },
            handle,
        )
    }

    /// Stops the loop (it finishes the decision in hand first).
    async fn stop(mut self) {
        let _ = self.stop.send(true);
        if tokio::time::timeout(LOOP_STOP_TIMEOUT, &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
    }
}

/// Waits for the running loop to end (forever when none runs).
async fn loop_ended(running: &mut Option<Running>) -> runtime::Exit {
    match running {
        Some(r) => match (&mut r.task).await {
            Ok(exit) => exit,
            Err(join) => runtime::Exit::Failed(ZkError::Unexpected {
                path: "/controller".into(),
                source: zookeeper_client::Error::UnexpectedError(format!(
                    "controller loop panicked: {join}"
                )),
            }),
        },
        None => std::future::pending().await,
    }
}

/// Runs the candidate until `stop` fires; publishes every change on `view`.
pub async fn run(
    me: BrokerId,
    config: RuntimeConfig,
    mut sessions: watch::Receiver<Option<ZkClient>>,
    view: watch::Sender<ControllerView>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let client = sessions.borrow_and_update().clone();
        let Some(client) = client else {
            // Closed for good (shutdown) or not yet replaced.
            tokio::select! {
                _ = stop.changed() => return,
                changed = sessions.changed() => if changed.is_err() { return },
            }
            continue;
        };
        let exit = campaign(&client, me, &config, &view, &mut stop).await;
        // Whatever happened, stop acting as controller first.
        view.send_replace(ControllerView::UNKNOWN);
        drop(client);
        match exit {
            Ok(Exit::Stop) => return,
            Ok(Exit::SessionLost) => {
                tracing::warn!(
                    "ZooKeeper session ended: no longer a controller candidate until a new session"
                );
                tokio::select! {
                    _ = stop.changed() => return,
                    changed = sessions.changed() => if changed.is_err() { return },
                }
            }
            Err(error) => {
                tracing::warn!(%error, "controller election failed; trying again");
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = tokio::time::sleep(RETRY_BACKOFF) => {}
                }
            }
        }
    }
}

/// One session's campaign: arm the watch, elect if vacant, run the loop while elected,
/// publish, wait for a change.
async fn campaign(
    client: &ZkClient,
    me: BrokerId,
    config: &RuntimeConfig,
    view: &watch::Sender<ControllerView>,
    stop: &mut watch::Receiver<bool>,
) -> Result<Exit, ZkError> {
    let mut running: Option<Running> = None;
    let result = campaign_rounds(client, me, config, view, stop, &mut running).await;
    if let Some(r) = running.take() {
        view.send_replace(ControllerView::UNKNOWN);
        r.stop().await;
    }
    result
}

async fn campaign_rounds(
    client: &ZkClient,
    me: BrokerId,
    config: &RuntimeConfig,
    view: &watch::Sender<ControllerView>,
    stop: &mut watch::Receiver<bool>,
    running: &mut Option<Running>,
) -> Result<Exit, ZkError> {
    loop {
        // Arm the watch before electing, so a controller that vanishes right after our read
        // still wakes us.
        let (holder, change) = watch_controller(client).await?;
        let current = match holder {
            None => {
                if let Some(r) = running.take() {
                    tracing::warn!("/controller vanished while this broker was controller");
                    view.send_replace(ControllerView::UNKNOWN);
                    r.stop().await;
                }
                match try_elect(client, me).await? {
                    ElectionOutcome::Elected {
                        epoch,
                        epoch_zk_version,
                    } => {
                        tracing::info!(
                            controller_epoch = epoch.0,
                            "this broker is now the controller"
                        );
                        let (r, handle) = Running::start(client, config, epoch, epoch_zk_version);
                        *running = Some(r);
                        ControllerView {
                            controller: Some(me),
                            my_epoch: Some(epoch),
                            handle: Some(handle),
                        }
                    }
                    ElectionOutcome::Follower { controller_id } => ControllerView {
                        controller: Some(controller_id),
                        my_epoch: None,
                        handle: None,
                    },
                }
            }
            Some(id) if id == me && running.is_some() => {
                // Ours only if this session owns the ephemeral (not a previous process's).
                let ours = client
                    .exists(paths::controller())
                    .await?
                    .is_some_and(|stat| stat.ephemeral_owner == client.session_id());
                if ours {
                    view.borrow().clone()
                } else {
                    if let Some(r) = running.take() {
                        view.send_replace(ControllerView::UNKNOWN);
                        r.stop().await;
                    }
                    ControllerView {
                        controller: Some(id),
                        my_epoch: None,
                        handle: None,
                    }
                }
            }
            Some(id) => {
                if let Some(r) = running.take() {
                    view.send_replace(ControllerView::UNKNOWN);
                    r.stop().await;
                }
                if id == me
                    && client
                        .exists(paths::controller())
                        .await?
                        .is_some_and(|stat| stat.ephemeral_owner == client.session_id())
                {
                    // Held by this session without a loop (a resignation that failed): give
                    // it up so that a proper election runs.
                    match client.delete(paths::controller(), None).await {
                        Ok(()) | Err(ZkError::NoNode { .. }) => continue,
                        Err(error) => return Err(error),
                    }
                }
                ControllerView {
                    controller: Some(id),
                    my_epoch: None,
                    handle: None,
                }
            }
        };
        if view.borrow().my_epoch.is_some() && current.my_epoch.is_none() {
            tracing::warn!(controller = ?current.controller, "this broker is no longer the controller");
        }
        view.send_replace(current);
        tokio::select! {
            _ = stop.changed() => return Ok(Exit::Stop),
            change = change => {
                if let ControllerChange::SessionEnded(state) = change {
                    tracing::warn!(?state, "controller watch ended with the session");
                    return Ok(Exit::SessionLost);
                }
            }
            exit = loop_ended(running) => {
                let r = running.take().expect("a loop was running");
                view.send_replace(ControllerView {
                    controller: None,
                    my_epoch: None,
                    handle: None,
                });
                match exit {
                    runtime::Exit::SessionEnded => return Ok(Exit::SessionLost),
                    runtime::Exit::Failed(ZkError::ControllerMoved { .. }) => {
                        tracing::warn!("a newer controller fenced this one; resigning");
                    }
                    runtime::Exit::Failed(error) => {
                        tracing::warn!(%error, "controller loop failed; resigning so a controller reloads from ZooKeeper");
                    }
                    runtime::Exit::Stopped => {}
                }
                // Delete /controller only if we still hold it; then campaign again.
                if let Err(error) = resign(client, r.epoch_zk_version).await {
                    tracing::warn!(%error, "could not resign cleanly");
                }
            }
        }
    }
}
