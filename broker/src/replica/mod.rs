//! Partition replicas hosted by this broker and their roles.
//!
//! Partitions come online only through the controller: LeaderAndIsr makes this broker the
//! leader or a follower of a partition ([`ReplicaManager::make_leader`],
//! [`ReplicaManager::make_follower`]); StopReplica stops serving it and, for topic deletion,
//! deletes its data ([`ReplicaManager::stop`]). The pure role rules are in [`role`]; the
//! fencing of control requests (controller, broker and leader epochs) is in
//! [`crate::control_fence`].
//!
//! * **Leader**: accepts produce, stamping its current leader epoch into every batch; serves
//!   fetches and offset lookups.
//! * **Follower**: keeps its log, refuses produce and fetches (NOT_LEADER_OR_FOLLOWER).
//!   Replication — a fetcher per follower copying the leader's log, truncation on leader
//!   change, ISR shrink and expand — is not implemented yet; [`ReplicaManager::make_follower`]
//!   is where the fetcher will start.
//! * **Stopped**: StopReplica without delete; the log and the leader epoch are kept so a later
//!   LeaderAndIsr is still fenced.
//!
//! **Pre-replication high-watermark rule.** Until followers fetch, nothing tells a leader how
//! far its followers have copied, so the leader's HW is its LEO: set when it becomes leader
//! and after every append. `acks=-1` only checks the ISR size (as the controller last set it)
//! against `min.insync.replicas`. A follower's HW is the HW checkpointed in
//! `replication-offset-checkpoint` before the last restart (clamped to its log), else the LEO
//! its log had when it was opened (or the HW it had as leader); it is used only by retention
//! and the checkpoint.

mod manager;
mod partition;
pub mod role;

pub use manager::ReplicaManager;
pub use partition::{AppendError, Partition};
pub use role::{LeaderAndIsrState, Role, RoleChange, RoleError, role_for};
