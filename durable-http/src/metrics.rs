//! Request counters and latency histograms per route, in the Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// HTTP metrics of one router.
#[derive(Default)]
pub struct Metrics {
    /// (method, route, status) → requests.
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    /// (method, route) → latency histogram.
    latency: Mutex<BTreeMap<(String, String), Histogram>>,
}

impl Metrics {
    /// Record one request.
    pub fn record(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let key = (method.to_string(), route.to_string());
        *self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((key.0.clone(), key.1.clone(), status))
            .or_default() += 1;
        let mut lat = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        let h = lat.entry(key).or_default();
        let secs = elapsed.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }

    /// The HTTP metrics as Prometheus text.
    pub fn render(&self, out: &mut String) {
        out.push_str("# HELP durable_http_requests_total HTTP requests answered, by method, route and status.\n");
        out.push_str("# TYPE durable_http_requests_total counter\n");
        for ((m, r, s), n) in self.requests.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(
                out,
                "durable_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{s}\"}} {n}",
                escape(m),
                escape(r)
            );
        }
        out.push_str(
            "# HELP durable_http_request_duration_seconds Time to answer HTTP requests, by method and route.\n",
        );
        out.push_str("# TYPE durable_http_request_duration_seconds histogram\n");
        for ((m, r), h) in self.latency.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let labels = format!("method=\"{}\",route=\"{}\"", escape(m), escape(r));
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "durable_http_request_duration_seconds_bucket{{{labels},le=\"{b}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(out, "durable_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "durable_http_request_duration_seconds_sum{{{labels}}} {}", h.sum);
            let _ = writeln!(out, "durable_http_request_duration_seconds_count{{{labels}}} {}", h.count);
        }
    }
}

/// Escape a Prometheus label value.
pub fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
