//! `/brokers/ids/<id>`: a live broker's registration.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Payload, PayloadKind, long_as_string};

/// `/brokers/ids/<id>` (EPHEMERAL), v5 as Kafka 2.8 writes it (IBP ≥ 2.7); v4 (no `features`)
/// and v2/v3 (older IBPs) are readable.
///
/// Written by the broker in one multi {create with no data; setData version 0} so the node's
/// czxid is the broker epoch (KIP-380). Field order is the zkCli-observed v5 order:
/// `{"features":{},"listener_security_protocol_map":{"PLAINTEXT":"PLAINTEXT"},`
/// `"endpoints":["PLAINTEXT://10.0.0.5:9092"],"jmx_port":-1,"port":9092,"host":"10.0.0.5",`
/// `"version":5,"timestamp":"1589503263654"}`. Where `rack` goes was not observed; we write it
/// after `host`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    /// Supported feature ranges (KIP-584), `{}` when none; absent before v5.
    #[serde(default)]
    pub features: BTreeMap<String, FeatureVersionRange>,
    /// Listener name → security protocol name (v4+).
    #[serde(default)]
    pub listener_security_protocol_map: BTreeMap<String, String>,
    /// Advertised listeners as `LISTENER_NAME://host:port`.
    #[serde(default)]
    pub endpoints: Vec<String>,
    /// -1 when JMX is off.
    #[serde(default = "no_jmx_port")]
    pub jmx_port: i32,
    /// Port of the first PLAINTEXT endpoint (for pre-0.10 clients), -1 when there is none.
    pub port: i32,
    /// Host of the first PLAINTEXT endpoint, `null` when there is none.
    pub host: Option<String>,
    /// `broker.rack`, only written when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rack: Option<String>,
    pub version: i32,
    /// Registration time, ms since the Unix epoch (a JSON string).
    #[serde(with = "long_as_string")]
    pub timestamp: i64,
}

fn no_jmx_port() -> i32 {
    -1
}

/// A feature's supported version range, `{"min_version":1,"max_version":2}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureVersionRange {
    pub min_version: i16,
    pub max_version: i16,
}

/// One advertised listener: `name://host:port` plus its security protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndPoint {
    pub listener_name: String,
    pub security_protocol: String,
    pub host: String,
    pub port: u16,
}

impl EndPoint {
    /// A PLAINTEXT listener named `PLAINTEXT`, the only kind Tributary serves today.
    pub fn plaintext(host: impl Into<String>, port: u16) -> Self {
        Self {
            listener_name: "PLAINTEXT".into(),
            security_protocol: "PLAINTEXT".into(),
            host: host.into(),
            port,
        }
    }

    /// `PLAINTEXT://host:port`.
    pub fn uri(&self) -> String {
        format!("{}://{}:{}", self.listener_name, self.host, self.port)
    }
}

impl BrokerRegistration {
    pub const VERSION: i32 = 5;

    /// A v5 registration for these listeners; `host`/`port` come from the first PLAINTEXT
    /// listener as in Kafka (`null`/-1 without one).
    pub fn new(endpoints: &[EndPoint], rack: Option<String>, timestamp: i64) -> Self {
        let legacy = endpoints
            .iter()
            .find(|e| e.security_protocol == "PLAINTEXT");
        Self {
            features: BTreeMap::new(),
            listener_security_protocol_map: endpoints
                .iter()
                .map(|e| (e.listener_name.clone(), e.security_protocol.clone()))
                .collect(),
            endpoints: endpoints.iter().map(EndPoint::uri).collect(),
            jmx_port: -1,
            port: legacy.map_or(-1, |e| i32::from(e.port)),
            host: legacy.map(|e| e.host.clone()),
            rack,
            version: Self::VERSION,
            timestamp,
        }
    }

    /// The advertised listeners, parsed. An endpoint string that is not `name://host:port` is
    /// skipped (Kafka would refuse to start rather than write one). A listener missing from
    /// `listener_security_protocol_map` (v2/v3 registrations have no map) is PLAINTEXT if its
    /// name is a protocol name, as Kafka assumes.
    pub fn parsed_endpoints(&self) -> Vec<EndPoint> {
        self.endpoints
            .iter()
            .filter_map(|uri| {
                let (name, address) = uri.split_once("://")?;
                let (host, port) = address.rsplit_once(':')?;
                let protocol = self
                    .listener_security_protocol_map
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| name.to_owned());
                Some(EndPoint {
                    listener_name: name.to_owned(),
                    security_protocol: protocol,
                    host: host
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                        .to_owned(),
                    port: port.parse().ok()?,
                })
            })
            .collect()
    }
}

impl Payload for BrokerRegistration {
    const KIND: PayloadKind = PayloadKind::BrokerRegistration;
    const READABLE_VERSIONS: std::ops::RangeInclusive<i32> = 2..=5;

    fn version(&self) -> i64 {
        self.version.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_takes_legacy_host_and_port_from_the_plaintext_listener() {
        let registration = BrokerRegistration::new(&[EndPoint::plaintext("h", 9092)], None, 1);
        assert_eq!(registration.host.as_deref(), Some("h"));
        assert_eq!(registration.port, 9092);
        assert_eq!(
            registration.endpoints,
            vec!["PLAINTEXT://h:9092".to_owned()]
        );
        assert_eq!(
            registration.parsed_endpoints(),
            vec![EndPoint::plaintext("h", 9092)]
        );
    }

    #[test]
    fn without_plaintext_listener_host_is_null() {
        let ssl = EndPoint {
            listener_name: "SECURE".into(),
            security_protocol: "SSL".into(),
            host: "h".into(),
            port: 9093,
        };
        let registration = BrokerRegistration::new(&[ssl], Some("dc1".into()), 1);
        assert_eq!(registration.host, None);
        assert_eq!(registration.port, -1);
        let json = String::from_utf8(registration.encode()).unwrap_or_default();
        assert!(
            json.contains(r#""port":-1,"host":null,"rack":"dc1","version":5"#),
            "{json}"
        );
    }
}
