//! treehouse engine: storage format and recovery, mailbox model, and protocol
//! sessions as state machines without I/O. No async runtime, no sockets, no clocks.
#![forbid(unsafe_code)]

pub mod address;
mod crc;
pub mod disk;
pub mod imap;
pub mod message;
pub mod pop3;
pub mod sasl;
pub mod smtp;
pub mod store;
