//! `crm-users migrate`: a populated sled store copied into PostgreSQL and back. A server on the
//! copy answers as the original did, and each copy exports byte-identical to its source (both
//! backends export the same records in the same order), a target that holds data is refused
//! with nothing written, and bad store names are explained. Runs in `it_postgres`.

use crate::backup::{CONFIG, answers, export, populate, serve_on};
use crate::harness::{
    Backend, TestServer, backend, bin_command, combined, database_url_of, keep_on_sled, output_with_timeout,
};
use std::path::Path;

#[track_caller]
fn migrate(from: &str, to: &str) -> std::process::Output {
    let mut cmd = bin_command();
    cmd.args(["migrate", "--from", from, "--to", to]);
    output_with_timeout(cmd)
}

fn sled(data: &Path) -> String {
    format!("sled:{}", data.display())
}

#[test]
fn a_sled_store_migrated_to_postgres_and_back_answers_identically_and_exports_byte_identical() {
    if backend() != Backend::Postgres {
        eprintln!("migrations need PostgreSQL; this runs in it_postgres");
        return;
    }
    let mut original = TestServer::start_on_sled(Some(CONFIG));
    let (anna_id, anna_token, revoked, autologin) = populate(&original);
    let before = answers(&original, anna_id, &anna_token);
    original.stop();
    let files = tempfile::tempdir().expect("temp dir");
    let first = export(&original.data_dir(), &files.path().join("sled.jsonl"));
    let records = String::from_utf8_lossy(&first).lines().count() - 2;

    // Into PostgreSQL: the report lists every kind, verified.
    let on_postgres = tempfile::tempdir().expect("temp dir");
    let pg_data = on_postgres.path().join("data");
    let url = database_url_of(&pg_data);
    let out = migrate(&sled(&original.data_dir()), &format!("postgres:{url}"));
    assert!(out.status.success(), "{}", combined(&out));
    let report = String::from_utf8_lossy(&out.stdout);
    for kind in ["user\t2\tyes", "meta\t", "access_token\t", "membership\t1\tyes", "sequence\t"] {
        assert!(report.contains(kind), "no {kind:?} line in the report:\n{report}");
    }
    assert!(report.contains(&format!("migrated {records} records from the sled store in")), "{report}");
    assert!(report.contains("counts and checksums of every kind match"), "{report}");

    // The same records in the same order, whichever backend exports them.
    let second = export(&pg_data, &files.path().join("postgres.jsonl"));
    assert!(first == second, "the export from PostgreSQL differs from the one from sled");

    // A server on the copy answers as the original did.
    let config = on_postgres.path().join("config.toml");
    std::fs::write(&config, CONFIG).expect("config");
    let copy = serve_on(on_postgres, &config, &original.api_token);
    let after = answers(&copy, anna_id, &anna_token);
    for ((path, want), (_, got)) in before.iter().zip(&after) {
        assert_eq!(got, want, "{path} answers differently on PostgreSQL");
    }
    copy.user_info(&revoked).expect(403);
    copy.login("anna@example.com", "secret123");
    copy.post_form("/api/v1/users/autologin-token-login", &[("autologin_token", &autologin)], None).expect(200);
    drop(copy);

    // And back into a new sled folder (the copy has served sign-ins since): the same file as
    // the database's own export.
    let served = export(&pg_data, &files.path().join("served.jsonl"));
    assert!(served != first, "the sign-ins on the copy were written");
    let back = tempfile::tempdir().expect("temp dir");
    let back_data = back.path().join("data");
    keep_on_sled(&back_data);
    let out = migrate(&format!("postgres:{url}"), &sled(&back_data));
    assert!(out.status.success(), "{}", combined(&out));
    let back_again = export(&back_data, &files.path().join("back.jsonl"));
    assert!(served == back_again, "the migration back to sled changed the export");
}

#[test]
fn a_target_with_data_is_refused_and_left_as_it_was() {
    if backend() != Backend::Postgres {
        eprintln!("migrations need PostgreSQL; this runs in it_postgres");
        return;
    }
    let mut source = TestServer::start_on_sled(None);
    source.create_user("anna@example.com", "secret123");
    source.stop();
    // A PostgreSQL store that holds a user of its own.
    let mut target = TestServer::start();
    target.create_user("bob@example.com", "secret123");
    target.stop();
    let files = tempfile::tempdir().expect("temp dir");
    let before = export(&target.data_dir(), &files.path().join("before.jsonl"));
    let out = migrate(&sled(&source.data_dir()), &format!("postgres:{}", database_url_of(&target.data_dir())));
    assert!(!out.status.success());
    assert!(combined(&out).contains("holds data already"), "{}", combined(&out));
    let after = export(&target.data_dir(), &files.path().join("after.jsonl"));
    assert!(before == after, "the refused migration changed the target");

    // Into the same store, or a store that is neither: explained.
    let out = migrate(&sled(&source.data_dir()), &sled(&source.data_dir()));
    assert!(combined(&out).contains("the same store"), "{}", combined(&out));
    let out = migrate("mysql://remp@db/remp", &sled(&source.data_dir()));
    assert!(combined(&out).contains("is not sled:DIR or postgres:URL"), "{}", combined(&out));
}
