//! Random commands with random arguments from the command table: every one
//! gets a reply and the connection stays open (no panic, hang or close),
//! whatever the argument types, counts and option spellings.
mod common;

use common::{Raw, TestNode, encode};

/// Commands that change the connection or the node in ways a random run must
/// not trigger (closing, blocking forever, streaming, shutting down).
const SKIP: &[&str] = &[
    "shutdown",
    "debug",
    "monitor",
    "subscribe",
    "psubscribe",
    "ssubscribe",
    "unsubscribe",
    "punsubscribe",
    "sunsubscribe",
    "quit",
    "reset",
    "client",
    "hello",
    "auth",
    "blpop",
    "brpop",
    "blmove",
    "brpoplpush",
    "blmpop",
    "bzpopmin",
    "bzpopmax",
    "bzmpop",
    "multi",
    "exec",
    "config",
    "select",
    "swapdb",
    "flushall",
    "flushdb",
];

const WORDS: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "100",
    "-100",
    "9223372036854775807",
    "-9223372036854775808",
    "1.5",
    "inf",
    "-inf",
    "nan",
    "(1",
    "[a",
    "-",
    "+",
    "k",
    "k2",
    "l",
    "h",
    "s",
    "z",
    "",
    "COUNT",
    "LIMIT",
    "WITHSCORES",
    "BYSCORE",
    "BYLEX",
    "REV",
    "MATCH",
    "*",
    "NX",
    "XX",
    "GT",
    "LT",
    "CH",
    "INCR",
    "WEIGHTS",
    "AGGREGATE",
    "MIN",
    "MAX",
    "LEFT",
    "RIGHT",
    "BEFORE",
    "AFTER",
    "RANK",
    "MAXLEN",
    "STORE",
    "BY",
    "GET",
    "ALPHA",
    "#",
    "OVERFLOW",
    "SAT",
    "WRAP",
    "FAIL",
    "i8",
    "u63",
    "i64",
    "#1",
    "BIT",
    "BYTE",
    "AND",
    "OR",
    "XOR",
    "NOT",
    "EX",
    "PX",
    "KEEPTTL",
    "WITHVALUES",
    "4294967295",
    "4294967296",
    "h_*->f",
    "nosort",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_commands_always_get_a_reply() {
    let node = TestNode::start().await;
    let mut r = node.raw().await;
    let shared = node.handle.as_ref().expect("running").shared().clone();
    let names: Vec<&'static str> = shared
        .commands
        .all()
        .iter()
        .map(|c| c.name)
        .filter(|n| !SKIP.contains(n))
        .collect();
    let setup: &[&[&[u8]]] = &[
        &[b"RPUSH", b"l", b"a", b"b", b"1"],
        &[b"HSET", b"h", b"f", b"1"],
        &[b"SADD", b"s", b"1", b"2"],
        &[b"ZADD", b"z", b"1", b"a", b"2", b"b"],
        &[b"SET", b"k", b"10"],
    ];
    // A fixed xorshift sequence: the same run every time.
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move |n: usize| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % n as u64) as usize
    };
    for i in 0..20_000 {
        if i % 500 == 0 {
            for c in setup {
                r.cmd(c).await;
            }
        }
        let mut args: Vec<&[u8]> = vec![names[next(names.len())].as_bytes()];
        for _ in 0..next(8) {
            args.push(WORDS[next(WORDS.len())].as_bytes());
        }
        let reply = Box::pin(r.try_read_reply_after(&encode(&args))).await;
        assert!(reply.is_ok(), "no reply to {args:?}: {reply:?}");
    }
    assert_eq!(r.cmd(&[b"PING"]).await, b"+PONG\r\n");
    node.stop().await;
}

trait TryAfter {
    async fn try_read_reply_after(&mut self, req: &[u8]) -> Result<Vec<u8>, String>;
}

impl TryAfter for Raw {
    async fn try_read_reply_after(&mut self, req: &[u8]) -> Result<Vec<u8>, String> {
        self.send(req).await;
        self.try_read_reply().await
    }
}
