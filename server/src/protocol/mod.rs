//! The wire protocol: request parsing (RESP multibulk and inline) and reply encoding.

pub mod parser;
pub mod reply;

pub use parser::{Args, Limits, OwnedArgs, Parsed, ProtocolError, RequestParser, split_args};
pub use reply::{Out, Proto};
