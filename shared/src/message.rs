//! JSON-RPC 2.0 messages: requests, notifications and responses, and how raw JSON is sorted
//! into them.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::codes;

/// A request's id: a number or a string, as JSON-RPC allows.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestId {
    /// A numeric id.
    Number(i64),
    /// A string id.
    String(String),
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestId::Number(n) => write!(f, "{n}"),
            RequestId::String(s) => write!(f, "{s:?}"),
        }
    }
}

/// A call that expects a response.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// Echoed in the response.
    pub id: RequestId,
    /// The method (`model/load`).
    pub method: String,
    /// Its parameters (`null` when absent).
    pub params: Value,
}

/// A one-way message (`$/progress`, `model/reloaded`, `$/cancelRequest`).
#[derive(Clone, Debug, PartialEq)]
pub struct Notification {
    /// The method.
    pub method: String,
    /// Its parameters (`null` when absent).
    pub params: Value,
}

/// The error half of a response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResponseError {
    /// A [`codes`] value.
    pub code: i64,
    /// What went wrong, for a person.
    pub message: String,
    /// `{"kind": ...}` and any detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl ResponseError {
    /// An error with `code`, `message` and `data.kind`.
    pub fn new(code: i64, message: impl Into<String>, kind: &str) -> Self {
        ResponseError {
            code,
            message: message.into(),
            data: Some(json!({ "kind": kind })),
        }
    }

    /// Its `data.kind`, when it has one.
    pub fn kind(&self) -> Option<&str> {
        self.data.as_ref()?.get("kind")?.as_str()
    }
}

impl std::fmt::Display for ResponseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ResponseError {}

/// The answer to a request.
#[derive(Clone, Debug, PartialEq)]
pub struct Response {
    /// The request's id; `None` (JSON `null`) when the request could not be read.
    pub id: Option<RequestId>,
    /// Its result or its error.
    pub outcome: Result<Value, ResponseError>,
}

/// Any JSON-RPC message.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    /// A call.
    Request(Request),
    /// A one-way message.
    Notification(Notification),
    /// An answer.
    Response(Response),
}

/// JSON that is not a JSON-RPC 2.0 message; `id` is kept when one could be read so that the
/// error response can name it.
#[derive(Clone, Debug, PartialEq)]
pub struct InvalidMessage {
    /// The id, if the message had a usable one.
    pub id: Option<RequestId>,
    /// Why it is invalid.
    pub reason: String,
}

/// A frame body that could not be read as a message, with the error to answer it with.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejected {
    /// The id to answer, when one could be read.
    pub id: Option<RequestId>,
    /// The error.
    pub error: ResponseError,
}

impl Message {
    /// Parses a frame's body. Bytes that are not JSON are a parse error
    /// ([`codes::PARSE_ERROR`]); JSON that is not a message an invalid request.
    pub fn parse(body: &[u8]) -> Result<Message, Rejected> {
        let value: Value = serde_json::from_slice(body).map_err(|e| Rejected {
            id: None,
            error: ResponseError::new(
                codes::PARSE_ERROR,
                format!("parse error: {e}"),
                codes::kind::PARSE,
            ),
        })?;
        Message::from_value(value).map_err(|e| Rejected {
            id: e.id,
            error: ResponseError::new(
                codes::INVALID_REQUEST,
                e.reason,
                codes::kind::INVALID_REQUEST,
            ),
        })
    }

    /// Sorts a JSON value into a request, notification or response.
    pub fn from_value(value: Value) -> Result<Message, InvalidMessage> {
        let invalid = |id: Option<RequestId>, reason: &str| InvalidMessage {
            id,
            reason: format!("invalid request: {reason}"),
        };
        let mut object = match value {
            Value::Object(o) => o,
            Value::Array(_) => return Err(invalid(None, "batches are not supported")),
            _ => return Err(invalid(None, "a message is a JSON object")),
        };
        let id = match object.remove("id") {
            None => None,
            Some(raw) => match serde_json::from_value::<RequestId>(raw.clone()) {
                Ok(id) => Some(id),
                Err(_) if raw.is_null() => None,
                Err(_) => return Err(invalid(None, "`id` must be a number or a string")),
            },
        };
        if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            return Err(invalid(id, "`jsonrpc` must be \"2.0\""));
        }
        let params = object.remove("params").unwrap_or(Value::Null);
        if !matches!(params, Value::Null | Value::Object(_) | Value::Array(_)) {
            return Err(invalid(id, "`params` must be an object or an array"));
        }
        if let Some(method) = object.remove("method") {
            let Value::String(method) = method else {
                return Err(invalid(id, "`method` must be a string"));
            };
            return Ok(match id {
                Some(id) => Message::Request(Request { id, method, params }),
                None => Message::Notification(Notification { method, params }),
            });
        }
        let outcome = match (object.remove("result"), object.remove("error")) {
            (Some(result), None) => Ok(result),
            (None, Some(error)) => Err(serde_json::from_value::<ResponseError>(error)
                .map_err(|e| invalid(id.clone(), &format!("bad `error`: {e}")))?),
            _ => {
                return Err(invalid(
                    id,
                    "a message needs `method`, or exactly one of `result` and `error`",
                ))
            }
        };
        Ok(Message::Response(Response { id, outcome }))
    }

    /// The message as JSON.
    pub fn to_value(&self) -> Value {
        let mut o = Map::new();
        o.insert("jsonrpc".into(), Value::String("2.0".into()));
        match self {
            Message::Request(r) => {
                o.insert("id".into(), json!(r.id));
                o.insert("method".into(), Value::String(r.method.clone()));
                if !r.params.is_null() {
                    o.insert("params".into(), r.params.clone());
                }
            }
            Message::Notification(n) => {
                o.insert("method".into(), Value::String(n.method.clone()));
                if !n.params.is_null() {
                    o.insert("params".into(), n.params.clone());
                }
            }
            Message::Response(r) => {
                o.insert("id".into(), json!(r.id));
                match &r.outcome {
                    Ok(v) => o.insert("result".into(), v.clone()),
                    Err(e) => o.insert("error".into(), json!(e)),
                };
            }
        }
        Value::Object(o)
    }

    /// The message as a frame body (UTF-8 JSON).
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serializing a `Value` cannot fail.
        serde_json::to_vec(&self.to_value()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let messages = [
            Message::Request(Request {
                id: RequestId::Number(7),
                method: "model/load".into(),
                params: json!({"path": "demo"}),
            }),
            Message::Notification(Notification {
                method: "exit".into(),
                params: Value::Null,
            }),
            Message::Response(Response {
                id: Some(RequestId::String("a".into())),
                outcome: Err(ResponseError::new(
                    codes::METHOD_NOT_FOUND,
                    "no",
                    "methodNotFound",
                )),
            }),
            Message::Response(Response {
                id: None,
                outcome: Ok(json!(null)),
            }),
        ];
        for m in messages {
            assert_eq!(Message::parse(&m.to_bytes()).unwrap(), m);
        }
    }

    #[test]
    fn an_invalid_request_keeps_its_id() {
        let e = Message::parse(br#"{"jsonrpc":"1.0","id":4,"method":"x"}"#).unwrap_err();
        assert_eq!(e.id, Some(RequestId::Number(4)));
    }

    #[test]
    fn invalid_messages_are_sorted_by_code() {
        assert_eq!(
            Message::parse(b"{nope").unwrap_err().error.code,
            codes::PARSE_ERROR
        );
        assert_eq!(
            Message::parse(&[0xff, 0xfe]).unwrap_err().error.code,
            codes::PARSE_ERROR
        );
        for bad in [
            r#"[]"#,
            r#"3"#,
            r#"{"id":1,"method":"x"}"#,
            r#"{"jsonrpc":"2.0","id":{},"method":"x"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":5}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":3}"#,
            r#"{"jsonrpc":"2.0","id":1}"#,
        ] {
            let e = Message::parse(bad.as_bytes()).unwrap_err().error;
            assert_eq!(e.code, codes::INVALID_REQUEST, "{bad}");
            assert_eq!(e.kind(), Some("invalidRequest"));
        }
    }
}
