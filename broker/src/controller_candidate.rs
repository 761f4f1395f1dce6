//! Every broker is a controller candidate: it watches `/controller` and runs for election
//! whenever the node is vacant (Kafka's `elect()`: an ephemeral `/controller` created in one
//! multi with the conditional increment of `/controller_epoch`).
//!
//! The candidate publishes who the controller is on a watch channel (read by `Metadata`). When
//! its session ends it first stops considering itself controller — before anything else — and
//! runs again once the session keeper has a new session.
//!
//! The controller's own work (the event loop over brokers, topics and partitions) is not run
//! yet: this module elects and fences; the loop comes with topics in ZooKeeper.

use std::time::Duration;

use tokio::sync::watch;
use tributary_controller::runtime::ControllerHandle;
use tributary_controller::zk::{
    ControllerChange, ElectionOutcome, ZkClient, ZkError, try_elect, watch_controller,
};
use tributary_zk_layout::{BrokerId, ControllerEpoch, paths};

/// Pause after an unexpected ZooKeeper error before campaigning again.
const RETRY_BACKOFF: Duration = Duration::from_millis(500);

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

/// Runs the candidate until `stop` fires; publishes every change on `view`.
pub async fn run(
    me: BrokerId,
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
        let exit = campaign(&client, me, &view, &mut stop).await;
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

/// One session's campaign: arm the watch, elect if vacant, publish, wait for a change.
async fn campaign(
    client: &ZkClient,
    me: BrokerId,
    view: &watch::Sender<ControllerView>,
    stop: &mut watch::Receiver<bool>,
) -> Result<Exit, ZkError> {
    loop {
        // Arm the watch before electing, so a controller that vanishes right after our read
        // still wakes us.
        let (holder, change) = watch_controller(client).await?;
        let current = match holder {
            None => match try_elect(client, me).await? {
                ElectionOutcome::Elected { epoch, .. } => {
                    tracing::info!(
                        controller_epoch = epoch.0,
                        "this broker is now the controller"
                    );
                    ControllerView {
                        controller: Some(me),
                        my_epoch: Some(epoch),
                        handle: None,
                    }
                }
                ElectionOutcome::Follower { controller_id } => ControllerView {
                    controller: Some(controller_id),
                    my_epoch: None,
                    handle: None,
                },
            },
            Some(id) if id == me => {
                // Ours only if this session owns the ephemeral (not a previous process's).
                let ours = client
                    .exists(paths::controller())
                    .await?
                    .is_some_and(|stat| stat.ephemeral_owner == client.session_id());
                let still_mine = view.borrow().my_epoch.filter(|_| ours);
                ControllerView {
                    controller: Some(id),
                    my_epoch: still_mine,
                    handle: None,
                }
            }
            Some(id) => ControllerView {
                controller: Some(id),
                my_epoch: None,
                handle: None,
            },
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
        }
    }
}
