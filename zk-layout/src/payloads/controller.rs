//! `/controller` and `/controller_epoch`.

use serde::{Deserialize, Serialize};

use super::{Payload, PayloadError, PayloadKind, long_as_string};
use crate::ids::{BrokerId, ControllerEpoch};

/// `/controller` (EPHEMERAL), v1: who the controller is.
///
/// `{"version":1,"brokerid":2,"timestamp":"1611591513363"}`: the timestamp (ms) is a string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControllerRegistration {
    pub version: i32,
    #[serde(rename = "brokerid")]
    pub broker_id: BrokerId,
    /// When the controller was elected, ms since the Unix epoch.
    #[serde(with = "long_as_string")]
    pub timestamp: i64,
}

impl ControllerRegistration {
    pub const VERSION: i32 = 1;

    pub fn new(broker_id: BrokerId, timestamp: i64) -> Self {
        Self {
            version: Self::VERSION,
            broker_id,
            timestamp,
        }
    }
}

impl Payload for ControllerRegistration {
    const KIND: PayloadKind = PayloadKind::Controller;
    // Kafka 3.x writes v2 (adds `kraftControllerEpoch` for migration); its fields we read are
    // the same, so v2 is readable too.
    const READABLE_VERSIONS: std::ops::RangeInclusive<i32> = 1..=2;

    fn version(&self) -> i64 {
        self.version.into()
    }
}

/// `/controller_epoch` (PERSISTENT) is bare decimal text, e.g. `7`, not JSON.
pub fn encode_controller_epoch(epoch: ControllerEpoch) -> Vec<u8> {
    epoch.0.to_string().into_bytes()
}

/// Parses `/controller_epoch`. Surrounding whitespace is tolerated (a hand-edited node).
pub fn decode_controller_epoch(bytes: &[u8]) -> Result<ControllerEpoch, PayloadError> {
    let not_an_integer = || PayloadError::NotAnInteger {
        kind: PayloadKind::ControllerEpoch,
        text: String::from_utf8_lossy(bytes).into_owned(),
    };
    let text = std::str::from_utf8(bytes).map_err(|_| not_an_integer())?;
    text.trim()
        .parse()
        .map(ControllerEpoch)
        .map_err(|_| not_an_integer())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controller_epoch_text() {
        assert_eq!(encode_controller_epoch(ControllerEpoch(0)), b"0");
        assert_eq!(encode_controller_epoch(ControllerEpoch(12)), b"12");
        assert_eq!(decode_controller_epoch(b"7").ok(), Some(ControllerEpoch(7)));
        assert_eq!(
            decode_controller_epoch(b" 7\n").ok(),
            Some(ControllerEpoch(7))
        );
        for bad in [&b""[..], b"seven", b"{\"epoch\":1}", b"\xff"] {
            assert!(matches!(
                decode_controller_epoch(bad),
                Err(PayloadError::NotAnInteger {
                    kind: PayloadKind::ControllerEpoch,
                    ..
                })
            ));
        }
    }

    #[test]
    fn timestamp_may_be_a_number_on_read() {
        let value =
            ControllerRegistration::decode(br#"{"version":1,"brokerid":2,"timestamp":5}"#).ok();
        assert_eq!(value, Some(ControllerRegistration::new(BrokerId(2), 5)));
    }

    #[test]
    fn unsupported_version_is_an_error() {
        let err = ControllerRegistration::decode(br#"{"version":9,"brokerid":2,"timestamp":"5"}"#);
        assert!(matches!(
            err,
            Err(PayloadError::UnsupportedVersion { found: 9, .. })
        ));
    }
}
