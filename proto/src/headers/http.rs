//! HTTP header names: the `http` crate's `header` module, re-exported.
//!
//! Every standard name is a constant of [`HeaderName`] there, and any other
//! name can be made with `HeaderName::from_static` or parsed with
//! `HeaderName::from_bytes`. A second table here would only drift from it.
//!
//! ```
//! use plughost_proto::headers::http::{HeaderName, CONTENT_LENGTH};
//!
//! assert_eq!(HeaderName::from_bytes(b"Content-Length").unwrap(), CONTENT_LENGTH);
//! ```

pub use ::http::header::*;
