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
        Self { buf, pos: 0, failed: false }
    }

    /// Bytes covered by the complete batches yielded so far.
    pub fn consumed(&self) -> usize {
        self.pos
    }
}

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
