//! Blocked clients (BLPOP, BLMOVE, BZPOPMIN ...): who waits on which key,
//! in arrival order, and serving them when a write makes a key ready.
//!
//! A blocked command is served the way Redis serves it: right after the
//! write that made its key ready, by the writing connection's thread, before
//! that connection runs its next command; the blocked command is re-run with
//! the blocked client's database and protocol, and its reply bytes are handed
//! to the blocked connection. Waiters on a key are served first-come
//! first-served; a waiter whose re-run would block again stays first.
//!
//! Architecture Invariant: the registry lock is never held while a command
//! runs (a served BLMOVE writes to another key, which may serve others), and
//! a waiter's state lock is the only thing that decides between being
//! served, timing out, and being unblocked, so exactly one of them happens.

use crate::net::client::{ClientHandle, ConnState};
use crate::node::Shared;
use crate::protocol::{Out, OwnedArgs, Proto};
use bytes::BytesMut;
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use tokio::sync::Notify;

/// A key of a database: what clients block on.
pub type DbKey = (usize, Vec<u8>);

/// How a wait ended.
#[derive(Debug)]
pub enum Outcome {
    /// Still waiting.
    Waiting,
    /// Served: the reply to send.
    Served(BytesMut),
    /// Timed out, or CLIENT UNBLOCK ... TIMEOUT: answer like a timeout.
    TimedOut,
    /// CLIENT UNBLOCK ... ERROR.
    UnblockedError,
    /// The client went away.
    Cancelled,
}

/// One blocked client.
#[derive(Debug)]
pub struct Waiter {
    pub client: Arc<ClientHandle>,
    pub db: usize,
    pub keys: Vec<Vec<u8>>,
    pub args: OwnedArgs,
    pub proto: Proto,
    pub state: Mutex<Outcome>,
    pub wake: Notify,
}

impl Waiter {
    /// Ends the wait with `to` unless it already ended; true if this call ended it.
    pub fn finish(&self, to: Outcome) -> bool {
        let mut st = self.state.lock();
        if !matches!(*st, Outcome::Waiting) {
            return false;
        }
        *st = to;
        drop(st);
        self.wake.notify_one();
        true
    }

    /// Takes the outcome once the wait has ended.
    pub fn take(&self) -> Option<Outcome> {
        let mut st = self.state.lock();
        match *st {
            Outcome::Waiting => None,
            _ => Some(std::mem::replace(&mut *st, Outcome::Cancelled)),
        }
    }
}

/// The registry of blocked clients.
#[derive(Debug, Default)]
pub struct Blocking {
    /// (db, key) → waiters in blocking order. A Mutex: every access is a
    /// short push/peek/remove, never held while a command runs.
    keys: Mutex<HashMap<DbKey, VecDeque<Arc<Waiter>>>>,
    by_client: Mutex<HashMap<u64, Arc<Waiter>>>,
    /// Blocked clients; writes skip all of this while it is 0.
    count: AtomicUsize,
}

impl Blocking {
    /// Clients currently blocked (INFO blocked_clients).
    #[inline]
    pub fn blocked(&self) -> usize {
        self.count.load(Relaxed)
    }

    /// Registers a blocked client on its keys.
    pub fn register(&self, w: Arc<Waiter>) {
        {
            let mut keys = self.keys.lock();
            for k in &w.keys {
                keys.entry((w.db, k.clone()))
                    .or_default()
                    .push_back(Arc::clone(&w));
            }
        }
        self.by_client.lock().insert(w.client.id, Arc::clone(&w));
        w.client.blocked.store(true, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    /// Removes a waiter from every queue (after it was served, timed out, or left).
    pub fn unregister(&self, w: &Arc<Waiter>) {
        {
            let mut keys = self.keys.lock();
            for k in &w.keys {
                let slot = (w.db, k.clone());
                if let Some(q) = keys.get_mut(&slot) {
                    q.retain(|x| !Arc::ptr_eq(x, w));
                    if q.is_empty() {
                        keys.remove(&slot);
                    }
                }
            }
        }
        let mut by = self.by_client.lock();
        if by.get(&w.client.id).is_some_and(|x| Arc::ptr_eq(x, w)) {
            by.remove(&w.client.id);
            w.client.blocked.store(false, Relaxed);
            self.count.fetch_sub(1, Relaxed);
        }
    }

    /// CLIENT UNBLOCK: ends the wait of client `id`; true if it was blocked.
    pub fn unblock(&self, id: u64, error: bool) -> bool {
        let w = self.by_client.lock().get(&id).cloned();
        match w {
            Some(w) => w.finish(if error {
                Outcome::UnblockedError
            } else {
                Outcome::TimedOut
            }),
            None => false,
        }
    }

    /// Whether client `id` is blocked.
    pub fn is_blocked(&self, id: u64) -> bool {
        self.by_client.lock().contains_key(&id)
    }

    fn first_waiting(&self, db: usize, key: &[u8]) -> Option<Arc<Waiter>> {
        let mut keys = self.keys.lock();
        let slot = (db, key.to_vec());
        let q = keys.get_mut(&slot)?;
        // Drop waiters whose wait ended through another key or a timeout.
        while let Some(w) = q.front() {
            if matches!(*w.state.lock(), Outcome::Waiting) {
                return Some(Arc::clone(w));
            }
            q.pop_front();
        }
        keys.remove(&slot);
        None
    }

    /// Serves waiters on the given keys, and on keys those served commands
    /// wrote (BLMOVE's destination), until nobody more can be served.
    pub fn serve(&self, shared: &Arc<Shared>, ready: Vec<DbKey>) {
        let mut work: VecDeque<DbKey> = ready.into();
        // Bounded so a cycle of BLMOVEs between two keys cannot spin forever.
        let mut budget = 100_000usize;
        while let Some((db, key)) = work.pop_front() {
            while budget > 0 {
                budget -= 1;
                let Some(w) = self.first_waiting(db, &key) else {
                    break;
                };
                match run_for(shared, &w) {
                    Some((reply, wrote)) => {
                        if w.finish(Outcome::Served(reply)) {
                            self.unregister(&w);
                        }
                        work.extend(wrote);
                    }
                    // Would block again: it keeps its place, the key is done.
                    None => break,
                }
            }
        }
    }
}

/// Re-runs a waiter's command as that client. Returns its reply and the keys
/// it wrote, or `None` if it would block again. Holds the waiter's state lock
/// throughout, so a timeout cannot slip in between the pop and the reply.
fn run_for(shared: &Arc<Shared>, w: &Arc<Waiter>) -> Option<(BytesMut, Vec<DbKey>)> {
    let st = w.state.lock();
    if !matches!(*st, Outcome::Waiting) {
        return None;
    }
    let mut conn = ConnState::new(Arc::clone(&w.client), true);
    conn.db = w.db;
    conn.serving = true;
    let mut out = Out::new(w.proto);
    let args = w.args.args();
    let now = shared.store.now_ms();
    let mut ctx = crate::command::Ctx {
        shared,
        conn: &mut conn,
        out: &mut out,
        now,
    };
    crate::exec::execute(&mut ctx, &args);
    drop(st);
    // An error (the key now holds another type) keeps the client blocked,
    // as Redis skips keys of the wrong type when serving.
    if matches!(conn.action, Some(crate::command::Action::Block(_)))
        || out.buf.first() == Some(&b'-')
    {
        return None;
    }
    Some((out.buf, std::mem::take(&mut conn.ready)))
}
