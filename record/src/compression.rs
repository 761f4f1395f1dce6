//! The codecs of a compressed batch's records section (attribute bits 0-2): pure functions from
//! bytes to bytes, with the framing Kafka uses for each codec.
//!
//! ```text
//! codec   bits  records section (bytes 61..end of the batch)
//! none    0     the records as they are
//! gzip    1     a gzip stream (RFC 1952); several members are read one after another
//! snappy  2     snappy-java's "xerial" stream: an 16-byte header
//!                 [0x82 'S' 'N' 'A' 'P' 'P' 'Y' 0x00][version i32 BE = 1][min compatible i32 BE = 1]
//!               then chunks [compressed length i32 BE][raw snappy block of <= 32 KiB of input];
//!               a section without the header is read as one raw snappy block
//! lz4     3     one LZ4 frame (magic 0x184D2204), written with 64 KiB independent blocks and
//!               no checksums (FLG 0x60, BD 0x40); any single valid frame is read
//! zstd    4     a zstd frame (RFC 8878), written at level 3
//! ```
//!
//! The codecs themselves are crates (flate2, snap, lz4_flex, zstd); only snappy-java's chunk
//! framing, which no crate writes, is done here.
//!
//! Decompression is bounded: it stops with [`CompressionError::TooLarge`] once the output
//! would exceed the caller's limit (for batches [`MAX_DECOMPRESSED_RECORDS_SIZE`]), so a small
//! "decompression bomb" costs at most that much memory; zstd frames asking for a window larger
//! than 2^[`ZSTD_WINDOW_LOG_MAX`] bytes are refused before anything is allocated for them.

use std::io::{Read, Write};

use crate::Compression;

/// Largest records section a compressed batch may decompress to: 64 MiB.
///
/// Sixty-four times the default `max.message.bytes` (1 MiB) and as large as the biggest batch
/// the `perf` tool builds, so no batch Tributary writes comes near it, while a hostile batch
/// can make a reader allocate no more than this (plus the records decoded from it).
pub const MAX_DECOMPRESSED_RECORDS_SIZE: usize = 64 * 1024 * 1024;

/// zstd frames whose window is larger than 2^23 bytes (8 MiB) are refused. Level 3, which we
/// and Kafka write, uses at most 2^21; only levels above 19 ask for more.
pub const ZSTD_WINDOW_LOG_MAX: u32 = 23;

/// zstd level we write (Kafka's default, `compression.zstd.level` = 3).
const ZSTD_LEVEL: i32 = 3;

/// snappy-java's stream header magic.
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
/// Magic + version + minimum compatible version.
const XERIAL_HEADER_SIZE: usize = 16;
/// Version and minimum compatible version we write (snappy-java's).
const XERIAL_VERSION: i32 = 1;
/// Input bytes per snappy chunk (snappy-java's default block size).
const XERIAL_CHUNK_SIZE: usize = 32 * 1024;

/// Why bytes could not be compressed or decompressed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompressionError {
    /// The data is not a valid stream of the codec (corrupt, truncated, trailing bytes, or a
    /// different codec).
    #[error("corrupt {codec} data: {detail}")]
    Corrupt {
        /// The codec the data was read with.
        codec: Compression,
        /// What the codec reported.
        detail: String,
    },
    /// The data decompresses to more than the allowed number of bytes.
    #[error("{codec} data decompresses to more than {limit} bytes")]
    TooLarge {
        /// The codec the data was read with.
        codec: Compression,
        /// The limit that was exceeded.
        limit: usize,
    },
    /// The codec failed to compress (not expected for in-memory data: the libraries fail only
    /// on allocation failure or inputs of 4 GiB and more).
    #[error("{codec} compression failed: {detail}")]
    CompressFailed {
        /// The codec.
        codec: Compression,
        /// What the codec reported.
        detail: String,
    },
}

fn corrupt(codec: Compression, detail: impl ToString) -> CompressionError {
    CompressionError::Corrupt {
        codec,
        detail: detail.to_string(),
    }
}

/// Compresses `input` as one stream of `codec`, framed as described in the module docs.
/// [`Compression::None`] returns a copy.
pub fn compress(codec: Compression, input: &[u8]) -> Result<Vec<u8>, CompressionError> {
    let failed = |detail: std::io::Error| CompressionError::CompressFailed {
        codec,
        detail: detail.to_string(),
    };
    match codec {
        Compression::None => Ok(input.to_vec()),
        Compression::Gzip => {
            let mut encoder = flate2::write::GzEncoder::new(
                Vec::with_capacity(input.len() / 2 + 64),
                flate2::Compression::default(),
            );
            encoder.write_all(input).map_err(failed)?;
            encoder.finish().map_err(failed)
        }
        Compression::Snappy => {
            xerial_compress(input).map_err(|e| CompressionError::CompressFailed {
                codec,
                detail: e.to_string(),
            })
        }
        Compression::Lz4 => {
            let info = lz4_flex::frame::FrameInfo::new()
                .block_size(lz4_flex::frame::BlockSize::Max64KB)
                .block_mode(lz4_flex::frame::BlockMode::Independent);
            let mut encoder = lz4_flex::frame::FrameEncoder::with_frame_info(
                info,
                Vec::with_capacity(input.len() / 2 + 64),
            );
            encoder.write_all(input).map_err(failed)?;
            encoder.finish().map_err(|e| failed(e.into()))
        }
        Compression::Zstd => zstd::bulk::compress(input, ZSTD_LEVEL).map_err(failed),
    }
}

/// Decompresses one stream of `codec` (the whole of `input`: trailing bytes that are not a
/// further stream of the same codec are an error), producing at most `limit` bytes.
///
/// Never panics and never allocates much more than `limit` bytes, whatever `input` holds.
pub fn decompress(
    codec: Compression,
    input: &[u8],
    limit: usize,
) -> Result<Vec<u8>, CompressionError> {
    match codec {
        Compression::None => {
            if input.len() > limit {
                return Err(CompressionError::TooLarge { codec, limit });
            }
            Ok(input.to_vec())
        }
        Compression::Gzip => read_bounded(codec, flate2::read::MultiGzDecoder::new(input), limit),
        Compression::Snappy => xerial_decompress(input, limit),
        Compression::Lz4 => {
            // The frame decoder stops at the end of the first frame: anything after it is an
            // error here, as it is for the other codecs.
            let mut rest = input;
            let output = read_bounded(codec, lz4_flex::frame::FrameDecoder::new(&mut rest), limit)?;
            if !rest.is_empty() {
                return Err(corrupt(
                    codec,
                    format!("{} bytes after the end of the frame", rest.len()),
                ));
            }
            Ok(output)
        }
        Compression::Zstd => {
            let mut decoder =
                zstd::stream::read::Decoder::with_buffer(input).map_err(|e| corrupt(codec, e))?;
            decoder
                .window_log_max(ZSTD_WINDOW_LOG_MAX)
                .map_err(|e| corrupt(codec, e))?;
            read_bounded(codec, decoder, limit)
        }
    }
}

/// Reads `reader` to its end, failing as soon as it yields more than `limit` bytes.
fn read_bounded(
    codec: Compression,
    reader: impl Read,
    limit: usize,
) -> Result<Vec<u8>, CompressionError> {
    let mut out = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    reader
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|e| corrupt(codec, e))?;
    if out.len() > limit {
        return Err(CompressionError::TooLarge { codec, limit });
    }
    Ok(out)
}

fn xerial_compress(input: &[u8]) -> Result<Vec<u8>, snap::Error> {
    let chunks = input.len().div_ceil(XERIAL_CHUNK_SIZE);
    let mut out = Vec::with_capacity(
        XERIAL_HEADER_SIZE + chunks * 4 + snap::raw::max_compress_len(input.len().min(1 << 30)),
    );
    out.extend_from_slice(&XERIAL_MAGIC);
    out.extend_from_slice(&XERIAL_VERSION.to_be_bytes());
    out.extend_from_slice(&XERIAL_VERSION.to_be_bytes());
    let mut encoder = snap::raw::Encoder::new();
    let mut block = Vec::new();
    for chunk in input.chunks(XERIAL_CHUNK_SIZE) {
        block.resize(snap::raw::max_compress_len(chunk.len()), 0);
        let written = encoder.compress(chunk, &mut block)?;
        out.extend_from_slice(&(written as i32).to_be_bytes());
        out.extend_from_slice(&block[..written]);
    }
    Ok(out)
}

fn xerial_decompress(input: &[u8], limit: usize) -> Result<Vec<u8>, CompressionError> {
    let codec = Compression::Snappy;
    let mut out = Vec::new();
    let mut decoder = snap::raw::Decoder::new();
    let mut append_block = |out: &mut Vec<u8>, block: &[u8]| {
        let len = snap::raw::decompress_len(block).map_err(|e| corrupt(codec, e))?;
        let start = out.len();
        if len > limit - start {
            return Err(CompressionError::TooLarge { codec, limit });
        }
        out.resize(start + len, 0);
        let written = decoder
            .decompress(block, &mut out[start..])
            .map_err(|e| corrupt(codec, e))?;
        if written != len {
            return Err(corrupt(codec, "block shorter than its declared length"));
        }
        Ok(())
    };
    // snappy-java reads a stream without its header as one raw block; so do we.
    if !input.starts_with(&XERIAL_MAGIC) {
        append_block(&mut out, input)?;
        return Ok(out);
    }
    if input.len() < XERIAL_HEADER_SIZE {
        return Err(corrupt(codec, "truncated snappy-java stream header"));
    }
    let mut rest = &input[XERIAL_HEADER_SIZE..];
    while !rest.is_empty() {
        let Some((length, after)) = rest.split_first_chunk::<4>() else {
            return Err(corrupt(codec, "truncated chunk length"));
        };
        let length = usize::try_from(i32::from_be_bytes(*length))
            .map_err(|_| corrupt(codec, "negative chunk length"))?;
        if length > after.len() {
            return Err(corrupt(codec, "chunk extends past the end of the data"));
        }
        let (block, next) = after.split_at(length);
        append_block(&mut out, block)?;
        rest = next;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CODECS: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    fn sample(len: usize) -> Vec<u8> {
        (0..len).map(|i| b"tributary record "[i % 17]).collect()
    }

    #[test]
    fn every_codec_round_trips_empty_small_and_multi_block_inputs() {
        for codec in CODECS {
            for len in [0, 1, 100, XERIAL_CHUNK_SIZE, 200_000] {
                let input = sample(len);
                let compressed = compress(codec, &input).unwrap();
                let output = decompress(codec, &compressed, MAX_DECOMPRESSED_RECORDS_SIZE)
                    .unwrap_or_else(|e| panic!("{codec} {len}: {e}"));
                assert!(output == input, "{codec} {len}");
                if len == 200_000 && codec != Compression::None {
                    assert!(compressed.len() < len / 10, "{codec}: {}", compressed.len());
                }
            }
        }
    }

    #[test]
    fn framing_follows_kafka() {
        let input = sample(100);
        let gzip = compress(Compression::Gzip, &input).unwrap();
        assert_eq!(gzip[..3], [0x1f, 0x8b, 8]); // gzip magic, deflate
        let snappy = compress(Compression::Snappy, &input).unwrap();
        assert_eq!(snappy[..8], XERIAL_MAGIC);
        assert_eq!(snappy[8..16], [0, 0, 0, 1, 0, 0, 0, 1]);
        let chunk = i32::from_be_bytes(snappy[16..20].try_into().unwrap()) as usize;
        assert_eq!(20 + chunk, snappy.len());
        assert_eq!(
            snap::raw::Decoder::new()
                .decompress_vec(&snappy[20..])
                .unwrap(),
            input
        );
        let lz4 = compress(Compression::Lz4, &input).unwrap();
        // Magic 0x184D2204 (LE), FLG 0x60 (version 1, independent blocks, no checksums or
        // size), BD 0x40 (64 KiB blocks), header checksum; last: the 4-byte end mark.
        assert_eq!(lz4[..7], [0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x82]);
        assert_eq!(lz4[lz4.len() - 4..], [0, 0, 0, 0]);
        let zstd = compress(Compression::Zstd, &input).unwrap();
        assert_eq!(zstd[..4], [0x28, 0xb5, 0x2f, 0xfd]); // zstd frame magic (LE)
    }

    #[test]
    fn snappy_reads_a_raw_block_without_the_xerial_header() {
        let input = sample(1000);
        let raw = snap::raw::Encoder::new().compress_vec(&input).unwrap();
        assert_eq!(
            decompress(Compression::Snappy, &raw, 1 << 20).unwrap(),
            input
        );
    }

    #[test]
    fn corrupt_truncated_and_foreign_streams_are_errors() {
        let input = sample(5000);
        for codec in CODECS.into_iter().skip(1) {
            let compressed = compress(codec, &input).unwrap();
            // (lz4_flex accepts a frame that lacks only its 4-byte end mark: all data is there.)
            let truncated = &compressed[..compressed.len() / 2];
            assert!(
                matches!(
                    decompress(codec, truncated, 1 << 20),
                    Err(CompressionError::Corrupt { .. })
                ),
                "{codec} truncated"
            );
            let mut garbage = compressed.clone();
            garbage.extend_from_slice(b"trailing garbage");
            assert!(
                decompress(codec, &garbage, 1 << 20).is_err(),
                "{codec} trailing garbage"
            );
            for other in CODECS.into_iter().skip(1).filter(|&c| c != codec) {
                let foreign = compress(other, &input).unwrap();
                assert!(
                    decompress(codec, &foreign, 1 << 20).is_err(),
                    "{other} read as {codec}"
                );
            }
            // snappy and lz4 (as written, without checksums) may decode a flipped byte to
            // other bytes: the batch CRC is what catches that. It must not panic.
            let mut flipped = compressed;
            let middle = flipped.len() / 2;
            flipped[middle] ^= 0x55;
            let _ = decompress(codec, &flipped, 1 << 20);
        }
    }

    #[test]
    fn decompression_stops_at_the_limit() {
        let bomb = vec![0u8; 4 << 20];
        for codec in CODECS {
            let compressed = compress(codec, &bomb).unwrap();
            assert_eq!(
                decompress(codec, &compressed, 1 << 20),
                Err(CompressionError::TooLarge {
                    codec,
                    limit: 1 << 20
                }),
                "{codec}"
            );
            assert_eq!(
                decompress(codec, &compressed, 4 << 20).unwrap().len(),
                4 << 20
            );
        }
    }

    #[test]
    fn hostile_snappy_chunk_lengths_are_errors() {
        let mut stream = compress(Compression::Snappy, &sample(10)).unwrap();
        stream[16..20].copy_from_slice(&(-1i32).to_be_bytes());
        assert!(matches!(
            decompress(Compression::Snappy, &stream, 1 << 20),
            Err(CompressionError::Corrupt { .. })
        ));
        stream[16..20].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(decompress(Compression::Snappy, &stream, 1 << 20).is_err());
        assert!(decompress(Compression::Snappy, &XERIAL_MAGIC[..], 1 << 20).is_err());
        // A raw block claiming a 4 GiB output is refused before allocating it.
        let huge_claim = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00];
        assert!(decompress(Compression::Snappy, &huge_claim, 1 << 20).is_err());
    }
}
