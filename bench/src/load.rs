//! Driving load with wrk (Debian's `wrk`): one run against one URL, pinned to its own core,
//! and the numbers parsed from its report.

use anyhow::{Context, bail};
use std::process::Command;

/// What one wrk run measured.
#[derive(Debug, Clone, Copy, Default)]
pub struct Run {
    pub requests_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Responses that were not 2xx/3xx, and socket errors.
    pub errors: u64,
    /// Responses received in all.
    pub requests: u64,
}

/// A request wrk repeats.
#[derive(Debug, Clone)]
pub struct Request {
    pub url: String,
    pub method: &'static str,
    pub body: Option<String>,
    pub headers: Vec<(String, String)>,
    /// When set, each request's body is this template with `{n}` replaced by a counter
    /// (1, 2, ...), wrapped to `1..=wrap` when `wrap` is not zero.
    pub body_template: Option<(String, u64)>,
}

impl Request {
    pub fn get(url: String) -> Self {
        Request { url, method: "GET", body: None, headers: vec![], body_template: None }
    }

    pub fn form(url: String, body: String) -> Self {
        Request {
            url,
            method: "POST",
            body: Some(body),
            headers: vec![("Content-Type".into(), "application/x-www-form-urlencoded".into())],
            body_template: None,
        }
    }

    /// A JSON POST whose body is `template` with `{n}` replaced by a counter per request.
    pub fn json_counted(url: String, template: &str) -> Self {
        Request {
            url,
            method: "POST",
            body: None,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body_template: Some((template.to_owned(), 0)),
        }
    }

    /// A form POST whose body is `template` with `{n}` cycling through `1..=wrap`.
    pub fn form_cycling(url: String, template: &str, wrap: u64) -> Self {
        let mut r = Request::form(url, String::new());
        r.body = None;
        r.body_template = Some((template.to_owned(), wrap));
        r
    }

    pub fn bearer(mut self, token: &str) -> Self {
        self.headers.push(("Authorization".into(), format!("Bearer {token}")));
        self
    }

    fn lua(&self) -> String {
        let mut script = format!("wrk.method = \"{}\"\n", self.method);
        if let Some(body) = &self.body {
            script.push_str(&format!("wrk.body = {body:?}\n"));
        }
        for (k, v) in &self.headers {
            script.push_str(&format!("wrk.headers[{k:?}] = {v:?}\n"));
        }
        if let Some((template, wrap)) = &self.body_template {
            let (before, after) = template.split_once("{n}").unwrap_or((template, ""));
            let next = if *wrap > 0 { format!("(counter % {wrap}) + 1") } else { "counter + 1".into() };
            script.push_str(&format!(
                "counter = 0\nrequest = function()\n  local n = {next}\n  counter = counter + 1\n  return wrk.format(nil, nil, nil, {before:?} .. n .. {after:?})\nend\n"
            ));
        }
        script
    }
}

/// Run wrk on `core` for `seconds` with `connections` connections.
pub fn wrk(req: &Request, core: usize, seconds: u64, connections: u32) -> anyhow::Result<Run> {
    let dir = tempfile::tempdir()?;
    let script = dir.path().join("request.lua");
    std::fs::write(&script, req.lua())?;
    let out = Command::new("taskset")
        .args(["-c", &core.to_string(), "wrk", "--latency", "-t1"])
        .arg(format!("-c{connections}"))
        .arg(format!("-d{seconds}s"))
        .arg("-s")
        .arg(&script)
        .arg(&req.url)
        .output()
        .context("cannot run wrk (install it with: apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!("wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    parse(&text)
}

fn millis(value: &str) -> Option<f64> {
    let (number, unit) = value.trim().split_at(value.trim().find(|c: char| c.is_ascii_alphabetic())?);
    let n: f64 = number.parse().ok()?;
    Some(match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => return None,
    })
}

/// Parse wrk's `--latency` report.
pub fn parse(text: &str) -> anyhow::Result<Run> {
    let mut run = Run::default();
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("Requests/sec:") {
            run.requests_per_sec = v.trim().parse().context("Requests/sec")?;
        } else if let Some(v) = line.strip_prefix("50%") {
            run.p50_ms = millis(v).unwrap_or(f64::NAN);
        } else if let Some(v) = line.strip_prefix("99%") {
            run.p99_ms = millis(v).unwrap_or(f64::NAN);
        } else if let Some((n, _)) = line.split_once(" requests in ") {
            run.requests = n.trim().parse().unwrap_or(0);
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            run.errors += v.trim().parse::<u64>().unwrap_or(0);
        } else if let Some(v) = line.strip_prefix("Socket errors:") {
            run.errors +=
                v.split(',').filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok()).sum::<u64>();
        }
    }
    if run.requests_per_sec == 0.0 {
        bail!("wrk reported no requests:\n{text}");
    }
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_wrk_latency_report() {
        let text = "Running 5s test @ http://127.0.0.1:1/x\n  1 threads and 32 connections\n  Latency Distribution\n     50%  180.00us\n     75%  250.00us\n     90%    1.20ms\n     99%    7.10ms\n  480000 requests in 5.00s, 60.00MB read\n  Non-2xx or 3xx responses: 3\nRequests/sec:  96000.50\nTransfer/sec:     12.00MB\n";
        let run = parse(text).unwrap();
        assert_eq!(run.requests_per_sec, 96000.5);
        assert!((run.p50_ms - 0.18).abs() < 1e-9);
        assert!((run.p99_ms - 7.1).abs() < 1e-9);
        assert_eq!(run.errors, 3);
        assert_eq!(run.requests, 480000);
    }
}
