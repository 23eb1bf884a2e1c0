//! Pub/Sub delivery: the registry of channel, pattern and shard-channel
//! subscriptions, the per-connection message queue, and keyspace notifications.
//!
//! A publisher never touches a socket. It encodes each message once, appends
//! the frame (a cheap `Bytes` clone) to every receiver's queue and wakes the
//! receiver's connection task, which copies the frames into its output buffer
//! between whole replies (so a reply and a message never interleave mid-frame)
//! and writes them. A receiver that does not read lets its queue grow; the
//! publisher checks the queued bytes against `client-output-buffer-limit
//! pubsub` and cancels the receiver's kill token when over, then stops
//! queueing to it, so a slow client costs bounded memory and never blocks
//! PUBLISH.
//!
//! Locks: the three maps are read-locked by publishers and write-locked by
//! (un)subscribes; a receiver's queue mutex is taken under a map read lock and
//! alone by its connection. Nothing here takes a shard lock, so keyspace
//! notifications may be published while a command holds one.

use bytes::{BufMut, Bytes, BytesMut};
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The three subscription namespaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// SUBSCRIBE / PUBLISH.
    Channel,
    /// PSUBSCRIBE (glob patterns matched against PUBLISH channels).
    Pattern,
    /// SSUBSCRIBE / SPUBLISH.
    Shard,
}

impl Kind {
    /// The confirmation word of a subscribe (`true`) or unsubscribe reply.
    pub fn reply_word(self, subscribe: bool) -> &'static str {
        match (self, subscribe) {
            (Kind::Channel, true) => "subscribe",
            (Kind::Channel, false) => "unsubscribe",
            (Kind::Pattern, true) => "psubscribe",
            (Kind::Pattern, false) => "punsubscribe",
            (Kind::Shard, true) => "ssubscribe",
            (Kind::Shard, false) => "sunsubscribe",
        }
    }
}

type Subscribers = hashbrown::HashMap<Bytes, Vec<Arc<Subscriber>>>;

/// All subscriptions of one node.
#[derive(Debug, Default)]
pub struct PubSub {
    channels: RwLock<Subscribers>,
    patterns: RwLock<Subscribers>,
    shard: RwLock<Subscribers>,
    /// (channel, subscriber) plus (pattern, subscriber) pairs: PUBLISH (and
    /// every keyspace notification) returns at once when this is zero.
    pairs: AtomicUsize,
    /// (pattern, subscriber) pairs: PUBLISH skips the pattern scan when zero.
    pattern_pairs: AtomicUsize,
    /// (shard channel, subscriber) pairs.
    shard_pairs: AtomicUsize,
    /// `client-output-buffer-limit pubsub`: hard bytes, soft bytes, soft seconds.
    hard: AtomicU64,
    soft: AtomicU64,
    soft_secs: AtomicU64,
    /// Bytes of messages queued for or held by subscribers, all connections:
    /// counted in used_memory and against maxmemory, as Redis counts client
    /// output buffers.
    queued: Arc<AtomicUsize>,
}

impl PubSub {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes of messages not yet written to subscribers' sockets.
    pub fn queued_bytes(&self) -> usize {
        self.queued.load(Relaxed)
    }

    /// Installs the `client-output-buffer-limit pubsub` class (0 = no limit).
    pub fn set_limits(&self, l: crate::config::OutputLimit) {
        self.hard.store(l.hard, Relaxed);
        self.soft.store(l.soft, Relaxed);
        self.soft_secs.store(l.soft_secs, Relaxed);
    }

    fn map(&self, kind: Kind) -> &RwLock<Subscribers> {
        match kind {
            Kind::Channel => &self.channels,
            Kind::Pattern => &self.patterns,
            Kind::Shard => &self.shard,
        }
    }

    fn counter(&self, kind: Kind) -> [&AtomicUsize; 2] {
        match kind {
            Kind::Channel => [&self.pairs, &self.pairs],
            Kind::Pattern => [&self.pairs, &self.pattern_pairs],
            Kind::Shard => [&self.shard_pairs, &self.shard_pairs],
        }
    }

    /// Whether any PUBLISH could reach anyone (one atomic load).
    #[inline]
    pub fn has_subscribers(&self) -> bool {
        self.pairs.load(Relaxed) != 0
    }

    fn add(&self, kind: Kind, name: &Bytes, sub: &Arc<Subscriber>) {
        self.map(kind)
            .write()
            .entry(name.clone())
            .or_default()
            .push(Arc::clone(sub));
        let [a, b] = self.counter(kind);
        a.fetch_add(1, Relaxed);
        if !std::ptr::eq(a, b) {
            b.fetch_add(1, Relaxed);
        }
    }

    fn remove(&self, kind: Kind, name: &[u8], id: u64) {
        let mut m = self.map(kind).write();
        let Some(list) = m.get_mut(name) else {
            return;
        };
        let before = list.len();
        list.retain(|s| s.id != id);
        let removed = before - list.len();
        if list.is_empty() {
            m.remove(name);
        }
        drop(m);
        let [a, b] = self.counter(kind);
        a.fetch_sub(removed, Relaxed);
        if !std::ptr::eq(a, b) {
            b.fetch_sub(removed, Relaxed);
        }
    }

    /// PUBLISH: delivers to the channel's subscribers, then to every matching
    /// pattern's; returns the number of receivers (a client subscribed to the
    /// channel and to two matching patterns counts three times, as in Redis).
    pub fn publish(&self, channel: &[u8], message: &[u8]) -> usize {
        if self.pairs.load(Relaxed) == 0 {
            return 0;
        }
        let mut n = 0;
        {
            let chans = self.channels.read();
            if let Some(list) = chans.get(channel) {
                let frame = encode(&[b"message", channel, message]);
                for s in list {
                    s.deliver(&frame, self);
                }
                n += list.len();
            }
        }
        if self.pattern_pairs.load(Relaxed) != 0 {
            let pats = self.patterns.read();
            for (pat, list) in pats.iter() {
                if crate::util::glob_match(pat, channel, false) {
                    let frame = encode(&[b"pmessage", pat, channel, message]);
                    for s in list {
                        s.deliver(&frame, self);
                    }
                    n += list.len();
                }
            }
        }
        n
    }

    /// SPUBLISH: delivers to the shard channel's subscribers.
    pub fn spublish(&self, channel: &[u8], message: &[u8]) -> usize {
        if self.shard_pairs.load(Relaxed) == 0 {
            return 0;
        }
        let chans = self.shard.read();
        let Some(list) = chans.get(channel) else {
            return 0;
        };
        let frame = encode(&[b"smessage", channel, message]);
        for s in list {
            s.deliver(&frame, self);
        }
        list.len()
    }

    /// Active channels (PUBSUB CHANNELS / SHARDCHANNELS) matching `pattern`.
    pub fn channels(&self, kind: Kind, pattern: Option<&[u8]>) -> Vec<Bytes> {
        self.map(kind)
            .read()
            .keys()
            .filter(|c| pattern.is_none_or(|p| crate::util::glob_match(p, c, false)))
            .cloned()
            .collect()
    }

    /// Subscribers of one channel (PUBSUB NUMSUB / SHARDNUMSUB).
    pub fn numsub(&self, kind: Kind, channel: &[u8]) -> usize {
        self.map(kind).read().get(channel).map_or(0, Vec::len)
    }

    /// Distinct channels, patterns and shard channels with subscribers (INFO, PUBSUB NUMPAT).
    pub fn counts(&self) -> (usize, usize, usize) {
        (
            self.channels.read().len(),
            self.patterns.read().len(),
            self.shard.read().len(),
        )
    }

    /// Keyspace notification (Redis's notifyKeyspaceEvent) once the caller
    /// has checked that `class` is enabled in `flags`: `event` to
    /// `__keyspace@<db>__:<key>` with K, `key` to `__keyevent@<db>__:<event>` with E.
    pub fn notify_keyspace(&self, flags: u32, db: usize, event: &str, key: &[u8]) {
        if !self.has_subscribers() {
            return;
        }
        let mut db_buf = itoa::Buffer::new();
        let db = db_buf.format(db).as_bytes();
        if flags & crate::notify::KEYSPACE != 0 {
            let mut chan = Vec::with_capacity(16 + db.len() + key.len());
            chan.extend_from_slice(b"__keyspace@");
            chan.extend_from_slice(db);
            chan.extend_from_slice(b"__:");
            chan.extend_from_slice(key);
            self.publish(&chan, event.as_bytes());
        }
        if flags & crate::notify::KEYEVENT != 0 {
            let mut chan = Vec::with_capacity(16 + db.len() + event.len());
            chan.extend_from_slice(b"__keyevent@");
            chan.extend_from_slice(db);
            chan.extend_from_slice(b"__:");
            chan.extend_from_slice(event.as_bytes());
            self.publish(&chan, key);
        }
    }
}

/// A message frame as a RESP2 array; delivery to a RESP3 client swaps the
/// leading `*` for `>` (the rest of the frame is the same in both protocols).
fn encode(parts: &[&[u8]]) -> Bytes {
    let len: usize = parts.iter().map(|p| p.len() + 16).sum();
    let mut b = BytesMut::with_capacity(len + 8);
    let mut n = itoa::Buffer::new();
    b.put_u8(b'*');
    b.put_slice(n.format(parts.len()).as_bytes());
    b.put_slice(b"\r\n");
    for p in parts {
        b.put_u8(b'$');
        b.put_slice(n.format(p.len()).as_bytes());
        b.put_slice(b"\r\n");
        b.put_slice(p);
        b.put_slice(b"\r\n");
    }
    b.freeze()
}

/// Messages waiting for one connection.
#[derive(Debug, Default)]
struct Queue {
    /// (encode as RESP3 push, frame).
    frames: VecDeque<(bool, Bytes)>,
    /// Since when the pending bytes have been over the soft limit.
    soft_since: Option<Instant>,
}

/// One connection as a receiver of messages.
#[derive(Debug)]
pub struct Subscriber {
    pub id: u64,
    addr: String,
    kill: CancellationToken,
    /// The connection's protocol, for the next frames queued (Redis encodes
    /// a message in the protocol the client speaks when it is published).
    resp3: AtomicBool,
    queue: Mutex<Queue>,
    /// Bytes queued plus bytes taken by the connection and not yet written:
    /// what the output buffer limit is checked against.
    pending: AtomicUsize,
    /// Wakes the connection task when frames were queued.
    wake: Notify,
    /// The registry-wide total `pending` is mirrored into.
    total: Option<Arc<AtomicUsize>>,
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        if let Some(t) = &self.total {
            t.fetch_sub(*self.pending.get_mut(), Relaxed);
        }
    }
}

impl Subscriber {
    pub fn new(id: u64, addr: String, kill: CancellationToken) -> Self {
        Subscriber {
            id,
            addr,
            kill,
            resp3: AtomicBool::new(false),
            queue: Mutex::new(Queue::default()),
            pending: AtomicUsize::new(0),
            wake: Notify::new(),
            total: None,
        }
    }

    /// Mirrors this subscriber's pending bytes into `ps`'s total.
    pub fn counted_in(mut self, ps: &PubSub) -> Self {
        self.total = Some(Arc::clone(&ps.queued));
        self
    }

    #[inline]
    fn add_pending(&self, n: usize) -> usize {
        if let Some(t) = &self.total {
            t.fetch_add(n, Relaxed);
        }
        self.pending.fetch_add(n, Relaxed) + n
    }

    #[inline]
    fn sub_pending(&self, n: usize) {
        if let Some(t) = &self.total {
            t.fetch_sub(n, Relaxed);
        }
        self.pending.fetch_sub(n, Relaxed);
    }

    fn deliver(&self, frame: &Bytes, ps: &PubSub) {
        // A client being closed for its output buffer still counts as a
        // receiver (Redis does the same) but gets nothing more queued.
        if self.kill.is_cancelled() {
            return;
        }
        let len = frame.len();
        let pending = self.add_pending(len);
        let mut q = self.queue.lock();
        if self.over_limit(&mut q, pending as u64, ps) {
            self.sub_pending(len);
            drop(q);
            self.kill.cancel();
            return;
        }
        q.frames
            .push_back((self.resp3.load(Relaxed), frame.clone()));
        drop(q);
        self.wake.notify_one();
    }

    /// Redis's checkClientOutputBufferLimits for the pubsub class.
    fn over_limit(&self, q: &mut Queue, pending: u64, ps: &PubSub) -> bool {
        let hard = ps.hard.load(Relaxed);
        let soft = ps.soft.load(Relaxed);
        if hard != 0 && pending >= hard {
            tracing::warn!(
                id = self.id,
                addr = %self.addr,
                pending,
                hard,
                "closing pub/sub client over the output buffer hard limit"
            );
            return true;
        }
        if soft != 0 && pending >= soft {
            let secs = ps.soft_secs.load(Relaxed);
            match q.soft_since {
                None => q.soft_since = Some(Instant::now()),
                Some(t) if t.elapsed() > Duration::from_secs(secs) => {
                    tracing::warn!(
                        id = self.id,
                        addr = %self.addr,
                        pending,
                        soft,
                        soft_secs = secs,
                        "closing pub/sub client over the output buffer soft limit for too long"
                    );
                    return true;
                }
                Some(_) => {}
            }
        } else {
            q.soft_since = None;
        }
        false
    }

    /// Sets the protocol of frames queued from now on (HELLO, RESET).
    #[inline]
    pub fn set_resp3(&self, resp3: bool) {
        if self.resp3.load(Relaxed) != resp3 {
            self.resp3.store(resp3, Relaxed);
        }
    }

    /// Whether messages are queued (an atomic load).
    #[inline]
    pub fn has_pending(&self) -> bool {
        self.pending.load(Relaxed) != 0
    }

    /// Resolves once frames may have been queued since the last drain.
    pub async fn ready(&self) {
        self.wake.notified().await
    }

    /// Moves the queued frames to `out`; returns their size, which stays
    /// counted as pending until [`Subscriber::written`].
    pub fn drain_into(&self, out: &mut BytesMut) -> usize {
        let frames = std::mem::take(&mut self.queue.lock().frames);
        let mut n = 0;
        for (resp3, f) in frames {
            out.put_u8(if resp3 { b'>' } else { b'*' });
            out.put_slice(&f[1..]);
            n += f.len();
        }
        n
    }

    /// `n` drained bytes reached the socket.
    pub fn written(&self, n: usize) {
        if n != 0 {
            self.sub_pending(n);
        }
    }
}

/// Names in subscription order, for UNSUBSCRIBE without arguments.
#[derive(Debug, Default)]
struct OrderedSet {
    seq: u64,
    index: hashbrown::HashMap<Bytes, u64>,
    order: BTreeMap<u64, Bytes>,
}

impl OrderedSet {
    fn insert(&mut self, name: &Bytes) -> bool {
        if self.index.contains_key(name) {
            return false;
        }
        self.seq += 1;
        self.index.insert(name.clone(), self.seq);
        self.order.insert(self.seq, name.clone());
        true
    }

    fn remove(&mut self, name: &[u8]) -> bool {
        match self.index.remove(name) {
            Some(s) => {
                self.order.remove(&s);
                true
            }
            None => false,
        }
    }

    fn len(&self) -> usize {
        self.index.len()
    }

    fn first(&self) -> Option<Bytes> {
        self.order.values().next().cloned()
    }
}

/// One connection's subscriptions (owned by its task, in `ConnState`).
#[derive(Debug)]
pub struct ConnSubs {
    pub sub: Arc<Subscriber>,
    channels: OrderedSet,
    patterns: OrderedSet,
    shard: OrderedSet,
    /// Bytes drained into the output buffer and not yet written.
    pub inflight: usize,
}

impl ConnSubs {
    pub fn new(sub: Arc<Subscriber>) -> Self {
        ConnSubs {
            sub,
            channels: OrderedSet::default(),
            patterns: OrderedSet::default(),
            shard: OrderedSet::default(),
            inflight: 0,
        }
    }

    fn set(&mut self, kind: Kind) -> &mut OrderedSet {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard,
        }
    }

    /// The count a (un)subscribe confirmation carries: channels plus
    /// patterns, or shard channels alone (Redis 7.0's two counters).
    pub fn count(&self, kind: Kind) -> usize {
        match kind {
            Kind::Shard => self.shard.len(),
            _ => self.channels.len() + self.patterns.len(),
        }
    }

    /// Subscriptions of each kind (CLIENT LIST sub, psub, ssub).
    pub fn counts(&self) -> (usize, usize, usize) {
        (self.channels.len(), self.patterns.len(), self.shard.len())
    }

    /// All subscriptions: RESP2 clients with any are in subscribed mode.
    pub fn total(&self) -> usize {
        self.channels.len() + self.patterns.len() + self.shard.len()
    }

    /// Subscribes; false if already subscribed.
    pub fn subscribe(&mut self, ps: &PubSub, kind: Kind, name: &[u8]) -> bool {
        let name = Bytes::copy_from_slice(name);
        if !self.set(kind).insert(&name) {
            return false;
        }
        ps.add(kind, &name, &self.sub);
        true
    }

    /// Unsubscribes; false if not subscribed.
    pub fn unsubscribe(&mut self, ps: &PubSub, kind: Kind, name: &[u8]) -> bool {
        if !self.set(kind).remove(name) {
            return false;
        }
        ps.remove(kind, name, self.sub.id);
        true
    }

    /// The oldest subscription of `kind` (UNSUBSCRIBE without arguments
    /// unsubscribes them in order).
    pub fn first(&self, kind: Kind) -> Option<Bytes> {
        match kind {
            Kind::Channel => self.channels.first(),
            Kind::Pattern => self.patterns.first(),
            Kind::Shard => self.shard.first(),
        }
    }

    /// Drops every subscription silently (RESET, disconnect).
    pub fn clear(&mut self, ps: &PubSub) {
        for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
            while let Some(name) = self.first(kind) {
                self.unsubscribe(ps, kind, &name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(id: u64) -> Arc<Subscriber> {
        Arc::new(Subscriber::new(id, "test".into(), CancellationToken::new()))
    }

    fn drain(s: &Subscriber) -> Vec<u8> {
        let mut b = BytesMut::new();
        let n = s.drain_into(&mut b);
        s.written(n);
        b.to_vec()
    }

    #[test]
    fn channel_and_pattern_delivery() {
        let ps = PubSub::new();
        assert_eq!(ps.publish(b"a", b"x"), 0);
        let mut c = ConnSubs::new(sub(1));
        assert!(c.subscribe(&ps, Kind::Channel, b"news"));
        assert!(!c.subscribe(&ps, Kind::Channel, b"news"));
        assert!(c.subscribe(&ps, Kind::Pattern, b"n*"));
        assert_eq!(c.count(Kind::Channel), 2);
        assert_eq!(ps.publish(b"news", b"hi"), 2);
        assert_eq!(
            drain(&c.sub),
            b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n*4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$2\r\nhi\r\n"
        );
        assert!(!c.sub.has_pending());
        c.sub.set_resp3(true);
        assert_eq!(ps.publish(b"nope", b"1"), 1);
        assert_eq!(drain(&c.sub)[0], b'>');
        c.clear(&ps);
        assert_eq!(ps.counts(), (0, 0, 0));
        assert!(!ps.has_subscribers());
        assert_eq!(ps.publish(b"news", b"hi"), 0);
    }

    #[test]
    fn hard_limit_kills_and_stops_queueing() {
        let ps = PubSub::new();
        ps.set_limits(crate::config::OutputLimit {
            hard: 1000,
            soft: 0,
            soft_secs: 0,
        });
        let mut c = ConnSubs::new(sub(1));
        c.subscribe(&ps, Kind::Shard, b"s");
        for _ in 0..100 {
            assert_eq!(ps.spublish(b"s", &[b'x'; 100]), 1);
        }
        assert!(c.sub.kill.is_cancelled());
        assert!(c.sub.pending.load(Relaxed) < 1000);
    }
}
