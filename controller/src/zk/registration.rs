//! Broker registration: the ephemeral `/brokers/ids/<id>` whose czxid is the broker epoch.

use std::time::Duration;

use tributary_zk_layout::payloads::{BrokerRegistration, Payload};
use tributary_zk_layout::{BrokerEpoch, BrokerId, ZkVersion, paths};

use super::client::ZkClient;
use super::error::ZkError;
use super::ops::{CreateKind, OpResult, ZkOp};

/// Attempts on a retriable error (connection loss) before giving up; each retry first checks
/// whether the lost request had in fact applied.
const ATTEMPTS: u32 = 5;
const RETRY_BACKOFF: Duration = Duration::from_millis(200);

/// Registers this broker as live: one multi {create EPHEMERAL `/brokers/ids/<id>` with no
/// data; setData version 0 with the payload}, as Kafka does (KIP-380), so that the node's
/// czxid, returned as the [`BrokerEpoch`], comes from a create whose data is already complete
/// when anyone can read it.
///
/// If the node exists and this session owns it, the registration is ours (the reply to an
/// earlier attempt was lost: KAFKA-7165) and its epoch is returned. If another session owns it,
/// [`ZkError::BrokerIdInUse`]: another live broker has this `broker.id` (or our own previous
/// session, until it expires).
pub async fn register_broker(
    client: &ZkClient,
    id: BrokerId,
    registration: &BrokerRegistration,
) -> Result<BrokerEpoch, ZkError> {
    let path = paths::broker_id(id);
    let ops = [
        ZkOp::Create {
            path: path.clone(),
            data: Vec::new(),
            kind: CreateKind::Ephemeral,
        },
        ZkOp::set(path.clone(), registration.encode(), Some(ZkVersion(0))),
    ];
    let mut attempt = 1;
    loop {
        let outcome = match client.multi(&ops).await {
            Ok(results) => match registered_epoch(&results) {
                Some(epoch) => return Ok(epoch),
                // Not expected (setData returns a full Stat), but the stat read below is exact.
                None => existing_registration(client, id, &path).await,
            },
            Err(ZkError::NodeExists { .. }) => existing_registration(client, id, &path).await,
            Err(err) => Err(err),
        };
        match outcome {
            Err(err) if err.is_retriable() && attempt < ATTEMPTS => {
                tracing::warn!(broker = %id, attempt, error = %err, "broker registration failed, retrying");
                attempt += 1;
                tokio::time::sleep(RETRY_BACKOFF).await;
            }
            // The node vanished between our create and our read (the other session just
            // ended): register again.
            Err(ZkError::NoNode { .. }) if attempt < ATTEMPTS => attempt += 1,
            other => return other,
        }
    }
}

/// The czxid from the multi's setData result (the create's Stat is invalid in a multi,
/// ZOOKEEPER-4026, but setData returns the node's full Stat, czxid included).
fn registered_epoch(results: &[OpResult]) -> Option<BrokerEpoch> {
    results.iter().find_map(|result| match result {
        OpResult::Set { stat } if stat.czxid > 0 => Some(BrokerEpoch(stat.czxid)),
        _ => None,
    })
}

/// `/brokers/ids/<id>` exists: ours (same session) → its epoch; else the id is in use.
async fn existing_registration(
    client: &ZkClient,
    id: BrokerId,
    path: &str,
) -> Result<BrokerEpoch, ZkError> {
    let stat = client.exists(path).await?.ok_or_else(|| ZkError::NoNode {
        path: path.to_owned(),
    })?;
    if stat.ephemeral_owner == client.session_id() {
        Ok(BrokerEpoch(stat.czxid))
    } else {
        Err(ZkError::BrokerIdInUse { id })
    }
}

/// The live brokers and their epochs (czxid of each registration), sorted by id. Children whose
/// name is not a broker id are ignored; a broker that deregisters during the scan is skipped.
pub async fn live_brokers(
    client: &ZkClient,
) -> Result<Vec<(BrokerId, BrokerEpoch, BrokerRegistration)>, ZkError> {
    let mut brokers = Vec::new();
    for name in client.children(paths::broker_ids()).await? {
        let Ok(id) = name.parse::<i32>().map(BrokerId) else {
            continue;
        };
        if let Some((registration, stat)) = client
            .get_payload_if_exists::<BrokerRegistration>(&paths::broker_id(id))
            .await?
        {
            brokers.push((id, BrokerEpoch(stat.czxid), registration));
        }
    }
    brokers.sort_by_key(|(id, _, _)| *id);
    Ok(brokers)
}
