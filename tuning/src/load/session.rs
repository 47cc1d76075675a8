//! SMTP/LMTP connections driven by readiness: one event loop serves many connections,
//! each going through greeting, (L)HLO, then MAIL/RCPT/DATA transactions, and
//! reconnecting a bounded number of times after connection errors.
//!
//! A thread per connection would wake a thread for every reply. On a machine the
//! generator shares with the server it measures, those wake-ups preempt the server and
//! cost it about a fifth of its LMTP rate; one loop that finds several replies ready at
//! each wake-up costs a fraction of that.

use super::report::{Stage, Tally};
use super::{Pick, Protocol, Run};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use rand::{SeedableRng, rngs::StdRng, seq::index};
use smtp_proto::response::parser::ResponseReceiver;
use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Name sent with EHLO/LHLO.
const HELLO_NAME: &str = "treehouse-tune.invalid";
/// Size of each connection's reply read buffer in bytes.
const READ_BUFFER_BYTES: usize = 16 * 1024;
/// Wait before the first reconnect; doubles up to `RECONNECT_DELAY_MAX`.
const RECONNECT_DELAY_MIN: Duration = Duration::from_millis(50);
/// Longest wait before a reconnect.
const RECONNECT_DELAY_MAX: Duration = Duration::from_secs(1);
/// How often the loop looks for connections whose wait ran out.
const TIMEOUT_SCAN_INTERVAL: Duration = Duration::from_millis(10);
/// Readiness events taken from the kernel at once.
const EVENTS_AT_ONCE: usize = 256;

/// Why a connection was given up.
#[derive(Debug)]
enum SessionError {
    /// Connect, read or write failed, timed out, or the server closed the connection.
    Io(io::Error),
    /// A reply could not be parsed.
    Reply(smtp_proto::Error),
    /// The greeting or hello was refused with this code.
    Refused(Stage, u16),
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Io(e) => write!(f, "{e}"),
            SessionError::Reply(e) => write!(f, "unparsable reply: {e:?}"),
            SessionError::Refused(stage, code) => write!(f, "{} refused with {code}", stage.name()),
        }
    }
}

impl From<io::Error> for SessionError {
    fn from(e: io::Error) -> Self {
        SessionError::Io(e)
    }
}

/// What a connection waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No socket: a reconnect is due at this instant.
    Backoff(Instant),
    /// A connect to `addrs[n]` is in progress.
    Connecting(usize),
    Greeting,
    Hello,
    /// MAIL FROM's reply (without pipelining).
    Mail,
    /// The reply to the RCPT numbered by `rcpt_codes.len()` (without pipelining).
    Rcpt,
    /// DATA's reply (without pipelining).
    Data,
    /// With pipelining: MAIL's reply, then one per RCPT, then DATA's.
    Envelope,
    /// The final replies after the message.
    Finals,
    /// RSET's reply, after a failed transaction.
    Reset,
    /// QUIT's reply.
    Quit,
    /// Finished: the run is over or reconnects ran out.
    Done,
}

impl State {
    /// Whether a message is under way, so that a connection error fails it.
    fn in_transaction(self) -> bool {
        matches!(
            self,
            State::Mail
                | State::Rcpt
                | State::Data
                | State::Envelope
                | State::Finals
                | State::Reset
        )
    }
}

/// An open socket and its buffers.
struct Wire {
    stream: TcpStream,
    receiver: ResponseReceiver,
    read_buffer: Vec<u8>,
    read_start: usize,
    read_end: usize,
    out: Vec<u8>,
    out_at: usize,
    /// What follows `out` on the wire: the message tail every message shares
    /// ([`super::message::Composer::wire_tail`]), sent from there instead of copied.
    tail: Option<Arc<[u8]>>,
    /// Bytes of `tail` sent so far.
    tail_at: usize,
    /// The current wait for the server ends here.
    wait_until: Instant,
    /// The last read came back short of the buffer, so it emptied the socket: the next
    /// read waits for the next readiness event instead of being answered WouldBlock
    /// (the socket is edge-triggered, and new data brings a new event).
    drained: bool,
}

impl Wire {
    /// Moves what is left of a pending shared tail into `out`, so that bytes queued next
    /// go after it.
    fn unshare_tail(&mut self) {
        if let Some(tail) = self.tail.take() {
            self.out.extend_from_slice(&tail[self.tail_at..]);
            self.tail_at = 0;
        }
    }
}

/// What the connections of one loop share: the run, the loop's counts, and the registry
/// their sockets are registered with.
struct Loop<'a, 'r> {
    run: &'a Run<'r>,
    tally: Tally,
    registry: mio::Registry,
}

/// One of the plan's connections, across its reconnects.
struct Connection {
    token: Token,
    state: State,
    wire: Option<Wire>,
    rng: StdRng,
    /// Reconnects made so far.
    reconnects: u32,
    delay: Duration,
    pipeline: bool,
    /// The server offers SIZE (RFC 1870): MAIL FROM declares each message's size, as
    /// MTAs do.
    declare_size: bool,
    /// The message under way.
    seq: u64,
    started: Instant,
    rcpts: Vec<usize>,
    rcpt_codes: Vec<u16>,
    /// MAIL's reply has come (with pipelining), and whether it was 2xx.
    mail_replied: bool,
    mail_ok: bool,
    rcpts_all_ok: bool,
    /// Final replies still owed, and how many of them so far were 2xx.
    finals_left: usize,
    finals_ok: usize,
    finals: usize,
    accepted: usize,
}

/// Runs the connections numbered `indices` on this thread until each is done.
pub(super) fn drive(run: &Run<'_>, indices: &[usize]) -> Tally {
    let mut tally = Tally::default();
    let opened = Poll::new().and_then(|poll| {
        let registry = poll.registry().try_clone()?;
        Ok((poll, registry))
    });
    let (mut poll, registry) = match opened {
        Ok(opened) => opened,
        Err(e) => {
            for _ in indices {
                tally.connection_error(format!("cannot poll sockets: {e}"));
            }
            return tally;
        }
    };
    let mut cx = Loop {
        run,
        tally,
        registry,
    };
    let now = Instant::now();
    let mut connections: Vec<Connection> = indices
        .iter()
        .enumerate()
        .map(|(token, &index)| Connection::new(run, Token(token), index, now))
        .collect();
    let mut events = Events::with_capacity(EVENTS_AT_ONCE);
    let mut next_scan = now;
    let mut running = connections.len();
    loop {
        let now = Instant::now();
        if now >= next_scan {
            for c in &mut connections {
                running -= c.until_done(|c| c.check_time(&mut cx, now));
            }
            next_scan = now + TIMEOUT_SCAN_INTERVAL;
        }
        if running == 0 {
            return cx.tally;
        }
        let wait = next_scan.saturating_duration_since(Instant::now());
        if let Err(e) = poll.poll(&mut events, Some(wait))
            && e.kind() != io::ErrorKind::Interrupted
        {
            for c in &mut connections {
                if c.state != State::Done {
                    cx.tally
                        .connection_error(format!("cannot poll sockets: {e}"));
                    c.state = State::Done;
                }
            }
            return cx.tally;
        }
        for event in &events {
            if let Some(c) = connections.get_mut(event.token().0) {
                running -= c.until_done(|c| c.ready(&mut cx));
            }
        }
    }
}

impl Connection {
    fn new(run: &Run<'_>, token: Token, index: usize, now: Instant) -> Self {
        Connection {
            token,
            state: State::Backoff(now),
            wire: None,
            rng: StdRng::seed_from_u64(run.run_id ^ index as u64),
            reconnects: 0,
            delay: RECONNECT_DELAY_MIN,
            pipeline: false,
            declare_size: false,
            seq: 0,
            started: now,
            rcpts: Vec::with_capacity(run.plan.rcpts_per_message),
            rcpt_codes: Vec::with_capacity(run.plan.rcpts_per_message),
            mail_replied: false,
            mail_ok: false,
            rcpts_all_ok: false,
            finals_left: 0,
            finals_ok: 0,
            finals: 0,
            accepted: 0,
        }
    }

    /// Runs `step`; 1 if it finished the connection, else 0.
    fn until_done(&mut self, step: impl FnOnce(&mut Self)) -> usize {
        let before = self.state;
        step(self);
        usize::from(before != State::Done && self.state == State::Done)
    }

    /// Starts a due reconnect, or ends a wait that ran out.
    fn check_time(&mut self, cx: &mut Loop<'_, '_>, now: Instant) {
        match self.state {
            State::Done => {}
            State::Backoff(due) => {
                if now >= due {
                    self.connect_from(cx, 0);
                }
            }
            _ => {
                let expired = self.wire.as_ref().is_none_or(|w| now >= w.wait_until);
                if expired {
                    let e = io::Error::new(io::ErrorKind::TimedOut, "no reply in time");
                    self.fail(cx, e.into());
                }
            }
        }
    }

    /// Tries the target's addresses from `addrs[first]` on.
    fn connect_from(&mut self, cx: &mut Loop<'_, '_>, first: usize) {
        let mut last = io::Error::new(io::ErrorKind::NotFound, "target resolved to no address");
        for (n, addr) in cx.run.addrs.iter().enumerate().skip(first) {
            let opened = TcpStream::connect(*addr).and_then(|mut stream| {
                cx.registry.register(
                    &mut stream,
                    self.token,
                    Interest::READABLE | Interest::WRITABLE,
                )?;
                Ok(stream)
            });
            match opened {
                Ok(stream) => {
                    let wait_until = match wait_until(cx.run) {
                        Ok(at) => at,
                        Err(e) => return self.fail(cx, e.into()),
                    };
                    self.wire = Some(Wire {
                        stream,
                        receiver: ResponseReceiver::default(),
                        read_buffer: vec![0; READ_BUFFER_BYTES],
                        read_start: 0,
                        read_end: 0,
                        out: Vec::new(),
                        out_at: 0,
                        tail: None,
                        tail_at: 0,
                        wait_until,
                        drained: false,
                    });
                    self.state = State::Connecting(n);
                    return;
                }
                Err(e) => last = e,
            }
        }
        self.fail(cx, last.into());
    }

    /// Handles readiness of the socket.
    fn ready(&mut self, cx: &mut Loop<'_, '_>) {
        if let Some(wire) = self.wire.as_mut() {
            wire.drained = false;
        }
        if let State::Connecting(n) = self.state {
            match self.connected() {
                Ok(false) => return,
                Ok(true) => self.state = State::Greeting,
                Err(_) if n + 1 < cx.run.addrs.len() => {
                    self.close(&cx.registry);
                    return self.connect_from(cx, n + 1);
                }
                Err(e) => return self.fail(cx, e.into()),
            }
        }
        if let Err(e) = self.exchange(cx) {
            self.fail(cx, e);
        } else if self.state == State::Done {
            self.close(&cx.registry);
        }
    }

    /// Whether a connect in progress has finished; its error if it failed.
    fn connected(&mut self) -> io::Result<bool> {
        let Some(wire) = &self.wire else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        if let Some(e) = wire.stream.take_error()? {
            return Err(e);
        }
        match wire.stream.peer_addr() {
            Ok(_) => {
                wire.stream.set_nodelay(true)?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Writes what is owed and answers every reply that has arrived.
    fn exchange(&mut self, cx: &mut Loop<'_, '_>) -> Result<(), SessionError> {
        loop {
            self.flush(cx.run)?;
            let Some(wire) = self.wire.as_mut() else {
                return Ok(());
            };
            if wire.read_start < wire.read_end {
                let mut bytes = wire.read_buffer[wire.read_start..wire.read_end].iter();
                let parsed = wire.receiver.parse(&mut bytes);
                wire.read_start = wire.read_end - bytes.len();
                match parsed {
                    Ok(reply) => {
                        wire.receiver.reset();
                        self.on_reply(cx, reply.code, &reply.message)?;
                        if self.state == State::Done {
                            return Ok(());
                        }
                        continue;
                    }
                    Err(smtp_proto::Error::NeedsMoreData { .. }) => {}
                    Err(e) => return Err(SessionError::Reply(e)),
                }
            }
            if wire.drained {
                return Ok(());
            }
            match wire.stream.read(&mut wire.read_buffer) {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into()),
                Ok(n) => {
                    wire.drained = n < wire.read_buffer.len();
                    wire.read_start = 0;
                    wire.read_end = n;
                    wire.wait_until = wait_until(cx.run)?;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Writes out as much of the buffered output as the socket takes.
    fn flush(&mut self, run: &Run<'_>) -> Result<(), SessionError> {
        let Some(wire) = self.wire.as_mut() else {
            return Ok(());
        };
        loop {
            let head = &wire.out[wire.out_at..];
            let tail = wire.tail.as_deref().map_or(&[][..], |t| &t[wire.tail_at..]);
            let written = match (head.is_empty(), tail.is_empty()) {
                (true, true) => break,
                (false, true) => wire.stream.write(head),
                (true, false) => wire.stream.write(tail),
                (false, false) => wire
                    .stream
                    .write_vectored(&[IoSlice::new(head), IoSlice::new(tail)]),
            };
            match written {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero).into()),
                Ok(n) => {
                    let from_head = n.min(head.len());
                    wire.out_at += from_head;
                    wire.tail_at += n - from_head;
                    wire.wait_until = wait_until(run)?;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        wire.out.clear();
        wire.out_at = 0;
        wire.tail = None;
        wire.tail_at = 0;
        Ok(())
    }

    /// Buffers one command line.
    fn command(&mut self, line: fmt::Arguments<'_>) {
        if let Some(wire) = self.wire.as_mut() {
            wire.unshare_tail();
            let _ = wire.out.write_fmt(line);
            wire.out.extend_from_slice(b"\r\n");
        }
    }

    /// Moves the conversation on by one reply.
    fn on_reply(
        &mut self,
        cx: &mut Loop<'_, '_>,
        code: u16,
        message: &str,
    ) -> Result<(), SessionError> {
        match self.state {
            State::Greeting => {
                if code != 220 {
                    return Err(SessionError::Refused(Stage::Greeting, code));
                }
                let verb = match cx.run.plan.protocol {
                    Protocol::Smtp => "EHLO",
                    Protocol::Lmtp => "LHLO",
                };
                self.command(format_args!("{verb} {HELLO_NAME}"));
                self.state = State::Hello;
            }
            State::Hello => {
                if !is_2xx(code) {
                    return Err(SessionError::Refused(Stage::Hello, code));
                }
                let offers_pipelining = message
                    .lines()
                    .any(|line| line.trim().eq_ignore_ascii_case("PIPELINING"));
                self.pipeline = cx.run.plan.pipeline && offers_pipelining;
                self.declare_size = message.lines().any(|line| {
                    let word = line.trim().split(' ').next().unwrap_or_default();
                    word.eq_ignore_ascii_case("SIZE")
                });
                self.next_message(cx.run);
            }
            State::Mail => {
                if is_2xx(code) {
                    self.send_rcpt(cx.run);
                    self.state = State::Rcpt;
                } else {
                    cx.tally.reject(Stage::Mail, code);
                    self.reset();
                }
            }
            State::Rcpt => {
                self.rcpt_codes.push(code);
                if self.rcpt_codes.len() < self.rcpts.len() {
                    self.send_rcpt(cx.run);
                } else if self.rcpt_codes.iter().any(|&c| is_2xx(c)) {
                    self.command(format_args!("DATA"));
                    self.state = State::Data;
                } else {
                    self.count_rcpt_codes(&mut cx.tally);
                    self.reset();
                }
            }
            State::Data => {
                self.mail_ok = true;
                self.finish(cx, code);
            }
            State::Envelope => {
                if !self.mail_replied {
                    self.mail_replied = true;
                    self.mail_ok = is_2xx(code);
                    if !self.mail_ok {
                        cx.tally.reject(Stage::Mail, code);
                    }
                } else if self.rcpt_codes.len() < self.rcpts.len() {
                    self.rcpt_codes.push(code);
                } else {
                    self.finish(cx, code);
                }
            }
            State::Finals => {
                if is_2xx(code) {
                    self.finals_ok += 1;
                } else {
                    cx.tally.reject(Stage::Final, code);
                }
                self.finals_left -= 1;
                if self.finals_left == 0 {
                    self.conclude(cx);
                }
            }
            State::Reset => {
                if !is_2xx(code) {
                    cx.tally.reject(Stage::Reset, code);
                }
                cx.tally.messages_failed += 1;
                self.next_message(cx.run);
            }
            State::Quit => self.state = State::Done,
            State::Backoff(_) | State::Connecting(_) | State::Done => {}
        }
        Ok(())
    }

    /// Starts the next claimed message, or says goodbye when the run is over.
    fn next_message(&mut self, run: &Run<'_>) {
        let Some(seq) = run.claim() else {
            self.command(format_args!("QUIT"));
            self.state = State::Quit;
            return;
        };
        self.seq = seq;
        self.pick_rcpts(run);
        self.started = Instant::now();
        self.rcpt_codes.clear();
        self.mail_replied = false;
        self.mail_ok = false;
        self.rcpts_all_ok = false;
        let Some(wire) = self.wire.as_mut() else {
            return;
        };
        let _ = write!(wire.out, "MAIL FROM:<{}>", run.plan.from);
        if self.declare_size {
            let _ = write!(wire.out, " SIZE={}", run.plan.message_size_bytes);
        }
        wire.out.extend_from_slice(b"\r\n");
        if !self.pipeline {
            self.state = State::Mail;
            return;
        }
        for &rcpt in &self.rcpts {
            let _ = write!(wire.out, "RCPT TO:<{}>\r\n", run.plan.recipients[rcpt]);
        }
        wire.out.extend_from_slice(b"DATA\r\n");
        self.state = State::Envelope;
    }

    /// Buffers the RCPT for the next recipient without a reply.
    fn send_rcpt(&mut self, run: &Run<'_>) {
        let rcpt = self.rcpts[self.rcpt_codes.len()];
        self.command(format_args!("RCPT TO:<{}>", run.plan.recipients[rcpt]));
    }

    /// Fills `self.rcpts` with the indices of this message's recipients.
    fn pick_rcpts(&mut self, run: &Run<'_>) {
        let count = run.plan.rcpts_per_message;
        let len = run.plan.recipients.len();
        self.rcpts.clear();
        match run.plan.pick {
            Pick::RoundRobin => {
                let base = run
                    .next_rcpt
                    .fetch_add(count, std::sync::atomic::Ordering::Relaxed);
                self.rcpts
                    .extend((0..count).map(|i| base.wrapping_add(i) % len));
            }
            Pick::Random => self
                .rcpts
                .extend(index::sample(&mut self.rng, len, count).iter()),
        }
    }

    /// After the DATA reply: sends the message if invited, else abandons it.
    fn finish(&mut self, cx: &mut Loop<'_, '_>, data_code: u16) {
        self.accepted = self.rcpt_codes.iter().filter(|&&c| is_2xx(c)).count();
        self.rcpts_all_ok = self.count_rcpt_codes(&mut cx.tally);
        if data_code != 354 {
            cx.tally.reject(Stage::Data, data_code);
            return self.reset();
        }
        if let Some(wire) = self.wire.as_mut() {
            wire.unshare_tail();
            cx.run.composer.write_wire_header(self.seq, &mut wire.out);
            wire.tail = Some(cx.run.composer.wire_tail());
        }
        self.finals = match cx.run.plan.protocol {
            Protocol::Smtp => 1,
            Protocol::Lmtp => self.accepted,
        };
        self.finals_left = self.finals;
        self.finals_ok = 0;
        self.state = State::Finals;
        if self.finals == 0 {
            self.conclude(cx);
        }
    }

    /// Counts a message whose final replies are all in, then starts the next.
    fn conclude(&mut self, cx: &mut Loop<'_, '_>) {
        let recipients_ok = match cx.run.plan.protocol {
            Protocol::Smtp if self.finals_ok == 1 => self.accepted,
            Protocol::Smtp => 0,
            Protocol::Lmtp => self.finals_ok,
        };
        cx.tally.recipients_ok += recipients_ok as u64;
        if self.mail_ok && self.rcpts_all_ok && self.finals_ok == self.finals {
            let latency_us = self
                .started
                .elapsed()
                .as_micros()
                .try_into()
                .unwrap_or(u64::MAX);
            cx.tally.latency_us.saturating_record(latency_us.max(1));
            cx.tally.messages_ok += 1;
            cx.tally.message_bytes_ok += cx.run.composer.message_size_bytes() as u64;
        } else {
            cx.tally.messages_failed += 1;
        }
        self.next_message(cx.run);
    }

    /// Counts the non-2xx RCPT replies; true when there were none.
    fn count_rcpt_codes(&mut self, tally: &mut Tally) -> bool {
        let mut all_ok = true;
        for &code in &self.rcpt_codes {
            if !is_2xx(code) {
                tally.reject(Stage::Rcpt, code);
                all_ok = false;
            }
        }
        self.rcpt_codes.clear();
        all_ok
    }

    /// Abandons the current transaction with RSET.
    fn reset(&mut self) {
        self.command(format_args!("RSET"));
        self.state = State::Reset;
    }

    /// Ends the socket after an error: counts it, then schedules a reconnect if the
    /// run goes on and reconnects remain.
    fn fail(&mut self, cx: &mut Loop<'_, '_>, error: SessionError) {
        self.close(&cx.registry);
        if self.state == State::Quit {
            // The counts are final already.
            self.state = State::Done;
            return;
        }
        if self.state.in_transaction() {
            cx.tally.messages_failed += 1;
        }
        if let SessionError::Refused(stage, code) = error {
            cx.tally.reject(stage, code);
        }
        cx.tally
            .connection_error(format!("{}: {error}", cx.run.plan.target));
        if cx.run.is_over() || self.reconnects >= cx.run.plan.reconnects_max {
            self.state = State::Done;
            return;
        }
        self.reconnects += 1;
        let left = cx.run.deadline.saturating_duration_since(Instant::now());
        self.state = State::Backoff(Instant::now() + self.delay.min(left));
        self.delay = (self.delay * 2).min(RECONNECT_DELAY_MAX);
    }

    /// Drops the socket, if any.
    fn close(&mut self, registry: &mio::Registry) {
        if let Some(mut wire) = self.wire.take() {
            let _ = registry.deregister(&mut wire.stream);
        }
    }
}

/// The end of a wait that starts now: one I/O timeout, never past the run's deadline
/// plus one I/O timeout; an error once that has passed.
fn wait_until(run: &Run<'_>) -> io::Result<Instant> {
    let hard_deadline = run.deadline + run.plan.io_timeout;
    let now = Instant::now();
    if now >= hard_deadline {
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "run time limit reached",
        ));
    }
    Ok((now + run.plan.io_timeout).min(hard_deadline))
}

fn is_2xx(code: u16) -> bool {
    (200..300).contains(&code)
}
