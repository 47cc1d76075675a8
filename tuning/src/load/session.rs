//! One client connection: greeting, (L)HLO, then MAIL/RCPT/DATA transactions, reconnecting
//! a bounded number of times after connection errors.

use super::report::{Stage, Tally};
use super::{Pick, Protocol, Run};
use rand::{SeedableRng, rngs::StdRng, seq::index};
use smtp_proto::response::parser::ResponseReceiver;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Name sent with EHLO/LHLO.
const HELLO_NAME: &str = "treehouse-tune.invalid";
/// Size of the reply read buffer in bytes.
const READ_BUFFER_BYTES: usize = 16 * 1024;
/// Wait before the first reconnect; doubles up to `RECONNECT_DELAY_MAX`.
const RECONNECT_DELAY_MIN: Duration = Duration::from_millis(50);
/// Longest wait before a reconnect.
const RECONNECT_DELAY_MAX: Duration = Duration::from_secs(1);

/// Why a connection was given up.
#[derive(Debug)]
enum SessionError {
    /// Connect, read or write failed, or the server closed the connection.
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

/// Sends messages on connection `index` until the run is over or reconnects run out.
pub(super) fn connection_loop(run: &Run<'_>, index: usize) -> Tally {
    let mut tally = Tally::default();
    let mut rng = StdRng::seed_from_u64(run.run_id ^ index as u64);
    let mut delay = RECONNECT_DELAY_MIN;
    for attempt in 0..=run.plan.reconnects_max {
        if run.is_over() {
            break;
        }
        if attempt > 0 {
            let left = run.deadline.saturating_duration_since(Instant::now());
            std::thread::sleep(delay.min(left));
            delay = (delay * 2).min(RECONNECT_DELAY_MAX);
        }
        let outcome = Session::open(run).and_then(|mut session| {
            session.send_messages(run, &mut tally, &mut rng)?;
            session.quit();
            Ok(())
        });
        match outcome {
            Ok(()) => break,
            Err(e) => {
                if let SessionError::Refused(stage, code) = e {
                    tally.reject(stage, code);
                }
                tally.connection_error(format!("{}: {e}", run.plan.target));
            }
        }
    }
    tally
}

/// How one transaction ended, short of a connection error.
struct Transaction {
    /// Every reply was the expected one.
    durable: bool,
    /// Recipients with a 2xx final reply.
    recipients_ok: u64,
}

/// An open connection past the hello.
struct Session {
    stream: TcpStream,
    protocol: Protocol,
    pipeline: bool,
    /// The server offers SIZE (RFC 1870): MAIL FROM declares each message's size, as
    /// MTAs do.
    declare_size: bool,
    receiver: ResponseReceiver,
    read_buffer: Vec<u8>,
    read_start: usize,
    read_end: usize,
    out: Vec<u8>,
    rcpts: Vec<usize>,
    rcpt_codes: Vec<u16>,
    /// No I/O may wait past this instant: the run's deadline plus one I/O timeout.
    hard_deadline: Instant,
    /// The socket's current read and write timeout.
    timeout: Duration,
}

impl Session {
    /// Connects, reads the greeting and says hello.
    fn open(run: &Run<'_>) -> Result<Self, SessionError> {
        let hard_deadline = run.deadline + run.plan.io_timeout;
        let timeout = time_left(hard_deadline)?.min(run.plan.io_timeout);
        let stream = connect(run, timeout)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let mut session = Session {
            stream,
            protocol: run.plan.protocol,
            pipeline: false,
            declare_size: false,
            receiver: ResponseReceiver::default(),
            read_buffer: vec![0; READ_BUFFER_BYTES],
            read_start: 0,
            read_end: 0,
            out: Vec::new(),
            rcpts: Vec::with_capacity(run.plan.rcpts_per_message),
            rcpt_codes: Vec::with_capacity(run.plan.rcpts_per_message),
            hard_deadline,
            timeout,
        };
        let greeting = session.reply()?;
        if greeting.code != 220 {
            return Err(SessionError::Refused(Stage::Greeting, greeting.code));
        }
        let verb = match run.plan.protocol {
            Protocol::Smtp => "EHLO",
            Protocol::Lmtp => "LHLO",
        };
        session.command(format_args!("{verb} {HELLO_NAME}"))?;
        let hello = session.reply()?;
        if !is_2xx(hello.code) {
            return Err(SessionError::Refused(Stage::Hello, hello.code));
        }
        let offers_pipelining = hello
            .message
            .lines()
            .any(|line| line.trim().eq_ignore_ascii_case("PIPELINING"));
        session.pipeline = run.plan.pipeline && offers_pipelining;
        session.declare_size = hello.message.lines().any(|line| {
            let word = line.trim().split(' ').next().unwrap_or_default();
            word.eq_ignore_ascii_case("SIZE")
        });
        Ok(session)
    }

    /// Sends claimed messages until the run is over.
    fn send_messages(
        &mut self,
        run: &Run<'_>,
        tally: &mut Tally,
        rng: &mut StdRng,
    ) -> Result<(), SessionError> {
        while let Some(seq) = run.claim() {
            self.pick_rcpts(run, rng);
            let started = Instant::now();
            let transaction = match self.transact(run, seq, tally) {
                Ok(transaction) => transaction,
                Err(e) => {
                    tally.messages_failed += 1;
                    return Err(e);
                }
            };
            tally.recipients_ok += transaction.recipients_ok;
            if transaction.durable {
                let latency_us = started.elapsed().as_micros().try_into().unwrap_or(u64::MAX);
                tally.latency_us.saturating_record(latency_us.max(1));
                tally.messages_ok += 1;
                tally.message_bytes_ok += run.composer.message_size_bytes() as u64;
            } else {
                tally.messages_failed += 1;
            }
        }
        Ok(())
    }

    /// Fills `self.rcpts` with the indices of this message's recipients.
    fn pick_rcpts(&mut self, run: &Run<'_>, rng: &mut StdRng) {
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
            Pick::Random => self.rcpts.extend(index::sample(rng, len, count).iter()),
        }
    }

    /// Runs one MAIL/RCPT/DATA transaction for message `seq`, counting failed replies.
    fn transact(
        &mut self,
        run: &Run<'_>,
        seq: u64,
        tally: &mut Tally,
    ) -> Result<Transaction, SessionError> {
        let recipients = &run.plan.recipients;
        let failed = Transaction {
            durable: false,
            recipients_ok: 0,
        };
        self.out.clear();
        self.rcpt_codes.clear();
        let _ = write!(self.out, "MAIL FROM:<{}>", run.plan.from);
        if self.declare_size {
            let _ = write!(self.out, " SIZE={}", run.plan.message_size_bytes);
        }
        self.out.extend_from_slice(b"\r\n");
        if !self.pipeline {
            self.flush()?;
        }
        let mail_ok = self.pipeline || self.expect(Stage::Mail, tally)?;
        if !mail_ok {
            self.reset(tally)?;
            return Ok(failed);
        }
        for i in 0..self.rcpts.len() {
            let _ = write!(self.out, "RCPT TO:<{}>\r\n", recipients[self.rcpts[i]]);
            if !self.pipeline {
                self.flush()?;
                let code = self.reply()?.code;
                self.rcpt_codes.push(code);
            }
        }
        self.out.extend_from_slice(b"DATA\r\n");
        if self.pipeline {
            self.flush()?;
            let mail_ok = self.expect(Stage::Mail, tally)?;
            for _ in 0..self.rcpts.len() {
                let code = self.reply()?.code;
                self.rcpt_codes.push(code);
            }
            let data_code = self.reply()?.code;
            return self.finish(run, seq, tally, mail_ok, data_code);
        }
        let accepted = self.rcpt_codes.iter().filter(|&&c| is_2xx(c)).count();
        if accepted == 0 {
            self.out.clear();
            self.count_rcpt_codes(tally);
            self.reset(tally)?;
            return Ok(failed);
        }
        self.flush()?;
        let data_code = self.reply()?.code;
        self.finish(run, seq, tally, true, data_code)
    }

    /// After the DATA reply: sends the message if invited and reads the final replies.
    fn finish(
        &mut self,
        run: &Run<'_>,
        seq: u64,
        tally: &mut Tally,
        mail_ok: bool,
        data_code: u16,
    ) -> Result<Transaction, SessionError> {
        let accepted = self.rcpt_codes.iter().filter(|&&c| is_2xx(c)).count();
        let rcpts_all_ok = self.count_rcpt_codes(tally);
        if data_code != 354 {
            tally.reject(Stage::Data, data_code);
            self.reset(tally)?;
            return Ok(Transaction {
                durable: false,
                recipients_ok: 0,
            });
        }
        run.composer.write_wire(seq, &mut self.out);
        self.flush()?;
        let finals = match self.protocol {
            Protocol::Smtp => 1,
            Protocol::Lmtp => accepted,
        };
        let mut finals_ok = 0;
        for _ in 0..finals {
            let code = self.reply()?.code;
            if is_2xx(code) {
                finals_ok += 1;
            } else {
                tally.reject(Stage::Final, code);
            }
        }
        let recipients_ok = match self.protocol {
            Protocol::Smtp if finals_ok == 1 => accepted,
            Protocol::Smtp => 0,
            Protocol::Lmtp => finals_ok,
        };
        Ok(Transaction {
            durable: mail_ok && rcpts_all_ok && finals_ok == finals,
            recipients_ok: recipients_ok as u64,
        })
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

    /// Reads a reply for `stage`; counts it and returns false unless it is 2xx.
    fn expect(&mut self, stage: Stage, tally: &mut Tally) -> Result<bool, SessionError> {
        let code = self.reply()?.code;
        if !is_2xx(code) {
            tally.reject(stage, code);
        }
        Ok(is_2xx(code))
    }

    /// Abandons the current transaction with RSET.
    fn reset(&mut self, tally: &mut Tally) -> Result<(), SessionError> {
        self.command(format_args!("RSET"))?;
        self.expect(Stage::Reset, tally)?;
        Ok(())
    }

    /// Says goodbye, ignoring errors: the counts are final already.
    fn quit(&mut self) {
        if self.command(format_args!("QUIT")).is_ok() {
            let _ = self.reply();
        }
    }

    /// Sends one command line.
    fn command(&mut self, line: fmt::Arguments<'_>) -> Result<(), SessionError> {
        self.out.clear();
        let _ = self.out.write_fmt(line);
        self.out.extend_from_slice(b"\r\n");
        self.flush()
    }

    /// Shortens the socket timeouts so that no wait runs past the hard deadline.
    fn arm_timeouts(&mut self) -> io::Result<()> {
        let left = time_left(self.hard_deadline)?;
        if left < self.timeout {
            self.timeout = left;
            self.stream.set_read_timeout(Some(left))?;
            self.stream.set_write_timeout(Some(left))?;
        }
        Ok(())
    }

    /// Writes out everything buffered.
    fn flush(&mut self) -> Result<(), SessionError> {
        self.arm_timeouts()?;
        self.stream.write_all(&self.out)?;
        self.out.clear();
        Ok(())
    }

    /// Reads the next (possibly multi-line) reply.
    fn reply(&mut self) -> Result<smtp_proto::Response<String>, SessionError> {
        loop {
            if self.read_start < self.read_end {
                let mut bytes = self.read_buffer[self.read_start..self.read_end].iter();
                let parsed = self.receiver.parse(&mut bytes);
                self.read_start = self.read_end - bytes.len();
                match parsed {
                    Ok(reply) => {
                        self.receiver.reset();
                        return Ok(reply);
                    }
                    Err(smtp_proto::Error::NeedsMoreData { .. }) => {}
                    Err(e) => return Err(SessionError::Reply(e)),
                }
            }
            self.arm_timeouts()?;
            let read = self.stream.read(&mut self.read_buffer)?;
            if read == 0 {
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
            }
            self.read_start = 0;
            self.read_end = read;
        }
    }
}

/// Connects to the first address of the target that answers.
fn connect(run: &Run<'_>, timeout: Duration) -> Result<TcpStream, SessionError> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "target resolved to no address");
    for addr in &run.addrs {
        match TcpStream::connect_timeout(addr, timeout) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = e,
        }
    }
    Err(last.into())
}

/// Time until `deadline`, or a timeout error once it has passed.
fn time_left(deadline: Instant) -> io::Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "run time limit reached",
        ));
    }
    Ok(left)
}

fn is_2xx(code: u16) -> bool {
    (200..300).contains(&code)
}
