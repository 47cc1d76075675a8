//! SMTP, LMTP and submission connections: drives the core's session state machine
//! over a socket, checks submission logins through [`crate::auth`], and fans each
//! accepted message out to the owners of its recipients' shards.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use treehouse_core::message;
use treehouse_core::smtp::{
    self, Action, Delivery, Recipient, RecipientOutcome, Session, SessionConfig,
};
use treehouse_core::store::Op;

use crate::auth;
use crate::clock;
use crate::directory::{Directory, Resolution};
use crate::runtime::Executor;
use crate::tls::Conn;

/// Which protocol a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// RFC 5321 SMTP from upstream MTAs.
    Smtp,
    /// RFC 2033 LMTP, one reply per recipient.
    Lmtp,
    /// RFC 6409 message submission from authenticated users, with STARTTLS.
    Submission,
    /// Submission over implicit TLS (RFC 8314): the handshake comes before the greeting.
    Submissions,
}

/// Bytes read from a socket at a time.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// The mailbox every delivery lands in.
const INBOX: &str = "INBOX";

/// Looks recipients and senders up in the executor's copy of the directory.
struct Recipients<'a>(&'a Directory);

impl smtp::Directory for Recipients<'_> {
    fn recipient(&self, address: &str) -> Recipient {
        match self.0.resolve(address) {
            Resolution::Accounts(accounts) => Recipient::Local { accounts },
            Resolution::UnknownUser => Recipient::UnknownUser,
            Resolution::ForeignDomain => Recipient::RelayDenied,
        }
    }

    fn may_send_as(&self, account: &str, sender: &str) -> bool {
        self.0.may_send_as(account, sender)
    }
}

/// Serves one SMTP, LMTP or submission connection until the client quits, times out
/// or errs.
pub async fn serve_connection(ex: Rc<Executor>, mut stream: TcpStream, mode: Mode) {
    if ex.connections.get() >= ex.connection_share(ex.config.smtp.max_connections) {
        let _ = stream
            .write_all(b"421 4.7.0 Too many connections, try again later\r\n")
            .await;
        return;
    }
    ex.connections.set(ex.connections.get() + 1);
    let mut conn = Conn::Plain(stream);
    if let Err(e) = converse(&ex, &mut conn, mode).await
        && !matches!(
            e.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
        )
    {
        eprintln!("treehouse: {mode:?} connection ended: {e}");
    }
    let _ = conn.close().await;
    ex.connections.set(ex.connections.get() - 1);
}

async fn converse(ex: &Rc<Executor>, conn: &mut Conn, mode: Mode) -> std::io::Result<()> {
    let tcp = conn.tcp()?;
    let _ = tcp.set_nodelay(true);
    let peer = tcp.peer_addr()?;
    let local = tcp.local_addr()?;
    // The socket's own timeouts bound idle and slow clients (and TLS handshakes); no
    // read is ever abandoned half-way by an outer timer.
    let idle = Duration::from_secs(ex.config.smtp.idle_timeout_secs);
    tcp.set_read_timeout(Some(idle))?;
    tcp.set_write_timeout(Some(idle))?;
    let config = session_config(ex, mode, local);
    let mut clock_secs = clock::unix_now_secs();
    let mut session = Session::new(config, peer, clock::rfc5322(clock_secs));
    if mode == Mode::Submissions {
        let acceptor = ex.tls();
        let plain = std::mem::replace(conn, Conn::Closed);
        *conn = plain.start_tls(&acceptor).await?;
        session.tls_started();
    }
    conn.write_all(&session.greeting()).await?;
    let mut buf = vec![0u8; READ_CHUNK_BYTES];
    let stream = conn;
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                stream.write_all(&session.timed_out()).await?;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        // The date for Received headers, formatted again only when the second changes.
        let now = clock::unix_now_secs();
        if now != clock_secs {
            clock_secs = now;
            session.set_clock(clock::rfc5322(now));
        }
        let mut step = {
            let directory = ex.directory.borrow();
            session.feed(&buf[..n], &Recipients(&directory))
        };
        loop {
            if !step.reply.is_empty() {
                stream.write_all(&step.reply).await?;
            }
            match step.action.take() {
                None => break,
                Some(Action::Close) => return Ok(()),
                Some(Action::Deliver(delivery)) => {
                    let outcomes = deliver(ex, delivery).await;
                    let directory = ex.directory.borrow();
                    step = session.delivered(outcomes, &Recipients(&directory));
                }
                Some(Action::StartTls) => {
                    let acceptor = ex.tls();
                    stream.flush().await?;
                    let plain = std::mem::replace(stream, Conn::Closed);
                    *stream = plain.start_tls(&acceptor).await?;
                    session.tls_started();
                    break;
                }
                Some(Action::Login(request)) => {
                    step = match auth::answer(ex, peer.ip(), request).await {
                        auth::Answer::Keys(found) => {
                            let directory = ex.directory.borrow();
                            session.scram_keys(found, &Recipients(&directory))
                        }
                        auth::Answer::Account(account) => authenticated(ex, &mut session, account),
                    };
                }
            }
        }
    }
}

/// Answers the session with the outcome of a login.
fn authenticated(ex: &Executor, session: &mut Session, account: Option<String>) -> smtp::Step {
    let directory = ex.directory.borrow();
    session.authenticated(account, &Recipients(&directory))
}

/// The session settings for a connection to listener `local`.
fn session_config(ex: &Executor, mode: Mode, local: SocketAddr) -> SessionConfig {
    let smtp = &ex.config.smtp;
    SessionConfig {
        mode: match mode {
            Mode::Smtp => smtp::Mode::Smtp,
            Mode::Lmtp => smtp::Mode::Lmtp,
            Mode::Submission | Mode::Submissions => smtp::Mode::Submission,
        },
        hostname: ex.config.server.hostname.clone(),
        // Implicit TLS is on from the start; STARTTLS is then never offered.
        starttls: mode != Mode::Submissions,
        plaintext_login: ex.config.auth.plaintext_allowed(local),
        sasl_nonce: auth::server_nonce(),
        limits: smtp::Limits {
            max_message_bytes: smtp.max_message_bytes,
            max_recipients: smtp.max_recipients,
            max_command_line_bytes: smtp.max_command_line_bytes,
            max_text_line_bytes: smtp.max_text_line_bytes,
            max_errors: smtp.max_errors,
        },
    }
}

/// Stores one copy per distinct account, all in parallel, and answers per RCPT in
/// order: a RCPT is durable when every account it expands to is.
async fn deliver(ex: &Rc<Executor>, delivery: Delivery) -> Vec<RecipientOutcome> {
    let Delivery {
        recipients,
        message: mut body,
        newlines,
        ..
    } = delivery;
    let meta = message::parse_counted(&body, newlines).encode();
    let internal_date = clock::unix_now_secs();
    let mut accounts: Vec<&String> = recipients.iter().flatten().collect();
    accounts.sort();
    accounts.dedup();
    let last = accounts.len().saturating_sub(1);
    let tasks: Vec<_> = accounts
        .iter()
        .enumerate()
        .map(|(i, account)| {
            let ex = ex.clone();
            let account = (*account).clone();
            // Every copy but the last is a clone; the last takes the message itself.
            let body = if i == last {
                std::mem::take(&mut body)
            } else {
                body.clone()
            };
            let op = Op::Append {
                account: account.clone(),
                mailbox: INBOX.to_string(),
                flags: Vec::new(),
                internal_date,
                meta: meta.clone(),
                body,
            };
            glommio::spawn_local(async move { ex.apply(&account, op).await })
        })
        .collect();
    let mut outcomes = Vec::with_capacity(tasks.len());
    for task in tasks {
        outcomes.push(task.await);
    }
    let outcome_of = |account: &String| accounts.binary_search(&account).ok().map(|i| &outcomes[i]);
    recipients
        .iter()
        .map(|rcpt| {
            let failed = rcpt
                .iter()
                .filter_map(outcome_of)
                .find_map(|o| o.as_ref().err());
            match failed {
                None => RecipientOutcome::Durable,
                Some(f) => RecipientOutcome::TempFail {
                    code: f.code,
                    enhanced: f.enhanced,
                    text: f.text.clone(),
                },
            }
        })
        .collect()
}
