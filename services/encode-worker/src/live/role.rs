//! A live stream's output on this worker: published as its primary, held as its standby, and
//! the takeover from one to the other.
//!
//! The primary claims each chunk (`hls/{stream}/parts/{seq}`, written only if absent), publishes
//! each part as the encoders make it, announces the whole segments once ingest stored the chunk
//! and marks the claim announced, reporting all of it to its standby. The standby holds its own
//! output ([`Shadow`]) until the primary's reports say it is published. Taking over, it claims
//! the chunks in flight and publishes from where the primary stopped; from then on it is the
//! primary.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use livecast_core::{Error, StreamId};
use livecast_media::{EncodedPart, EncodedRendition};
use livecast_proto::v1;
use tokio::sync::watch;

use super::chunk::{ChunkSink, ChunkStart};
use super::link::StandbyLink;
use super::shadow::{Shadow, WholeToAnnounce, part_digest};
use crate::metrics;
use crate::output::Output;

/// Chunk starts kept for their parts' program date times.
const KEPT_STARTS: usize = 8;

/// Where a live stream stands on this worker, for the owner of its durable chunks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Progress {
    /// Publishing (a primary, or a standby that took over).
    pub primary: bool,
    /// The newest chunk announced whole from here.
    pub announced: Option<u64>,
    /// The chunk being followed.
    pub following: Option<u64>,
    /// The stream stopped being encoded live here.
    pub ended: Option<Ended>,
}

/// Where live encoding stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ended {
    /// The chunk it was on.
    pub seq: u64,
    /// Whether the stream's transcoder had been given some of that chunk.
    pub touched_transcoder: bool,
}

struct RoleState {
    standing_by: bool,
    shadow: Shadow,
    starts: BTreeMap<u64, ChunkStart>,
    link: Option<StandbyLink>,
    /// A standby this primary lost touch with may have taken over: the claim is checked before
    /// every publication until a standby answers again.
    fencing: bool,
    /// The primary this standby took over from: its claims are taken, not respected.
    took_over_from: Option<String>,
}

impl RoleState {
    fn fenced(&mut self) -> bool {
        match &self.link {
            Some(link) if link.alive() => self.fencing = false,
            Some(_) => self.fencing = true,
            None => {}
        }
        self.fencing
    }
}

/// The output of one live stream on this worker.
pub(crate) struct LiveOutput {
    stream: StreamId,
    /// This worker, as claims name it.
    worker: String,
    output: Arc<Output>,
    state: Mutex<RoleState>,
    /// Publication happens in order under this lock: a takeover's held parts go out before the
    /// parts that come after them.
    publishing: tokio::sync::Mutex<()>,
    progress: watch::Sender<Progress>,
}

impl LiveOutput {
    /// The output of `stream`, as its primary or as a standby of `primary`.
    pub fn new(
        stream: StreamId,
        worker: String,
        output: Arc<Output>,
        standby_of: Option<String>,
    ) -> Self {
        let standing_by = standby_of.is_some();
        LiveOutput {
            stream,
            worker,
            output,
            state: Mutex::new(RoleState {
                standing_by,
                shadow: Shadow::default(),
                starts: BTreeMap::new(),
                link: None,
                fencing: false,
                took_over_from: standby_of,
            }),
            publishing: tokio::sync::Mutex::new(()),
            progress: watch::Sender::new(Progress {
                primary: !standing_by,
                ..Progress::default()
            }),
        }
    }

    /// Where the stream stands here, as it changes.
    pub fn progress(&self) -> watch::Receiver<Progress> {
        self.progress.subscribe()
    }

    /// Whether this worker publishes the stream.
    pub fn is_primary(&self) -> bool {
        !self.state().standing_by
    }

    /// The stream's standby link, if it needs a new one: `Err` when the standby took the stream
    /// over (this worker must stop), `Ok(true)` when there is none or it was lost.
    pub fn needs_standby(&self) -> Result<bool, Error> {
        let mut state = self.state();
        match &state.link {
            Some(link) if link.took_over() => Err(Error::conflict(format!(
                "the standby took stream {} over",
                self.stream
            ))),
            Some(link) if link.alive() => Ok(false),
            Some(_) => {
                state.link = None;
                state.fencing = true;
                Ok(true)
            }
            None => Ok(true),
        }
    }

    /// Reports to `link` from now on.
    pub fn set_standby(&self, link: StandbyLink) {
        self.state().link = Some(link);
    }

    /// The primary's report: it published a part, or announced a chunk.
    pub fn primary_published(&self, part: &v1::PublishedPart) {
        self.state()
            .shadow
            .primary_published(part.seq, &part.rendition, part.part, part.digest);
    }

    /// The primary announced chunk `seq` whole.
    pub fn primary_announced(&self, seq: u64) {
        self.state().shadow.primary_announced(seq);
    }

    /// Following chunk `seq` now.
    pub fn following(&self, seq: u64) {
        self.progress.send_modify(|p| p.following = Some(seq));
    }

    /// Live encoding stopped at chunk `seq`; the standby (if any) stops with it when `done`.
    pub fn ended(&self, seq: u64, touched_transcoder: bool, done: bool) {
        if let Some(link) = self.state().link.take() {
            link.finish(done);
        }
        self.progress.send_modify(|p| {
            p.following = None;
            p.ended = Some(Ended {
                seq,
                touched_transcoder,
            });
        });
    }

    /// The primary is gone: claims the chunks in flight and publishes from where it stopped.
    pub async fn take_over(&self) -> Result<(), Error> {
        let _order = self.publishing.lock().await;
        let in_flight = {
            let state = self.state();
            if !state.standing_by {
                return Ok(());
            }
            state.shadow.in_flight()
        };
        for seq in in_flight {
            // Announced by the primary, which did not get to say so.
            if self
                .output
                .claim(&self.stream, seq)
                .await?
                .is_some_and(|claim| claim.announced)
            {
                self.state().shadow.primary_announced(seq);
            } else {
                self.output
                    .take_claim(&self.stream, seq, &self.worker)
                    .await?;
            }
        }
        let (parts, wholes) = {
            let mut state = self.state();
            state.standing_by = false;
            state.shadow.take_over()
        };
        self.progress.send_modify(|p| p.primary = true);
        metrics::takeover();
        tracing::info!(stream_id = %self.stream, parts = parts.len(), "standby took the stream over");
        for (seq, part) in parts {
            self.publish_part(seq, part, false).await?;
        }
        for whole in wholes {
            self.announce(whole).await?;
        }
        Ok(())
    }

    async fn publish_part(&self, seq: u64, part: EncodedPart, fenced: bool) -> Result<(), Error> {
        if fenced {
            self.check_claim(seq).await?;
        }
        let start = self
            .state()
            .starts
            .get(&seq)
            .copied()
            .ok_or_else(|| Error::internal(format!("chunk {seq} has no start")))?;
        self.output.part(&self.stream, seq, &part, start).await?;
        if let Some(link) = &self.state().link {
            link.report_part(seq, &part.name, part.index, part_digest(&part.media));
        }
        Ok(())
    }

    async fn announce(&self, whole: WholeToAnnounce) -> Result<(), Error> {
        let seq = whole.stored.seq;
        // A standby that took over from this worker holds the claim now.
        self.check_claim(seq).await?;
        self.output
            .segments(&self.stream, &whole.stored, whole.renditions, "")
            .await?;
        self.output
            .gaps(&self.stream, &whole.stored, &whole.shed)
            .await?;
        self.output
            .mark_announced(&self.stream, seq, &self.worker)
            .await?;
        if let Some(link) = &self.state().link {
            link.report_announced(seq);
        }
        self.progress.send_modify(|p| p.announced = Some(seq));
        Ok(())
    }

    /// Whether this worker holds the claim on chunk `seq`: it does, or (a standby that took
    /// over) the primary it took over from does and had not announced the chunk, and the claim
    /// is taken. Otherwise another worker makes the chunk: a conflict.
    async fn check_claim(&self, seq: u64) -> Result<(), Error> {
        let took_over_from = {
            let state = self.state();
            state.took_over_from.clone().filter(|_| !state.standing_by)
        };
        match self.output.claim(&self.stream, seq).await? {
            Some(claim) if claim.worker == self.worker => Ok(()),
            Some(claim) if Some(&claim.worker) == took_over_from.as_ref() && !claim.announced => {
                self.output
                    .take_claim(&self.stream, seq, &self.worker)
                    .await
            }
            claim => Err(Error::conflict(format!(
                "chunk {seq} of stream {} is claimed by {:?}",
                self.stream,
                claim.map(|c| c.worker)
            ))),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, RoleState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait::async_trait]
impl ChunkSink for LiveOutput {
    async fn begin(&self, seq: u64, start: ChunkStart) -> Result<(), Error> {
        let primary = {
            let mut state = self.state();
            state.starts.insert(seq, start);
            while state.starts.len() > KEPT_STARTS {
                state.starts.pop_first();
            }
            if state.standing_by {
                state.shadow.begin(seq);
            }
            !state.standing_by
        };
        if !primary
            || self
                .output
                .claim_parts(&self.stream, seq, &self.worker)
                .await?
        {
            return Ok(());
        }
        // Claimed already: by this worker (at its takeover), or by the primary it took over
        // from, which began the chunk first.
        self.check_claim(seq).await
    }

    async fn part(&self, seq: u64, part: EncodedPart) -> Result<(), Error> {
        let _order = self.publishing.lock().await;
        let (parts, fenced) = {
            let mut state = self.state();
            let parts = if state.standing_by || state.shadow.taken_over() {
                state.shadow.own_part(seq, part)
            } else {
                vec![part]
            };
            (parts, state.fenced())
        };
        for part in parts {
            self.publish_part(seq, part, fenced).await?;
        }
        Ok(())
    }

    async fn whole(
        &self,
        stored: v1::SourceChunk,
        renditions: Vec<EncodedRendition>,
        shed: Vec<String>,
    ) -> Result<(), Error> {
        let _order = self.publishing.lock().await;
        let whole = {
            let mut state = self.state();
            if state.standing_by || state.shadow.taken_over() {
                state.shadow.own_whole(stored, renditions)
            } else {
                let renditions = renditions
                    .into_iter()
                    .map(|rendition| {
                        let parts = rendition.parts;
                        (rendition, parts)
                    })
                    .collect();
                Some(WholeToAnnounce {
                    stored,
                    renditions,
                    shed,
                })
            }
        };
        match whole {
            Some(whole) => self.announce(whole).await,
            None => Ok(()),
        }
    }
}
