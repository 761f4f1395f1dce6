//! Value parsers shared by several commands.

use anyhow::Context;
use tributary_client::{Acks, Compression, Header};

/// `key=value` (the value may contain `=`; it may be empty).
pub fn key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("expected key=value, got {text:?}")),
    }
}

/// A record header `key=value`; `key` alone means a null value.
pub fn header(text: &str) -> Result<Header, String> {
    match text.split_once('=') {
        Some(("", _)) => Err(format!("header {text:?} has an empty key")),
        Some((key, value)) => Ok(Header {
            key: key.to_owned(),
            value: Some(bytes::Bytes::copy_from_slice(value.as_bytes())),
        }),
        None if text.is_empty() => Err("empty header".to_owned()),
        None => Ok(Header {
            key: text.to_owned(),
            value: None,
        }),
    }
}

/// `-1`, `all`, `0` or `1`.
pub fn acks(text: &str) -> Result<Acks, String> {
    Acks::parse(text).map_err(|error| error.to_string())
}

/// `none`, `gzip`, `snappy`, `lz4` or `zstd`.
pub fn compression(text: &str) -> Result<Compression, String> {
    Compression::from_name(text)
        .ok_or_else(|| format!("{text:?}: must be none, gzip, snappy, lz4 or zstd"))
}

/// Which partitions a perf command uses: `all` or a comma-separated list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionSelection {
    /// Every partition of the topic.
    All,
    /// These partitions.
    List(Vec<i32>),
}

/// `all` or `0,1,2`.
pub fn partitions(text: &str) -> Result<PartitionSelection, String> {
    if text.trim() == "all" {
        return Ok(PartitionSelection::All);
    }
    let list = text
        .split(',')
        .map(|part| {
            part.trim()
                .parse::<i32>()
                .ok()
                .filter(|p| *p >= 0)
                .ok_or_else(|| format!("{part:?} is not a partition id"))
        })
        .collect::<Result<Vec<i32>, String>>()?;
    Ok(PartitionSelection::List(list))
}

impl PartitionSelection {
    /// The partition ids, asking the broker for `all`. Also waits until each has a leader
    /// (the client routes to it from then on), so a run starts with every leader known.
    pub async fn resolve(
        &self,
        client: &tributary_client::Client,
        topic: &str,
    ) -> anyhow::Result<Vec<i32>> {
        let partitions = match self {
            PartitionSelection::All => client.partitions_of(topic).await?,
            PartitionSelection::List(list) => list.clone(),
        };
        for &partition in &partitions {
            client
                .leader_for(topic, partition)
                .await
                .with_context(|| format!("finding the leader of {topic}-{partition}"))?;
        }
        Ok(partitions)
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values() {
        assert_eq!(key_value("a=b").unwrap(), ("a".into(), "b".into()));
        assert_eq!(key_value("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert_eq!(key_value("a=").unwrap(), ("a".into(), "".into()));
        assert!(key_value("=b").is_err());
        assert!(key_value("ab").is_err());
    }

    #[test]
    fn headers() {
        let h = header("trace=abc").unwrap();
        assert_eq!(
            (h.key.as_str(), h.value.as_deref()),
            ("trace", Some(&b"abc"[..]))
        );
        assert_eq!(header("flag").unwrap().value, None);
        assert!(header("=x").is_err());
        assert!(header("").is_err());
    }

    #[test]
    fn partition_lists() {
        assert_eq!(partitions("all").unwrap(), PartitionSelection::All);
        assert_eq!(
            partitions("0, 2,5").unwrap(),
            PartitionSelection::List(vec![0, 2, 5])
        );
        assert!(partitions("0,x").is_err());
        assert!(partitions("-1").is_err());
    }

    #[test]
    fn compression_names() {
        assert_eq!(compression("zstd").unwrap(), Compression::Zstd);
        assert_eq!(compression("LZ4").unwrap(), Compression::Lz4);
        assert_eq!(compression("none").unwrap(), Compression::None);
        assert!(compression("brotli").unwrap_err().contains("must be none"));
    }

    #[test]
    fn acks_values() {
        assert_eq!(acks("-1").unwrap(), Acks::All);
        assert!(acks("3").unwrap_err().contains("must be -1"));
    }
}
