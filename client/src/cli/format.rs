//! How `consume` prints a record: `--format` templates and `--json`.

use tributary_client::DecodedRecord;

/// One piece of a parsed `--format` template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// Text copied as is.
    Literal(Vec<u8>),
    /// `%k`: the key (`null` when absent).
    Key,
    /// `%v`: the value (`null` when absent).
    Value,
    /// `%o`: the offset.
    Offset,
    /// `%p`: the partition.
    Partition,
    /// `%t`: the timestamp (ms since the epoch).
    Timestamp,
    /// `%T`: the topic.
    Topic,
    /// `%h`: the headers as `k=v,k=v`.
    Headers,
}

/// A parsed `--format` template. Placeholders: `%k %v %o %p %t %T %h`, `%%` for `%`; escapes
/// `\n`, `\t` and `\\`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordFormat {
    tokens: Vec<Token>,
}

impl std::str::FromStr for RecordFormat {
    type Err = String;

    fn from_str(template: &str) -> Result<Self, String> {
        let mut tokens = Vec::new();
        let mut literal = Vec::new();
        let mut chars = template.chars();
        let flush = |literal: &mut Vec<u8>, tokens: &mut Vec<Token>| {
            if !literal.is_empty() {
                tokens.push(Token::Literal(std::mem::take(literal)));
            }
        };
        while let Some(c) = chars.next() {
            match c {
                '%' => {
                    let token = match chars.next() {
                        Some('k') => Token::Key,
                        Some('v') => Token::Value,
                        Some('o') => Token::Offset,
                        Some('p') => Token::Partition,
                        Some('t') => Token::Timestamp,
                        Some('T') => Token::Topic,
                        Some('h') => Token::Headers,
                        Some('%') => {
                            literal.push(b'%');
                            continue;
                        }
                        Some(other) => {
                            return Err(format!(
                                "unknown placeholder %{other} (use %k %v %o %p %t %T %h or %%)"
                            ));
                        }
                        None => return Err("the format ends with a lone %".to_owned()),
                    };
                    flush(&mut literal, &mut tokens);
                    tokens.push(token);
                }
                '\\' => match chars.next() {
                    Some('n') => literal.push(b'\n'),
                    Some('t') => literal.push(b'\t'),
                    Some('\\') => literal.push(b'\\'),
                    Some(other) => {
                        literal.push(b'\\');
                        let mut buf = [0; 4];
                        literal.extend_from_slice(other.encode_utf8(&mut buf).as_bytes());
                    }
                    None => literal.push(b'\\'),
                },
                other => {
                    let mut buf = [0; 4];
                    literal.extend_from_slice(other.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        flush(&mut literal, &mut tokens);
        Ok(RecordFormat { tokens })
    }
}

fn bytes_or_null(out: &mut Vec<u8>, field: Option<&[u8]>) {
    out.extend_from_slice(field.unwrap_or(b"null"));
}

impl RecordFormat {
    /// Appends the formatted record (without a newline) to `out`.
    pub fn render(&self, out: &mut Vec<u8>, topic: &str, partition: i32, record: &DecodedRecord) {
        use std::io::Write;
        for token in &self.tokens {
            match token {
                Token::Literal(text) => out.extend_from_slice(text),
                Token::Key => bytes_or_null(out, record.key.as_deref()),
                Token::Value => bytes_or_null(out, record.value.as_deref()),
                Token::Offset => {
                    let _ = write!(out, "{}", record.offset);
                }
                Token::Partition => {
                    let _ = write!(out, "{partition}");
                }
                Token::Timestamp => {
                    let _ = write!(out, "{}", record.timestamp);
                }
                Token::Topic => out.extend_from_slice(topic.as_bytes()),
                Token::Headers => {
                    for (i, header) in record.headers.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        out.extend_from_slice(header.key.as_bytes());
                        out.push(b'=');
                        bytes_or_null(out, header.value.as_deref());
                    }
                }
            }
        }
    }
}

fn text(field: Option<&[u8]>) -> serde_json::Value {
    field.map_or(serde_json::Value::Null, |bytes| {
        serde_json::Value::String(String::from_utf8_lossy(bytes).into_owned())
    })
}

/// The record as one JSON object (key, value and header values as UTF-8 text, invalid bytes
/// replaced; null stays null).
pub fn render_json(out: &mut Vec<u8>, topic: &str, partition: i32, record: &DecodedRecord) {
    let headers: Vec<serde_json::Value> = record
        .headers
        .iter()
        .map(|h| serde_json::json!({ "key": h.key, "value": text(h.value.as_deref()) }))
        .collect();
    let value = serde_json::json!({
        "topic": topic,
        "partition": partition,
        "offset": record.offset,
        "timestamp": record.timestamp,
        "key": text(record.key.as_deref()),
        "value": text(record.value.as_deref()),
        "headers": headers,
    });
    // Writing a `Value` into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, &value);
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use tributary_client::Header;

    use super::*;

    fn record() -> DecodedRecord {
        DecodedRecord {
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

    fn render(template: &str, record: &DecodedRecord) -> String {
        let format: RecordFormat = template.parse().unwrap();
        let mut out = Vec::new();
        format.render(&mut out, "orders", 3, record);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn placeholders() {
        let table = [
            ("%v", "hello"),
            ("%k %v %o %p %t", "user-1 hello 42 3 1700000000123"),
            ("%T-%p@%o", "orders-3@42"),
            ("%h", "a=1,b=null"),
            ("100%% %v", "100% hello"),
            ("%k\\t%v\\\\", "user-1\thello\\"),
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
        assert_eq!(render("%k:%v", &tombstone), "null:null");
    }

    #[test]
    fn bad_templates() {
        assert!("%x".parse::<RecordFormat>().unwrap_err().contains("%x"));
        assert!("abc%".parse::<RecordFormat>().is_err());
    }

    #[test]
    fn json() {
        let mut out = Vec::new();
        render_json(&mut out, "orders", 3, &record());
        let parsed: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(parsed["offset"], 42);
        assert_eq!(parsed["key"], "user-1");
        assert_eq!(parsed["value"], "hello");
        assert_eq!(parsed["headers"][1]["value"], serde_json::Value::Null);
        assert_eq!(parsed["partition"], 3);
    }
}
