//! Two hosts on one PostgreSQL database, as behind a load balancer: what one host writes the
//! other sees at once (tokens issued and revoked, users), and what must hold across hosts
//! holds under concurrency (one user per email, the hourly cap on password guesses, the uses
//! of an autologin token, REMP's login throttle). Runs in `it_postgres`; on sled the tests
//! return at once, as sled has one host.

use crate::account_guarantees::verifications;
use crate::harness::{Backend, Resp, TestServer, assert_hex32, backend};
use serde_json::json;
use std::sync::{Arc, Barrier};

/// The two hosts, or `None` on sled.
fn two_hosts(config: Option<&str>) -> Option<(Arc<TestServer>, Arc<TestServer>)> {
    if backend() != Backend::Postgres {
        eprintln!("two hosts share a store on PostgreSQL only; this runs in it_postgres");
        return None;
    }
    let a = match config {
        Some(toml) => TestServer::start_with_config(toml),
        None => TestServer::start(),
    };
    let b = a.second_host();
    Some((Arc::new(a), Arc::new(b)))
}

/// Run `work(i)` on `n` threads released together, host A for even `i`, B for odd.
fn at_once<T: Send>(
    a: &Arc<TestServer>,
    b: &Arc<TestServer>,
    n: usize,
    work: impl Fn(&TestServer, usize) -> T + Sync,
) -> Vec<T> {
    let start = Barrier::new(n);
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..n)
            .map(|i| {
                let host = if i % 2 == 0 { Arc::clone(a) } else { Arc::clone(b) };
                let (start, work) = (&start, &work);
                scope.spawn(move || {
                    start.wait();
                    work(&host, i)
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().expect("worker thread")).collect()
    })
}

#[test]
fn a_token_issued_by_one_host_works_on_the_other_and_a_logout_on_one_stops_it_on_both() {
    let Some((a, b)) = two_hosts(None) else { return };
    let (id, token) = a.create_user("anna@example.com", "secret123");
    b.user_info(&token).expect_fields(200, json!({"user": {"id": id, "email": "anna@example.com"}}));

    let from_b = b.login("anna@example.com", "secret123");
    a.user_info(&from_b).expect(200);
    a.get("/api/v1/users/logout", Some(&from_b)).expect(200);
    // Seen by the other host on its very next request: tokens are never cached per host.
    b.user_info(&from_b).expect(403);
    a.user_info(&from_b).expect(403);
    b.user_info(&token).expect(200);

    // A user changed on one host reads changed on the other.
    a.api_form("/api/v1/users/update", &[("user_id", &id.to_string()), ("email", "anna.nova@example.com")]).expect(200);
    b.user_info(&token).expect_fields(200, json!({"user": {"email": "anna.nova@example.com"}}));
    b.login("anna.nova@example.com", "secret123");
    // A user disabled on one host is refused on the other.
    a.req("PATCH", &format!("/api/users/{id}"))
        .json(json!({"active": false}))
        .bearer(Some(&a.api_token))
        .send()
        .expect(200);
    b.user_info(&token).expect(403);
}

#[test]
fn concurrent_registrations_of_one_email_on_both_hosts_create_exactly_one_user() {
    let Some((a, b)) = two_hosts(None) else { return };
    const EMAILS: usize = 12;
    const TRIES: usize = 8;
    for round in 0..EMAILS {
        let email = format!("race-{round}@example.com");
        let answers: Vec<Resp> =
            at_once(&a, &b, TRIES, |host, _| host.create(&[("email", email.as_str()), ("password", "secret123")]));
        let created: Vec<&Resp> = answers.iter().filter(|r| r.status == 200).collect();
        assert_eq!(created.len(), 1, "{email}: {:?}", answers.iter().map(|r| &r.text).collect::<Vec<_>>());
        for refused in answers.iter().filter(|r| r.status != 200) {
            refused.expect_fields(404, json!({"code": "email_taken"}));
        }
        let id = created[0].body["user"]["id"].clone();
        for host in [&a, &b] {
            host.email_check(&email).expect_fields(200, json!({"status": "taken", "id": id}));
        }
    }
    // Exactly one user per email, whichever host lists them.
    let listed = b.get("/api/users?per_page=100", Some(&b.api_token));
    let total = listed.expect(200)["total"].clone();
    assert_eq!(total, json!(EMAILS), "{}", listed.text);
}

/// The warnings and errors both hosts logged, for a failure's message.
fn problems(a: &TestServer, b: &TestServer) -> String {
    let mut lines = Vec::new();
    for (name, host) in [("A", a), ("B", b)] {
        for line in host.stderr().lines().filter(|l| l.contains("WARN") || l.contains("ERROR")) {
            lines.push(format!("{name}: {line}"));
        }
    }
    lines.join("\n")
}

#[test]
fn the_hourly_cap_on_password_guesses_holds_across_hosts() {
    let config = "trust_forwarded_headers = true\n[login]\nmax_failures = 1000\nmax_guesses_per_hour = 20\n";
    let Some((a, b)) = two_hosts(Some(config)) else { return };
    a.create_user("victim@example.com", "correct-horse-9");
    let before = verifications(&a) + verifications(&b);
    // 60 guesses from 60 addresses, 16 at a time on both hosts: three times the cap.
    let answers = at_once(&a, &b, 16, |host, worker| {
        (0..60)
            .filter(|n| n % 16 == worker)
            .map(|n| {
                host.req("POST", "/api/v1/users/login")
                    .form(&[("email", "victim@example.com"), ("password", &format!("guess-{n}"))])
                    .header("X-Forwarded-For", &format!("198.51.100.{}", n + 1))
                    .send()
                    .status
            })
            .collect::<Vec<u16>>()
    });
    assert!(answers.iter().flatten().all(|status| *status == 400), "{answers:?}");
    let evaluated = verifications(&a) + verifications(&b) - before;
    assert_eq!(evaluated, 20, "password checks against the victim's hash on both hosts together");
    // Locked on both: the right password is refused unevaluated wherever it arrives.
    for host in [&a, &b] {
        host.req("POST", "/api/v1/users/login")
            .form(&[("email", "victim@example.com"), ("password", "correct-horse-9")])
            .header("X-Forwarded-For", "192.0.2.1")
            .send()
            .expect_fields(400, json!({"code": "invalid_credential"}));
    }
    assert_eq!(verifications(&a) + verifications(&b) - before, 20);
}

#[test]
fn an_autologin_token_is_used_no_more_times_than_it_allows_across_hosts() {
    let Some((a, b)) = two_hosts(None) else { return };
    let (id, _) = a.create_user("anna@example.com", "secret123");
    let token = a
        .post_json("/api/autologin-tokens", json!({"user_id": id, "max_count": 3}), Some(&a.api_token))
        .expect(200)["token"]
        .clone();
    let token = assert_hex32(&token);
    let answers = at_once(&a, &b, 10, |host, _| {
        host.post_form("/api/v1/users/autologin-token-login", &[("autologin_token", token.as_str())], None)
    });
    let signed_in = answers.iter().filter(|r| r.status == 200).count();
    assert_eq!(signed_in, 3, "{:?}\n{}", answers.iter().map(|r| &r.text).collect::<Vec<_>>(), problems(&a, &b));
    for refused in answers.iter().filter(|r| r.status != 200) {
        refused.expect_fields(401, json!({"message": "Token reached max users count"}));
    }
}

#[test]
fn failed_logins_on_one_host_throttle_the_address_on_the_other() {
    let Some((a, b)) = two_hosts(None) else { return };
    a.create_user("anna@example.com", "secret123");
    // REMP's throttle: 10 consecutive failures from one address within the window.
    for n in 0..10 {
        let host = if n % 2 == 0 { &a } else { &b };
        host.login_resp(&format!("nobody{n}@example.com"), "whatever")
            .expect_fields(400, json!({"code": "identity_not_found"}));
    }
    for host in [&a, &b] {
        host.login_resp("anna@example.com", "secret123").expect_fields(
            400,
            json!({"code": "auth_failed", "message": "Too many unsuccessful login attempts. Try it later."}),
        );
    }
}
