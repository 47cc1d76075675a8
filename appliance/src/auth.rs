//! Authentication for every protocol: password checks and SCRAM key lookups against
//! the directory, with failed attempts slowed down per client IP and per account.
//!
//! After a failure, the next attempt from the same client IP (an IPv6 client's /64) or
//! for the same account waits `auth.failure_delay_ms`, doubling with each further
//! failure up to `auth.failure_delay_max_ms`; a success clears both. Failures older
//! than `auth.failure_window_secs` are forgotten, and at most
//! `auth.failure_entries_max` IPs and accounts are remembered. The state is shared by
//! every executor, since one client's connections land on all of them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use treehouse_core::address;
use treehouse_core::sasl::{self, ScramKeys};

use crate::config::Auth;
use crate::runtime::Executor;

/// Who failed: a client network or an account.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Client(IpAddr),
    Account(String),
}

/// Recent failures of one key.
#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

/// Failed authentications, remembered to slow the next attempt down.
pub struct Throttle {
    limits: Auth,
    failures: Mutex<HashMap<Key, Failures>>,
    failures_total: AtomicU64,
    delayed_total: AtomicU64,
}

impl Throttle {
    /// An empty throttle with the `[auth]` limits.
    pub fn new(limits: Auth) -> Throttle {
        Throttle {
            limits,
            failures: Mutex::new(HashMap::new()),
            failures_total: AtomicU64::new(0),
            delayed_total: AtomicU64::new(0),
        }
    }

    /// How long an attempt from `client` for `account` waits before it is checked.
    pub fn delay(&self, client: IpAddr, account: &str, now: Instant) -> Duration {
        let failures = self.lock();
        let count = [
            Key::Client(network(client)),
            Key::Account(account.to_string()),
        ]
        .iter()
        .filter_map(|key| failures.get(key))
        .filter(|f| now.duration_since(f.last) < self.window())
        .map(|f| f.count)
        .max()
        .unwrap_or(0);
        if count == 0 {
            return Duration::ZERO;
        }
        let doubled = self
            .limits
            .failure_delay_ms
            .saturating_mul(1u64 << (count - 1).min(32));
        Duration::from_millis(doubled.min(self.limits.failure_delay_max_ms))
    }

    /// Records an attempt's outcome: a success forgets the client's and the account's
    /// failures, a failure adds one to each. Returns the failures counted so far in all.
    pub fn record(&self, client: IpAddr, account: &str, success: bool, now: Instant) -> u64 {
        let keys = [
            Key::Client(network(client)),
            Key::Account(account.to_string()),
        ];
        let mut failures = self.lock();
        if success {
            for key in &keys {
                failures.remove(key);
            }
            return self.failures_total.load(Ordering::Relaxed);
        }
        let window = self.window();
        for key in keys {
            let entry = failures.entry(key).or_insert(Failures {
                count: 0,
                last: now,
            });
            if now.duration_since(entry.last) >= window {
                entry.count = 0;
            }
            entry.count = entry.count.saturating_add(1);
            entry.last = now;
        }
        self.forget_beyond_limit(&mut failures, now);
        self.failures_total.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Attempts that had to wait since start.
    pub fn delayed_total(&self) -> u64 {
        self.delayed_total.load(Ordering::Relaxed)
    }

    /// IPs and accounts remembered now.
    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.lock().len()
    }

    fn window(&self) -> Duration {
        Duration::from_secs(self.limits.failure_window_secs)
    }

    fn forget_beyond_limit(&self, failures: &mut HashMap<Key, Failures>, now: Instant) {
        if failures.len() <= self.limits.failure_entries_max {
            return;
        }
        let window = self.window();
        failures.retain(|_, f| now.duration_since(f.last) < window);
        while failures.len() > self.limits.failure_entries_max {
            let oldest = failures
                .iter()
                .min_by_key(|(_, f)| f.last)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(key) => failures.remove(&key),
                None => break,
            };
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Failures>> {
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The network a client is counted in: its IPv4 address, or its IPv6 /64.
fn network(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

/// The throttle every executor shares, made from the first executor's configuration.
fn throttle(ex: &Executor) -> &'static Throttle {
    static THROTTLE: OnceLock<Throttle> = OnceLock::new();
    THROTTLE.get_or_init(|| Throttle::new(ex.config.auth.clone()))
}

/// The account name a login counts against: lower-case, in the default domain if bare.
fn account_key(ex: &Executor, login: &str) -> String {
    let name = address::normalize(login);
    if name.contains('@') {
        name
    } else {
        format!("{name}@{}", ex.config.server.default_domain)
    }
}

/// Waits out the throttle's delay for `peer` and `login`.
async fn wait_turn(ex: &Executor, peer: IpAddr, login: &str) {
    let throttle = throttle(ex);
    let delay = throttle.delay(peer, &account_key(ex, login), Instant::now());
    if !delay.is_zero() {
        throttle.delayed_total.fetch_add(1, Ordering::Relaxed);
        glommio::timer::sleep(delay).await;
    }
}

/// The runtime's answer to a session's login request, whichever protocol asked.
pub enum Answer {
    /// For [`sasl::Request::ScramKeys`]: the canonical account and its keys; pass them
    /// to the session's `scram_keys`.
    Keys(Option<(String, ScramKeys)>),
    /// For a password or the end of a SCRAM exchange: the account logged in, or None;
    /// pass it to the session's `authenticated`.
    Account(Option<String>),
}

/// Answers a session's login request from client `peer`: checks a password, looks up
/// SCRAM keys, or records how a SCRAM exchange ended; every path goes through the
/// throttle.
pub async fn answer(ex: &Rc<Executor>, peer: IpAddr, request: sasl::Request) -> Answer {
    match request {
        sasl::Request::Password { login, password } => {
            Answer::Account(verify_password(ex, peer, &login, &password).await)
        }
        sasl::Request::ScramKeys { login } => Answer::Keys(scram_keys(ex, peer, &login).await),
        sasl::Request::ScramDone { login, account } => {
            record(ex, peer, &login, account.is_some());
            Answer::Account(account)
        }
    }
}

/// Checks `password` for `login` after the throttle's wait for this client and login,
/// off the executor thread, and records the outcome. Returns the canonical account.
async fn verify_password(
    ex: &Rc<Executor>,
    peer: IpAddr,
    login: &str,
    password: &str,
) -> Option<String> {
    wait_turn(ex, peer, login).await;
    let directory = ex.directory.borrow().clone();
    let (owned_login, password) = (login.to_string(), password.to_string());
    let account = glommio::executor()
        .spawn_blocking(move || directory.authenticate(&owned_login, &password))
        .await;
    record(ex, peer, login, account.is_some());
    account
}

/// The canonical account and SCRAM keys of `login`, after the throttle's wait. An
/// unknown account, or one without SCRAM keys, gets made-up keys that no proof
/// matches, the same for each login, so that a client cannot tell it from a wrong
/// password (RFC 5802 §9). Report the end of the exchange with [`record`].
async fn scram_keys(ex: &Rc<Executor>, peer: IpAddr, login: &str) -> Option<(String, ScramKeys)> {
    wait_turn(ex, peer, login).await;
    let found = ex.directory.borrow().scram_keys(login);
    Some(found.unwrap_or_else(|| (account_key(ex, login), decoy_keys(login))))
}

/// Keys for a login that has none: a salt that stays the same for the login while the
/// process runs, and stored keys no client proof can match.
fn decoy_keys(login: &str) -> ScramKeys {
    use ring::hmac;
    static SECRET: OnceLock<hmac::Key> = OnceLock::new();
    let secret = SECRET.get_or_init(|| {
        let mut bytes = [0u8; 32];
        rand::Rng::fill(&mut rand::thread_rng(), &mut bytes[..]);
        hmac::Key::new(hmac::HMAC_SHA256, &bytes)
    });
    let salt = hmac::sign(secret, address::normalize(login).as_bytes());
    let mut stored_key = [0u8; 32];
    let mut server_key = [0u8; 32];
    rand::Rng::fill(&mut rand::thread_rng(), &mut stored_key[..]);
    rand::Rng::fill(&mut rand::thread_rng(), &mut server_key[..]);
    ScramKeys {
        iterations: crate::directory::SCRAM_ITERATIONS,
        salt: salt.as_ref()[..16].to_vec(),
        stored_key,
        server_key,
    }
}

/// Records the outcome of an authentication that did not go through
/// [`verify_password`] (the end of a SCRAM exchange that [`scram_keys`] began).
fn record(ex: &Executor, peer: IpAddr, login: &str, success: bool) {
    let account = account_key(ex, login);
    let throttle = throttle(ex);
    let total = throttle.record(peer, &account, success, Instant::now());
    if !success {
        eprintln!(
            "treehouse: authentication failed for {account:?} from {peer} ({total} failures since start, {} attempts delayed)",
            throttle.delayed_total()
        );
    }
}

/// A fresh SCRAM server nonce: 24 random bytes in base64 (no commas).
pub fn server_nonce() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 24];
    rand::Rng::fill(&mut rand::thread_rng(), &mut bytes[..]);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Auth {
        Auth {
            failure_delay_ms: 100,
            failure_delay_max_ms: 1000,
            failure_window_secs: 60,
            failure_entries_max: 3,
            ..Auth::default()
        }
    }

    #[test]
    fn delays_double_per_failure_up_to_the_maximum_and_a_success_clears_them() {
        // Room for every client and account here: eviction has its own test.
        let throttle = Throttle::new(Auth {
            failure_entries_max: 100,
            ..limits()
        });
        let (ip, t0) = ("192.0.2.1".parse().unwrap(), Instant::now());
        assert_eq!(throttle.delay(ip, "a@x", t0), Duration::ZERO);
        let mut seen = Vec::new();
        for _ in 0..6 {
            throttle.record(ip, "a@x", false, t0);
            seen.push(throttle.delay(ip, "a@x", t0).as_millis());
        }
        assert_eq!(seen, [100, 200, 400, 800, 1000, 1000]);
        // Another account from the same client waits, as does the account elsewhere.
        assert_eq!(throttle.delay(ip, "b@x", t0).as_millis(), 1000);
        let other: IpAddr = "198.51.100.7".parse().unwrap();
        assert_eq!(throttle.delay(other, "a@x", t0).as_millis(), 1000);
        assert_eq!(throttle.delay(other, "b@x", t0), Duration::ZERO);
        assert_eq!(throttle.record(other, "c@x", false, t0), 7);
        throttle.record(ip, "a@x", true, t0);
        assert_eq!(throttle.delay(ip, "a@x", t0), Duration::ZERO);
        assert_eq!(throttle.delay(ip, "c@x", t0).as_millis(), 100);
    }

    #[test]
    fn failures_are_forgotten_after_the_window_and_beyond_the_entry_limit() {
        let throttle = Throttle::new(limits());
        let (ip, t0) = ("192.0.2.1".parse().unwrap(), Instant::now());
        throttle.record(ip, "a@x", false, t0);
        let later = t0 + Duration::from_secs(61);
        assert_eq!(throttle.delay(ip, "a@x", later), Duration::ZERO);
        throttle.record(ip, "a@x", false, later);
        assert_eq!(throttle.delay(ip, "a@x", later).as_millis(), 100);
        for (i, account) in ["b@x", "c@x", "d@x"].into_iter().enumerate() {
            let ip: IpAddr = format!("203.0.113.{i}").parse().unwrap();
            throttle.record(
                ip,
                account,
                false,
                later + Duration::from_secs(i as u64 + 1),
            );
        }
        assert!(throttle.remembered() <= 3);
    }

    #[test]
    fn an_ipv6_client_counts_as_its_slash_64() {
        let throttle = Throttle::new(limits());
        let t0 = Instant::now();
        throttle.record("2001:db8:1:2::1".parse().unwrap(), "a@x", false, t0);
        let neighbour: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert_eq!(throttle.delay(neighbour, "b@x", t0).as_millis(), 100);
        let elsewhere: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(throttle.delay(elsewhere, "b@x", t0), Duration::ZERO);
    }
}
