//! Which partition a record goes to (pure: the random source is passed in, the producer task
//! owns the state).
//!
//! The rules are Kafka's (`DefaultPartitioner`, `UniformStickyPartitioner` and
//! `RoundRobinPartitioner` of the Java client 2.8):
//!
//! | record | [`Partitioner::Default`] | [`Partitioner::UniformSticky`] | [`Partitioner::RoundRobin`] |
//! |---|---|---|---|
//! | explicit partition | that partition | that partition | that partition |
//! | with key | `toPositive(murmur2(key)) % partitions` | sticky | next partition |
//! | without key | sticky | sticky | next partition |
//!
//! *Sticky* (KIP-480): keep sending to one partition until a new batch has to be opened for it
//! (its batch is full, or was sent), then move to another one picked at random among the
//! partitions that have a leader. Batches fill up faster than with round-robin, so keyless
//! records travel in fewer, larger requests.

use rand::Rng;

use super::fast_hash::FastMap;
use crate::ClientError;

/// How records without an explicit partition are spread over a topic's partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Partitioner {
    /// Kafka's default: a keyed record goes where [`partition_for_key`] says (the same partition
    /// the Java client would pick); a keyless record is sticky.
    #[default]
    Default,
    /// Every record without an explicit partition is sticky, key or not (Kafka's
    /// `UniformStickyPartitioner`).
    UniformSticky,
    /// Each record without an explicit partition goes to the next partition with a leader, key
    /// or not (Kafka's `RoundRobinPartitioner`).
    RoundRobin,
}

impl Partitioner {
    /// Parses `default`, `sticky` (uniform sticky) or `round-robin`.
    pub fn parse(text: &str) -> Result<Partitioner, ClientError> {
        match text.trim() {
            "default" | "murmur2" => Ok(Partitioner::Default),
            "sticky" | "uniform-sticky" => Ok(Partitioner::UniformSticky),
            "round-robin" | "roundrobin" => Ok(Partitioner::RoundRobin),
            other => Err(ClientError::InvalidArgument {
                argument: "partitioner",
                reason: format!("{other:?}: must be default, sticky or round-robin"),
            }),
        }
    }
}

/// Kafka's 32-bit murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`), bit for bit: seed
/// `0x9747b28c`, little-endian 4-byte words, Java `int` arithmetic (wrapping) and unsigned
/// shifts.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h = SEED ^ data.len() as u32;
    let mut words = data.chunks_exact(4);
    for word in &mut words {
        let mut k = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = words.remainder();
    if !tail.is_empty() {
        // Kafka's switch falls through from the third byte to the first.
        if tail.len() >= 3 {
            h ^= u32::from(tail[2]) << 16;
        }
        if tail.len() >= 2 {
            h ^= u32::from(tail[1]) << 8;
        }
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Kafka's `Utils.toPositive`: clears the sign bit (not `abs`, which overflows on `i32::MIN`).
pub fn to_positive(number: i32) -> i32 {
    number & 0x7fff_ffff
}

/// The partition Kafka's `DefaultPartitioner` gives a record with `key` in a topic of
/// `partitions` partitions (all of them, with a leader or not). `partitions` must be positive.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    debug_assert!(partitions > 0);
    to_positive(murmur2(key)) % partitions
}

/// The partitioner's choice for one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Choice {
    pub(crate) partition: i32,
    /// The record follows the topic's sticky partition: if that partition needs a new batch,
    /// call [`PartitionChooser::next_sticky`] and use its answer instead.
    pub(crate) sticky: bool,
}

/// The partitioner's state per topic: the sticky partition and the round-robin counter.
#[derive(Debug, Default)]
pub(crate) struct PartitionChooser {
    partitioner: Partitioner,
    /// Topic -> the partition keyless records currently stick to.
    sticky: FastMap<String, i32>,
    /// Topic -> the number of records placed round-robin so far.
    round_robin: FastMap<String, u32>,
}

impl PartitionChooser {
    pub(crate) fn new(partitioner: Partitioner) -> PartitionChooser {
        PartitionChooser {
            partitioner,
            ..PartitionChooser::default()
        }
    }

    /// Places a record of `topic` (`count` partitions, of which `available` have a leader).
    /// `available` is only called when the choice needs it (no explicit partition, no key hash).
    pub(crate) fn choose(
        &mut self,
        topic: &str,
        explicit: Option<i32>,
        key: Option<&[u8]>,
        count: i32,
        available: impl FnOnce() -> Vec<i32>,
        rng: &mut impl Rng,
    ) -> Choice {
        if let Some(partition) = explicit {
            return Choice {
                partition,
                sticky: false,
            };
        }
        match (self.partitioner, key) {
            (Partitioner::Default, Some(key)) => Choice {
                partition: partition_for_key(key, count),
                sticky: false,
            },
            (Partitioner::RoundRobin, _) => {
                let counter = self.round_robin.entry(topic.to_owned()).or_insert_with(|| {
                    // A random start, as Kafka does, so producers do not all begin at 0.
                    rng.random::<u32>()
                });
                let next = *counter;
                *counter = counter.wrapping_add(1);
                let available = available();
                let position = (next & 0x7fff_ffff) as usize;
                let partition = if available.is_empty() {
                    (position % count as usize) as i32
                } else {
                    available[position % available.len()]
                };
                Choice {
                    partition,
                    sticky: false,
                }
            }
            _ => match self.sticky.get(topic) {
                Some(&partition) if partition < count => Choice {
                    partition,
                    sticky: true,
                },
                _ => {
                    // A fresh pick needs no batch switch: it is the new sticky partition.
                    let partition = pick_other(None, count, &available(), rng);
                    self.sticky.insert(topic.to_owned(), partition);
                    Choice {
                        partition,
                        sticky: false,
                    }
                }
            },
        }
    }

    /// Called when a sticky record's partition `previous` would need a new batch: moves the
    /// topic's sticky partition to another available one (KIP-480's `onNewBatch`) and returns it.
    pub(crate) fn next_sticky(
        &mut self,
        topic: &str,
        previous: i32,
        count: i32,
        available: &[i32],
        rng: &mut impl Rng,
    ) -> i32 {
        let next = pick_other(Some(previous), count, available, rng);
        self.sticky.insert(topic.to_owned(), next);
        next
    }
}

/// A random partition among `available` (all `count` partitions if none has a leader), other
/// than `previous` when there is a choice.
fn pick_other(previous: Option<i32>, count: i32, available: &[i32], rng: &mut impl Rng) -> i32 {
    let candidates: Vec<i32> = if available.is_empty() {
        (0..count).collect()
    } else {
        available.to_vec()
    };
    let others: Vec<i32> = candidates
        .iter()
        .copied()
        .filter(|&p| Some(p) != previous)
        .collect();
    let pool = if others.is_empty() {
        &candidates
    } else {
        &others
    };
    pool[rng.random_range(0..pool.len())]
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn murmur2_matches_kafka_utils_test_vectors() {
        // Expected values from Kafka's UtilsTest.testMurmur2 (the Java client's own test), plus
        // the empty key and librdkafka's murmur2 unit-test inputs (same algorithm), so every
        // tail length 0-3 is covered.
        let table: [(&[u8], i32); 11] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
            (b"", 275_646_681),
            (b"kafka", 0xd067_cf64_u32 as i32),
            (b"giberish123456789", 0x8f55_2b0c_u32 as i32),
            (b"1234", 0x9fc9_7b14_u32 as i32),
            (b"234", 0xe7c0_09ca_u32 as i32),
        ];
        for (input, expected) in table {
            assert_eq!(
                murmur2(input),
                expected,
                "murmur2({:?})",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn keys_land_where_kafka_puts_them() {
        assert_eq!(to_positive(-1), i32::MAX);
        assert_eq!(to_positive(i32::MIN), 0);
        assert_eq!(to_positive(5), 5);
        // toPositive(murmur2("foobar")) = -790332482 & 0x7fffffff = 1357151166.
        assert_eq!(
            partition_for_key(b"foobar", 1_000_000),
            1_357_151_166 % 1_000_000
        );
        assert_eq!(
            partition_for_key(b"21", 7),
            (-973_932_308 & 0x7fff_ffff) % 7
        );
        for count in [1, 3, 12] {
            for key in [&b"abc"[..], b"", b"kafka"] {
                let p = partition_for_key(key, count);
                assert!((0..count).contains(&p));
            }
        }
    }

    fn rng() -> StdRng {
        StdRng::seed_from_u64(7)
    }

    #[test]
    fn explicit_partitions_win_and_keys_hash() {
        let mut chooser = PartitionChooser::new(Partitioner::Default);
        let mut rng = rng();
        let none = || -> Vec<i32> { panic!("not needed") };
        let choice = chooser.choose("t", Some(4), Some(b"k"), 6, none, &mut rng);
        assert_eq!(
            choice,
            Choice {
                partition: 4,
                sticky: false
            }
        );
        let choice = chooser.choose("t", None, Some(b"foobar"), 6, none, &mut rng);
        assert_eq!(choice.partition, partition_for_key(b"foobar", 6));
        assert!(!choice.sticky);
    }

    #[test]
    fn keyless_records_stick_until_a_new_batch_is_needed() {
        let mut chooser = PartitionChooser::new(Partitioner::Default);
        let mut rng = rng();
        let available = vec![0, 2, 3];
        let first = chooser.choose("t", None, None, 4, || available.clone(), &mut rng);
        assert!(
            !first.sticky,
            "a fresh pick is already the sticky partition"
        );
        assert!(available.contains(&first.partition));
        for _ in 0..10 {
            let again = chooser.choose("t", None, None, 4, || available.clone(), &mut rng);
            assert_eq!(again.partition, first.partition);
            assert!(again.sticky);
        }
        // Its batch is full: move to another available partition, never the same one.
        let mut seen = BTreeSet::new();
        let mut previous = first.partition;
        for _ in 0..50 {
            let next = chooser.next_sticky("t", previous, 4, &available, &mut rng);
            assert_ne!(next, previous);
            assert!(available.contains(&next), "{next} has no leader");
            assert_eq!(
                chooser
                    .choose("t", None, None, 4, Vec::new, &mut rng)
                    .partition,
                next
            );
            seen.insert(next);
            previous = next;
        }
        assert_eq!(seen, available.into_iter().collect());
        // One partition: nowhere else to go. No leader anywhere: any partition.
        assert_eq!(chooser.next_sticky("one", 0, 1, &[0], &mut rng), 0);
        let anywhere = chooser.next_sticky("dark", 1, 3, &[], &mut rng);
        assert!((0..3).contains(&anywhere) && anywhere != 1);
        // Topics stick independently; uniform sticky ignores keys.
        let mut uniform = PartitionChooser::new(Partitioner::UniformSticky);
        let a = uniform.choose("t", None, Some(b"k1"), 8, Vec::new, &mut rng);
        let b = uniform.choose("t", None, Some(b"k2"), 8, Vec::new, &mut rng);
        assert_eq!(a.partition, b.partition);
        assert!(b.sticky);
    }

    #[test]
    fn round_robin_cycles_over_available_partitions() {
        let mut chooser = PartitionChooser::new(Partitioner::RoundRobin);
        let mut rng = rng();
        let picks: Vec<i32> = (0..6)
            .map(|_| {
                chooser
                    .choose(
                        "t",
                        None,
                        Some(b"key ignored"),
                        4,
                        || vec![1, 2, 3],
                        &mut rng,
                    )
                    .partition
            })
            .collect();
        assert_eq!(picks[..3].iter().collect::<BTreeSet<_>>().len(), 3);
        assert_eq!(picks[..3], picks[3..], "{picks:?}");
        let without_leaders: BTreeSet<i32> = (0..4)
            .map(|_| {
                chooser
                    .choose("u", None, None, 4, Vec::new, &mut rng)
                    .partition
            })
            .collect();
        assert_eq!(without_leaders, (0..4).collect());
    }

    #[test]
    fn parses_names() {
        assert_eq!(Partitioner::parse("default").unwrap(), Partitioner::Default);
        assert_eq!(
            Partitioner::parse("sticky").unwrap(),
            Partitioner::UniformSticky
        );
        assert_eq!(
            Partitioner::parse("round-robin").unwrap(),
            Partitioner::RoundRobin
        );
        assert!(Partitioner::parse("random").is_err());
    }
}
