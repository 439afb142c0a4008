//! Entry points for fuzzing what strangers send us: request parameters (query string,
//! urlencoded, multipart and JSON bodies, REMP's JSON schemas), the `Authorization` header, ID
//! tokens, and what plugins return. Each takes arbitrary bytes and panics only when an invariant
//! breaks, so any panic, hang or runaway allocation is a finding.
//!
//! `fuzz/` drives them with cargo-fuzz (libFuzzer, coverage-guided); the tests below replay the
//! committed corpus in `fuzz/corpus/` and seeded mutations of it on every `cargo test`, so a
//! finding fixed once stays fixed.

use crate::api::{authz, params::Params, remp::schema, rest};
use crate::plugins::calls;
use crate::service::{addresses, auth, extensions, sso};
use futures_util::FutureExt;

/// The pieces of an input, split at 0xFF (a byte that never occurs in UTF-8), each read as
/// lossy UTF-8; missing pieces are empty.
fn pieces(data: &[u8], n: usize) -> Vec<String> {
    let mut out: Vec<String> =
        data.splitn(n, |b| *b == 0xFF).map(|p| String::from_utf8_lossy(p).into_owned()).collect();
    out.resize(n, String::new());
    out
}

/// Request parameters. The first byte picks the content type, then the query string up to the
/// first 0xFF, then the body.
pub fn params(data: &[u8]) {
    let Some((&selector, rest_of_input)) = data.split_first() else {
        return;
    };
    let content_type = match selector % 6 {
        0 => None,
        1 => Some("application/x-www-form-urlencoded"),
        2 => Some("multipart/form-data; boundary=XyZ"),
        3 => Some("application/json"),
        4 => Some("application/vnd.api+json; charset=utf-8"),
        _ => Some("text/plain"),
    };
    let (query, body) = match rest_of_input.iter().position(|b| *b == 0xFF) {
        Some(at) => (&rest_of_input[..at], &rest_of_input[at + 1..]),
        None => (rest_of_input, &[][..]),
    };
    let query = String::from_utf8_lossy(query);
    let body = bytes::Bytes::copy_from_slice(body);
    let parsed = Params::parse(Some(&query), content_type, body.clone())
        .now_or_never()
        .expect("parameter parsing waits on nothing: the body is already in memory");
    assert_eq!(parsed.raw_body, body, "the raw body is kept as sent");
    for (name, value) in parsed.iter() {
        assert_eq!(parsed.get(name), Some(value));
        let _ = (parsed.int(name), parsed.flag(name), parsed.non_empty(name));
    }
    for name in parsed.missing(&["email", "password"]) {
        assert!(parsed.non_empty(name).is_none(), "{name} is reported missing but has a value");
    }
    // The JSON readers of the resource API and of REMP's v2 routes.
    if let Ok(object) = rest::object(&body) {
        let _ = rest::only_keys(&object, &["email", "password"]);
        let _ = (rest::string(&object, "email"), rest::boolean(&object, "active"));
    }
    let _ = authz::json_object(&body, &["name", "value"]);
    // The resource API and the REMP routes read one query string the same way.
    for (name, value) in rest::query(Some(&query)) {
        assert_eq!(parsed.query(&name), Some(value.as_str()), "query parameter {name:?}");
    }
    let properties = [
        schema::Property { name: "user_id", kind: schema::Kind::Integer, required: true },
        schema::Property { name: "key", kind: schema::Kind::String(255), required: true },
        schema::Property { name: "is_public", kind: schema::Kind::Boolean, required: false },
        schema::Property { name: "emails", kind: schema::Kind::Strings, required: false },
    ];
    if let Ok(object) = schema::validate(&body, &properties) {
        assert!(object.keys().all(|k| properties.iter().any(|p| p.name == k)), "only schema properties pass");
        assert!(object.get("user_id").is_some_and(serde_json::Value::is_i64), "a required integer passes as one");
    }
}

/// The `Authorization` header of the token-protected routes.
pub fn authorization(data: &[u8]) {
    let header = String::from_utf8_lossy(data);
    if let Ok(token) = auth::parse_bearer(Some(&header)) {
        assert!(!token.is_empty() && !token.contains(' '), "a token is one non-empty word");
        let scheme = &header[..header.len() - token.len() - 1];
        assert!(scheme.eq_ignore_ascii_case("bearer"), "only the Bearer scheme passes, got {scheme:?}");
    }
}

/// The RSA key ID tokens are checked against: a fixed 2048-bit public key. Its private half
/// signed the corpus's expired and misdirected tokens (so the claim checks are reached) and was
/// then destroyed: no input can carry a valid signature on claims that pass.
const FUZZ_KEY_N: &str = "kA7duOCQHzLK42rPStva1PrttP_Lg2mcArQLTd34jni-Pez_Q53T-Etpc6Ww6JASiMN-_Pumoh2Uls9ERUHvwXRptzc2qDdOTn2Pvv0hfg4senQEdmIgguFM_4cSTLCWbrxXeTA2idgPEaRx-Nuc7-CdCAj8OieaXWdQ2_4r5ppI2pOX3X_ljOmrN-AVDAuDv2qAyfaaPRmaz6WLdpPuIZ04AGP29pQB7jG2UR4-quHkDfbiYjUMDAIoF-73G-mzpLLEo3O5sZyHifqELUx4IRZLLBrHynbe75RaRUBdKweINLMWO_KbkOfEiTp_cukuFzVUzjP_DVdA41jrZM5Dgw";

/// ID tokens (Google, Apple): header checks, then signature and claims.
pub fn id_token(data: &[u8]) {
    static KEY: std::sync::OnceLock<jsonwebtoken::DecodingKey> = std::sync::OnceLock::new();
    let key = KEY.get_or_init(|| {
        jsonwebtoken::DecodingKey::from_rsa_components(FUZZ_KEY_N, "AQAB").expect("the fuzz key is a valid RSA key")
    });
    let token = String::from_utf8_lossy(data);
    let Ok(_kid) = sso::id_token_key_id(&token) else {
        return;
    };
    let mut config = sso::ProviderConfig::google_defaults();
    config.client_ids = vec!["fuzz-client".into()];
    let verified = sso::verify_id_token_with(&token, key, &config);
    assert!(verified.is_err(), "no token passes without a signature nobody can make: {verified:?}");
}

/// What plugins return: an address type's verdict, an authenticator's provisioned email and
/// meta, a sign-in handler's meta, and `user-info` text.
pub fn plugin_results(data: &[u8]) {
    let p = pieces(data, 16);
    let field = |i: usize| (!p[i].is_empty()).then(|| p[i].clone());
    let verdict = if p[15].starts_with('!') {
        Err(p[12..15].iter().map(|s| calls::FieldError { field: s.clone(), message: p[15].clone() }).collect())
    } else {
        Ok(calls::Address {
            first_name: field(0),
            last_name: field(1),
            company_name: field(2),
            street: field(3),
            number: field(4),
            zip: field(5),
            city: field(6),
            country_iso: field(7),
            phone_number: field(8),
            company_id: field(9),
            company_tax_id: field(10),
            company_vat_id: field(11),
        })
    };
    if let Ok(fields) = addresses::accept_plugin_verdict(Some(703), verdict) {
        assert_eq!(fields.clone().normalized(), fields, "an accepted address is already normalized");
        assert!(fields.country_id.is_some(), "an accepted address has a country");
        for (name, value) in fields.text_fields() {
            let chars = value.as_ref().map_or(0, |v| v.chars().count());
            assert!(chars <= crate::domain::address::MAX_FIELD_LEN, "{name} is {chars} characters");
        }
    }
    if extensions::is_provisionable_email(&p[0]) {
        // What becomes an account's login can carry no line break or control character into
        // logs, mails or REMP's exports, and has exactly one `@`.
        assert!(!p[0].chars().any(char::is_control), "{:?}", p[0]);
        assert_eq!(p[0].matches('@').count(), 1, "{:?}", p[0]);
    }
    let meta: Vec<(String, String, bool)> = p.chunks(2).map(|kv| (kv[0].clone(), kv[1].clone(), true)).collect();
    for (key, value, _) in extensions::acceptable_plugin_meta(meta) {
        assert!(!key.is_empty() && key.len() <= crate::domain::meta::MAX_META_KEY_LEN && value.len() <= 64 * 1024);
    }
    let _ = extensions::user_info_object(&String::from_utf8_lossy(data));
}

#[cfg(test)]
mod tests {
    //! The short form of the fuzzing, on stable Rust: every file of a target's committed corpus,
    //! then seeded mutations of them (flips, insertions, deletions, splices, repeats). The long,
    //! coverage-guided form is `cargo fuzz run <target>` in `fuzz/`.

    use std::path::PathBuf;

    /// Mutated inputs per target and run; `CRM_USERS_FUZZ_MUTATIONS` sets another count.
    const MUTATIONS: usize = 100_000;

    fn corpus(target: &str) -> Vec<Vec<u8>> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.expect("corpus entry").path())
            .collect();
        files.sort();
        let inputs: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).expect("corpus file")).collect();
        assert!(inputs.len() >= 5, "{target}: the corpus in {} is nearly empty", dir.display());
        inputs
    }

    /// xorshift64*: a fixed seed gives the same inputs on every run, so a failure reproduces.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    const INTERESTING: &[&[u8]] =
        &[b"\xff", b"\x00", b"%", b"%zz", b"&", b"=", b"\"", b"\\u0000", b"[", b"{", b"}", b"]", b" ", b"--XyZ\r\n"];

    fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
        let mut out = input.to_vec();
        for _ in 0..=rng.below(4) {
            let at = rng.below(out.len() + 1);
            match rng.below(6) {
                0 if !out.is_empty() => {
                    let i = rng.below(out.len());
                    out[i] ^= 1 << rng.below(8);
                }
                1 => out.insert(at, rng.next() as u8),
                2 if at < out.len() => {
                    let end = (at + rng.below(16)).min(out.len());
                    out.drain(at..end);
                }
                3 => {
                    let from = rng.below(other.len());
                    let end = (from + rng.below(64)).min(other.len());
                    out.splice(at..at, other[from..end].iter().copied());
                }
                4 => {
                    let end = (at + 1 + rng.below(8)).min(out.len());
                    let chunk = out[at.min(end)..end].to_vec();
                    for _ in 0..rng.below(64) {
                        out.splice(at..at, chunk.iter().copied());
                    }
                }
                _ => {
                    let token = INTERESTING[rng.below(INTERESTING.len())];
                    out.splice(at..at, token.iter().copied());
                }
            }
        }
        out
    }

    fn run(target: &str, seed: u64, check: fn(&[u8])) {
        let inputs = corpus(target);
        for input in &inputs {
            check(input);
        }
        let mutations =
            std::env::var("CRM_USERS_FUZZ_MUTATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(MUTATIONS);
        let mut rng = Rng(seed);
        for _ in 0..mutations {
            let input = &inputs[rng.below(inputs.len())];
            let other = &inputs[rng.below(inputs.len())];
            check(&mutate(&mut rng, input, other));
        }
    }

    #[test]
    fn params_survive_the_corpus_and_its_mutations() {
        run("params", 0x5EED_0001, super::params);
    }

    #[test]
    fn authorization_headers_survive_the_corpus_and_its_mutations() {
        run("authorization", 0x5EED_0002, super::authorization);
    }

    #[test]
    fn id_tokens_survive_the_corpus_and_its_mutations() {
        run("id_token", 0x5EED_0003, super::id_token);
    }

    #[test]
    fn plugin_results_survive_the_corpus_and_its_mutations() {
        run("plugin_results", 0x5EED_0004, super::plugin_results);
    }

    #[test]
    fn json_nested_ten_thousand_deep_is_refused_without_overflowing_the_stack() {
        for body in [
            "[".repeat(10_000).into_bytes(),
            format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000)).into_bytes(),
        ] {
            let mut input = vec![3u8, 0xFF];
            input.extend_from_slice(&body);
            super::params(&input);
            assert!(crate::api::rest::object(&body).is_err());
        }
    }
}
