//! Partition assignors for consumer groups: the group leader (one member, chosen by the
//! coordinator) computes who reads which partition with one of Kafka's strategies and sends
//! the result through SyncGroup. Pure: members and partition counts in, an assignment out.
//!
//! | assignor | Kafka name | rule |
//! |---|---|---|
//! | [`Assignor::Range`] | `range` | per topic: partitions in order, members by id; member *i* of *c* gets a contiguous range of `n / c` partitions, the first `n % c` members one more |
//! | [`Assignor::RoundRobin`] | `roundrobin` | every subscribed partition, by topic then partition, dealt in turn to the members by id (a member not subscribed to the topic is skipped) |
//! | [`Assignor::Sticky`] | `sticky` | balanced like round-robin, but every member keeps what it owned as far as balance allows, so a rebalance moves few partitions |
//!
//! The sticky rule, step by step (Kafka's `AbstractStickyAssignor` reaches the same two
//! properties with a more elaborate search):
//! 1. each member keeps the partitions it owned that still exist and that it still subscribes
//!    to; a partition claimed by two members goes to the one with the newer generation (a
//!    member that missed a rebalance may still claim partitions moved away from it);
//! 2. the remaining partitions go one by one, by topic then partition, to the subscribed member
//!    with the fewest partitions (ties: the smallest member id);
//! 3. while a member has at least two partitions more than another member that subscribes to
//!    one of them, one such partition moves (from the most loaded member, to the least loaded).

use std::collections::{BTreeMap, BTreeSet};

use super::TopicPartition;

/// An assignment strategy of the consumer protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Assignor {
    /// Kafka's `RangeAssignor` (the Java client's default before 3.0).
    Range,
    /// Kafka's `RoundRobinAssignor`.
    RoundRobin,
    /// Kafka's `StickyAssignor`.
    Sticky,
}

impl Assignor {
    /// The protocol name members announce in JoinGroup (Kafka's names).
    pub fn name(self) -> &'static str {
        match self {
            Assignor::Range => "range",
            Assignor::RoundRobin => "roundrobin",
            Assignor::Sticky => "sticky",
        }
    }

    /// The assignor called `name`, if known.
    pub fn from_name(name: &str) -> Option<Assignor> {
        [Assignor::Range, Assignor::RoundRobin, Assignor::Sticky]
            .into_iter()
            .find(|a| a.name() == name)
    }

    /// Assigns the partitions of `partition_counts` (topic → number of partitions) to
    /// `members`. Every partition of a topic at least one member subscribes to goes to
    /// exactly one subscribed member; topics missing from `partition_counts` are ignored.
    /// Every member appears in the result, possibly with no partitions; each member's
    /// partitions are sorted.
    pub fn assign(
        self,
        partition_counts: &BTreeMap<String, i32>,
        members: &[Member],
    ) -> Assignment {
        let mut assignment: Assignment = members
            .iter()
            .map(|m| (m.member_id.clone(), Vec::new()))
            .collect();
        match self {
            Assignor::Range => range(partition_counts, members, &mut assignment),
            Assignor::RoundRobin => round_robin(partition_counts, members, &mut assignment),
            Assignor::Sticky => sticky(partition_counts, members, &mut assignment),
        }
        for partitions in assignment.values_mut() {
            partitions.sort();
        }
        assignment
    }
}

/// What the leader knows of one member: its subscription, and for the sticky assignor what
/// it owned and in which generation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Member {
    /// The member id the coordinator gave it.
    pub member_id: String,
    /// The topics it subscribes to.
    pub topics: BTreeSet<String>,
    /// The partitions it owned before this rebalance.
    pub owned: Vec<TopicPartition>,
    /// The generation in which it owned them (-1 for none).
    pub generation: i32,
}

impl Member {
    /// A member subscribing to `topics` that owns nothing.
    pub fn new<I, S>(member_id: impl Into<String>, topics: I) -> Member
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Member {
            member_id: member_id.into(),
            topics: topics.into_iter().map(Into::into).collect(),
            owned: Vec::new(),
            generation: -1,
        }
    }
}

/// Member id → its partitions.
pub type Assignment = BTreeMap<String, Vec<TopicPartition>>;

/// The members subscribing to `topic`, by member id.
fn subscribers<'a>(members: &'a [Member], topic: &str) -> Vec<&'a Member> {
    let mut found: Vec<&Member> = members
        .iter()
        .filter(|m| m.topics.contains(topic))
        .collect();
    found.sort_by(|a, b| a.member_id.cmp(&b.member_id));
    found
}

fn range(counts: &BTreeMap<String, i32>, members: &[Member], assignment: &mut Assignment) {
    for (topic, &count) in counts {
        let consumers = subscribers(members, topic);
        if consumers.is_empty() {
            continue;
        }
        let count = count.max(0) as usize;
        let per_member = count / consumers.len();
        let with_extra = count % consumers.len();
        for (i, member) in consumers.iter().enumerate() {
            let start = i * per_member + i.min(with_extra);
            let length = per_member + usize::from(i < with_extra);
            let partitions = assignment.get_mut(&member.member_id).expect("every member");
            partitions
                .extend((start..start + length).map(|p| TopicPartition::new(topic, p as i32)));
        }
    }
}

/// Every partition some member subscribes to, by topic then partition.
fn subscribed_partitions(
    counts: &BTreeMap<String, i32>,
    members: &[Member],
) -> Vec<TopicPartition> {
    counts
        .iter()
        .filter(|(topic, _)| members.iter().any(|m| m.topics.contains(*topic)))
        .flat_map(|(topic, &count)| (0..count.max(0)).map(move |p| TopicPartition::new(topic, p)))
        .collect()
}

fn round_robin(counts: &BTreeMap<String, i32>, members: &[Member], assignment: &mut Assignment) {
    let mut order: Vec<&Member> = members.iter().collect();
    order.sort_by(|a, b| a.member_id.cmp(&b.member_id));
    let mut next = 0;
    for partition in subscribed_partitions(counts, members) {
        // The next member in the circle that subscribes to the topic (one exists).
        while !order[next % order.len()].topics.contains(&partition.topic) {
            next += 1;
        }
        let member = order[next % order.len()];
        assignment
            .get_mut(&member.member_id)
            .expect("every member")
            .push(partition);
        next += 1;
    }
}

fn sticky(counts: &BTreeMap<String, i32>, members: &[Member], assignment: &mut Assignment) {
    let exists = |tp: &TopicPartition| {
        counts
            .get(&tp.topic)
            .is_some_and(|&n| tp.partition >= 0 && tp.partition < n)
    };
    // 1. Keep what is still valid; the newest generation wins a partition claimed twice.
    let mut claims: BTreeMap<&TopicPartition, &Member> = BTreeMap::new();
    for member in members {
        for tp in member
            .owned
            .iter()
            .filter(|tp| exists(tp) && member.topics.contains(&tp.topic))
        {
            let keep = claims.get(tp).is_none_or(|other| {
                (member.generation, &other.member_id) > (other.generation, &member.member_id)
            });
            if keep {
                claims.insert(tp, member);
            }
        }
    }
    for (tp, member) in &claims {
        assignment
            .get_mut(&member.member_id)
            .expect("every member")
            .push((*tp).clone());
    }
    // 2. The rest, each to the least loaded subscriber.
    for tp in subscribed_partitions(counts, members) {
        if claims.contains_key(&tp) {
            continue;
        }
        let target = least_loaded(assignment, &subscribers(members, &tp.topic));
        assignment.get_mut(&target).expect("every member").push(tp);
    }
    // 3. Even out: move one partition at a time from the most to the least loaded member
    //    that may take it. Each move lowers the sum of squared loads, so this ends.
    loop {
        let mut donors: Vec<(&String, usize)> =
            assignment.iter().map(|(m, p)| (m, p.len())).collect();
        donors.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let mut moved = None;
        'search: for (donor, load) in &donors {
            let mut candidates: Vec<&Member> = members.iter().collect();
            candidates.sort_by_key(|m| (assignment[&m.member_id].len(), m.member_id.clone()));
            for receiver in candidates {
                if assignment[&receiver.member_id].len() + 1 >= *load {
                    break;
                }
                if let Some(tp) = assignment[*donor]
                    .iter()
                    .rev()
                    .find(|tp| receiver.topics.contains(&tp.topic))
                {
                    moved = Some(((*donor).clone(), receiver.member_id.clone(), tp.clone()));
                    break 'search;
                }
            }
        }
        let Some((donor, receiver, tp)) = moved else {
            break;
        };
        assignment
            .get_mut(&donor)
            .expect("donor")
            .retain(|p| *p != tp);
        assignment.get_mut(&receiver).expect("receiver").push(tp);
    }
}

/// The subscriber with the fewest partitions so far (ties: smallest member id).
fn least_loaded(assignment: &Assignment, subscribers: &[&Member]) -> String {
    subscribers
        .iter()
        .min_by_key(|m| (assignment[&m.member_id].len(), m.member_id.clone()))
        .expect("a subscribed partition has a subscriber")
        .member_id
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(topics: &[(&str, i32)]) -> BTreeMap<String, i32> {
        topics.iter().map(|(t, n)| ((*t).to_owned(), *n)).collect()
    }

    fn names(assignment: &Assignment, member: &str) -> Vec<String> {
        assignment[member]
            .iter()
            .map(|tp| format!("{}{}", tp.topic, tp.partition))
            .collect()
    }

    /// Every subscribed partition exactly once, each to a subscriber.
    fn assert_complete(
        counts: &BTreeMap<String, i32>,
        members: &[Member],
        assignment: &Assignment,
    ) {
        let mut seen = BTreeSet::new();
        for (member_id, partitions) in assignment {
            let member = members.iter().find(|m| &m.member_id == member_id).unwrap();
            for tp in partitions {
                assert!(member.topics.contains(&tp.topic), "{member_id} got {tp:?}");
                assert!(seen.insert(tp.clone()), "{tp:?} twice");
            }
        }
        assert_eq!(
            seen.into_iter().collect::<Vec<_>>(),
            subscribed_partitions(counts, members)
        );
    }

    #[test]
    fn range_gives_contiguous_ranges_per_topic_and_the_first_members_one_more() {
        // Kafka's documented example: t0 and t1 with 3 partitions each, two members.
        let topics = counts(&[("t0", 3), ("t1", 3)]);
        let members = [
            Member::new("c0", ["t0", "t1"]),
            Member::new("c1", ["t0", "t1"]),
        ];
        let assignment = Assignor::Range.assign(&topics, &members);
        assert_eq!(names(&assignment, "c0"), ["t00", "t01", "t10", "t11"]);
        assert_eq!(names(&assignment, "c1"), ["t02", "t12"]);
        // Six partitions over three members: 2/2/2, in ranges.
        let six = counts(&[("t", 6)]);
        let three = [
            Member::new("b", ["t"]),
            Member::new("a", ["t"]),
            Member::new("c", ["t"]),
        ];
        let assignment = Assignor::Range.assign(&six, &three);
        assert_eq!(names(&assignment, "a"), ["t0", "t1"]);
        assert_eq!(names(&assignment, "b"), ["t2", "t3"]);
        assert_eq!(names(&assignment, "c"), ["t4", "t5"]);
    }

    #[test]
    fn round_robin_deals_partitions_in_turn_skipping_members_not_subscribed() {
        let topics = counts(&[("t0", 3), ("t1", 3)]);
        let members = [
            Member::new("c0", ["t0", "t1"]),
            Member::new("c1", ["t0", "t1"]),
        ];
        let assignment = Assignor::RoundRobin.assign(&topics, &members);
        assert_eq!(names(&assignment, "c0"), ["t00", "t02", "t11"]);
        assert_eq!(names(&assignment, "c1"), ["t01", "t10", "t12"]);
        // Kafka's example with unequal subscriptions: c0 t0; c1 t0,t1; c2 t0,t1,t2.
        let topics = counts(&[("t0", 1), ("t1", 2), ("t2", 3)]);
        let members = [
            Member::new("c0", ["t0"]),
            Member::new("c1", ["t0", "t1"]),
            Member::new("c2", ["t0", "t1", "t2"]),
        ];
        let assignment = Assignor::RoundRobin.assign(&topics, &members);
        assert_eq!(names(&assignment, "c0"), ["t00"]);
        assert_eq!(names(&assignment, "c1"), ["t10"]);
        assert_eq!(names(&assignment, "c2"), ["t11", "t20", "t21", "t22"]);
        assert_complete(&topics, &members, &assignment);
    }

    #[test]
    fn sticky_keeps_what_members_owned_and_stays_balanced() {
        let topics = counts(&[("t", 6)]);
        let mut members = vec![
            Member::new("a", ["t"]),
            Member::new("b", ["t"]),
            Member::new("c", ["t"]),
        ];
        let first = Assignor::Sticky.assign(&topics, &members);
        assert!(first.values().all(|p| p.len() == 2), "{first:?}");
        // c leaves: a and b keep their partitions and share c's.
        members.pop();
        for member in &mut members {
            member.owned = first[&member.member_id].clone();
            member.generation = 1;
        }
        let second = Assignor::Sticky.assign(&topics, &members);
        for member in &members {
            let kept = member
                .owned
                .iter()
                .filter(|tp| second[&member.member_id].contains(tp))
                .count();
            assert_eq!(kept, 2, "{} keeps what it had", member.member_id);
            assert_eq!(second[&member.member_id].len(), 3);
        }
        // d joins: it gets one partition from each, the others keep the rest.
        for member in &mut members {
            member.owned = second[&member.member_id].clone();
            member.generation = 2;
        }
        members.push(Member::new("d", ["t"]));
        let third = Assignor::Sticky.assign(&topics, &members);
        assert_complete(&topics, &members, &third);
        assert_eq!(third.values().map(Vec::len).collect::<Vec<_>>(), [2, 2, 2]);
        for member in &members[..2] {
            assert!(
                third[&member.member_id]
                    .iter()
                    .all(|tp| member.owned.contains(tp))
            );
        }
    }

    #[test]
    fn sticky_resolves_double_claims_by_generation_and_drops_stale_ownership() {
        let topics = counts(&[("t", 2), ("u", 1)]);
        let mut a = Member::new("a", ["t"]);
        a.owned = vec![
            TopicPartition::new("t", 0),
            TopicPartition::new("t", 7),
            TopicPartition::new("u", 0),
        ];
        a.generation = 3;
        let mut b = Member::new("b", ["t", "u"]);
        b.owned = vec![TopicPartition::new("t", 0)];
        b.generation = 2;
        let members = [a, b];
        let assignment = Assignor::Sticky.assign(&topics, &members);
        assert_complete(&topics, &members, &assignment);
        // t0 stays with a (newer generation); t7 no longer exists; a no longer subscribes to u.
        assert_eq!(names(&assignment, "a"), ["t0"]);
        assert_eq!(names(&assignment, "b"), ["t1", "u0"]);
    }

    #[test]
    fn every_assignor_covers_every_partition_once_whatever_the_subscriptions() {
        let topics = counts(&[("a", 5), ("b", 3), ("c", 0), ("d", 4)]);
        let subscriptions: [&[&str]; 4] = [&["a", "b"], &["b", "d"], &["a", "d", "x"], &["a"]];
        let members: Vec<Member> = subscriptions
            .iter()
            .enumerate()
            .map(|(i, topics)| Member::new(format!("m{i}"), topics.iter().copied()))
            .collect();
        for assignor in [Assignor::Range, Assignor::RoundRobin, Assignor::Sticky] {
            let assignment = assignor.assign(&topics, &members);
            assert_complete(&topics, &members, &assignment);
            assert_eq!(Assignor::from_name(assignor.name()), Some(assignor));
        }
        let all_same = [
            Member::new("x", ["a", "b", "d"]),
            Member::new("y", ["a", "b", "d"]),
            Member::new("z", ["a", "b", "d"]),
        ];
        for assignor in [Assignor::RoundRobin, Assignor::Sticky] {
            let loads: Vec<usize> = assignor
                .assign(&topics, &all_same)
                .values()
                .map(Vec::len)
                .collect();
            assert!(
                loads.iter().max().unwrap() - loads.iter().min().unwrap() <= 1,
                "{assignor:?} {loads:?}"
            );
        }
        assert_eq!(Assignor::from_name("cooperative-sticky"), None);
        assert!(Assignor::Range.assign(&topics, &[]).is_empty());
    }
}
