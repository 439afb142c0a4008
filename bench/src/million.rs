//! The one-million-user data set: generated straight through the store (the same records and
//! indexes a registration writes, without a million argon2 hashes), and the in-process
//! lookups measured against raw sled gets on a plain tree holding the same records.

use anyhow::Context;
use crm_users::domain::user::{NewUser, Role};
use crm_users::store::{Store, sled::SledStore};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

pub fn email(i: u64) -> String {
    format!("user{i}@example.com")
}

/// The meta entry every generated user has, unique per user (`user-meta/key-users` finds one).
pub fn external_id(i: u64) -> String {
    format!("ext-{i}")
}

/// Write `n` users, each with one meta entry, into a new data folder `data`, and a raw sled
/// tree email -> user JSON beside it in `raw`. Prints `{"users", "payload_bytes", "seconds"}`:
/// the payload is the users' records and meta as JSON, what an export would hold.
pub fn populate(data: &Path, raw: &Path, n: u64) -> anyhow::Result<()> {
    use argon2::password_hash::PasswordHasher as _;
    let hash = argon2::Argon2::default().hash_password(b"secret123").map_err(|e| anyhow::anyhow!("{e}"))?.to_string();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let started = Instant::now();
    let payload = runtime.block_on(async {
        let store = Arc::new(SledStore::open(&data.join("sled"))?);
        let raw_db = sled::Config::new().path(raw).cache_capacity(256 * 1024 * 1024).open()?;
        let mut payload = 0u64;
        // Many writers at once, so group commit makes this take seconds, not hours.
        let mut next = 0u64;
        while next < n {
            let mut tasks = tokio::task::JoinSet::new();
            for i in next..(next + 2000).min(n) {
                let (store, hash) = (store.clone(), hash.clone());
                tasks.spawn(async move {
                    let user = NewUser {
                        email: email(i),
                        password_hash: hash,
                        first_name: Some(format!("First{i}")),
                        last_name: Some(format!("Last{i}")),
                        role: Role::User,
                        active: true,
                        source: "bench".into(),
                        referer: None,
                        registration_channel: "crm".into(),
                        locale: "en_US".into(),
                        ext_id: None,
                        note: None,
                    };
                    let meta = vec![("external_id".to_owned(), external_id(i), false)];
                    store.create_user(user, meta, None).await.map(|(u, _)| (u, i))
                });
            }
            while let Some(created) = tasks.join_next().await {
                let (user, i) = created??;
                let record = serde_json::to_vec(&user)?;
                payload += (record.len() + "external_id".len() + external_id(i).len()) as u64;
                raw_db.insert(user.email.as_bytes(), record)?;
            }
            next = (next + 2000).min(n);
            if next.is_multiple_of(100_000) {
                eprintln!("  {next} users");
            }
        }
        raw_db.flush()?;
        store.flush().await?;
        anyhow::Ok(payload)
    })?;
    println!("{}", json!({"users": n, "payload_bytes": payload, "seconds": started.elapsed().as_secs_f64()}));
    Ok(())
}

/// Median nanoseconds per call of `f` over `samples` calls on keys from `pick`.
fn per_call(samples: u64, mut f: impl FnMut(u64) -> anyhow::Result<()>) -> anyhow::Result<f64> {
    // A fixed pseudo-random walk over the ids, the same for both sides.
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    let mut times = Vec::with_capacity(10);
    for _ in 0..10 {
        let start = Instant::now();
        for _ in 0..samples / 10 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            f(x)?;
        }
        times.push(start.elapsed().as_nanos() as f64 / (samples / 10) as f64);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    Ok(times[times.len() / 2])
}

/// In-process lookups at `n` users: by email and by meta value through the store, and a raw
/// sled get of the same record by email. Prints the nanoseconds per call of each.
pub fn lookups(data: &Path, raw: &Path, n: u64) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let store = SledStore::open(&data.join("sled"))?;
    let raw_db = sled::Config::new().path(raw).cache_capacity(256 * 1024 * 1024).open()?;
    let samples = 200_000;
    // Warm both caches over the same keys first.
    let warm = |x: u64| -> anyhow::Result<()> {
        let i = x % n;
        raw_db.get(email(i).as_bytes())?.context("raw record")?;
        runtime.block_on(store.user_by_email(&email(i)))?.context("user")?;
        Ok(())
    };
    per_call(samples, warm)?;
    let raw_ns = per_call(samples, |x| {
        let record = raw_db.get(email(x % n).as_bytes())?.context("raw record")?;
        std::hint::black_box(record);
        Ok(())
    })?;
    let by_email_ns = per_call(samples, |x| {
        let user = runtime.block_on(store.user_by_email(&email(x % n)))?.context("user")?;
        std::hint::black_box(user);
        Ok(())
    })?;
    let key_users_ns = per_call(samples, |x| {
        let i = x % n;
        let found = runtime.block_on(store.users_with_meta("external_id", Some(&external_id(i))))?;
        anyhow::ensure!(found.len() == 1, "external_id {i} found {} times", found.len());
        Ok(())
    })?;
    let out: Value = json!({"raw_get_ns": raw_ns, "user_by_email_ns": by_email_ns, "key_users_ns": key_users_ns});
    println!("{out}");
    Ok(())
}
