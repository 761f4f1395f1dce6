//! Producer ids for `InitProducerId`: handed out one by one from a block of 1000 that this
//! broker claimed in ZooKeeper (`/latest_producer_id_block`, see
//! `tributary_controller::zk::claim_producer_id_block`). The manager is the one owner of the
//! current block; concurrent requests queue on its async mutex, and only the request that
//! finds the block used up talks to ZooKeeper.

use tokio::sync::Mutex;
use tributary_controller::zk::{ZkClient, ZkError, claim_producer_id_block};
use tributary_zk_layout::ids::BrokerId;
use tributary_zk_layout::payloads::ProducerIdBlock;

/// Why no producer id could be handed out.
#[derive(Debug, thiserror::Error)]
pub enum ProducerIdError {
    /// The block is used up and there is no ZooKeeper session to claim the next one.
    #[error("no ZooKeeper session to claim a new block of producer ids")]
    NoSession,
    /// Claiming the next block failed.
    #[error("could not claim a block of producer ids")]
    Claim(#[source] ZkError),
}

/// The ids left in the current block: `next ..= end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Remaining {
    next: i64,
    end: i64,
}

impl Remaining {
    /// Takes the next id, or `None` when the block is used up.
    fn take(&mut self) -> Option<i64> {
        (self.next <= self.end).then(|| {
            self.next += 1;
            self.next - 1
        })
    }
}

/// Hands out this broker's producer ids.
#[derive(Debug)]
pub struct ProducerIdManager {
    broker: BrokerId,
    /// `None` until the first block is claimed.
    block: Mutex<Option<Remaining>>,
}

impl ProducerIdManager {
    /// A manager for `broker` with no block yet (the first request claims one).
    pub fn new(broker: BrokerId) -> Self {
        Self {
            broker,
            block: Mutex::new(None),
        }
    }

    /// A new producer id, unique in the cluster.
    pub async fn next_id(&self, zk: Option<ZkClient>) -> Result<i64, ProducerIdError> {
        let mut block = self.block.lock().await;
        if let Some(id) = block.as_mut().and_then(Remaining::take) {
            return Ok(id);
        }
        let zk = zk.ok_or(ProducerIdError::NoSession)?;
        let ProducerIdBlock {
            block_start,
            block_end,
            ..
        } = claim_producer_id_block(&zk, self.broker)
            .await
            .map_err(ProducerIdError::Claim)?;
        tracing::info!(broker = %self.broker, block_start, block_end, "claimed a block of producer ids");
        let mut claimed = Remaining {
            next: block_start,
            end: block_end,
        };
        let id = claimed.take().expect("a claimed block holds 1000 ids");
        *block = Some(claimed);
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_hands_out_each_id_once() {
        let mut block = Remaining {
            next: 1000,
            end: 1002,
        };
        assert_eq!(
            [block.take(), block.take(), block.take(), block.take()],
            [Some(1000), Some(1001), Some(1002), None]
        );
    }

    #[tokio::test]
    async fn without_a_session_no_block_can_be_claimed() {
        let manager = ProducerIdManager::new(BrokerId(1));
        assert!(matches!(
            manager.next_id(None).await,
            Err(ProducerIdError::NoSession)
        ));
    }
}
