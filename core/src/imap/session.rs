//! The IMAP session state machine: input framing and limits, command dispatch, and the
//! session's own view of the selected mailbox, diffed against the durable index only at
//! the points RFC 3501 §7 / RFC 9051 §7.5.1 allow.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::mem;
use std::num::NonZeroU32;
use std::time::Duration;

use imap_codec::encode::Encoder;
use imap_codec::fragmentizer::{FragmentInfo, Fragmentizer};
use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::auth::{AuthMechanism, AuthenticateData};
use imap_codec::imap_types::command::{Command, CommandBody, FetchModifier, SelectParameter};
use imap_codec::imap_types::core::{Atom, Literal, LiteralMode, QuotedChar, Tag, Vec1};
use imap_codec::imap_types::extensions::binary::{Literal8, LiteralOrLiteral8};
use imap_codec::imap_types::extensions::enable::CapabilityEnable;
use imap_codec::imap_types::extensions::esearch::{SearchReturnData, SearchReturnOption};
use imap_codec::imap_types::extensions::list_extended::{
    ListReturnOption, ListSelectBaseOpt, ListSelectOption, MboxListExtendedItem,
};
use imap_codec::imap_types::fetch::{MacroOrMessageDataItemNames, MessageDataItemName};
use imap_codec::imap_types::flag::{Flag, FlagNameAttribute, StoreResponse, StoreType};
use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox};
use imap_codec::imap_types::response::{Data, Response};
use imap_codec::imap_types::search::SearchKey;
use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};
use imap_codec::imap_types::status::{StatusDataItem, StatusDataItemName};
use imap_codec::{AuthenticateDataCodec, CommandCodec, IdleDoneCodec, ResponseCodec};

use super::fetch;
use super::names::{self, NameError};
use super::search::{self, SearchContext};
use super::{Action, Applied, Mailstore, SessionConfig, Step};
use crate::sasl;
use crate::store::{self, ModSeq, Op, Uid};

mod login;
mod mailboxes;
mod query;
mod selected;

use mailboxes::ListQuery;
use selected::nz;

/// Mailboxes every account has after its first login, with their special use.
const DEFAULT_MAILBOXES: [(&str, &str); 6] = [
    ("INBOX", ""),
    ("Drafts", "Drafts"),
    ("Sent", "Sent"),
    ("Trash", "Trash"),
    ("Junk", "Junk"),
    ("Archive", "Archive"),
];

/// Buffer capacity a session keeps between commands; what a larger command needed is freed.
const FRAGMENT_KEEP_BYTES: usize = 4096;

/// The system flags every mailbox supports.
const SYSTEM_FLAGS: &str = "\\Answered \\Flagged \\Deleted \\Seen \\Draft";

/// What the next complete input message is.
#[derive(Debug)]
enum Mode {
    /// A command.
    Command,
    /// The client's answer to an AUTHENTICATE continuation.
    AuthData { tag: String },
    /// `DONE` ending an IDLE.
    Idle { tag: String },
}

/// A request in flight with the runtime; input waits until it is answered.
#[derive(Debug)]
enum Pending {
    /// Credentials being verified.
    Login { tag: String },
    /// SCRAM keys of `login` being looked up.
    ScramKeys { tag: String, login: String },
    /// Default mailboxes being created after login.
    Provision { tag: String },
    /// Ops being applied for a command.
    Apply { tag: String, then: After },
}

/// What to answer once a command's ops are applied.
#[derive(Debug)]
enum After {
    /// CREATE, DELETE, RENAME (not of INBOX): OK when all succeeded.
    Plain { done: &'static str },
    /// RENAME INBOX: messages copied; expunge them from INBOX next.
    RenameInbox { uids: Vec<Uid> },
    /// APPEND: report the new UID.
    Append { mailbox: String },
    /// STORE: report the flags of these messages.
    Store {
        uids: Vec<Uid>,
        silent: bool,
        uid_cmd: bool,
        modified: Vec<u32>,
    },
    /// EXPUNGE / UID EXPUNGE.
    Expunge { uid_cmd: bool },
    /// CLOSE: silently expunged; deselect.
    Close,
    /// COPY or MOVE: copies made; for MOVE expunge the sources next.
    Copy {
        target: String,
        sources: Vec<Uid>,
        is_move: bool,
        uid_cmd: bool,
    },
    /// MOVE: sources expunged; the COPYUID code to send.
    MoveExpunged { copyuid: String, uid_cmd: bool },
    /// FETCH that set \Seen first.
    Fetch { command: Box<Command<'static>> },
}

/// The session's own view of the selected mailbox.
#[derive(Debug)]
struct Selected {
    name: String,
    uidvalidity: u32,
    read_only: bool,
    /// Sequence number - 1 → UID, ascending.
    uids: Vec<Uid>,
    /// The MODSEQ of each message as last reported to the client.
    known: BTreeMap<Uid, ModSeq>,
    /// HIGHESTMODSEQ of the index when the view last fully matched it.
    synced_modseq: ModSeq,
}

/// Why the current input message is refused.
#[derive(Debug, Clone, Copy)]
enum Reject {
    LineTooLong,
    LiteralTooBig,
}

/// One IMAP connection's state.
pub struct Session {
    cfg: SessionConfig,
    frag: Fragmentizer,
    mode: Mode,
    pending: Option<Pending>,
    reject: Option<Reject>,
    account: Option<String>,
    selected: Option<Selected>,
    condstore: bool,
    qresync: bool,
    utf8: bool,
    /// The client enabled IMAP4rev2 (RFC 9051).
    rev2: bool,
    /// The UIDs saved by the last `SEARCH RETURN (SAVE)`, ascending (`$`, RFC 5182).
    saved: Vec<Uid>,
    closed: bool,
    /// TLS is active on the connection.
    tls: bool,
    /// The AUTHENTICATE exchange in progress.
    login: Option<Box<login::Login>>,
    /// AUTHENTICATE exchanges started, to make each SCRAM nonce distinct.
    sasl_exchanges: u32,
    out: Vec<u8>,
    /// Untagged responses that describe a change not yet durable: sent before the
    /// tagged OK once it is, dropped if it fails.
    held: Vec<u8>,
}

/// Shows the session's state, never buffered input (it may hold a password).
impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("account", &self.account)
            .field("mode", &self.mode)
            .field("pending", &self.pending.is_some())
            .field("selected", &self.selected.as_ref().map(|s| &s.name))
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

type StoreRef<'s> = Option<&'s mut dyn Mailstore>;

/// The most bytes one command (lines and literals) may span in the Fragmentizer.
fn fragment_max(cfg: &SessionConfig) -> u32 {
    cfg.line_max_bytes
        .saturating_mul(4)
        .saturating_add(cfg.literal_max_bytes)
}

impl Session {
    /// A new, not yet authenticated session.
    pub fn new(cfg: SessionConfig) -> Self {
        Self {
            frag: Fragmentizer::new(fragment_max(&cfg)),
            cfg,
            mode: Mode::Command,
            pending: None,
            reject: None,
            account: None,
            selected: None,
            condstore: false,
            qresync: false,
            utf8: false,
            rev2: false,
            saved: Vec::new(),
            closed: false,
            tls: false,
            login: None,
            sasl_exchanges: 0,
            out: Vec::new(),
            held: Vec::new(),
        }
    }

    fn fragment_max_bytes(&self) -> u32 {
        fragment_max(&self.cfg)
    }

    /// Answers LOGIN or AUTHENTICATE when it cannot go ahead (already logged in, or a
    /// password would cross in the clear); true when it answered.
    fn refuse_login(&mut self, tag: &str) -> bool {
        if self.account.is_some() {
            self.line(&format!("{tag} BAD Already authenticated"));
        } else if !self.login_allowed() {
            self.line(&format!("{tag} NO [PRIVACYREQUIRED] Use STARTTLS first"));
        } else {
            return false;
        }
        true
    }

    /// Whether a password may be sent now: under TLS, or on a trusted listener.
    fn login_allowed(&self) -> bool {
        self.tls || self.cfg.plaintext_login
    }

    /// The runtime finished the TLS handshake; capabilities no longer offer STARTTLS.
    pub fn tls_started(&mut self) {
        self.tls = true;
    }

    /// The greeting to send when the connection opens.
    pub fn greeting(&self) -> Vec<u8> {
        format!(
            "* OK [CAPABILITY {}] treehouse IMAP ready\r\n",
            self.capabilities()
        )
        .into_bytes()
    }

    /// How long the client may stay silent before the runtime closes the connection.
    pub fn idle_timeout(&self) -> Duration {
        self.cfg.idle_timeout
    }

    /// The logged-in account, if any.
    pub fn account(&self) -> Option<&str> {
        self.account.as_deref()
    }

    /// Whether the client is in IDLE, so that changes should be pushed to it unasked.
    pub fn is_idling(&self) -> bool {
        matches!(self.mode, Mode::Idle { .. }) && self.pending.is_none()
    }

    fn capabilities(&self) -> String {
        let mut caps = String::from(
            "IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UNSELECT UIDPLUS \
             MOVE CHILDREN LIST-EXTENDED LIST-STATUS SPECIAL-USE ESEARCH SEARCHRES CONDSTORE \
             QRESYNC \
             UTF8=ACCEPT STATUS=SIZE",
        );
        let _ = write!(caps, " APPENDLIMIT={}", self.cfg.literal_max_bytes);
        if self.cfg.starttls && !self.tls && self.account.is_none() {
            caps.push_str(" STARTTLS");
        }
        if self.account.is_none() {
            caps.push_str(&self.auth_capabilities());
            if !self.login_allowed() {
                caps.push_str(" LOGINDISABLED");
            }
        }
        caps
    }

    /// Takes more input bytes and processes every complete command in them.
    pub fn feed(&mut self, input: &[u8], store: Option<&mut dyn Mailstore>) -> Step {
        self.frag.enqueue_bytes(input);
        self.drive(store)
    }

    /// The runtime's answer to [`sasl::Request::Password`] (and to
    /// [`sasl::Request::ScramDone`]): the account, or None if refused.
    pub fn authenticated(
        &mut self,
        account: Option<String>,
        store: Option<&mut dyn Mailstore>,
    ) -> Step {
        let Some(Pending::Login { tag }) = self.pending.take() else {
            return self.drive(store);
        };
        let Some(account) = account else {
            self.line(&format!(
                "{tag} NO [AUTHENTICATIONFAILED] Invalid credentials"
            ));
            return self.drive(store);
        };
        self.account = Some(account.clone());
        let Some(store) = store else {
            self.line(&format!("{tag} OK Logged in"));
            return self.drive(None);
        };
        let existing = store.shard().account(&account);
        let mut ops = Vec::new();
        for (name, _) in DEFAULT_MAILBOXES {
            if existing.is_none_or(|a| !a.mailboxes.contains_key(name)) {
                ops.push(Op::CreateMailbox {
                    account: account.clone(),
                    name: name.to_string(),
                });
                ops.push(Op::Subscribe {
                    account: account.clone(),
                    name: name.to_string(),
                });
            }
        }
        if ops.is_empty() {
            self.line(&format!("{tag} OK Logged in"));
            return self.drive(Some(store));
        }
        self.pending = Some(Pending::Provision { tag });
        Step {
            reply: mem::take(&mut self.out),
            action: Some(Action::Apply(ops)),
        }
    }

    /// The runtime's answer to [`Action::Apply`]: one result per op, in order.
    pub fn applied(&mut self, results: Vec<Applied>, store: &mut dyn Mailstore) -> Step {
        let action = match self.pending.take() {
            Some(Pending::Provision { tag }) => {
                // A concurrent login may have created them first; either way they exist.
                self.line(&format!("{tag} OK Logged in"));
                None
            }
            Some(Pending::Apply { tag, then }) => self.finish(tag, then, results, store),
            other => {
                self.pending = other;
                None
            }
        };
        if action.is_some() {
            return Step {
                reply: mem::take(&mut self.out),
                action,
            };
        }
        self.drive(Some(store))
    }

    /// Untagged updates for an idling client; empty when not idling or nothing changed.
    pub fn poll(&mut self, store: &mut dyn Mailstore) -> Vec<u8> {
        if self.is_idling() {
            self.sync(store, true, false);
        }
        mem::take(&mut self.out)
    }

    fn drive(&mut self, mut store: StoreRef<'_>) -> Step {
        let mut action = None;
        while action.is_none() && self.pending.is_none() && !self.closed {
            let Some(fragment) = self.frag.progress() else {
                break;
            };
            action = self.on_fragment(
                fragment,
                store.as_mut().map(|s| &mut **s as &mut dyn Mailstore),
            );
            // A decoded command's bytes (a large APPEND's literal) are not kept around.
            self.frag.release_spare_capacity(FRAGMENT_KEEP_BYTES);
        }
        Step {
            reply: mem::take(&mut self.out),
            action,
        }
    }

    /// The largest literal accepted now: before login only a command line's worth, so
    /// that unauthenticated clients cannot make the server buffer whole messages.
    fn literal_limit_bytes(&self) -> u32 {
        if self.account.is_some() {
            self.cfg.literal_max_bytes
        } else {
            self.cfg.literal_max_bytes.min(self.cfg.line_max_bytes)
        }
    }

    fn line(&mut self, text: &str) {
        self.out.extend_from_slice(text.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    fn data(&mut self, data: Data<'_>) {
        let bytes = ResponseCodec::new().encode(&Response::Data(data)).dump();
        self.out.extend_from_slice(&bytes);
    }

    /// The tag to answer refused input with: the command's own, else `*`.
    fn tag_or_star(&self) -> String {
        match &self.mode {
            Mode::AuthData { tag } | Mode::Idle { tag } => tag.clone(),
            Mode::Command => self
                .frag
                .decode_tag()
                .map_or_else(|| "*".to_string(), |t| t.as_ref().to_string()),
        }
    }

    fn on_fragment(&mut self, fragment: FragmentInfo, store: StoreRef<'_>) -> Option<Action> {
        if let FragmentInfo::Line {
            start,
            end,
            announcement,
            ..
        } = fragment
        {
            if end - start > self.cfg.line_max_bytes as usize && self.reject.is_none() {
                self.reject = Some(Reject::LineTooLong);
                self.frag.poison_message();
            }
            if let Some(literal) = announcement {
                let too_big = literal.length > self.literal_limit_bytes();
                match (literal.mode, self.reject, too_big) {
                    (LiteralMode::Sync, None, false) => self.line("+ Ready for literal data"),
                    (LiteralMode::Sync, reject, _) => {
                        let tag = self.tag_or_star();
                        match reject {
                            Some(Reject::LineTooLong) => {
                                self.line(&format!("{tag} BAD [TOOBIG] Command line too long"))
                            }
                            _ => self.line(&format!(
                                "{tag} NO [TOOBIG] Literal exceeds the limit of {} bytes",
                                self.literal_limit_bytes()
                            )),
                        }
                        self.reject = None;
                        self.frag.skip_message();
                        return None;
                    }
                    (LiteralMode::NonSync, None, true) => {
                        self.reject = Some(Reject::LiteralTooBig);
                        self.frag.poison_message();
                    }
                    (LiteralMode::NonSync, _, _) => {}
                }
            }
        }
        if !self.frag.is_message_complete() {
            return None;
        }
        if let Some(reject) = self.reject.take() {
            let tag = self.tag_or_star();
            match reject {
                Reject::LineTooLong => {
                    self.line(&format!("{tag} BAD [TOOBIG] Command line too long"))
                }
                Reject::LiteralTooBig => self.line(&format!(
                    "{tag} BAD [TOOBIG] Literal exceeds the limit of {} bytes",
                    self.literal_limit_bytes()
                )),
            }
            self.mode = Mode::Command;
            return None;
        }
        if self.frag.is_max_message_size_exceeded() {
            let tag = self.tag_or_star();
            self.line(&format!("{tag} BAD [TOOBIG] Command too long"));
            return None;
        }
        match mem::replace(&mut self.mode, Mode::Command) {
            Mode::Command => {
                let command = match self.frag.decode_message(&CommandCodec::new()) {
                    Ok(Command {
                        tag,
                        body:
                            CommandBody::Append {
                                mailbox,
                                flags,
                                date,
                                message,
                            },
                    }) => {
                        let (form, range) = appended_literal(self.frag.message_bytes(), &message);
                        let (tag, mailbox) = (tag.into_static(), mailbox.into_static());
                        let (flags, date) = (flags.into_static(), date.into_static());
                        let message = match range {
                            Some(range) => {
                                let bytes = take_range(self.frag.take_message_bytes(), range);
                                form.with(bytes)
                            }
                            None => message.into_static(),
                        };
                        let body = CommandBody::Append {
                            mailbox,
                            flags,
                            date,
                            message,
                        };
                        Command { tag, body }
                    }
                    Ok(command) => command.into_static(),
                    Err(_) => {
                        let tag = self.tag_or_star();
                        self.line(&format!("{tag} BAD Unknown command or invalid arguments"));
                        return None;
                    }
                };
                self.command(command, store)
            }
            Mode::AuthData { tag } => {
                let data = self
                    .frag
                    .decode_message(&AuthenticateDataCodec::new())
                    .map(|d| d.into_static());
                match data {
                    Ok(AuthenticateData::Continue(bytes)) => {
                        self.authenticate_data(tag, Some(bytes.declassify()))
                    }
                    Ok(AuthenticateData::Cancel) => self.authenticate_data(tag, None),
                    Err(_) => {
                        self.login = None;
                        self.line(&format!("{tag} BAD Invalid base64 in authentication data"));
                        None
                    }
                }
            }
            Mode::Idle { tag } => {
                if self.frag.decode_message(&IdleDoneCodec::new()).is_ok() {
                    if let Some(store) = store {
                        self.sync(store, true, false);
                    }
                    self.line(&format!("{tag} OK IDLE terminated"));
                } else {
                    self.line(&format!("{tag} BAD Expected DONE"));
                }
                None
            }
        }
    }

    fn command(&mut self, command: Command<'static>, store: StoreRef<'_>) -> Option<Action> {
        let tag = command.tag.as_ref().to_string();
        let name = command.body.name();
        match command.body {
            CommandBody::Capability => {
                let caps = self.capabilities();
                self.line(&format!("* CAPABILITY {caps}"));
                self.line(&format!("{tag} OK CAPABILITY completed"));
                return None;
            }
            CommandBody::Check if self.selected.is_none() => {
                self.line(&format!("{tag} BAD No mailbox selected"));
                return None;
            }
            CommandBody::Noop | CommandBody::Check => {
                if let Some(store) = store {
                    self.sync(store, true, false);
                }
                self.line(&format!("{tag} OK {name} completed"));
                return None;
            }
            CommandBody::Logout => {
                self.line("* BYE treehouse logging out");
                self.line(&format!("{tag} OK LOGOUT completed"));
                self.closed = true;
                return Some(Action::Close);
            }
            CommandBody::Id { .. } => {
                self.line("* ID (\"name\" \"treehouse\")");
                self.line(&format!("{tag} OK ID completed"));
                return None;
            }
            CommandBody::StartTLS => {
                if !self.cfg.starttls || self.tls || self.account.is_some() {
                    self.line(&format!("{tag} BAD STARTTLS is not available"));
                    return None;
                }
                self.line(&format!("{tag} OK Begin TLS negotiation now"));
                // Whatever followed STARTTLS in the clear is dropped, never run inside
                // TLS (the CVE-2011-0411 class of injection).
                self.frag = Fragmentizer::new(self.fragment_max_bytes());
                return Some(Action::StartTls);
            }
            CommandBody::Login { username, password } => {
                if self.refuse_login(&tag) {
                    return None;
                }
                let login = String::from_utf8(username.as_ref().to_vec());
                let password = String::from_utf8(password.declassify().as_ref().to_vec());
                let (Ok(login), Ok(password)) = (login, password) else {
                    self.line(&format!(
                        "{tag} NO [AUTHENTICATIONFAILED] Invalid credentials"
                    ));
                    return None;
                };
                self.pending = Some(Pending::Login { tag });
                return Some(Action::Login(sasl::Request::Password { login, password }));
            }
            CommandBody::Authenticate {
                mechanism,
                initial_response,
            } => {
                let initial = initial_response.as_ref().map(|ir| ir.declassify().as_ref());
                return self.authenticate(tag, &mechanism, initial);
            }
            _ => {}
        }
        let Some(account) = self.account.clone() else {
            self.line(&format!("{tag} BAD Log in first"));
            return None;
        };
        let Some(store) = store else {
            self.line(&format!(
                "{tag} NO [UNAVAILABLE] Mail storage is not available"
            ));
            return None;
        };
        let mut ctx = Ctx {
            tag,
            account,
            store,
        };
        self.authenticated_command(&mut ctx, command.body)
    }
}

/// What a command running while authenticated works with.
struct Ctx<'s> {
    tag: String,
    account: String,
    store: &'s mut dyn Mailstore,
}

impl Ctx<'_> {
    fn mailbox(&self, name: &str) -> Option<&store::Mailbox> {
        self.store.shard().mailbox(&self.account, name)
    }

    fn mailboxes(&self) -> Vec<String> {
        self.store
            .shard()
            .account(&self.account)
            .map(|a| a.mailboxes.keys().cloned().collect())
            .unwrap_or_default()
    }
}

impl Session {
    fn authenticated_command(
        &mut self,
        ctx: &mut Ctx<'_>,
        body: CommandBody<'static>,
    ) -> Option<Action> {
        let tag = ctx.tag.clone();
        match body {
            CommandBody::Enable { capabilities } => {
                let mut enabled = Vec::new();
                for cap in capabilities.as_ref() {
                    match cap {
                        CapabilityEnable::CondStore if !self.condstore => {
                            self.condstore = true;
                            enabled.push("CONDSTORE");
                        }
                        CapabilityEnable::Utf8(_) if !self.utf8 => {
                            self.utf8 = true;
                            enabled.push("UTF8=ACCEPT");
                        }
                        other
                            if !self.rev2
                                && other.to_string().eq_ignore_ascii_case("IMAP4rev2") =>
                        {
                            self.rev2 = true;
                            enabled.push("IMAP4rev2");
                        }
                        other
                            if !self.qresync
                                && other.to_string().eq_ignore_ascii_case("QRESYNC") =>
                        {
                            self.qresync = true;
                            self.condstore = true;
                            enabled.push("QRESYNC");
                        }
                        _ => {}
                    }
                }
                let mut line = String::from("* ENABLED");
                for e in enabled {
                    line.push(' ');
                    line.push_str(e);
                }
                self.line(&line);
                self.line(&format!("{tag} OK ENABLE completed"));
                None
            }
            CommandBody::Namespace => {
                self.line("* NAMESPACE ((\"\" \"/\")) NIL NIL");
                self.line(&format!("{tag} OK NAMESPACE completed"));
                None
            }
            CommandBody::List {
                reference,
                mailbox_wildcard,
            } => self.list(ctx, &reference, &[mailbox_wildcard], &ListQuery::default()),
            CommandBody::ListExtended {
                selection_options,
                reference,
                patterns,
                return_options,
            } => {
                let query = ListQuery::extended(&selection_options, &return_options);
                self.list(ctx, &reference, patterns.as_ref(), &query)
            }
            CommandBody::Lsub {
                reference,
                mailbox_wildcard,
            } => {
                let query = ListQuery {
                    lsub: true,
                    ..ListQuery::default()
                };
                self.list(ctx, &reference, &[mailbox_wildcard], &query)
            }
            CommandBody::Create { mailbox } => self.create(ctx, &mailbox),
            CommandBody::Delete { mailbox } => self.delete(ctx, &mailbox),
            CommandBody::Rename { from, to } => self.rename(ctx, &from, &to),
            CommandBody::Subscribe { mailbox } => self.subscribe(ctx, &mailbox, true),
            CommandBody::Unsubscribe { mailbox } => self.subscribe(ctx, &mailbox, false),
            CommandBody::Status {
                mailbox,
                item_names,
            } => {
                self.status(ctx, &mailbox, &item_names);
                None
            }
            CommandBody::Select {
                mailbox,
                parameters,
            } => {
                self.select(ctx, &mailbox, &parameters, false);
                None
            }
            CommandBody::Examine {
                mailbox,
                parameters,
            } => {
                self.select(ctx, &mailbox, &parameters, true);
                None
            }
            CommandBody::Append {
                mailbox,
                flags,
                date,
                message,
            } => {
                // The decoded literal owns its bytes: the message moves on without a copy.
                let body = match message {
                    LiteralOrLiteral8::Literal(l) => l.into_inner().into_owned(),
                    LiteralOrLiteral8::Literal8(l) => l.data.into_owned(),
                    // RFC 6855 §4: the UTF8 form only after ENABLE UTF8=ACCEPT.
                    LiteralOrLiteral8::Utf8(_) if !self.utf8 => {
                        self.line(&format!("{tag} BAD APPEND UTF8 needs ENABLE UTF8=ACCEPT"));
                        return None;
                    }
                    LiteralOrLiteral8::Utf8(l) => l.data.into_owned(),
                };
                let date = date.map(|d| d.as_ref().timestamp());
                self.append(ctx, &mailbox, &flags, date, body)
            }
            CommandBody::Idle => {
                self.sync(ctx.store, true, false);
                self.line("+ idling");
                self.mode = Mode::Idle { tag };
                None
            }
            body => self.selected_command(ctx, body),
        }
    }
}

/// Which form an APPEND's message literal took, to rebuild it around owned bytes.
#[derive(Debug, Clone, Copy)]
enum LiteralForm {
    Literal(LiteralMode),
    Literal8(LiteralMode),
    Utf8(LiteralMode),
}

impl LiteralForm {
    /// The same literal, holding `bytes` (already validated when it was decoded).
    fn with(self, bytes: Vec<u8>) -> LiteralOrLiteral8<'static> {
        let literal8 = |bytes: Vec<u8>, mode| Literal8 {
            data: bytes.into(),
            mode,
        };
        match self {
            LiteralForm::Literal(LiteralMode::Sync) => {
                LiteralOrLiteral8::Literal(Literal::unvalidated(bytes))
            }
            LiteralForm::Literal(LiteralMode::NonSync) => {
                LiteralOrLiteral8::Literal(Literal::unvalidated_non_sync(bytes))
            }
            LiteralForm::Literal8(mode) => LiteralOrLiteral8::Literal8(literal8(bytes, mode)),
            LiteralForm::Utf8(mode) => LiteralOrLiteral8::Utf8(literal8(bytes, mode)),
        }
    }
}

/// Where an APPEND's message literal lies within the command's bytes `whole`, when
/// the decoded literal borrows them (it always does; None makes the caller copy).
fn appended_literal(
    whole: &[u8],
    message: &LiteralOrLiteral8<'_>,
) -> (LiteralForm, Option<std::ops::Range<usize>>) {
    let (form, data) = match message {
        LiteralOrLiteral8::Literal(l) => (LiteralForm::Literal(l.mode()), l.as_ref()),
        LiteralOrLiteral8::Literal8(l) => (LiteralForm::Literal8(l.mode), l.data.as_ref()),
        LiteralOrLiteral8::Utf8(l) => (LiteralForm::Utf8(l.mode), l.data.as_ref()),
    };
    let start = (data.as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize);
    let range = start..start.wrapping_add(data.len());
    let inside = start <= whole.len() && range.end <= whole.len();
    (form, inside.then_some(range))
}

/// Cuts `bytes` down to `range` in place, keeping its allocation.
fn take_range(mut bytes: Vec<u8>, range: std::ops::Range<usize>) -> Vec<u8> {
    bytes.truncate(range.end);
    bytes.drain(..range.start);
    bytes
}
