//! Generic key command tests: expiry under an injected clock, SCAN, RENAME,
//! COPY, MOVE, SWAPDB, OBJECT and the flush commands, byte for byte.
mod common;

use common::{Raw, TestNode};
use shoal::store::ManualClock;
use std::collections::BTreeSet;

/// Sends a whitespace-separated command and returns the raw reply as text.
async fn q(r: &mut Raw, line: &str) -> String {
    let args: Vec<&[u8]> = line.split_whitespace().map(str::as_bytes).collect();
    // Boxed: the reply reader holds a 64 KiB buffer, and a test with dozens of
    // inline awaits would otherwise overflow the test thread's stack.
    String::from_utf8_lossy(&Box::pin(r.cmd(&args)).await).into_owned()
}

const OK: &str = "+OK\r\n";
const NULL: &str = "$-1\r\n";
const SYNTAX: &str = "-ERR syntax error\r\n";
const NOT_INT: &str = "-ERR value is not an integer or out of range\r\n";
const DB_RANGE: &str = "-ERR DB index is out of range\r\n";
const T0: u64 = 1_700_000_000_000;

fn arity(cmd: &str) -> String {
    format!("-ERR wrong number of arguments for '{cmd}' command\r\n")
}

/// Parses a flat RESP array of bulk strings (KEYS) into a set.
fn bulk_set(reply: &str) -> BTreeSet<String> {
    reply
        .split("\r\n")
        .skip(1)
        .filter(|l| !l.starts_with('$') && !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn del_unlink_exists_type_touch() {
    let node = TestNode::start().await;
    let mut r = node.raw().await;
    assert_eq!(q(&mut r, "MSET a 1 b 2 c 3").await, OK);
    assert_eq!(q(&mut r, "EXISTS a a a nokey").await, ":3\r\n");
    assert_eq!(q(&mut r, "TOUCH a nokey b b").await, ":3\r\n");
    assert_eq!(q(&mut r, "DEL a a nokey").await, ":1\r\n");
    assert_eq!(q(&mut r, "UNLINK b c c").await, ":2\r\n");
    assert_eq!(q(&mut r, "EXISTS a b c").await, ":0\r\n");
    assert_eq!(q(&mut r, "SET s hello").await, OK);
    assert_eq!(q(&mut r, "TYPE s").await, "+string\r\n");
    assert_eq!(q(&mut r, "TYPE nokey").await, "+none\r\n");
    assert_eq!(q(&mut r, "DEL").await, arity("del"));
    assert_eq!(q(&mut r, "UNLINK").await, arity("unlink"));
    assert_eq!(q(&mut r, "EXISTS").await, arity("exists"));
    assert_eq!(q(&mut r, "TOUCH").await, arity("touch"));
    assert_eq!(q(&mut r, "TYPE a b").await, arity("type"));
    node.stop().await;
}

#[tokio::test]
async fn expire_options_and_ttl_with_injected_clock() {
    let clock = ManualClock::new(T0);
    let node = TestNode::start_with_clock(clock.clone()).await;
    let mut r = node.raw().await;
    assert_eq!(q(&mut r, "SET k v").await, OK);
    assert_eq!(q(&mut r, "TTL k").await, ":-1\r\n");
    assert_eq!(q(&mut r, "EXPIRE k 100 NX").await, ":1\r\n");
    assert_eq!(q(&mut r, "EXPIRE k 100 NX").await, ":0\r\n");
    assert_eq!(q(&mut r, "EXPIRE k 50 GT").await, ":0\r\n");
    assert_eq!(q(&mut r, "EXPIRE k 200 GT").await, ":1\r\n");
    assert_eq!(q(&mut r, "EXPIRE k 50 LT").await, ":1\r\n");
    assert_eq!(q(&mut r, "TTL k").await, ":50\r\n");
    assert_eq!(q(&mut r, "PTTL k").await, ":50000\r\n");
    assert_eq!(
        q(&mut r, "EXPIRETIME k").await,
        format!(":{}\r\n", T0 / 1000 + 50)
    );
    assert_eq!(
        q(&mut r, "PEXPIRETIME k").await,
        format!(":{}\r\n", T0 + 50_000)
    );
    // TTL rounds to the nearest second.
    clock.advance(400);
    assert_eq!(q(&mut r, "TTL k").await, ":50\r\n");
    clock.advance(200);
    assert_eq!(q(&mut r, "TTL k").await, ":49\r\n");
    assert_eq!(q(&mut r, "PERSIST k").await, ":1\r\n");
    assert_eq!(q(&mut r, "PERSIST k").await, ":0\r\n");
    assert_eq!(q(&mut r, "PERSIST nokey").await, ":0\r\n");
    // GT never applies to a key without TTL (infinite); LT always does.
    assert_eq!(q(&mut r, "EXPIRE k 10 GT").await, ":0\r\n");
    assert_eq!(q(&mut r, "EXPIRE k 10 XX").await, ":0\r\n");
    assert_eq!(q(&mut r, "EXPIRE k 10 LT").await, ":1\r\n");
    assert_eq!(q(&mut r, "EXPIRE k 10 XX").await, ":1\r\n");
    // Expiry happens when the clock passes the deadline, not before.
    clock.advance(10_000);
    assert_eq!(q(&mut r, "GET k").await, "$1\r\nv\r\n");
    assert_eq!(q(&mut r, "PTTL k").await, ":0\r\n");
    clock.advance(1);
    assert_eq!(q(&mut r, "GET k").await, NULL);
    assert_eq!(q(&mut r, "TTL k").await, ":-2\r\n");
    assert_eq!(q(&mut r, "PTTL nokey").await, ":-2\r\n");
    assert_eq!(q(&mut r, "EXPIRETIME nokey").await, ":-2\r\n");
    assert_eq!(q(&mut r, "PEXPIRETIME nokey").await, ":-2\r\n");
    assert_eq!(q(&mut r, "EXPIRE nokey 10").await, ":0\r\n");

    // Absolute forms, and times at or before now delete the key.
    assert_eq!(q(&mut r, "SET k v").await, OK);
    assert_eq!(q(&mut r, "PEXPIREAT k 99999999999999").await, ":1\r\n");
    assert_eq!(q(&mut r, "EXPIRETIME k").await, ":100000000000\r\n");
    assert_eq!(q(&mut r, "EXPIREAT k 99999999999 LT").await, ":1\r\n");
    assert_eq!(q(&mut r, "PEXPIRETIME k").await, ":99999999999000\r\n");
    assert_eq!(q(&mut r, "PEXPIREAT k -5").await, ":1\r\n");
    assert_eq!(q(&mut r, "EXISTS k").await, ":0\r\n");
    assert_eq!(q(&mut r, "SET k v").await, OK);
    assert_eq!(q(&mut r, "EXPIRE k 0").await, ":1\r\n");
    assert_eq!(q(&mut r, "EXISTS k").await, ":0\r\n");
    assert_eq!(q(&mut r, "SET k v").await, OK);
    assert_eq!(q(&mut r, "PEXPIRE k -1").await, ":1\r\n");
    assert_eq!(q(&mut r, "EXISTS k").await, ":0\r\n");

    // Errors.
    assert_eq!(q(&mut r, "SET k v").await, OK);
    assert_eq!(
        q(&mut r, "EXPIRE k 10 NX XX").await,
        "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n"
    );
    assert_eq!(
        q(&mut r, "EXPIRE k 10 GT LT").await,
        "-ERR GT and LT options at the same time are not compatible\r\n"
    );
    assert_eq!(
        q(&mut r, "EXPIRE k 10 foo").await,
        "-ERR Unsupported option foo\r\n"
    );
    assert_eq!(q(&mut r, "EXPIRE k abc").await, NOT_INT);
    assert_eq!(
        q(&mut r, "EXPIRE k 9223372036854775807").await,
        "-ERR invalid expire time in 'expire' command\r\n"
    );
    assert_eq!(
        q(&mut r, "EXPIRE k 9223372036854775").await,
        "-ERR invalid expire time in 'expire' command\r\n"
    );
    assert_eq!(
        q(&mut r, "PEXPIRE k 9223372036854775807").await,
        "-ERR invalid expire time in 'pexpire' command\r\n"
    );
    assert_eq!(
        q(&mut r, "EXPIREAT k 9223372036854775807").await,
        "-ERR invalid expire time in 'expireat' command\r\n"
    );
    assert_eq!(q(&mut r, "PEXPIREAT k 9223372036854775807").await, ":1\r\n");
    assert_eq!(q(&mut r, "EXPIRE k").await, arity("expire"));
    assert_eq!(q(&mut r, "TTL").await, arity("ttl"));
    assert_eq!(q(&mut r, "PTTL a b").await, arity("pttl"));
    assert_eq!(q(&mut r, "PERSIST").await, arity("persist"));
    node.stop().await;
}

#[tokio::test]
async fn keys_and_scan() {
    let clock = ManualClock::new(T0);
    let node = TestNode::start_with_clock(clock.clone()).await;
    let mut r = node.raw().await;
    let mut c = node.client().await;
    let mut all = BTreeSet::new();
    for i in 0..500 {
        let k = format!("key:{i}");
        let _: () = redis::cmd("SET")
            .arg(&k)
            .arg(i)
            .query_async(&mut c)
            .await
            .unwrap();
        all.insert(k);
    }
    assert_eq!(q(&mut r, "SET other x").await, OK);
    assert_eq!(q(&mut r, "SET gone x PX 10").await, OK);
    clock.advance(11);
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("key:*")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(keys.into_iter().collect::<BTreeSet<_>>(), all);
    assert_eq!(
        bulk_set(&q(&mut r, "KEYS o?he[a-z]").await),
        BTreeSet::from(["other".to_string()])
    );
    assert_eq!(q(&mut r, "KEYS nomatch*").await, "*0\r\n");
    assert_eq!(q(&mut r, "DBSIZE").await, ":502\r\n");

    // A full SCAN returns every live key (the expired one never), each once
    // here since nothing changes during the iteration.
    for (extra, want) in [
        (vec![], 501),
        (vec!["COUNT", "7"], 501),
        (vec!["MATCH", "key:1*"], 111),
    ] {
        let mut cursor = "0".to_string();
        let mut seen = Vec::new();
        let mut calls = 0;
        loop {
            let (next, batch): (String, Vec<String>) = redis::cmd("SCAN")
                .arg(&cursor)
                .arg(&extra)
                .query_async(&mut c)
                .await
                .unwrap();
            seen.extend(batch);
            calls += 1;
            assert!(calls < 10_000, "SCAN terminates");
            if next == "0" {
                break;
            }
            cursor = next;
        }
        let set: BTreeSet<_> = seen.iter().cloned().collect();
        assert_eq!(set.len(), seen.len(), "no duplicates");
        assert_eq!(set.len(), want, "{extra:?}");
        assert!(!set.contains("gone"));
    }
    let mut cursor = "0".to_string();
    let mut n = 0;
    loop {
        let (next, batch): (String, Vec<String>) = redis::cmd("SCAN")
            .arg(&cursor)
            .arg("TYPE")
            .arg("STRING")
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut c)
            .await
            .unwrap();
        n += batch.len();
        if next == "0" {
            break;
        }
        cursor = next;
    }
    assert_eq!(n, 501);
    assert_eq!(
        q(&mut r, "SCAN 0 TYPE list COUNT 100000").await,
        "*2\r\n$1\r\n0\r\n*0\r\n"
    );
    assert_eq!(q(&mut r, "SCAN x").await, "-ERR invalid cursor\r\n");
    assert_eq!(
        q(&mut r, "SCAN 18446744073709551616").await,
        "-ERR invalid cursor\r\n"
    );
    assert_eq!(q(&mut r, "SCAN 0 COUNT 0").await, SYNTAX);
    assert_eq!(q(&mut r, "SCAN 0 COUNT x").await, NOT_INT);
    assert_eq!(q(&mut r, "SCAN 0 MATCH").await, SYNTAX);
    assert_eq!(q(&mut r, "SCAN 0 FOO bar").await, SYNTAX);
    assert_eq!(q(&mut r, "SCAN").await, arity("scan"));
    assert_eq!(q(&mut r, "KEYS").await, arity("keys"));
    assert_eq!(q(&mut r, "KEYS * x").await, arity("keys"));
    node.stop().await;
}

#[tokio::test]
async fn randomkey_skips_expired_keys() {
    let clock = ManualClock::new(T0);
    let node = TestNode::start_with_clock(clock.clone()).await;
    let mut r = node.raw().await;
    assert_eq!(q(&mut r, "RANDOMKEY").await, NULL);
    for i in 0..20 {
        assert_eq!(q(&mut r, &format!("SET tmp{i} v PX 5")).await, OK);
    }
    assert_eq!(q(&mut r, "SET live v").await, OK);
    clock.advance(6);
    for _ in 0..5 {
        assert_eq!(q(&mut r, "RANDOMKEY").await, "$4\r\nlive\r\n");
    }
    assert_eq!(q(&mut r, "DEL live").await, ":1\r\n");
    assert_eq!(q(&mut r, "RANDOMKEY").await, NULL);
    assert_eq!(q(&mut r, "RANDOMKEY x").await, arity("randomkey"));
    node.stop().await;
}

#[tokio::test]
async fn rename_and_renamenx() {
    let clock = ManualClock::new(T0);
    let node = TestNode::start_with_clock(clock.clone()).await;
    let mut r = node.raw().await;
    assert_eq!(q(&mut r, "RENAME nokey x").await, "-ERR no such key\r\n");
    assert_eq!(
        q(&mut r, "RENAME nokey nokey").await,
        "-ERR no such key\r\n"
    );
    assert_eq!(q(&mut r, "RENAMENX nokey x").await, "-ERR no such key\r\n");
    assert_eq!(q(&mut r, "MSET a 1 b 2").await, OK);
    assert_eq!(q(&mut r, "RENAME a a").await, OK);
    assert_eq!(q(&mut r, "RENAMENX a a").await, ":0\r\n");
    assert_eq!(q(&mut r, "RENAMENX a b").await, ":0\r\n");
    assert_eq!(q(&mut r, "PEXPIRE a 5000").await, ":1\r\n");
    assert_eq!(q(&mut r, "RENAME a c").await, OK);
    assert_eq!(q(&mut r, "EXISTS a").await, ":0\r\n");
    assert_eq!(q(&mut r, "GET c").await, "$1\r\n1\r\n");
    assert_eq!(q(&mut r, "PTTL c").await, ":5000\r\n");
    // RENAME overwrites the destination, including its TTL.
    assert_eq!(q(&mut r, "SETEX b 100 2").await, OK);
    assert_eq!(q(&mut r, "PERSIST c").await, ":1\r\n");
    assert_eq!(q(&mut r, "RENAME c b").await, OK);
    assert_eq!(q(&mut r, "TTL b").await, ":-1\r\n");
    assert_eq!(q(&mut r, "RENAMENX b d").await, ":1\r\n");
    assert_eq!(q(&mut r, "GET d").await, "$1\r\n1\r\n");
    // A key that expired is gone for RENAME too.
    assert_eq!(q(&mut r, "PEXPIRE d 10").await, ":1\r\n");
    clock.advance(11);
    assert_eq!(q(&mut r, "RENAME d e").await, "-ERR no such key\r\n");
    assert_eq!(q(&mut r, "RENAME a").await, arity("rename"));
    assert_eq!(q(&mut r, "RENAMENX a").await, arity("renamenx"));
    node.stop().await;
}

#[tokio::test]
async fn copy_move_swapdb_select() {
    let clock = ManualClock::new(T0);
    let node = TestNode::start_with_clock(clock.clone()).await;
    let mut r = node.raw().await;
    assert_eq!(q(&mut r, "SET e hello").await, OK);
    assert_eq!(q(&mut r, "PEXPIRE e 9000").await, ":1\r\n");
    assert_eq!(
        q(&mut r, "COPY e e").await,
        "-ERR source and destination objects are the same\r\n"
    );
    assert_eq!(q(&mut r, "COPY e f DB 20").await, DB_RANGE);
    assert_eq!(q(&mut r, "COPY e f DB -1").await, DB_RANGE);
    assert_eq!(q(&mut r, "COPY e f DB x").await, NOT_INT);
    assert_eq!(
        q(&mut r, "COPY e f DB 99999999999").await,
        "-ERR value is out of range, value must between -2147483648 and 2147483647\r\n"
    );
    assert_eq!(q(&mut r, "COPY e f FOO").await, SYNTAX);
    assert_eq!(q(&mut r, "COPY e f DB").await, SYNTAX);
    assert_eq!(q(&mut r, "COPY nokey f").await, ":0\r\n");
    assert_eq!(q(&mut r, "COPY e f").await, ":1\r\n");
    assert_eq!(q(&mut r, "PTTL f").await, ":9000\r\n");
    assert_eq!(q(&mut r, "SET b other").await, OK);
    assert_eq!(q(&mut r, "COPY e b").await, ":0\r\n");
    assert_eq!(q(&mut r, "COPY e b REPLACE").await, ":1\r\n");
    assert_eq!(q(&mut r, "GET b").await, "$5\r\nhello\r\n");
    assert_eq!(q(&mut r, "COPY e e DB 1").await, ":1\r\n");
    assert_eq!(q(&mut r, "COPY e e DB 1").await, ":0\r\n");
    assert_eq!(q(&mut r, "SELECT 1").await, OK);
    assert_eq!(q(&mut r, "GET e").await, "$5\r\nhello\r\n");
    assert_eq!(q(&mut r, "PTTL e").await, ":9000\r\n");
    assert_eq!(q(&mut r, "SELECT 0").await, OK);

    // MOVE: same db, bad index, missing key, existing target.
    assert_eq!(
        q(&mut r, "MOVE e 0").await,
        "-ERR source and destination objects are the same\r\n"
    );
    assert_eq!(q(&mut r, "MOVE e 20").await, DB_RANGE);
    assert_eq!(q(&mut r, "MOVE e x").await, NOT_INT);
    assert_eq!(q(&mut r, "MOVE nokey 1").await, ":0\r\n");
    assert_eq!(q(&mut r, "MOVE e 1").await, ":0\r\n");
    assert_eq!(q(&mut r, "MOVE f 1").await, ":1\r\n");
    assert_eq!(q(&mut r, "EXISTS f").await, ":0\r\n");
    assert_eq!(q(&mut r, "SELECT 1").await, OK);
    assert_eq!(q(&mut r, "PTTL f").await, ":9000\r\n");
    assert_eq!(q(&mut r, "DBSIZE").await, ":2\r\n");
    assert_eq!(q(&mut r, "SELECT 0").await, OK);
    assert_eq!(q(&mut r, "SELECT 20").await, DB_RANGE);
    assert_eq!(q(&mut r, "SELECT x").await, NOT_INT);

    // SWAPDB: the connection keeps its index and sees the other data.
    assert_eq!(q(&mut r, "DBSIZE").await, ":2\r\n");
    assert_eq!(q(&mut r, "SET only0 x").await, OK);
    assert_eq!(q(&mut r, "SWAPDB 0 1").await, OK);
    assert_eq!(q(&mut r, "EXISTS only0 f").await, ":1\r\n");
    assert_eq!(q(&mut r, "SWAPDB 1 0").await, OK);
    assert_eq!(q(&mut r, "EXISTS only0").await, ":1\r\n");
    assert_eq!(q(&mut r, "SWAPDB 1 1").await, OK);
    assert_eq!(q(&mut r, "SWAPDB 0 20").await, DB_RANGE);
    assert_eq!(q(&mut r, "SWAPDB 0 -1").await, DB_RANGE);
    assert_eq!(
        q(&mut r, "SWAPDB x 1").await,
        "-ERR invalid first DB index\r\n"
    );
    assert_eq!(
        q(&mut r, "SWAPDB 0 x").await,
        "-ERR invalid second DB index\r\n"
    );
    assert_eq!(q(&mut r, "SWAPDB 1").await, arity("swapdb"));
    assert_eq!(q(&mut r, "COPY a").await, arity("copy"));
    assert_eq!(q(&mut r, "MOVE a").await, arity("move"));
    node.stop().await;
}

#[tokio::test]
async fn flushdb_flushall_dbsize() {
    let node = TestNode::start().await;
    let mut r = node.raw().await;
    assert_eq!(q(&mut r, "MSET a 1 b 2").await, OK);
    assert_eq!(q(&mut r, "SELECT 1").await, OK);
    assert_eq!(q(&mut r, "SET c 3").await, OK);
    assert_eq!(q(&mut r, "FLUSHDB foo").await, SYNTAX);
    assert_eq!(q(&mut r, "FLUSHDB ASYNC SYNC").await, SYNTAX);
    assert_eq!(q(&mut r, "FLUSHDB async").await, OK);
    assert_eq!(q(&mut r, "DBSIZE").await, ":0\r\n");
    assert_eq!(q(&mut r, "SELECT 0").await, OK);
    assert_eq!(q(&mut r, "DBSIZE").await, ":2\r\n");
    assert_eq!(q(&mut r, "FLUSHALL foo").await, SYNTAX);
    assert_eq!(q(&mut r, "FLUSHALL SYNC").await, OK);
    assert_eq!(q(&mut r, "DBSIZE").await, ":0\r\n");
    assert_eq!(q(&mut r, "FLUSHALL").await, OK);
    assert_eq!(q(&mut r, "DBSIZE x").await, arity("dbsize"));
    node.stop().await;
}

#[tokio::test]
async fn object_subcommands() {
    let clock = ManualClock::new(T0);
    let node = TestNode::start_with_clock(clock.clone()).await;
    let mut r = node.raw().await;
    assert_eq!(q(&mut r, "SET n 123").await, OK);
    assert_eq!(q(&mut r, "SET h 12345").await, OK);
    assert_eq!(q(&mut r, "SET s hello").await, OK);
    assert_eq!(q(&mut r, "SET big 12345678901234567890").await, OK);
    assert_eq!(q(&mut r, &format!("SET l {}", "x".repeat(45))).await, OK);
    assert_eq!(q(&mut r, "OBJECT ENCODING n").await, "$3\r\nint\r\n");
    assert_eq!(q(&mut r, "OBJECT ENCODING s").await, "$6\r\nembstr\r\n");
    assert_eq!(q(&mut r, "OBJECT ENCODING big").await, "$6\r\nembstr\r\n");
    assert_eq!(q(&mut r, "OBJECT ENCODING l").await, "$3\r\nraw\r\n");
    assert_eq!(q(&mut r, "OBJECT ENCODING nokey").await, NULL);
    assert_eq!(q(&mut r, "OBJECT REFCOUNT n").await, ":2147483647\r\n");
    assert_eq!(q(&mut r, "OBJECT REFCOUNT h").await, ":1\r\n");
    assert_eq!(q(&mut r, "OBJECT REFCOUNT s").await, ":1\r\n");
    assert_eq!(q(&mut r, "OBJECT REFCOUNT nokey").await, NULL);
    assert_eq!(
        q(&mut r, "OBJECT FREQ n").await,
        "-ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.\r\n"
    );
    assert_eq!(q(&mut r, "OBJECT FREQ nokey").await, NULL);
    // Idle time counts from the last access; OBJECT itself does not touch.
    clock.advance(5_000);
    assert_eq!(q(&mut r, "OBJECT IDLETIME n").await, ":5\r\n");
    assert_eq!(q(&mut r, "OBJECT IDLETIME n").await, ":5\r\n");
    assert_eq!(q(&mut r, "GET n").await, "$3\r\n123\r\n");
    assert_eq!(q(&mut r, "OBJECT IDLETIME n").await, ":0\r\n");
    assert_eq!(q(&mut r, "OBJECT IDLETIME nokey").await, NULL);
    let help = q(&mut r, "OBJECT HELP").await;
    assert!(help.starts_with("*15\r\n+OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n+ENCODING <key>\r\n"), "{help}");
    assert_eq!(q(&mut r, "OBJECT help extra").await, arity("object|help"));
    assert_eq!(
        q(&mut r, "OBJECT foo").await,
        "-ERR unknown subcommand 'foo'. Try OBJECT HELP.\r\n"
    );
    assert_eq!(q(&mut r, "OBJECT ENCODING").await, arity("object|encoding"));
    assert_eq!(
        q(&mut r, "OBJECT ENCODING a b").await,
        arity("object|encoding")
    );
    assert_eq!(q(&mut r, "OBJECT").await, arity("object"));
    node.stop().await;
}
