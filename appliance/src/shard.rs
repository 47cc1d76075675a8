//! One virtual shard as its owner executor serves it: stages changes, runs group
//! commit (one flush in flight, the next batch gathering behind it), wakes each waiter
//! once its change is durable, and checkpoints the index in the background queue.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::{TaskQueueHandle, executor};
use treehouse_core::store::{
    Batch, BodyLocation, CheckpointSnapshot, FlushOutcome, Health, Op, Shard, ShardConfig,
    StoreError, Uid,
};

use crate::body_cache::{BodyCache, BodyKey};
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
    /// Records applied since the last checkpoint that trigger a new one (at least; see
    /// [`CHECKPOINT_TAIL_SHARE`]).
    pub checkpoint_every_records: u64,
}

/// A checkpoint encodes the whole index, so it also waits until the log since the last
/// one holds at least 1/this as many records as the index holds messages. Encoding then
/// costs at most this many message encodings per record however large the index grows,
/// and a start replays at most that share of the index's size in records.
pub const CHECKPOINT_TAIL_SHARE: u64 = 4;

/// Records after the last checkpoint at which the next one is due.
fn checkpoint_due_after(every_records: u64, indexed_messages: u64) -> u64 {
    every_records.max(indexed_messages / CHECKPOINT_TAIL_SHARE)
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
    reader: RefCell<SegmentFiles>,
    cache: Rc<BodyCache>,
    watchers: RefCell<Vec<LocalSender<()>>>,
}

impl OwnedShard {
    /// Recovers shard `id` from `dir` and starts its flusher in `delivery`; its bodies
    /// are cached in the executor's `cache`.
    pub async fn open(
        id: u32,
        dir: &Path,
        cfg: ShardConfig,
        limits: ShardLimits,
        (delivery, background): (TaskQueueHandle, TaskQueueHandle),
        cache: Rc<BodyCache>,
    ) -> Result<Rc<OwnedShard>, String> {
        let shard = recover(id, dir, cfg)?;
        let reader = SegmentFiles::open(dir, cfg.segment_size_bytes)
            .map_err(|e| format!("shard {id} in {}: cannot open segments: {e}", dir.display()))?;
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
            reader: RefCell::new(reader),
            cache,
            watchers: RefCell::new(Vec::new()),
        });
        glommio::spawn_local_into(run_flusher(owned.clone(), segments, kicked), delivery)
            .map_err(|e| format!("shard {id}: cannot start its flusher: {e}"))?
            .detach();
        Ok(owned)
    }

    /// Stages `op` and waits, at most `durable_wait`, until it is on stable storage.
    pub async fn apply(&self, op: Op) -> Outcome {
        let mut outcomes = self.apply_many(vec![op]).await;
        outcomes.pop().unwrap_or(Ok(None)).map(|_| ())
    }

    /// Stages every op in order and waits once for the last: durability follows ticket
    /// order, so one wait covers the whole group. A refused op fails alone. Each result
    /// carries the UID an append was given.
    pub async fn apply_many(&self, ops: Vec<Op>) -> Vec<Result<Option<Uid>, TempFail>> {
        if self.waiters.borrow().len() >= self.limits.queue_depth_max {
            let busy = self.fail(452, "4.3.1", "has too many changes waiting for the disk");
            return ops.iter().map(|_| Err(busy.clone())).collect();
        }
        let mut staged = Vec::with_capacity(ops.len());
        let mut last_ticket = None;
        for op in ops {
            let result = self.shard.borrow_mut().stage(op);
            staged.push(match result {
                Ok(s) => {
                    last_ticket = Some(s.ticket);
                    Ok(s.uid)
                }
                Err(e) => Err(self.fail(451, "4.3.0", &format!("refused the change: {e}"))),
            });
        }
        let Some(ticket) = last_ticket else {
            return staged;
        };
        let waited = self.wait_durable(ticket).await;
        staged.into_iter().map(|s| waited.clone().and(s)).collect()
    }

    async fn wait_durable(&self, ticket: u64) -> Outcome {
        let (done, wait) = local_channel::new_bounded(1);
        self.waiters.borrow_mut().insert(ticket, done);
        let _ = self.kick.try_send(());
        let waited =
            glommio::timer::timeout(self.limits.durable_wait, async { Ok(wait.recv().await) })
                .await;
        match waited {
            Ok(Some(outcome)) => outcome,
            Ok(None) => Err(self.fail(451, "4.3.0", "stopped before the change was durable")),
            Err(_) => {
                self.waiters.borrow_mut().remove(&ticket);
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

    /// A channel that gets a wake-up after each durable change to this shard.
    pub fn watch(&self) -> LocalReceiver<()> {
        let (wake, woken) = local_channel::new_bounded(1);
        self.watchers.borrow_mut().push(wake);
        woken
    }

    /// The shard's durable state, borrowed for reading.
    pub fn state(&self) -> std::cell::Ref<'_, Shard> {
        self.shard.borrow()
    }

    /// Reads a message body from the log (a blocking O_DIRECT read on this executor).
    pub fn read_body(&self, account: &str, mailbox: &str, uid: Uid) -> Result<Vec<u8>, StoreError> {
        let key = self.body_key(account, mailbox, uid);
        if let Some(body) = key.and_then(|k| self.cache.get(k, 0..u64::MAX)) {
            return Ok(body);
        }
        let body =
            self.read_with(|shard, reader| shard.read_body(reader, account, mailbox, uid))?;
        if let Some(key) = key {
            self.cache.insert(key, &body);
        }
        Ok(body)
    }

    /// Where the cache keeps a message's body; None for a message not in the index.
    fn body_key(&self, account: &str, mailbox: &str, uid: Uid) -> Option<BodyKey> {
        let shard = self.shard.borrow();
        let message = shard.mailbox(account, mailbox)?.messages.get(&uid)?;
        Some((self.id, message.location.offset))
    }

    /// Keeps the bodies a durable flush wrote, for the clients that fetch new mail. A
    /// body with a buffer of its own in the batch is kept as that buffer; a small one
    /// is copied out of the buffer it shares with the batch's records.
    fn cache_written(&self, batch: Batch, batch_offset: u64, bodies: &[BodyLocation]) {
        // Bodies lie in the batch in order, so one walk over its buffers finds them all.
        let mut parts = batch.into_parts().peekable();
        for body in bodies {
            let len = body.len_bytes as usize;
            if len == 0 || len > self.cache.entry_max_bytes() {
                continue;
            }
            let within = body.offset - batch_offset;
            while parts
                .next_if(|(start, bytes)| start + bytes.len() as u64 <= within)
                .is_some()
            {}
            let Some((start, bytes)) = parts.peek_mut() else {
                break;
            };
            let key = (self.id, body.offset);
            let from = (within - *start) as usize;
            if from == 0 && bytes.len() == len {
                self.cache.insert_owned(key, std::mem::take(bytes));
            } else if let Some(body) = bytes.get(from..from + len) {
                self.cache.insert(key, body);
            }
        }
    }

    /// Reads `len` bytes of one message from byte `from` on, only the blocks that hold them.
    pub fn read_body_range(
        &self,
        account: &str,
        mailbox: &str,
        uid: Uid,
        from: u64,
        len: u64,
    ) -> Result<Vec<u8>, StoreError> {
        if let Some(body) = self
            .body_key(account, mailbox, uid)
            .and_then(|k| self.cache.get(k, from..from.saturating_add(len)))
        {
            return Ok(body);
        }
        self.read_with(|shard, reader| {
            shard.read_body_range(reader, account, mailbox, uid, from, len)
        })
    }

    fn read_with<T>(
        &self,
        read: impl Fn(&Shard, &mut SegmentFiles) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut reader = self.reader.borrow_mut();
        let shard = self.shard.borrow();
        match read(&shard, &mut reader) {
            Ok(found) => Ok(found),
            // The body may sit in a segment created since the reader last looked.
            Err(_) => {
                reader.refresh().map_err(|e| StoreError::Io {
                    detail: e.to_string(),
                })?;
                read(&shard, &mut reader)
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
        if result.is_ok() {
            // Sessions watching the shard (IMAP IDLE) look for what changed.
            self.watchers.borrow_mut().retain(|w| match w.try_send(()) {
                Ok(()) => true,
                // A wake-up is already pending.
                Err(glommio::GlommioError::WouldBlock(_)) => true,
                // The session is gone.
                Err(_) => false,
            });
        }
        let mut waiters = self.waiters.borrow_mut();
        let later = waiters.split_off(&(through + 1));
        for (_, done) in std::mem::replace(&mut *waiters, later) {
            let _ = done.try_send(result.clone());
        }
    }

    /// Waits (at most `durable_wait`) for staged changes to settle, then writes the
    /// checkpoint, so that the next start replays no log.
    pub async fn checkpoint_now(&self) {
        let deadline = std::time::Instant::now() + self.limits.durable_wait;
        while !self.waiters.borrow().is_empty() && std::time::Instant::now() < deadline {
            glommio::timer::sleep(Duration::from_millis(1)).await;
        }
        let snapshot = self.shard.borrow().checkpoint_snapshot();
        let dir = self.dir.clone();
        let written = executor()
            .spawn_blocking(move || segments::write_checkpoint(&dir, &snapshot.encode()))
            .await;
        if let Err(e) = written {
            eprintln!(
                "treehouse: shard {}: checkpoint not written at stop: {e}",
                self.id
            );
        }
    }

    /// Creates the next segment in the background queue when the log nears its end,
    /// and zero-fills ahead of the log end after a small flush (`flushed`: the offset
    /// and length of a batch just made durable).
    fn prepare_ahead(&self, segments: &DmaSegments, flushed: Option<(u64, u64)>) {
        let log_end = self.shard.borrow().log_end_offset();
        let zero = flushed.and_then(|(offset, len)| segments.zero_ahead(offset + len, len));
        if let Some(task) = segments.prepare_ahead(log_end) {
            self.spawn_background(task);
        }
        if let Some(task) = zero {
            self.spawn_background(task);
        }
    }

    fn spawn_background(&self, task: impl Future<Output = ()> + 'static) {
        if let Ok(task) = glommio::spawn_local_into(task, self.background) {
            task.detach();
        }
    }

    /// Starts a checkpoint in the background queue once enough records have accumulated:
    /// `checkpoint_every_records`, and a share of the index's size.
    fn maybe_checkpoint(self: &Rc<Self>) {
        let (since, messages) = {
            let shard = self.shard.borrow();
            (shard.records_since_checkpoint(), shard.indexed_messages())
        };
        let due = checkpoint_due_after(self.limits.checkpoint_every_records, messages);
        if since < due || self.checkpointing.replace(true) {
            return;
        }
        // The snapshot is taken here, in constant time; another thread encodes and
        // writes it while this executor goes on serving.
        let snapshot = self.shard.borrow().checkpoint_snapshot();
        let owned = self.clone();
        let task = glommio::spawn_local_into(
            async move {
                let written = write_checkpoint_at_low_priority(owned.dir.clone(), snapshot).await;
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

/// Held while a checkpoint is encoded: shards reach their limit together, and one
/// encoding at a time leaves the executors more of the CPUs and caches.
static ENCODING: Mutex<()> = Mutex::new(());

/// How often a shard looks whether its checkpoint thread has finished.
const CHECKPOINT_POLL: Duration = Duration::from_millis(10);

/// Encodes and writes a checkpoint on a thread of its own at the lowest CPU priority
/// (nice 19), so that encoding a large index uses the CPU time that the executors
/// leave, rather than sharing a core with them while they have deliveries to serve.
/// Waits for it without taking the executor's blocking pool, which logins use: a slow
/// disk's checkpoint write must not hold up password checks.
async fn write_checkpoint_at_low_priority(
    dir: PathBuf,
    snapshot: CheckpointSnapshot,
) -> std::io::Result<()> {
    let thread = std::thread::Builder::new()
        .name("th-checkpoint".into())
        .spawn(move || {
            // SAFETY: setpriority takes plain integers; `who` 0 is the calling thread
            // (Linux keeps a nice value per thread), and raising it needs no privilege.
            // If it fails, the checkpoint is written at normal priority.
            let _ = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 19) };
            let bytes = {
                let _one_at_a_time = ENCODING.lock().unwrap_or_else(PoisonError::into_inner);
                snapshot.encode()
            };
            // Written outside the lock: a slow disk delays only its own shard's checkpoint.
            drop(snapshot);
            segments::write_checkpoint(&dir, &bytes)
        })?;
    while !thread.is_finished() {
        glommio::timer::sleep(CHECKPOINT_POLL).await;
    }
    thread
        .join()
        .map_err(|_| std::io::Error::other("the checkpoint thread panicked"))?
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
                Ok(()) => segments.write_durable(job.offset, &job.batch).await,
                Err(e) => Err(e),
            };
            let outcome = owned.shard.borrow_mut().finish_flush(written);
            let durable = matches!(outcome, FlushOutcome::Durable { .. });
            let written_range = (job.offset, job.batch.len_bytes());
            if durable {
                owned.cache_written(job.batch, job.offset, &job.bodies);
            }
            owned.settle(outcome);
            owned.maybe_checkpoint();
            owned.prepare_ahead(&segments, durable.then_some(written_range));
        }
    }
}

#[cfg(test)]
mod tests {
    use glommio::{Latency, LocalExecutorBuilder, Shares};
    use treehouse_core::store::RecoveryReport;

    use super::*;
    use crate::segments::tests::{append, fresh_dir};

    /// Opens an `OwnedShard` on `dir` with a body cache of `cache_bytes`, in an
    /// executor of its own, and runs `work` with it there.
    fn with_owned_shard<F, Fut>(dir: &Path, every_records: u64, cache_bytes: usize, work: F)
    where
        F: FnOnce(Rc<OwnedShard>, Rc<BodyCache>) -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        let dir = dir.to_path_buf();
        LocalExecutorBuilder::default()
            .spawn(move || async move {
                let queue = executor().create_task_queue(
                    Shares::Static(100),
                    Latency::NotImportant,
                    "test",
                );
                let limits = ShardLimits {
                    durable_wait: Duration::from_secs(10),
                    queue_depth_max: 1000,
                    checkpoint_every_records: every_records,
                };
                let cache = Rc::new(BodyCache::new(cache_bytes));
                let owned =
                    OwnedShard::open(0, &dir, config(), limits, (queue, queue), cache.clone())
                        .await
                        .expect("open");
                work(owned, cache).await;
            })
            .expect("executor")
            .join()
            .expect("join");
    }

    /// Runs `deliveries` appends through an `OwnedShard` on `dir`, then waits for any
    /// checkpoint it started; with `checkpoint_at_stop`, writes one as a stop does.
    fn serve(dir: &Path, every_records: u64, deliveries: usize, checkpoint_at_stop: bool) {
        with_owned_shard(dir, every_records, 0, move |owned, _| async move {
            for i in 0..deliveries {
                let body = format!("Subject: {i}\r\n\r\nhi\r\n").into_bytes();
                owned.apply(append(body)).await.expect("durable");
            }
            while owned.checkpointing.get() {
                glommio::timer::sleep(Duration::from_millis(5)).await;
            }
            if checkpoint_at_stop {
                owned.checkpoint_now().await;
            }
        });
    }

    /// The bodies a flush made durable are read back from the executor's cache, byte
    /// for byte: a large one, which the batch holds in a buffer of its own and the
    /// cache keeps as it is, and the small ones around it, copied out of the buffer
    /// they share with the records.
    #[test]
    fn flushed_bodies_are_read_back_from_the_cache() {
        let dir = fresh_dir("cache-written");
        with_owned_shard(&dir, 10_000, 16 << 20, |owned, cache| async move {
            let mut large = b"Subject: large\r\n\r\n".to_vec();
            large.extend((0..200_000u32).map(|i| b'a' + (i % 26) as u8));
            let bodies = vec![
                b"Subject: a\r\n\r\nhi\r\n".to_vec(),
                large,
                b"Subject: b\r\n\r\nho\r\n".to_vec(),
            ];
            let uids = owned
                .apply_many(bodies.iter().cloned().map(append).collect())
                .await;
            assert!(cache.used_bytes() >= 200_000, "the large body is kept");
            for (uid, body) in uids.into_iter().zip(&bodies) {
                let uid = uid.expect("durable").expect("an append has a UID");
                let read = owned
                    .read_body("a@example.test", "INBOX", uid)
                    .expect("read");
                assert!(read == *body, "body of UID {uid} differs");
            }
            assert_eq!(cache.hits_and_misses(), (3, 0));
        });
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn config() -> ShardConfig {
        ShardConfig {
            segment_size_bytes: 8 << 20,
            flush_batch_max_bytes: 1 << 20,
        }
    }

    fn reopen(dir: &Path) -> (Shard, RecoveryReport) {
        let mut disk = SegmentFiles::open(dir, config().segment_size_bytes).expect("segments");
        let checkpoint = segments::read_checkpoint(dir).expect("checkpoint");
        Shard::open(&mut disk, checkpoint.as_deref(), config()).expect("recover")
    }

    /// A shard whose index holds 400 messages, with `checkpoint_every_records = 10`,
    /// writes no checkpoint during the next 50 deliveries (it waits for 100), so a
    /// restart replays those 50; a small index checkpoints at the configured count.
    #[test]
    fn a_large_index_waits_for_a_share_of_its_size_before_a_checkpoint() {
        let dir = fresh_dir("ckpt");
        serve(&dir, 10, 12, false);
        let (_, report) = reopen(&dir);
        assert_eq!(
            report.records_replayed, 3,
            "13 records, a checkpoint at the 10th"
        );
        serve(&dir, 1_000_000, 388, true);
        let (shard, report) = reopen(&dir);
        assert_eq!(report.records_replayed, 0);
        assert_eq!(shard.indexed_messages(), 400);
        serve(&dir, 10, 50, false);
        let (shard, report) = reopen(&dir);
        assert_eq!(report.records_replayed, 50);
        assert_eq!(shard.indexed_messages(), 450);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Small indexes checkpoint at the configured count; large ones once the log tail
    /// holds a quarter of their size, so the encoding work per record stays bounded.
    #[test]
    fn checkpoints_wait_for_a_share_of_the_index_size() {
        assert_eq!(checkpoint_due_after(10_000, 0), 10_000);
        assert_eq!(checkpoint_due_after(10_000, 40_000), 10_000);
        assert_eq!(checkpoint_due_after(10_000, 1_000_000), 250_000);
        for messages in [0u64, 39_999, 40_004, 7_654_321, 1 << 40] {
            let due = checkpoint_due_after(10_000, messages);
            // Message encodings per record of the log tail: at most the share.
            assert!(
                messages / due <= CHECKPOINT_TAIL_SHARE,
                "{messages} -> {due}"
            );
        }
    }
}
