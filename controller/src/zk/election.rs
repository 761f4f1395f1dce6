//! Controller election through the ephemeral `/controller` (Kafka's `elect()`).
//!
//! The winner creates `/controller` and increments `/controller_epoch` in **one** multi,
//! conditioned on the epoch's zkVersion it read, so two candidates can never both succeed and
//! every win moves the epoch. The new `(epoch, epoch_zk_version)` fences all of the winner's
//! later writes ([`FencedWriter`](super::FencedWriter)).

use std::future::Future;
use std::time::Duration;

use tributary_zk_layout::payloads::{
    ControllerRegistration, Payload, decode_controller_epoch, encode_controller_epoch, now_millis,
};
use tributary_zk_layout::{BrokerId, ControllerEpoch, ZkVersion, paths};
use zookeeper_client as zk;

use super::client::ZkClient;
use super::error::ZkError;
use super::ops::{CreateKind, MultiFailure, OpResult, ZkOp};

/// Rounds of (read, decide, multi) before giving up. Each lost round means another candidate
/// won and then vanished, or the connection dropped; a few are plenty.
const ATTEMPTS: u32 = 5;
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// The result of an election attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElectionOutcome {
    /// We are the controller. `epoch_zk_version` is `/controller_epoch`'s zkVersion after our
    /// increment, the token every fenced write checks.
    Elected {
        epoch: ControllerEpoch,
        epoch_zk_version: ZkVersion,
    },
    /// Another broker (or our own previous, not yet expired session) holds `/controller`.
    Follower { controller_id: BrokerId },
}

/// What `/controller` and `/controller_epoch` showed, read atomically in one multi-read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ElectionSnapshot {
    /// The holder of `/controller` and the session that owns the ephemeral.
    pub controller: Option<(BrokerId, i64)>,
    /// `/controller_epoch` and its zkVersion.
    pub epoch: Option<(ControllerEpoch, ZkVersion)>,
}

/// The pure decision of one election round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    Decided(ElectionOutcome),
    /// Nobody holds `/controller`: try to take it, bumping the epoch read (None: create it).
    Vacant {
        epoch: Option<(ControllerEpoch, ZkVersion)>,
    },
}

/// Decides from a snapshot. `/controller` owned by **our session** means we won: either a
/// previous attempt's reply was lost (the multi applied, so the epoch in the snapshot is the
/// one we tried to write) or this is a repeated call. Only an election writes the epoch and
/// only the holder of `/controller` can have won, so the snapshot's epoch is ours. Kafka checks
/// "names me and epoch equals what I tried"; the session check is stronger, because after a
/// session loss our old `/controller` may name us while belonging to a dead session.
pub(crate) fn decide(me: BrokerId, my_session: i64, snapshot: ElectionSnapshot) -> Decision {
    match (snapshot.controller, snapshot.epoch) {
        (None, epoch) => Decision::Vacant { epoch },
        (Some((holder, owner)), Some((epoch, epoch_zk_version)))
            if holder == me && owner == my_session =>
        {
            Decision::Decided(ElectionOutcome::Elected {
                epoch,
                epoch_zk_version,
            })
        }
        (Some((holder, _)), _) => Decision::Decided(ElectionOutcome::Follower {
            controller_id: holder,
        }),
    }
}

/// Runs Kafka's `elect()` for broker `me`: if `/controller` is held, returns `Follower`; else
/// creates `/controller_epoch` (`0`) if missing and tries the multi {create EPHEMERAL
/// `/controller`; setData `/controller_epoch` = epoch + 1 at the version read}. A lost race
/// (`NodeExists`, `BadVersion`) or a lost reply is resolved by re-reading both nodes.
pub async fn try_elect(client: &ZkClient, me: BrokerId) -> Result<ElectionOutcome, ZkError> {
    let mut attempt = 1;
    loop {
        let snapshot = read_snapshot(client).await?;
        let epoch = match decide(me, client.session_id(), snapshot) {
            Decision::Decided(outcome) => return Ok(outcome),
            Decision::Vacant { epoch: Some(epoch) } => epoch,
            Decision::Vacant { epoch: None } if attempt < ATTEMPTS => {
                create_initial_epoch(client).await?;
                attempt += 1;
                continue;
            }
            Decision::Vacant { epoch: None } => {
                return Err(ZkError::NoNode {
                    path: paths::controller_epoch().to_owned(),
                });
            }
        };
        match attempt_multi(client, me, epoch).await {
            Ok(outcome) => return Ok(outcome),
            Err(err) if attempt < ATTEMPTS => {
                tracing::debug!(broker = %me, attempt, error = %err, "election round lost, re-reading");
                attempt += 1;
                if err.is_retriable() {
                    tokio::time::sleep(RETRY_BACKOFF).await;
                }
            }
            Err(err) => return Err(err),
        }
    }
}

/// One multi attempt; `Err` for a lost race or a lost reply (the caller re-reads).
async fn attempt_multi(
    client: &ZkClient,
    me: BrokerId,
    (epoch, epoch_zk_version): (ControllerEpoch, ZkVersion),
) -> Result<ElectionOutcome, ZkError> {
    let tried = ControllerEpoch(epoch.0 + 1);
    let ops = [
        ZkOp::Create {
            path: paths::controller().to_owned(),
            data: ControllerRegistration::new(me, now_millis()).encode(),
            kind: CreateKind::Ephemeral,
        },
        ZkOp::set(
            paths::controller_epoch(),
            encode_controller_epoch(tried),
            Some(epoch_zk_version),
        ),
    ];
    match client.multi_raw(&ops).await {
        Ok(results) => {
            let version = results.iter().find_map(|result| match result {
                OpResult::Set { stat } => Some(stat.version),
                _ => None,
            });
            Ok(ElectionOutcome::Elected {
                epoch: tried,
                epoch_zk_version: version.unwrap_or(ZkVersion(epoch_zk_version.0 + 1)),
            })
        }
        Err(MultiFailure::Op { index, source }) => Err(ZkError::from_zk(ops[index].path(), source)),
        Err(MultiFailure::Request(source)) => Err(ZkError::from_zk(paths::controller(), source)),
    }
}

/// Creates `/controller_epoch` = `0` (Kafka's initial epoch, zkVersion 0); a concurrent
/// creator is fine.
async fn create_initial_epoch(client: &ZkClient) -> Result<(), ZkError> {
    let path = paths::controller_epoch();
    match client
        .create_persistent(path, &encode_controller_epoch(ControllerEpoch(0)))
        .await
    {
        Ok(_) | Err(ZkError::NodeExists { .. }) => Ok(()),
        Err(err) => Err(err),
    }
}

/// Reads `/controller` and `/controller_epoch` in one multi-read (a consistent snapshot).
pub(crate) async fn read_snapshot(client: &ZkClient) -> Result<ElectionSnapshot, ZkError> {
    let mut reader = client.raw().new_multi_reader();
    for path in [paths::controller(), paths::controller_epoch()] {
        reader
            .add_get_data(path)
            .map_err(|err| ZkError::from_zk(path, err))?;
    }
    let results = reader
        .commit()
        .await
        .map_err(|err| ZkError::from_zk(paths::controller(), err))?;
    let mut results = results.into_iter();
    let controller = match results.next() {
        Some(zk::MultiReadResult::Data { data, stat }) => {
            let registration =
                ControllerRegistration::decode(&data).map_err(|source| ZkError::Payload {
                    path: paths::controller().to_owned(),
                    source,
                })?;
            Some((registration.broker_id, stat.ephemeral_owner))
        }
        other => none_if_no_node(paths::controller(), other)?,
    };
    let epoch = match results.next() {
        Some(zk::MultiReadResult::Data { data, stat }) => {
            let epoch = decode_controller_epoch(&data).map_err(|source| ZkError::Payload {
                path: paths::controller_epoch().to_owned(),
                source,
            })?;
            Some((epoch, ZkVersion(stat.version)))
        }
        other => none_if_no_node(paths::controller_epoch(), other)?,
    };
    Ok(ElectionSnapshot { controller, epoch })
}

fn none_if_no_node<T>(
    path: &str,
    result: Option<zk::MultiReadResult>,
) -> Result<Option<T>, ZkError> {
    match result {
        Some(zk::MultiReadResult::Error {
            err: zk::Error::NoNode,
        }) => Ok(None),
        Some(zk::MultiReadResult::Error { err }) => Err(ZkError::from_zk(path, err)),
        _ => Err(ZkError::Unexpected {
            path: path.to_owned(),
            source: zk::Error::UnexpectedError("multi-read returned no data result".to_owned()),
        }),
    }
}

/// What ended a [`watch_controller`] watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControllerChange {
    /// `/controller` appeared: a controller was elected.
    Created,
    /// `/controller` vanished: everyone should [`try_elect`] again.
    Deleted,
    /// `/controller` was rewritten (not done by Tributary; treat as "maybe moved").
    DataChanged,
    /// The session ended (expired, closed, auth failed); the watch is gone with it.
    SessionEnded(zk::SessionState),
}

/// Reads the current controller and arms a one-shot watch on `/controller` (an exists-watch,
/// which fires on create, delete and data change). The returned future completes on the first
/// change; the caller re-arms by calling this again (and then re-reads, so no change is missed
/// between the event and the new watch).
pub async fn watch_controller(
    client: &ZkClient,
) -> Result<
    (
        Option<BrokerId>,
        impl Future<Output = ControllerChange> + Send + 'static,
    ),
    ZkError,
> {
    let path = paths::controller();
    let (stat, watcher) = client
        .raw()
        .check_and_watch_stat(path)
        .await
        .map_err(|err| ZkError::from_zk(path, err))?;
    let controller_id = match stat {
        None => None,
        // Deleted between the two reads: the armed watch fires for it.
        Some(_) => client
            .get_payload_if_exists::<ControllerRegistration>(path)
            .await?
            .map(|(registration, _)| registration.broker_id),
    };
    let change = async move {
        let event = watcher.changed().await;
        match event.event_type {
            zk::EventType::NodeCreated => ControllerChange::Created,
            zk::EventType::NodeDeleted => ControllerChange::Deleted,
            zk::EventType::NodeDataChanged | zk::EventType::NodeChildrenChanged => {
                ControllerChange::DataChanged
            }
            zk::EventType::Session => ControllerChange::SessionEnded(event.session_state),
        }
    };
    Ok((controller_id, change))
}

/// Gives up the controllership: deletes `/controller` only if we still hold it, i.e. in one
/// multi conditioned on `/controller_epoch` still being at our `epoch_zk_version` (Kafka's
/// `deleteController`). Returns whether it deleted anything; `false` when a newer controller
/// exists or our ephemeral is already gone.
pub async fn resign(client: &ZkClient, epoch_zk_version: ZkVersion) -> Result<bool, ZkError> {
    let ops = [
        ZkOp::Check {
            path: paths::controller_epoch().to_owned(),
            version: epoch_zk_version,
        },
        ZkOp::delete(paths::controller(), None),
    ];
    match client.multi_raw(&ops).await {
        Ok(_) => Ok(true),
        Err(MultiFailure::Op {
            source: zk::Error::BadVersion | zk::Error::NoNode,
            ..
        }) => Ok(false),
        Err(MultiFailure::Op { index, source }) => Err(ZkError::from_zk(ops[index].path(), source)),
        Err(MultiFailure::Request(source)) => Err(ZkError::from_zk(paths::controller(), source)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: BrokerId = BrokerId(1);
    const MY_SESSION: i64 = 0x100;
    const OTHER_SESSION: i64 = 0x200;

    fn snapshot(controller: Option<(i32, i64)>, epoch: Option<(i32, i32)>) -> ElectionSnapshot {
        ElectionSnapshot {
            controller: controller.map(|(id, owner)| (BrokerId(id), owner)),
            epoch: epoch.map(|(e, v)| (ControllerEpoch(e), ZkVersion(v))),
        }
    }

    fn elected(epoch: i32, version: i32) -> Decision {
        Decision::Decided(ElectionOutcome::Elected {
            epoch: ControllerEpoch(epoch),
            epoch_zk_version: ZkVersion(version),
        })
    }

    fn follower(id: i32) -> Decision {
        Decision::Decided(ElectionOutcome::Follower {
            controller_id: BrokerId(id),
        })
    }

    #[test]
    fn decision_table() {
        let cases = [
            // Nobody holds /controller: try with the epoch read (or create it first).
            (
                snapshot(None, Some((4, 4))),
                Decision::Vacant {
                    epoch: Some((ControllerEpoch(4), ZkVersion(4))),
                },
            ),
            (snapshot(None, None), Decision::Vacant { epoch: None }),
            // Someone else holds it.
            (
                snapshot(Some((2, OTHER_SESSION)), Some((5, 5))),
                follower(2),
            ),
            // Lost response: our multi applied (we tried epoch 5, the epoch node says 5 at
            // version 5, /controller names us and is owned by our session).
            (snapshot(Some((1, MY_SESSION)), Some((5, 5))), elected(5, 5)),
            // Names us but owned by our previous, dead session: not ours; wait for it to expire.
            (
                snapshot(Some((1, OTHER_SESSION)), Some((5, 5))),
                follower(1),
            ),
            // Ours but the epoch node is missing (hand-deleted): cannot fence, so not elected.
            (snapshot(Some((1, MY_SESSION)), None), follower(1)),
        ];
        for (snapshot, expected) in cases {
            assert_eq!(decide(ME, MY_SESSION, snapshot), expected, "{snapshot:?}");
        }
    }
}
