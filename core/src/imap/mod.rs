//! IMAP4rev1 server sessions as state machines without I/O: bytes in, response bytes and
//! storage requests out. Parsing and encoding use imap-codec; the durable index of the
//! account's shard is the truth every session diffs its own view against.
//!
//! # Driving a session
//!
//! - Send [`Session::greeting`] when the connection opens.
//! - Pass every byte read to [`Session::feed`] (with the [`Mailstore`] once the session is
//!   authenticated), send [`Step::reply`], then answer [`Step::action`]:
//!   [`Action::Login`] with [`Session::authenticated`] for [`sasl::Request::Password`]
//!   and [`sasl::Request::ScramDone`], with [`Session::scram_keys`] for
//!   [`sasl::Request::ScramKeys`]; [`Action::Apply`] with
//!   [`Session::applied`] once every op is durable or failed, [`Action::Close`] by closing
//!   after the reply. Each answer returns another [`Step`] to handle the same way.
//! - While an action is pending the session answers nothing and only buffers input; the
//!   runtime should stop reading until it has answered.
//! - While the client idles, call [`Session::poll`] whenever the shard may have changed.
//!
//! # Exactness
//!
//! A selected session keeps its own list of UIDs by sequence number and the MODSEQ it last
//! reported for each message. It compares that view with the durable index only where
//! RFC 3501 §7.4.1 and RFC 9051 §7.5.1 allow: flag changes and new messages after any
//! command; expunges (EXPUNGE, or VANISHED once QRESYNC is enabled) only during NOOP,
//! CHECK, IDLE, EXPUNGE, MOVE, CREATE, DELETE, RENAME, SUBSCRIBE and UID commands, never
//! during FETCH, STORE or SEARCH by sequence number. Messages expunged meanwhile keep their sequence
//! number until then, and FETCH of them answers `OK [EXPUNGEISSUED]`.

pub mod fetch;
#[cfg(test)]
mod list_tests;
pub mod names;
pub mod search;
mod session;
#[cfg(test)]
mod tests;

use std::time::Duration;

pub use session::Session;

use crate::{sasl, store};

/// What the session needs from the runtime while authenticated (on the owner executor).
pub trait Mailstore {
    /// The durable index of the shard holding the logged-in account.
    fn shard(&self) -> &store::Shard;
    /// Reads one message's whole body (blocking read on the owner executor).
    fn read_body(&mut self, mailbox: &str, uid: store::Uid) -> Result<Vec<u8>, store::StoreError>;
    /// Reads `len` bytes of one message's body from byte `from` on, clamped to the body,
    /// reading only that range from disk.
    fn read_body_range(
        &mut self,
        mailbox: &str,
        uid: store::Uid,
        from: u64,
        len: u64,
    ) -> Result<Vec<u8>, store::StoreError>;
    /// The current time in unix seconds, for the INTERNALDATE of an APPEND without one
    /// (the core reads no clock; the runtime supplies it).
    fn now_unix_s(&self) -> i64;
}

/// Limits and names one session runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// Longest command line (without literals), in bytes.
    pub line_max_bytes: u32,
    /// Largest literal (and so the APPENDLIMIT), in bytes.
    pub literal_max_bytes: u32,
    /// Longest mailbox name, in bytes of UTF-8.
    pub mailbox_name_max_bytes: usize,
    /// Most hierarchy levels in a mailbox name.
    pub mailbox_depth_max: usize,
    /// Most message bytes one COPY, MOVE or RENAME INBOX may copy at once.
    pub copy_max_bytes: u64,
    /// How long a client may stay silent (also while idling).
    pub idle_timeout: Duration,
    /// Whether the runtime can start TLS on this connection (STARTTLS is offered).
    pub starttls: bool,
    /// Whether passwords may be sent before TLS (a trusted listener); if not, LOGIN and
    /// AUTHENTICATE PLAIN/LOGIN are refused with [PRIVACYREQUIRED] and LOGINDISABLED is
    /// advertised (SCRAM-SHA-256 never reveals the password and stays available).
    pub plaintext_login: bool,
    /// Fresh random printable ASCII (no commas) from the runtime, per connection: the
    /// stem of each SCRAM server nonce.
    pub sasl_nonce: String,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            line_max_bytes: 64 * 1024,
            literal_max_bytes: 50 * 1024 * 1024,
            mailbox_name_max_bytes: 512,
            mailbox_depth_max: 16,
            copy_max_bytes: 256 * 1024 * 1024,
            idle_timeout: Duration::from_secs(30 * 60),
            starttls: false,
            plaintext_login: true,
            sasl_nonce: "treehouse".to_string(),
        }
    }
}

/// The runtime's answer for one op of an [`Action::Apply`]: the UID an append was
/// given (None for other ops), or why the op failed.
pub type Applied = Result<Option<store::Uid>, String>;

/// What one call into the session produced.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// Bytes to send to the client, in order.
    pub reply: Vec<u8>,
    /// A request for the runtime; the session buffers input until it is answered.
    pub action: Option<Action>,
}

/// A request the session makes of the runtime.
#[derive(Clone, PartialEq, Eq)]
pub enum Action {
    /// Log a client in: the runtime answers [`sasl::Request::ScramKeys`] through
    /// [`Session::scram_keys`], the others through [`Session::authenticated`].
    Login(sasl::Request),
    /// Stage these ops in order and, once each is durable or failed, call [`Session::applied`].
    Apply(Vec<store::Op>),
    /// Close the connection after sending the reply.
    Close,
    /// Start TLS now (the tagged OK is in this step), then call [`Session::tls_started`].
    /// Input that followed STARTTLS has already been discarded (RFC 9051 §6.2.1).
    StartTls,
}

/// Shows the request, never the password.
impl std::fmt::Debug for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Login(request) => f.debug_tuple("Login").field(request).finish(),
            Action::Apply(ops) => f.debug_tuple("Apply").field(&ops.len()).finish(),
            Action::Close => f.write_str("Close"),
            Action::StartTls => f.write_str("StartTls"),
        }
    }
}
