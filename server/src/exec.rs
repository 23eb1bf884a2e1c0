//! The single execution path: every command, from a client or (later) a peer,
//! runs through [`execute`]: lookup, arity, auth, handler, stats, slowlog, MONITOR.
//!
//! Architecture Invariant: no handler is called from anywhere else, so checks
//! added here (auth, routing, OOM, MULTI queuing) apply to every command.

use crate::command::{CmdError, CommandSpec, Ctx, flags, truncate_lossy, tx};
use crate::protocol::{Args, OwnedArgs};
use std::time::Instant;

/// Looks up the command (resolving container subcommands) without running it.
pub fn resolve(
    table: &crate::command::CommandTable,
    args: &Args<'_>,
) -> Result<(&'static CommandSpec, usize), CmdError> {
    let name = args.get(0);
    let Some((spec, idx)) = table.lookup(name) else {
        return Err(unknown_command(args));
    };
    if !spec.subcommands.is_empty() && args.len() >= 2 {
        let sub = args.get(1);
        if is_help(sub) {
            return Ok((spec, idx));
        }
        return match table.lookup_sub(spec, sub) {
            Some(found) => Ok(found),
            None => Err(crate::command::unknown_sub(args)),
        };
    }
    Ok((spec, idx))
}

fn is_help(a: &[u8]) -> bool {
    a.eq_ignore_ascii_case(b"help")
}

/// Redis's unknown-command error, echoing up to ~128 bytes of arguments.
pub fn unknown_command(args: &Args<'_>) -> CmdError {
    let mut rest = String::new();
    for a in args.iter().skip(1) {
        if rest.len() >= 128 {
            break;
        }
        let room = 128 - rest.len();
        rest.push('\'');
        rest.push_str(&truncate_lossy(a, room));
        rest.push_str("' ");
    }
    CmdError::Unknown {
        cmd: truncate_lossy(args.get(0), 128),
        args: rest,
    }
}

/// Runs one command and appends its reply (or error) to `ctx.out`.
pub fn execute(ctx: &mut Ctx<'_>, args: &Args<'_>) {
    let shared = ctx.shared;
    let (spec, idx) = match resolve(&shared.commands, args) {
        Ok(found) => found,
        Err(e) => {
            reject(ctx, e);
            return;
        }
    };
    if !spec.arity_ok(args.len()) {
        let e = CmdError::Arity(spec.name.to_string());
        if spec.name == "exec" {
            exec_abort(ctx, e);
        } else {
            reject(ctx, e);
        }
        return;
    }
    if !ctx.conn.authenticated && !spec.has(flags::NO_AUTH) {
        reject(ctx, CmdError::NoAuth);
        return;
    }
    // ---- pub/sub: RESP2 subscribed mode (begin) ----
    // Checked after arity and auth and before anything else, as Redis does.
    if ctx.conn.subscribed()
        && !ctx.out.resp3()
        && !crate::command::pubsub::allowed_in_subscribed_mode(spec.name)
    {
        reject(ctx, subscribed_mode_error(spec, args));
        return;
    }
    // ---- pub/sub: RESP2 subscribed mode (end) ----
    // Route (multi-node cluster mode): -MOVED to the owner of the keys'
    // slot, -CROSSSLOT for keys of several slots. Checked when a command is
    // queued in MULTI, not again inside EXEC, and not for blocked commands
    // served again.
    if !ctx.conn.in_exec
        && !ctx.conn.serving
        && let Some(e) = crate::topology::route(shared, spec, args)
    {
        reject(ctx, e);
        return;
    }
    if shared.loading.load(std::sync::atomic::Ordering::Relaxed) && !spec.has(flags::LOADING) {
        reject(
            ctx,
            CmdError::Raw("LOADING Redis is loading the dataset in memory".into()),
        );
        return;
    }
    if let Some(p) = shared.persist()
        && spec.has(flags::WRITE)
        && !p
            .stats
            .last_write_ok
            .load(std::sync::atomic::Ordering::Relaxed)
    {
        reject(
            ctx,
            CmdError::Raw("MISCONF Errors writing to the persistence backend (see the server log); write commands are refused until a write succeeds again".into()),
        );
        return;
    }
    // maxmemory (as Redis's processCommand): evict first; if still over,
    // refuse what may grow memory, and inside MULTI refuse queuing anything
    // (an EXEC holding denyoom commands is refused too).
    if shared
        .memory
        .maxmemory
        .load(std::sync::atomic::Ordering::Relaxed)
        > 0
        && !ctx.conn.serving
        && !ctx.conn.in_exec
    {
        let is_exec = spec.name == "exec";
        let denyoom = spec.has(flags::DENYOOM)
            || (is_exec && ctx.conn.multi.as_ref().is_some_and(|m| m.denyoom));
        let queuing =
            ctx.conn.multi.is_some() && !matches!(spec.name, "exec" | "discard" | "quit" | "reset");
        if !shared.enforce_maxmemory(ctx.now) && (denyoom || queuing) {
            let oom =
                CmdError::Raw("OOM command not allowed when used memory > 'maxmemory'.".into());
            if is_exec {
                exec_abort(ctx, oom);
            } else {
                reject(ctx, oom);
            }
            return;
        }
    }
    if ctx.conn.multi.is_some() && !tx::is_multi_control(spec) {
        if spec.has(flags::NO_MULTI) {
            reject(
                ctx,
                CmdError::msg("Command not allowed inside a transaction"),
            );
            return;
        }
        if let Some(m) = ctx.conn.multi.as_mut() {
            m.queued.push(OwnedArgs::from_args(args));
            m.denyoom |= spec.has(flags::DENYOOM);
        }
        ctx.out.simple("QUEUED");
        return;
    }
    if !ctx.conn.in_exec {
        // Inside EXEC, CLIENT LIST keeps showing `exec`, as Redis's.
        ctx.conn.last_cmd = spec.name;
    }
    // EXEC takes the whole gate itself; commands inside it already run under it.
    // SAVE takes it too: its write-behind cycle drains the shards under the
    // whole gate, so no command is half applied in what reaches disk.
    let gate = (!ctx.conn.in_exec && spec.name != "exec" && spec.name != "save")
        .then(|| shared.gate.read(ctx.conn.id));
    let start = Instant::now();
    let mark = ctx.out.mark();
    let result = (spec.handler)(ctx, args);
    let took = start.elapsed();
    let stat = &shared.commands.stats()[idx];
    stat.record(took, result.is_ok());
    shared.stats.command();
    let ok = result.is_ok();
    if let Err(e) = result {
        ctx.out.truncate(mark);
        ctx.out.error(&e.to_string());
        shared.stats.error_reply();
    }
    if ok
        && spec.has(flags::WRITE)
        && let Some(p) = shared.persist()
        && p.must_hold()
    {
        ctx.out.hold_until = p.target();
    }
    if ok && spec.has(flags::WRITE) && shared.blocking.blocked() > 0 {
        let db = ctx.conn.db;
        for p in spec.keys_in(args) {
            ctx.conn.ready.push((db, args.get(p).to_vec()));
        }
    }
    drop(gate);
    if !spec.has(flags::SKIP_SLOWLOG) {
        shared.slowlog.maybe_record(took, args, ctx.conn);
    }
    if !spec.has(flags::SKIP_MONITOR) && !spec.has(flags::ADMIN) {
        shared.monitor.feed(ctx.now, ctx.conn, args);
    }
    // Blocked clients are served after the command (after the whole EXEC),
    // before this connection runs anything else, as Redis does.
    if !ctx.conn.ready.is_empty() && !ctx.conn.in_exec && !ctx.conn.serving {
        let ready = std::mem::take(&mut ctx.conn.ready);
        shared.blocking.serve(shared, ready);
    }
}

/// A refused EXEC ends the transaction with the refusal as its reason.
fn exec_abort(ctx: &mut Ctx<'_>, e: CmdError) {
    ctx.shared.stats.error_reply();
    ctx.shared.stats.rejected_call();
    ctx.conn.multi = None;
    tx::unwatch_all(ctx.conn);
    let msg = e.to_string();
    let reason = msg.strip_prefix("ERR ").unwrap_or(&msg);
    ctx.out.error(&format!(
        "EXECABORT Transaction discarded because of: {reason}"
    ));
}

/// The RESP2 subscribed-mode refusal, naming the command as Redis's
/// `fullname` (`container|sub`, also for HELP which dispatches to the container).
fn subscribed_mode_error(spec: &CommandSpec, args: &Args<'_>) -> CmdError {
    let name = if !spec.subcommands.is_empty() && args.len() >= 2 {
        format!(
            "{}|{}",
            spec.name,
            String::from_utf8_lossy(args.get(1)).to_ascii_lowercase()
        )
    } else {
        spec.name.to_string()
    };
    CmdError::msg(format!(
        "Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
    ))
}

fn reject(ctx: &mut Ctx<'_>, e: CmdError) {
    ctx.shared.stats.error_reply();
    ctx.shared.stats.rejected_call();
    ctx.out.error(&e.to_string());
    // A refused command inside MULTI makes EXEC fail (EXECABORT).
    if let Some(m) = ctx.conn.multi.as_mut() {
        m.dirty = true;
    }
}
