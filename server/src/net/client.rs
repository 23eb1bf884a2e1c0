//! Per-connection state and the registry of connected clients (CLIENT LIST/KILL/ID).
//!
//! The connection task owns its `ConnState` outright (no lock on the hot
//! path); it publishes a snapshot to its registry entry once per batch so
//! CLIENT LIST from another connection sees recent values.

use crate::command::Action;
use dashmap::DashMap;
use parking_lot::Mutex;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// CLIENT REPLY mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplyMode {
    #[default]
    On,
    Off,
    /// Skip the reply of the next command only.
    Skip,
}

/// What other connections may read about a client.
#[derive(Debug, Clone)]
pub struct ClientMeta {
    pub name: String,
    pub lib_name: String,
    pub lib_ver: String,
    pub db: usize,
    pub last_cmd: &'static str,
    pub last_active: Instant,
    pub resp: u8,
    pub monitor: bool,
    pub no_evict: bool,
    pub no_touch: bool,
    /// READONLY (cluster mode; CLIENT LIST flag `r`).
    pub readonly: bool,
    pub qbuf: usize,
    pub obuf: usize,
    /// Subscriptions: channels, patterns, shard channels (CLIENT LIST sub/psub/ssub).
    pub subs: (usize, usize, usize),
    /// Commands queued in MULTI; -1 outside a transaction (CLIENT LIST multi=).
    pub multi: i64,
}

/// A connected client as the registry sees it.
#[derive(Debug)]
pub struct ClientHandle {
    pub id: u64,
    pub addr: SocketAddr,
    pub laddr: SocketAddr,
    pub created: Instant,
    /// Cancelled by CLIENT KILL; the connection closes at its next step.
    pub kill: CancellationToken,
    /// Waiting in a blocking command (CLIENT LIST flag `b`).
    pub blocked: std::sync::atomic::AtomicBool,
    pub meta: Mutex<ClientMeta>,
}

/// All connected clients. A DashMap because connections come and go from
/// every worker thread; guards are never held across an await (clippy enforces).
#[derive(Debug, Default)]
pub struct ClientRegistry {
    clients: DashMap<u64, Arc<ClientHandle>>,
    next_id: AtomicU64,
    /// Bytes of all clients' query and output buffers (counted in used_memory
    /// and against maxmemory, as Redis counts client buffers).
    buffers: std::sync::atomic::AtomicIsize,
}

impl ClientRegistry {
    pub fn register(&self, addr: SocketAddr, laddr: SocketAddr) -> Arc<ClientHandle> {
        let id = self.next_id.fetch_add(1, Relaxed) + 1;
        let now = Instant::now();
        let h = Arc::new(ClientHandle {
            id,
            addr,
            laddr,
            created: now,
            kill: CancellationToken::new(),
            blocked: std::sync::atomic::AtomicBool::new(false),
            meta: Mutex::new(ClientMeta {
                name: String::new(),
                lib_name: String::new(),
                lib_ver: String::new(),
                db: 0,
                last_cmd: "NULL",
                last_active: now,
                resp: 2,
                monitor: false,
                no_evict: false,
                no_touch: false,
                readonly: false,
                qbuf: 0,
                obuf: 0,
                subs: (0, 0, 0),
                multi: -1,
            }),
        });
        self.clients.insert(id, Arc::clone(&h));
        h
    }

    pub fn unregister(&self, id: u64) {
        self.clients.remove(&id);
    }

    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// Bytes held by client buffers, as last reported by the connections.
    pub fn buffer_bytes(&self) -> u64 {
        self.buffers.load(Relaxed).max(0) as u64
    }

    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// A snapshot of all clients, ordered by id.
    pub fn snapshot(&self) -> Vec<Arc<ClientHandle>> {
        let mut v: Vec<_> = self.clients.iter().map(|e| Arc::clone(e.value())).collect();
        v.sort_by_key(|c| c.id);
        v
    }

    pub fn get(&self, id: u64) -> Option<Arc<ClientHandle>> {
        self.clients.get(&id).map(|e| Arc::clone(e.value()))
    }
}

/// State owned by one connection's task.
#[derive(Debug)]
pub struct ConnState {
    pub id: u64,
    pub addr: SocketAddr,
    pub laddr: SocketAddr,
    pub handle: Arc<ClientHandle>,
    /// SELECTed database.
    pub db: usize,
    pub authenticated: bool,
    pub name: String,
    pub lib_name: String,
    pub lib_ver: String,
    pub last_cmd: &'static str,
    pub no_touch: bool,
    pub no_evict: bool,
    /// READONLY was sent (cluster mode): reads may be served by replicas.
    pub readonly: bool,
    pub reply: ReplyMode,
    /// Set by a handler; the connection acts on it after the reply is queued.
    pub action: Option<Action>,
    pub monitor: bool,
    /// Blocking commands answer at once instead of blocking (inside EXEC).
    pub no_block: bool,
    /// Re-run on behalf of a blocked client (see `blocking.rs`).
    pub serving: bool,
    /// Running the commands of an EXEC (they skip the gate and queuing).
    pub in_exec: bool,
    /// How many commands the running EXEC has (CLIENT LIST multi= during EXEC).
    pub exec_len: usize,
    /// Keys written while clients were blocked, to serve after the command.
    pub ready: Vec<(usize, Vec<u8>)>,
    /// MULTI in progress.
    pub multi: Option<crate::command::tx::MultiState>,
    /// WATCHed keys.
    pub watched: Vec<crate::command::tx::WatchedKey>,
    /// Pub/Sub subscriptions; created by the first subscribe.
    pub pubsub: Option<Box<crate::pubsub::ConnSubs>>,
    /// Buffer bytes this connection last added to the registry's total.
    pub buffers_reported: usize,
}

impl ConnState {
    pub fn new(handle: Arc<ClientHandle>, authenticated: bool) -> Self {
        ConnState {
            id: handle.id,
            addr: handle.addr,
            laddr: handle.laddr,
            handle,
            db: 0,
            authenticated,
            name: String::new(),
            lib_name: String::new(),
            lib_ver: String::new(),
            last_cmd: "NULL",
            no_touch: false,
            no_evict: false,
            readonly: false,
            reply: ReplyMode::On,
            action: None,
            monitor: false,
            no_block: false,
            serving: false,
            in_exec: false,
            exec_len: 0,
            ready: Vec::new(),
            multi: None,
            watched: Vec::new(),
            buffers_reported: 0,
            pubsub: None,
        }
    }

    /// Whether the client has any subscription (RESP2 clients are then in
    /// subscribed mode, where only a few commands are allowed).
    #[inline]
    pub fn subscribed(&self) -> bool {
        self.pubsub.as_ref().is_some_and(|p| p.total() != 0)
    }

    /// The subscriptions, creating the receiver on first use.
    pub fn pubsub_mut(&mut self, ps: &crate::pubsub::PubSub) -> &mut crate::pubsub::ConnSubs {
        let (id, addr, kill) = (self.id, self.addr, &self.handle.kill);
        self.pubsub.get_or_insert_with(|| {
            Box::new(crate::pubsub::ConnSubs::new(Arc::new(
                crate::pubsub::Subscriber::new(id, addr.to_string(), kill.clone()).counted_in(ps),
            )))
        })
    }

    /// Subscription counts (channels, patterns, shard channels).
    pub fn sub_counts(&self) -> (usize, usize, usize) {
        self.pubsub.as_ref().map_or((0, 0, 0), |p| p.counts())
    }

    /// Copies what CLIENT LIST shows into the registry entry.
    pub fn publish(&self, resp: u8, qbuf: usize, obuf: usize) {
        let mut m = self.handle.meta.lock();
        if m.name != self.name {
            m.name.clone_from(&self.name);
        }
        if m.lib_name != self.lib_name {
            m.lib_name.clone_from(&self.lib_name);
        }
        if m.lib_ver != self.lib_ver {
            m.lib_ver.clone_from(&self.lib_ver);
        }
        m.db = self.db;
        m.last_cmd = self.last_cmd;
        m.last_active = Instant::now();
        m.resp = resp;
        m.monitor = self.monitor;
        m.no_evict = self.no_evict;
        m.no_touch = self.no_touch;
        m.readonly = self.readonly;
        m.qbuf = qbuf;
        m.obuf = obuf;
        m.subs = self.sub_counts();
        m.multi = self.multi_count();
    }

    /// Reports this connection's buffer capacity (query + output) to the
    /// registry total; `bytes = 0` when the connection closes.
    pub fn account_buffers(&mut self, registry: &ClientRegistry, bytes: usize) {
        if bytes != self.buffers_reported {
            registry
                .buffers
                .fetch_add(bytes as isize - self.buffers_reported as isize, Relaxed);
            self.buffers_reported = bytes;
        }
    }

    /// Queued commands of the open transaction, -1 when none (CLIENT LIST).
    pub fn multi_count(&self) -> i64 {
        if self.in_exec {
            return self.exec_len as i64;
        }
        self.multi.as_ref().map_or(-1, |m| m.queued.len() as i64)
    }
}
