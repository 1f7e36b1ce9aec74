//! RPC wire formats: the old system's text framing (v1) and plughost's JSON
//! protocol (v2). Pure data and parsing: no broker types here, so the
//! formats can be tested and fuzzed without RabbitMQ.
//!
//! A host tells them apart by the AMQP `content_type` property: v2 messages
//! carry [`v2::CONTENT_TYPE`], v1 messages carry none.

pub mod local;
pub mod v1;
pub mod v2;

/// Which protocol a message speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// The old text framing.
    V1,
    /// plughost's JSON protocol.
    V2,
}

impl Protocol {
    /// Classifies a message by its `content_type` property.
    ///
    /// ```
    /// use plughost_proto::rpc::Protocol;
    /// assert_eq!(Protocol::of(Some("application/json")), Protocol::V2);
    /// assert_eq!(Protocol::of(None), Protocol::V1);
    /// ```
    pub fn of(content_type: Option<&str>) -> Self {
        match content_type {
            Some(ct) if ct.eq_ignore_ascii_case(v2::CONTENT_TYPE) => Self::V2,
            _ => Self::V1,
        }
    }
}
