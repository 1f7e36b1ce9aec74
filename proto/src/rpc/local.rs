//! The local transport: v2 requests and replies over a Unix stream socket,
//! for a host on a machine with no broker (`docs/protocol.md`, "Local
//! transport").
//!
//! Each message is one frame: a 4-byte big-endian length, then that many
//! bytes of JSON. A connection carries any number of requests at once;
//! every request has a correlation id that its reply repeats, so replies
//! may come back in any order. The envelopes hold what AMQP properties
//! carry on the broker path (correlation id, deadline) around the very same
//! v2 bodies ([`FindRequest`], [`CallRequest`] as JSON, [`FindReply`],
//! [`CallReply`]).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::v2::{CallReply, FindReply, FindRequest};

/// Bytes of the length prefix.
pub const LENGTH_BYTES: usize = 4;

/// A request from a caller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocalRequest {
    /// Repeated in the reply.
    pub correlation_id: String,
    /// The caller's deadline, Unix milliseconds (the broker path's
    /// `x-plughost-deadline-ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
    /// What is asked.
    #[serde(flatten)]
    pub body: LocalBody,
}

/// A find or a call, as on the broker path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LocalBody {
    /// "Which plugin serves `method`?" (the v2 `FindRequest`, `describe`
    /// included).
    Find(FindRequest),
    /// Run `method` (the v2 `CallRequest`): `args` is a JSON array of
    /// positional arguments or an object of named ones.
    Call {
        /// The method.
        method: String,
        /// Its arguments.
        args: Value,
    },
}

/// A host's answer to one [`LocalRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocalReply {
    /// The request's correlation id.
    pub correlation_id: String,
    /// The answer.
    #[serde(flatten)]
    pub body: LocalReplyBody,
}

/// The v2 reply bodies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LocalReplyBody {
    /// A find's answer.
    Found(FindReply),
    /// A call's answer.
    Called(CallReply),
}

/// Why a frame could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The length prefix announces more than the reader accepts.
    #[error("frame of {len} bytes is over the limit of {limit} bytes")]
    TooLarge {
        /// Announced length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The body is not the JSON expected.
    #[error("frame is not a valid message: {0}")]
    Malformed(String),
}

/// One frame: the length prefix and `json`.
///
/// ```
/// use plughost_proto::rpc::local::{frame, frame_len};
/// let bytes = frame(br#"{"a":1}"#);
/// assert_eq!(&bytes[..4], &[0, 0, 0, 7]);
/// assert_eq!(frame_len(bytes[..4].try_into().unwrap(), 1024), Ok(7));
/// ```
pub fn frame(json: &[u8]) -> Vec<u8> {
    let len = u32::try_from(json.len()).unwrap_or(u32::MAX);
    let mut bytes = Vec::with_capacity(LENGTH_BYTES + json.len());
    bytes.extend_from_slice(&len.to_be_bytes());
    bytes.extend_from_slice(json);
    bytes
}

/// The body length a prefix announces, refused beyond `limit` before
/// anything is allocated for it.
pub fn frame_len(prefix: [u8; LENGTH_BYTES], limit: usize) -> Result<usize, FrameError> {
    let len = usize::try_from(u32::from_be_bytes(prefix)).unwrap_or(usize::MAX);
    if len > limit {
        return Err(FrameError::TooLarge { len, limit });
    }
    Ok(len)
}

/// Encodes a message as one frame.
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    // Serialising these plain structs cannot fail (string keys, no maps of
    // other keys); an empty body would be refused by the reader anyway.
    frame(&serde_json::to_vec(message).unwrap_or_default())
}

/// Decodes a frame body.
pub fn decode<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, FrameError> {
    serde_json::from_slice(body).map_err(|e| FrameError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::v2::ErrorBody;
    use serde_json::json;

    #[test]
    fn requests_and_replies_round_trip_through_frames() {
        let request = LocalRequest {
            correlation_id: "c1".into(),
            deadline_ms: Some(1_800_000_000_000),
            body: LocalBody::Call {
                method: "fibo".into(),
                args: json!([10]),
            },
        };
        let bytes = encode(&request);
        let len = frame_len(bytes[..4].try_into().unwrap(), 1 << 20).unwrap();
        assert_eq!(len, bytes.len() - 4);
        assert_eq!(decode::<LocalRequest>(&bytes[4..]).unwrap(), request);
        assert_eq!(
            serde_json::from_slice::<Value>(&bytes[4..]).unwrap(),
            json!({"correlation_id": "c1", "deadline_ms": 1_800_000_000_000u64, "call": {"method": "fibo", "args": [10]}})
        );

        let reply = LocalReply {
            correlation_id: "c1".into(),
            body: LocalReplyBody::Called(CallReply::Error(ErrorBody::new(404, "unknown method"))),
        };
        assert_eq!(decode::<LocalReply>(&encode(&reply)[4..]).unwrap(), reply);
    }

    #[test]
    fn the_documented_bytes_of_fibo_10() {
        // docs/protocol.md, "Local transport".
        let request = LocalRequest {
            correlation_id: "2".into(),
            deadline_ms: Some(1_796_534_412_000),
            body: LocalBody::Call {
                method: "fibo".into(),
                args: json!([10]),
            },
        };
        let bytes = encode(&request);
        assert_eq!(&bytes[..4], &[0, 0, 0, 0x57]);
        assert_eq!(
            &bytes[4..],
            br#"{"correlation_id":"2","deadline_ms":1796534412000,"call":{"method":"fibo","args":[10]}}"#
        );
        let reply = LocalReply {
            correlation_id: "2".into(),
            body: LocalReplyBody::Called(CallReply::Result(json!(55))),
        };
        let bytes = encode(&reply);
        assert_eq!(&bytes[..4], &[0, 0, 0, 0x2d]);
        assert_eq!(
            &bytes[4..],
            br#"{"correlation_id":"2","called":{"result":55}}"#
        );
    }

    #[test]
    fn oversized_and_malformed_frames_are_refused_with_the_reason() {
        assert_eq!(
            frame_len(u32::MAX.to_be_bytes(), 8 << 20),
            Err(FrameError::TooLarge {
                len: u32::MAX as usize,
                limit: 8 << 20
            })
        );
        let err = decode::<LocalRequest>(br#"{"correlation_id":"x"}"#).unwrap_err();
        assert!(matches!(err, FrameError::Malformed(_)), "{err}");
    }
}
