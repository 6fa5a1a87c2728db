//! Reading JSON request and response bodies into wire types, with the JSON pointer of the first
//! field serde could not read.

use serde::de::DeserializeOwned;

use crate::problem::FieldError;

/// A body that is not JSON, or not of the expected shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct BodyError {
    /// JSON pointer of the value serde stopped at (`""` for the whole body).
    pub pointer: String,
    /// serde's message, with the line and column.
    pub message: String,
}

impl BodyError {
    /// The error as a [`FieldError`] for a problem body.
    pub fn field_error(&self) -> FieldError {
        FieldError::at_pointer(self.pointer.clone(), self.message.clone())
    }

    /// The same error without serde's ` at line L column C`: for a value read out of a larger
    /// body, where the pointer says where and serde's position would count from the value.
    pub fn without_location(mut self) -> Self {
        if let Some(at) = self.message.rfind(" at line ") {
            let rest = &self.message[at + " at line ".len()..];
            let located = rest.split_once(" column ").is_some_and(|(line, column)| {
                [line, column]
                    .iter()
                    .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            });
            if located {
                self.message.truncate(at);
            }
        }
        self
    }

    /// The same error, located below `prefix` (a JSON pointer).
    pub fn under(mut self, prefix: &str) -> Self {
        self.pointer.insert_str(0, prefix);
        self
    }
}

/// Reads `bytes` as JSON into `T`. A valid body is read once, at serde_json's own speed; only a
/// body that fails is read again with path tracking, to name the field it failed at.
pub fn from_slice<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, BodyError> {
    serde_json::from_slice(bytes).or_else(|_| {
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        serde_path_to_error::deserialize(de).map_err(path_error)
    })
}

/// Reads an already-parsed JSON value into `T`; as [`from_slice`], path tracking only on failure.
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, BodyError> {
    match <T as serde::Deserialize>::deserialize(&value) {
        Ok(read) => Ok(read),
        Err(_) => serde_path_to_error::deserialize(value).map_err(path_error),
    }
}

fn path_error(err: serde_path_to_error::Error<serde_json::Error>) -> BodyError {
    use serde_path_to_error::Segment;
    let mut pointer = String::new();
    for segment in err.path().iter() {
        match segment {
            Segment::Seq { index } => {
                pointer.push('/');
                pointer.push_str(&index.to_string());
            }
            Segment::Map { key } | Segment::Enum { variant: key } => {
                pointer.push('/');
                pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
            }
            Segment::Unknown => {}
        }
    }
    BodyError {
        pointer,
        message: err.into_inner().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DurationReportBatch;

    #[test]
    fn points_at_the_field_serde_stopped_at() {
        let body = br#"{"records": [{"callId": "a", "telephoneNumber": "+14255550100",
            "connectDateTime": "2026-11-26T09:15:01.000Z", "endDateTime": "2026-11-26T09:16:02.000Z",
            "durationMs": "61000"}]}"#;
        let err = from_slice::<DurationReportBatch>(body).unwrap_err();
        assert_eq!(err.pointer, "/records/0/durationMs");
        assert!(
            err.message.contains("invalid type: string"),
            "{}",
            err.message
        );
    }

    #[test]
    fn a_value_read_alone_loses_its_position_only() {
        let err = from_slice::<DurationReportBatch>(br#"{"records": 5}"#).unwrap_err();
        assert!(
            err.message.contains(" at line 1 column "),
            "{}",
            err.message
        );
        let bare = err.clone().without_location();
        assert_eq!(
            bare.message,
            "invalid type: integer `5`, expected a sequence"
        );
        assert_eq!(bare.pointer, err.pointer);
        let odd = BodyError {
            pointer: String::new(),
            message: "a name at line one".into(),
        };
        assert_eq!(odd.clone().without_location(), odd);
    }

    #[test]
    fn not_json_points_at_the_body() {
        let err = from_slice::<DurationReportBatch>(b"{\"records\": [").unwrap_err();
        assert!(err.message.contains("EOF"), "{}", err.message);
        let err = from_slice::<DurationReportBatch>(b"[]").unwrap_err();
        assert_eq!(err.pointer, "");
    }
}
