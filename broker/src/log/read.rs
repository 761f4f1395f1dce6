//! The I/O half of reads: given a [`ReadSnapshot`] taken under the log's lock, find and read
//! batches with positional reads, without the lock, so appends and reads never wait for each
//! other's I/O.
//!
//! A snapshot's `end` is the segment size at the time it was taken, so a read never sees a
//! batch that is still being written. If the segment is truncated or deleted meanwhile, the
//! open file handle keeps the data readable (deleted) or the read comes back short
//! (truncated); either way only whole batches are returned.

use std::os::unix::fs::FileExt;

use bytes::{Bytes, BytesMut};
use tributary_record::{BatchHeader, BatchIter, decode_records};

use super::LogError;
use super::recovery::read_header_at;
use super::segment::ReadSnapshot;

/// Walks headers from `snapshot.start` to the first batch for which `found` holds.
fn find_batch(
    snapshot: &ReadSnapshot,
    found: impl Fn(&BatchHeader) -> bool,
) -> Result<Option<(u64, BatchHeader)>, LogError> {
    let mut pos = snapshot.start;
    while let Some(header) = read_header_at(&snapshot.file, &snapshot.path, pos, snapshot.end)? {
        if found(&header) {
            return Ok(Some((pos, header)));
        }
        pos += header.total_size() as u64;
    }
    Ok(None)
}

/// Reads `len` bytes at `pos`; shorter if the file was truncated meanwhile.
fn read_bytes(snapshot: &ReadSnapshot, pos: u64, len: usize) -> Result<BytesMut, LogError> {
    let mut buf = BytesMut::zeroed(len);
    let mut filled = 0;
    while filled < len {
        match snapshot
            .file
            .read_at(&mut buf[filled..], pos + filled as u64)
        {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(LogError::io("reading segment", &snapshot.path, e)),
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

/// Whole batches from the one containing `offset`, within `max_bytes` (the first batch is
/// returned whole if `min_one_batch`), excluding batches whose last offset is ≥ `max_offset`.
pub(crate) fn read_batches(
    snapshot: &ReadSnapshot,
    offset: i64,
    max_bytes: usize,
    max_offset: Option<i64>,
    min_one_batch: bool,
) -> Result<Bytes, LogError> {
    let Some((pos, first)) = find_batch(snapshot, |h| h.last_offset() >= offset)? else {
        return Ok(Bytes::new());
    };
    let excluded = |h: &BatchHeader| max_offset.is_some_and(|max| h.last_offset() >= max);
    if excluded(&first) {
        return Ok(Bytes::new());
    }
    let available = snapshot.end - pos;
    let first_size = first.total_size() as u64;
    let mut want = (max_bytes as u64).min(available);
    if min_one_batch {
        want = want.max(first_size.min(available));
    }
    if want < first_size {
        return Ok(Bytes::new());
    }
    let mut buf = read_bytes(snapshot, pos, want as usize)?;
    let mut keep = 0;
    for item in BatchIter::new(&buf) {
        match item {
            Ok((header, _)) if !excluded(&header) => keep += header.total_size(),
            _ => break,
        }
    }
    buf.truncate(keep);
    Ok(buf.freeze())
}

/// The first record with timestamp ≥ `timestamp` in the first batch whose max timestamp is
/// ≥ `timestamp`, as (offset, timestamp); `None` if no batch in the snapshot qualifies.
pub(crate) fn find_offset_for_timestamp(
    snapshot: &ReadSnapshot,
    timestamp: i64,
) -> Result<Option<(i64, i64)>, LogError> {
    let Some((pos, header)) = find_batch(snapshot, |h| h.max_timestamp >= timestamp)? else {
        return Ok(None);
    };
    // The batch is chosen by the max timestamp in its header; only this one batch is read and
    // decoded (decompressed, if it is compressed) to find the record.
    let batch = read_bytes(snapshot, pos, header.total_size())?.freeze();
    // A stored batch that does not decode (damaged since it was validated) answers with its
    // base offset and max timestamp rather than failing the lookup.
    let record = decode_records(&batch)
        .ok()
        .and_then(|records| records.into_iter().find(|r| r.timestamp >= timestamp))
        .map(|r| (r.offset, r.timestamp));
    Ok(Some(
        record.unwrap_or((header.base_offset, header.max_timestamp)),
    ))
}
