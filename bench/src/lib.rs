//! Shared pieces of the benchmarks: a bounded closed-loop load generator and latency summaries.
#![forbid(unsafe_code)]

use std::future::Future;
use std::time::{Duration, Instant};

/// What a load run measured.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// Requests completed.
    pub requests: usize,
    /// Requests that failed (transport error or non-2xx).
    pub errors: usize,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Median latency.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
}

impl LoadReport {
    /// Completed requests per second.
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// One line for the console and RESULTS.md.
    pub fn line(&self, name: &str) -> String {
        format!(
            "{name}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {} requests, {} errors",
            self.per_second(),
            self.p50.as_secs_f64() * 1e3,
            self.p99.as_secs_f64() * 1e3,
            self.requests,
            self.errors
        )
    }
}

/// Runs `clients` concurrent closed loops of `request` for `duration` (bounded in time, stops
/// by itself). `request(client, n)` returns whether the request succeeded.
pub async fn closed_loop<F, Fut>(clients: usize, duration: Duration, request: F) -> LoadReport
where
    F: Fn(usize, u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = bool> + Send,
{
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for client in 0..clients {
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0usize;
            let mut n = 0u64;
            while Instant::now() < deadline {
                let sent = Instant::now();
                if !request(client, n).await {
                    errors += 1;
                }
                latencies.push(sent.elapsed());
                n += 1;
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (mut l, e) = task.await.expect("load task");
        latencies.append(&mut l);
        errors += e;
    }
    let elapsed = start.elapsed();
    latencies.sort();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or_default()
    };
    LoadReport {
        requests: latencies.len(),
        errors,
        elapsed,
        p50: at(0.50),
        p99: at(0.99),
    }
}

/// Resident set size of this process in KiB (0 where `/proc` is not available).
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Serves `routes` (with the probes and `/metrics`) on a free port of 127.0.0.1 until
/// `shutdown`, as the service binaries do; returns its base URL.
pub async fn serve_on_loopback(
    routes: axum::Router,
    readiness: livecast_service::Readiness,
    shutdown: livecast_service::Shutdown,
) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        let config = livecast_service::config::HttpConfig::default();
        livecast_service::http::serve_service(listener, routes, readiness, &config, shutdown).await
    });
    Ok(base)
}
