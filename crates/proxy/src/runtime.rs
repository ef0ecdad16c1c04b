//! Threads, listeners, reload and graceful stop.
//!
//! `nbthread` worker threads each run a tokio `current_thread` runtime with
//! a `LocalSet` and their own Lua interpreter. Listening sockets are bound
//! once by the control side and shared (each worker accepts on a duplicate
//! descriptor), so a reload swaps configuration and Lua states without ever
//! closing a listening socket that is still configured, and established
//! connections finish on the generation they started with.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::watch;

use crate::config::{self, Config, ConfigError};
use crate::engine::{self, Generation, ThreadCtl};
use crate::lua_api::{LuaSetupError, LuaWorker};
use crate::sample::AnyLuaNames;
use crate::shared::{LogSink, Shared};

/// Why the proxy could not start, check or reload.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A Lua file failed to load.
    #[error(transparent)]
    Lua(#[from] LuaSetupError),
    /// A Lua init function failed.
    #[error("{0}")]
    Init(String),
    /// A listening socket could not be opened.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Runtime setup failure.
    #[error("{0}")]
    Runtime(String),
}

/// How to run the proxy.
#[derive(Clone)]
pub struct ProxyOptions {
    /// Configuration files, in order.
    pub files: Vec<PathBuf>,
    /// Where log lines go.
    pub log: LogSink,
    /// How long a stop waits for in-flight requests.
    pub grace: Duration,
}

fn build_runtime() -> Result<tokio::runtime::Runtime, ProxyError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ProxyError::Runtime(format!("tokio runtime: {e}")))
}

/// Parses the configuration, loads its Lua files into a scratch state to
/// learn what they register, then parses again checking every `lua.*`
/// reference. Returns the configuration.
pub fn load_config(files: &[PathBuf], log: LogSink) -> Result<Config, ProxyError> {
    let first = config::parse_files(files, &AnyLuaNames)?;
    let shared = Arc::new(Shared::new(log, first.global.nbthread));
    let rt = build_runtime()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        let worker = LuaWorker::new(&first, shared, 0).await?;
        Ok(config::parse_files(files, &worker)?)
    })
}

/// Checks configuration files like `haproxy -c`; returns the warnings.
pub fn check(files: &[PathBuf], log: LogSink) -> Result<Vec<String>, ProxyError> {
    Ok(load_config(files, log)?.warnings)
}

struct Spec {
    cfg: Arc<Config>,
    listeners: Vec<(usize, Arc<std::net::TcpListener>)>,
}

#[derive(Clone)]
enum Command {
    Run(Arc<Spec>),
    Stop(Duration),
}

fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, ProxyError> {
    let err = |source| ProxyError::Bind { addr, source };
    let domain = if addr.is_ipv4() {
        socket2::Domain::IPV4
    } else {
        socket2::Domain::IPV6
    };
    let s = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))
        .map_err(err)?;
    s.set_reuse_address(true).map_err(err)?;
    s.bind(&addr.into()).map_err(err)?;
    s.listen(1024).map_err(err)?;
    s.set_nonblocking(true).map_err(err)?;
    Ok(s.into())
}

/// A running proxy.
pub struct Running {
    opts: ProxyOptions,
    tx: watch::Sender<Command>,
    threads: Vec<JoinHandle<()>>,
    ready: mpsc::Receiver<Result<(), String>>,
    listeners: HashMap<String, Arc<std::net::TcpListener>>,
    bound: Vec<(String, SocketAddr)>,
    shared: Arc<Shared>,
    nbthread: usize,
}

impl Running {
    /// Loads the configuration, binds, starts `nbthread` workers and waits
    /// until each has loaded its Lua state.
    pub fn start(opts: ProxyOptions) -> Result<Running, ProxyError> {
        let cfg = load_config(&opts.files, opts.log.clone())?;
        let nbthread = cfg.global.nbthread;
        let shared = Arc::new(Shared::new(opts.log.clone(), nbthread));
        let mut listeners = HashMap::new();
        let (spec, bound) = make_spec(cfg, &mut listeners)?;
        let (tx, rx) = watch::channel(Command::Run(spec));
        let (ready_tx, ready) = mpsc::channel();
        let mut threads = Vec::new();
        for id in 0..nbthread {
            let rx = rx.clone();
            let ready_tx = ready_tx.clone();
            let shared = shared.clone();
            let h = std::thread::Builder::new()
                .name(format!("proxy-{id}"))
                .spawn(move || worker_main(id, rx, ready_tx, shared))
                .map_err(|e| ProxyError::Runtime(format!("spawning worker: {e}")))?;
            threads.push(h);
        }
        let mut running = Running {
            opts,
            tx,
            threads,
            ready,
            listeners,
            bound,
            shared,
            nbthread,
        };
        if let Err(e) = running.wait_ready() {
            running.stop_now();
            return Err(e);
        }
        Ok(running)
    }

    fn wait_ready(&self) -> Result<(), ProxyError> {
        let mut first_err = None;
        for _ in 0..self.nbthread {
            match self.ready.recv_timeout(Duration::from_secs(120)) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(_) => {
                    first_err.get_or_insert("a worker thread did not start".to_string());
                }
            }
        }
        match first_err {
            Some(e) => Err(ProxyError::Init(e)),
            None => Ok(()),
        }
    }

    /// Frontend names and the addresses actually bound (port 0 resolved).
    pub fn local_addrs(&self) -> &[(String, SocketAddr)] {
        &self.bound
    }

    /// Process-wide state (counters, maps).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Re-reads the configuration and Lua files and switches every worker
    /// to them. Established connections finish on the old generation;
    /// listening sockets still configured stay open. On error the proxy
    /// keeps running the previous configuration.
    pub fn reload(&mut self) -> Result<(), ProxyError> {
        let cfg = load_config(&self.opts.files, self.opts.log.clone())?;
        if cfg.global.nbthread != self.nbthread {
            self.shared.log(
                4,
                "nbthread changed: the new value takes effect at the next start",
            );
        }
        let mut listeners = std::mem::take(&mut self.listeners);
        let made = make_spec(cfg, &mut listeners);
        let (spec, bound) = match made {
            Ok(v) => v,
            Err(e) => {
                self.listeners = listeners;
                return Err(e);
            }
        };
        // Drop listeners no longer configured.
        let keep: Vec<String> = spec
            .cfg
            .sections
            .iter()
            .filter(|s| s.is_frontend())
            .flat_map(|s| {
                s.binds.iter().enumerate().flat_map(move |(bi, b)| {
                    b.addrs.iter().map(move |a| listener_key(&s.name, bi, *a))
                })
            })
            .collect();
        listeners.retain(|k, _| keep.contains(k));
        self.listeners = listeners;
        self.bound = bound;
        let _ = self.tx.send(Command::Run(spec));
        self.wait_ready()
    }

    /// Stops accepting, lets in-flight requests finish within the grace
    /// period, then joins the workers.
    pub fn stop(mut self) {
        let grace = self.opts.grace;
        let _ = self.tx.send(Command::Stop(grace));
        for h in self.threads.drain(..) {
            let _ = h.join();
        }
    }

    fn stop_now(&mut self) {
        let _ = self.tx.send(Command::Stop(Duration::ZERO));
        for h in self.threads.drain(..) {
            let _ = h.join();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.stop_now();
        }
    }
}

/// Frontend name and bound address, per listening socket.
type BoundAddrs = Vec<(String, SocketAddr)>;

fn listener_key(frontend: &str, bind: usize, addr: SocketAddr) -> String {
    if addr.port() == 0 {
        format!("{frontend}#{bind}#{addr}")
    } else {
        addr.to_string()
    }
}

fn make_spec(
    cfg: Config,
    listeners: &mut HashMap<String, Arc<std::net::TcpListener>>,
) -> Result<(Arc<Spec>, BoundAddrs), ProxyError> {
    let mut out = Vec::new();
    let mut bound = Vec::new();
    for (i, s) in cfg.sections.iter().enumerate() {
        if !s.is_frontend() {
            continue;
        }
        for (bi, b) in s.binds.iter().enumerate() {
            for addr in &b.addrs {
                // Port 0 ("any") is kept per frontend and bind line so a
                // reload does not move it.
                let key = listener_key(&s.name, bi, *addr);
                let l = match listeners.get(&key) {
                    Some(l) => l.clone(),
                    None => {
                        let l = Arc::new(bind(*addr)?);
                        listeners.insert(key, l.clone());
                        l
                    }
                };
                let actual = l.local_addr().unwrap_or(*addr);
                bound.push((s.name.clone(), actual));
                out.push((i, l));
            }
        }
    }
    Ok((
        Arc::new(Spec {
            cfg: Arc::new(cfg),
            listeners: out,
        }),
        bound,
    ))
}

fn worker_main(
    id: usize,
    mut rx: watch::Receiver<Command>,
    ready: mpsc::Sender<Result<(), String>>,
    shared: Arc<Shared>,
) {
    let rt = match build_runtime() {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(e.to_string()));
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let ctl = Rc::new(ThreadCtl::default());
        let mut tasks: Vec<tokio::task::JoinHandle<()>> = Vec::new();
        let mut current: Option<Rc<Generation>> = None;
        let grace = loop {
            let cmd = rx.borrow_and_update().clone();
            match cmd {
                Command::Stop(grace) => break grace,
                Command::Run(spec) => match start_generation(id, &spec, &shared, &ctl).await {
                    Ok((g, new_tasks)) => {
                        for t in tasks.drain(..) {
                            t.abort();
                        }
                        tasks = new_tasks;
                        if let Some(old) = current.replace(g) {
                            old.lua.abort_tasks();
                        }
                        let _ = ready.send(Ok(()));
                    }
                    Err(e) => {
                        let _ = ready.send(Err(e));
                    }
                },
            }
            if rx.changed().await.is_err() {
                break Duration::ZERO;
            }
        };
        for t in tasks.drain(..) {
            t.abort();
        }
        if let Some(g) = &current {
            g.lua.abort_tasks();
        }
        ctl.stopping.set(true);
        ctl.stop.notify_waiters();
        shared.log(
            7,
            &format!(
                "thread {id} stopping: {} connection(s) still open",
                ctl.active.get()
            ),
        );
        let deadline = tokio::time::Instant::now() + grace;
        while ctl.active.get() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
            ctl.stop.notify_waiters();
        }
    });
}

async fn start_generation(
    id: usize,
    spec: &Spec,
    shared: &Arc<Shared>,
    ctl: &Rc<ThreadCtl>,
) -> Result<(Rc<Generation>, Vec<tokio::task::JoinHandle<()>>), String> {
    let lua = LuaWorker::new(&spec.cfg, shared.clone(), id)
        .await
        .map_err(|e| e.to_string())?;
    lua.run_inits().await?;
    lua.start_tasks();
    let g = Rc::new(Generation::new(spec.cfg.clone(), lua));
    let mut tasks = Vec::new();
    for (fe, l) in &spec.listeners {
        let std_l = l.try_clone().map_err(|e| format!("listener: {e}"))?;
        let listener =
            tokio::net::TcpListener::from_std(std_l).map_err(|e| format!("listener: {e}"))?;
        let g = g.clone();
        let ctl = ctl.clone();
        let fe = *fe;
        tasks.push(tokio::task::spawn_local(async move {
            loop {
                match listener.accept().await {
                    Ok((sock, peer)) => {
                        tokio::task::spawn_local(engine::handle_connection(
                            g.clone(),
                            ctl.clone(),
                            fe,
                            sock,
                            peer,
                        ));
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
        }));
    }
    if id == 0 {
        tasks.push(tokio::task::spawn_local(engine::health_checks(g.clone())));
    }
    Ok((g, tasks))
}

/// Runs until SIGTERM/SIGINT (graceful stop); SIGHUP or SIGUSR2 reload.
pub fn run(opts: ProxyOptions) -> Result<(), ProxyError> {
    use tokio::signal::unix::{SignalKind, signal};
    let log = opts.log.clone();
    let rt = build_runtime()?;
    // Handlers first: a SIGHUP arriving while workers start must reload,
    // not kill the process (the default action).
    let (mut term, mut int, mut hup, mut usr2) = rt.block_on(async {
        let mk = |k| signal(k).map_err(|e| ProxyError::Runtime(format!("signal handler: {e}")));
        Ok::<_, ProxyError>((
            mk(SignalKind::terminate())?,
            mk(SignalKind::interrupt())?,
            mk(SignalKind::hangup())?,
            mk(SignalKind::user_defined2())?,
        ))
    })?;
    let mut running = Running::start(opts)?;
    loop {
        // Reloading builds its own runtime, so it runs outside this one.
        let reload = rt.block_on(async {
            tokio::select! {
                _ = term.recv() => false,
                _ = int.recv() => false,
                _ = hup.recv() => true,
                _ = usr2.recv() => true,
            }
        });
        if !reload {
            break;
        }
        reload_logged(&mut running, &log);
    }
    log(5, "stopping: finishing in-flight requests");
    running.stop();
    Ok(())
}

fn reload_logged(running: &mut Running, log: &LogSink) {
    match running.reload() {
        Ok(()) => log(5, "configuration reloaded"),
        Err(e) => log(
            3,
            &format!("reload failed, keeping the previous configuration: {e}"),
        ),
    }
}
