//! How `consume` prints a record: `--format` templates (kcat's `-f` tokens) and `--json`.

use base64::Engine;
use tributary_client::{ConsumerRecord, TimestampType};

/// One piece of a parsed `--format` template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// Text copied as is.
    Literal(Vec<u8>),
    /// `%k`: the key (`null` when absent).
    Key,
    /// `%K`: the key's length in bytes, -1 when null.
    KeyLength,
    /// `%s` (or `%v`): the value (`null` when absent).
    Value,
    /// `%S`: the value's length in bytes, -1 when null.
    ValueLength,
    /// `%o`: the offset.
    Offset,
    /// `%p`: the partition.
    Partition,
    /// `%T`: the timestamp (ms since the epoch).
    Timestamp,
    /// `%t`: the topic.
    Topic,
    /// `%h`: the headers as `k=v,k=v`.
    Headers,
}

/// The placeholders, for error messages and `--help`.
const PLACEHOLDERS: &str = "%t %p %o %T %k %K %s %S %h %v or %%";

/// A parsed `--format` template, with kcat's tokens: `%t` topic, `%p` partition, `%o` offset,
/// `%T` timestamp, `%k` key, `%K` key length, `%s` value, `%S` value length, `%h` headers,
/// `%%` a percent sign (`%v` is kept as a synonym of `%s`); escapes `\n`, `\r`, `\t`, `\\`
/// and `\xHH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordFormat {
    tokens: Vec<Token>,
}

impl std::str::FromStr for RecordFormat {
    type Err = String;

    fn from_str(template: &str) -> Result<Self, String> {
        let mut tokens = Vec::new();
        let mut literal = Vec::new();
        let mut chars = template.chars().peekable();
        let flush = |literal: &mut Vec<u8>, tokens: &mut Vec<Token>| {
            if !literal.is_empty() {
                tokens.push(Token::Literal(std::mem::take(literal)));
            }
        };
        let push_char = |literal: &mut Vec<u8>, c: char| {
            let mut buf = [0; 4];
            literal.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        };
        while let Some(c) = chars.next() {
            match c {
                '%' => {
                    let token = match chars.next() {
                        Some('k') => Token::Key,
                        Some('K') => Token::KeyLength,
                        Some('s' | 'v') => Token::Value,
                        Some('S') => Token::ValueLength,
                        Some('o') => Token::Offset,
                        Some('p') => Token::Partition,
                        Some('T') => Token::Timestamp,
                        Some('t') => Token::Topic,
                        Some('h') => Token::Headers,
                        Some('%') => {
                            literal.push(b'%');
                            continue;
                        }
                        Some(other) => {
                            return Err(format!(
                                "unknown placeholder %{other} (use {PLACEHOLDERS})"
                            ));
                        }
                        None => return Err("the format ends with a lone %".to_owned()),
                    };
                    flush(&mut literal, &mut tokens);
                    tokens.push(token);
                }
                '\\' => match chars.next() {
                    Some('n') => literal.push(b'\n'),
                    Some('r') => literal.push(b'\r'),
                    Some('t') => literal.push(b'\t'),
                    Some('\\') => literal.push(b'\\'),
                    Some('x') => {
                        let hex: String = (0..2)
                            .filter_map(|_| chars.next_if(char::is_ascii_hexdigit))
                            .collect();
                        match u8::from_str_radix(&hex, 16) {
                            Ok(byte) if hex.len() == 2 => literal.push(byte),
                            _ => return Err("\\x must be followed by two hex digits".to_owned()),
                        }
                    }
                    Some(other) => {
                        literal.push(b'\\');
                        push_char(&mut literal, other);
                    }
                    None => literal.push(b'\\'),
                },
                other => push_char(&mut literal, other),
            }
        }
        flush(&mut literal, &mut tokens);
        Ok(RecordFormat { tokens })
    }
}

fn bytes_or_null(out: &mut Vec<u8>, field: Option<&[u8]>) {
    out.extend_from_slice(field.unwrap_or(b"null"));
}

fn length(field: Option<&[u8]>) -> i64 {
    field.map_or(-1, |bytes| bytes.len() as i64)
}

impl RecordFormat {
    /// Appends the formatted record (without a newline) to `out`.
    pub fn render(&self, out: &mut Vec<u8>, record: &ConsumerRecord) {
        use std::io::Write;
        for token in &self.tokens {
            // Writing into a Vec cannot fail.
            let _ = match token {
                Token::Literal(text) => out.write_all(text),
                Token::Key => {
                    bytes_or_null(out, record.key.as_deref());
                    Ok(())
                }
                Token::Value => {
                    bytes_or_null(out, record.value.as_deref());
                    Ok(())
                }
                Token::KeyLength => write!(out, "{}", length(record.key.as_deref())),
                Token::ValueLength => write!(out, "{}", length(record.value.as_deref())),
                Token::Offset => write!(out, "{}", record.offset),
                Token::Partition => write!(out, "{}", record.partition),
                Token::Timestamp => write!(out, "{}", record.timestamp),
                Token::Topic => out.write_all(record.topic.as_bytes()),
                Token::Headers => {
                    for (i, header) in record.headers.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        out.extend_from_slice(header.key.as_bytes());
                        out.push(b'=');
                        bytes_or_null(out, header.value.as_deref());
                    }
                    Ok(())
                }
            };
        }
    }
}

/// Puts `bytes` into `object` under `name`: a string when it is valid UTF-8, else base64 with
/// `<name>_encoding: "base64"` beside it; `null` stays `null`.
fn insert_bytes(
    object: &mut serde_json::Map<String, serde_json::Value>,
    name: &str,
    bytes: Option<&[u8]>,
) {
    let value = match bytes.map(std::str::from_utf8) {
        None => serde_json::Value::Null,
        Some(Ok(text)) => serde_json::Value::String(text.to_owned()),
        Some(Err(_)) => {
            let bytes = bytes.unwrap_or_default();
            object.insert(format!("{name}_encoding"), "base64".into());
            base64::engine::general_purpose::STANDARD
                .encode(bytes)
                .into()
        }
    };
    object.insert(name.to_owned(), value);
}

/// The record as one JSON object: `topic`, `partition`, `offset`, `timestamp`,
/// `timestamp_type` (`create_time` or `log_append_time`), `key`, `value` and `headers` (a list
/// of `{"key","value"}`). Keys and values are strings when they are valid UTF-8; other bytes are
/// base64 (standard alphabet, padded) and flagged by `key_encoding`/`value_encoding: "base64"`
/// beside them. Null stays null.
pub fn render_json(out: &mut Vec<u8>, record: &ConsumerRecord) {
    let headers: Vec<serde_json::Value> = record
        .headers
        .iter()
        .map(|h| {
            let mut header = serde_json::Map::new();
            header.insert("key".to_owned(), h.key.clone().into());
            insert_bytes(&mut header, "value", h.value.as_deref());
            serde_json::Value::Object(header)
        })
        .collect();
    let mut object = serde_json::Map::new();
    object.insert("topic".to_owned(), record.topic.as_ref().into());
    object.insert("partition".to_owned(), record.partition.into());
    object.insert("offset".to_owned(), record.offset.into());
    object.insert("timestamp".to_owned(), record.timestamp.into());
    let timestamp_type = match record.timestamp_type {
        TimestampType::CreateTime => "create_time",
        TimestampType::LogAppendTime => "log_append_time",
    };
    object.insert("timestamp_type".to_owned(), timestamp_type.into());
    insert_bytes(&mut object, "key", record.key.as_deref());
    insert_bytes(&mut object, "value", record.value.as_deref());
    object.insert("headers".to_owned(), headers.into());
    // Writing a `Value` into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, &serde_json::Value::Object(object));
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use tributary_client::Header;

    use super::*;

    fn record() -> ConsumerRecord {
        ConsumerRecord {
            topic: "orders".into(),
            partition: 3,
            timestamp_type: TimestampType::CreateTime,
            offset: 42,
            timestamp: 1_700_000_000_123,
            key: Some(Bytes::from_static(b"user-1")),
            value: Some(Bytes::from_static(b"hello")),
            headers: vec![
                Header {
                    key: "a".into(),
                    value: Some(Bytes::from_static(b"1")),
                },
                Header {
                    key: "b".into(),
                    value: None,
                },
            ],
        }
    }

    fn render(template: &str, record: &ConsumerRecord) -> String {
        let format: RecordFormat = template.parse().unwrap();
        let mut out = Vec::new();
        format.render(&mut out, record);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn placeholders() {
        let table = [
            ("%s", "hello"),
            ("%v", "hello"),
            (
                "%t %p %o %k %s %h %T",
                "orders 3 42 user-1 hello a=1,b=null 1700000000123",
            ),
            ("%t-%p@%o", "orders-3@42"),
            ("%K:%k %S:%s", "6:user-1 5:hello"),
            ("%h", "a=1,b=null"),
            ("100%% %s", "100% hello"),
            ("%k\\t%s\\\\", "user-1\thello\\"),
            ("%k\\r\\x41\\x7e", "user-1\rA~"),
            ("a\\qb", "a\\qb"),
            ("ünïcode %v", "ünïcode hello"),
            ("", ""),
        ];
        for (template, expected) in table {
            assert_eq!(render(template, &record()), expected, "{template}");
        }
    }

    #[test]
    fn nulls_print_as_null() {
        let mut tombstone = record();
        tombstone.key = None;
        tombstone.value = None;
        assert_eq!(render("%k:%s", &tombstone), "null:null");
        assert_eq!(render("%K %S", &tombstone), "-1 -1");
    }

    #[test]
    fn bad_templates() {
        assert!("%x".parse::<RecordFormat>().unwrap_err().contains("%x"));
        assert!("abc%".parse::<RecordFormat>().is_err());
        assert!("\\x4".parse::<RecordFormat>().is_err());
        assert!("\\xzz".parse::<RecordFormat>().is_err());
    }

    #[test]
    fn json() {
        let mut out = Vec::new();
        render_json(&mut out, &record());
        let parsed: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(parsed["topic"], "orders");
        assert_eq!(parsed["offset"], 42);
        assert_eq!(parsed["timestamp"], 1_700_000_000_123_i64);
        assert_eq!(parsed["timestamp_type"], "create_time");
        assert_eq!(parsed["key"], "user-1");
        assert_eq!(parsed["value"], "hello");
        assert!(parsed.get("value_encoding").is_none());
        assert_eq!(parsed["headers"][0]["value"], "1");
        assert_eq!(parsed["headers"][1]["value"], serde_json::Value::Null);
        assert_eq!(parsed["partition"], 3);
    }

    #[test]
    fn json_binary_fields_are_base64() {
        let mut binary = record();
        binary.key = None;
        binary.value = Some(Bytes::from_static(&[0xff, 0x00, b'a']));
        binary.headers[0].value = Some(Bytes::from_static(&[0xc3]));
        binary.timestamp_type = TimestampType::LogAppendTime;
        let mut out = Vec::new();
        render_json(&mut out, &binary);
        let parsed: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(parsed["key"], serde_json::Value::Null);
        assert!(parsed.get("key_encoding").is_none());
        assert_eq!(parsed["value"], "/wBh");
        assert_eq!(parsed["value_encoding"], "base64");
        assert_eq!(parsed["headers"][0]["value"], "ww==");
        assert_eq!(parsed["headers"][0]["value_encoding"], "base64");
        assert_eq!(parsed["timestamp_type"], "log_append_time");
        assert!(!out.contains(&b'\n'));
    }
}
