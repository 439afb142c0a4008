//! An open-loop load generator for latency: requests are scheduled at a fixed rate and each
//! latency is measured from the moment its request was due, not from when a connection was
//! free, so a stalled server shows up in the figures instead of slowing the load down.

use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Send GET `url` with `bearer` at `rate` requests per second for `seconds`; print
/// `{"sent", "errors", "p50_ms", "p99_ms", "max_ms"}` as one JSON line.
pub fn run(url: &str, bearer: &str, rate: u64, seconds: u64) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let report = runtime.block_on(measure(url, bearer, rate, seconds))?;
    println!("{report}");
    Ok(())
}

async fn measure(url: &str, bearer: &str, rate: u64, seconds: u64) -> anyhow::Result<Value> {
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
    let total = rate * seconds;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    // A plain thread paces the schedule: its sleeps are accurate to tens of microseconds,
    // where the runtime's timer rounds to a millisecond.
    let (due_tx, mut due_rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    std::thread::spawn(move || {
        let start = Instant::now();
        for i in 0..total {
            let due = start + interval.mul_f64(i as f64);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            if due_tx.send(due).is_err() {
                return;
            }
        }
    });
    let mut tasks = tokio::task::JoinSet::new();
    while let Some(due) = due_rx.recv().await {
        let (client, url, bearer) = (client.clone(), url.to_owned(), bearer.to_owned());
        tasks.spawn(async move {
            let ok = match client.get(&url).bearer_auth(&bearer).send().await {
                Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                Err(_) => false,
            };
            (due.elapsed().as_secs_f64() * 1000.0, ok)
        });
    }
    let mut latencies = Vec::with_capacity(total as usize);
    let mut errors = 0u64;
    while let Some(done) = tasks.join_next().await {
        let (ms, ok) = done?;
        latencies.push(ms);
        errors += u64::from(!ok);
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Ok(json!({"sent": total, "errors": errors, "p50_ms": at(0.5), "p99_ms": at(0.99), "max_ms": at(1.0)}))
}
