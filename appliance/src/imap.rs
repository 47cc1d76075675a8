//! IMAP connections: drives the core's IMAP session over a socket. Before login a
//! session runs on whichever executor accepted it; after login it moves, with the bytes
//! it already buffered, to the executor that owns the account's shard, so that every
//! later command reads and writes that shard core-locally.

use std::cell::Ref;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use treehouse_core::address::shard_of;
use treehouse_core::imap::{Action, Mailstore, Session, SessionConfig, Step};
use treehouse_core::store::{self, Shard, StoreError};

use crate::auth;
use crate::runtime::{Ending, Executor, MeshMsg};
use crate::shard::OwnedShard;
use crate::tls::{Conn, TlsParts};

/// Bytes read from a socket at a time; small, because most sessions sit idle and each
/// keeps its buffer (a large APPEND just takes more reads).
const READ_CHUNK_BYTES: usize = 4 * 1024;

/// A logged-in session's window on its shard, valid while no change is awaited.
struct View<'a> {
    owned: &'a OwnedShard,
    state: Ref<'a, Shard>,
    account: &'a str,
}

impl Mailstore for View<'_> {
    fn shard(&self) -> &Shard {
        &self.state
    }

    fn read_body(&mut self, mailbox: &str, uid: store::Uid) -> Result<Vec<u8>, StoreError> {
        self.owned.read_body(self.account, mailbox, uid)
    }

    fn read_body_range(
        &mut self,
        mailbox: &str,
        uid: store::Uid,
        from: u64,
        len: u64,
    ) -> Result<Vec<u8>, StoreError> {
        self.owned
            .read_body_range(self.account, mailbox, uid, from, len)
    }

    fn now_unix_s(&self) -> i64 {
        crate::clock::unix_now_secs()
    }
}

/// The shard a logged-in session works on, and the account it works as.
struct Home {
    owned: Rc<OwnedShard>,
    account: String,
}

impl Home {
    fn view(&self) -> View<'_> {
        View {
            owned: &self.owned,
            state: self.owned.state(),
            account: &self.account,
        }
    }
}

/// The session settings from the configuration, for a connection to listener `local`.
pub fn session_config(ex: &Executor, local: Option<std::net::SocketAddr>) -> SessionConfig {
    let imap = &ex.config.imap;
    SessionConfig {
        line_max_bytes: imap.max_line_bytes,
        literal_max_bytes: imap.max_literal_bytes,
        idle_timeout: Duration::from_secs(imap.idle_timeout_secs),
        starttls: true,
        plaintext_login: local.is_some_and(|a| ex.config.auth.plaintext_allowed(a)),
        sasl_nonce: crate::auth::server_nonce(),
        ..SessionConfig::default()
    }
}

/// Serves a new IMAP connection from its greeting on.
pub async fn serve_connection(ex: Rc<Executor>, stream: TcpStream) {
    serve(ex, stream, false).await;
}

/// Serves a new IMAP connection over implicit TLS (RFC 8314): handshake, then greeting.
pub async fn serve_tls_connection(ex: Rc<Executor>, stream: TcpStream) {
    serve(ex, stream, true).await;
}

async fn serve(ex: Rc<Executor>, mut stream: TcpStream, implicit_tls: bool) {
    if ex.imap_connections.get() >= ex.connection_share(ex.config.imap.max_connections) {
        let _ = stream
            .write_all(b"* BYE [UNAVAILABLE] Too many connections, try again later\r\n")
            .await;
        return;
    }
    let mut session = Session::new(session_config(&ex, stream.local_addr().ok()));
    let mut conn = Conn::Plain(stream);
    if implicit_tls {
        let config = ex.tls();
        let _ = conn
            .tcp()
            .map(|tcp| tcp.set_read_timeout(Some(session.idle_timeout())));
        conn = match conn.start_tls(&config).await {
            Ok(tls) => tls,
            Err(_) => return,
        };
        session.tls_started();
    }
    let greeting = Step {
        reply: session.greeting(),
        action: None,
    };
    run(ex, conn, session, None, greeting).await;
}

/// Continues a session handed over by another executor after its login.
pub async fn adopt(
    ex: Rc<Executor>,
    socket: std::net::TcpStream,
    tls: Option<TlsParts>,
    mut session: Session,
    account: String,
) {
    let mut stream = Conn::attach(socket, tls);
    let shard = shard_of(&account, ex.layout.shard_count);
    let Some(owned) = ex.owned_shard(shard) else {
        let _ = stream
            .write_all(b"* BYE [UNAVAILABLE] Mailbox shard not found\r\n")
            .await;
        return;
    };
    let home = Home {
        owned,
        account: account.clone(),
    };
    let step = {
        let mut view = home.view();
        session.authenticated(Some(account), Some(&mut view))
    };
    run(ex, stream, session, Some(home), step).await;
}

async fn run(
    ex: Rc<Executor>,
    mut stream: Conn,
    mut session: Session,
    mut home: Option<Home>,
    step: Step,
) {
    ex.imap_connections.set(ex.imap_connections.get() + 1);
    let ended = converse(&ex, &mut stream, &mut session, &mut home, step).await;
    ex.conclude(
        stream,
        ended,
        session,
        "IMAP",
        |socket, tls, session, account| MeshMsg::AdoptImap {
            socket,
            tls,
            session: Box::new(session),
            account,
        },
    )
    .await;
    ex.imap_connections.set(ex.imap_connections.get() - 1);
}

/// What woke an idling session.
enum Wake {
    Read(io::Result<usize>),
    Changed,
}

async fn converse(
    ex: &Rc<Executor>,
    stream: &mut Conn,
    session: &mut Session,
    home: &mut Option<Home>,
    mut step: Step,
) -> io::Result<Ending> {
    let tcp = stream.tcp()?;
    let peer = tcp.peer_addr()?.ip();
    let _ = tcp.set_nodelay(true);
    tcp.set_read_timeout(Some(session.idle_timeout()))?;
    tcp.set_write_timeout(Some(session.idle_timeout()))?;
    let mut watch = home.as_ref().map(|h| h.owned.watch());
    let mut buf = vec![0u8; READ_CHUNK_BYTES];
    loop {
        loop {
            if !step.reply.is_empty() {
                stream.write_all(&step.reply).await?;
            }
            step = match step.action.take() {
                None => break,
                Some(Action::Close) => return Ok(Ending::Closed),
                Some(Action::StartTls) => {
                    let config = ex.tls();
                    stream.flush().await?;
                    let plain = std::mem::replace(stream, Conn::Closed);
                    *stream = plain.start_tls(&config).await?;
                    session.tls_started();
                    Step::default()
                }
                Some(Action::Login(request)) => {
                    let account = match auth::answer(ex, peer, request).await {
                        auth::Answer::Keys(found) => {
                            step = session.scram_keys(found, None);
                            continue;
                        }
                        auth::Answer::Account(account) => account,
                    };
                    let Some(account) = account else {
                        step = session.authenticated(None, None);
                        continue;
                    };
                    let owner = ex.layout.owner(shard_of(&account, ex.layout.shard_count));
                    if owner != ex.me {
                        return Ok(Ending::HandOff { owner, account });
                    }
                    let Some(owned) = ex.owned_shard(shard_of(&account, ex.layout.shard_count))
                    else {
                        return Ok(Ending::Closed);
                    };
                    let found = home.insert(Home {
                        owned,
                        account: account.clone(),
                    });
                    watch = Some(found.owned.watch());
                    let mut view = found.view();
                    session.authenticated(Some(account), Some(&mut view))
                }
                Some(Action::Apply(ops)) => {
                    let Some(found) = home.as_ref() else {
                        return Ok(Ending::Closed);
                    };
                    let outcomes = found.owned.apply_many(ops).await;
                    let results = outcomes
                        .into_iter()
                        .map(|o| o.map_err(|f| f.text))
                        .collect();
                    let mut view = found.view();
                    session.applied(results, &mut view)
                }
            };
        }
        // An idling session also wakes on its shard's changes; other sessions learn of
        // them with their next command, so a busy shard does not wake them all.
        let wake = match (&watch, session.is_idling()) {
            (Some(changes), true) => {
                futures_lite::future::or(async { Wake::Read(stream.read(&mut buf).await) }, async {
                    let _ = changes.recv().await;
                    Wake::Changed
                })
                .await
            }
            _ => Wake::Read(stream.read(&mut buf).await),
        };
        step = match wake {
            Wake::Changed => match home.as_ref() {
                Some(found) => Step {
                    reply: session.poll(&mut found.view()),
                    action: None,
                },
                None => Step::default(),
            },
            Wake::Read(Ok(0)) => return Ok(Ending::Closed),
            Wake::Read(Ok(n)) => match home.as_ref() {
                Some(found) => session.feed(&buf[..n], Some(&mut found.view())),
                None => session.feed(&buf[..n], None),
            },
            Wake::Read(Err(e)) if e.kind() == io::ErrorKind::TimedOut => {
                let _ = stream
                    .write_all(b"* BYE Autologout; idle for too long\r\n")
                    .await;
                return Ok(Ending::Closed);
            }
            Wake::Read(Err(e)) => return Err(e),
        };
    }
}
