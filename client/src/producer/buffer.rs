//! `buffer.memory`: the bytes of records accepted by `send` and not yet completed, bounded by a
//! semaphore of one permit per byte. `send` takes a record's permits (waiting up to
//! `max.block.ms`); its batch hands them all back at once when it is acknowledged or fails.
//! Permits are counted, not held as guards: a batch adds up its records' bytes and releases the
//! sum, so a record costs one atomic update here instead of a permit object per record.

use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::error::ProduceError;

#[derive(Debug)]
pub(crate) struct BufferPool {
    semaphore: Semaphore,
    /// `buffer.memory`. Invariant: fits in `u32` (checked by `ProducerOptions::validate`).
    capacity: usize,
}

impl BufferPool {
    pub(crate) fn new(capacity: usize) -> BufferPool {
        BufferPool {
            semaphore: Semaphore::new(capacity),
            capacity,
        }
    }

    /// Bytes free right now.
    pub(crate) fn available(&self) -> usize {
        self.semaphore.available_permits()
    }

    /// Takes `bytes` of the buffer if they are free now (and no one waits before us). Returns
    /// the bytes taken, to be given back with [`BufferPool::release`].
    pub(crate) fn try_reserve(&self, bytes: usize) -> Option<usize> {
        if bytes > self.capacity {
            return None;
        }
        let permit = self.semaphore.try_acquire_many(bytes as u32).ok()?;
        permit.forget();
        Some(bytes)
    }

    /// Gives back `bytes` taken by [`BufferPool::try_reserve`] or [`BufferPool::reserve`].
    pub(crate) fn release(&self, bytes: usize) {
        if bytes > 0 {
            self.semaphore.add_permits(bytes);
        }
    }

    /// Takes `bytes` of the buffer, waiting until `deadline` at most (`max_block` after `send`
    /// started, for the error message). Waiters are served first come, first served.
    pub(crate) async fn reserve(
        &self,
        bytes: usize,
        deadline: Instant,
        max_block: Duration,
    ) -> Result<usize, ProduceError> {
        if bytes > self.capacity {
            return Err(ProduceError::RecordTooLarge {
                size: bytes,
                limit: self.capacity,
                setting: "buffer.memory",
            });
        }
        let permits = bytes as u32;
        if let Some(taken) = self.try_reserve(bytes) {
            return Ok(taken);
        }
        let exhausted = || ProduceError::BufferExhausted {
            requested: bytes,
            buffer_memory: self.capacity,
            waited: max_block,
        };
        match tokio::time::timeout_at(deadline, self.semaphore.acquire_many(permits)).await {
            Ok(Ok(permit)) => {
                permit.forget();
                Ok(bytes)
            }
            Ok(Err(_closed)) => Err(ProduceError::Closed),
            Err(_elapsed) => Err(exhausted()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_full_buffer_blocks_then_fails_after_max_block() {
        let pool = BufferPool::new(1000);
        let max_block = Duration::from_millis(500);
        let start = Instant::now();
        let held = pool
            .reserve(800, start + max_block, max_block)
            .await
            .unwrap();
        assert_eq!(pool.available(), 200);
        let error = pool
            .reserve(300, start + max_block, max_block)
            .await
            .unwrap_err();
        assert_eq!(start.elapsed(), max_block, "waited exactly max.block.ms");
        assert!(
            matches!(
                error,
                ProduceError::BufferExhausted {
                    requested: 300,
                    buffer_memory: 1000,
                    ..
                }
            ),
            "{error}"
        );
        assert!(error.to_string().contains("max.block.ms"), "{error}");
        assert_eq!(pool.available(), 200, "a failed wait takes nothing");

        // Memory released while a sender waits lets it through.
        let start = Instant::now();
        let waiter = pool.reserve(300, start + max_block, max_block);
        let release = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            pool.release(held);
        };
        let (reserved, ()) = tokio::join!(waiter, release);
        assert_eq!(reserved.unwrap(), 300);
        assert_eq!(start.elapsed(), Duration::from_millis(100));

        let error = pool
            .reserve(1001, start + max_block, max_block)
            .await
            .unwrap_err();
        assert!(matches!(
            error,
            ProduceError::RecordTooLarge {
                setting: "buffer.memory",
                ..
            }
        ));
    }
}
