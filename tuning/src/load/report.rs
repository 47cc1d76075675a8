//! Counts, rates and latencies of a load run, as a text block and as one JSON line.

use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::fmt::{self, Write};
use std::time::Duration;

/// Longest latency the histogram holds, in microseconds (larger values saturate).
pub const LATENCY_US_MAX: u64 = 3_600_000_000;

/// Where in a session a reply was received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// The server's greeting.
    Greeting,
    /// EHLO or LHLO.
    Hello,
    /// MAIL FROM.
    Mail,
    /// RCPT TO.
    Rcpt,
    /// The DATA command (354 expected).
    Data,
    /// The reply after the message (one per recipient in LMTP).
    Final,
    /// RSET after a failed transaction.
    Reset,
}

impl Stage {
    /// Lower-case name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Greeting => "greeting",
            Stage::Hello => "hello",
            Stage::Mail => "mail",
            Stage::Rcpt => "rcpt",
            Stage::Data => "data",
            Stage::Final => "final",
            Stage::Reset => "reset",
        }
    }
}

/// Outcomes of one connection, or of a whole run once merged.
#[derive(Debug, Clone)]
pub struct Tally {
    /// Messages every recipient of which got a 2xx final reply.
    pub messages_ok: u64,
    /// Messages with any non-2xx reply or cut off by a connection error.
    pub messages_failed: u64,
    /// Recipients that got a 2xx final reply (SMTP: all accepted ones per 2xx).
    pub recipients_ok: u64,
    /// Bytes of the messages counted in `messages_ok`.
    pub message_bytes_ok: u64,
    /// Failed connects, I/O errors, unparsable replies and refused greetings or hellos.
    pub connection_errors: u64,
    /// The first connection error's description.
    pub connection_error_first: Option<String>,
    /// Replies other than the expected 2xx (or 354 for DATA), by stage and code.
    pub replies_failed: BTreeMap<(Stage, u16), u64>,
    /// Latency of `messages_ok`, from sending MAIL FROM to the last final reply, in µs.
    pub latency_us: Histogram<u64>,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            messages_ok: 0,
            messages_failed: 0,
            recipients_ok: 0,
            message_bytes_ok: 0,
            connection_errors: 0,
            connection_error_first: None,
            replies_failed: BTreeMap::new(),
            latency_us: Histogram::new_with_bounds(1, LATENCY_US_MAX, 3)
                .expect("constant histogram bounds are valid"),
        }
    }
}

impl Tally {
    /// Counts a failed reply `code` at `stage`.
    pub fn reject(&mut self, stage: Stage, code: u16) {
        *self.replies_failed.entry((stage, code)).or_default() += 1;
    }

    /// Counts a connection error described by `description`.
    pub fn connection_error(&mut self, description: String) {
        self.connection_errors += 1;
        self.connection_error_first.get_or_insert(description);
    }

    /// Adds `other`'s counts and latencies to this one.
    pub fn merge(&mut self, other: &Tally) {
        self.messages_ok += other.messages_ok;
        self.messages_failed += other.messages_failed;
        self.recipients_ok += other.recipients_ok;
        self.message_bytes_ok += other.message_bytes_ok;
        self.connection_errors += other.connection_errors;
        if self.connection_error_first.is_none() {
            self.connection_error_first
                .clone_from(&other.connection_error_first);
        }
        for (key, count) in &other.replies_failed {
            *self.replies_failed.entry(*key).or_default() += count;
        }
        self.latency_us
            .add(&other.latency_us)
            .expect("histograms with equal bounds add");
    }
}

/// The result of a load run.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// `smtp` or `lmtp`.
    pub protocol: &'static str,
    /// The HOST:PORT loaded.
    pub target: String,
    /// Concurrent connections.
    pub connections: usize,
    /// Size of each message in bytes.
    pub message_size_bytes: usize,
    /// Recipients per message.
    pub rcpts_per_message: usize,
    /// Whether commands were pipelined.
    pub pipeline: bool,
    /// Wall time from the first connect to the last connection's end.
    pub elapsed: Duration,
    /// Counts and latencies of all connections.
    pub tally: Tally,
}

impl LoadReport {
    fn per_s(&self, count: f64) -> f64 {
        let elapsed_s = self.elapsed.as_secs_f64();
        if elapsed_s > 0.0 {
            count / elapsed_s
        } else {
            0.0
        }
    }

    /// Durably accepted messages per second.
    pub fn deliveries_per_s(&self) -> f64 {
        self.per_s(self.tally.messages_ok as f64)
    }

    /// Durably accepted recipient deliveries per second.
    pub fn recipient_deliveries_per_s(&self) -> f64 {
        self.per_s(self.tally.recipients_ok as f64)
    }

    /// Durably accepted message bytes per second, in MiB.
    pub fn mib_per_s(&self) -> f64 {
        self.per_s(self.tally.message_bytes_ok as f64) / 1_048_576.0
    }

    /// Latency at `quantile` (0..=1) of durably accepted messages, in milliseconds.
    pub fn latency_ms(&self, quantile: f64) -> f64 {
        self.tally.latency_us.value_at_quantile(quantile) as f64 / 1000.0
    }

    /// Longest latency of a durably accepted message, in milliseconds.
    pub fn latency_ms_max(&self) -> f64 {
        self.tally.latency_us.max() as f64 / 1000.0
    }

    /// Failed replies as `stage:code=count` pairs, or `none`.
    fn errors_text(&self) -> String {
        if self.tally.replies_failed.is_empty() {
            return "none".to_owned();
        }
        let pairs: Vec<String> = self
            .tally
            .replies_failed
            .iter()
            .map(|((stage, code), count)| format!("{}:{code}={count}", stage.name()))
            .collect();
        pairs.join(" ")
    }

    /// The report as one line of JSON.
    pub fn to_json(&self) -> String {
        let t = &self.tally;
        let mut errors = String::new();
        for (i, ((stage, code), count)) in t.replies_failed.iter().enumerate() {
            let comma = if i == 0 { "" } else { "," };
            let _ = write!(errors, "{comma}\"{}:{code}\":{count}", stage.name());
        }
        format!(
            "{{\"protocol\":{},\"target\":{},\"connections\":{},\"message_size_bytes\":{},\
             \"rcpts_per_message\":{},\"pipeline\":{},\"elapsed_s\":{:.3},\
             \"messages_ok\":{},\"messages_failed\":{},\"recipients_ok\":{},\
             \"deliveries_per_s\":{:.1},\"recipient_deliveries_per_s\":{:.1},\"mib_per_s\":{:.3},\
             \"latency_ms\":{{\"p50\":{:.3},\"p99\":{:.3},\"p999\":{:.3},\"max\":{:.3}}},\
             \"errors\":{{{errors}}},\"connection_errors\":{}}}",
            json_string(self.protocol),
            json_string(&self.target),
            self.connections,
            self.message_size_bytes,
            self.rcpts_per_message,
            self.pipeline,
            self.elapsed.as_secs_f64(),
            t.messages_ok,
            t.messages_failed,
            t.recipients_ok,
            self.deliveries_per_s(),
            self.recipient_deliveries_per_s(),
            self.mib_per_s(),
            self.latency_ms(0.50),
            self.latency_ms(0.99),
            self.latency_ms(0.999),
            self.latency_ms_max(),
            t.connection_errors,
        )
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.tally;
        writeln!(
            f,
            "treehouse-tune load {} {} connections={} message_size_bytes={} \
             rcpts_per_message={} pipeline={}",
            self.protocol,
            self.target,
            self.connections,
            self.message_size_bytes,
            self.rcpts_per_message,
            self.pipeline
        )?;
        writeln!(
            f,
            "elapsed_s               {:.3}",
            self.elapsed.as_secs_f64()
        )?;
        writeln!(
            f,
            "messages                ok={} failed={} recipients_ok={}",
            t.messages_ok, t.messages_failed, t.recipients_ok
        )?;
        writeln!(f, "deliveries/s            {:.1}", self.deliveries_per_s())?;
        writeln!(
            f,
            "recipient_deliveries/s  {:.1}",
            self.recipient_deliveries_per_s()
        )?;
        writeln!(f, "MiB/s                   {:.3}", self.mib_per_s())?;
        writeln!(
            f,
            "latency_ms              p50={:.3} p99={:.3} p999={:.3} max={:.3}",
            self.latency_ms(0.50),
            self.latency_ms(0.99),
            self.latency_ms(0.999),
            self.latency_ms_max()
        )?;
        writeln!(f, "errors                  {}", self.errors_text())?;
        write!(f, "connection_errors       {}", t.connection_errors)?;
        match &t.connection_error_first {
            Some(first) => write!(f, " (first: {first})"),
            None => Ok(()),
        }
    }
}

/// `text` as a quoted JSON string.
pub(crate) fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> LoadReport {
        let mut tally = Tally {
            messages_ok: 4,
            messages_failed: 2,
            recipients_ok: 8,
            message_bytes_ok: 4 * 1_048_576,
            connection_errors: 1,
            ..Tally::default()
        };
        tally.reject(Stage::Final, 451);
        tally.reject(Stage::Rcpt, 550);
        tally.reject(Stage::Final, 451);
        for latency_us in [500, 1000, 1500, 2000] {
            tally.latency_us.saturating_record(latency_us);
        }
        LoadReport {
            protocol: "lmtp",
            target: "host\"x:24".to_owned(),
            connections: 2,
            message_size_bytes: 1_048_576,
            rcpts_per_message: 2,
            pipeline: false,
            elapsed: Duration::from_secs(2),
            tally,
        }
    }

    #[test]
    fn json_line_has_rates_latencies_and_errors() {
        assert_eq!(
            report().to_json(),
            "{\"protocol\":\"lmtp\",\"target\":\"host\\\"x:24\",\"connections\":2,\
             \"message_size_bytes\":1048576,\"rcpts_per_message\":2,\"pipeline\":false,\
             \"elapsed_s\":2.000,\"messages_ok\":4,\"messages_failed\":2,\"recipients_ok\":8,\
             \"deliveries_per_s\":2.0,\"recipient_deliveries_per_s\":4.0,\"mib_per_s\":2.000,\
             \"latency_ms\":{\"p50\":1.000,\"p99\":2.000,\"p999\":2.000,\"max\":2.000},\
             \"errors\":{\"rcpt:550\":1,\"final:451\":2},\"connection_errors\":1}"
        );
    }

    #[test]
    fn text_block_names_each_measure() {
        let text = report().to_string();
        for line in [
            "deliveries/s            2.0",
            "recipient_deliveries/s  4.0",
            "MiB/s                   2.000",
            "latency_ms              p50=1.000 p99=2.000 p999=2.000 max=2.000",
            "errors                  rcpt:550=1 final:451=2",
            "connection_errors       1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }

    #[test]
    fn merge_adds_counts_and_latencies() {
        let mut total = Tally::default();
        total.merge(&report().tally);
        total.merge(&report().tally);
        assert_eq!(total.messages_ok, 8);
        assert_eq!(total.replies_failed[&(Stage::Final, 451)], 4);
        assert_eq!(total.latency_us.len(), 8);
    }
}
