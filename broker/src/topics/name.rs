//! Topic name rules (Kafka's): 1 to 249 characters from `[a-zA-Z0-9._-]`, not `.` or `..`,
//! and no two topics whose names differ only by `.` versus `_` (they would collide in metric
//! names). Pure functions.

/// Longest legal topic name (255 minus room for a partition suffix and a deletion marker).
pub const MAX_TOPIC_NAME_LEN: usize = 249;

/// Why a topic name is not legal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicNameError {
    /// The name is empty.
    #[error("topic name is empty")]
    Empty,
    /// The name is "." or "..".
    #[error("topic name cannot be {0:?}")]
    Dots(String),
    /// The name is too long.
    #[error("topic name is {len} characters long; the limit is {MAX_TOPIC_NAME_LEN}")]
    TooLong {
        /// Its length.
        len: usize,
    },
    /// The name has a character outside `[a-zA-Z0-9._-]`.
    #[error(
        "topic name {name:?} contains {bad:?}; legal characters are ASCII letters, digits, '.', '_' and '-'"
    )]
    IllegalCharacter {
        /// The name.
        name: String,
        /// The first illegal character.
        bad: char,
    },
}

/// Checks a topic name against Kafka's rules.
pub fn validate_topic_name(name: &str) -> Result<(), TopicNameError> {
    if name.is_empty() {
        return Err(TopicNameError::Empty);
    }
    if name == "." || name == ".." {
        return Err(TopicNameError::Dots(name.to_owned()));
    }
    if name.len() > MAX_TOPIC_NAME_LEN {
        return Err(TopicNameError::TooLong { len: name.len() });
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(TopicNameError::IllegalCharacter {
            name: name.to_owned(),
            bad,
        });
    }
    Ok(())
}

/// Whether two names collide once `.` and `_` are treated as the same character.
pub fn names_collide(a: &str, b: &str) -> bool {
    a != b && a.replace('.', "_") == b.replace('.', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legal_names() {
        for name in [
            "a",
            "orders",
            "orders.v2",
            "my_topic-1",
            "__consumer_offsets",
            &"x".repeat(249),
        ] {
            assert_eq!(validate_topic_name(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn illegal_names() {
        assert_eq!(validate_topic_name(""), Err(TopicNameError::Empty));
        assert_eq!(
            validate_topic_name("."),
            Err(TopicNameError::Dots(".".into()))
        );
        assert_eq!(
            validate_topic_name(".."),
            Err(TopicNameError::Dots("..".into()))
        );
        assert_eq!(
            validate_topic_name(&"x".repeat(250)),
            Err(TopicNameError::TooLong { len: 250 })
        );
        for (name, bad) in [
            ("a b", ' '),
            ("a/b", '/'),
            ("ü", 'ü'),
            ("a:b", ':'),
            ("a\0", '\0'),
        ] {
            assert_eq!(
                validate_topic_name(name),
                Err(TopicNameError::IllegalCharacter {
                    name: name.into(),
                    bad
                }),
                "{name:?}"
            );
        }
    }

    #[test]
    fn dot_and_underscore_collide() {
        assert!(names_collide("a.b", "a_b"));
        assert!(names_collide("a_b.c", "a.b_c"));
        assert!(!names_collide("a.b", "a.b"));
        assert!(!names_collide("a-b", "a_b"));
    }
}
