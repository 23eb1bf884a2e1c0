//! Pub/Sub commands: (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PUBLISH, SPUBLISH and
//! PUBSUB introspection. Delivery lives in [`crate::pubsub`].
//!
//! Confirmations are written straight into the reply, one per channel, as
//! pushes (`>` in RESP3, arrays in RESP2) carrying the running count.

use super::{CmdError, CmdResult, CommandSpec, Ctx, container_help, flags::*, is};
use crate::cmd;
use crate::protocol::{Args, Out};
use crate::pubsub::Kind;

const PS: &[&str] = &[];

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    cmd!("subscribe", -2, PUBSUB | NOSCRIPT | LOADING | STALE, (0, 0, 0), PS, "pubsub", "2.0.0", "Listens for messages published to channels.", subscribe),
    cmd!("unsubscribe", -1, PUBSUB | NOSCRIPT | LOADING | STALE, (0, 0, 0), PS, "pubsub", "2.0.0", "Stops listening to messages posted to channels.", unsubscribe),
    cmd!("psubscribe", -2, PUBSUB | NOSCRIPT | LOADING | STALE, (0, 0, 0), PS, "pubsub", "2.0.0", "Listens for messages published to channels that match one or more patterns.", psubscribe),
    cmd!("punsubscribe", -1, PUBSUB | NOSCRIPT | LOADING | STALE, (0, 0, 0), PS, "pubsub", "2.0.0", "Stops listening to messages published to channels that match one or more patterns.", punsubscribe),
    cmd!("publish", 3, PUBSUB | LOADING | STALE | FAST, (0, 0, 0), PS, "pubsub", "2.0.0", "Posts a message to a channel.", publish),
    CommandSpec {
        subcommands: PUBSUB_SUBS,
        ..cmd!("pubsub", -2, 0, (0, 0, 0), PS, "pubsub", "2.8.0", "A container for Pub/Sub commands.", pubsub_container)
    },
    cmd!("ssubscribe", -2, PUBSUB | NOSCRIPT | LOADING | STALE, (1, -1, 1), PS, "pubsub", "7.0.0", "Listens for messages published to shard channels.", ssubscribe),
    cmd!("sunsubscribe", -1, PUBSUB | NOSCRIPT | LOADING | STALE, (1, -1, 1), PS, "pubsub", "7.0.0", "Stops listening to messages posted to shard channels.", sunsubscribe),
    cmd!("spublish", 3, PUBSUB | LOADING | STALE | FAST, (1, 1, 1), PS, "pubsub", "7.0.0", "Post a message to a shard channel", spublish),
];

#[rustfmt::skip]
static PUBSUB_SUBS: &[CommandSpec] = &[
    cmd!("pubsub|channels", -2, PUBSUB | LOADING | STALE, (0, 0, 0), PS, "pubsub", "2.8.0", "Returns the active channels.", pubsub_channels),
    cmd!("pubsub|numpat", 2, PUBSUB | LOADING | STALE, (0, 0, 0), PS, "pubsub", "2.8.0", "Returns a count of unique pattern subscriptions.", pubsub_numpat),
    cmd!("pubsub|numsub", -2, PUBSUB | LOADING | STALE, (0, 0, 0), PS, "pubsub", "2.8.0", "Returns a count of subscribers to channels.", pubsub_numsub),
    cmd!("pubsub|shardchannels", -2, PUBSUB | LOADING | STALE, (0, 0, 0), PS, "pubsub", "7.0.0", "Returns the active shard channels.", pubsub_shardchannels),
    cmd!("pubsub|shardnumsub", -2, PUBSUB | LOADING | STALE, (0, 0, 0), PS, "pubsub", "7.0.0", "Returns the count of subscribers of shard channels.", pubsub_shardnumsub),
    cmd!("pubsub|help", 2, LOADING | STALE, (0, 0, 0), PS, "pubsub", "6.2.0", "Returns helpful text about the different subcommands.", pubsub_container),
];

/// One (un)subscribe confirmation: `[word, channel or nil, count]`.
fn confirm(out: &mut Out, word: &str, name: Option<&[u8]>, count: usize) {
    out.push(3);
    out.bulk(word.as_bytes());
    match name {
        Some(n) => out.bulk(n),
        None => out.null(),
    }
    out.int(count as i64);
}

fn subscribe_generic(ctx: &mut Ctx<'_>, args: &Args<'_>, kind: Kind) -> CmdResult {
    let ps = &ctx.shared.pubsub;
    let subs = ctx.conn.pubsub_mut(&ctx.shared.pubsub);
    // Messages queued from now on are encoded in the client's protocol.
    subs.sub.set_resp3(ctx.out.resp3());
    let word = kind.reply_word(true);
    for name in args.iter().skip(1) {
        subs.subscribe(ps, kind, name);
        confirm(ctx.out, word, Some(name), subs.count(kind));
    }
    Ok(())
}

fn unsubscribe_generic(ctx: &mut Ctx<'_>, args: &Args<'_>, kind: Kind) -> CmdResult {
    let ps = &ctx.shared.pubsub;
    let word = kind.reply_word(false);
    let subs = ctx.conn.pubsub.as_deref_mut();
    if args.len() == 1 {
        // Without arguments: every subscription of this kind, oldest first;
        // with none, one confirmation with a nil channel.
        let mut any = false;
        let mut count = 0;
        if let Some(subs) = subs {
            while let Some(name) = subs.first(kind) {
                subs.unsubscribe(ps, kind, &name);
                confirm(ctx.out, word, Some(&name), subs.count(kind));
                any = true;
            }
            count = subs.count(kind);
        }
        if !any {
            confirm(ctx.out, word, None, count);
        }
        return Ok(());
    }
    match subs {
        Some(subs) => {
            for name in args.iter().skip(1) {
                subs.unsubscribe(ps, kind, name);
                confirm(ctx.out, word, Some(name), subs.count(kind));
            }
        }
        None => {
            for name in args.iter().skip(1) {
                confirm(ctx.out, word, Some(name), 0);
            }
        }
    }
    Ok(())
}

fn subscribe(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    subscribe_generic(ctx, args, Kind::Channel)
}

fn psubscribe(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    subscribe_generic(ctx, args, Kind::Pattern)
}

fn ssubscribe(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    subscribe_generic(ctx, args, Kind::Shard)
}

fn unsubscribe(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    unsubscribe_generic(ctx, args, Kind::Channel)
}

fn punsubscribe(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    unsubscribe_generic(ctx, args, Kind::Pattern)
}

fn sunsubscribe(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    unsubscribe_generic(ctx, args, Kind::Shard)
}

fn publish(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let n = ctx.shared.pubsub.publish(args.get(1), args.get(2));
    ctx.out.int(n as i64);
    Ok(())
}

fn spublish(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let n = ctx.shared.pubsub.spublish(args.get(1), args.get(2));
    ctx.out.int(n as i64);
    Ok(())
}

/// PUBSUB HELP (the dispatcher routes HELP to the container).
fn pubsub_container(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    if is(args.get(1), "help") {
        return container_help(
            ctx.out,
            args,
            &[
                "CHANNELS [<pattern>]",
                "    Return the currently active channels matching a <pattern> (default: '*').",
                "NUMPAT",
                "    Return number of subscriptions to patterns.",
                "NUMSUB [<channel> ...]",
                "    Return the number of subscribers for the specified channels, excluding",
                "    pattern subscriptions(default: no channels).",
                "SHARDCHANNELS [<pattern>]",
                "    Return the currently active shard level channels matching a <pattern> (default: '*').",
                "SHARDNUMSUB [<shardchannel> ...]",
                "    Return the number of subscribers for the specified shard level channel(s)",
            ],
        );
    }
    Err(super::unknown_sub(args))
}

/// Redis's addReplySubcommandSyntaxError, echoing the subcommand as given.
fn sub_syntax(args: &Args<'_>) -> CmdError {
    CmdError::msg(format!(
        "unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
        super::truncate_lossy(args.get(1), 128)
    ))
}

fn channels_generic(ctx: &mut Ctx<'_>, args: &Args<'_>, kind: Kind) -> CmdResult {
    if args.len() > 3 {
        return Err(sub_syntax(args));
    }
    let pattern = (args.len() == 3).then(|| args.get(2));
    let list = ctx.shared.pubsub.channels(kind, pattern);
    ctx.out.bulks(list.iter().map(|c| &c[..]));
    Ok(())
}

fn numsub_generic(ctx: &mut Ctx<'_>, args: &Args<'_>, kind: Kind) -> CmdResult {
    let ps = &ctx.shared.pubsub;
    ctx.out.array((args.len() - 2) * 2);
    for ch in args.iter().skip(2) {
        ctx.out.bulk(ch);
        ctx.out.int(ps.numsub(kind, ch) as i64);
    }
    Ok(())
}

fn pubsub_channels(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    channels_generic(ctx, args, Kind::Channel)
}

fn pubsub_shardchannels(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    channels_generic(ctx, args, Kind::Shard)
}

fn pubsub_numsub(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    numsub_generic(ctx, args, Kind::Channel)
}

fn pubsub_shardnumsub(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    numsub_generic(ctx, args, Kind::Shard)
}

fn pubsub_numpat(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    ctx.out.int(ctx.shared.pubsub.counts().1 as i64);
    Ok(())
}

/// The commands a RESP2 client in subscribed mode may run (Redis 7.0's list).
pub fn allowed_in_subscribed_mode(name: &str) -> bool {
    matches!(
        name,
        "ping"
            | "subscribe"
            | "ssubscribe"
            | "unsubscribe"
            | "sunsubscribe"
            | "psubscribe"
            | "punsubscribe"
            | "quit"
            | "reset"
    )
}
