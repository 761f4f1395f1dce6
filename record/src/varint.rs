//! Zig-zag variable-length integers, as protobuf's `sint32`/`sint64` encode them.
//!
//! Each byte carries 7 bits, least significant group first; the high bit says "more follows".
//! Signed values are zig-zag mapped first (0 → 0, -1 → 1, 1 → 2, -2 → 3, ...), so small
//! negative numbers such as the `-1` that marks a null key stay one byte long.

/// Why a varint could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarintError {
    /// The input ended in the middle of the varint.
    Truncated,
    /// More continuation bytes than the type allows (5 for 32 bits, 10 for 64 bits).
    TooLong,
}

/// Bytes needed to encode `value` as a zig-zag varint.
pub fn varint_len(value: i32) -> usize {
    varlong_len(i64::from(value))
}

/// Bytes needed to encode `value` as a zig-zag varlong.
pub fn varlong_len(value: i64) -> usize {
    let mut v = zigzag64(value);
    let mut len = 1;
    while v >= 0x80 {
        v >>= 7;
        len += 1;
    }
    len
}

/// Appends `value` as a zig-zag varint.
pub fn put_varint(out: &mut Vec<u8>, value: i32) {
    put_varlong(out, i64::from(value));
}

/// Appends `value` as a zig-zag varlong.
pub fn put_varlong(out: &mut Vec<u8>, value: i64) {
    let mut v = zigzag64(value);
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a zig-zag varint from the front of `input`; returns the value and the bytes used.
pub fn get_varint(input: &[u8]) -> Result<(i32, usize), VarintError> {
    let (raw, used) = get_unsigned(input, 5)?;
    let raw = u32::try_from(raw).map_err(|_| VarintError::TooLong)?;
    Ok((((raw >> 1) as i32) ^ -((raw & 1) as i32), used))
}

/// Reads a zig-zag varlong from the front of `input`; returns the value and the bytes used.
pub fn get_varlong(input: &[u8]) -> Result<(i64, usize), VarintError> {
    let (raw, used) = get_unsigned(input, 10)?;
    Ok((((raw >> 1) as i64) ^ -((raw & 1) as i64), used))
}

fn zigzag64(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn get_unsigned(input: &[u8], max_bytes: usize) -> Result<(u64, usize), VarintError> {
    let mut result: u64 = 0;
    for (i, &byte) in input.iter().enumerate() {
        if i == max_bytes {
            return Err(VarintError::TooLong);
        }
        result |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((result, i + 1));
        }
    }
    if input.len() >= max_bytes {
        Err(VarintError::TooLong)
    } else {
        Err(VarintError::Truncated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_encodings() {
        // (value, bytes) pairs from the protobuf encoding guide's zig-zag table.
        let cases: &[(i64, &[u8])] = &[
            (0, &[0x00]),
            (-1, &[0x01]),
            (1, &[0x02]),
            (-2, &[0x03]),
            (63, &[0x7e]),
            (-64, &[0x7f]),
            (64, &[0x80, 0x01]),
            (300, &[0xd8, 0x04]),
            (i64::from(i32::MAX), &[0xfe, 0xff, 0xff, 0xff, 0x0f]),
            (i64::from(i32::MIN), &[0xff, 0xff, 0xff, 0xff, 0x0f]),
        ];
        for &(value, bytes) in cases {
            let mut out = Vec::new();
            put_varlong(&mut out, value);
            assert_eq!(out, bytes, "encoding {value}");
            assert_eq!(varlong_len(value), bytes.len());
            assert_eq!(get_varlong(bytes), Ok((value, bytes.len())));
            if let Ok(v32) = i32::try_from(value) {
                assert_eq!(get_varint(bytes), Ok((v32, bytes.len())));
            }
        }
    }

    #[test]
    fn extremes_of_64_bits_round_trip() {
        for value in [i64::MIN, i64::MAX, -1_234_567_890_123, 1 << 40] {
            let mut out = Vec::new();
            put_varlong(&mut out, value);
            assert_eq!(get_varlong(&out), Ok((value, out.len())));
        }
    }

    #[test]
    fn malformed_inputs_are_errors() {
        assert_eq!(get_varint(&[]), Err(VarintError::Truncated));
        assert_eq!(get_varint(&[0x80, 0x80]), Err(VarintError::Truncated));
        assert_eq!(get_varint(&[0x80; 6]), Err(VarintError::TooLong));
        // Fits in 5 bytes but not in 32 bits.
        assert_eq!(
            get_varint(&[0xff, 0xff, 0xff, 0xff, 0x7f]),
            Err(VarintError::TooLong)
        );
        assert_eq!(get_varlong(&[0xff; 11]), Err(VarintError::TooLong));
    }
}
