//! The lease between a live stream's primary and its standby: one gRPC call (`Standby.Shadow`)
//! from the primary, reports one way and heartbeats both ways. The primary's side is a
//! [`StandbyLink`]; the standby's side is [`StandbyService`], which starts the stream's standby
//! encoder and takes over when the primary's reports stop for a lease.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::Stream;
use livecast_core::StreamId;
use livecast_proto::v1;
use livecast_proto::v1::standby_client::StandbyClient;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic::{Request, Response, Status, Streaming};

use super::LiveStreams;

/// Reports a primary may have queued for a standby that does not read them: past this the
/// link counts as lost.
const QUEUED_REPORTS: usize = 1_024;

/// The primary's side of the lease: reports to the standby, hears whether it is there.
pub(crate) struct StandbyLink {
    reports: mpsc::Sender<v1::PrimaryReport>,
    heard: Arc<Mutex<Instant>>,
    took_over: Arc<AtomicBool>,
    lease: Duration,
    call: JoinHandle<()>,
    heartbeat: JoinHandle<()>,
}

impl StandbyLink {
    /// Asks the standby at `channel` to shadow the stream as `start` says.
    pub fn open(channel: Channel, start: v1::ShadowRequest) -> Self {
        let lease = Duration::from_millis(u64::from(start.lease_ms));
        let (reports, queued) = mpsc::channel(QUEUED_REPORTS);
        let first = v1::PrimaryReport {
            start: Some(start),
            ..Default::default()
        };
        // Cannot fail: the channel is new.
        let _ = reports.try_send(first);
        let heard = Arc::new(Mutex::new(Instant::now()));
        let took_over = Arc::new(AtomicBool::new(false));
        let call = tokio::spawn(call(channel, queued, heard.clone(), took_over.clone()));
        let heartbeat = {
            let reports = reports.clone();
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval(lease / 3);
                loop {
                    ticks.tick().await;
                    if reports.send(v1::PrimaryReport::default()).await.is_err() {
                        return;
                    }
                }
            })
        };
        StandbyLink {
            reports,
            heard,
            took_over,
            lease,
            call,
            heartbeat,
        }
    }

    /// Whether the standby answered within the lease.
    pub fn alive(&self) -> bool {
        !self.call.is_finished()
            && self
                .heard
                .lock()
                .map(|at| at.elapsed() < self.lease)
                .unwrap_or(false)
    }

    /// Whether the standby said it took the stream over.
    pub fn took_over(&self) -> bool {
        self.took_over.load(Ordering::Acquire)
    }

    /// The primary published a part.
    pub fn report_part(&self, seq: u64, rendition: &str, part: u32, digest: u64) {
        self.report(v1::PrimaryReport {
            parts: vec![v1::PublishedPart {
                seq,
                rendition: rendition.to_string(),
                part,
                digest,
            }],
            ..Default::default()
        });
    }

    /// The primary announced chunk `seq` whole.
    pub fn report_announced(&self, seq: u64) {
        self.report(v1::PrimaryReport {
            announced: vec![seq],
            ..Default::default()
        });
    }

    /// Ends the link; `done`: the stream stops being encoded live, so the standby stops too
    /// (otherwise it takes over).
    pub fn finish(self, done: bool) {
        if done {
            self.report(v1::PrimaryReport {
                done: true,
                ..Default::default()
            });
        }
        // The call ends once the last report is sent: the request stream closes with the link.
    }

    fn report(&self, report: v1::PrimaryReport) {
        if self.reports.try_send(report).is_err() {
            // The standby stopped reading: it will take over or is gone; either way this link
            // no longer holds the lease.
            self.call.abort();
        }
    }
}

impl Drop for StandbyLink {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

async fn call(
    channel: Channel,
    queued: mpsc::Receiver<v1::PrimaryReport>,
    heard: Arc<Mutex<Instant>>,
    took_over: Arc<AtomicBool>,
) {
    let reports = receiver_stream(queued);
    let mut client = StandbyClient::new(channel);
    let Ok(answers) = client.shadow(reports).await else {
        return;
    };
    let mut answers = answers.into_inner();
    while let Ok(Some(answer)) = answers.message().await {
        if let Ok(mut at) = heard.lock() {
            *at = Instant::now();
        }
        if answer.took_over {
            took_over.store(true, Ordering::Release);
        }
    }
}

/// What `receiver` gets, as a stream that ends when every sender is gone.
fn receiver_stream<T: Send + 'static>(
    receiver: mpsc::Receiver<T>,
) -> impl Stream<Item = T> + Send + 'static {
    futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    })
}

type Answers = Pin<Box<dyn Stream<Item = Result<v1::StandbyReport, Status>> + Send>>;

/// The standby's side: the gRPC `Standby` service of this worker.
#[derive(Clone)]
pub(crate) struct StandbyService {
    live: Arc<LiveStreams>,
}

impl StandbyService {
    pub fn new(live: Arc<LiveStreams>) -> Self {
        StandbyService { live }
    }
}

#[tonic::async_trait]
impl v1::standby_server::Standby for StandbyService {
    type ShadowStream = Answers;

    async fn shadow(
        &self,
        request: Request<Streaming<v1::PrimaryReport>>,
    ) -> Result<Response<Answers>, Status> {
        let mut reports = request.into_inner();
        let start = reports
            .message()
            .await?
            .and_then(|first| first.start)
            .ok_or_else(|| Status::invalid_argument("the first report must name the stream"))?;
        let stream = StreamId::parse(start.stream_id.clone())
            .map_err(|e| Status::invalid_argument(e.message))?;
        let lease = Duration::from_millis(u64::from(start.lease_ms.clamp(100, 10_000)));
        let standby = self
            .live
            .stand_by(&start)
            .map_err(|e| Status::failed_precondition(e.message))?;
        let (answers, answered) = mpsc::channel::<Result<v1::StandbyReport, Status>>(16);
        let live = self.live.clone();
        tokio::spawn(async move {
            let mut heartbeats = tokio::time::interval(lease / 3);
            let mut progress = standby.progress();
            let mut last_report = tokio::time::Instant::now();
            let takeover = loop {
                tokio::select! {
                    report = reports.message() => match report {
                        Ok(Some(report)) => {
                            last_report = tokio::time::Instant::now();
                            for part in &report.parts {
                                standby.primary_published(part);
                            }
                            for seq in &report.announced {
                                standby.primary_announced(*seq);
                            }
                            if report.done {
                                break false;
                            }
                        }
                        // The call broke or the primary closed it without being done.
                        _ => break true,
                    },
                    () = tokio::time::sleep_until(last_report + lease) => break true,
                    // This standby's own encoding ended (its feed did): nothing to take over.
                    Ok(()) = progress.changed() => {
                        if progress.borrow_and_update().ended.is_some() {
                            break false;
                        }
                    }
                    _ = heartbeats.tick() => {
                        let following = progress.borrow_and_update().following.unwrap_or(0);
                        let report = v1::StandbyReport { following, took_over: false };
                        if answers.try_send(Ok(report)).is_err() && answers.is_closed() {
                            break true;
                        }
                    }
                }
            };
            live.standby_ended(&stream, &standby, takeover).await;
            if takeover {
                let report = v1::StandbyReport {
                    following: 0,
                    took_over: true,
                };
                let _ = answers.try_send(Ok(report));
            }
        });
        Ok(Response::new(Box::pin(receiver_stream(answered))))
    }
}
