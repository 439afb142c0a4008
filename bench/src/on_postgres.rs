//! The main scenarios on PostgreSQL, each against the same scenario on sled in the same run
//! (interleaved, ABBA): reading a user by token, signing in, durable writes from 64
//! connections. The ratio is PostgreSQL's rate over sled's. PostgreSQL runs with its
//! production defaults (fsync, synchronous commit) on the server core, next to crm-users, so
//! both backends get the same hardware: one core for the service, one for the load.

use crate::load::Request;
use crate::servers::Server;
use crate::{SERVER_CORE, Settings, create_user, interleaved, merge, result, run_detail, user_with_token};
use crm_users_tests::postgres::{Durability, Postgres};
use serde_json::{Value, json};

/// A server on sled and one on PostgreSQL (a schema of its own), with their API tokens.
struct Pair {
    sled: (Server, String),
    postgres: (Server, String),
}

fn pair(s: &Settings, pg: &Postgres, schema: &str, config: &str) -> anyhow::Result<Pair> {
    let sled = s.crm_users.start(SERVER_CORE, config)?;
    let postgres = s.crm_users.start_on_postgres(SERVER_CORE, config, &pg.url(Some(schema)))?;
    Ok(Pair { sled, postgres })
}

/// Every PostgreSQL scenario, on one PostgreSQL server started for them.
pub fn scenarios(s: &Settings) -> anyhow::Result<Vec<Value>> {
    let pg = Postgres::start("crm_users_bench", Durability::Default, Some(SERVER_CORE))
        .map_err(|e| anyhow::anyhow!("cannot start PostgreSQL: {e}"))?;
    let mut results = Vec::new();
    for (name, scenario) in [
        ("user/info", user_info as fn(&Settings, &Postgres) -> anyhow::Result<Value>),
        ("logins", logins),
        ("durable writes", durable_writes),
    ] {
        eprintln!("running {name} on PostgreSQL ...");
        match scenario(s, &pg) {
            Ok(r) => results.push(r),
            Err(e) => results
                .push(json!({"scenario": format!("{name} on PostgreSQL"), "error": format!("{e:#}"), "met": false})),
        }
    }
    Ok(results)
}

/// A report line whose figure is a ratio to sled, with no goal beyond running clean.
fn versus_sled(scenario: &str, pg: &crate::load::Run, sled: &crate::load::Run) -> Value {
    let ratio = pg.requests_per_sec / sled.requests_per_sec;
    result(
        scenario,
        ratio,
        "report",
        pg.errors == 0 && sled.errors == 0,
        merge(run_detail("postgres", pg), run_detail("sled", sled)),
    )
}

fn user_info(s: &Settings, pg: &Postgres) -> anyhow::Result<Value> {
    let p = pair(s, pg, "bench_user_info", "")?;
    let token_sled = user_with_token(&p.sled.0.base, &p.sled.1, "bench@example.com")?;
    let token_pg = user_with_token(&p.postgres.0.base, &p.postgres.1, "bench@example.com")?;
    let a = Request::get(format!("{}/api/v1/user/info", p.postgres.0.base)).bearer(&token_pg);
    let b = Request::get(format!("{}/api/v1/user/info", p.sled.0.base)).bearer(&token_sled);
    let (on_pg, on_sled) = interleaved(s, 32, &a, &b)?;
    Ok(versus_sled("user/info on PostgreSQL vs on sled (req/s, 32 connections)", &on_pg, &on_sled))
}

fn logins(s: &Settings, pg: &Postgres) -> anyhow::Result<Value> {
    let p = pair(s, pg, "bench_logins", "")?;
    create_user(&p.sled.0.base, &p.sled.1, "login@example.com")?;
    create_user(&p.postgres.0.base, &p.postgres.1, "login@example.com")?;
    let body = "email=login%40example.com&password=secret123".to_owned();
    let a = Request::form(format!("{}/api/v1/users/login", p.postgres.0.base), body.clone());
    let b = Request::form(format!("{}/api/v1/users/login", p.sled.0.base), body);
    let (on_pg, on_sled) = interleaved(s, 4, &a, &b)?;
    Ok(versus_sled("users/login on PostgreSQL vs on sled (logins/s, argon2id, 4 connections)", &on_pg, &on_sled))
}

fn durable_writes(s: &Settings, pg: &Postgres) -> anyhow::Result<Value> {
    let p = pair(s, pg, "bench_writes", "")?;
    let id_sled = create_user(&p.sled.0.base, &p.sled.1, "w@example.com")?;
    let id_pg = create_user(&p.postgres.0.base, &p.postgres.1, "w@example.com")?;
    let upsert = |base: &str, api: &str, id: u64| {
        let template = format!(r#"{{"user_id":{id},"key":"k-{{n}}","value":"v","is_public":true}}"#);
        Request::json_counted(format!("{base}/api/v1/user-meta/upsert"), &template).bearer(api)
    };
    let a = upsert(&p.postgres.0.base, &p.postgres.1, id_pg);
    let b = upsert(&p.sled.0.base, &p.sled.1, id_sled);
    let (on_pg, on_sled) = interleaved(s, 64, &a, &b)?;
    Ok(versus_sled(
        "durable user-meta/upsert on PostgreSQL vs on sled with group commit (writes/s, 64 connections)",
        &on_pg,
        &on_sled,
    ))
}
