//! Partition replicas hosted by this broker and their roles.
//!
//! Partitions come online only through the controller: LeaderAndIsr makes this broker the
//! leader or a follower of a partition ([`ReplicaManager::make_leader`],
//! [`ReplicaManager::make_follower`]); StopReplica stops serving it and, for topic deletion,
//! deletes its data ([`ReplicaManager::stop`]). The pure role rules are in [`role`]; the
//! fencing of control requests (controller, broker and leader epochs) is in
//! [`crate::control_fence`].
//!
//! ```text
//!   replica/
//!     role.rs        pure: what a LeaderAndIsr entry makes of this broker
//!     isr.rs         pure: follower progress, HW = min LEO over the ISR, expand/shrink rules
//!     partition.rs   one replica: role, HW, leader-side progress (applies isr.rs under a lock)
//!     manager.rs     the hosted partitions; hands ISR changes to the writer; shrink pass
//!     isr_writer.rs  the one task writing ISR changes to ZooKeeper (+ isr_change notification)
//!     fetcher/       follower side: one fetch loop per leader broker, truncation by epoch
//! ```
//!
//! * **Leader**: accepts produce, stamping its current leader epoch into every batch; serves
//!   consumer fetches below the HW and follower fetches up to its LEO. A follower's fetch
//!   offset is its LEO; the HW is the minimum LEO over the ISR and only moves forward; a
//!   follower that reaches the HW and the current epoch's start offset is added to the ISR,
//!   one behind the LEO and not caught up for `replica.lag.time.max.ms` is removed.
//! * **Follower**: refuses produce and fetches (NOT_LEADER_OR_FOLLOWER); a fetch loop
//!   truncates its log by leader epoch, then copies the leader's batches unchanged. Its HW is
//!   min(leader HW from the last fetch, own LEO).
//! * **Stopped**: StopReplica without delete; the log and the leader epoch are kept so a later
//!   LeaderAndIsr is still fenced.
//!
//! A replica's HW starts at the one checkpointed in `replication-offset-checkpoint` (clamped
//! to its log), else at its log start offset. See `docs/replication.md` for the whole picture
//! and the trade-offs.

pub mod fetcher;
pub mod isr;
pub mod isr_writer;
mod manager;
mod partition;
pub mod role;

pub use fetcher::{FetchSettings, FetcherManager};
pub use manager::{ReplicaLogState, ReplicaManager, RoleEvent};
pub use partition::{AppendError, FollowerError, Partition};
pub use role::{LeaderAndIsrState, Role, RoleChange, RoleError, role_for};
