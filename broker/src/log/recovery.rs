//! Re-reading a segment's `.log` batch by batch: the scanner behind crash recovery, index
//! rebuilds and truncation.
//!
//! Recovery validates every batch (header sanity, exact length, CRC, offsets that never go
//! backwards) from the start of a segment; the first invalid or incomplete batch marks the
//! end of the valid prefix. What happens at that point (truncate the file there, delete all
//! later segments) is decided by the caller; this module only reports where the valid data
//! ends and why.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use tributary_record::{BatchHeader, HEADER_SIZE, RecordError};

use super::LogError;

/// Bytes read per `pread` while scanning (batches larger than this are read whole).
const SCAN_CHUNK: usize = 1 << 20;

/// One complete batch found by [`scan_batches`].
#[derive(Debug)]
pub(crate) struct ScannedBatch<'a> {
    /// Byte position of the batch in the file.
    pub(crate) position: u64,
    /// Its parsed header.
    pub(crate) header: BatchHeader,
    /// The whole batch, log overhead included.
    pub(crate) bytes: &'a [u8],
}

/// Why a scan stopped.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ScanEnd {
    /// Every byte up to the end belonged to a valid batch.
    Clean,
    /// The file ends inside a batch (a torn write).
    Torn,
    /// A batch failed validation.
    Invalid(RecordError),
}

/// Walks the complete batches of `file` in `[start, end)`, calling `visit` for each. `visit`
/// rejects a batch by returning an error, which stops the scan there. Returns the position
/// just after the last accepted batch and the reason the scan ended.
pub(crate) fn scan_batches(
    file: &File,
    path: &Path,
    start: u64,
    end: u64,
    mut visit: impl FnMut(&ScannedBatch<'_>) -> Result<(), RecordError>,
) -> Result<(u64, ScanEnd), LogError> {
    let mut buf: Vec<u8> = Vec::new();
    let mut buf_start = start;
    let mut pos = start;
    loop {
        if pos >= end {
            return Ok((pos, ScanEnd::Clean));
        }
        let buffered = |buf: &Vec<u8>, buf_start: u64| {
            (buf_start + buf.len() as u64).saturating_sub(pos) as usize
        };
        if buffered(&buf, buf_start) < HEADER_SIZE {
            fill(file, path, &mut buf, pos, SCAN_CHUNK, end)?;
            buf_start = pos;
            if buf.len() < HEADER_SIZE {
                return Ok((pos, ScanEnd::Torn));
            }
        }
        let at = (pos - buf_start) as usize;
        let header = match BatchHeader::parse(&buf[at..]) {
            Ok(header) => header,
            Err(error) => return Ok((pos, ScanEnd::Invalid(error))),
        };
        let size = header.total_size();
        if pos + size as u64 > end {
            return Ok((pos, ScanEnd::Torn));
        }
        if buffered(&buf, buf_start) < size {
            fill(file, path, &mut buf, pos, SCAN_CHUNK.max(size), end)?;
            buf_start = pos;
        }
        let at = (pos - buf_start) as usize;
        let batch = ScannedBatch {
            position: pos,
            header,
            bytes: &buf[at..at + size],
        };
        if let Err(error) = visit(&batch) {
            return Ok((pos, ScanEnd::Invalid(error)));
        }
        pos += size as u64;
    }
}

/// Replaces `buf` with up to `want` bytes of `file` from `pos` (never past `end`).
fn fill(
    file: &File,
    path: &Path,
    buf: &mut Vec<u8>,
    pos: u64,
    want: usize,
    end: u64,
) -> Result<(), LogError> {
    let len = want.min((end - pos) as usize);
    buf.clear();
    buf.resize(len, 0);
    let mut filled = 0;
    while filled < len {
        match file.read_at(&mut buf[filled..], pos + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(LogError::io("reading segment", path, e)),
        }
    }
    buf.truncate(filled);
    Ok(())
}

/// Reads the batch header at `pos` (for the read path's short forward scans). `None` when
/// fewer than a header's bytes remain before `end` (a concurrent truncation).
pub(crate) fn read_header_at(
    file: &File,
    path: &Path,
    pos: u64,
    end: u64,
) -> Result<Option<BatchHeader>, LogError> {
    if pos + HEADER_SIZE as u64 > end {
        return Ok(None);
    }
    let mut bytes = [0u8; HEADER_SIZE];
    match file.read_exact_at(&mut bytes, pos) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(LogError::io("reading segment", path, e)),
    }
    BatchHeader::parse(&bytes)
        .map(Some)
        .map_err(|source| LogError::CorruptSegment {
            path: path.to_path_buf(),
            position: pos,
            source,
        })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use bytes::Bytes;
    use tributary_record::{BatchBuilder, Record, set_base_offset};

    use super::*;

    fn batch(base: i64, records: usize) -> Vec<u8> {
        let mut builder = BatchBuilder::new();
        for i in 0..records {
            builder.push(&Record {
                value: Some(Bytes::from(vec![i as u8; 10])),
                timestamp: 1,
                ..Record::default()
            });
        }
        let mut bytes = builder.build_vec();
        set_base_offset(&mut bytes, base);
        bytes
    }

    #[test]
    fn reports_the_end_of_the_valid_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let (a, b) = (batch(0, 3), batch(3, 2));
        let mut file = File::create(&path).unwrap();
        file.write_all(&a).unwrap();
        file.write_all(&b).unwrap();
        file.write_all(&b[..20]).unwrap();
        drop(file);
        let file = File::open(&path).unwrap();
        let len = file.metadata().unwrap().len();
        let mut seen = Vec::new();
        let (end, why) = scan_batches(&file, &path, 0, len, |batch| {
            seen.push((batch.position, batch.header.base_offset));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, [(0, 0), (a.len() as u64, 3)]);
        assert_eq!(end, (a.len() + b.len()) as u64);
        assert_eq!(why, ScanEnd::Torn);

        let (end, why) = scan_batches(&file, &path, 0, len, |batch| {
            if batch.header.base_offset == 3 {
                Err(RecordError::InvalidHeader { reason: "test" })
            } else {
                Ok(())
            }
        })
        .unwrap();
        assert_eq!(end, a.len() as u64);
        assert_eq!(
            why,
            ScanEnd::Invalid(RecordError::InvalidHeader { reason: "test" })
        );
        assert_eq!(
            read_header_at(&file, &path, a.len() as u64, len)
                .unwrap()
                .unwrap()
                .base_offset,
            3
        );
        assert!(
            read_header_at(&file, &path, len - 10, len)
                .unwrap()
                .is_none()
        );
    }
}
