//! Transactions: MULTI EXEC DISCARD WATCH UNWATCH, and the gate that makes
//! EXEC atomic with respect to every other client's commands.
//!
//! Queuing happens in `exec::execute` (so every command, whatever its family,
//! is queued the same way); this file holds the commands and the WATCH state.
//! A watched key's shard keeps a version that every change bumps (write,
//! delete, expiry, FLUSH), so EXEC compares versions instead of tracking
//! which client watches what on every write.

use super::{CmdError, CmdResult, CommandSpec, Ctx, flags::*};
use crate::cmd;
use crate::protocol::{Args, OwnedArgs};
use crate::store::Keyspace;
use crossbeam_utils::CachePadded;
use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::sync::Arc;

const TX: &[&str] = &["transaction"];

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    cmd!("multi", 1, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY | NO_PAUSE, (0, 0, 0), TX, "transactions", "1.2.0", "Starts a transaction.", multi),
    cmd!("exec", 1, NOSCRIPT | LOADING | STALE | SKIP_SLOWLOG, (0, 0, 0), TX, "transactions", "1.2.0", "Executes all commands in a transaction.", exec),
    cmd!("discard", 1, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY | NO_PAUSE, (0, 0, 0), TX, "transactions", "2.0.0", "Discards a transaction.", discard),
    cmd!("watch", -2, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY | NO_PAUSE, (1, -1, 1), TX, "transactions", "2.2.0", "Monitors changes to keys to determine the execution of a transaction.", watch),
    cmd!("unwatch", 1, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY | NO_PAUSE, (0, 0, 0), TX, "transactions", "2.2.0", "Forgets about watched keys of a transaction.", unwatch),
];

/// A transaction being queued.
#[derive(Debug, Default)]
pub struct MultiState {
    pub queued: Vec<OwnedArgs>,
    /// A command was refused while queuing: EXEC answers EXECABORT.
    pub dirty: bool,
    /// A queued command may grow memory (EXEC is refused over maxmemory).
    pub denyoom: bool,
}

/// One WATCHed key.
#[derive(Debug)]
pub struct WatchedKey {
    pub db: usize,
    /// The database object watched: SWAPDB replaces what `db` points to.
    pub ks: Arc<Keyspace>,
    pub key: Vec<u8>,
    pub version: u64,
    /// Already logically expired at WATCH time (its later deletion is no change).
    pub expired: bool,
}

/// Whether a command runs at once even inside MULTI (Redis's list).
pub fn is_multi_control(spec: &CommandSpec) -> bool {
    matches!(
        spec.name,
        "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
    )
}

/// The execution gate: every command runs under one read slot; EXEC takes
/// them all for writing, so no other command interleaves with a transaction.
/// Slots are per connection (id modulo), cache-padded, so ordinary commands
/// on different connections do not contend on one lock word.
#[derive(Debug)]
pub struct Gate {
    slots: Box<[CachePadded<RwLock<()>>]>,
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            slots: (0..16).map(|_| CachePadded::new(RwLock::new(()))).collect(),
        }
    }
}

impl Gate {
    #[inline]
    pub fn read(&self, conn_id: u64) -> RwLockReadGuard<'_, ()> {
        self.slots[(conn_id as usize) % self.slots.len()].read()
    }

    /// Every slot, in order (two EXECs lock in the same order: no deadlock).
    pub fn write_all(&self) -> Vec<RwLockWriteGuard<'_, ()>> {
        self.slots.iter().map(|s| s.write()).collect()
    }
}

fn multi(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    if ctx.conn.multi.is_some() {
        return Err(CmdError::msg("MULTI calls can not be nested"));
    }
    ctx.conn.multi = Some(MultiState::default());
    ctx.out.ok();
    Ok(())
}

fn discard(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    if ctx.conn.multi.take().is_none() {
        return Err(CmdError::msg("DISCARD without MULTI"));
    }
    unwatch_all(ctx.conn);
    ctx.out.ok();
    Ok(())
}

fn watch(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    if ctx.conn.multi.is_some() {
        return Err(CmdError::msg("WATCH inside MULTI is not allowed"));
    }
    let dbi = ctx.conn.db;
    let ks = ctx.db();
    for key in args.iter().skip(1) {
        if ctx.conn.watched.iter().any(|w| w.db == dbi && w.key == key) {
            continue;
        }
        let (h, mut shard) = ks.lock(key);
        let version = shard.watch(key);
        let expired = shard.is_expired_key(h, key, ctx.now);
        drop(shard);
        ctx.conn.watched.push(WatchedKey {
            db: dbi,
            ks: Arc::clone(&ks),
            key: key.to_vec(),
            version,
            expired,
        });
    }
    ctx.out.ok();
    Ok(())
}

fn unwatch(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    unwatch_all(ctx.conn);
    ctx.out.ok();
    Ok(())
}

/// Drops every WATCH of a connection (EXEC, DISCARD, UNWATCH, RESET, disconnect).
pub fn unwatch_all(conn: &mut crate::net::client::ConnState) {
    for w in std::mem::take(&mut conn.watched) {
        let (_, mut shard) = w.ks.lock(&w.key);
        shard.unwatch(&w.key);
    }
}

/// Whether no watched key changed since WATCH.
fn watches_hold(ctx: &Ctx<'_>) -> bool {
    let dbs = ctx.shared.store.dbs();
    ctx.conn.watched.iter().all(|w| {
        let Some(cur) = dbs.get(w.db) else {
            return false;
        };
        if !Arc::ptr_eq(cur, &w.ks) {
            // SWAPDB replaced the database: as Redis, that touches the key
            // if it exists on either side.
            let exists = |ks: &Keyspace| {
                let (h, shard) = ks.lock(&w.key);
                shard.exists_live(h, &w.key, ctx.now)
            };
            return !exists(&w.ks) && !exists(cur);
        }
        let (h, shard) = w.ks.lock(&w.key);
        shard.watch_version(&w.key) == Some(w.version)
            && (w.expired || !shard.is_expired_key(h, &w.key, ctx.now))
    })
}

fn exec(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    let Some(m) = ctx.conn.multi.take() else {
        return Err(CmdError::msg("EXEC without MULTI"));
    };
    if m.dirty {
        unwatch_all(ctx.conn);
        return Err(CmdError::Raw(
            "EXECABORT Transaction discarded because of previous errors.".into(),
        ));
    }
    let shared = Arc::clone(ctx.shared);
    let gate = shared.gate.write_all();
    if !watches_hold(ctx) {
        drop(gate);
        unwatch_all(ctx.conn);
        ctx.out.null_array();
        return Ok(());
    }
    unwatch_all(ctx.conn);
    ctx.out.array(m.queued.len());
    ctx.conn.in_exec = true;
    ctx.conn.exec_len = m.queued.len();
    ctx.conn.no_block = true;
    for q in &m.queued {
        crate::exec::execute(ctx, &q.args());
    }
    ctx.conn.in_exec = false;
    ctx.conn.no_block = false;
    drop(gate);
    Ok(())
}
