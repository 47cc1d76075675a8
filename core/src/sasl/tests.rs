use super::*;
use proptest::prelude::*;

// RFC 7677 §3.
const RFC_USER: &str = "user";
const RFC_PASSWORD: &str = "pencil";
const RFC_SALT_B64: &str = "W22ZaJ0SNY7soEsUEjb6gQ==";
const RFC_ITERATIONS: u32 = 4096;
const RFC_CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
const RFC_SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
const RFC_SERVER_FIRST: &str = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const RFC_CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
const RFC_SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
const RFC_NONCE: &str = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
const RFC_PROOF: &str = "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";

/// The RFC 7677 keys, derived once.
fn rfc_keys() -> ScramKeys {
    static KEYS: std::sync::OnceLock<ScramKeys> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        let salt = BASE64.decode(RFC_SALT_B64).expect("test salt");
        ScramKeys::derive(RFC_PASSWORD, &salt, RFC_ITERATIONS)
    })
    .clone()
}

fn challenge(text: &str) -> Step {
    Step::Challenge(text.as_bytes().to_vec())
}

/// An RFC 7677 exchange that has sent `client_first` and received the server-first.
fn rfc_after_server_first(client_first: &str) -> Exchange {
    let (mut exchange, step) = Exchange::start(
        Mechanism::ScramSha256,
        Some(client_first.as_bytes()),
        RFC_SERVER_NONCE,
    );
    assert_eq!(
        step,
        Step::NeedKeys {
            login: RFC_USER.into()
        }
    );
    let step = exchange.keys(Some(("user-account".into(), rfc_keys())));
    assert!(matches!(step, Step::Challenge(_)), "{step:?}");
    exchange
}

#[test]
fn rfc7677_example_exchange() {
    let (mut exchange, step) = Exchange::start(Mechanism::ScramSha256, None, RFC_SERVER_NONCE);
    assert_eq!(exchange.mechanism(), Mechanism::ScramSha256);
    assert_eq!(step, challenge(""));
    assert_eq!(
        exchange.respond(RFC_CLIENT_FIRST.as_bytes()),
        Step::NeedKeys {
            login: "user".into()
        }
    );
    assert_eq!(
        exchange.keys(Some(("user-account".into(), rfc_keys()))),
        challenge(RFC_SERVER_FIRST)
    );
    assert_eq!(
        exchange.respond(RFC_CLIENT_FINAL.as_bytes()),
        challenge(RFC_SERVER_FINAL)
    );
    assert_eq!(
        exchange.respond(b""),
        Step::Success {
            account: "user-account".into()
        }
    );
    assert_eq!(exchange.respond(b""), Step::Failed(Failure::Malformed));
}

#[test]
fn rfc7677_example_with_initial_response_and_gs2_variants() {
    // "y,," (client could bind but thinks we cannot) and "n,a=user," (authzid equal to
    // the user) both succeed when c= carries the same header.
    for gs2 in ["y,,", "n,a=user,"] {
        let client_first = format!("{gs2}n=user,r=rOprNGfwEbeRWgbNEkqO");
        let mut exchange = rfc_after_server_first(&client_first);
        let final_without_proof = format!("c={},r={RFC_NONCE}", BASE64.encode(gs2));
        let proof = client_proof(
            RFC_PASSWORD,
            &BASE64.decode(RFC_SALT_B64).expect("test salt"),
            RFC_ITERATIONS,
            &format!("n=user,r=rOprNGfwEbeRWgbNEkqO,{RFC_SERVER_FIRST},{final_without_proof}"),
        );
        let step = exchange.respond(format!("{final_without_proof},p={proof}").as_bytes());
        assert!(
            matches!(step, Step::Challenge(ref v) if v.starts_with(b"v=")),
            "{gs2}: {step:?}"
        );
        assert_eq!(
            exchange.respond(b""),
            Step::Success {
                account: "user-account".into()
            }
        );
    }
}

#[test]
fn scram_wrong_proof_is_credentials() {
    let mut exchange = rfc_after_server_first(RFC_CLIENT_FIRST);
    let mut proof = BASE64.decode(RFC_PROOF).expect("test proof");
    proof[0] ^= 1;
    let message = format!("c=biws,r={RFC_NONCE},p={}", BASE64.encode(&proof));
    assert_eq!(
        exchange.respond(message.as_bytes()),
        Step::Failed(Failure::Credentials)
    );
    assert_eq!(exchange.respond(b""), Step::Failed(Failure::Malformed));
}

#[test]
fn scram_wrong_password_keys_is_credentials() {
    let (mut exchange, _) = Exchange::start(
        Mechanism::ScramSha256,
        Some(RFC_CLIENT_FIRST.as_bytes()),
        RFC_SERVER_NONCE,
    );
    let salt = BASE64.decode(RFC_SALT_B64).expect("test salt");
    let other = ScramKeys::derive("pencil2", &salt, RFC_ITERATIONS);
    assert_eq!(
        exchange.keys(Some(("user".into(), other))),
        challenge(RFC_SERVER_FIRST)
    );
    assert_eq!(
        exchange.respond(RFC_CLIENT_FINAL.as_bytes()),
        Step::Failed(Failure::Credentials)
    );
}

#[test]
fn scram_wrong_nonce_is_credentials() {
    let mut exchange = rfc_after_server_first(RFC_CLIENT_FIRST);
    let message = RFC_CLIENT_FINAL.replace("hNlF$k0", "hNlF$k1");
    assert_eq!(
        exchange.respond(message.as_bytes()),
        Step::Failed(Failure::Credentials)
    );
    // The client nonce alone is not the combined nonce either.
    let mut exchange = rfc_after_server_first(RFC_CLIENT_FIRST);
    let message = format!("c=biws,r=rOprNGfwEbeRWgbNEkqO,p={RFC_PROOF}");
    assert_eq!(
        exchange.respond(message.as_bytes()),
        Step::Failed(Failure::Credentials)
    );
}

#[test]
fn scram_channel_binding_mismatch() {
    // The client said "n,," but c= claims "y,,".
    let mut exchange = rfc_after_server_first(RFC_CLIENT_FIRST);
    let message = RFC_CLIENT_FINAL.replace("c=biws", "c=eSws");
    assert_eq!(
        exchange.respond(message.as_bytes()),
        Step::Failed(Failure::Credentials)
    );
    // c= that is not base64 at all.
    let mut exchange = rfc_after_server_first(RFC_CLIENT_FIRST);
    let message = RFC_CLIENT_FINAL.replace("c=biws", "c=b!ws");
    assert_eq!(
        exchange.respond(message.as_bytes()),
        Step::Failed(Failure::Malformed)
    );
}

#[test]
fn scram_authzid_mismatch_is_credentials() {
    let (_, step) = Exchange::start(
        Mechanism::ScramSha256,
        Some(b"n,a=admin,n=user,r=abc"),
        RFC_SERVER_NONCE,
    );
    assert_eq!(step, Step::Failed(Failure::Credentials));
}

#[test]
fn scram_client_first_syntax() {
    let cases: &[(&[u8], Step)] = &[
        (
            b"n,,n=a=2Cb=3Dc,r=xyz",
            Step::NeedKeys {
                login: "a,b=c".into(),
            },
        ),
        (
            b"n,a=a=2Cb,n=a=2Cb,r=xyz",
            Step::NeedKeys {
                login: "a,b".into(),
            },
        ),
        (
            b"n,,n=user,r=xyz,x=ignored",
            Step::NeedKeys {
                login: "user".into(),
            },
        ),
        (
            "n,,n=j\u{f6}rg,r=xyz".as_bytes(),
            Step::NeedKeys {
                login: "j\u{f6}rg".into(),
            },
        ),
        // Channel binding is only offered by the -PLUS mechanisms.
        (
            b"p=tls-unique,,n=user,r=xyz",
            Step::Failed(Failure::Malformed),
        ),
        (b"p,,n=user,r=xyz", Step::Failed(Failure::Malformed)),
        // Reserved mandatory extension.
        (b"n,,m=ext,n=user,r=xyz", Step::Failed(Failure::Malformed)),
        // Bad or missing escapes and fields.
        (b"n,,n=a=2cb,r=xyz", Step::Failed(Failure::Malformed)),
        (b"n,,n=a=41b,r=xyz", Step::Failed(Failure::Malformed)),
        (b"n,,n=ab=,r=xyz", Step::Failed(Failure::Malformed)),
        (b"n,,n=ab=2,r=xyz", Step::Failed(Failure::Malformed)),
        (b"n,,n=,r=xyz", Step::Failed(Failure::Malformed)),
        (b"n,,n=user,r=", Step::Failed(Failure::Malformed)),
        (b"n,,n=user", Step::Failed(Failure::Malformed)),
        (b"n,,r=xyz,n=user", Step::Failed(Failure::Malformed)),
        (b"n,,n=user,r=x\x7fz", Step::Failed(Failure::Malformed)),
        (b"n,,n=user,r=xyz,", Step::Failed(Failure::Malformed)),
        (b"n,,n=user,r=xyz,1=a", Step::Failed(Failure::Malformed)),
        (b"n,,n=us\0er,r=xyz", Step::Failed(Failure::Malformed)),
        (b"n,,n=us\xffer,r=xyz", Step::Failed(Failure::Malformed)),
        (b"n,user,n=user,r=xyz", Step::Failed(Failure::Malformed)),
        (b"n=user,r=xyz", Step::Failed(Failure::Malformed)),
        (b"", Step::Failed(Failure::Malformed)),
    ];
    for (message, expected) in cases {
        let (_, step) = Exchange::start(Mechanism::ScramSha256, Some(message), "snonce");
        assert_eq!(&step, expected, "{:?}", String::from_utf8_lossy(message));
    }
}

#[test]
fn scram_client_final_syntax() {
    let cases = [
        // Proof not last, missing, short or not base64.
        format!("c=biws,p={RFC_PROOF},r={RFC_NONCE}"),
        format!("c=biws,r={RFC_NONCE}"),
        format!("c=biws,r={RFC_NONCE},p=AAAA"),
        format!("c=biws,r={RFC_NONCE},p=!!!!"),
        // Missing channel binding or nonce.
        format!("r={RFC_NONCE},p={RFC_PROOF}"),
        format!("c=biws,p={RFC_PROOF}"),
        format!("c=biws,r={RFC_NONCE},=x,p={RFC_PROOF}"),
    ];
    for message in cases {
        let mut exchange = rfc_after_server_first(RFC_CLIENT_FIRST);
        assert_eq!(
            exchange.respond(message.as_bytes()),
            Step::Failed(Failure::Malformed),
            "{message}"
        );
    }
}

#[test]
fn scram_unknown_account_is_credentials() {
    let (mut exchange, _) = Exchange::start(
        Mechanism::ScramSha256,
        Some(RFC_CLIENT_FIRST.as_bytes()),
        RFC_SERVER_NONCE,
    );
    assert_eq!(exchange.keys(None), Step::Failed(Failure::Credentials));
    assert_eq!(
        exchange.respond(RFC_CLIENT_FINAL.as_bytes()),
        Step::Failed(Failure::Malformed)
    );
}

#[test]
fn scram_non_empty_answer_to_server_final_is_malformed() {
    let mut exchange = rfc_after_server_first(RFC_CLIENT_FIRST);
    assert_eq!(
        exchange.respond(RFC_CLIENT_FINAL.as_bytes()),
        challenge(RFC_SERVER_FINAL)
    );
    assert_eq!(exchange.respond(b"x"), Step::Failed(Failure::Malformed));
    assert_eq!(exchange.respond(b""), Step::Failed(Failure::Malformed));
}

#[test]
fn calls_in_the_wrong_state_are_malformed() {
    // keys() before any client-first.
    let (mut exchange, _) = Exchange::start(Mechanism::ScramSha256, None, "snonce");
    assert_eq!(
        exchange.keys(Some(("user".into(), rfc_keys()))),
        Step::Failed(Failure::Malformed)
    );
    assert_eq!(
        exchange.respond(RFC_CLIENT_FIRST.as_bytes()),
        Step::Failed(Failure::Malformed)
    );
    // respond() while the keys are awaited.
    let (mut exchange, _) = Exchange::start(
        Mechanism::ScramSha256,
        Some(RFC_CLIENT_FIRST.as_bytes()),
        "snonce",
    );
    assert_eq!(exchange.respond(b""), Step::Failed(Failure::Malformed));
    assert_eq!(exchange.keys(None), Step::Failed(Failure::Malformed));
    // keys() twice.
    let mut exchange = rfc_after_server_first(RFC_CLIENT_FIRST);
    assert_eq!(exchange.keys(None), Step::Failed(Failure::Malformed));
    // keys() for PLAIN, and respond() after PLAIN ended.
    let (mut exchange, _) = Exchange::start(Mechanism::Plain, Some(b"\0u\0p"), "snonce");
    assert_eq!(
        exchange.respond(b"\0u\0p"),
        Step::Failed(Failure::Malformed)
    );
    assert_eq!(exchange.keys(None), Step::Failed(Failure::Malformed));
}

#[test]
fn plain_paths() {
    let verify = |login: &str, password: &str| Step::VerifyPassword {
        login: login.into(),
        password: password.into(),
    };
    let (mut exchange, step) = Exchange::start(Mechanism::Plain, None, "snonce");
    assert_eq!(step, challenge(""));
    assert_eq!(
        exchange.respond(b"\0alice\0s3cret"),
        verify("alice", "s3cret")
    );

    let cases: &[(&[u8], Step)] = &[
        (b"\0alice\0s3cret", verify("alice", "s3cret")),
        (b"alice\0alice\0pass word", verify("alice", "pass word")),
        (
            "\0j\u{f6}rg\0p\u{e4}ss".as_bytes(),
            verify("j\u{f6}rg", "p\u{e4}ss"),
        ),
        (b"admin\0alice\0s3cret", Step::Failed(Failure::Credentials)),
        (b"", Step::Failed(Failure::Malformed)),
        (b"alice\0s3cret", Step::Failed(Failure::Malformed)),
        (b"\0alice\0s3cret\0", Step::Failed(Failure::Malformed)),
        (b"\0\0s3cret", Step::Failed(Failure::Malformed)),
        (b"\0alice\0", Step::Failed(Failure::Malformed)),
        (b"\0alice\0s3\xffcret", Step::Failed(Failure::Malformed)),
    ];
    for (response, expected) in cases {
        let (mut exchange, step) = Exchange::start(Mechanism::Plain, Some(response), "snonce");
        assert_eq!(&step, expected, "{:?}", String::from_utf8_lossy(response));
        assert_eq!(exchange.respond(response), Step::Failed(Failure::Malformed));
    }
}

#[test]
fn responses_are_bounded() {
    let mut largest = b"\0alice\0".to_vec();
    largest.resize(RESPONSE_MAX_BYTES, b'p');
    let (_, step) = Exchange::start(Mechanism::Plain, Some(&largest), "snonce");
    assert!(matches!(step, Step::VerifyPassword { .. }), "{step:?}");
    largest.push(b'p');
    let (_, step) = Exchange::start(Mechanism::Plain, Some(&largest), "snonce");
    assert_eq!(step, Step::Failed(Failure::Malformed));

    let (mut exchange, _) = Exchange::start(Mechanism::Login, Some(b"alice"), "snonce");
    assert_eq!(exchange.respond(&largest), Step::Failed(Failure::Malformed));
}

#[test]
fn login_paths() {
    let verify = Step::VerifyPassword {
        login: "alice".into(),
        password: "s3cret".into(),
    };
    let (mut exchange, step) = Exchange::start(Mechanism::Login, None, "snonce");
    assert_eq!(step, challenge("Username:"));
    assert_eq!(exchange.respond(b"alice"), challenge("Password:"));
    assert_eq!(exchange.respond(b"s3cret"), verify);
    assert_eq!(
        exchange.respond(b"s3cret"),
        Step::Failed(Failure::Malformed)
    );

    let (mut exchange, step) = Exchange::start(Mechanism::Login, Some(b"alice"), "snonce");
    assert_eq!(step, challenge("Password:"));
    assert_eq!(exchange.respond(b"s3cret"), verify);

    let (_, step) = Exchange::start(Mechanism::Login, Some(b""), "snonce");
    assert_eq!(step, Step::Failed(Failure::Malformed));
    let (mut exchange, _) = Exchange::start(Mechanism::Login, Some(b"alice"), "snonce");
    assert_eq!(exchange.respond(b""), Step::Failed(Failure::Malformed));
    let (mut exchange, _) = Exchange::start(Mechanism::Login, Some(b"alice"), "snonce");
    assert_eq!(
        exchange.respond(b"s3\xff"),
        Step::Failed(Failure::Malformed)
    );
}

#[test]
fn step_debug_hides_the_password() {
    let (_, step) = Exchange::start(Mechanism::Plain, Some(b"\0alice\0hunter2"), "snonce");
    let shown = format!("{step:?}");
    assert!(
        shown.contains("alice") && !shown.contains("hunter2"),
        "{shown}"
    );
    assert!(!format!("{:?}", rfc_keys()).contains(&BASE64.encode(rfc_keys().stored_key)));
}

#[test]
fn mechanism_names() {
    for mechanism in Mechanism::ALL {
        assert_eq!(Mechanism::parse(mechanism.name()), Some(mechanism));
    }
    assert_eq!(
        Mechanism::parse("scram-sha-256"),
        Some(Mechanism::ScramSha256)
    );
    assert_eq!(Mechanism::parse("plain"), Some(Mechanism::Plain));
    assert_eq!(Mechanism::parse("CRAM-MD5"), None);
    assert_eq!(Mechanism::parse("SCRAM-SHA-256-PLUS"), None);
}

#[test]
fn keys_encode_decode_round_trip() {
    let keys = rfc_keys();
    let text = keys.encode();
    assert!(text.starts_with("4096,W22ZaJ0SNY7soEsUEjb6gQ==,"), "{text}");
    assert_eq!(ScramKeys::decode(&text), Some(keys));
}

#[test]
fn keys_decode_rejects_bad_input() {
    let key = BASE64.encode([7u8; 32]);
    let short = BASE64.encode([7u8; 31]);
    let long = BASE64.encode([7u8; 33]);
    let valid = format!("4096,c2FsdA==,{key},{key}");
    assert!(ScramKeys::decode(&valid).is_some());
    let cases = [
        String::new(),
        format!("0,c2FsdA==,{key},{key}"),
        format!("10000001,c2FsdA==,{key},{key}"),
        format!("99999999999,c2FsdA==,{key},{key}"),
        format!("+4096,c2FsdA==,{key},{key}"),
        format!("-1,c2FsdA==,{key},{key}"),
        format!(",c2FsdA==,{key},{key}"),
        format!("4096,,{key},{key}"),
        format!("4096,c2FsdA=,{key},{key}"),
        format!("4096,c2Fs!A==,{key},{key}"),
        format!("4096,{},{key},{key}", BASE64.encode([1u8; 257])),
        format!("4096,c2FsdA==,{short},{key}"),
        format!("4096,c2FsdA==,{key},{long}"),
        format!("4096,c2FsdA==,{key}"),
        format!("4096,c2FsdA==,{key},{key},"),
        format!(" 4096,c2FsdA==,{key},{key}"),
        format!("{valid}\n"),
    ];
    for text in cases {
        assert_eq!(ScramKeys::decode(&text), None, "{text:?}");
    }
    let highest = format!("10000000,c2FsdA==,{key},{key}");
    assert_eq!(
        ScramKeys::decode(&highest).map(|keys| keys.iterations),
        Some(10_000_000)
    );
}

#[test]
#[should_panic(expected = "iteration count")]
fn derive_refuses_zero_iterations() {
    ScramKeys::derive("pencil", b"salt", 0);
}

/// A SCRAM-SHA-256 client's proof for `auth_message`, in base64 (shared by the
/// protocols' SCRAM tests).
pub(crate) fn client_proof(
    password: &str,
    salt: &[u8],
    iterations: u32,
    auth_message: &str,
) -> String {
    let mut salted = [0u8; KEY_BYTES];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        NonZeroU32::new(iterations).expect("test iterations"),
        salt,
        password.as_bytes(),
        &mut salted,
    );
    let client_key = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &salted), b"Client Key");
    let stored_key = digest::digest(&digest::SHA256, client_key.as_ref());
    let signature = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, stored_key.as_ref()),
        auth_message.as_bytes(),
    );
    let proof: Vec<u8> = client_key
        .as_ref()
        .iter()
        .zip(signature.as_ref())
        .map(|(a, b)| a ^ b)
        .collect();
    BASE64.encode(proof)
}

/// Runs a whole SCRAM exchange as a client with `password` would; the final step.
fn scram_as_client(login: &str, password: &str, keys: ScramKeys) -> Step {
    let escaped = login.replace('=', "=3D").replace(',', "=2C");
    let bare = format!("n={escaped},r=cl1ent+n0nce");
    let (mut exchange, step) = Exchange::start(
        Mechanism::ScramSha256,
        Some(format!("n,,{bare}").as_bytes()),
        "s3rver/n0nce",
    );
    assert_eq!(
        step,
        Step::NeedKeys {
            login: login.into()
        }
    );
    let (salt, iterations) = (keys.salt.clone(), keys.iterations);
    let Step::Challenge(server_first) = exchange.keys(Some(("account".into(), keys))) else {
        panic!("no server-first");
    };
    let server_first = String::from_utf8(server_first).expect("server-first is text");
    assert_eq!(
        server_first,
        format!(
            "r=cl1ent+n0nces3rver/n0nce,s={},i={iterations}",
            BASE64.encode(&salt)
        )
    );
    let without_proof = "c=biws,r=cl1ent+n0nces3rver/n0nce";
    let proof = client_proof(
        password,
        &salt,
        iterations,
        &format!("{bare},{server_first},{without_proof}"),
    );
    match exchange.respond(format!("{without_proof},p={proof}").as_bytes()) {
        Step::Challenge(server_final) => {
            assert!(server_final.starts_with(b"v="));
            exchange.respond(b"")
        }
        other => other,
    }
}

/// Drives a fresh exchange into state number `state` (0..STATES).
const STATES: usize = 8;
fn exchange_in_state(state: usize) -> Exchange {
    let scram = |client_first: Option<&[u8]>| {
        Exchange::start(Mechanism::ScramSha256, client_first, RFC_SERVER_NONCE).0
    };
    match state {
        0 => Exchange::start(Mechanism::Plain, None, "snonce").0,
        1 => Exchange::start(Mechanism::Login, None, "snonce").0,
        2 => Exchange::start(Mechanism::Login, Some(b"alice"), "snonce").0,
        3 => scram(None),
        4 => scram(Some(RFC_CLIENT_FIRST.as_bytes())),
        5 => {
            let mut exchange = scram(Some(RFC_CLIENT_FIRST.as_bytes()));
            let salt = BASE64.decode(RFC_SALT_B64).expect("test salt");
            exchange.keys(Some(("user".into(), ScramKeys::derive("pencil", &salt, 1))));
            exchange
        }
        6 => {
            let mut exchange = rfc_after_server_first(RFC_CLIENT_FIRST);
            exchange.respond(RFC_CLIENT_FINAL.as_bytes());
            exchange
        }
        _ => Exchange::start(Mechanism::Plain, Some(b"\0a\0b"), "snonce").0,
    }
}

#[test]
fn every_state_is_reachable_for_the_property_test() {
    let states: Vec<State> = (0..STATES).map(|n| exchange_in_state(n).state).collect();
    assert!(
        matches!(
            states.as_slice(),
            [
                State::Plain,
                State::LoginUser,
                State::LoginPassword { .. },
                State::ScramClientFirst,
                State::ScramNeedKeys(_),
                State::ScramClientFinal(_),
                State::ScramServerFinal { .. },
                State::Done,
            ]
        ),
        "{states:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_responses_never_panic(
        state in 0..STATES,
        responses in proptest::collection::vec(
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..64),
                "[ -~]{0,64}".prop_map(String::into_bytes),
                "(n|y|p)?,(a=[a-z=]{0,4})?,(n=[a-z=,]{0,6})?(,r=[!-~]{0,8})?"
                    .prop_map(String::into_bytes),
                "c=[a-zA-Z0-9+/=]{0,8},r=[!-~]{0,50}(,p=[a-zA-Z0-9+/=]{0,48})?"
                    .prop_map(String::into_bytes),
            ],
            1..4,
        ),
        answer_keys in any::<bool>(),
    ) {
        let mut exchange = exchange_in_state(state);
        for response in responses {
            let step = exchange.respond(&response);
            if let Step::Success { .. } = step {
                prop_assert!(state == 6 && response.is_empty());
            }
            if answer_keys {
                let _ = exchange.keys(Some(("user".into(), rfc_keys())));
            }
        }
    }

    #[test]
    fn scram_round_trip(
        login in "[^\0]{1,12}",
        password in "[^\0]{0,12}",
        wrong in any::<bool>(),
        salt in proptest::collection::vec(any::<u8>(), 1..24),
        iterations in 1u32..4,
    ) {
        let keys = ScramKeys::derive(&password, &salt, iterations);
        prop_assert_eq!(ScramKeys::decode(&keys.encode()), Some(keys.clone()));
        let typed = if wrong { format!("{password}x") } else { password.clone() };
        let expected = if wrong {
            Step::Failed(Failure::Credentials)
        } else {
            Step::Success { account: "account".into() }
        };
        prop_assert_eq!(scram_as_client(&login, &typed, keys), expected);
    }

    #[test]
    fn keys_decode_never_panics(text in "[0-9a-zA-Z+/=,]{0,120}") {
        if let Some(keys) = ScramKeys::decode(&text) {
            prop_assert_eq!(ScramKeys::decode(&keys.encode()), Some(keys));
        }
    }
}
