//! Header names of the protocols the old toolkit knew: the raw protocol's,
//! HTTP's and SIP's.
//!
//! As with codes, each table comes from where it is best kept: HTTP header
//! names are the `http` crate's (re-exported in [`http`], so there is one
//! `HeaderName` type across every HTTP library a user may mix in), SIP's
//! common RFC 3261 headers with their compact forms are in [`sip`], and the
//! raw protocol's six names in [`raw`].
//!
//! ```
//! use plughost_proto::headers::{http, raw::RawHeader, sip::SipHeader};
//!
//! assert_eq!(http::CONTENT_TYPE.as_str(), "content-type");
//! assert_eq!(RawHeader::ReqId.as_str(), "Req-Id");
//! assert_eq!(SipHeader::lookup("v"), Some(SipHeader::VIA));
//! ```

pub mod http;
pub mod raw;
pub mod sip;
