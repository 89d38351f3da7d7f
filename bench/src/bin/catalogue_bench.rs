//! Catalogue list and get throughput and latency with 10,000 streams in the embedded store,
//! over real HTTP on 127.0.0.1. Bounded: a fixed number of seconds per scenario.

use std::sync::Arc;
use std::time::{Duration, Instant};

use livecast_bus::InProcessBus;
use livecast_catalogue::catalogue::NewStream;
use livecast_catalogue::{CatalogueService, PublicUrls};
use livecast_core::RegionName;
use livecast_metadata::MetadataConfig;
use livecast_service::{Secret, Shutdown};
use rand::Rng;

const STREAMS: usize = 10_000;
const CLIENTS: usize = 16;
const SECONDS: u64 = 10;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // tmpfs when there is one: the benchmark measures the service, not the disk's fsync.
    let parent = std::path::Path::new("/dev/shm");
    let dir = if parent.is_dir() {
        tempfile::tempdir_in(parent)?
    } else {
        tempfile::tempdir()?
    };
    let store = livecast_metadata::open(&MetadataConfig::Embedded {
        path: dir.path().join("bench.sqlite"),
    })
    .await?;
    let bus = Arc::new(InProcessBus::new());
    let service = CatalogueService::new(
        store,
        bus,
        RegionName::parse("bench")?,
        PublicUrls::default(),
        &Secret::new("bench"),
        4,
    )
    .await?;

    let filling = Instant::now();
    let mut ids = Vec::with_capacity(STREAMS);
    for n in 0..STREAMS {
        let (record, _) = service
            .catalogue
            .create(NewStream {
                name: format!("stream {n:05} {}", ["news", "sport", "music"][n % 3]),
                ..NewStream::default()
            })
            .await?;
        ids.push(record.id.to_string());
    }
    println!(
        "created {STREAMS} streams in {:.1} s",
        filling.elapsed().as_secs_f64()
    );

    let shutdown = Shutdown::new();
    let base = livecast_bench::serve_on_loopback(
        service.http_routes(),
        service.readiness(),
        shutdown.clone(),
    )
    .await?;

    let client = reqwest::Client::new();
    let ids = Arc::new(ids);
    let duration = Duration::from_secs(SECONDS);
    println!(
        "{CLIENTS} concurrent clients, {SECONDS} s per scenario, server and load on this machine"
    );

    let get = {
        let (client, base, ids) = (client.clone(), base.clone(), ids.clone());
        livecast_bench::closed_loop(CLIENTS, duration, move |_, _| {
            let id = ids[rand::rng().random_range(0..ids.len())].clone();
            let (client, base) = (client.clone(), base.clone());
            async move { ok(client.get(format!("{base}/v1/videos/{id}")).send().await) }
        })
        .await
    };
    println!("{}", get.line("GET /v1/videos/{id}"));

    let list = {
        let (client, base) = (client.clone(), base.clone());
        livecast_bench::closed_loop(CLIENTS, duration, move |_, n| {
            let (client, base) = (client.clone(), base.clone());
            let query = match n % 3 {
                0 => "limit=20",
                1 => "limit=20&sort=name",
                _ => "limit=20&q=sport",
            };
            async move { ok(client.get(format!("{base}/v1/videos?{query}")).send().await) }
        })
        .await
    };
    println!(
        "{}",
        list.line("GET /v1/videos (first page, 3 query shapes)")
    );
    shutdown.cancel();
    Ok(())
}

fn ok(response: reqwest::Result<reqwest::Response>) -> bool {
    response.is_ok_and(|r| r.status().is_success())
}
