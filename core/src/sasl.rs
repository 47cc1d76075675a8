//! SASL (RFC 4422) server mechanisms without I/O: PLAIN (RFC 4616), LOGIN
//! (draft-murchison-sasl-login) and SCRAM-SHA-256 (RFC 5802, RFC 7677), shared by the
//! IMAP, POP3 and SMTP sessions. Each protocol frames challenges its own way ("+ ",
//! "334 ") and base64-decodes client responses before passing them here.
//!
//! An [`Exchange`] is driven like a session: [`Exchange::start`] and
//! [`Exchange::respond`] return a [`Step`]. A step may ask the runtime to check a
//! password ([`Step::VerifyPassword`]) or to look up an account's SCRAM keys
//! ([`Step::NeedKeys`], answered with [`Exchange::keys`]).

use std::num::NonZeroU32;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::{digest, hmac, pbkdf2};

/// The longest client response (after base64 decoding) any mechanism accepts.
const RESPONSE_MAX_BYTES: usize = 16 * 1024;
/// The highest PBKDF2 iteration count a stored key may carry.
const ITERATIONS_MAX: u32 = 10_000_000;
/// The longest salt a stored key may carry.
const SALT_MAX_BYTES: usize = 256;
/// The length of SHA-256 digests and of the SCRAM-SHA-256 keys and proofs.
const KEY_BYTES: usize = 32;
/// The LOGIN prompt for the user name.
const LOGIN_USER_PROMPT: &[u8] = b"Username:";
/// The LOGIN prompt for the password.
const LOGIN_PASSWORD_PROMPT: &[u8] = b"Password:";

/// A SASL mechanism the server offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// RFC 4616: authzid NUL authcid NUL password, in one response.
    Plain,
    /// The LOGIN mechanism: user name, then password, each after a prompt.
    Login,
    /// RFC 7677 SCRAM-SHA-256, without channel binding.
    ScramSha256,
}

impl Mechanism {
    /// Every mechanism, in the order they are advertised.
    pub const ALL: [Mechanism; 3] = [Mechanism::ScramSha256, Mechanism::Plain, Mechanism::Login];

    /// The mechanism with this IANA name (case-insensitive), if offered.
    pub fn parse(name: &str) -> Option<Mechanism> {
        Mechanism::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
    }

    /// The IANA name, as advertised.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
        }
    }
}

/// The SCRAM-SHA-256 keys of one account (RFC 5802 §3), stored instead of anything
/// that could be replayed as a password.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramKeys {
    /// PBKDF2 iteration count.
    pub iterations: u32,
    /// PBKDF2 salt.
    pub salt: Vec<u8>,
    /// H(ClientKey).
    pub stored_key: [u8; 32],
    /// HMAC(SaltedPassword, "Server Key").
    pub server_key: [u8; 32],
}

/// Shows the iteration count only.
impl std::fmt::Debug for ScramKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramKeys")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ScramKeys {
    /// Derives the keys of `password` with `iterations` rounds of PBKDF2-HMAC-SHA-256.
    ///
    /// The password is used as its UTF-8 bytes: SASLprep (RFC 4013) is not applied, which
    /// is the identity for ASCII passwords. Clients that normalise non-ASCII passwords
    /// differently will not match.
    ///
    /// # Panics
    /// If `iterations` is 0 or above 10 000 000, or `salt` is empty or longer than
    /// 256 bytes: callers bound these, and [`ScramKeys::decode`] would refuse the result.
    pub fn derive(password: &str, salt: &[u8], iterations: u32) -> ScramKeys {
        assert!(
            (1..=ITERATIONS_MAX).contains(&iterations),
            "SCRAM iteration count {iterations} out of range"
        );
        assert!(
            (1..=SALT_MAX_BYTES).contains(&salt.len()),
            "SCRAM salt of {} bytes out of range",
            salt.len()
        );
        let Some(rounds) = NonZeroU32::new(iterations) else {
            unreachable!("iteration count checked above");
        };
        let mut salted_password = [0u8; KEY_BYTES];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            rounds,
            salt,
            password.as_bytes(),
            &mut salted_password,
        );
        let salted_key = hmac::Key::new(hmac::HMAC_SHA256, &salted_password);
        let client_key = hmac::sign(&salted_key, b"Client Key");
        ScramKeys {
            iterations,
            salt: salt.to_vec(),
            stored_key: sha256(client_key.as_ref()),
            server_key: to_key(hmac::sign(&salted_key, b"Server Key").as_ref()),
        }
    }

    /// The stored form: `ITERATIONS,SALT,STOREDKEY,SERVERKEY`, the last three in base64.
    pub fn encode(&self) -> String {
        format!(
            "{},{},{},{}",
            self.iterations,
            BASE64.encode(&self.salt),
            BASE64.encode(self.stored_key),
            BASE64.encode(self.server_key)
        )
    }

    /// Parses the form [`ScramKeys::encode`] writes (exactly, without surrounding
    /// whitespace); None for bad base64, key lengths, salts or iteration counts.
    pub fn decode(text: &str) -> Option<ScramKeys> {
        let mut fields = text.split(',');
        let (Some(iterations), Some(salt), Some(stored_key), Some(server_key), None) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            return None;
        };
        if iterations.is_empty() || !iterations.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let iterations: u32 = iterations.parse().ok()?;
        if !(1..=ITERATIONS_MAX).contains(&iterations) {
            return None;
        }
        if salt.len() > SALT_MAX_BYTES * 2 {
            return None;
        }
        let salt = BASE64.decode(salt).ok()?;
        if !(1..=SALT_MAX_BYTES).contains(&salt.len()) {
            return None;
        }
        Some(ScramKeys {
            iterations,
            salt,
            stored_key: decode_key(stored_key)?,
            server_key: decode_key(server_key)?,
        })
    }
}

/// Why an exchange ended without authenticating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The client's message broke the mechanism's syntax (protocols answer BAD / 501).
    Malformed,
    /// The client cancelled with "*".
    Cancelled,
    /// Wrong credentials, an unknown account or an authorization identity that is not
    /// the account itself.
    Credentials,
}

/// What the protocol session does next.
#[derive(Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this challenge (the protocol base64-encodes it) and pass the client's
    /// decoded answer to [`Exchange::respond`].
    Challenge(Vec<u8>),
    /// Check this password; the exchange is over and the runtime's answer decides.
    VerifyPassword {
        /// The authentication identity as the client sent it.
        login: String,
        /// The password as the client sent it.
        password: String,
    },
    /// Look up the SCRAM keys of `login` and pass them to [`Exchange::keys`].
    NeedKeys {
        /// The authentication identity as the client sent it.
        login: String,
    },
    /// Authenticated as `account` (the name the runtime gave with the keys).
    Success {
        /// The account.
        account: String,
    },
    /// The exchange is over without authenticating.
    Failed(Failure),
}

/// Shows the step, never a password.
impl std::fmt::Debug for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Challenge(c) => f.debug_tuple("Challenge").field(&c.len()).finish(),
            Step::VerifyPassword { login, .. } => f
                .debug_struct("VerifyPassword")
                .field("login", login)
                .finish_non_exhaustive(),
            Step::NeedKeys { login } => f.debug_struct("NeedKeys").field("login", login).finish(),
            Step::Success { account } => {
                f.debug_struct("Success").field("account", account).finish()
            }
            Step::Failed(why) => f.debug_tuple("Failed").field(why).finish(),
        }
    }
}

/// What a protocol session asks of the runtime to log a client in; the same for IMAP,
/// POP3 and SMTP. The runtime answers [`Request::Password`] and [`Request::ScramDone`]
/// with the account (or None) through the session's `authenticated`, and
/// [`Request::ScramKeys`] with the keys through its `scram_keys`.
#[derive(Clone, PartialEq, Eq)]
pub enum Request {
    /// Check this password.
    Password {
        /// The login name (authentication identity) as the client sent it.
        login: String,
        /// The password as the client sent it.
        password: String,
    },
    /// Look up the SCRAM-SHA-256 keys of `login`.
    ScramKeys {
        /// The login name as the client sent it.
        login: String,
    },
    /// A SCRAM exchange for `login` ended: record its outcome; `account` when the
    /// proof was right.
    ScramDone {
        /// The login name as the client sent it.
        login: String,
        /// The authenticated account, or None when the proof was wrong.
        account: Option<String>,
    },
}

/// Shows the request, never the password.
impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Request::Password { login, .. } => f
                .debug_struct("Password")
                .field("login", login)
                .finish_non_exhaustive(),
            Request::ScramKeys { login } => {
                f.debug_struct("ScramKeys").field("login", login).finish()
            }
            Request::ScramDone { login, account } => f
                .debug_struct("ScramDone")
                .field("login", login)
                .field("account", account)
                .finish(),
        }
    }
}

/// One server-side authentication exchange.
#[derive(Debug)]
pub struct Exchange {
    mechanism: Mechanism,
    server_nonce: String,
    state: State,
}

/// Where an exchange stands: what it expects next.
#[derive(Debug)]
enum State {
    /// PLAIN: waiting for `authzid NUL authcid NUL passwd`.
    Plain,
    /// LOGIN: waiting for the user name.
    LoginUser,
    /// LOGIN: waiting for the password of `login`.
    LoginPassword { login: String },
    /// SCRAM: waiting for the client-first message.
    ScramClientFirst,
    /// SCRAM: waiting for [`Exchange::keys`].
    ScramNeedKeys(ClientFirst),
    /// SCRAM: server-first sent, waiting for the client-final message.
    ScramClientFinal(ServerFirst),
    /// SCRAM: server-final sent, waiting for the client's empty response.
    ScramServerFinal { account: String },
    /// The exchange is over; every further call fails.
    Done,
}

/// What the SCRAM client-first message said.
#[derive(Debug)]
struct ClientFirst {
    /// The GS2 header exactly as sent (`n,,`, `y,,` or `n,a=NAME,`).
    gs2_header: String,
    /// client-first-message-bare exactly as sent.
    bare: String,
    /// The unescaped user name.
    login: String,
    /// The client's nonce.
    client_nonce: String,
}

/// The SCRAM state once server-first is sent.
#[derive(Debug)]
struct ServerFirst {
    client_first: ClientFirst,
    /// server-first-message exactly as sent.
    message: String,
    /// Client nonce followed by server nonce.
    nonce: String,
    account: String,
    keys: ScramKeys,
}

/// The next state and the step to report, or the failure that ends the exchange.
type Transition = Result<(State, Step), Failure>;

impl Exchange {
    /// Starts `mechanism`, with the client's initial response if it sent one (SASL-IR,
    /// `AUTH PLAIN <ir>`; an empty initial response is `Some(&[])`). `server_nonce`
    /// is fresh random printable ASCII without commas, from the runtime.
    pub fn start(
        mechanism: Mechanism,
        initial_response: Option<&[u8]>,
        server_nonce: &str,
    ) -> (Exchange, Step) {
        assert!(
            !server_nonce.is_empty() && server_nonce.bytes().all(is_nonce_byte),
            "server nonce must be printable ASCII without commas"
        );
        let state = match mechanism {
            Mechanism::Plain => State::Plain,
            Mechanism::Login => State::LoginUser,
            Mechanism::ScramSha256 => State::ScramClientFirst,
        };
        let mut exchange = Exchange {
            mechanism,
            server_nonce: server_nonce.to_owned(),
            state,
        };
        let step = match (initial_response, mechanism) {
            (Some(response), _) => exchange.respond(response),
            (None, Mechanism::Login) => Step::Challenge(LOGIN_USER_PROMPT.to_vec()),
            (None, Mechanism::Plain | Mechanism::ScramSha256) => Step::Challenge(Vec::new()),
        };
        (exchange, step)
    }

    /// The mechanism being run.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// Takes the client's (decoded) answer to the last challenge.
    pub fn respond(&mut self, response: &[u8]) -> Step {
        let state = std::mem::replace(&mut self.state, State::Done);
        if response.len() > RESPONSE_MAX_BYTES {
            return Step::Failed(Failure::Malformed);
        }
        let transition = match state {
            State::Plain => plain(response).map(|step| (State::Done, step)),
            State::LoginUser => login_field(response).map(|login| {
                (
                    State::LoginPassword { login },
                    Step::Challenge(LOGIN_PASSWORD_PROMPT.to_vec()),
                )
            }),
            State::LoginPassword { login } => login_field(response)
                .map(|password| (State::Done, Step::VerifyPassword { login, password })),
            State::ScramClientFirst => parse_client_first(response).map(|first| {
                let login = first.login.clone();
                (State::ScramNeedKeys(first), Step::NeedKeys { login })
            }),
            State::ScramClientFinal(server_first) => client_final(server_first, response),
            State::ScramServerFinal { account } if response.is_empty() => {
                Ok((State::Done, Step::Success { account }))
            }
            State::ScramServerFinal { .. } | State::ScramNeedKeys(_) | State::Done => {
                Err(Failure::Malformed)
            }
        };
        self.apply(transition)
    }

    /// The runtime's answer to [`Step::NeedKeys`]: the account and its keys, or None
    /// when the login names no account or the account has no SCRAM keys.
    pub fn keys(&mut self, found: Option<(String, ScramKeys)>) -> Step {
        let state = std::mem::replace(&mut self.state, State::Done);
        let transition = match (state, found) {
            (State::ScramNeedKeys(client_first), Some((account, keys))) => {
                let nonce = format!("{}{}", client_first.client_nonce, self.server_nonce);
                let message = format!(
                    "r={nonce},s={},i={}",
                    BASE64.encode(&keys.salt),
                    keys.iterations
                );
                let challenge = Step::Challenge(message.clone().into_bytes());
                let server_first = ServerFirst {
                    client_first,
                    message,
                    nonce,
                    account,
                    keys,
                };
                Ok((State::ScramClientFinal(server_first), challenge))
            }
            (State::ScramNeedKeys(_), None) => Err(Failure::Credentials),
            _ => Err(Failure::Malformed),
        };
        self.apply(transition)
    }

    /// Moves to the transition's state, or ends the exchange on failure.
    fn apply(&mut self, transition: Transition) -> Step {
        match transition {
            Ok((state, step)) => {
                self.state = state;
                step
            }
            Err(failure) => {
                self.state = State::Done;
                Step::Failed(failure)
            }
        }
    }
}

/// Parses a PLAIN response: `authzid NUL authcid NUL passwd`.
fn plain(response: &[u8]) -> Result<Step, Failure> {
    let text = std::str::from_utf8(response).map_err(|_| Failure::Malformed)?;
    let mut parts = text.split('\0');
    let (Some(authzid), Some(login), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Failure::Malformed);
    };
    if login.is_empty() || password.is_empty() {
        return Err(Failure::Malformed);
    }
    if !authzid.is_empty() && authzid != login {
        return Err(Failure::Credentials);
    }
    Ok(Step::VerifyPassword {
        login: login.to_owned(),
        password: password.to_owned(),
    })
}

/// Parses a LOGIN response (user name or password): non-empty UTF-8 without NUL.
fn login_field(response: &[u8]) -> Result<String, Failure> {
    match std::str::from_utf8(response) {
        Ok(text) if !text.is_empty() && !text.contains('\0') => Ok(text.to_owned()),
        _ => Err(Failure::Malformed),
    }
}

/// Parses the SCRAM client-first message (RFC 5802 §7) without channel binding.
fn parse_client_first(message: &[u8]) -> Result<ClientFirst, Failure> {
    let text = scram_text(message)?;
    let (flag, rest) = text.split_once(',').ok_or(Failure::Malformed)?;
    // "p=" asks for channel binding, which only the -PLUS variants offer.
    if flag != "n" && flag != "y" {
        return Err(Failure::Malformed);
    }
    let (authzid, bare) = rest.split_once(',').ok_or(Failure::Malformed)?;
    let authzid = match authzid {
        "" => None,
        field => Some(sasl_name(
            field.strip_prefix("a=").ok_or(Failure::Malformed)?,
        )?),
    };
    let gs2_header = &text[..text.len() - bare.len()];
    let mut attributes = bare.split(',');
    // A reserved mandatory extension ("m=") fails here too: the user name must come first.
    let login = attributes
        .next()
        .and_then(|field| field.strip_prefix("n="))
        .ok_or(Failure::Malformed)?;
    let login = sasl_name(login)?;
    let client_nonce = attributes
        .next()
        .and_then(|field| field.strip_prefix("r="))
        .ok_or(Failure::Malformed)?;
    if client_nonce.is_empty() || !client_nonce.bytes().all(is_nonce_byte) {
        return Err(Failure::Malformed);
    }
    check_extensions(attributes)?;
    if authzid.is_some_and(|authzid| authzid != login) {
        return Err(Failure::Credentials);
    }
    Ok(ClientFirst {
        gs2_header: gs2_header.to_owned(),
        bare: bare.to_owned(),
        login,
        client_nonce: client_nonce.to_owned(),
    })
}

/// Checks the SCRAM client-final message (RFC 5802 §7) and answers with server-final.
fn client_final(server_first: ServerFirst, message: &[u8]) -> Transition {
    let text = scram_text(message)?;
    let (without_proof, proof) = text.rsplit_once(',').ok_or(Failure::Malformed)?;
    let proof = proof.strip_prefix("p=").ok_or(Failure::Malformed)?;
    let proof = decode_key(proof).ok_or(Failure::Malformed)?;
    let mut attributes = without_proof.split(',');
    let binding = attributes
        .next()
        .and_then(|field| field.strip_prefix("c="))
        .and_then(|value| BASE64.decode(value).ok())
        .ok_or(Failure::Malformed)?;
    let nonce = attributes
        .next()
        .and_then(|field| field.strip_prefix("r="))
        .ok_or(Failure::Malformed)?;
    check_extensions(attributes)?;
    let ServerFirst {
        client_first,
        message: server_first_message,
        nonce: expected_nonce,
        account,
        keys,
    } = server_first;
    // Without channel binding, c= carries the GS2 header the client sent first.
    if binding != client_first.gs2_header.as_bytes() || nonce != expected_nonce {
        return Err(Failure::Credentials);
    }
    let auth_message = format!(
        "{},{},{}",
        client_first.bare, server_first_message, without_proof
    );
    let stored_key = hmac::Key::new(hmac::HMAC_SHA256, &keys.stored_key);
    let client_signature = hmac::sign(&stored_key, auth_message.as_bytes());
    let mut client_key = proof;
    for (byte, signature) in client_key.iter_mut().zip(client_signature.as_ref()) {
        *byte ^= signature;
    }
    if !keys_equal(&sha256(&client_key), &keys.stored_key) {
        return Err(Failure::Credentials);
    }
    let server_key = hmac::Key::new(hmac::HMAC_SHA256, &keys.server_key);
    let server_signature = hmac::sign(&server_key, auth_message.as_bytes());
    let server_final = format!("v={}", BASE64.encode(server_signature.as_ref()));
    Ok((
        State::ScramServerFinal { account },
        Step::Challenge(server_final.into_bytes()),
    ))
}

/// A SCRAM message as text: UTF-8 without NUL.
fn scram_text(message: &[u8]) -> Result<&str, Failure> {
    match std::str::from_utf8(message) {
        Ok(text) if !text.contains('\0') => Ok(text),
        _ => Err(Failure::Malformed),
    }
}

/// Unescapes a SCRAM saslname (`=2C` is ",", `=3D` is "="); it may not be empty.
fn sasl_name(escaped: &str) -> Result<String, Failure> {
    if escaped.is_empty() {
        return Err(Failure::Malformed);
    }
    let mut name = String::with_capacity(escaped.len());
    let mut rest = escaped;
    while let Some(at) = rest.find('=') {
        name.push_str(&rest[..at]);
        let escape = rest.get(at..at + 3).ok_or(Failure::Malformed)?;
        name.push(match escape {
            "=2C" => ',',
            "=3D" => '=',
            _ => return Err(Failure::Malformed),
        });
        rest = &rest[at + 3..];
    }
    name.push_str(rest);
    Ok(name)
}

/// Checks optional SCRAM extensions (`ALPHA "=" 1*value-char`), which are ignored.
fn check_extensions<'a>(mut attributes: impl Iterator<Item = &'a str>) -> Result<(), Failure> {
    let well_formed = attributes.all(|attribute| {
        let bytes = attribute.as_bytes();
        bytes.len() > 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b'='
    });
    if well_formed {
        Ok(())
    } else {
        Err(Failure::Malformed)
    }
}

/// Whether `byte` may appear in a SCRAM nonce: printable ASCII except ",".
fn is_nonce_byte(byte: u8) -> bool {
    (0x21..=0x7e).contains(&byte) && byte != b','
}

/// Base64 of exactly [`KEY_BYTES`] bytes.
fn decode_key(text: &str) -> Option<[u8; KEY_BYTES]> {
    if text.len() > KEY_BYTES * 2 {
        return None;
    }
    BASE64.decode(text).ok()?.try_into().ok()
}

/// SHA-256 of `bytes`.
fn sha256(bytes: &[u8]) -> [u8; KEY_BYTES] {
    to_key(digest::digest(&digest::SHA256, bytes).as_ref())
}

/// Copies a SHA-256-sized output into a key.
fn to_key(output: &[u8]) -> [u8; KEY_BYTES] {
    let mut key = [0u8; KEY_BYTES];
    key.copy_from_slice(output);
    key
}

/// Compares two keys in time independent of where they differ.
fn keys_equal(a: &[u8; KEY_BYTES], b: &[u8; KEY_BYTES]) -> bool {
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

#[cfg(test)]
pub(crate) mod tests;
