//! Connection commands: PING ECHO HELLO AUTH SELECT QUIT RESET and CLIENT.

use super::{
    Action, CmdError, CmdResult, CommandSpec, Ctx, arg_db, arg_i32, container_help, flags::*, is,
};
use crate::cmd;
use crate::net::client::{ClientHandle, ReplyMode};
use crate::protocol::{Args, Proto};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// The Redis version we emulate, reported by HELLO and INFO for client compatibility.
pub const REDIS_COMPAT_VERSION: &str = "7.0.15";

const CONN: &[&str] = &["connection"];

pub static COMMANDS: &[CommandSpec] = &[
    cmd!(
        "ping",
        -1,
        FAST | NO_PAUSE,
        (0, 0, 0),
        CONN,
        "connection",
        "1.0.0",
        "Returns the server's liveliness response.",
        ping
    ),
    cmd!(
        "echo",
        2,
        FAST | NO_PAUSE,
        (0, 0, 0),
        CONN,
        "connection",
        "1.0.0",
        "Returns the given string.",
        echo
    ),
    cmd!(
        "hello",
        -1,
        NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY | NO_PAUSE,
        (0, 0, 0),
        CONN,
        "connection",
        "6.0.0",
        "Handshakes with the Redis server.",
        hello
    ),
    cmd!(
        "auth",
        -2,
        NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY | NO_PAUSE,
        (0, 0, 0),
        CONN,
        "connection",
        "1.0.0",
        "Authenticates the connection.",
        auth
    ),
    cmd!(
        "select",
        2,
        LOADING | STALE | FAST | NO_PAUSE,
        (0, 0, 0),
        CONN,
        "connection",
        "1.0.0",
        "Changes the selected database.",
        select
    ),
    cmd!(
        "quit",
        -1,
        ALLOW_BUSY | NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | NO_PAUSE,
        (0, 0, 0),
        CONN,
        "connection",
        "1.0.0",
        "Closes the connection.",
        quit
    ),
    cmd!(
        "reset",
        1,
        NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY | NO_PAUSE,
        (0, 0, 0),
        CONN,
        "connection",
        "6.2.0",
        "Resets the connection.",
        reset
    ),
    CommandSpec {
        subcommands: CLIENT_SUBS,
        ..cmd!(
            "client",
            -2,
            SKIP_SLOWLOG,
            (0, 0, 0),
            CONN,
            "connection",
            "2.4.0",
            "A container for client connection commands.",
            client_container
        )
    },
];

static CLIENT_SUBS: &[CommandSpec] = &[
    cmd!(
        "client|id",
        2,
        NOSCRIPT | LOADING | STALE | NO_PAUSE,
        (0, 0, 0),
        CONN,
        "connection",
        "5.0.0",
        "Returns the unique client ID of the connection.",
        client_id
    ),
    cmd!(
        "client|setname",
        3,
        NOSCRIPT | LOADING | STALE | NO_PAUSE,
        (0, 0, 0),
        CONN,
        "connection",
        "2.6.9",
        "Sets the connection name.",
        client_setname
    ),
    cmd!(
        "client|getname",
        2,
        NOSCRIPT | LOADING | STALE | NO_PAUSE,
        (0, 0, 0),
        CONN,
        "connection",
        "2.6.9",
        "Returns the name of the connection.",
        client_getname
    ),
    cmd!(
        "client|setinfo",
        4,
        NOSCRIPT | LOADING | STALE | NO_PAUSE,
        (0, 0, 0),
        CONN,
        "connection",
        "7.2.0",
        "Sets information specific to the client or connection.",
        client_setinfo
    ),
    cmd!(
        "client|list",
        -2,
        ADMIN | NOSCRIPT | LOADING | STALE | NO_PAUSE,
        (0, 0, 0),
        CONN,
        "connection",
        "2.4.0",
        "Lists open connections.",
        client_list
    ),
    cmd!(
        "client|info",
        2,
        NOSCRIPT | LOADING | STALE | NO_PAUSE,
        (0, 0, 0),
        CONN,
        "connection",
        "6.2.0",
        "Returns information about the connection.",
        client_info
    ),
    cmd!(
        "client|kill",
        -3,
        ADMIN | NOSCRIPT | LOADING | STALE | NO_PAUSE,
        (0, 0, 0),
        CONN,
        "connection",
        "2.4.0",
        "Terminates open connections.",
        client_kill
    ),
    cmd!(
        "client|pause",
        -3,
        ADMIN | NOSCRIPT | LOADING | STALE | NO_PAUSE,
        (0, 0, 0),
        CONN,
        "connection",
        "3.0.0",
        "Suspends commands processing.",
        client_pause
    ),
    cmd!(
        "client|unpause",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE | NO_PAUSE,
        (0, 0, 0),
        CONN,
        "connection",
        "6.2.0",
        "Resumes processing commands from paused clients.",
        client_unpause
    ),
    cmd!(
        "client|reply",
        3,
        NOSCRIPT | LOADING | STALE | NO_PAUSE,
        (0, 0, 0),
        CONN,
        "connection",
        "3.2.0",
        "Instructs the server whether to reply to commands.",
        client_reply
    ),
    cmd!(
        "client|no-evict",
        3,
        ADMIN | NOSCRIPT | LOADING | STALE | NO_PAUSE,
        (0, 0, 0),
        CONN,
        "connection",
        "7.0.0",
        "Sets the client eviction mode of the connection.",
        client_no_evict
    ),
    cmd!(
        "client|no-touch",
        3,
        NOSCRIPT | LOADING | STALE | NO_PAUSE,
        (0, 0, 0),
        CONN,
        "connection",
        "7.2.0",
        "Controls whether commands sent by the client affect the LRU/LFU of accessed keys.",
        client_no_touch
    ),
    cmd!(
        "client|unblock",
        -3,
        ADMIN | NOSCRIPT | LOADING | STALE | NO_PAUSE,
        (0, 0, 0),
        CONN,
        "connection",
        "5.0.0",
        "Unblocks a client blocked by a blocking command from a different connection.",
        client_unblock
    ),
];

fn ping(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    if args.len() <= 2 && ctx.conn.subscribed() && !ctx.out.resp3() {
        // RESP2 subscribed mode: a message-shaped reply, `["pong", arg or ""]`.
        ctx.out.array(2);
        ctx.out.bulk(b"pong");
        ctx.out
            .bulk(if args.len() == 2 { args.get(1) } else { b"" });
        return Ok(());
    }
    match args.len() {
        1 => ctx.out.simple("PONG"),
        2 => ctx.out.bulk(args.get(1)),
        _ => return Err(CmdError::Arity("ping".into())),
    }
    Ok(())
}

fn echo(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    ctx.out.bulk(args.get(1));
    Ok(())
}

/// Checks a password for the default user (the only user until ACLs land).
fn check_password(ctx: &Ctx<'_>, user: &[u8], pass: &[u8]) -> Result<(), CmdError> {
    let required = ctx.shared.config.read().requirepass.clone();
    if user != b"default" {
        return Err(wrongpass());
    }
    // With no password configured the default user accepts any password (nopass).
    if required.is_empty() || required.as_bytes() == pass {
        Ok(())
    } else {
        Err(wrongpass())
    }
}

fn wrongpass() -> CmdError {
    CmdError::Raw("WRONGPASS invalid username-password pair or user is disabled.".into())
}

fn auth(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    match args.len() {
        2 => {
            if ctx.shared.config.read().requirepass.is_empty() {
                return Err(CmdError::msg(
                    "AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
                ));
            }
            check_password(ctx, b"default", args.get(1))?;
        }
        3 => check_password(ctx, args.get(1), args.get(2))?,
        _ => return Err(CmdError::Syntax),
    }
    ctx.conn.authenticated = true;
    ctx.out.ok();
    Ok(())
}

fn valid_name(name: &[u8]) -> bool {
    name.iter().all(|&c| (b'!'..=b'~').contains(&c))
}

fn hello(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let mut proto = None;
    let mut i = 1;
    if args.len() >= 2 {
        let v = crate::util::parse_i64(args.get(1))
            .ok_or_else(|| CmdError::msg("Protocol version is not an integer or out of range"))?;
        if v != 2 && v != 3 {
            return Err(CmdError::Raw("NOPROTO unsupported protocol version".into()));
        }
        proto = Some(if v == 3 { Proto::Resp3 } else { Proto::Resp2 });
        i = 2;
    }
    let mut setname = None;
    let mut authed = false;
    while i < args.len() {
        let opt = args.get(i);
        let more = args.len() - i - 1;
        if is(opt, "auth") && more >= 2 {
            check_password(ctx, args.get(i + 1), args.get(i + 2))?;
            authed = true;
            i += 3;
        } else if is(opt, "setname") && more >= 1 {
            let name = args.get(i + 1);
            if !valid_name(name) {
                return Err(CmdError::msg(
                    "Client names cannot contain spaces, newlines or special characters.",
                ));
            }
            setname = Some(name);
            i += 2;
        } else {
            return Err(CmdError::msg(format!(
                "Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(opt)
            )));
        }
    }
    if authed {
        ctx.conn.authenticated = true;
    }
    if !ctx.conn.authenticated {
        return Err(CmdError::Raw("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time".into()));
    }
    if let Some(n) = setname {
        ctx.conn.name = String::from_utf8_lossy(n).into_owned();
    }
    if let Some(p) = proto {
        ctx.out.proto = p;
    }
    let out = &mut *ctx.out;
    out.map(7);
    out.bulk(b"server");
    out.bulk(b"redis");
    out.bulk(b"version");
    out.bulk(REDIS_COMPAT_VERSION.as_bytes());
    out.bulk(b"proto");
    out.int(if out.resp3() { 3 } else { 2 });
    out.bulk(b"id");
    out.int(ctx.conn.id as i64);
    out.bulk(b"mode");
    out.bulk(if ctx.shared.cluster_enabled() {
        b"cluster"
    } else {
        b"standalone"
    });
    out.bulk(b"role");
    out.bulk(b"master");
    out.bulk(b"modules");
    out.array(0);
    Ok(())
}

fn select(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    // Redis Cluster has db 0 only: any other index is refused (after the
    // integer check, before the range check), as Redis's selectCommand.
    if ctx.shared.cluster_enabled() && arg_i32(args.get(1))? != 0 {
        return Err(CmdError::msg("SELECT is not allowed in cluster mode"));
    }
    ctx.conn.db = arg_db(ctx, args.get(1))?;
    ctx.out.ok();
    Ok(())
}

fn quit(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    ctx.out.ok();
    ctx.conn.action = Some(Action::Close);
    Ok(())
}

fn reset(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    let c = &mut *ctx.conn;
    c.db = 0;
    c.name.clear();
    c.no_touch = false;
    c.no_evict = false;
    c.readonly = false;
    c.reply = ReplyMode::On;
    c.monitor = false;
    c.multi = None;
    crate::command::tx::unwatch_all(c);
    // Subscriptions end without confirmations (Redis's clearClientConnectionState).
    if let Some(subs) = c.pubsub.as_deref_mut() {
        subs.clear(&ctx.shared.pubsub);
    }
    c.authenticated = ctx.shared.config.read().requirepass.is_empty();
    ctx.out.proto = Proto::Resp2;
    ctx.out.simple("RESET");
    Ok(())
}

fn client_container(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    if is(args.get(1), "help") {
        return container_help(
            ctx.out,
            args,
            &[
                "CACHING (YES|NO)",
                "    Not supported.",
                "GETNAME",
                "    Return the name of the current connection.",
                "ID",
                "    Return the ID of the current connection.",
                "INFO",
                "    Return information about the current client connection.",
                "KILL <ip:port>",
                "    Kill connection made from <ip:port>.",
                "KILL <option> <value> [<option> <value> [...]]",
                "    Kill connections. Options are: ID <client-id>, ADDR <ip:port>, LADDR <ip:port>,",
                "    TYPE (NORMAL|MASTER|REPLICA|PUBSUB), USER <username>, SKIPME (YES|NO).",
                "LIST [options ...]",
                "    Return information about client connections. Options: TYPE <type>, ID <id> [...].",
                "UNPAUSE",
                "    Stop the current client pause, resuming traffic.",
                "PAUSE <timeout> [WRITE|ALL]",
                "    Suspend all, or just write, clients for <timeout> milliseconds.",
                "REPLY (ON|OFF|SKIP)",
                "    Control the replies sent to the current connection.",
                "SETNAME <name>",
                "    Assign the name <name> to the current connection.",
                "SETINFO <option> <value>",
                "    Set client meta attr. Options are: LIB-NAME, LIB-VER.",
                "NO-EVICT (ON|OFF)",
                "    Protect current client connection from eviction.",
                "NO-TOUCH (ON|OFF)",
                "    Will not touch LRU/LFU stats when this mode is on.",
            ],
        );
    }
    Err(super::unknown_sub(args))
}

fn client_id(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    ctx.out.int(ctx.conn.id as i64);
    Ok(())
}

fn client_setname(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let name = args.get(2);
    if !valid_name(name) {
        return Err(CmdError::msg(
            "Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    ctx.conn.name = String::from_utf8_lossy(name).into_owned();
    ctx.out.ok();
    Ok(())
}

fn client_getname(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    if ctx.conn.name.is_empty() {
        ctx.out.null();
    } else {
        ctx.out.bulk(ctx.conn.name.as_bytes());
    }
    Ok(())
}

fn client_setinfo(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let (attr, val) = (args.get(2), args.get(3));
    if !val.iter().all(|&c| (b'!'..=b'~').contains(&c)) {
        return Err(CmdError::msg(format!(
            "{} cannot contain spaces, newlines or special characters.",
            String::from_utf8_lossy(attr)
        )));
    }
    let v = String::from_utf8_lossy(val).into_owned();
    if is(attr, "lib-name") {
        ctx.conn.lib_name = v;
    } else if is(attr, "lib-ver") {
        ctx.conn.lib_ver = v;
    } else {
        return Err(CmdError::msg(format!(
            "Unrecognized option '{}'",
            String::from_utf8_lossy(attr)
        )));
    }
    ctx.out.ok();
    Ok(())
}

/// One CLIENT LIST line (without the trailing newline), in Redis 7's field order.
fn client_line(c: &ClientHandle, own: Option<&Ctx<'_>>) -> String {
    let m = c.meta.lock().clone();
    let (sub, psub, ssub) = match own {
        Some(ctx) => ctx.conn.sub_counts(),
        None => m.subs,
    };
    let multi = own.map_or(m.multi, |ctx| ctx.conn.multi_count());
    let (name, db, cmd, resp, lib_name, lib_ver, no_touch, no_evict, monitor) = match own {
        // The calling connection's newest state is in its ConnState, not yet published.
        Some(ctx) => (
            ctx.conn.name.clone(),
            ctx.conn.db,
            ctx.conn.last_cmd,
            if ctx.out.resp3() { 3 } else { 2 },
            ctx.conn.lib_name.clone(),
            ctx.conn.lib_ver.clone(),
            ctx.conn.no_touch,
            ctx.conn.no_evict,
            ctx.conn.monitor,
        ),
        None => (
            m.name.clone(),
            m.db,
            m.last_cmd,
            m.resp,
            m.lib_name.clone(),
            m.lib_ver.clone(),
            m.no_touch,
            m.no_evict,
            m.monitor,
        ),
    };
    let mut flags = String::new();
    if monitor {
        flags.push('O');
    }
    if sub + psub + ssub != 0 {
        flags.push('P');
    }
    if multi >= 0 {
        flags.push('x');
    }
    if c.blocked.load(std::sync::atomic::Ordering::Relaxed) {
        flags.push('b');
    }
    if own.map_or(m.readonly, |ctx| ctx.conn.readonly) {
        flags.push('r');
    }
    if no_evict {
        flags.push('e');
    }
    if no_touch {
        flags.push('T');
    }
    if flags.is_empty() {
        flags.push('N');
    }
    let idle = if own.is_some() {
        0
    } else {
        m.last_active.elapsed().as_secs()
    };
    let mut s = String::with_capacity(256);
    let _ = write!(
        s,
        "id={} addr={} laddr={} fd=-1 name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={} qbuf={} qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem={} tot-mem=0 events=r cmd={} user=default redir=-1 resp={} lib-name={} lib-ver={}",
        c.id,
        c.addr,
        c.laddr,
        name,
        c.created.elapsed().as_secs(),
        idle,
        flags,
        db,
        sub,
        psub,
        ssub,
        multi,
        m.qbuf,
        m.obuf,
        cmd,
        resp,
        lib_name,
        lib_ver
    );
    s
}

/// The class CLIENT LIST/KILL TYPE filter on: "pubsub" while the client has
/// subscriptions, otherwise "normal" (no replication yet).
fn client_type(c: &ClientHandle, own: Option<&Ctx<'_>>) -> &'static str {
    let (a, b, s) = match own {
        Some(ctx) => ctx.conn.sub_counts(),
        None => c.meta.lock().subs,
    };
    if a + b + s != 0 { "pubsub" } else { "normal" }
}

fn client_list(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let mut ids: Option<Vec<u64>> = None;
    let mut ctype: Option<String> = None;
    let mut i = 2;
    while i < args.len() {
        let opt = args.get(i);
        if is(opt, "type") && i + 1 < args.len() {
            let t = args.get(i + 1);
            if !["normal", "master", "replica", "slave", "pubsub"]
                .iter()
                .any(|x| is(t, x))
            {
                return Err(CmdError::msg(format!(
                    "Unknown client type '{}'",
                    String::from_utf8_lossy(t)
                )));
            }
            ctype = Some(String::from_utf8_lossy(t).to_ascii_lowercase());
            i += 2;
        } else if is(opt, "id") && i + 1 < args.len() {
            let mut v = Vec::new();
            i += 1;
            while i < args.len() {
                match crate::util::parse_i64(args.get(i)) {
                    Some(id) if id > 0 => v.push(id as u64),
                    _ => return Err(CmdError::msg("Invalid client ID")),
                }
                i += 1;
            }
            ids = Some(v);
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let mut text = String::new();
    for c in ctx.shared.clients.snapshot() {
        if let Some(ids) = &ids
            && !ids.contains(&c.id)
        {
            continue;
        }
        let own = (c.id == ctx.conn.id).then_some(&*ctx);
        if let Some(t) = &ctype
            && t != client_type(&c, own)
        {
            continue;
        }
        text.push_str(&client_line(&c, own));
        text.push('\n');
    }
    ctx.out.verbatim(text.as_bytes());
    Ok(())
}

fn client_info(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    let mut line = client_line(&ctx.conn.handle.clone(), Some(&*ctx));
    line.push('\n');
    ctx.out.verbatim(line.as_bytes());
    Ok(())
}

fn client_kill(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let clients = ctx.shared.clients.snapshot();
    if args.len() == 3 {
        // Old form: CLIENT KILL ip:port.
        let addr = String::from_utf8_lossy(args.get(2)).into_owned();
        let Some(c) = clients.iter().find(|c| c.addr.to_string() == addr) else {
            return Err(CmdError::msg("No such client"));
        };
        kill(ctx, c);
        ctx.out.ok();
        return Ok(());
    }
    let mut id = None;
    let mut addr = None;
    let mut laddr = None;
    let mut skipme = true;
    let mut user = None;
    let mut ctype = None;
    let mut i = 2;
    while i < args.len() {
        if i + 1 >= args.len() {
            return Err(CmdError::Syntax);
        }
        let (opt, val) = (args.get(i), args.get(i + 1));
        let sval = String::from_utf8_lossy(val).into_owned();
        if is(opt, "id") {
            match crate::util::parse_i64(val) {
                Some(v) if v > 0 => id = Some(v as u64),
                _ => return Err(CmdError::msg("client-id should be greater than 0")),
            }
        } else if is(opt, "addr") {
            addr = Some(sval);
        } else if is(opt, "laddr") {
            laddr = Some(sval);
        } else if is(opt, "user") {
            user = Some(sval);
        } else if is(opt, "type") {
            if !["normal", "master", "replica", "slave", "pubsub"]
                .iter()
                .any(|x| is(val, x))
            {
                return Err(CmdError::msg(format!("Unknown client type '{sval}'")));
            }
            ctype = Some(sval.to_ascii_lowercase());
        } else if is(opt, "skipme") {
            skipme = if is(val, "yes") {
                true
            } else if is(val, "no") {
                false
            } else {
                return Err(CmdError::Syntax);
            };
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    let mut killed = 0;
    for c in &clients {
        if id.is_some_and(|v| v != c.id)
            || addr.as_ref().is_some_and(|a| *a != c.addr.to_string())
            || laddr.as_ref().is_some_and(|a| *a != c.laddr.to_string())
            || user.as_ref().is_some_and(|u| u != "default")
            || ctype
                .as_ref()
                .is_some_and(|t| t != client_type(c, (c.id == ctx.conn.id).then_some(&*ctx)))
            || (skipme && c.id == ctx.conn.id)
        {
            continue;
        }
        kill(ctx, c);
        killed += 1;
    }
    ctx.out.int(killed);
    Ok(())
}

fn kill(ctx: &mut Ctx<'_>, c: &ClientHandle) {
    if c.id == ctx.conn.id {
        // Our own connection: reply first, then close.
        ctx.conn.action = Some(Action::Close);
    } else {
        c.kill.cancel();
    }
}

fn client_pause(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let ms = crate::util::parse_i64(args.get(2))
        .filter(|&v| v >= 0)
        .ok_or_else(|| CmdError::msg("timeout is not an integer or out of range"))?;
    let all = match args.len() {
        3 => true,
        4 if is(args.get(3), "all") => true,
        4 if is(args.get(3), "write") => false,
        _ => return Err(CmdError::Syntax),
    };
    ctx.shared
        .pause
        .pause(Instant::now() + Duration::from_millis(ms as u64), all);
    ctx.out.ok();
    Ok(())
}

fn client_unpause(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    ctx.shared.pause.unpause();
    ctx.out.ok();
    Ok(())
}

fn client_reply(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let v = args.get(2);
    if is(v, "on") {
        ctx.conn.reply = ReplyMode::On;
        ctx.out.ok();
    } else if is(v, "off") {
        ctx.conn.reply = ReplyMode::Off;
    } else if is(v, "skip") {
        if ctx.conn.reply == ReplyMode::On {
            ctx.conn.reply = ReplyMode::Skip;
        }
    } else {
        return Err(CmdError::Syntax);
    }
    Ok(())
}

fn on_off(v: &[u8]) -> Result<bool, CmdError> {
    if is(v, "on") {
        Ok(true)
    } else if is(v, "off") {
        Ok(false)
    } else {
        Err(CmdError::Syntax)
    }
}

fn client_no_evict(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    ctx.conn.no_evict = on_off(args.get(2))?;
    ctx.out.ok();
    Ok(())
}

fn client_no_touch(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    ctx.conn.no_touch = on_off(args.get(2))?;
    ctx.out.ok();
    Ok(())
}

/// CLIENT UNBLOCK id [TIMEOUT|ERROR]: 1 if the client was blocked and is now answered.
fn client_unblock(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let id = super::arg_i64(args.get(2))?;
    let error = match args.len() {
        3 => false,
        4 if is(args.get(3), "timeout") => false,
        4 if is(args.get(3), "error") => true,
        4 => {
            return Err(CmdError::msg(
                "CLIENT UNBLOCK reason should be TIMEOUT or ERROR",
            ));
        }
        _ => return Err(CmdError::Syntax),
    };
    let done = u64::try_from(id).is_ok_and(|id| ctx.shared.blocking.unblock(id, error));
    ctx.out.int(i64::from(done));
    Ok(())
}
