//! POP3 connections: drives the core's POP3 session over a socket. Before login a
//! session runs on whichever executor accepted it; after login it moves, with the bytes
//! it already buffered and its TLS state, to the executor that owns the account's shard.
//! Only there is the maildrop locked (one POP3 session per account at a time), its
//! snapshot taken, its messages read and QUIT's expunge applied.

use std::cell::RefCell;
use std::collections::HashSet;
use std::io;
use std::net::{IpAddr, Ipv6Addr};
use std::rc::Rc;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use treehouse_core::address::shard_of;
use treehouse_core::pop3::{Action, Lock, Maildrop, ReadFailure, Session, SessionConfig, Step};
use treehouse_core::store::{self, Op, StoreError};

use crate::auth;
use crate::runtime::{Ending, Executor, MeshMsg};
use crate::shard::OwnedShard;
use crate::tls::{Conn, TlsParts};

/// Bytes read from a socket at a time; POP3 commands are short.
const READ_CHUNK_BYTES: usize = 4 * 1024;

thread_local! {
    /// Accounts whose maildrop a POP3 session holds, on this executor (the owner of
    /// their shard, so one set per shard owner covers every session of the account).
    static LOCKED_MAILDROPS: RefCell<HashSet<String>> = RefCell::new(HashSet::new());
}

/// A maildrop lock, released when dropped (the session ended, however it ended).
struct MaildropLock {
    account: String,
}

impl MaildropLock {
    /// Locks the maildrop of `account`; None if another session holds it.
    fn take(account: &str) -> Option<MaildropLock> {
        let taken = LOCKED_MAILDROPS.with(|locked| locked.borrow_mut().insert(account.to_string()));
        taken.then(|| MaildropLock {
            account: account.to_string(),
        })
    }
}

impl Drop for MaildropLock {
    fn drop(&mut self) {
        LOCKED_MAILDROPS.with(|locked| locked.borrow_mut().remove(&self.account));
    }
}

/// The shard and locked maildrop of a logged-in session.
struct Home {
    owned: Rc<OwnedShard>,
    account: String,
    _lock: MaildropLock,
}

/// The session settings from the configuration, for a connection to listener `local`.
fn session_config(ex: &Executor, local: Option<std::net::SocketAddr>) -> SessionConfig {
    SessionConfig {
        idle_timeout: Duration::from_secs(ex.config.pop3.idle_timeout_secs),
        stls: true,
        plaintext_login: local.is_some_and(|a| ex.config.auth.plaintext_allowed(a)),
        sasl_nonce: auth::server_nonce(),
        ..SessionConfig::default()
    }
}

/// Serves a new POP3 connection from its greeting on.
pub async fn serve_connection(ex: Rc<Executor>, stream: TcpStream) {
    serve(ex, stream, false).await;
}

/// Serves a new POP3 connection over implicit TLS (RFC 8314): handshake, then greeting.
pub async fn serve_tls_connection(ex: Rc<Executor>, stream: TcpStream) {
    serve(ex, stream, true).await;
}

async fn serve(ex: Rc<Executor>, stream: TcpStream, implicit_tls: bool) {
    let mut session = Session::new(session_config(&ex, stream.local_addr().ok()));
    let _ = stream.set_read_timeout(Some(session.idle_timeout()));
    let _ = stream.set_write_timeout(Some(session.idle_timeout()));
    let mut conn = Conn::Plain(stream);
    if implicit_tls {
        conn = match conn.start_tls(&ex.tls()).await {
            Ok(tls) => tls,
            Err(_) => return,
        };
        session.tls_started();
    }
    if ex.pop3_connections.get() >= ex.connection_share(ex.config.pop3.max_connections) {
        let _ = conn
            .write_all(b"-ERR [SYS/TEMP] Too many connections, try again later\r\n")
            .await;
        let _ = conn.close().await;
        return;
    }
    let greeting = Step {
        reply: session.greeting(),
        action: None,
    };
    run(ex, conn, session, greeting).await;
}

/// Continues a session handed over by another executor after its login.
pub async fn adopt(
    ex: Rc<Executor>,
    socket: std::net::TcpStream,
    tls: Option<TlsParts>,
    mut session: Session,
    account: String,
) {
    let stream = Conn::attach(socket, tls);
    let step = session.authenticated(Some(account));
    run(ex, stream, session, step).await;
}

async fn run(ex: Rc<Executor>, mut stream: Conn, mut session: Session, step: Step) {
    ex.pop3_connections.set(ex.pop3_connections.get() + 1);
    let mut home = None;
    let ended = converse(&ex, &mut stream, &mut session, &mut home, step).await;
    ex.conclude(
        stream,
        ended,
        session,
        "POP3",
        |socket, tls, session, account| MeshMsg::AdoptPop3 {
            socket,
            tls,
            session: Box::new(session),
            account,
        },
    )
    .await;
    // Releases the maildrop lock: a session that ends without QUIT deletes nothing.
    drop(home);
    ex.pop3_connections.set(ex.pop3_connections.get() - 1);
}

async fn converse(
    ex: &Rc<Executor>,
    stream: &mut Conn,
    session: &mut Session,
    home: &mut Option<Home>,
    mut step: Step,
) -> io::Result<Ending> {
    let tcp = stream.tcp()?;
    let peer = tcp
        .peer_addr()
        .map_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED), |a| a.ip());
    let _ = tcp.set_nodelay(true);
    tcp.set_read_timeout(Some(session.idle_timeout()))?;
    tcp.set_write_timeout(Some(session.idle_timeout()))?;
    let mut buf = vec![0u8; READ_CHUNK_BYTES];
    loop {
        loop {
            if !step.reply.is_empty() {
                stream.write_all(&step.reply).await?;
            }
            step = match step.action.take() {
                None => break,
                Some(Action::Close) => {
                    stream.flush().await?;
                    return Ok(Ending::Closed);
                }
                Some(Action::StartTls) => {
                    stream.flush().await?;
                    let plain = std::mem::replace(stream, Conn::Closed);
                    *stream = plain.start_tls(&ex.tls()).await?;
                    session.tls_started();
                    Step::default()
                }
                Some(Action::Login(request)) => match auth::answer(ex, peer, request).await {
                    auth::Answer::Keys(found) => session.scram_keys(found),
                    auth::Answer::Account(account) => match logged_in(ex, session, account) {
                        Ok(step) => step,
                        Err(ending) => return Ok(ending),
                    },
                },
                Some(Action::Lock { account }) => session.locked(lock(ex, home, account)),
                Some(Action::ReadBody { uid }) => {
                    let body = match home.as_ref() {
                        Some(found) => read_body(found, uid),
                        None => Err(ReadFailure::Unavailable("not logged in".into())),
                    };
                    session.body_read(body)
                }
                Some(Action::Apply(op)) => {
                    let result = match home.as_ref() {
                        Some(found) => expunge(found, op).await,
                        None => Err("not logged in".to_string()),
                    };
                    session.applied(result)
                }
            };
        }
        step = match stream.read(&mut buf).await {
            Ok(0) => return Ok(Ending::Closed),
            Ok(n) => session.feed(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                let _ = stream
                    .write_all(b"-ERR Disconnected for inactivity\r\n")
                    .await;
                let _ = stream.flush().await;
                return Ok(Ending::Closed);
            }
            Err(e) => return Err(e),
        };
    }
}

/// Answers a finished login: on the owner of the account's shard the session goes on
/// here; elsewhere it moves there.
fn logged_in(
    ex: &Executor,
    session: &mut Session,
    account: Option<String>,
) -> Result<Step, Ending> {
    let Some(account) = account else {
        return Ok(session.authenticated(None));
    };
    let owner = ex.layout.owner(shard_of(&account, ex.layout.shard_count));
    if owner != ex.me {
        return Err(Ending::HandOff { owner, account });
    }
    Ok(session.authenticated(Some(account)))
}

/// Locks the maildrop of `account` on this executor and takes its snapshot.
fn lock(ex: &Executor, home: &mut Option<Home>, account: String) -> Lock {
    let shard = shard_of(&account, ex.layout.shard_count);
    let Some(owned) = ex.owned_shard(shard) else {
        return Lock::Unavailable(format!("shard {shard} is not open on this executor"));
    };
    let Some(lock) = MaildropLock::take(&account) else {
        return Lock::InUse;
    };
    let maildrop = Maildrop::snapshot(owned.state().mailbox(&account, store::INBOX));
    *home = Some(Home {
        owned,
        account,
        _lock: lock,
    });
    Lock::Locked(maildrop)
}

fn read_body(home: &Home, uid: store::Uid) -> Result<Vec<u8>, ReadFailure> {
    match home.owned.read_body(&home.account, store::INBOX, uid) {
        Ok(body) => Ok(body),
        Err(StoreError::NoSuchMessage { .. } | StoreError::NoSuchMailbox { .. }) => {
            Err(ReadFailure::Expunged)
        }
        Err(e) if e.is_tempfail() => Err(ReadFailure::Unavailable(e.to_string())),
        Err(e) => Err(ReadFailure::Damaged(e.to_string())),
    }
}

/// Applies QUIT's expunge durably. Messages another client expunged since the snapshot
/// are left out; if none is left there is nothing to do.
async fn expunge(home: &Home, op: Op) -> Result<(), String> {
    let op = match op {
        Op::Expunge {
            account,
            mailbox,
            mut uids,
        } => {
            {
                let state = home.owned.state();
                let present = state.mailbox(&account, &mailbox);
                uids.retain(|uid| present.is_some_and(|m| m.messages.contains_key(uid)));
            }
            if uids.is_empty() {
                return Ok(());
            }
            Op::Expunge {
                account,
                mailbox,
                uids,
            }
        }
        other => other,
    };
    home.owned.apply(op).await.map_err(|f| f.text)
}
