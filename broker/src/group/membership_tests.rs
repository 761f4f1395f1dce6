//! The membership rules, one scenario per rule: requests and ticks at given times in, states,
//! answers and effects out.

use super::*;

const TIMEOUTS: Timeouts = Timeouts {
    min_session_ms: 1000,
    max_session_ms: 60_000,
    initial_delay_ms: 0,
};

fn request(member_id: &str, protocols: &[(&str, &str)]) -> JoinRequest {
    JoinRequest {
        member_id: member_id.to_owned(),
        group_instance_id: String::new(),
        client_id: "c".to_owned(),
        client_host: "/10.0.0.7".to_owned(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        protocol_type: CONSUMER_PROTOCOL_TYPE.to_owned(),
        protocols: protocols
            .iter()
            .map(|(name, metadata)| ((*name).to_owned(), Bytes::from(metadata.to_string())))
            .collect(),
    }
}

fn range(member_id: &str) -> JoinRequest {
    request(member_id, &[("range", "sub")])
}

/// What a decision did, in a comparable form.
#[derive(Debug, PartialEq)]
enum Seen {
    JoinOk {
        member: String,
        generation: i32,
        leader: String,
        members: usize,
    },
    JoinErr(String, &'static str),
    SyncOk(String, String),
    SyncErr(String, &'static str),
    Store(i32),
}

fn code(error: &GroupError) -> &'static str {
    match error {
        GroupError::UnknownMember { .. } => "UNKNOWN_MEMBER_ID",
        GroupError::IllegalGeneration { .. } => "ILLEGAL_GENERATION",
        GroupError::RebalanceInProgress { .. } => "REBALANCE_IN_PROGRESS",
        GroupError::MemberIdRequired { .. } => "MEMBER_ID_REQUIRED",
        GroupError::InvalidSessionTimeout { .. } => "INVALID_SESSION_TIMEOUT",
        GroupError::InconsistentProtocol { .. } => "INCONSISTENT_GROUP_PROTOCOL",
        GroupError::StaticMembership { .. } => "INVALID_REQUEST",
        GroupError::CoordinatorNotAvailable { .. } => "COORDINATOR_NOT_AVAILABLE",
        other => panic!("unexpected {other}"),
    }
}

fn seen(effects: Vec<Effect>) -> Vec<Seen> {
    effects
        .into_iter()
        .map(|effect| match effect {
            Effect::Join {
                member_id,
                outcome: Ok(joined),
            } => {
                assert_eq!(joined.member_id, member_id);
                Seen::JoinOk {
                    member: member_id,
                    generation: joined.generation,
                    leader: joined.leader,
                    members: joined.members.len(),
                }
            }
            Effect::Join {
                member_id,
                outcome: Err(error),
            } => Seen::JoinErr(member_id, code(&error)),
            Effect::Sync {
                member_id,
                outcome: Ok(assignment),
            } => Seen::SyncOk(member_id, String::from_utf8(assignment.to_vec()).unwrap()),
            Effect::Sync {
                member_id,
                outcome: Err(error),
            } => Seen::SyncErr(member_id, code(&error)),
            Effect::Store { generation } => Seen::Store(generation),
        })
        .collect()
}

fn join_ok(member: &str, generation: i32, leader: &str, members: usize) -> Seen {
    Seen::JoinOk {
        member: member.to_owned(),
        generation,
        leader: leader.to_owned(),
        members,
    }
}

/// Joins `request`, asserting it parks; returns the effects.
fn join_parked(group: &mut Group, request: JoinRequest, timeouts: Timeouts, now: i64) -> Vec<Seen> {
    let (reply, effects) = join("g", group, request, timeouts, now, |_| unreachable!());
    assert!(matches!(reply, Reply::Parked), "{reply:?}");
    seen(effects)
}

fn join_now(group: &mut Group, request: JoinRequest, now: i64) -> Result<Joined, &'static str> {
    let (reply, effects) = join("g", group, request, TIMEOUTS, now, |client| {
        format!("{client}-new")
    });
    assert!(effects.is_empty());
    match reply {
        Reply::Now(result) => result.map_err(|e| code(&e)),
        Reply::Parked => panic!("parked"),
    }
}

fn sync_now(
    group: &mut Group,
    member: &str,
    generation: i32,
    now: i64,
) -> Result<String, &'static str> {
    let (reply, effects) = sync("g", Some(group), member, generation, Vec::new(), now);
    assert!(effects.is_empty());
    match reply {
        Reply::Now(result) => result
            .map(|b| String::from_utf8(b.to_vec()).unwrap())
            .map_err(|e| code(&e)),
        Reply::Parked => panic!("parked"),
    }
}

fn assignments(pairs: &[(&str, &str)]) -> Vec<(String, Bytes)> {
    pairs
        .iter()
        .map(|(m, a)| ((*m).to_owned(), Bytes::from(a.to_string())))
        .collect()
}

/// A Stable group of generation 1 with members a (leader) and b, assigned "A" and "B".
fn stable_ab() -> Group {
    let mut group = Group::empty();
    group.pending_members.insert("a".into(), 10_000);
    group.pending_members.insert("b".into(), 10_000);
    assert_eq!(join_parked(&mut group, range("a"), TIMEOUTS, 0), vec![]);
    assert_eq!(
        join_parked(&mut group, range("b"), TIMEOUTS, 0),
        vec![join_ok("a", 1, "a", 2), join_ok("b", 1, "a", 0)]
    );
    let (reply, effects) = sync("g", Some(&mut group), "b", 1, Vec::new(), 1);
    assert!(matches!(reply, Reply::Parked) && effects.is_empty());
    let (reply, effects) = sync(
        "g",
        Some(&mut group),
        "a",
        1,
        assignments(&[("a", "A"), ("b", "B")]),
        1,
    );
    assert!(matches!(reply, Reply::Parked));
    assert_eq!(seen(effects), vec![Seen::Store(1)]);
    assert_eq!(group.state, GroupState::CompletingRebalance);
    assert_eq!(
        seen(stored("g", &mut group, 1, Ok(()), 2)),
        vec![
            Seen::SyncOk("a".into(), "A".into()),
            Seen::SyncOk("b".into(), "B".into())
        ]
    );
    assert_eq!(group.state, GroupState::Stable);
    group
}

#[test]
fn a_first_join_gets_member_id_required_and_the_id_joins() {
    let mut group = Group::empty();
    assert_eq!(
        join_now(&mut group, range(""), 0).unwrap_err(),
        "MEMBER_ID_REQUIRED"
    );
    assert_eq!(group.pending_members["c-new"], 10_000);
    assert_eq!(group.state, GroupState::Empty);
    // A made-up id is refused; the given one joins and, alone, completes at once.
    assert_eq!(
        join_now(&mut group, range("made-up"), 1).unwrap_err(),
        "UNKNOWN_MEMBER_ID"
    );
    assert_eq!(
        join_parked(&mut group, range("c-new"), TIMEOUTS, 1),
        vec![join_ok("c-new", 1, "c-new", 1)]
    );
    assert_eq!(group.state, GroupState::CompletingRebalance);
    assert_eq!(group.protocol.as_deref(), Some("range"));
    assert!(group.pending_members.is_empty());
}

#[test]
fn unused_member_ids_are_forgotten_after_the_session_timeout() {
    let mut group = Group::empty();
    join_now(&mut group, range(""), 0).unwrap_err();
    assert!(tick("g", &mut group, 9_999).is_empty());
    assert_eq!(group.pending_members.len(), 1);
    tick("g", &mut group, 10_000);
    assert!(group.pending_members.is_empty());
    assert_eq!(
        join_now(&mut group, range("c-new"), 10_001).unwrap_err(),
        "UNKNOWN_MEMBER_ID"
    );
}

#[test]
fn joins_are_refused_for_bad_timeouts_protocols_and_static_membership() {
    let mut group = stable_ab();
    let mut short = range("");
    short.session_timeout_ms = 999;
    assert_eq!(
        join_now(&mut group, short, 5).unwrap_err(),
        "INVALID_SESSION_TIMEOUT"
    );
    let mut long = range("");
    long.session_timeout_ms = 60_001;
    assert_eq!(
        join_now(&mut group, long, 5).unwrap_err(),
        "INVALID_SESSION_TIMEOUT"
    );
    assert_eq!(
        join_now(&mut group, request("", &[("roundrobin", "")]), 5).unwrap_err(),
        "INCONSISTENT_GROUP_PROTOCOL"
    );
    assert_eq!(
        join_now(&mut group, request("", &[]), 5).unwrap_err(),
        "INCONSISTENT_GROUP_PROTOCOL"
    );
    let mut other_type = range("");
    other_type.protocol_type = "connect".into();
    assert_eq!(
        join_now(&mut group, other_type, 5).unwrap_err(),
        "INCONSISTENT_GROUP_PROTOCOL"
    );
    let mut static_member = range("");
    static_member.group_instance_id = "i-1".into();
    assert_eq!(
        join_now(&mut group, static_member, 5).unwrap_err(),
        "INVALID_REQUEST"
    );
    assert_eq!(group.state, GroupState::Stable, "refusals change nothing");
    assert!(group.pending_members.is_empty());
}

#[test]
fn a_rebalance_waits_for_every_known_member_then_the_leader_assigns() {
    let mut group = stable_ab();
    // A new member: rebalance; a and b learn it from their heartbeats.
    group.pending_members.insert("c".into(), 20_000);
    assert_eq!(join_parked(&mut group, range("c"), TIMEOUTS, 10), vec![]);
    assert_eq!(group.state, GroupState::PreparingRebalance);
    assert_eq!(
        heartbeat("g", Some(&mut group), "a", 1, 11).map_err(|e| code(&e)),
        Err("REBALANCE_IN_PROGRESS")
    );
    assert_eq!(join_parked(&mut group, range("b"), TIMEOUTS, 12), vec![]);
    // Syncing or committing into a rebalance is refused.
    assert_eq!(
        sync_now(&mut group, "a", 1, 12).unwrap_err(),
        "REBALANCE_IN_PROGRESS"
    );
    assert_eq!(
        join_parked(&mut group, range("a"), TIMEOUTS, 13),
        vec![
            join_ok("a", 2, "a", 3),
            join_ok("b", 2, "a", 0),
            join_ok("c", 2, "a", 0)
        ]
    );
    // The old generation is gone.
    assert_eq!(
        sync_now(&mut group, "b", 1, 14).unwrap_err(),
        "ILLEGAL_GENERATION"
    );
    assert_eq!(
        heartbeat("g", Some(&mut group), "b", 1, 14).map_err(|e| code(&e)),
        Err("ILLEGAL_GENERATION")
    );
    assert_eq!(
        heartbeat("g", Some(&mut group), "b", 2, 14).map_err(|e| code(&e)),
        Ok(())
    );
    // Followers first, then the leader; stored: everyone gets their share.
    let (reply, _) = sync(
        "g",
        Some(&mut group),
        "c",
        2,
        assignments(&[("a", "X")]),
        15,
    );
    assert!(
        matches!(reply, Reply::Parked),
        "a follower's assignments are ignored"
    );
    let (_, effects) = sync(
        "g",
        Some(&mut group),
        "a",
        2,
        assignments(&[("a", "1"), ("c", "3")]),
        16,
    );
    assert_eq!(seen(effects), vec![Seen::Store(2)]);
    assert_eq!(
        seen(stored("g", &mut group, 2, Ok(()), 17)),
        vec![
            Seen::SyncOk("a".into(), "1".into()),
            Seen::SyncOk("c".into(), "3".into())
        ]
    );
    // b syncs late: answered at once, with the empty assignment the leader left it.
    assert_eq!(sync_now(&mut group, "b", 2, 18), Ok(String::new()));
    assert_eq!(sync_now(&mut group, "c", 2, 18), Ok("3".into()));
    assert_eq!(
        sync_now(&mut group, "zz", 2, 18).unwrap_err(),
        "UNKNOWN_MEMBER_ID"
    );
    assert_eq!(
        sync("g", None, "a", 2, Vec::new(), 18).0.now_code(),
        Some("UNKNOWN_MEMBER_ID")
    );
}

impl<T> Reply<T> {
    fn now_code(self) -> Option<&'static str> {
        match self {
            Reply::Now(Err(error)) => Some(code(&error)),
            _ => None,
        }
    }
}

#[test]
fn members_that_do_not_rejoin_are_dropped_at_the_rebalance_deadline() {
    let mut group = stable_ab();
    // b re-joins with new metadata; a stays silent. The deadline is the longest rebalance
    // timeout (30 s) from the start of the rebalance.
    assert_eq!(
        join_parked(&mut group, request("b", &[("range", "new")]), TIMEOUTS, 100),
        vec![]
    );
    assert_eq!(group.rebalance_deadline_ms, Some(30_100));
    // a keeps heartbeating (answered REBALANCE_IN_PROGRESS), so only the deadline removes it.
    assert!(heartbeat("g", Some(&mut group), "a", 1, 25_000).is_err());
    assert!(tick("g", &mut group, 30_099).is_empty());
    assert_eq!(
        seen(tick("g", &mut group, 30_100)),
        vec![join_ok("b", 2, "b", 1)],
        "b becomes the leader of generation 2"
    );
    assert!(!group.members.contains_key("a"));
}

#[test]
fn an_expired_session_removes_the_member_and_rebalances() {
    let mut group = stable_ab();
    heartbeat("g", Some(&mut group), "a", 1, 9_000).unwrap();
    // b was last heard at 1 (its sync): its 10 s session ends at 10_001.
    assert!(tick("g", &mut group, 10_000).is_empty());
    assert!(seen(tick("g", &mut group, 10_001)).is_empty());
    assert!(!group.members.contains_key("b"));
    assert_eq!(group.state, GroupState::PreparingRebalance);
    assert_eq!(
        heartbeat("g", Some(&mut group), "b", 1, 10_002).map_err(|e| code(&e)),
        Err("UNKNOWN_MEMBER_ID")
    );
    assert_eq!(
        join_parked(&mut group, range("a"), TIMEOUTS, 10_003),
        vec![join_ok("a", 2, "a", 1)]
    );
    // A member waiting for its join answer does not expire.
    let mut waiting = stable_ab();
    join_parked(&mut waiting, range("a"), TIMEOUTS, 5);
    tick("g", &mut waiting, 10_001);
    assert!(waiting.members.contains_key("a"));
    assert!(!waiting.members.contains_key("b"));
}

#[test]
fn leaving_rebalances_and_the_last_member_leaves_an_empty_group() {
    let mut group = stable_ab();
    assert_eq!(
        leave("g", Some(&mut group), "zz", 5)
            .map(seen)
            .map_err(|e| code(&e)),
        Err("UNKNOWN_MEMBER_ID")
    );
    assert!(seen(leave("g", Some(&mut group), "a", 5).unwrap()).is_empty());
    assert_eq!(group.leader.as_deref(), Some("b"));
    assert_eq!(group.state, GroupState::PreparingRebalance);
    // b leaves too, before re-joining: the rebalance completes with nobody: Empty,
    // generation 2, stored.
    assert_eq!(
        seen(leave("g", Some(&mut group), "b", 6).unwrap()),
        vec![Seen::Store(2)]
    );
    assert_eq!((group.state, group.generation), (GroupState::Empty, 2));
    assert_eq!(group.leader, None);
    // Kafka keeps the protocol type and notes when the group became Empty (its offsets
    // expire from then on).
    assert_eq!(group.protocol_type.as_deref(), Some(CONSUMER_PROTOCOL_TYPE));
    assert_eq!(group.state_timestamp, Some(6));
    // A member waiting for its join answer that leaves gets UNKNOWN_MEMBER_ID.
    let mut group = stable_ab();
    join_parked(&mut group, range("a"), TIMEOUTS, 5);
    assert_eq!(
        seen(leave("g", Some(&mut group), "a", 6).unwrap()),
        vec![Seen::JoinErr("a".into(), "UNKNOWN_MEMBER_ID")]
    );
}

#[test]
fn a_rebalance_cuts_short_the_syncs_waiting_for_the_leader() {
    let mut group = stable_ab();
    join_parked(&mut group, range("a"), TIMEOUTS, 5);
    join_parked(&mut group, range("b"), TIMEOUTS, 5);
    assert_eq!(group.state, GroupState::CompletingRebalance);
    let (reply, _) = sync("g", Some(&mut group), "b", 2, Vec::new(), 6);
    assert!(matches!(reply, Reply::Parked));
    // The leader dies before syncing: b's wait ends with REBALANCE_IN_PROGRESS.
    assert_eq!(
        seen(leave("g", Some(&mut group), "a", 7).unwrap()),
        vec![Seen::SyncErr("b".into(), "REBALANCE_IN_PROGRESS")]
    );
    assert_eq!(group.state, GroupState::PreparingRebalance);
    // A failed store answers the waiting members with the error and rebalances.
    let mut group = stable_ab();
    join_parked(&mut group, range("a"), TIMEOUTS, 5);
    join_parked(&mut group, range("b"), TIMEOUTS, 5);
    sync("g", Some(&mut group), "b", 2, Vec::new(), 6);
    sync("g", Some(&mut group), "a", 2, assignments(&[("a", "A")]), 6);
    assert_eq!(
        seen(stored("g", &mut group, 2, Err("no leader".into()), 7)),
        vec![
            Seen::SyncErr("a".into(), "COORDINATOR_NOT_AVAILABLE"),
            Seen::SyncErr("b".into(), "COORDINATOR_NOT_AVAILABLE")
        ]
    );
    assert_eq!(group.state, GroupState::PreparingRebalance);
    // A late report of another generation changes nothing.
    assert!(stored("g", &mut group, 1, Ok(()), 8).is_empty());
}

#[test]
fn an_unchanged_follower_rejoin_is_answered_from_the_current_generation() {
    let mut group = stable_ab();
    assert_eq!(
        join_now(&mut group, range("b"), 5),
        Ok(Joined {
            generation: 1,
            protocol_type: "consumer".into(),
            protocol: "range".into(),
            leader: "a".into(),
            member_id: "b".into(),
            members: Vec::new(),
        })
    );
    assert_eq!(group.state, GroupState::Stable);
    // The leader re-joining starts a rebalance (it may want to assign anew).
    assert_eq!(join_parked(&mut group, range("a"), TIMEOUTS, 6), vec![]);
    assert_eq!(group.state, GroupState::PreparingRebalance);
}

#[test]
fn the_initial_delay_waits_and_extends_while_members_arrive() {
    let timeouts = Timeouts {
        initial_delay_ms: 3000,
        ..TIMEOUTS
    };
    let mut group = Group::empty();
    for id in ["a", "b", "c"] {
        group.pending_members.insert(id.into(), 100_000);
    }
    assert_eq!(join_parked(&mut group, range("a"), timeouts, 0), vec![]);
    assert_eq!(
        group.initial_delay.map(|d| (d.until_ms, d.remaining_ms)),
        Some((3000, 27_000))
    );
    // Though every member has joined, the delay holds the rebalance.
    assert_eq!(join_parked(&mut group, range("b"), timeouts, 1000), vec![]);
    assert!(tick("g", &mut group, 2999).is_empty());
    // b arrived during the first wait: one more wait.
    assert!(tick("g", &mut group, 3000).is_empty());
    assert_eq!(
        group.initial_delay.map(|d| (d.until_ms, d.remaining_ms)),
        Some((6000, 24_000))
    );
    assert_eq!(join_parked(&mut group, range("c"), timeouts, 4000), vec![]);
    assert!(tick("g", &mut group, 6000).is_empty());
    // Nobody new during the third wait: the generation starts with all three.
    let effects = seen(tick("g", &mut group, 9000));
    assert_eq!(
        effects,
        vec![
            join_ok("a", 1, "a", 3),
            join_ok("b", 1, "a", 0),
            join_ok("c", 1, "a", 0)
        ]
    );
    // Pending ids hold completion back (Kafka's hasAllMembersJoined) until forgotten.
    assert!(group.pending_members.is_empty());
}

#[test]
fn the_protocol_is_chosen_by_first_preference_votes() {
    let mut group = Group::empty();
    let member = |id: &str, seq: u64, protocols: &[&str]| {
        let mut m = Member::joining(
            id,
            "c",
            10_000,
            10_000,
            protocols
                .iter()
                .map(|p| ((*p).to_owned(), Bytes::new()))
                .collect(),
            0,
        );
        m.join_sequence = seq;
        m
    };
    let mut set = |members: Vec<Member>| {
        group.members = members
            .into_iter()
            .map(|m| (m.member_id.clone(), m))
            .collect();
        select_protocol(&group)
    };
    // Two votes for roundrobin against one for range.
    assert_eq!(
        set(vec![
            member("a", 0, &["range", "roundrobin"]),
            member("b", 1, &["roundrobin", "range"]),
            member("c", 2, &["roundrobin", "range"]),
        ]),
        "roundrobin"
    );
    // sticky is not supported by c: its voters fall back to their next choice.
    assert_eq!(
        set(vec![
            member("a", 0, &["sticky", "range"]),
            member("b", 1, &["sticky", "range"]),
            member("c", 2, &["roundrobin", "range"]),
        ]),
        "range"
    );
    // A tie goes to the earliest member's preference.
    assert_eq!(
        set(vec![
            member("b", 1, &["roundrobin", "range"]),
            member("a", 0, &["range", "roundrobin"]),
        ]),
        "range"
    );
}

#[test]
fn commits_and_heartbeats_keep_a_session_alive_and_an_empty_group_knows_no_member() {
    let mut group = stable_ab();
    heard_from(&mut group, "b", 9_000);
    heartbeat("g", Some(&mut group), "a", 1, 9_000).unwrap();
    assert!(tick("g", &mut group, 18_999).is_empty());
    assert_eq!(group.members.len(), 2);
    let mut empty = Group::empty();
    assert_eq!(
        heartbeat("g", Some(&mut empty), "a", 0, 1).map_err(|e| code(&e)),
        Err("UNKNOWN_MEMBER_ID")
    );
    assert_eq!(
        heartbeat("g", None, "a", 0, 1).map_err(|e| code(&e)),
        Err("UNKNOWN_MEMBER_ID")
    );
}
