//! Pure decisions about a replica's role: what a LeaderAndIsr entry makes of this broker, and
//! what changes when it does. No locks, no files: values in, values out.

use tributary_zk_layout::{BrokerId, ControllerEpoch, LeaderEpoch, ZkVersion};

use crate::log::TopicPartition;

/// A partition's leadership as the controller last set it with LeaderAndIsr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderAndIsrState {
    /// The epoch of the controller that made this decision.
    pub controller_epoch: ControllerEpoch,
    /// The leader; [`BrokerId::NONE`] when the partition has none.
    pub leader: BrokerId,
    /// The leader epoch; it only grows (LeaderAndIsr with an older or equal one is refused).
    pub leader_epoch: LeaderEpoch,
    /// The in-sync replicas, as written in the partition's state znode.
    pub isr: Vec<BrokerId>,
    /// All replicas, in preference order.
    pub replicas: Vec<BrokerId>,
    /// The version of the state znode after the decision (or after this leader's own last
    /// ISR write): the token of the leader's conditional ISR updates.
    pub zk_version: ZkVersion,
}

/// What this broker does for a partition it hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Accepts produce and serves fetches and offset lookups.
    Leader,
    /// Refuses produce and fetches (NOT_LEADER_OR_FOLLOWER); a fetch loop copies the
    /// leader's log into it.
    Follower,
    /// StopReplica without delete: the log stays on disk and the leadership state is kept (so
    /// a later LeaderAndIsr is still fenced by its leader epoch), but nothing is served.
    Stopped,
}

/// Why a LeaderAndIsr entry does not apply to this broker.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoleError {
    /// The entry does not list this broker among the partition's replicas (Kafka answers
    /// UNKNOWN_TOPIC_OR_PARTITION and ignores the entry).
    #[error("{topic_partition}: broker {broker} is not among the replicas {replicas:?}")]
    NotAReplica {
        /// The partition.
        topic_partition: TopicPartition,
        /// This broker.
        broker: BrokerId,
        /// The replicas the entry lists.
        replicas: Vec<BrokerId>,
    },
}

/// The role a LeaderAndIsr entry gives broker `me`: leader if it names `me`, follower
/// otherwise (also while the partition has no leader).
pub fn role_for(
    me: BrokerId,
    topic_partition: &TopicPartition,
    state: &LeaderAndIsrState,
) -> Result<Role, RoleError> {
    if !state.replicas.contains(&me) {
        return Err(RoleError::NotAReplica {
            topic_partition: topic_partition.clone(),
            broker: me,
            replicas: state.replicas.clone(),
        });
    }
    Ok(if state.leader == me {
        Role::Leader
    } else {
        Role::Follower
    })
}

/// The effects of moving a hosted replica from one role to another (`from` is `None` when the
/// partition was not hosted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleChange {
    /// The role before, if hosted.
    pub from: Option<Role>,
    /// The role after.
    pub to: Role,
}

impl RoleChange {
    /// The replica starts leading: its followers' progress is reset (ISR members count as
    /// caught up now) and its leadership generation grows.
    pub fn gains_leadership(self) -> bool {
        self.to == Role::Leader && self.from != Some(Role::Leader)
    }

    /// The replica stops leading: in-flight long polls must be woken so they answer
    /// NOT_LEADER_OR_FOLLOWER instead of waiting for appends that will never come.
    pub fn loses_leadership(self) -> bool {
        self.from == Some(Role::Leader) && self.to != Role::Leader
    }

    /// The replica must (re)start fetching from the leader (truncating by leader epoch
    /// first).
    pub fn starts_following(self) -> bool {
        self.to == Role::Follower
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(leader: i32, replicas: &[i32]) -> LeaderAndIsrState {
        LeaderAndIsrState {
            controller_epoch: ControllerEpoch(1),
            leader: BrokerId(leader),
            leader_epoch: LeaderEpoch(0),
            isr: replicas.iter().copied().map(BrokerId).collect(),
            replicas: replicas.iter().copied().map(BrokerId).collect(),
            zk_version: ZkVersion(0),
        }
    }

    #[test]
    fn role_is_leader_when_named_follower_otherwise_and_refused_when_not_a_replica() {
        let tp = TopicPartition::new("t", 0);
        let me = BrokerId(2);
        let cases = [
            (state(2, &[1, 2, 3]), Ok(Role::Leader)),
            (state(1, &[1, 2, 3]), Ok(Role::Follower)),
            (state(-1, &[1, 2, 3]), Ok(Role::Follower)),
            (
                state(1, &[1, 3]),
                Err(RoleError::NotAReplica {
                    topic_partition: tp.clone(),
                    broker: me,
                    replicas: vec![BrokerId(1), BrokerId(3)],
                }),
            ),
        ];
        for (entry, expected) in cases {
            assert_eq!(role_for(me, &tp, &entry), expected, "{entry:?}");
        }
    }

    #[test]
    fn role_change_effects() {
        use Role::*;
        // (from, to, gains, loses, starts following)
        let table = [
            (None, Leader, true, false, false),
            (None, Follower, false, false, true),
            (Some(Leader), Leader, false, false, false),
            (Some(Leader), Follower, false, true, true),
            (Some(Leader), Stopped, false, true, false),
            (Some(Follower), Leader, true, false, false),
            (Some(Follower), Follower, false, false, true),
            (Some(Follower), Stopped, false, false, false),
            (Some(Stopped), Leader, true, false, false),
            (Some(Stopped), Follower, false, false, true),
        ];
        for (from, to, gains, loses, follows) in table {
            let change = RoleChange { from, to };
            assert_eq!(change.gains_leadership(), gains, "{change:?}");
            assert_eq!(change.loses_leadership(), loses, "{change:?}");
            assert_eq!(change.starts_following(), follows, "{change:?}");
        }
    }
}
