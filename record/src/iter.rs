//! Walking a buffer of concatenated batches (a segment file, a fetch response).

use crate::RecordError;
use crate::batch::{BatchHeader, HEADER_SIZE};

/// Iterates over the complete batches at the front of a buffer.
///
/// Yields each batch's header and its byte range. Stops at the end of the buffer or at a
/// trailing partial batch (normal at the end of a size-limited fetch): check
/// [`BatchIter::consumed`] against the buffer length to tell the two apart. A malformed header
/// yields one `Err` and then ends the iteration. CRCs are not checked here.
#[derive(Debug, Clone)]
pub struct BatchIter<'a> {
    buf: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> BatchIter<'a> {
    /// Iterates over the batches in `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            failed: false,
        }
    }

    /// Bytes covered by the complete batches yielded so far.
    pub fn consumed(&self) -> usize {
        self.pos
    }
}

// Once `next` returns `None` (end, partial batch) or an `Err`, the position no longer moves.
impl std::iter::FusedIterator for BatchIter<'_> {}

impl<'a> Iterator for BatchIter<'a> {
    type Item = Result<(BatchHeader, &'a [u8]), RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let rest = &self.buf[self.pos..];
        if rest.len() < HEADER_SIZE {
            return None;
        }
        match BatchHeader::parse(rest) {
            Ok(header) => {
                let size = header.total_size();
                if size > rest.len() {
                    return None;
                }
                self.pos += size;
                Some(Ok((header, &rest[..size])))
            }
            Err(error) => {
                self.failed = true;
                Some(Err(error))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BatchBuilder, Record, set_base_offset};

    fn batch(base_offset: i64) -> Vec<u8> {
        let mut builder = BatchBuilder::new();
        builder.push(&Record {
            value: Some(bytes::Bytes::from_static(b"v")),
            ..Record::default()
        });
        let mut batch = builder.build_vec();
        set_base_offset(&mut batch, base_offset);
        batch
    }

    #[test]
    fn stops_before_a_trailing_partial_batch() {
        let one = batch(0);
        let mut buf = one.clone();
        buf.extend_from_slice(&batch(1)[..one.len() - 1]);
        let mut iter = BatchIter::new(&buf);
        assert_eq!(iter.next().unwrap().unwrap().1, &one[..]);
        assert!(iter.next().is_none());
        assert!(iter.next().is_none());
        assert_eq!(iter.consumed(), one.len());
    }

    #[test]
    fn garbage_after_a_batch_yields_one_error_then_ends() {
        let one = batch(0);
        let mut buf = one.clone();
        buf.extend_from_slice(&[0xff; HEADER_SIZE]);
        let mut iter = BatchIter::new(&buf);
        assert!(iter.next().unwrap().is_ok());
        assert_eq!(
            iter.next(),
            Some(Err(RecordError::UnsupportedMagic { magic: -1 }))
        );
        assert!(iter.next().is_none());
        assert_eq!(iter.consumed(), one.len());
    }

    #[test]
    fn regression_header_offsets_near_i64_max_do_not_overflow() {
        // base_offset is outside the CRC, so any value can arrive from the wire.
        let buf = batch(i64::MAX);
        let (header, _) = BatchIter::new(&buf).next().unwrap().unwrap();
        assert_eq!(header.last_offset(), i64::MAX);
        assert_eq!(header.next_offset(), i64::MIN);
    }
}
