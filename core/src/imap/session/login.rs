//! LOGIN and AUTHENTICATE: SASL exchanges (PLAIN, LOGIN, SCRAM-SHA-256) over IMAP's
//! "+ base64" continuations (RFC 9051 §6.2.2, SASL-IR from RFC 4959).

use base64::Engine;

use super::*;
use crate::sasl::{self, Exchange, Failure, Mechanism};

/// An AUTHENTICATE exchange in progress.
pub(super) struct Login {
    exchange: Exchange,
    /// The login whose SCRAM keys the runtime gave; its outcome must be reported.
    scram_login: Option<String>,
}

impl Session {
    /// Whether `mechanism` may run now (PLAIN and LOGIN carry the password itself).
    pub(super) fn mechanism_allowed(&self, mechanism: Mechanism) -> bool {
        mechanism == Mechanism::ScramSha256 || self.login_allowed()
    }

    /// The AUTH= capabilities on offer now.
    pub(super) fn auth_capabilities(&self) -> String {
        Mechanism::ALL
            .into_iter()
            .filter(|m| self.mechanism_allowed(*m))
            .map(|m| format!(" AUTH={}", m.name()))
            .collect()
    }

    /// AUTHENTICATE `mechanism` with its optional initial response.
    pub(super) fn authenticate(
        &mut self,
        tag: String,
        mechanism: &AuthMechanism<'_>,
        initial_response: Option<&[u8]>,
    ) -> Option<Action> {
        let Some(mechanism) = Mechanism::parse(mechanism.as_ref()) else {
            self.line(&format!(
                "{tag} NO [CANNOT] Unsupported authentication mechanism"
            ));
            return None;
        };
        if self.account.is_some() {
            self.line(&format!("{tag} BAD Already authenticated"));
            return None;
        }
        if !self.mechanism_allowed(mechanism) {
            self.line(&format!("{tag} NO [PRIVACYREQUIRED] Use STARTTLS first"));
            return None;
        }
        self.sasl_exchanges += 1;
        let nonce = format!("{}{}", self.cfg.sasl_nonce, self.sasl_exchanges);
        let (exchange, step) = Exchange::start(mechanism, initial_response, &nonce);
        self.login = Some(Box::new(Login {
            exchange,
            scram_login: None,
        }));
        self.sasl_step(tag, step)
    }

    /// The client's answer to a continuation, or None when it cancelled with "*".
    pub(super) fn authenticate_data(&mut self, tag: String, data: Option<&[u8]>) -> Option<Action> {
        let step = match (data, self.login.as_mut()) {
            (Some(data), Some(login)) => login.exchange.respond(data),
            (None, _) => sasl::Step::Failed(Failure::Cancelled),
            (Some(_), None) => sasl::Step::Failed(Failure::Malformed),
        };
        self.sasl_step(tag, step)
    }

    /// The runtime's answer to [`sasl::Request::ScramKeys`]: the account and its keys,
    /// or None.
    pub fn scram_keys(
        &mut self,
        found: Option<(String, sasl::ScramKeys)>,
        store: Option<&mut dyn Mailstore>,
    ) -> Step {
        let Some(Pending::ScramKeys { tag, login: name }) = self.pending.take() else {
            return self.drive(store);
        };
        let step = match self.login.as_mut() {
            Some(login) => {
                if found.is_some() {
                    login.scram_login = Some(name);
                }
                login.exchange.keys(found)
            }
            None => sasl::Step::Failed(Failure::Malformed),
        };
        let action = self.sasl_step(tag, step);
        if action.is_some() {
            return Step {
                reply: mem::take(&mut self.out),
                action,
            };
        }
        self.drive(store)
    }

    fn sasl_step(&mut self, tag: String, step: sasl::Step) -> Option<Action> {
        match step {
            sasl::Step::Challenge(challenge) => {
                let encoded = base64::engine::general_purpose::STANDARD.encode(challenge);
                self.line(&format!("+ {encoded}"));
                self.mode = Mode::AuthData { tag };
                None
            }
            sasl::Step::VerifyPassword { login, password } => {
                self.login = None;
                self.pending = Some(Pending::Login { tag });
                Some(Action::Login(sasl::Request::Password { login, password }))
            }
            sasl::Step::NeedKeys { login } => {
                self.pending = Some(Pending::ScramKeys {
                    tag,
                    login: login.clone(),
                });
                Some(Action::Login(sasl::Request::ScramKeys { login }))
            }
            sasl::Step::Success { account } => {
                let login = self.login.take().and_then(|l| l.scram_login);
                self.pending = Some(Pending::Login { tag });
                Some(Action::Login(sasl::Request::ScramDone {
                    login: login.unwrap_or_else(|| account.clone()),
                    account: Some(account),
                }))
            }
            sasl::Step::Failed(why) => {
                let login = self.login.take().and_then(|l| l.scram_login);
                match (why, login) {
                    (Failure::Credentials, Some(login)) => {
                        self.pending = Some(Pending::Login { tag });
                        return Some(Action::Login(sasl::Request::ScramDone {
                            login,
                            account: None,
                        }));
                    }
                    (Failure::Credentials, None) => self.line(&format!(
                        "{tag} NO [AUTHENTICATIONFAILED] Invalid credentials"
                    )),
                    (Failure::Cancelled, _) => {
                        self.line(&format!("{tag} BAD Authentication cancelled"));
                    }
                    (Failure::Malformed, _) => {
                        self.line(&format!("{tag} BAD Malformed authentication exchange"));
                    }
                }
                None
            }
        }
    }
}
