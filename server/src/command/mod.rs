//! The command table: one [`CommandSpec`] per command (name, arity, flags,
//! key positions, handler), one module per command family.
//!
//! The same table drives dispatch, arity checks, COMMAND INFO/COUNT/LIST/
//! GETKEYS and key extraction, so what COMMAND reports is what runs.

pub mod bitmap;
pub mod cluster;
pub mod connection;
pub mod hash;
pub mod keys;
pub mod list;
pub mod pubsub;
pub mod server;
pub mod set;
pub mod sort;
pub mod string;
pub mod tx;
pub mod zset;

use crate::net::client::ConnState;
use crate::node::Shared;
use crate::protocol::{Args, Out};
use crate::store::Keyspace;
use std::sync::Arc;

/// Command flags, as COMMAND INFO reports them.
pub mod flags {
    pub const WRITE: u32 = 1 << 0;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const PUBSUB: u32 = 1 << 4;
    pub const NOSCRIPT: u32 = 1 << 5;
    pub const BLOCKING: u32 = 1 << 6;
    pub const LOADING: u32 = 1 << 7;
    pub const STALE: u32 = 1 << 8;
    pub const SKIP_MONITOR: u32 = 1 << 9;
    pub const SKIP_SLOWLOG: u32 = 1 << 10;
    pub const FAST: u32 = 1 << 11;
    pub const NO_AUTH: u32 = 1 << 12;
    pub const MAY_REPLICATE: u32 = 1 << 13;
    pub const NO_MULTI: u32 = 1 << 14;
    pub const ALLOW_BUSY: u32 = 1 << 15;
    /// Not a Redis flag: exempt from CLIENT PAUSE WRITE (PING, INFO ...).
    pub const NO_PAUSE: u32 = 1 << 16;
    /// Key positions depend on the arguments (numkeys, STORE ...).
    pub const MOVABLEKEYS: u32 = 1 << 17;

    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (SKIP_MONITOR, "skip_monitor"),
        (SKIP_SLOWLOG, "skip_slowlog"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (MAY_REPLICATE, "may_replicate"),
        (NO_MULTI, "no_multi"),
        (MOVABLEKEYS, "movablekeys"),
        (ALLOW_BUSY, "allow_busy"),
    ];
}

/// What a handler returns; `Err` becomes an error reply and the connection stays open.
pub type CmdResult = Result<(), CmdError>;

/// A command implementation.
pub type Handler = fn(&mut Ctx<'_>, &Args<'_>) -> CmdResult;

/// Static description of a command or subcommand.
#[derive(Debug)]
pub struct CommandSpec {
    /// Lower-case name; subcommands are `container|sub`.
    pub name: &'static str,
    /// Redis arity: exact count if positive, minimum count if negative (name included).
    pub arity: i32,
    pub flags: u32,
    pub first_key: i32,
    pub last_key: i32,
    pub step: i32,
    /// ACL categories beyond those implied by the flags (without '@').
    pub categories: &'static [&'static str],
    /// The command group COMMAND DOCS reports (string, generic, connection, server ...).
    pub group: &'static str,
    /// One-line summary for COMMAND DOCS.
    pub summary: &'static str,
    /// Redis version the command appeared in, for COMMAND DOCS.
    pub since: &'static str,
    pub handler: Handler,
    /// Subcommands for container commands (CONFIG, CLIENT ...); dispatch goes to them.
    pub subcommands: &'static [CommandSpec],
}

impl CommandSpec {
    #[inline]
    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }

    #[inline]
    pub fn arity_ok(&self, argc: usize) -> bool {
        let a = self.arity;
        if a >= 0 {
            argc == a as usize
        } else {
            argc >= (-a) as usize
        }
    }

    /// Positions of the key arguments in `args` (COMMAND GETKEYS, routing).
    pub fn key_positions(&self, argc: usize) -> Vec<usize> {
        if self.first_key <= 0 {
            return Vec::new();
        }
        let last = if self.last_key < 0 {
            argc as i32 + self.last_key
        } else {
            self.last_key
        };
        let step = self.step.max(1) as usize;
        (self.first_key as usize..=last.max(0) as usize)
            .step_by(step)
            .filter(|&i| i < argc)
            .collect()
    }

    /// Positions of the keys in this very call: the fixed key spec, or for
    /// MOVABLEKEYS commands the keys named by numkeys or SORT's STORE (what
    /// Redis's getkeys procs find). Empty when numkeys is invalid.
    pub fn keys_in(&self, args: &Args<'_>) -> Vec<usize> {
        if !self.has(flags::MOVABLEKEYS) {
            return self.key_positions(args.len());
        }
        // (position of numkeys, keys before it)
        let (at, before): (usize, &[usize]) = match self.name {
            "zunion" | "zinter" | "zdiff" | "zintercard" | "sintercard" | "lmpop" | "zmpop" => {
                (1, &[])
            }
            "blmpop" | "bzmpop" => (2, &[]),
            "zunionstore" | "zinterstore" | "zdiffstore" => (2, &[1]),
            "sort" | "sort_ro" => {
                let mut v = vec![1];
                let mut i = 2;
                while i < args.len() {
                    let a = args.get(i);
                    if self.name == "sort" && is(a, "store") && i + 1 < args.len() {
                        v.push(i + 1);
                    }
                    i += if is(a, "limit") {
                        3
                    } else if is(a, "by") || is(a, "get") || is(a, "store") {
                        2
                    } else {
                        1
                    };
                }
                return v;
            }
            _ => return self.key_positions(args.len()),
        };
        let n = crate::util::parse_i64(args.get(at)).unwrap_or(0);
        match usize::try_from(n) {
            Ok(n) if n > 0 && at + n < args.len() => {
                let mut v = before.to_vec();
                v.extend(at + 1..=at + n);
                v
            }
            _ => Vec::new(),
        }
    }

    /// ACL categories, derived from flags plus the explicit ones, in Redis's
    /// category-bit order (which is the order COMMAND INFO prints).
    pub fn acl_categories(&self) -> Vec<String> {
        const ORDER: &[&str] = &[
            "keyspace",
            "read",
            "write",
            "set",
            "sortedset",
            "list",
            "hash",
            "string",
            "bitmap",
            "hyperloglog",
            "geo",
            "stream",
            "pubsub",
            "admin",
            "fast",
            "slow",
            "blocking",
            "dangerous",
            "connection",
            "transaction",
            "scripting",
        ];
        let mut cats: Vec<&str> = self.categories.to_vec();
        let implied = [
            (flags::WRITE, "write"),
            (flags::READONLY, "read"),
            (flags::ADMIN, "admin"),
            (flags::ADMIN, "dangerous"),
            (flags::PUBSUB, "pubsub"),
            (flags::BLOCKING, "blocking"),
        ];
        for (f, c) in implied {
            if self.has(f) {
                cats.push(c);
            }
        }
        cats.push(if self.has(flags::FAST) {
            "fast"
        } else {
            "slow"
        });
        cats.sort_by_key(|c| ORDER.iter().position(|o| o == c).unwrap_or(ORDER.len()));
        cats.dedup();
        cats.into_iter().map(|c| format!("@{c}")).collect()
    }
}

/// Defines a `CommandSpec` with defaults for the rarely set fields.
#[macro_export]
macro_rules! cmd {
    ($name:literal, $arity:expr, $flags:expr, ($f:expr, $l:expr, $s:expr), $cats:expr, $group:literal, $since:literal, $summary:literal, $handler:expr) => {
        $crate::command::CommandSpec {
            name: $name,
            arity: $arity,
            flags: $flags,
            first_key: $f,
            last_key: $l,
            step: $s,
            categories: $cats,
            group: $group,
            summary: $summary,
            since: $since,
            handler: $handler,
            subcommands: &[],
        }
    };
}

/// Errors a command answers with. The message is exactly Redis's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CmdError {
    #[error("ERR wrong number of arguments for '{0}' command")]
    Arity(String),
    #[error("ERR unknown command '{cmd}', with args beginning with: {args}")]
    Unknown { cmd: String, args: String },
    #[error("ERR unknown subcommand '{sub}'. Try {cmd} HELP.")]
    UnknownSub { cmd: String, sub: String },
    #[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
    WrongType,
    #[error("ERR value is not an integer or out of range")]
    NotInteger,
    #[error("ERR value is not a valid float")]
    NotFloat,
    #[error("ERR syntax error")]
    Syntax,
    #[error("ERR increment or decrement would overflow")]
    Overflow,
    #[error("ERR no such key")]
    NoSuchKey,
    #[error("ERR DB index is out of range")]
    DbIndex,
    #[error("ERR invalid expire time in '{0}' command")]
    InvalidExpire(String),
    #[error("NOAUTH Authentication required.")]
    NoAuth,
    #[error("ERR {0}")]
    Msg(String),
    /// A full error line with its own code (`BUSYKEY ...`, `WRONGPASS ...`).
    #[error("{0}")]
    Raw(String),
}

impl CmdError {
    pub fn msg(s: impl Into<String>) -> Self {
        CmdError::Msg(s.into())
    }
}

/// What the connection must do after a command, beyond sending its reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send the replies so far, then close (QUIT, CLIENT KILL of self).
    Close,
    /// Stop the server gracefully (SHUTDOWN).
    Shutdown,
    /// Wait this long before the next command (DEBUG SLEEP).
    Sleep(std::time::Duration),
    /// Start streaming executed commands to this client (MONITOR).
    Monitor,
    /// Block until one of the keys can serve the command, or the timeout
    /// (BLPOP ...); the command is run again when a key becomes ready.
    Block(BlockOn),
}

/// What a blocking command waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockOn {
    /// Keys (in the connection's database) whose change may serve the command.
    pub keys: Vec<Vec<u8>>,
    /// `None` blocks forever (timeout 0).
    pub timeout: Option<std::time::Duration>,
}

/// Everything a handler may touch.
pub struct Ctx<'a> {
    pub shared: &'a Arc<Shared>,
    pub conn: &'a mut ConnState,
    pub out: &'a mut Out,
    /// Time of this command in ms (one clock read per command, like Redis).
    pub now: u64,
}

impl Ctx<'_> {
    /// The connection's selected database.
    #[inline]
    pub fn db(&self) -> Arc<Keyspace> {
        self.shared.store.db(self.conn.db)
    }

    /// Whether reads should refresh the access clock (CLIENT NO-TOUCH).
    #[inline]
    pub fn touch(&self) -> bool {
        !self.conn.no_touch
    }

    /// Counts a write for INFO's changes-since-save and LASTSAVE semantics.
    #[inline]
    pub fn dirty(&self, n: u64) {
        self.shared.stats.dirty(n);
    }

    /// A keyspace event (Redis's notifyKeyspaceEvent) for `key` in the
    /// selected database; `class` is one of [`crate::notify`]'s flags.
    /// Costs one atomic load when notifications are off.
    #[inline]
    pub fn notify(&self, class: u32, event: &str, key: &[u8]) {
        self.shared.notify_keyspace(self.conn.db, class, event, key);
    }

    /// Whether a blocking command may block now: not inside MULTI/EXEC and
    /// not while being re-run to serve a blocked client.
    #[inline]
    pub fn may_block(&self) -> bool {
        !self.conn.no_block
    }

    /// Blocks the client on `keys` (call only when [`Ctx::may_block`]); the
    /// handler writes no reply: it is run again when a key is ready, or the
    /// connection answers the timeout with a null array.
    pub fn block(&mut self, keys: Vec<Vec<u8>>, timeout: Option<std::time::Duration>) -> CmdResult {
        self.conn.action = Some(Action::Block(BlockOn { keys, timeout }));
        Ok(())
    }
}

/// A blocking command's timeout argument in seconds (fractions allowed):
/// `None` for 0 (forever), Redis's errors for bad or negative values.
pub fn arg_timeout(a: &[u8]) -> Result<Option<std::time::Duration>, CmdError> {
    let secs = crate::util::parse_f64(a)
        .ok_or_else(|| CmdError::msg("timeout is not a float or out of range"))?;
    // Redis truncates seconds*1000 to a long long; what does not fit (inf,
    // huge values) comes out negative there, so it is "negative" here too.
    let ms = (secs * 1000.0).trunc();
    if !ms.is_finite() || ms < 0.0 || ms >= i64::MAX as f64 {
        return Err(CmdError::msg("timeout is negative"));
    }
    Ok((ms > 0.0).then(|| std::time::Duration::from_millis(ms as u64)))
}

/// Per-command counters for INFO commandstats, metrics and COMMAND.
#[derive(Debug, Default)]
pub struct CmdStat {
    pub calls: std::sync::atomic::AtomicU64,
    pub usec: std::sync::atomic::AtomicU64,
    pub failed: std::sync::atomic::AtomicU64,
}

impl CmdStat {
    #[inline]
    pub fn record(&self, took: std::time::Duration, ok: bool) {
        use std::sync::atomic::Ordering::Relaxed;
        self.calls.fetch_add(1, Relaxed);
        self.usec.fetch_add(took.as_micros() as u64, Relaxed);
        if !ok {
            self.failed.fetch_add(1, Relaxed);
        }
    }
}

/// Lookup from command name to spec: a case-insensitive hash map built once.
/// Subcommands are registered under `container|sub`.
pub struct CommandTable {
    by_name: hashbrown::HashMap<&'static [u8], (&'static CommandSpec, usize)>,
    top: Vec<&'static CommandSpec>,
    /// Every spec, top-level and sub, indexed like `stats`.
    flat: Vec<&'static CommandSpec>,
    stats: Vec<CmdStat>,
}

impl std::fmt::Debug for CommandTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CommandTable({} commands)", self.top.len())
    }
}

impl Default for CommandTable {
    fn default() -> Self {
        Self::new()
    }
}

impl CommandTable {
    pub fn new() -> Self {
        let families: &[&'static [CommandSpec]] = &[
            string::COMMANDS,
            keys::COMMANDS,
            connection::COMMANDS,
            server::COMMANDS,
            list::COMMANDS,
            hash::COMMANDS,
            set::COMMANDS,
            zset::COMMANDS,
            bitmap::COMMANDS,
            sort::COMMANDS,
            pubsub::COMMANDS,
            tx::COMMANDS,
            cluster::COMMANDS,
        ];
        let mut t = CommandTable {
            by_name: hashbrown::HashMap::new(),
            top: Vec::new(),
            flat: Vec::new(),
            stats: Vec::new(),
        };
        for fam in families {
            for spec in fam.iter() {
                t.register(spec);
                t.top.push(spec);
                for sub in spec.subcommands {
                    t.register(sub);
                }
            }
        }
        t
    }

    fn register(&mut self, spec: &'static CommandSpec) {
        let idx = self.flat.len();
        self.flat.push(spec);
        self.stats.push(CmdStat::default());
        let prev = self.by_name.insert(spec.name.as_bytes(), (spec, idx));
        debug_assert!(prev.is_none(), "command {} registered twice", spec.name);
    }

    /// Case-insensitive lookup of a top-level command without allocating.
    #[inline]
    pub fn lookup(&self, name: &[u8]) -> Option<(&'static CommandSpec, usize)> {
        let mut buf = [0u8; 40];
        if name.len() > buf.len() || name.contains(&b'|') {
            return None;
        }
        let lower = &mut buf[..name.len()];
        lower.copy_from_slice(name);
        lower.make_ascii_lowercase();
        self.by_name.get(&*lower).copied()
    }

    /// The subcommand `sub` of container `spec`.
    pub fn lookup_sub(
        &self,
        spec: &CommandSpec,
        sub: &[u8],
    ) -> Option<(&'static CommandSpec, usize)> {
        let mut buf = [0u8; 80];
        let n = spec.name.len();
        if n + 1 + sub.len() > buf.len() || sub.contains(&b'|') {
            return None;
        }
        buf[..n].copy_from_slice(spec.name.as_bytes());
        buf[n] = b'|';
        buf[n + 1..n + 1 + sub.len()].copy_from_slice(sub);
        let full = &mut buf[..n + 1 + sub.len()];
        full.make_ascii_lowercase();
        self.by_name.get(&*full).copied()
    }

    pub fn get(&self, name: &[u8]) -> Option<&'static CommandSpec> {
        self.lookup(name).map(|(s, _)| s)
    }

    /// Top-level commands, in registration order.
    pub fn all(&self) -> &[&'static CommandSpec] {
        &self.top
    }

    /// Every spec (including subcommands) with its stats, same order.
    pub fn flat(&self) -> impl Iterator<Item = (&'static CommandSpec, &CmdStat)> {
        self.flat.iter().copied().zip(self.stats.iter())
    }

    pub fn stats(&self) -> &[CmdStat] {
        &self.stats
    }

    pub fn reset_stats(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        for s in &self.stats {
            s.calls.store(0, Relaxed);
            s.usec.store(0, Relaxed);
            s.failed.store(0, Relaxed);
        }
    }
}

/// Parses an integer argument or answers Redis's "not an integer" error.
#[inline]
pub fn arg_i64(a: &[u8]) -> Result<i64, CmdError> {
    crate::util::parse_i64(a).ok_or(CmdError::NotInteger)
}

/// Parses a float argument or answers Redis's "not a valid float" error.
pub fn arg_f64(a: &[u8]) -> Result<f64, CmdError> {
    crate::util::parse_f64(a).ok_or(CmdError::NotFloat)
}

/// Case-insensitive comparison of an argument with an option name.
#[inline]
pub fn is(a: &[u8], opt: &str) -> bool {
    a.eq_ignore_ascii_case(opt.as_bytes())
}

/// The `unknown subcommand` error for a container command.
pub fn unknown_sub(args: &Args<'_>) -> CmdError {
    CmdError::UnknownSub {
        cmd: String::from_utf8_lossy(args.get(0)).to_uppercase(),
        sub: truncate_lossy(args.get(1), 128),
    }
}

/// Lossy UTF-8 of at most `max` bytes, for echoing arguments in errors.
pub fn truncate_lossy(b: &[u8], max: usize) -> String {
    String::from_utf8_lossy(&b[..b.len().min(max)]).into_owned()
}

/// `<CONTAINER> HELP` for container commands: HELP takes no arguments (the
/// error names `container|help`, as Redis's), then the reply of [`help_reply`].
pub fn container_help(out: &mut Out, args: &Args<'_>, lines: &[&str]) -> CmdResult {
    let name = String::from_utf8_lossy(args.get(0)).to_ascii_lowercase();
    if args.len() != 2 {
        return Err(CmdError::Arity(format!("{name}|help")));
    }
    help_reply(out, &name.to_ascii_uppercase(), lines);
    Ok(())
}

/// An integer argument that must fit an `int` (Redis's getIntFromObjectOrReply).
pub fn arg_i32(a: &[u8]) -> Result<i64, CmdError> {
    let v = arg_i64(a)?;
    if i32::try_from(v).is_err() {
        return Err(CmdError::msg(
            "value is out of range, value must between -2147483648 and 2147483647",
        ));
    }
    Ok(v)
}

/// A database index argument (SELECT, MOVE, COPY DB, SWAPDB): Redis's int-range error for values
/// outside i32, then "DB index is out of range" for indices we do not have.
pub fn arg_db(ctx: &Ctx<'_>, a: &[u8]) -> Result<usize, CmdError> {
    let v = arg_i32(a)?;
    if v < 0 || v as usize >= ctx.shared.store.databases() {
        return Err(CmdError::DbIndex);
    }
    Ok(v as usize)
}

/// Writes a HELP reply: the header line then one status line per entry.
pub fn help_reply(out: &mut Out, cmd: &str, lines: &[&str]) {
    let mut all = Vec::with_capacity(lines.len() + 3);
    all.push(format!(
        "{cmd} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    ));
    all.extend(lines.iter().map(|l| l.to_string()));
    all.push("HELP".to_string());
    all.push("    Prints this help.".to_string());
    out.array(all.len());
    for l in all {
        out.simple(&l);
    }
}

/// Options of HSCAN, SSCAN and ZSCAN (`<cmd> key cursor [MATCH p] [COUNT n]`).
#[derive(Debug, Clone, Copy)]
pub struct ScanOpts<'a> {
    pub cursor: u64,
    pub count: usize,
    /// `None` matches everything (`MATCH *` is dropped).
    pub pattern: Option<&'a [u8]>,
}

impl ScanOpts<'_> {
    /// Whether an element passes MATCH.
    #[inline]
    pub fn matches(&self, elem: &[u8]) -> bool {
        self.pattern
            .is_none_or(|p| crate::util::glob_match(p, elem, false))
    }
}

/// Parses the cursor at `args[2]` and the options after it, with Redis's errors.
pub fn parse_scan_opts<'a>(args: &'a Args<'_>) -> Result<ScanOpts<'a>, CmdError> {
    let cursor = keys::parse_cursor(args.get(2)).ok_or_else(|| CmdError::msg("invalid cursor"))?;
    let mut opts = ScanOpts {
        cursor,
        count: 10,
        pattern: None,
    };
    let mut i = 3;
    while i < args.len() {
        let opt = args.get(i);
        if i + 1 >= args.len() {
            return Err(CmdError::Syntax);
        }
        if is(opt, "count") {
            let c = arg_i64(args.get(i + 1))?;
            if c < 1 {
                return Err(CmdError::Syntax);
            }
            opts.count = usize::try_from(c).unwrap_or(usize::MAX);
        } else if is(opt, "match") {
            let p = args.get(i + 1);
            opts.pattern = (p != b"*").then_some(p);
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    Ok(opts)
}

/// The SCAN-family reply: `[cursor, [elements...]]`.
pub fn scan_reply<'a>(out: &mut Out, next: u64, items: impl ExactSizeIterator<Item = &'a [u8]>) {
    out.array(2);
    out.bulk(itoa::Buffer::new().format(next).as_bytes());
    out.bulks(items);
}
