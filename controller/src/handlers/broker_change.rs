//! `/brokers/ids` changed: brokers joined, died or bounced (Kafka's `onBrokerStartup` and
//! `onBrokerFailure`).
//!
//! - **Death**: the broker leaves the model; every partition it led gets an offline election
//!   (first replica live and in ISR, in assignment order; unclean if the topic allows it); it
//!   leaves every other ISR (never emptying one); a partition left without an electable replica
//!   gets leader -1 and keeps its last ISR member. Each change bumps the leader epoch, is written
//!   conditionally and sent as LeaderAndIsr to the partition's registered replicas; UpdateMetadata
//!   goes to every broker even when no partition changed (they learn the broker is gone). Its
//!   pending topic deletions become ineligible until it returns.
//! - **Join**: UpdateMetadata to every broker, carrying all partitions to the new one;
//!   LeaderAndIsr (current state, so it follows) for every partition it hosts; leaderless
//!   partitions it makes electable get a leader; New partitions it makes placeable are created;
//!   its pending topic deletions resume. Leadership does not move back (that is the preferred
//!   election's job).
//! - **Bounce** (same id, larger broker epoch): death, then join.
//!
//! A registration with a *smaller* epoch than the known one is a stale read and is ignored.

use std::collections::{BTreeMap, BTreeSet};

use tributary_zk_layout::BrokerId;

use crate::cluster::{ClusterModel, LiveBroker, TopicPartition};
use crate::decision::{Decision, LastReplicaNote, RequestBatch};
use crate::election::{ElectionInput, offline_election, remove_replicas_from_isr};
use crate::handlers::{topic_change, topic_deletion};
use crate::last_replica::{LeaderlessOutcome, leaderless_election};

/// Compares `live` with the model's registered brokers and handles deaths, then joins.
pub fn handle_brokers_changed(
    model: &mut ClusterModel,
    live: BTreeMap<BrokerId, LiveBroker>,
) -> Decision {
    let mut dead = BTreeSet::new();
    let mut joined = BTreeSet::new();
    for (id, known) in &model.live_brokers {
        match live.get(id) {
            None => {
                dead.insert(*id);
            }
            Some(now) if now.epoch > known.epoch => {
                dead.insert(*id);
                joined.insert(*id);
            }
            Some(_) => {}
        }
    }
    joined.extend(
        live.keys()
            .filter(|id| !model.live_brokers.contains_key(id))
            .copied(),
    );
    let mut decision = Decision::default();
    if !dead.is_empty() {
        decision.append(on_brokers_failed(model, &dead));
    }
    if !joined.is_empty() {
        for id in &joined {
            model.live_brokers.insert(*id, live[id].clone());
        }
        decision.append(on_brokers_joined(model, &joined));
    }
    decision
}

/// The brokers in `dead` are gone: they leave the model, then every partition is repaired.
pub fn on_brokers_failed(model: &mut ClusterModel, dead: &BTreeSet<BrokerId>) -> Decision {
    for id in dead {
        model.live_brokers.remove(id);
        model.shutting_down.remove(id);
        // A bounced broker re-registers within this event: what it described before is stale.
        for logs in model.replica_logs.values_mut() {
            logs.remove(id);
        }
        model.replica_logs_asked.retain(|(_, b)| b != id);
        for deletion in model.topics_to_delete.values_mut() {
            deletion.started.remove(id);
        }
    }
    let mut decision = Decision::default();
    let mut batch = RequestBatch::default();
    batch.update_metadata([]);
    repair_partitions(model, &model.active_partitions(), &mut decision, &mut batch);
    batch.finish(model, &mut decision);
    decision
}

/// The brokers in `joined` are registered in the model: tell them everything and bring their
/// replicas online.
pub fn on_brokers_joined(model: &mut ClusterModel, joined: &BTreeSet<BrokerId>) -> Decision {
    let mut decision = Decision::default();
    let mut batch = RequestBatch::default();
    for id in joined {
        batch.full_metadata_to(*id);
    }
    let active = model.active_partitions();
    for tp in &active {
        let hosted: Vec<BrokerId> = model
            .replicas(tp)
            .iter()
            .copied()
            .filter(|b| joined.contains(b))
            .collect();
        if !hosted.is_empty() {
            // Every broker's cache lists these replicas as offline until told otherwise
            // (Kafka's OnlineReplica transition sends the partition to everyone too).
            batch.update_metadata([tp.clone()]);
        }
        batch.leader_and_isr(hosted, tp, false);
    }
    repair_partitions(model, &active, &mut decision, &mut batch);
    topic_change::initialize_new_partitions(model, &mut decision, &mut batch);
    topic_deletion::resume_deletions(model, &mut decision, &mut batch);
    batch.finish(model, &mut decision);
    decision
}

/// Brings each partition in `tps` in line with the registered brokers (Kafka's OfflinePartition
/// → OnlinePartition plus the OfflineReplica ISR shrink, in one write per partition):
///
/// - leader registered after the state was last written (it restarted while no controller
///   watched) → leader -1 first, then as below;
/// - leader -1 → the leaderless election of [`crate::last_replica`] (describe the replicas'
///   logs before trusting the candidate), unless unclean election is allowed;
/// - leader unregistered → offline election; if nothing is electable, leader -1 and the
///   unregistered members leave the ISR (the last one stays);
/// - leader registered → unregistered members leave the ISR (the last one stays).
///
/// Partitions needing no change are left alone, so this is idempotent. Partitions without a
/// state (New) are the job of [`topic_change::initialize_new_partitions`].
pub(crate) fn repair_partitions(
    model: &mut ClusterModel,
    tps: &[TopicPartition],
    decision: &mut Decision,
    batch: &mut RequestBatch,
) {
    let electable = model.electable_brokers();
    let controller_epoch = model.controller_epoch;
    let mut describe = Vec::new();
    for tp in tps {
        if model.leader_registered_since_state(tp) {
            // Named leader before it restarted (or re-registered), unseen by any controller:
            // it may have lost what it acknowledged. It stops leading, and the leaderless
            // election below checks its log like any returning last ISR member's.
            let state = &model.partition_states[tp].leader_and_isr;
            let demoted = state.next(BrokerId::NONE, state.isr.clone(), controller_epoch);
            decision.set_partition_state(model, tp, demoted);
            batch.partition_changed(model, tp);
        }
        let Some(state) = model.partition_states.get(tp) else {
            continue;
        };
        let current = &state.leader_and_isr;
        let mut gone: BTreeSet<BrokerId> = current
            .isr
            .iter()
            .copied()
            .filter(|b| !model.is_registered(*b))
            .collect();
        let unclean_allowed = model.unclean_allowed(&tp.topic);
        let next = if model.is_registered(current.leader) {
            remove_replicas_from_isr(current, &gone, controller_epoch)
        } else if current.leader == BrokerId::NONE && !unclean_allowed {
            let input = ElectionInput {
                assignment: model.replicas(tp),
                current,
                live_brokers: &electable,
                controller_epoch,
            };
            let logs = model.replica_logs.get(tp).cloned().unwrap_or_default();
            match leaderless_election(input, &logs) {
                LeaderlessOutcome::Elect { elected, compared } => {
                    if let Some(comparison) = compared {
                        decision.last_replica_notes.push(LastReplicaNote::Elected {
                            partition: tp.clone(),
                            comparison,
                            leader: elected.leader_and_isr.leader,
                        });
                    }
                    Some(elected.leader_and_isr)
                }
                LeaderlessOutcome::Describe(brokers) => {
                    describe.push((tp.clone(), brokers));
                    None
                }
                LeaderlessOutcome::Wait { candidate, missing } => {
                    decision.last_replica_notes.push(LastReplicaNote::Waiting {
                        partition: tp.clone(),
                        candidate,
                        missing,
                    });
                    None
                }
                LeaderlessOutcome::Unelectable(_) => {
                    remove_replicas_from_isr(current, &gone, controller_epoch)
                }
            }
        } else {
            let input = ElectionInput {
                assignment: model.replicas(tp),
                current,
                live_brokers: &electable,
                controller_epoch,
            };
            match offline_election(input, unclean_allowed) {
                Ok(elected) => {
                    if elected.unclean {
                        decision.unclean_elections.push(tp.clone());
                    }
                    Some(elected.leader_and_isr)
                }
                Err(_) => {
                    if current.leader != BrokerId::NONE {
                        gone.insert(current.leader);
                    }
                    remove_replicas_from_isr(current, &gone, controller_epoch)
                }
            }
        };
        if let Some(next) = next {
            decision.set_partition_state(model, tp, next);
            batch.partition_changed(model, tp);
        }
    }
    for (tp, brokers) in describe {
        for broker in brokers {
            decision.describe_replica_log(model, broker, &tp);
        }
    }
}

#[cfg(test)]
mod tests {
    use tributary_zk_layout::{BrokerEpoch, LeaderEpoch};

    use super::*;
    use crate::decision::BrokerRequest;
    use crate::event::Event;
    use crate::handlers::fixtures::*;
    use crate::handlers::handle;
    use crate::last_replica::ReplicaLog;

    fn brokers_changed(model: &mut ClusterModel, live: &[i32]) -> Decision {
        handle(
            model,
            Event::BrokersChanged {
                live: registrations(live),
            },
        )
    }

    #[test]
    fn leader_death_moves_leadership_to_the_next_in_isr_replica_and_bumps_the_epoch() {
        let mut model = cluster(&[1, 2, 3]);
        add_topic(
            &mut model,
            "t",
            &[
                (&[1, 2, 3], 1, 3, &[1, 2, 3]),
                (&[2, 3, 1], 2, 0, &[2, 3, 1]),
                (&[1, 3, 2], 1, 7, &[1, 2]),
            ],
        );
        let decision = brokers_changed(&mut model, &[2, 3]);
        let after = "t-0 {2 e4 [2, 3]} v11, t-1 {2 e1 [2, 3]} v12, t-2 {2 e8 [2]} v13";
        assert_decision(
            &decision,
            &[
                "set t-0 = {2 e4 [2, 3]} if v10",
                "set t-1 = {2 e1 [2, 3]} if v11",
                // 3 is live but not in the ISR: 2 leads.
                "set t-2 = {2 e8 [2]} if v12",
                &format!("LeaderAndIsr → 2: {after}"),
                &format!("LeaderAndIsr → 3: {after}"),
                "UpdateMetadata → 2: brokers [2, 3]; t-0 {2 e4 [2, 3]} v11 offline [1], \
                 t-1 {2 e1 [2, 3]} v12 offline [1], t-2 {2 e8 [2]} v13 offline [1]",
                "UpdateMetadata → 3: brokers [2, 3]; t-0 {2 e4 [2, 3]} v11 offline [1], \
                 t-1 {2 e1 [2, 3]} v12 offline [1], t-2 {2 e8 [2]} v13 offline [1]",
            ],
        );
        assert_eq!(
            model.partition_states[&tp("t", 0)]
                .leader_and_isr
                .leader_epoch,
            LeaderEpoch(4)
        );
        assert!(!model.is_registered(BrokerId(1)));
    }

    #[test]
    fn requests_carry_the_recipient_epoch_the_live_leaders_and_the_controller_epoch() {
        let mut model = cluster(&[1, 2]);
        add_topic(&mut model, "t", &[(&[1, 2], 1, 0, &[1, 2])]);
        let decision = brokers_changed(&mut model, &[2]);
        let BrokerRequest::LeaderAndIsr {
            to,
            broker_epoch,
            partitions,
            live_leaders,
        } = &decision.requests[0]
        else {
            panic!("expected LeaderAndIsr first: {decision:?}");
        };
        assert_eq!((*to, *broker_epoch), (BrokerId(2), BrokerEpoch(102)));
        assert_eq!(partitions[0].replicas, ids(&[1, 2]));
        assert_eq!(partitions[0].leader_and_isr.controller_epoch, EPOCH);
        assert_eq!(live_leaders.keys().copied().collect::<Vec<_>>(), ids(&[2]));
        assert_eq!(live_leaders[&BrokerId(2)].host, "broker-2");
    }

    #[test]
    fn when_the_last_isr_member_dies_the_leader_is_none_and_the_isr_keeps_it() {
        let mut model = cluster(&[1, 2]);
        add_topic(&mut model, "t", &[(&[1, 2], 1, 3, &[1])]);
        let decision = brokers_changed(&mut model, &[2]);
        assert_decision(
            &decision,
            &[
                "set t-0 = {-1 e4 [1]} if v10",
                "LeaderAndIsr → 2: t-0 {-1 e4 [1]} v11",
                "UpdateMetadata → 2: brokers [2]; t-0 {-1 e4 [1]} v11 offline [1]",
            ],
        );

        // The last ISR member returns: the controller first asks the replicas to describe
        // their logs (it may have lost records in an unclean shutdown)...
        let decision = brokers_changed(&mut model, &[1, 2]);
        assert_decision(
            &decision,
            &[
                "DescribeReplicaLogs → 1: t-0",
                "DescribeReplicaLogs → 2: t-0",
                "LeaderAndIsr → 1: t-0 {-1 e4 [1]} v11",
                "UpdateMetadata → 1: brokers [1, 2]; t-0 {-1 e4 [1]} v11",
                "UpdateMetadata → 2: brokers [1, 2]; t-0 {-1 e4 [1]} v11",
            ],
        );
        // ... and asks nothing twice while waiting for the answers.
        let decision = handle(
            &mut model,
            Event::IsrChanged {
                partitions: BTreeMap::new(),
            },
        );
        assert!(describe(&decision).is_empty());

        // Its log was shut down cleanly: a clean election makes it leader again.
        let decision = described(&mut model, 1, &[("t", 0, 3, 80, false)]);
        assert_decision(
            &decision,
            &[
                "set t-0 = {1 e5 [1]} if v11",
                "LeaderAndIsr → 1: t-0 {1 e5 [1]} v12",
                "LeaderAndIsr → 2: t-0 {1 e5 [1]} v12",
                "UpdateMetadata → 1: brokers [1, 2]; t-0 {1 e5 [1]} v12",
                "UpdateMetadata → 2: brokers [1, 2]; t-0 {1 e5 [1]} v12",
            ],
        );
        // The late answer of broker 2 is about a partition that has a leader now: dropped.
        assert!(describe(&described(&mut model, 2, &[("t", 0, 3, 90, false)])).is_empty());
        assert!(model.replica_logs.is_empty() && model.replica_logs_asked.is_empty());
    }

    /// Broker `broker` answers DescribeReplicaLogs with (topic, partition, last epoch, log end,
    /// needs verification) for each partition.
    fn described(
        model: &mut ClusterModel,
        broker: i32,
        logs: &[(&str, i32, i32, i64, bool)],
    ) -> Decision {
        let logs: BTreeMap<TopicPartition, ReplicaLog> = logs
            .iter()
            .map(|&(t, p, epoch, end, needs_verification)| {
                (
                    tp(t, p),
                    ReplicaLog {
                        last_leader_epoch: epoch,
                        log_end_offset: end,
                        needs_verification,
                    },
                )
            })
            .collect();
        handle(
            model,
            Event::ReplicaLogsDescribed {
                broker: BrokerId(broker),
                asked: logs.keys().cloned().collect(),
                logs: Some(logs),
            },
        )
    }

    #[test]
    fn an_unclean_last_isr_member_waits_for_every_replica_then_the_most_advanced_log_leads() {
        let mut model = cluster(&[2]);
        add_topic(&mut model, "t", &[(&[1, 2, 3], -1, 4, &[1])]);
        // Broker 1 (the last ISR member) returns after an unclean shutdown; broker 3 is down.
        brokers_changed(&mut model, &[1, 2]);
        assert!(describe(&described(&mut model, 2, &[("t", 0, 4, 130, false)])).is_empty());
        let decision = described(&mut model, 1, &[("t", 0, 4, 100, true)]);
        assert!(describe(&decision).is_empty());
        assert_eq!(
            decision.last_replica_notes,
            [LastReplicaNote::Waiting {
                partition: tp("t", 0),
                candidate: BrokerId(1),
                missing: ids(&[3]),
            }]
        );
        // Broker 3 returns: only it is asked; the logs already described are kept.
        let decision = brokers_changed(&mut model, &[1, 2, 3]);
        assert_eq!(describe(&decision)[0], "DescribeReplicaLogs → 3: t-0");
        let decision = described(&mut model, 3, &[("t", 0, 3, 140, false)]);
        // Broker 2 has the most advanced log (epoch 4, end 130): it leads alone.
        assert_eq!(describe(&decision)[0], "set t-0 = {2 e5 [2]} if v10");
        assert!(matches!(
            &decision.last_replica_notes[..],
            [LastReplicaNote::Elected {
                leader: BrokerId(2),
                ..
            }]
        ));
        assert!(decision.unclean_elections.is_empty());
    }

    #[test]
    fn a_leader_that_registered_after_its_state_was_written_is_demoted_and_checked() {
        // Loaded at failover: broker 1 leads per ZooKeeper, but registered (epoch 101) after
        // the state was written (zxid 50): it restarted while there was no controller.
        let mut model = cluster(&[1, 2, 3]);
        add_topic(
            &mut model,
            "t",
            &[(&[1, 2, 3], 1, 4, &[1]), (&[2, 3, 1], 2, 4, &[2, 3])],
        );
        model
            .partition_states
            .get_mut(&tp("t", 0))
            .unwrap()
            .written_at_zxid = Some(50);
        // Broker 2 registered (102) before partition 1's state was written (200): it stays.
        model
            .partition_states
            .get_mut(&tp("t", 1))
            .unwrap()
            .written_at_zxid = Some(200);
        let decision = handle(&mut model, Event::Startup);
        let lines = describe(&decision);
        assert_eq!(lines[0], "set t-0 = {-1 e5 [1]} if v10");
        assert_eq!(
            lines.iter().filter(|l| l.starts_with("set ")).count(),
            1,
            "{lines:#?}"
        );
        assert!(
            lines.contains(&"DescribeReplicaLogs → 1: t-0".to_string()),
            "{lines:#?}"
        );
        // Its log is intact (a re-registration, or kill -9 without page-cache loss): it leads
        // again after the check.
        let decision = described(&mut model, 1, &[("t", 0, 4, 60, false)]);
        assert_eq!(describe(&decision)[0], "set t-0 = {1 e6 [1]} if v11");
    }

    #[test]
    fn a_bounce_forgets_what_the_broker_described() {
        let mut model = cluster(&[2]);
        add_topic(&mut model, "t", &[(&[1, 2], -1, 4, &[1])]);
        brokers_changed(&mut model, &[1, 2]);
        described(&mut model, 2, &[("t", 0, 4, 130, false)]);
        assert_eq!(model.replica_logs[&tp("t", 0)].len(), 1);
        // Broker 2 bounces (new epoch) before broker 1 answers: asked again.
        let mut live = registrations(&[1, 2]);
        live.insert(BrokerId(2), broker(2, 999).1);
        let decision = handle(&mut model, Event::BrokersChanged { live });
        assert!(model.replica_logs.is_empty());
        assert!(describe(&decision).contains(&"DescribeReplicaLogs → 2: t-0".to_string()));
        // A refused request is forgotten, so the next change asks again.
        handle(
            &mut model,
            Event::ReplicaLogsDescribed {
                broker: BrokerId(2),
                asked: vec![tp("t", 0)],
                logs: None,
            },
        );
        assert!(
            !model
                .replica_logs_asked
                .contains(&(tp("t", 0), BrokerId(2)))
        );
    }

    #[test]
    fn unclean_election_picks_the_first_live_replica_when_the_topic_allows_it() {
        for (default, topic_override, expected) in [
            (true, None, "set t-0 = {3 e4 [3]} if v10"),
            (false, Some(true), "set t-0 = {3 e4 [3]} if v10"),
            (true, Some(false), "set t-0 = {-1 e4 [1]} if v10"),
        ] {
            let mut model = cluster(&[1, 2, 3]);
            model.unclean_default = default;
            if let Some(allowed) = topic_override {
                model.unclean_overrides.insert("t".into(), allowed);
            }
            add_topic(&mut model, "t", &[(&[1, 3, 2], 1, 3, &[1])]);
            let decision = brokers_changed(&mut model, &[2, 3]);
            assert_eq!(
                describe(&decision)[0],
                expected,
                "{default} {topic_override:?}"
            );
            // An unclean election is reported, so the loop can warn that data may be lost.
            let unclean = expected.starts_with("set t-0 = {3");
            assert_eq!(
                decision.unclean_elections,
                if unclean { vec![tp("t", 0)] } else { vec![] },
                "{default} {topic_override:?}"
            );
        }
    }

    #[test]
    fn a_returning_broker_gets_leader_and_isr_as_follower_for_all_its_partitions() {
        let mut model = cluster(&[2, 3]);
        add_topic(
            &mut model,
            "t",
            &[
                (&[1, 2, 3], 2, 4, &[2, 3]),
                (&[2, 3, 1], 2, 1, &[2, 3]),
                (&[2, 3], 3, 9, &[3, 2]),
            ],
        );
        let decision = brokers_changed(&mut model, &[1, 2, 3]);
        assert_decision(
            &decision,
            &[
                "LeaderAndIsr → 1: t-0 {2 e4 [2, 3]} v10, t-1 {2 e1 [2, 3]} v11",
                "UpdateMetadata → 1: brokers [1, 2, 3]; t-0 {2 e4 [2, 3]} v10, \
                 t-1 {2 e1 [2, 3]} v11, t-2 {3 e9 [3, 2]} v12",
                // Everyone learns that broker 1's replicas are online again.
                "UpdateMetadata → 2: brokers [1, 2, 3]; t-0 {2 e4 [2, 3]} v10, t-1 {2 e1 [2, 3]} v11",
                "UpdateMetadata → 3: brokers [1, 2, 3]; t-0 {2 e4 [2, 3]} v10, t-1 {2 e1 [2, 3]} v11",
            ],
        );
    }

    #[test]
    fn a_bounce_is_a_death_then_a_join() {
        let mut model = cluster(&[1, 2, 3]);
        add_topic(&mut model, "t", &[(&[1, 2, 3], 1, 3, &[1, 2, 3])]);
        let mut live = registrations(&[1, 2, 3]);
        live.insert(BrokerId(1), broker(1, 500).1);
        let decision = handle(&mut model, Event::BrokersChanged { live });
        assert_decision(
            &decision,
            &[
                "set t-0 = {2 e4 [2, 3]} if v10",
                "LeaderAndIsr → 2: t-0 {2 e4 [2, 3]} v11",
                "LeaderAndIsr → 3: t-0 {2 e4 [2, 3]} v11",
                "UpdateMetadata → 2: brokers [2, 3]; t-0 {2 e4 [2, 3]} v11 offline [1]",
                "UpdateMetadata → 3: brokers [2, 3]; t-0 {2 e4 [2, 3]} v11 offline [1]",
                "LeaderAndIsr → 1: t-0 {2 e4 [2, 3]} v11",
                "UpdateMetadata → 1: brokers [1, 2, 3]; t-0 {2 e4 [2, 3]} v11",
                "UpdateMetadata → 2: brokers [1, 2, 3]; t-0 {2 e4 [2, 3]} v11",
                "UpdateMetadata → 3: brokers [1, 2, 3]; t-0 {2 e4 [2, 3]} v11",
            ],
        );
        assert_eq!(model.live_brokers[&BrokerId(1)].epoch, BrokerEpoch(500));
        // The new incarnation's epoch is on its requests.
        assert!(decision.requests.iter().any(|r| matches!(
            r,
            BrokerRequest::LeaderAndIsr {
                to: BrokerId(1),
                broker_epoch: BrokerEpoch(500),
                ..
            }
        )));
    }

    #[test]
    fn an_older_registration_or_no_change_decides_nothing() {
        let mut model = cluster(&[1, 2]);
        add_topic(&mut model, "t", &[(&[1, 2], 1, 3, &[1, 2])]);
        let before = model.clone();
        let mut live = registrations(&[1, 2]);
        live.insert(BrokerId(1), broker(1, 7).1);
        assert!(handle(&mut model, Event::BrokersChanged { live }).is_empty());
        assert!(brokers_changed(&mut model, &[1, 2]).is_empty());
        assert_eq!(model, before);
    }

    #[test]
    fn a_dead_follower_leaves_the_isr_and_a_partition_not_touching_it_is_unchanged() {
        let mut model = cluster(&[1, 2, 3]);
        add_topic(
            &mut model,
            "t",
            &[(&[1, 2, 3], 1, 3, &[1, 3, 2]), (&[1, 2], 1, 0, &[1, 2])],
        );
        let decision = brokers_changed(&mut model, &[1, 2]);
        assert_decision(
            &decision,
            &[
                "set t-0 = {1 e4 [1, 2]} if v10",
                "LeaderAndIsr → 1: t-0 {1 e4 [1, 2]} v11",
                "LeaderAndIsr → 2: t-0 {1 e4 [1, 2]} v11",
                "UpdateMetadata → 1: brokers [1, 2]; t-0 {1 e4 [1, 2]} v11 offline [3]",
                "UpdateMetadata → 2: brokers [1, 2]; t-0 {1 e4 [1, 2]} v11 offline [3]",
            ],
        );
    }
}
