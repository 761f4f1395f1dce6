//! Compressed batches: stored and served byte for byte, validated by decompressing on the
//! leader only, and found by timestamp.

use tributary_record::{
    BatchHeader, Compression, HEADER_SIZE, RecordError, compute_crc, set_base_offset,
    set_partition_leader_epoch,
};

use super::*;
use crate::log::{LogConfig, LogError};

/// A batch compressed with `codec` whose records have the given timestamps (values repeat,
/// so the builder keeps the codec).
fn compressed(codec: Compression, timestamps: &[i64]) -> Vec<u8> {
    let mut builder = BatchBuilder::new().compression(codec);
    for (i, &timestamp) in timestamps.iter().enumerate() {
        builder.push(&Record {
            value: Some(Bytes::from(format!(
                "{i:04} a value that compresses well, well, well"
            ))),
            timestamp,
            ..Record::default()
        });
    }
    let batch = builder.build_vec();
    let header = BatchHeader::parse(&batch).unwrap();
    assert_eq!(header.attributes.compression(), Ok(codec), "{codec} kept");
    batch
}

fn reseal(batch: &mut [u8]) {
    let crc = compute_crc(batch);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

#[test]
fn compressed_batches_are_stored_and_served_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path(), LogConfig::default());
    let mut sent = Vec::new();
    for codec in Compression::ALL.into_iter().skip(1) {
        let batch = compressed(codec, &[1000; 30]);
        let info = log.append_as_leader(bytes_mut(&[&batch]), 4, 0).unwrap();
        assert_eq!(info.last_offset - info.base_offset, 29, "{codec}");
        let mut expected = batch;
        set_base_offset(&mut expected, info.base_offset);
        set_partition_leader_epoch(&mut expected, 4);
        sent.extend_from_slice(&expected);
    }
    let read = log.read(0, 1 << 20, None, true).unwrap().batches;
    assert_eq!(&read[..], &sent[..], "the bytes as produced, only stamped");
    let values: Vec<i64> = records(&read)
        .into_iter()
        .map(|(offset, _)| offset)
        .collect();
    assert_eq!(values, (0..120).collect::<Vec<_>>());

    // A follower copies them as they are, without decompressing.
    let follower_dir = tempfile::tempdir().unwrap();
    let follower = open_log(follower_dir.path(), LogConfig::default());
    follower
        .append_as_follower(BytesMut::from(&read[..]))
        .unwrap();
    assert_eq!(
        &follower.read(0, 1 << 20, None, true).unwrap().batches[..],
        &read[..]
    );
}

#[test]
fn corrupt_compressed_batches_are_refused_and_nothing_is_appended() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path(), LogConfig::default());
    log.append_as_leader(bytes_mut(&[&batch(2, 10, 0, 0)]), 0, 0)
        .unwrap();
    let (size, end) = (log.size_in_bytes(), log.log_end_offset());
    for codec in Compression::ALL.into_iter().skip(1) {
        let good = compressed(codec, &[5; 20]);
        // Garbage in the middle of the compressed stream, under a correct CRC.
        let mut corrupt = good.clone();
        let middle = HEADER_SIZE + (corrupt.len() - HEADER_SIZE) / 2;
        for byte in &mut corrupt[middle..middle + 8] {
            *byte = 0xA5;
        }
        reseal(&mut corrupt);
        // A stream that decompresses fine to fewer records than the header claims.
        let mut short_count = good.clone();
        short_count[57..61].copy_from_slice(&21i32.to_be_bytes());
        short_count[23..27].copy_from_slice(&20i32.to_be_bytes());
        reseal(&mut short_count);
        for (name, bad) in [("corrupt stream", &corrupt), ("wrong count", &short_count)] {
            let error = log
                .append_as_leader(bytes_mut(&[&good, bad]), 0, 0)
                .expect_err(name);
            assert!(
                matches!(
                    error,
                    LogError::InvalidBatch {
                        batch_index: 1,
                        source: RecordError::Decompression { .. }
                            | RecordError::InvalidRecord { .. }
                            | RecordError::InvalidHeader { .. },
                        ..
                    }
                ),
                "{codec} {name}: {error:?}"
            );
            assert_eq!(
                (log.size_in_bytes(), log.log_end_offset()),
                (size, end),
                "{codec} {name}: nothing appended"
            );
        }
    }
}

#[test]
fn offset_for_timestamp_looks_inside_compressed_batches() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path(), LogConfig::default());
    // Offsets 0..20 at 100, 110, ..., 290; then 20..40 with a maximum in the middle.
    let first: Vec<i64> = (0..20).map(|i| 100 + 10 * i).collect();
    let second: Vec<i64> = (0..20)
        .map(|i| if i == 7 { 900 } else { 300 + i })
        .collect();
    log.append_as_leader(bytes_mut(&[&compressed(Compression::Zstd, &first)]), 0, 0)
        .unwrap();
    log.append_as_leader(bytes_mut(&[&compressed(Compression::Lz4, &second)]), 0, 0)
        .unwrap();
    assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((0, 100)));
    assert_eq!(log.offset_for_timestamp(155).unwrap(), Some((6, 160)));
    assert_eq!(log.offset_for_timestamp(291).unwrap(), Some((20, 300)));
    assert_eq!(log.offset_for_timestamp(320).unwrap(), Some((27, 900)));
    assert_eq!(log.offset_for_timestamp(901).unwrap(), None);
}
