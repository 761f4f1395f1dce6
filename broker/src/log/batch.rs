//! The few v2 batch header edits the log makes that the record crate does not export.
//!
//! The record crate keeps its field positions private; the log needs one more in-place edit
//! (LogAppendTime stamping), so the positions it touches are repeated here from the v2 layout
//! (`docs/record-format.md`): attributes at byte 21 (i16), max_timestamp at 35 (i64), CRC at
//! 17 (u32, covering bytes 21..end).

use tributary_record::{Attributes, TimestampType, compute_crc};

const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;
const MAX_TIMESTAMP_AT: usize = 35;

/// Sets attribute bit 3 (LogAppendTime) and `max_timestamp = now_ms` in the single batch
/// `batch`, then recomputes its CRC (both fields are CRC-covered).
pub(crate) fn stamp_log_append_time(batch: &mut [u8], now_ms: i64) {
    let attributes = i16::from_be_bytes([batch[ATTRIBUTES_AT], batch[ATTRIBUTES_AT + 1]]);
    let attributes = Attributes(attributes).with_timestamp_type(TimestampType::LogAppendTime);
    batch[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.0.to_be_bytes());
    batch[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&now_ms.to_be_bytes());
    let crc = compute_crc(batch);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use tributary_record::{BatchBuilder, Record, validate_batch};

    use super::*;

    #[test]
    fn log_append_time_stamp_keeps_the_batch_valid() {
        let mut builder = BatchBuilder::new();
        builder.push(&Record { value: Some(Bytes::from_static(b"v")), timestamp: 5, ..Record::default() });
        let mut batch = builder.build_vec();
        stamp_log_append_time(&mut batch, 1234);
        let header = validate_batch(&batch).expect("valid after stamping");
        assert_eq!(header.max_timestamp, 1234);
        assert_eq!(header.attributes.timestamp_type(), TimestampType::LogAppendTime);
        assert_eq!(header.first_timestamp, 5);
    }
}
