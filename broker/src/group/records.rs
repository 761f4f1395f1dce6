//! The records of `__consumer_offsets`, in Kafka's binary layout (Kafka 2.8's
//! `OffsetCommitKey`, `OffsetCommitValue`, `GroupMetadataKey`), so the topic reads as Kafka's.
//! Pure: bytes in, values out.
//!
//! Every key and value starts with a big-endian `int16` version; the key's version says what
//! the record is. Strings are an `int16` byte length followed by UTF-8 bytes. Integers are
//! big-endian.
//!
//! ```text
//! OffsetCommitKey v1 (v0 is the same)   GroupMetadataKey v2
//!   int16  version = 1                    int16  version = 2
//!   string group                          string group
//!   string topic
//!   int32  partition
//!
//! OffsetCommitValue (this broker writes v3; reads v0-v3)
//!   int16  version
//!   int64  offset              committed offset = the next offset to consume
//!   int32  leader_epoch        v3 only; -1 = unknown
//!   string metadata
//!   int64  commit_timestamp    ms since the epoch
//!   int64  expire_timestamp    v1 only
//! ```
//!
//! GroupMetadataValue (this broker writes v3; reads v0-v3), written when a rebalance completes
//! (the leader's assignments, or a group left without members):
//!
//! ```text
//!   int16  version
//!   string protocol_type         "" for a group without members
//!   int32  generation
//!   string protocol              nullable (int16 length -1 = null)
//!   string leader                nullable
//!   int64  current_state_timestamp   v2+; ms, -1 = unknown
//!   int32  member count, then per member:
//!     string member_id
//!     string group_instance_id   v3+; nullable (always null here: no static membership)
//!     string client_id
//!     string client_host
//!     int32  rebalance_timeout   v1+; ms
//!     int32  session_timeout     ms
//!     bytes  subscription        int32 length + bytes: the metadata of the chosen protocol
//!     bytes  assignment          int32 length + bytes
//! ```
//!
//! A record with a null value is a tombstone: the offset (or the group) is deleted, and
//! compaction later drops the key. Records are keyed so that compaction keeps the latest commit per
//! group and partition, and an unclean stop leaves at worst a partial batch, which log recovery
//! truncates like any other.

use bytes::{BufMut, Bytes};

/// The key version of offset commits this broker writes (Kafka 2.8 writes 1; 0 is identical).
pub const OFFSET_COMMIT_KEY_VERSION: i16 = 1;
/// The value version of offset commits this broker writes (Kafka 2.1+ without an explicit
/// expiry).
pub const OFFSET_COMMIT_VALUE_VERSION: i16 = 3;
/// The key version of group metadata records.
pub const GROUP_METADATA_KEY_VERSION: i16 = 2;
/// The value version of group metadata this broker writes (Kafka 2.3+).
pub const GROUP_METADATA_VALUE_VERSION: i16 = 3;

/// Why a key or value of `__consumer_offsets` cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OffsetsRecordError {
    /// The bytes end before the field.
    #[error("record truncated: {field} needs {needed} bytes, {available} left")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes left.
        available: usize,
    },
    /// A key version this broker does not know (a newer Kafka record type).
    #[error("unknown key version {0}")]
    UnknownKeyVersion(i16),
    /// An offset commit value version this broker does not know.
    #[error("unknown offset commit value version {0}")]
    UnknownValueVersion(i16),
    /// A string field is null or negative-length where Kafka's schema says non-null.
    #[error("{field} has invalid length {length}")]
    InvalidLength {
        /// The field.
        field: &'static str,
        /// The length read.
        length: i16,
    },
    /// A string field is not UTF-8.
    #[error("{field} is not valid UTF-8")]
    InvalidUtf8 {
        /// The field.
        field: &'static str,
    },
    /// Bytes remain after the last field.
    #[error("{0} bytes left after the last field")]
    TrailingBytes(usize),
}

/// What a `__consumer_offsets` key names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffsetsKey {
    /// A committed offset of one group for one topic-partition.
    OffsetCommit {
        /// The group id.
        group: String,
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },
    /// A group's membership and generation.
    GroupMetadata {
        /// The group id.
        group: String,
    },
}

/// A committed offset as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitValue {
    /// The next offset to consume.
    pub offset: i64,
    /// The leader epoch of the last consumed record; -1 when unknown (and for v0-v2).
    pub leader_epoch: i32,
    /// Free text from the committer (at most `offset.metadata.max.bytes`).
    pub metadata: String,
    /// When the commit was accepted, ms since the epoch.
    pub commit_timestamp: i64,
    /// v1 only: when the offset expires (ms), else `None`.
    pub expire_timestamp: Option<i64>,
}

/// A group's membership as stored when a rebalance completes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMetadataValue {
    /// The members' protocol type ("" without members).
    pub protocol_type: String,
    /// The generation.
    pub generation: i32,
    /// The chosen protocol (`None` without members).
    pub protocol: Option<String>,
    /// The leader (`None` without members).
    pub leader: Option<String>,
    /// When the group entered its state (ms), -1 when unknown (v0-v1).
    pub current_state_timestamp: i64,
    /// The members.
    pub members: Vec<MemberMetadata>,
}

/// One member in a [`GroupMetadataValue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberMetadata {
    /// Its id.
    pub member_id: String,
    /// Its static id (v3; always `None` from this broker).
    pub group_instance_id: Option<String>,
    /// Its client id.
    pub client_id: String,
    /// Its host as the coordinator saw it.
    pub client_host: String,
    /// Rebalance timeout (ms); for v0 the session timeout, as Kafka reads it.
    pub rebalance_timeout_ms: i32,
    /// Session timeout (ms).
    pub session_timeout_ms: i32,
    /// Its metadata for the chosen protocol.
    pub subscription: Bytes,
    /// Its assignment.
    pub assignment: Bytes,
}

/// The value of a group's metadata (version [`GROUP_METADATA_VALUE_VERSION`]).
pub fn group_metadata_value(value: &GroupMetadataValue) -> Bytes {
    let mut out = Vec::with_capacity(64);
    out.put_i16(GROUP_METADATA_VALUE_VERSION);
    put_string(&mut out, &value.protocol_type);
    out.put_i32(value.generation);
    put_nullable_string(&mut out, value.protocol.as_deref());
    put_nullable_string(&mut out, value.leader.as_deref());
    out.put_i64(value.current_state_timestamp);
    out.put_i32(i32::try_from(value.members.len()).expect("member count fits an int32"));
    for member in &value.members {
        put_string(&mut out, &member.member_id);
        put_nullable_string(&mut out, member.group_instance_id.as_deref());
        put_string(&mut out, &member.client_id);
        put_string(&mut out, &member.client_host);
        out.put_i32(member.rebalance_timeout_ms);
        out.put_i32(member.session_timeout_ms);
        put_bytes(&mut out, &member.subscription);
        put_bytes(&mut out, &member.assignment);
    }
    Bytes::from(out)
}

/// Decodes a group metadata value of version 0 to 3.
pub fn decode_group_metadata_value(bytes: &[u8]) -> Result<GroupMetadataValue, OffsetsRecordError> {
    let mut reader = Reader { rest: bytes };
    let version = reader.i16("value version")?;
    if !(0..=3).contains(&version) {
        return Err(OffsetsRecordError::UnknownValueVersion(version));
    }
    let protocol_type = reader.string("protocol_type")?;
    let generation = reader.i32("generation")?;
    let protocol = reader.nullable_string("protocol")?;
    let leader = reader.nullable_string("leader")?;
    let current_state_timestamp = if version >= 2 {
        reader.i64("current_state_timestamp")?
    } else {
        -1
    };
    let count = reader.i32("members")?;
    let count = usize::try_from(count).map_err(|_| OffsetsRecordError::InvalidLength {
        field: "members",
        length: -1,
    })?;
    let mut members = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let member_id = reader.string("member_id")?;
        let group_instance_id = if version >= 3 {
            reader.nullable_string("group_instance_id")?
        } else {
            None
        };
        let client_id = reader.string("client_id")?;
        let client_host = reader.string("client_host")?;
        let rebalance_timeout = if version >= 1 {
            Some(reader.i32("rebalance_timeout")?)
        } else {
            None
        };
        let session_timeout_ms = reader.i32("session_timeout")?;
        members.push(MemberMetadata {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms: rebalance_timeout.unwrap_or(session_timeout_ms),
            session_timeout_ms,
            subscription: reader.bytes("subscription")?,
            assignment: reader.bytes("assignment")?,
        });
    }
    reader.finish()?;
    Ok(GroupMetadataValue {
        protocol_type,
        generation,
        protocol,
        leader,
        current_state_timestamp,
        members,
    })
}

/// The key of a committed offset (version [`OFFSET_COMMIT_KEY_VERSION`]).
pub fn offset_commit_key(group: &str, topic: &str, partition: i32) -> Bytes {
    let mut out = Vec::with_capacity(2 + 2 + group.len() + 2 + topic.len() + 4);
    out.put_i16(OFFSET_COMMIT_KEY_VERSION);
    put_string(&mut out, group);
    put_string(&mut out, topic);
    out.put_i32(partition);
    Bytes::from(out)
}

/// The key of a group's metadata (version [`GROUP_METADATA_KEY_VERSION`]).
pub fn group_metadata_key(group: &str) -> Bytes {
    let mut out = Vec::with_capacity(2 + 2 + group.len());
    out.put_i16(GROUP_METADATA_KEY_VERSION);
    put_string(&mut out, group);
    Bytes::from(out)
}

/// The value of a committed offset (version [`OFFSET_COMMIT_VALUE_VERSION`]; an
/// `expire_timestamp` is not written, as in Kafka 2.1+ without one).
pub fn offset_commit_value(value: &OffsetCommitValue) -> Bytes {
    let mut out = Vec::with_capacity(2 + 8 + 4 + 2 + value.metadata.len() + 8);
    out.put_i16(OFFSET_COMMIT_VALUE_VERSION);
    out.put_i64(value.offset);
    out.put_i32(value.leader_epoch);
    put_string(&mut out, &value.metadata);
    out.put_i64(value.commit_timestamp);
    Bytes::from(out)
}

/// Decodes a key of any known version.
pub fn decode_key(bytes: &[u8]) -> Result<OffsetsKey, OffsetsRecordError> {
    let mut reader = Reader { rest: bytes };
    let key = match reader.i16("key version")? {
        0 | 1 => OffsetsKey::OffsetCommit {
            group: reader.string("group")?,
            topic: reader.string("topic")?,
            partition: reader.i32("partition")?,
        },
        2 => OffsetsKey::GroupMetadata {
            group: reader.string("group")?,
        },
        other => return Err(OffsetsRecordError::UnknownKeyVersion(other)),
    };
    reader.finish()?;
    Ok(key)
}

/// Decodes an offset commit value of version 0 to 3.
pub fn decode_offset_commit_value(bytes: &[u8]) -> Result<OffsetCommitValue, OffsetsRecordError> {
    let mut reader = Reader { rest: bytes };
    let version = reader.i16("value version")?;
    if !(0..=3).contains(&version) {
        return Err(OffsetsRecordError::UnknownValueVersion(version));
    }
    let offset = reader.i64("offset")?;
    let leader_epoch = if version >= 3 {
        reader.i32("leader_epoch")?
    } else {
        -1
    };
    let metadata = reader.string("metadata")?;
    let commit_timestamp = reader.i64("commit_timestamp")?;
    let expire_timestamp = if version == 1 {
        Some(reader.i64("expire_timestamp")?)
    } else {
        None
    };
    reader.finish()?;
    Ok(OffsetCommitValue {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp,
        expire_timestamp,
    })
}

fn put_string(out: &mut Vec<u8>, text: &str) {
    // Callers bound every string (topic names 249 bytes, metadata offset.metadata.max.bytes,
    // group ids by the request size checked in the server), so the length fits an int16.
    let length = i16::try_from(text.len()).expect("strings in offsets records fit an int16");
    out.put_i16(length);
    out.put_slice(text.as_bytes());
}

fn put_nullable_string(out: &mut Vec<u8>, text: Option<&str>) {
    match text {
        Some(text) => put_string(out, text),
        None => out.put_i16(-1),
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.put_i32(i32::try_from(bytes.len()).expect("member metadata fits an int32 length"));
    out.put_slice(bytes);
}

/// Reads fields from the front of a byte slice.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, field: &'static str, needed: usize) -> Result<&'a [u8], OffsetsRecordError> {
        if self.rest.len() < needed {
            return Err(OffsetsRecordError::Truncated {
                field,
                needed,
                available: self.rest.len(),
            });
        }
        let (head, tail) = self.rest.split_at(needed);
        self.rest = tail;
        Ok(head)
    }

    fn i16(&mut self, field: &'static str) -> Result<i16, OffsetsRecordError> {
        let bytes = self.take(field, 2)?;
        Ok(i16::from_be_bytes([bytes[0], bytes[1]]))
    }

    fn i32(&mut self, field: &'static str) -> Result<i32, OffsetsRecordError> {
        let bytes = self.take(field, 4)?;
        Ok(i32::from_be_bytes(bytes.try_into().expect("4 bytes")))
    }

    fn i64(&mut self, field: &'static str) -> Result<i64, OffsetsRecordError> {
        let bytes = self.take(field, 8)?;
        Ok(i64::from_be_bytes(bytes.try_into().expect("8 bytes")))
    }

    fn string(&mut self, field: &'static str) -> Result<String, OffsetsRecordError> {
        let length = self.i16(field)?;
        let size = usize::try_from(length)
            .map_err(|_| OffsetsRecordError::InvalidLength { field, length })?;
        let bytes = self.take(field, size)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| OffsetsRecordError::InvalidUtf8 { field })
    }

    fn nullable_string(
        &mut self,
        field: &'static str,
    ) -> Result<Option<String>, OffsetsRecordError> {
        if self.rest.starts_with(&[0xFF, 0xFF]) {
            self.rest = &self.rest[2..];
            return Ok(None);
        }
        self.string(field).map(Some)
    }

    fn bytes(&mut self, field: &'static str) -> Result<Bytes, OffsetsRecordError> {
        let length = self.i32(field)?;
        let size = usize::try_from(length).map_err(|_| OffsetsRecordError::InvalidLength {
            field,
            length: i16::try_from(length).unwrap_or(i16::MIN),
        })?;
        Ok(Bytes::copy_from_slice(self.take(field, size)?))
    }

    fn finish(&self) -> Result<(), OffsetsRecordError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(OffsetsRecordError::TrailingBytes(self.rest.len()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1_700_000_000_000 ms = 0x0000_018B_CFE5_6800.
    const COMMIT_TIME: i64 = 1_700_000_000_000;

    #[test]
    fn offset_commit_key_golden_bytes() {
        let key = offset_commit_key("g1", "t", 3);
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0x00, 0x01,             // version 1
            0x00, 0x02, b'g', b'1', // group
            0x00, 0x01, b't',       // topic
            0x00, 0x00, 0x00, 0x03, // partition
        ];
        assert_eq!(&key[..], expected);
        assert_eq!(
            decode_key(expected).unwrap(),
            OffsetsKey::OffsetCommit {
                group: "g1".into(),
                topic: "t".into(),
                partition: 3
            }
        );
    }

    #[test]
    fn offset_commit_value_v3_golden_bytes() {
        let value = OffsetCommitValue {
            offset: 42,
            leader_epoch: 5,
            metadata: "m".into(),
            commit_timestamp: COMMIT_TIME,
            expire_timestamp: None,
        };
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0x00, 0x03,                                     // version 3
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2A, // offset 42
            0x00, 0x00, 0x00, 0x05,                         // leader epoch 5
            0x00, 0x01, b'm',                               // metadata
            0x00, 0x00, 0x01, 0x8B, 0xCF, 0xE5, 0x68, 0x00, // commit timestamp
        ];
        assert_eq!(&offset_commit_value(&value)[..], expected);
        assert_eq!(decode_offset_commit_value(expected).unwrap(), value);
    }

    #[test]
    fn group_metadata_key_golden_bytes() {
        let expected: &[u8] = &[0x00, 0x02, 0x00, 0x03, b'a', b'p', b'p'];
        assert_eq!(&group_metadata_key("app")[..], expected);
        assert_eq!(
            decode_key(expected).unwrap(),
            OffsetsKey::GroupMetadata {
                group: "app".into()
            }
        );
    }

    #[test]
    fn group_metadata_value_v3_golden_bytes() {
        let value = GroupMetadataValue {
            protocol_type: "consumer".into(),
            generation: 7,
            protocol: Some("range".into()),
            leader: Some("m1".into()),
            current_state_timestamp: COMMIT_TIME,
            members: vec![MemberMetadata {
                member_id: "m1".into(),
                group_instance_id: None,
                client_id: "c".into(),
                client_host: "h".into(),
                rebalance_timeout_ms: 300_000,
                session_timeout_ms: 10_000,
                subscription: Bytes::from_static(&[0xAA]),
                assignment: Bytes::from_static(&[0xBB, 0xCC]),
            }],
        };
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0x00, 0x03,                                              // version 3
            0x00, 0x08, b'c', b'o', b'n', b's', b'u', b'm', b'e', b'r', // protocol type
            0x00, 0x00, 0x00, 0x07,                                  // generation 7
            0x00, 0x05, b'r', b'a', b'n', b'g', b'e',                // protocol
            0x00, 0x02, b'm', b'1',                                  // leader
            0x00, 0x00, 0x01, 0x8B, 0xCF, 0xE5, 0x68, 0x00,          // current state timestamp
            0x00, 0x00, 0x00, 0x01,                                  // 1 member
            0x00, 0x02, b'm', b'1',                                  //   member id
            0xFF, 0xFF,                                              //   group instance id: null
            0x00, 0x01, b'c',                                        //   client id
            0x00, 0x01, b'h',                                        //   client host
            0x00, 0x04, 0x93, 0xE0,                                  //   rebalance timeout 300000
            0x00, 0x00, 0x27, 0x10,                                  //   session timeout 10000
            0x00, 0x00, 0x00, 0x01, 0xAA,                            //   subscription
            0x00, 0x00, 0x00, 0x02, 0xBB, 0xCC,                      //   assignment
        ];
        assert_eq!(&group_metadata_value(&value)[..], expected);
        assert_eq!(decode_group_metadata_value(expected).unwrap(), value);

        // An empty group (after its last member left), and a v0 value Kafka 0.10 wrote.
        let empty = GroupMetadataValue {
            protocol_type: String::new(),
            generation: 8,
            protocol: None,
            leader: None,
            current_state_timestamp: -1,
            members: vec![],
        };
        assert_eq!(
            decode_group_metadata_value(&group_metadata_value(&empty)).unwrap(),
            empty
        );
        #[rustfmt::skip]
        let v0: &[u8] = &[
            0x00, 0x00, 0x00, 0x01, b'x', 0x00, 0x00, 0x00, 0x02, 0xFF, 0xFF, 0xFF, 0xFF,
            0x00, 0x00, 0x00, 0x01,
            0x00, 0x01, b'a', 0x00, 0x01, b'c', 0x00, 0x01, b'h', 0x00, 0x00, 0x03, 0xE8,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        ];
        let decoded = decode_group_metadata_value(v0).unwrap();
        assert_eq!((decoded.generation, decoded.protocol.as_deref()), (2, None));
        assert_eq!(decoded.members[0].rebalance_timeout_ms, 1000);
        assert!(decode_group_metadata_value(&expected[..expected.len() - 1]).is_err());
    }

    #[test]
    fn older_value_versions_decode() {
        // v1 carries an expire timestamp after the commit timestamp; v0 and v2 have neither
        // it nor a leader epoch.
        #[rustfmt::skip]
        let v1: &[u8] = &[
            0x00, 0x01,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07,
            0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x20,
        ];
        let decoded = decode_offset_commit_value(v1).unwrap();
        assert_eq!(
            (
                decoded.offset,
                decoded.leader_epoch,
                decoded.expire_timestamp
            ),
            (7, -1, Some(32))
        );
        assert_eq!(decoded.commit_timestamp, 16);
        for version in [0u8, 2] {
            #[rustfmt::skip]
            let bytes = [
                0x00, version,
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07,
                0x00, 0x01, b'x',
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
            ];
            let decoded = decode_offset_commit_value(&bytes).unwrap();
            assert_eq!(
                (
                    decoded.offset,
                    decoded.leader_epoch,
                    decoded.metadata.as_str()
                ),
                (7, -1, "x")
            );
            assert_eq!(decoded.expire_timestamp, None);
        }
        // A v0 key is read like v1.
        let v0_key = [0x00, 0x00, 0x00, 0x01, b'g', 0x00, 0x01, b't', 0, 0, 0, 9];
        assert!(matches!(
            decode_key(&v0_key).unwrap(),
            OffsetsKey::OffsetCommit { partition: 9, .. }
        ));
    }

    #[test]
    fn malformed_records_are_refused() {
        let key = offset_commit_key("g", "t", 0);
        let value = offset_commit_value(&OffsetCommitValue {
            offset: 1,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp: 0,
            expire_timestamp: None,
        });
        assert!(matches!(
            decode_key(&key[..key.len() - 1]),
            Err(OffsetsRecordError::Truncated {
                field: "partition",
                ..
            })
        ));
        let mut longer = key.to_vec();
        longer.push(0);
        assert_eq!(
            decode_key(&longer),
            Err(OffsetsRecordError::TrailingBytes(1))
        );
        assert_eq!(
            decode_key(&[0x00, 0x05, 0x00, 0x00]),
            Err(OffsetsRecordError::UnknownKeyVersion(5))
        );
        assert_eq!(
            decode_key(&[0x00, 0x02, 0xFF, 0xFF]),
            Err(OffsetsRecordError::InvalidLength {
                field: "group",
                length: -1
            })
        );
        assert_eq!(
            decode_key(&[0x00, 0x02, 0x00, 0x01, 0xFF]),
            Err(OffsetsRecordError::InvalidUtf8 { field: "group" })
        );
        let mut future = value.to_vec();
        future[1] = 4;
        assert_eq!(
            decode_offset_commit_value(&future),
            Err(OffsetsRecordError::UnknownValueVersion(4))
        );
        assert!(decode_offset_commit_value(&value[..10]).is_err());
    }
}
