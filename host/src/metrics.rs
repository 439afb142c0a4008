//! Process-wide counters behind `GET /metrics`, and the Prometheus text exposition they are
//! written in. Requests are counted per route *name* (the matched route template, never the raw
//! path, so cardinality stays bounded by the router), method and status; sign-ins per outcome.
//! Gauges read from elsewhere at scrape time (plugin stats, the hashing queue, storage) are
//! written by `api/metrics.rs` through the same [`Exposition`].

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the request latency histogram, in seconds: from a cached lookup (1 ms) to a
/// sign-in waiting for the hashing pool under a storm (10 s).
pub const LATENCY_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// One request series: a histogram of latencies.
#[derive(Debug, Default, Clone)]
struct Series {
    /// Requests at or under each bound of [`LATENCY_BUCKETS`] (not cumulative here).
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum_seconds: f64,
}

/// The counters. Cheap to share behind an `Arc`; each record takes one short lock.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<HashMap<(String, &'static str, u16), Series>>,
    logins: Mutex<BTreeMap<&'static str, u64>>,
    rate_limit_refusals: AtomicU64,
}

impl Metrics {
    /// Count a finished request of `route` (a route template such as `/api/users/{id}`).
    pub fn record_request(&self, method: &str, route: &str, status: u16, latency: Duration) {
        let method = known_method(method);
        let seconds = latency.as_secs_f64();
        let Ok(mut map) = self.requests.lock() else { return };
        let series = map.entry((route.to_owned(), method, status)).or_default();
        series.count += 1;
        series.sum_seconds += seconds;
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| seconds <= *b) {
            series.buckets[i] += 1;
        }
    }

    /// Count a sign-in outcome (a REMP login attempt status such as `ok` or `wrong_pass`).
    pub fn record_login(&self, status: &'static str, rate_limited: bool) {
        if let Ok(mut map) = self.logins.lock() {
            *map.entry(status).or_default() += 1;
        }
        if rate_limited {
            self.rate_limit_refusals.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Write the counters held here.
    pub fn write(&self, out: &mut Exposition) {
        let requests: Vec<((String, &'static str, u16), Series)> = match self.requests.lock() {
            Ok(map) => map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            Err(_) => Vec::new(),
        };
        let mut requests = requests;
        requests.sort_by(|a, b| a.0.cmp(&b.0));
        out.header("crm_users_http_requests_total", "counter", "HTTP requests by route, method and status.");
        for ((route, method, status), s) in &requests {
            let status = status.to_string();
            out.sample(
                "crm_users_http_requests_total",
                &[("route", route), ("method", method), ("status", &status)],
                s.count as f64,
            );
        }
        out.header(
            "crm_users_http_request_duration_seconds",
            "histogram",
            "HTTP request latency by route, method and status, from the first byte read to the response head.",
        );
        for ((route, method, status), s) in &requests {
            let status = status.to_string();
            let mut cumulative = 0;
            for (bound, n) in LATENCY_BUCKETS.iter().zip(s.buckets) {
                cumulative += n;
                let le = bound.to_string();
                out.sample(
                    "crm_users_http_request_duration_seconds_bucket",
                    &[("route", route), ("method", method), ("status", &status), ("le", &le)],
                    cumulative as f64,
                );
            }
            let labels = [("route", route.as_str()), ("method", method), ("status", status.as_str())];
            out.sample(
                "crm_users_http_request_duration_seconds_bucket",
                &[labels[0], labels[1], labels[2], ("le", "+Inf")],
                s.count as f64,
            );
            out.sample("crm_users_http_request_duration_seconds_sum", &labels, s.sum_seconds);
            out.sample("crm_users_http_request_duration_seconds_count", &labels, s.count as f64);
        }
        out.header("crm_users_logins_total", "counter", "Sign-in attempts by outcome (REMP login attempt status).");
        if let Ok(map) = self.logins.lock() {
            for (status, n) in map.iter() {
                out.sample("crm_users_logins_total", &[("status", status)], *n as f64);
            }
        }
        out.header(
            "crm_users_rate_limit_refusals_total",
            "counter",
            "Sign-ins refused by the brute-force limits (per IP, per account, per hour).",
        );
        out.sample("crm_users_rate_limit_refusals_total", &[], self.rate_limit_refusals.load(Ordering::Relaxed) as f64);
    }
}

/// Methods by name, so a client inventing methods cannot add series.
fn known_method(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

/// A Prometheus text format (version 0.0.4) document being written.
#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
}

impl Exposition {
    /// `# HELP` and `# TYPE` of a metric family.
    pub fn header(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    /// One sample; label values are escaped as the format requires.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{k}=\"");
                for c in v.chars() {
                    match c {
                        '\\' => self.text.push_str("\\\\"),
                        '"' => self.text.push_str("\\\""),
                        '\n' => self.text.push_str("\\n"),
                        c => self.text.push(c),
                    }
                }
                self.text.push('"');
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }

    pub fn finish(self) -> String {
        self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_end_with_the_count() {
        let m = Metrics::default();
        m.record_request("GET", "/api/users/{id}", 200, Duration::from_millis(3));
        m.record_request("GET", "/api/users/{id}", 200, Duration::from_millis(700));
        m.record_request("BREW", "/api/users/{id}", 404, Duration::from_secs(30));
        let mut out = Exposition::default();
        m.write(&mut out);
        let text = out.finish();
        let line = |prefix: &str| {
            text.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix} in\n{text}")).to_owned()
        };
        let labels = r#"route="/api/users/{id}",method="GET",status="200""#;
        assert!(
            line(&format!("crm_users_http_request_duration_seconds_bucket{{{labels},le=\"0.001\"}}")).ends_with(" 0")
        );
        assert!(
            line(&format!("crm_users_http_request_duration_seconds_bucket{{{labels},le=\"0.005\"}}")).ends_with(" 1")
        );
        assert!(line(&format!("crm_users_http_request_duration_seconds_bucket{{{labels},le=\"1\"}}")).ends_with(" 2"));
        assert!(line(&format!("crm_users_http_request_duration_seconds_count{{{labels}}}")).ends_with(" 2"));
        // Slower than every bound: only in +Inf; an unknown method is folded into `other`.
        let other = r#"route="/api/users/{id}",method="other",status="404""#;
        assert!(line(&format!("crm_users_http_request_duration_seconds_bucket{{{other},le=\"10\"}}")).ends_with(" 0"));
        assert!(
            line(&format!("crm_users_http_request_duration_seconds_bucket{{{other},le=\"+Inf\"}}")).ends_with(" 1")
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let mut out = Exposition::default();
        out.sample("x", &[("plugin", "a\"b\\c\nd")], 1.0);
        assert_eq!(out.finish(), "x{plugin=\"a\\\"b\\\\c\\nd\"} 1\n");
    }
}
