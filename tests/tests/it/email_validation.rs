//! `users/set-email-validated` and `users/set-email-invalidated`, v1 (one form param, REMP's
//! per-address answers, the invalidate bug fixed) and v2 (a JSON list, always ok, unclaimed
//! users skipped). The mark is re-read with the offline `crm-users user show`; events are
//! counted through the kv-counter event-listener fixture.

use std::time::Duration;

use serde_json::json;

use crate::harness::TestServer;
use crate::plugins::{eventually, server_with, unchanged};

const V1_VALIDATED: &str = "/api/v1/users/set-email-validated";
const V1_INVALIDATED: &str = "/api/v1/users/set-email-invalidated";
const V2_VALIDATED: &str = "/api/v2/users/set-email-validated";
const V2_INVALIDATED: &str = "/api/v2/users/set-email-invalidated";

fn validated_at(s: &mut TestServer, email: &str) -> String {
    s.user_field(email, "email_validated_at")
}

#[test]
fn v1_validated_sets_the_mark_once_and_keeps_the_first_time() {
    let mut s = TestServer::start();
    s.create_user("anna@example.com", "secret123");
    assert_eq!(validated_at(&mut s, "anna@example.com"), "-");
    s.api_form(V1_VALIDATED, &[("email", "anna@example.com")])
        .expect_fields(200, json!({"status": "ok", "message": "Email has been validated", "code": "success"}));
    let first = validated_at(&mut s, "anna@example.com");
    assert_ne!(first, "-");
    s.api_form(V1_VALIDATED, &[("email", "anna@example.com")]).expect(200);
    assert_eq!(validated_at(&mut s, "anna@example.com"), first, "an existing mark is kept");
}

#[test]
fn v1_invalidated_clears_the_mark_unlike_remp() {
    let mut s = TestServer::start();
    s.create_user("anna@example.com", "secret123");
    s.api_form(V1_VALIDATED, &[("email", "anna@example.com")]).expect(200);
    s.api_form(V1_INVALIDATED, &[("email", "anna@example.com")])
        .expect_fields(200, json!({"status": "ok", "message": "Email has been invalidated", "code": "success"}));
    assert_eq!(validated_at(&mut s, "anna@example.com"), "-");
    // Invalidating an unvalidated address is fine and leaves it unvalidated.
    s.api_form(V1_INVALIDATED, &[("email", "anna@example.com")]).expect(200);
    assert_eq!(validated_at(&mut s, "anna@example.com"), "-");
}

#[test]
fn v1_refuses_missing_invalid_unknown_and_unclaimed_addresses() {
    let s = TestServer::start();
    s.create(&[("email", "ghost@example.com"), ("unclaimed", "1")]).expect(200);
    for path in [V1_VALIDATED, V1_INVALIDATED] {
        s.api_form(path, &[])
            .expect_fields(400, json!({"code": "invalid_input", "errors": {"email": ["Field is required"]}}));
        let invalid = s.api_form(path, &[("email", "not-an-email")]);
        assert_eq!(
            invalid.expect(400),
            &json!({"status": "error", "message": "Email is not valid", "code": "invalid_param"})
        );
        let not_found =
            json!({"status": "error", "message": "Email isn't assigned to any user", "code": "email_not_found"});
        assert_eq!(s.api_form(path, &[("email", "nobody@example.com")]).expect(404), &not_found, "{path}");
        assert_eq!(s.api_form(path, &[("email", "ghost@example.com")]).expect(404), &not_found, "{path}");
    }
}

#[test]
fn v2_marks_many_addresses_and_skips_unknown_invalid_and_unclaimed_ones() {
    let mut s = TestServer::start();
    s.create_user("a@example.com", "secret123");
    s.create_user("b@example.com", "secret123");
    s.create_user("c@example.com", "secret123");
    s.create(&[("email", "ghost@example.com"), ("unclaimed", "1")]).expect(200);
    let emails =
        json!({"emails": ["a@example.com", "B@example.com", "ghost@example.com", "nobody@example.com", "nope", ""]});
    assert_eq!(s.post_json(V2_VALIDATED, emails, Some(&s.api_token)).expect(200), &json!({"status": "ok"}));
    assert_ne!(validated_at(&mut s, "a@example.com"), "-");
    assert_ne!(validated_at(&mut s, "b@example.com"), "-", "emails match case-insensitively");
    assert_eq!(validated_at(&mut s, "c@example.com"), "-", "not listed");
    assert_eq!(validated_at(&mut s, "ghost@example.com"), "-", "unclaimed users are skipped");

    let emails = json!({"emails": ["a@example.com", "c@example.com"]});
    assert_eq!(s.post_json(V2_INVALIDATED, emails, Some(&s.api_token)).expect(200), &json!({"status": "ok"}));
    assert_eq!(validated_at(&mut s, "a@example.com"), "-");
    assert_ne!(validated_at(&mut s, "b@example.com"), "-", "not listed");
}

#[test]
fn v2_answers_ok_for_an_empty_list_and_refuses_bad_documents_as_remp() {
    let s = TestServer::start();
    for path in [V2_VALIDATED, V2_INVALIDATED] {
        assert_eq!(s.post_json(path, json!({"emails": []}), Some(&s.api_token)).expect(200), &json!({"status": "ok"}));
        s.post_json(path, json!({}), Some(&s.api_token)).expect_fields(
            400,
            json!({"status": "error", "message": "Payload error",
                   "errors": [{"emails": "The property emails is required: required"}]}),
        );
        s.post_json(path, json!({"emails": "a@example.com"}), Some(&s.api_token))
            .expect_fields(400, json!({"errors": [{"emails": "String value found, but an array is required: type"}]}));
        s.post_json(path, json!({"emails": ["a@example.com", 3]}), Some(&s.api_token)).expect_fields(
            400,
            json!({"errors": [{"emails[1]": "Integer value found, but a string is required: type"}]}),
        );
        s.req("POST", path).bearer(Some(&s.api_token)).send().expect_fields(400, json!({"message": "Empty request"}));
        // v1 takes a form: the same form sent to v2 is not JSON.
        s.api_form(path, &[("email", "a@example.com")]).expect_fields(400, json!({"message": "Malformed JSON"}));
    }
}

#[test]
fn v1_and_v2_share_one_whitelist_entry_per_action() {
    let mut token = String::new();
    let s = TestServer::start_with(None, |data| {
        token = crate::harness::create_api_token(data, "validator", "users/set-email-validated")
    });
    s.create_user("a@example.com", "secret123");
    s.post_form(V1_VALIDATED, &[("email", "a@example.com")], Some(&token)).expect(200);
    s.post_json(V2_VALIDATED, json!({"emails": ["a@example.com"]}), Some(&token)).expect(200);
    for (path, json_body) in [(V1_INVALIDATED, false), (V2_INVALIDATED, true)] {
        let r = if json_body {
            s.post_json(path, json!({"emails": ["a@example.com"]}), Some(&token))
        } else {
            s.post_form(path, &[("email", "a@example.com")], Some(&token))
        };
        r.expect_fields(
            403,
            json!({"message": "Not authorized: Token has no access to resource [users/set-email-invalidated]"}),
        );
    }
}

#[test]
fn v1_publishes_user_updated_per_change_and_v2_publishes_nothing() {
    let (s, _plugins) = server_with(&["kv-counter"], unchanged);
    s.create_user("a@example.com", "secret123");
    s.create_user("b@example.com", "secret123");
    let events = || s.stderr().matches("event user_updated").count();
    s.post_json(V2_VALIDATED, json!({"emails": ["a@example.com"]}), Some(&s.api_token)).expect(200);
    s.post_json(V2_INVALIDATED, json!({"emails": ["a@example.com"]}), Some(&s.api_token)).expect(200);
    s.api_form(V1_VALIDATED, &[("email", "b@example.com")]).expect(200);
    s.api_form(V1_INVALIDATED, &[("email", "b@example.com")]).expect(200);
    // A listener gets events in order, so once the last v1 event is in, any v2 one would be too.
    eventually(Duration::from_secs(10), "two user_updated events", || events() >= 2);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(events(), 2, "only the v1 calls publish; stderr:\n{}", s.stderr());
}
