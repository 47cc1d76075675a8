//! The thread-per-core runtime: one pinned glommio executor per core, each owning a
//! fixed set of virtual shards, each accepting on every listener (SO_REUSEPORT), and
//! all of them joined by a channel mesh that carries changes to a shard's owner and
//! its durable acknowledgement back.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use futures_lite::AsyncWriteExt;
use glommio::channels::local_channel::{self, LocalSender};
use glommio::net::{TcpListener, TcpStream};
use glommio::{Latency, LocalExecutorPoolBuilder, Shares, TaskQueueHandle, executor};
use treehouse_core::address::shard_of;
use treehouse_core::store::{Op, ShardConfig};

use crate::body_cache::BodyCache;
use crate::config::Config;
use crate::delivery;
use crate::directory::Directory;
use crate::imap;
use crate::limits;
use crate::mesh::{self, Mesh};
use crate::pop3;
use crate::shard::{Outcome, OwnedShard, ShardLimits, TempFail};
use crate::tls;

/// Messages between executors: a change for a shard's owner, or the owner's answer.
pub enum MeshMsg {
    /// Apply `op` to `shard` and answer `origin` with request `id`.
    Apply {
        origin: usize,
        id: u64,
        shard: u32,
        op: Op,
    },
    /// The outcome of request `id`.
    Done { id: u64, outcome: Outcome },
    /// Continue a logged-in IMAP session here, on the owner of its account's shard.
    AdoptImap {
        socket: std::net::TcpStream,
        tls: Option<crate::tls::TlsParts>,
        session: Box<treehouse_core::imap::Session>,
        account: String,
    },
    /// Continue a logged-in POP3 session here, on the owner of its account's shard.
    AdoptPop3 {
        socket: std::net::TcpStream,
        tls: Option<crate::tls::TlsParts>,
        session: Box<treehouse_core::pop3::Session>,
        account: String,
    },
}

/// How a conversation on the executor that accepted it ended.
pub enum Ending {
    /// The client logged out, quit, timed out or went away.
    Closed,
    /// The client logged in as an account whose shard another executor owns.
    HandOff { owner: usize, account: String },
}

/// Messages in flight per mesh channel before senders wait.
const MESH_CHANNEL_CAPACITY: usize = 1024;
/// Memory each executor registers with io_uring for DMA buffers.
const IO_MEMORY_BYTES: usize = 2 << 20;
/// How often each executor checks the directory files for edits.
const DIRECTORY_RELOAD_INTERVAL: Duration = Duration::from_secs(1);

/// Where the store lives on disk and which executor owns each shard.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Virtual shards, fixed when the store was formatted.
    pub shard_count: u32,
    /// Executors serving them.
    pub executors: usize,
    /// Each shard's folder.
    pub shard_dirs: Vec<PathBuf>,
}

impl Layout {
    /// The executor that owns `shard`.
    pub fn owner(&self, shard: u32) -> usize {
        shard as usize % self.executors
    }
}

/// The store's root: `<data_dir>/store`, holding the format file and the lock.
pub fn store_root(config: &Config) -> PathBuf {
    config.server.data_dir.join("store")
}

/// Formats the store on first use (or checks its format) and finds each shard's folder.
pub fn prepare_layout(config: &Config, executors: usize) -> Result<Layout, String> {
    let root = store_root(config);
    std::fs::create_dir_all(&root).map_err(|e| {
        format!(
            "cannot create {}: {e}; check the data_dir setting",
            root.display()
        )
    })?;
    let shard_count = read_or_write_format(&root, config.store.shards)?;
    let data_dirs = config.store_dirs();
    let shard_dirs = (0..shard_count)
        .map(|shard| {
            let name = format!("shard-{shard:04}");
            // A shard stays in the folder it was created in, even if data_dirs changes.
            data_dirs
                .iter()
                .map(|d| d.join(&name))
                .find(|p| p.exists())
                .unwrap_or_else(|| data_dirs[shard as usize % data_dirs.len()].join(&name))
        })
        .collect();
    Ok(Layout {
        shard_count,
        executors,
        shard_dirs,
    })
}

fn read_or_write_format(root: &Path, configured: u32) -> Result<u32, String> {
    let path = root.join("format");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let shards = text
                .lines()
                .find_map(|l| l.strip_prefix("shards = "))
                .and_then(|v| v.trim().parse::<u32>().ok())
                .ok_or_else(|| format!("{} is damaged: it lacks `shards = N`", path.display()))?;
            if shards != configured {
                return Err(format!(
                    "the store in {} was formatted with {shards} shards but store.shards is {configured}; \
                     set store.shards = {shards} (the shard count cannot change after formatting)",
                    root.display()
                ));
            }
            Ok(shards)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let text = format!("# treehouse store format\nversion = 1\nshards = {configured}\n");
            std::fs::write(&path, text)
                .and_then(|()| File::open(&path)?.sync_all())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Ok(configured)
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Takes the store's exclusive lock, so that only one process writes it.
pub fn lock_store(config: &Config) -> Result<File, String> {
    let root = store_root(config);
    std::fs::create_dir_all(&root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
    let path = root.join("lock");
    let file = File::create(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(_) => Err(format!(
            "the store in {} is in use by another treehouse process; stop it first",
            root.display()
        )),
    }
}

/// The store settings every shard is opened with.
pub fn shard_config(config: &Config) -> ShardConfig {
    ShardConfig {
        segment_size_bytes: config.store.segment_size_bytes,
        flush_batch_max_bytes: config.store.flush_batch_max_bytes,
    }
}

/// Everything an executor shares with its tasks.
pub struct Executor {
    /// This executor's index in the mesh.
    pub me: usize,
    /// The configuration it was started with.
    pub config: Arc<Config>,
    /// Shard placement.
    pub layout: Arc<Layout>,
    /// The account directory, reloaded when its files change.
    pub directory: RefCell<Arc<Directory>>,
    owned: HashMap<u32, Rc<OwnedShard>>,
    /// Message bodies kept for FETCH, shared by the owned shards.
    cache: Rc<BodyCache>,
    senders: Mesh<MeshMsg>,
    waiting: RefCell<HashMap<u64, LocalSender<Outcome>>>,
    next_id: Cell<u64>,
    /// Open SMTP and LMTP connections on this executor.
    pub connections: Cell<usize>,
    /// Open IMAP connections on this executor.
    pub imap_connections: Cell<usize>,
    /// Open POP3 connections on this executor.
    pub pop3_connections: Cell<usize>,
    /// Task queue for client sessions and deliveries.
    pub delivery_queue: TaskQueueHandle,
    /// TLS for STARTTLS and implicit TLS, shared by every executor; SIGHUP replaces it.
    tls: tls::Certificates,
}

impl Executor {
    /// Applies `op` to the shard of `account`, locally or through the mesh, and waits
    /// for the owner's durable acknowledgement.
    pub async fn apply(self: &Rc<Self>, account: &str, op: Op) -> Outcome {
        let shard = shard_of(account, self.layout.shard_count);
        let owner = self.layout.owner(shard);
        if owner == self.me {
            return match self.owned.get(&shard) {
                Some(owned) => owned.apply(op).await,
                None => Err(internal(shard, "is not open on its owner")),
            };
        }
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let (done, wait) = local_channel::new_bounded(1);
        self.waiting.borrow_mut().insert(id, done);
        let msg = MeshMsg::Apply {
            origin: self.me,
            id,
            shard,
            op,
        };
        if self.senders.send_to(owner, msg).await.is_err() {
            self.waiting.borrow_mut().remove(&id);
            return Err(internal(shard, "cannot reach its owner executor"));
        }
        // The owner bounds its own wait; this margin only covers the trip back.
        let bound =
            Duration::from_millis(self.config.store.durable_wait_ms) + Duration::from_secs(1);
        let answer = glommio::timer::timeout(bound, async { Ok(wait.recv().await) }).await;
        self.waiting.borrow_mut().remove(&id);
        match answer {
            Ok(Some(outcome)) => outcome,
            _ => Err(internal(shard, "did not answer in time")),
        }
    }

    /// The shard this executor owns, if it owns it.
    pub fn owned_shard(&self, shard: u32) -> Option<Rc<OwnedShard>> {
        self.owned.get(&shard).cloned()
    }

    /// Ends a connection's conversation on this executor: moves a logged-in session
    /// (socket, TLS state and session, wrapped by `adopt`) to the executor that owns
    /// its account's shard, or closes the connection. `protocol` names it in the log.
    pub async fn conclude<S>(
        &self,
        mut stream: crate::tls::Conn,
        ended: std::io::Result<Ending>,
        session: S,
        protocol: &str,
        adopt: impl FnOnce(std::net::TcpStream, Option<crate::tls::TlsParts>, S, String) -> MeshMsg,
    ) {
        let moved = match ended {
            Ok(Ending::Closed) => Ok(false),
            Ok(Ending::HandOff { owner, account }) => {
                let stream = std::mem::replace(&mut stream, crate::tls::Conn::Closed);
                let sent = match stream.detach() {
                    Ok((socket, tls)) => self
                        .senders
                        .send_to(owner, adopt(socket, tls, session, account))
                        .await
                        .map_err(|_| format!("executor {owner} cannot be reached")),
                    Err(e) => Err(e.to_string()),
                };
                sent.map(|()| true).map_err(|e| {
                    format!("{protocol} session could not move to its shard's executor: {e}")
                })
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(format!("{protocol} connection ended: {e}")),
        };
        if let Err(why) = &moved {
            eprintln!("treehouse: {why}");
        }
        if moved != Ok(true) {
            let _ = stream.close().await;
        }
    }

    /// This executor's share of a connection limit that holds over all executors.
    pub fn connection_share(&self, total: usize) -> usize {
        total.div_ceil(self.layout.executors).max(1)
    }

    /// The TLS configuration new handshakes use.
    pub fn tls(&self) -> Arc<rustls::ServerConfig> {
        self.tls.current()
    }

    /// Lets in-flight flushes finish, then writes every owned shard's checkpoint.
    async fn checkpoint_all(&self) {
        for owned in self.owned.values() {
            owned.checkpoint_now().await;
        }
        let (hits, misses) = self.cache.hits_and_misses();
        println!(
            "treehouse: executor {}: body cache held {} bytes; {hits} hits, {misses} misses",
            self.me,
            self.cache.used_bytes()
        );
    }

    fn on_mesh_message(self: &Rc<Self>, msg: MeshMsg) {
        match msg {
            MeshMsg::AdoptImap {
                socket,
                tls,
                session,
                account,
            } => {
                let _ = spawn(
                    self.delivery_queue,
                    imap::adopt(self.clone(), socket, tls, *session, account),
                );
            }
            MeshMsg::AdoptPop3 {
                socket,
                tls,
                session,
                account,
            } => {
                let _ = spawn(
                    self.delivery_queue,
                    pop3::adopt(self.clone(), socket, tls, *session, account),
                );
            }
            MeshMsg::Apply {
                origin,
                id,
                shard,
                op,
            } => {
                let ex = self.clone();
                let task = glommio::spawn_local_into(
                    async move {
                        let outcome = match ex.owned.get(&shard) {
                            Some(owned) => owned.apply(op).await,
                            None => Err(internal(
                                shard,
                                "is not owned by the executor it was sent to",
                            )),
                        };
                        let _ = ex
                            .senders
                            .send_to(origin, MeshMsg::Done { id, outcome })
                            .await;
                    },
                    self.delivery_queue,
                );
                if let Ok(task) = task {
                    task.detach();
                }
            }
            MeshMsg::Done { id, outcome } => {
                if let Some(done) = self.waiting.borrow_mut().remove(&id) {
                    let _ = done.try_send(outcome);
                }
            }
        }
    }
}

fn internal(shard: u32, what: &str) -> TempFail {
    TempFail {
        code: 451,
        enhanced: "4.3.0",
        text: format!("shard {shard} {what}; try again later"),
    }
}

/// What each executor reports to the main thread once it starts or fails to.
enum Startup {
    Ready,
    Failed(String),
    /// Stopped on request, with every shard checkpointed.
    Stopped,
}

/// How often the main thread looks for a SIGHUP.
const SIGNAL_POLL: Duration = Duration::from_millis(200);

/// Re-reads the certificate files; new handshakes use them, open sessions keep theirs.
fn reload_certificates(config: &Config, tls: &tls::Certificates) {
    match tls.reload(config) {
        Ok(()) => println!("treehouse: SIGHUP: certificates reloaded"),
        Err(e) => eprintln!(
            "treehouse: SIGHUP: certificates not reloaded, keeping the previous ones: {e}"
        ),
    }
}

/// How often executors look for a stop request (SIGTERM or SIGINT).
const STOP_POLL: Duration = Duration::from_millis(100);

/// Starts the executors and serves until the process is stopped.
pub fn serve(config: Config, directory: Directory) -> Result<(), String> {
    let executors = config.executor_count();
    // Before any file is opened: a large store opens many segment files.
    limits::ensure_memlock(limits::memlock_wanted_bytes(executors, IO_MEMORY_BYTES))?;
    let connections = [
        config.smtp.max_connections,
        config.imap.max_connections,
        config.pop3.max_connections,
    ];
    let wanted_files =
        connections.iter().map(|&n| n as u64).sum::<u64>() + limits::OPEN_FILES_SPARE;
    limits::raise_open_files(wanted_files)?;
    let _lock = lock_store(&config)?;
    for (protocol, addrs) in config.listen.by_protocol() {
        // Every mail protocol is served; metrics are not yet.
        if !addrs.is_empty() && protocol == "metrics" {
            eprintln!(
                "treehouse: listen.{protocol} is set but this release does not serve {protocol} yet; ignoring it"
            );
        }
    }
    let layout = Arc::new(prepare_layout(&config, executors)?);
    let tls = tls::Certificates::load(&config)?;
    let reload = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, reload.clone())
        .map_err(|e| format!("cannot handle SIGHUP: {e}"))?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, stop.clone())
            .map_err(|e| format!("cannot handle signal {signal}: {e}"))?;
    }
    let shard_count = layout.shard_count;
    let listening: Vec<String> = config
        .listen
        .by_protocol()
        .into_iter()
        .filter(|(protocol, _)| *protocol != "metrics")
        .flat_map(|(protocol, addrs)| addrs.iter().map(move |a| format!("{protocol} on {a}")))
        .collect();
    let config = Arc::new(config);
    let (config_for_reload, tls_for_reload) = (config.clone(), tls.clone());
    // Each executor thread takes one executor's ends of the mesh as it starts.
    let mesh = Arc::new(std::sync::Mutex::new(mesh::full::<MeshMsg>(
        executors,
        MESH_CHANNEL_CAPACITY,
    )));
    let (report, reports) = mpsc::channel::<Startup>();
    let placement = crate::placement::placement(executors);
    let directory = Arc::new(directory);
    let pool = LocalExecutorPoolBuilder::new(placement)
        .name("treehouse")
        .io_memory(IO_MEMORY_BYTES)
        .on_all_shards(move || {
            let ends = mesh.lock().ok().and_then(|mut all| all.pop());
            let (config, layout, report, directory, tls, stop) = (
                config.clone(),
                layout.clone(),
                report.clone(),
                directory.clone(),
                tls.clone(),
                stop.clone(),
            );
            async move {
                let started = match ends {
                    Some(ends) => start_executor(config, layout, ends, directory, tls).await,
                    None => Err("more executors started than the mesh has ends for".to_string()),
                };
                match started {
                    Ok(ex) => {
                        let _ = report.send(Startup::Ready);
                        wait_for_stop(&ex, &stop).await;
                        ex.checkpoint_all().await;
                        let _ = report.send(Startup::Stopped);
                        futures_lite::future::pending::<()>().await;
                    }
                    Err(e) => {
                        let _ = report.send(Startup::Failed(e));
                    }
                }
            }
        })
        .map_err(|e| format!("cannot start {executors} executors: {e}"))?;
    for _ in 0..executors {
        match reports.recv() {
            Ok(Startup::Ready) => {}
            Ok(Startup::Failed(e)) => return Err(e),
            Ok(Startup::Stopped) | Err(_) => {
                return Err("an executor stopped while starting".to_string());
            }
        }
    }
    println!(
        "treehouse: ready with {executors} executors and {} shards; {}",
        shard_count,
        listening.join(", ")
    );
    // Serve until every executor has stopped on request; an executor that dies ends
    // the wait too (its report sender is dropped).
    let mut stopped = 0;
    while stopped < executors {
        match reports.recv_timeout(SIGNAL_POLL) {
            Ok(Startup::Stopped) => stopped += 1,
            Ok(_) => {}
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if reload.swap(false, Ordering::Relaxed) {
                    reload_certificates(&config_for_reload, &tls_for_reload);
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err("an executor stopped unexpectedly".to_string());
            }
        }
    }
    println!("treehouse: stopped; every shard checkpointed");
    // Executor threads still hold listeners and idle sessions: end the process here.
    drop(pool);
    std::process::exit(0)
}

async fn start_executor(
    config: Arc<Config>,
    layout: Arc<Layout>,
    ends: mesh::Ends<MeshMsg>,
    directory: Arc<Directory>,
    tls: tls::Certificates,
) -> Result<Rc<Executor>, String> {
    let (senders, receivers) = ends.connect().await;
    let me = senders.me();
    let delivery_queue = executor().create_task_queue(
        Shares::Static(1000),
        Latency::Matters(Duration::from_millis(2)),
        "delivery",
    );
    let background_queue =
        executor().create_task_queue(Shares::Static(100), Latency::NotImportant, "background");
    let limits = ShardLimits {
        durable_wait: Duration::from_millis(config.store.durable_wait_ms),
        queue_depth_max: config.store.queue_depth_max,
        checkpoint_every_records: config.store.checkpoint_every_records,
    };
    let cache = Rc::new(BodyCache::new(
        usize::try_from(config.store.body_cache_bytes).unwrap_or(usize::MAX),
    ));
    let mut owned = HashMap::new();
    for shard in (0..layout.shard_count).filter(|s| layout.owner(*s) == me) {
        let dir = &layout.shard_dirs[shard as usize];
        let opened = OwnedShard::open(
            shard,
            dir,
            shard_config(&config),
            limits,
            (delivery_queue, background_queue),
            cache.clone(),
        )
        .await?;
        owned.insert(shard, opened);
    }
    let ex = Rc::new(Executor {
        me,
        config: config.clone(),
        layout,
        directory: RefCell::new(directory),
        owned,
        cache,
        senders,
        waiting: RefCell::new(HashMap::new()),
        next_id: Cell::new(0),
        connections: Cell::new(0),
        imap_connections: Cell::new(0),
        pop3_connections: Cell::new(0),
        delivery_queue,
        tls,
    });
    for stream in receivers {
        let ex = ex.clone();
        spawn(delivery_queue, async move {
            while let Some(msg) = stream.recv().await {
                ex.on_mesh_message(msg);
            }
        })?;
    }
    let addrs = &config.listen;
    for addr in &addrs.imap {
        listen(&ex, *addr, "imap", imap::serve_connection)?;
    }
    for addr in &addrs.imaps {
        listen(&ex, *addr, "imaps", imap::serve_tls_connection)?;
    }
    for addr in &addrs.pop3 {
        listen(&ex, *addr, "pop3", pop3::serve_connection)?;
    }
    for addr in &addrs.pop3s {
        listen(&ex, *addr, "pop3s", pop3::serve_tls_connection)?;
    }
    for (list, mode) in [
        (&addrs.smtp, delivery::Mode::Smtp),
        (&addrs.lmtp, delivery::Mode::Lmtp),
        (&addrs.submission, delivery::Mode::Submission),
        (&addrs.submissions, delivery::Mode::Submissions),
    ] {
        for addr in list {
            listen(&ex, *addr, &format!("{mode:?}"), move |ex, stream| {
                delivery::serve_connection(ex, stream, mode)
            })?;
        }
    }
    spawn(background_queue, reload_directory(ex.clone()))?;
    Ok(ex)
}

fn spawn(queue: TaskQueueHandle, task: impl Future<Output = ()> + 'static) -> Result<(), String> {
    glommio::spawn_local_into(task, queue)
        .map(|t| t.detach())
        .map(|_| ())
        .map_err(|e| format!("cannot spawn a task: {e}"))
}

/// Binds `addr` (SO_REUSEPORT, so every executor binds it) and serves each accepted
/// connection with `serve` in the delivery queue.
fn listen<F, Fut>(
    ex: &Rc<Executor>,
    addr: SocketAddr,
    protocol: &str,
    serve: F,
) -> Result<(), String>
where
    F: Fn(Rc<Executor>, TcpStream) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let listener = TcpListener::bind(addr).map_err(|e| {
        format!("cannot listen on {addr} ({protocol}): {e}; choose another address with --listen")
    })?;
    let ex2 = ex.clone();
    spawn(ex.delivery_queue, async move {
        loop {
            match listener.accept().await {
                Ok(stream) => {
                    let _ = spawn(ex2.delivery_queue, serve(ex2.clone(), stream));
                }
                Err(e) => {
                    eprintln!("treehouse: accept on {addr} failed: {e}");
                    glommio::timer::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    })
}

async fn reload_directory(ex: Rc<Executor>) {
    loop {
        glommio::timer::sleep(DIRECTORY_RELOAD_INTERVAL).await;
        if !ex.directory.borrow().changed_on_disk() {
            continue;
        }
        let fresh = ex.directory.borrow().reload();
        match fresh {
            Ok(fresh) => *ex.directory.borrow_mut() = Arc::new(fresh),
            Err(e) => eprintln!("treehouse: directory not reloaded, keeping the previous one: {e}"),
        }
    }
}

async fn wait_for_stop(_ex: &Rc<Executor>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        glommio::timer::sleep(STOP_POLL).await;
    }
}
