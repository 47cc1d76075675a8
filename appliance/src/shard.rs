//! One virtual shard as its owner executor serves it: stages changes, runs group
//! commit (one flush in flight, the next batch gathering behind it), wakes each waiter
//! once its change is durable, and checkpoints the index in the background queue.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::{TaskQueueHandle, executor};
use treehouse_core::store::{FlushOutcome, Health, Op, Shard, ShardConfig, StoreError};

use crate::segments::{self, DmaSegments, SegmentFiles};

/// Why a change was not made durable; the upstream MTA or client should retry later.
#[derive(Debug, Clone)]
pub struct TempFail {
    /// Basic reply code: 451 (local error) or 452 (insufficient storage / queue full).
    pub code: u16,
    /// Enhanced status code, e.g. "4.3.0".
    pub enhanced: &'static str,
    /// Human text naming the shard and what happened.
    pub text: String,
}

/// The result of one durable change.
pub type Outcome = Result<(), TempFail>;

/// Limits that bound a shard's waiting and queueing.
#[derive(Debug, Clone, Copy)]
pub struct ShardLimits {
    /// How long a change may wait for durability before it gets a tempfail.
    pub durable_wait: Duration,
    /// Changes staged but not yet durable before new ones are refused.
    pub queue_depth_max: usize,
    /// Records applied since the last checkpoint that trigger a new one.
    pub checkpoint_every_records: u64,
}

/// A shard owned by this executor.
pub struct OwnedShard {
    id: u32,
    dir: PathBuf,
    shard: RefCell<Shard>,
    limits: ShardLimits,
    waiters: RefCell<BTreeMap<u64, LocalSender<Outcome>>>,
    kick: LocalSender<()>,
    checkpointing: Cell<bool>,
    background: TaskQueueHandle,
}

impl OwnedShard {
    /// Recovers shard `id` from `dir` and starts its flusher in `delivery`.
    pub async fn open(
        id: u32,
        dir: &Path,
        cfg: ShardConfig,
        limits: ShardLimits,
        delivery: TaskQueueHandle,
        background: TaskQueueHandle,
    ) -> Result<Rc<OwnedShard>, String> {
        let shard = recover(id, dir, cfg)?;
        let segments = DmaSegments::open(dir, cfg.segment_size_bytes)
            .await
            .map_err(|e| format!("shard {id} in {}: cannot open segments: {e}", dir.display()))?;
        let (kick, kicked) = local_channel::new_bounded(1);
        let owned = Rc::new(OwnedShard {
            id,
            dir: dir.to_path_buf(),
            shard: RefCell::new(shard),
            limits,
            waiters: RefCell::new(BTreeMap::new()),
            kick,
            checkpointing: Cell::new(false),
            background,
        });
        glommio::spawn_local_into(run_flusher(owned.clone(), segments, kicked), delivery)
            .map_err(|e| format!("shard {id}: cannot start its flusher: {e}"))?
            .detach();
        Ok(owned)
    }

    /// Stages `op` and waits, at most `durable_wait`, until it is on stable storage.
    pub async fn apply(&self, op: Op) -> Outcome {
        if self.waiters.borrow().len() >= self.limits.queue_depth_max {
            return Err(self.fail(452, "4.3.1", "has too many deliveries waiting for the disk"));
        }
        let staged = self.shard.borrow_mut().stage(op);
        let staged =
            staged.map_err(|e| self.fail(451, "4.3.0", &format!("refused the change: {e}")))?;
        let (done, wait) = local_channel::new_bounded(1);
        self.waiters.borrow_mut().insert(staged.ticket, done);
        let _ = self.kick.try_send(());
        let waited =
            glommio::timer::timeout(self.limits.durable_wait, async { Ok(wait.recv().await) })
                .await;
        match waited {
            Ok(Some(outcome)) => outcome,
            Ok(None) => Err(self.fail(451, "4.3.0", "stopped before the change was durable")),
            Err(_) => {
                self.waiters.borrow_mut().remove(&staged.ticket);
                Err(self.fail(
                    451,
                    "4.3.0",
                    &format!(
                        "did not make the change durable within {} ms",
                        self.limits.durable_wait.as_millis()
                    ),
                ))
            }
        }
    }

    fn fail(&self, code: u16, enhanced: &'static str, what: &str) -> TempFail {
        TempFail {
            code,
            enhanced,
            text: format!("shard {} {what}; try again later", self.id),
        }
    }

    /// Wakes every waiter the flush outcome settles.
    fn settle(&self, outcome: FlushOutcome) {
        let (through, result) = match outcome {
            FlushOutcome::Durable { through_ticket } => (through_ticket, Ok(())),
            FlushOutcome::Failed {
                through_ticket,
                error,
            } => {
                let (code, enhanced) = match error {
                    StoreError::NoSpace => (452, "4.3.1"),
                    _ => (451, "4.3.0"),
                };
                let health = self.shard.borrow().health();
                if let Health::ReadOnly { reason } = health {
                    eprintln!(
                        "treehouse: shard {} in {} is read-only: {reason}",
                        self.id,
                        self.dir.display()
                    );
                }
                (
                    through_ticket,
                    Err(self.fail(code, enhanced, &format!("could not write: {error}"))),
                )
            }
        };
        let mut waiters = self.waiters.borrow_mut();
        let later = waiters.split_off(&(through + 1));
        for (_, done) in std::mem::replace(&mut *waiters, later) {
            let _ = done.try_send(result.clone());
        }
    }

    /// Starts a checkpoint in the background queue once enough records have accumulated.
    fn maybe_checkpoint(self: &Rc<Self>) {
        let due =
            self.shard.borrow().records_since_checkpoint() >= self.limits.checkpoint_every_records;
        if !due || self.checkpointing.replace(true) {
            return;
        }
        let bytes = self.shard.borrow().checkpoint();
        let owned = self.clone();
        let task = glommio::spawn_local_into(
            async move {
                let dir = owned.dir.clone();
                let written = executor()
                    .spawn_blocking(move || segments::write_checkpoint(&dir, &bytes))
                    .await;
                if let Err(e) = written {
                    eprintln!("treehouse: shard {}: checkpoint not written: {e}", owned.id);
                }
                owned.checkpointing.set(false);
            },
            self.background,
        );
        match task {
            Ok(task) => {
                task.detach();
            }
            Err(e) => {
                eprintln!(
                    "treehouse: shard {}: cannot schedule a checkpoint: {e}",
                    self.id
                );
                self.checkpointing.set(false);
            }
        };
    }
}

/// Rebuilds a shard's index from its checkpoint and log (blocking; runs before serving).
fn recover(id: u32, dir: &Path, cfg: ShardConfig) -> Result<Shard, String> {
    let place = || format!("shard {id} in {}", dir.display());
    let mut disk = SegmentFiles::open(dir, cfg.segment_size_bytes)
        .map_err(|e| format!("{}: cannot open segments: {e}", place()))?;
    let checkpoint = segments::read_checkpoint(dir)
        .map_err(|e| format!("{}: cannot read checkpoint: {e}", place()))?;
    let (shard, _report) = Shard::open(&mut disk, checkpoint.as_deref(), cfg).map_err(|e| {
        format!(
            "{}: recovery failed: {e}; run `treehouse fsck` and restore the shard",
            place()
        )
    })?;
    Ok(shard)
}

/// Group commit: each wake-up drains every batch that has gathered.
async fn run_flusher(owned: Rc<OwnedShard>, mut segments: DmaSegments, kicked: LocalReceiver<()>) {
    while kicked.recv().await.is_some() {
        loop {
            let job = owned.shard.borrow_mut().begin_flush();
            let Some(job) = job else { break };
            let written = match segments.ensure_len(job.ensure_len).await {
                Ok(()) => segments.write_durable(job.offset, &job.bytes).await,
                Err(e) => Err(e),
            };
            let outcome = owned.shard.borrow_mut().finish_flush(written);
            owned.settle(outcome);
            owned.maybe_checkpoint();
        }
    }
}
