//! Property tests: whatever is appended reads back identically; a segment cut at any byte
//! recovers to a valid prefix.

use bytes::Bytes;
use proptest::prelude::*;

use super::{Log, bytes_mut, open_log, read_all, records, reopen_unclean};
use crate::log::LogConfig;

/// Tiny segments and indexes so a few dozen appends roll many times and fill indexes.
fn tiny_config() -> LogConfig {
    LogConfig {
        segment_bytes: 700,
        index_interval_bytes: 90,
        segment_index_bytes: 48,
        ..LogConfig::default()
    }
}

/// One append request: its batches, each a list of value lengths.
fn append_strategy() -> impl Strategy<Value = Vec<Vec<usize>>> {
    prop::collection::vec(prop::collection::vec(0usize..120, 1..8), 1..4)
}

/// Appends `requests` to `log`; returns (offset, value) of every record appended, in order.
fn append_all(log: &Log, requests: &[Vec<Vec<usize>>], seed: u8) -> Vec<(i64, Bytes)> {
    let mut expected = Vec::new();
    for (r, request) in requests.iter().enumerate() {
        let mut batches = Vec::new();
        let mut values = Vec::new();
        for (b, lengths) in request.iter().enumerate() {
            let mut builder = tributary_record::BatchBuilder::new();
            for (i, &len) in lengths.iter().enumerate() {
                let value: Bytes = (0..len)
                    .map(|j| (r * 31 + b * 7 + i * 3 + j) as u8 ^ seed)
                    .collect::<Vec<u8>>()
                    .into();
                builder.push(&tributary_record::Record {
                    value: Some(value.clone()),
                    timestamp: r as i64,
                    ..Default::default()
                });
                values.push(value);
            }
            batches.push(builder.build_vec());
        }
        let parts: Vec<&[u8]> = batches.iter().map(Vec::as_slice).collect();
        let info = log
            .append_as_leader(bytes_mut(&parts), 1, r as i64)
            .expect("append");
        assert_eq!(info.last_offset - info.base_offset + 1, values.len() as i64);
        for (i, value) in values.into_iter().enumerate() {
            expected.push((info.base_offset + i as i64, value));
        }
    }
    expected
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn appended_records_read_back_identically(
        requests in prop::collection::vec(append_strategy(), 1..40),
        reads in prop::collection::vec((any::<prop::sample::Index>(), 1usize..3000, any::<bool>()), 1..20),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let log = open_log(dir.path(), tiny_config());
        let expected = append_all(&log, &requests, 0);
        prop_assert!(expected.iter().enumerate().all(|(i, (o, _))| *o == i as i64));
        prop_assert_eq!(log.log_end_offset(), expected.len() as i64);
        prop_assert_eq!(read_all(&log, 0, 1 << 20), expected.clone());
        for (index, max_bytes, min_one) in reads {
            let offset = index.index(expected.len()) as i64;
            let result = log.read(offset, max_bytes, None, min_one).unwrap();
            let got = records(&result.batches);
            if min_one {
                prop_assert!(!got.is_empty());
            }
            if let Some(first) = got.first() {
                prop_assert!(first.0 <= offset);
                prop_assert!(got.iter().any(|(o, _)| *o == offset));
                let batch_count = tributary_record::BatchIter::new(&result.batches).count();
                prop_assert!(result.batches.len() <= max_bytes || (min_one && batch_count == 1));
            }
            for (o, value) in got {
                prop_assert_eq!(&expected[o as usize].1, &value);
            }
        }
        // Reopened (clean) the log reads the same.
        drop(log);
        let log = Log::open(&dir.path().join("t-0"), tiny_config(), 0, 0, true, 0).unwrap();
        prop_assert_eq!(read_all(&log, 0, 1 << 20), expected);
    }

    #[test]
    fn a_segment_cut_at_any_byte_recovers_to_a_valid_prefix(
        requests in prop::collection::vec(append_strategy(), 1..25),
        segment in any::<prop::sample::Index>(),
        cut in any::<prop::sample::Index>(),
        also_cut_index in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let log = open_log(dir.path(), tiny_config());
        let expected = append_all(&log, &requests, 0x5A);
        let bases = log.segment_base_offsets();
        drop(log);
        let base = bases[segment.index(bases.len())];
        let path = dir.path().join(format!("t-0/{base:020}.log"));
        let len = std::fs::metadata(&path).unwrap().len();
        let cut_at = cut.index(len as usize + 1) as u64;
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(cut_at).unwrap();
        if also_cut_index {
            let index = dir.path().join(format!("t-0/{base:020}.index"));
            let index_len = std::fs::metadata(&index).unwrap().len();
            std::fs::OpenOptions::new().write(true).open(&index).unwrap().set_len(index_len / 2 + 3).unwrap();
        }

        let log = reopen_unclean(dir.path(), tiny_config());
        let end = log.log_end_offset();
        prop_assert!(end <= expected.len() as i64);
        prop_assert!(end >= base, "segments before the cut one are intact");
        let recovered = read_all(&log, 0, 1 << 20);
        prop_assert_eq!(&recovered[..], &expected[..end as usize]);

        // The log accepts appends afterwards, at its end.
        let more = append_all(&log, &requests[..1], 0x33);
        let all = read_all(&log, 0, 1 << 20);
        prop_assert_eq!(all.len(), end as usize + more.len());
        prop_assert_eq!(more.first().map(|m| m.0), Some(end));
        prop_assert_eq!(&all[end as usize..], &more[..]);
    }
}
