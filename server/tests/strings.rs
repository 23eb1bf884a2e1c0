//! String command tests: replies compared byte for byte with Redis 7.0's.
mod common;

use common::{Raw, TestNode};
use shoal::store::ManualClock;

/// Sends a whitespace-separated command and returns the raw reply as text.
async fn q(r: &mut Raw, line: &str) -> String {
    let args: Vec<&[u8]> = line.split_whitespace().map(str::as_bytes).collect();
    // Boxed: the reply reader holds a 64 KiB buffer, and a test with dozens of
    // inline awaits would otherwise overflow the test thread's stack.
    String::from_utf8_lossy(&Box::pin(r.cmd(&args)).await).into_owned()
}

/// Like `q` for arguments that contain spaces or are empty.
async fn qa(r: &mut Raw, args: &[&str]) -> String {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    // Boxed: the reply reader holds a 64 KiB buffer, and a test with dozens of
    // inline awaits would otherwise overflow the test thread's stack.
    String::from_utf8_lossy(&Box::pin(r.cmd(&args)).await).into_owned()
}

const OK: &str = "+OK\r\n";
const NULL: &str = "$-1\r\n";
const SYNTAX: &str = "-ERR syntax error\r\n";
const NOT_INT: &str = "-ERR value is not an integer or out of range\r\n";
const NOT_FLOAT: &str = "-ERR value is not a valid float\r\n";

fn arity(cmd: &str) -> String {
    format!("-ERR wrong number of arguments for '{cmd}' command\r\n")
}

#[tokio::test]
async fn set_options_follow_redis_rules() {
    let clock = ManualClock::new(1_700_000_000_000);
    let node = TestNode::start_with_clock(clock.clone()).await;
    let mut r = node.raw().await;
    assert_eq!(q(&mut r, "SET k v NX").await, OK);
    assert_eq!(q(&mut r, "SET k w NX").await, NULL);
    assert_eq!(q(&mut r, "SET k w XX GET").await, "$1\r\nv\r\n");
    assert_eq!(q(&mut r, "SET nokey w XX").await, NULL);
    assert_eq!(q(&mut r, "SET k v NX XX").await, SYNTAX);
    assert_eq!(q(&mut r, "SET k v EX 1 KEEPTTL").await, SYNTAX);
    assert_eq!(q(&mut r, "SET k v KEEPTTL PX 5").await, SYNTAX);
    assert_eq!(q(&mut r, "SET k v EX 10 PX 100").await, SYNTAX);
    assert_eq!(q(&mut r, "SET k v EX").await, SYNTAX);
    assert_eq!(q(&mut r, "SET k v FOO").await, SYNTAX);
    assert_eq!(
        q(&mut r, "SET k v EX 0").await,
        "-ERR invalid expire time in 'set' command\r\n"
    );
    assert_eq!(q(&mut r, "SET k v EX abc").await, NOT_INT);
    // Repeating the same expiry option is accepted; the last one wins.
    assert_eq!(q(&mut r, "SET k v EX 10 EX 20").await, OK);
    assert_eq!(q(&mut r, "TTL k").await, ":20\r\n");
    assert_eq!(q(&mut r, "SET k v2 KEEPTTL").await, OK);
    assert_eq!(q(&mut r, "TTL k").await, ":20\r\n");
    assert_eq!(q(&mut r, "SET k v3").await, OK);
    assert_eq!(q(&mut r, "TTL k").await, ":-1\r\n");
    // NX with GET answers the old value without writing.
    assert_eq!(q(&mut r, "SET k other NX GET").await, "$2\r\nv3\r\n");
    assert_eq!(q(&mut r, "GET k").await, "$2\r\nv3\r\n");
    // An absolute time in the past deletes the key at once.
    assert_eq!(q(&mut r, "SET k v EXAT 1").await, OK);
    assert_eq!(q(&mut r, "EXISTS k").await, ":0\r\n");
    assert_eq!(q(&mut r, "SET k v PX 1500").await, OK);
    clock.advance(1500);
    assert_eq!(q(&mut r, "GET k").await, "$1\r\nv\r\n");
    clock.advance(1);
    assert_eq!(q(&mut r, "GET k").await, NULL);
    assert_eq!(q(&mut r, "SET k").await, arity("set"));
    node.stop().await;
}

#[tokio::test]
async fn setnx_setex_psetex() {
    let clock = ManualClock::new(1_700_000_000_000);
    let node = TestNode::start_with_clock(clock.clone()).await;
    let mut r = node.raw().await;
    assert_eq!(q(&mut r, "SETNX k v").await, ":1\r\n");
    assert_eq!(q(&mut r, "SETNX k w").await, ":0\r\n");
    assert_eq!(q(&mut r, "GET k").await, "$1\r\nv\r\n");
    assert_eq!(q(&mut r, "SETEX k 10 v").await, OK);
    assert_eq!(q(&mut r, "PTTL k").await, ":10000\r\n");
    assert_eq!(q(&mut r, "PSETEX k 1500 v").await, OK);
    assert_eq!(q(&mut r, "PTTL k").await, ":1500\r\n");
    clock.advance(1501);
    assert_eq!(q(&mut r, "EXISTS k").await, ":0\r\n");
    assert_eq!(
        q(&mut r, "SETEX k 0 v").await,
        "-ERR invalid expire time in 'setex' command\r\n"
    );
    assert_eq!(
        q(&mut r, "SETEX k -1 v").await,
        "-ERR invalid expire time in 'setex' command\r\n"
    );
    assert_eq!(
        q(&mut r, "PSETEX k 0 v").await,
        "-ERR invalid expire time in 'psetex' command\r\n"
    );
    assert_eq!(
        q(&mut r, "SETEX k 9223372036854775807 v").await,
        "-ERR invalid expire time in 'setex' command\r\n"
    );
    assert_eq!(q(&mut r, "SETEX k abc v").await, NOT_INT);
    assert_eq!(q(&mut r, "SETEX k 10").await, arity("setex"));
    assert_eq!(q(&mut r, "SETNX k").await, arity("setnx"));
    node.stop().await;
}

#[tokio::test]
async fn mget_mset_msetnx() {
    let node = TestNode::start().await;
    let mut r = node.raw().await;
    assert_eq!(q(&mut r, "MSET a 1 b 2").await, OK);
    assert_eq!(
        q(&mut r, "MGET a nokey b").await,
        "*3\r\n$1\r\n1\r\n$-1\r\n$1\r\n2\r\n"
    );
    assert_eq!(q(&mut r, "MSET a 1 b").await, arity("mset"));
    assert_eq!(q(&mut r, "MSET a").await, arity("mset"));
    assert_eq!(q(&mut r, "MSETNX a 1 b").await, arity("msetnx"));
    assert_eq!(q(&mut r, "MSETNX a 9 c 3").await, ":0\r\n");
    assert_eq!(q(&mut r, "EXISTS c").await, ":0\r\n");
    assert_eq!(q(&mut r, "MSETNX c 3 d 4").await, ":1\r\n");
    // The same new key twice: both writes happen, the last value wins.
    assert_eq!(q(&mut r, "MSETNX z 1 z 2").await, ":1\r\n");
    assert_eq!(q(&mut r, "GET z").await, "$1\r\n2\r\n");
    // MSET removes any TTL.
    assert_eq!(q(&mut r, "SETEX a 100 x").await, OK);
    assert_eq!(q(&mut r, "MSET a 1").await, OK);
    assert_eq!(q(&mut r, "TTL a").await, ":-1\r\n");
    assert_eq!(q(&mut r, "MGET").await, arity("mget"));
    // Through the redis crate too.
    let mut c = node.client().await;
    let v: Vec<Option<String>> = redis::cmd("MGET")
        .arg("c")
        .arg("d")
        .arg("x")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(v, vec![Some("3".into()), Some("4".into()), None]);
    node.stop().await;
}

#[tokio::test]
async fn getset_getdel_getex() {
    let clock = ManualClock::new(1_700_000_000_000);
    let node = TestNode::start_with_clock(clock.clone()).await;
    let mut r = node.raw().await;
    assert_eq!(q(&mut r, "GETSET k v").await, NULL);
    assert_eq!(q(&mut r, "SETEX k 100 v").await, OK);
    assert_eq!(q(&mut r, "GETSET k w").await, "$1\r\nv\r\n");
    assert_eq!(q(&mut r, "TTL k").await, ":-1\r\n");
    assert_eq!(q(&mut r, "GETDEL k").await, "$1\r\nw\r\n");
    assert_eq!(q(&mut r, "GETDEL k").await, NULL);

    assert_eq!(q(&mut r, "SET k v").await, OK);
    assert_eq!(q(&mut r, "GETEX k").await, "$1\r\nv\r\n");
    assert_eq!(q(&mut r, "GETEX k EX 10").await, "$1\r\nv\r\n");
    assert_eq!(q(&mut r, "TTL k").await, ":10\r\n");
    assert_eq!(q(&mut r, "GETEX k PX 20000 PX 30000").await, "$1\r\nv\r\n");
    assert_eq!(q(&mut r, "PTTL k").await, ":30000\r\n");
    assert_eq!(q(&mut r, "GETEX k PERSIST").await, "$1\r\nv\r\n");
    assert_eq!(q(&mut r, "TTL k").await, ":-1\r\n");
    assert_eq!(q(&mut r, "GETEX k EXAT 1700000005").await, "$1\r\nv\r\n");
    assert_eq!(q(&mut r, "EXPIRETIME k").await, ":1700000005\r\n");
    clock.advance(5001);
    assert_eq!(q(&mut r, "GETEX k").await, NULL);
    assert_eq!(q(&mut r, "SET k v").await, OK);
    // A PXAT in the past answers the value and deletes the key.
    assert_eq!(q(&mut r, "GETEX k PXAT 1").await, "$1\r\nv\r\n");
    assert_eq!(q(&mut r, "EXISTS k").await, ":0\r\n");
    assert_eq!(q(&mut r, "SET k v").await, OK);
    assert_eq!(
        q(&mut r, "GETEX k EX 0").await,
        "-ERR invalid expire time in 'getex' command\r\n"
    );
    assert_eq!(q(&mut r, "GETEX k PERSIST EX 1").await, SYNTAX);
    assert_eq!(q(&mut r, "GETEX k KEEPTTL").await, SYNTAX);
    assert_eq!(q(&mut r, "GETEX k FOO").await, SYNTAX);
    // The expire value is only validated once the key is found.
    assert_eq!(q(&mut r, "GETEX nokey EX 0").await, NULL);
    assert_eq!(q(&mut r, "GETEX nokey FOO").await, SYNTAX);
    assert_eq!(q(&mut r, "GETDEL a b").await, arity("getdel"));
    node.stop().await;
}

#[tokio::test]
async fn append_strlen() {
    let clock = ManualClock::new(1_700_000_000_000);
    let node = TestNode::start_with_clock(clock.clone()).await;
    let mut r = node.raw().await;
    assert_eq!(q(&mut r, "APPEND k abc").await, ":3\r\n");
    assert_eq!(
        q(&mut r, "APPEND k defghijklmnopqrstuvwxyz0123456789").await,
        ":36\r\n"
    );
    assert_eq!(
        q(&mut r, "GET k").await,
        "$36\r\nabcdefghijklmnopqrstuvwxyz0123456789\r\n"
    );
    assert_eq!(q(&mut r, "STRLEN k").await, ":36\r\n");
    assert_eq!(q(&mut r, "STRLEN nokey").await, ":0\r\n");
    assert_eq!(qa(&mut r, &["APPEND", "k", ""]).await, ":36\r\n");
    // APPEND keeps the TTL.
    assert_eq!(q(&mut r, "EXPIRE k 100").await, ":1\r\n");
    assert_eq!(q(&mut r, "APPEND k x").await, ":37\r\n");
    assert_eq!(q(&mut r, "TTL k").await, ":100\r\n");
    assert_eq!(q(&mut r, "APPEND k").await, arity("append"));
    assert_eq!(q(&mut r, "STRLEN").await, arity("strlen"));
    node.stop().await;
}

#[tokio::test]
async fn incr_decr_family() {
    let clock = ManualClock::new(1_700_000_000_000);
    let node = TestNode::start_with_clock(clock.clone()).await;
    let mut r = node.raw().await;
    assert_eq!(q(&mut r, "INCR n").await, ":1\r\n");
    assert_eq!(q(&mut r, "INCRBY n 41").await, ":42\r\n");
    assert_eq!(q(&mut r, "DECR n").await, ":41\r\n");
    assert_eq!(q(&mut r, "DECRBY n 50").await, ":-9\r\n");
    assert_eq!(q(&mut r, "INCRBY n -1").await, ":-10\r\n");
    assert_eq!(q(&mut r, "GET n").await, "$3\r\n-10\r\n");
    // TTL survives INCR.
    assert_eq!(q(&mut r, "EXPIRE n 100").await, ":1\r\n");
    assert_eq!(q(&mut r, "INCR n").await, ":-9\r\n");
    assert_eq!(q(&mut r, "TTL n").await, ":100\r\n");
    assert_eq!(q(&mut r, "SET big 9223372036854775807").await, OK);
    assert_eq!(
        q(&mut r, "INCR big").await,
        "-ERR increment or decrement would overflow\r\n"
    );
    assert_eq!(q(&mut r, "SET small -9223372036854775808").await, OK);
    assert_eq!(
        q(&mut r, "DECR small").await,
        "-ERR increment or decrement would overflow\r\n"
    );
    assert_eq!(
        q(&mut r, "DECRBY x -9223372036854775808").await,
        "-ERR decrement would overflow\r\n"
    );
    assert_eq!(qa(&mut r, &["SET", "sp", " 1"]).await, OK);
    assert_eq!(q(&mut r, "INCR sp").await, NOT_INT);
    assert_eq!(q(&mut r, "SET s abc").await, OK);
    assert_eq!(q(&mut r, "INCR s").await, NOT_INT);
    assert_eq!(q(&mut r, "SET z 01").await, OK);
    assert_eq!(q(&mut r, "INCR z").await, NOT_INT);
    assert_eq!(q(&mut r, "INCRBY n abc").await, NOT_INT);
    assert_eq!(q(&mut r, "INCRBY n 99999999999999999999").await, NOT_INT);
    assert_eq!(q(&mut r, "INCR").await, arity("incr"));
    assert_eq!(q(&mut r, "INCR a b").await, arity("incr"));
    node.stop().await;
}

#[tokio::test]
async fn incrbyfloat_formats_like_redis() {
    let node = TestNode::start().await;
    let mut r = node.raw().await;
    assert_eq!(q(&mut r, "INCRBYFLOAT f 10.5").await, "$4\r\n10.5\r\n");
    assert_eq!(q(&mut r, "INCRBYFLOAT f 0.1").await, "$4\r\n10.6\r\n");
    assert_eq!(q(&mut r, "INCRBYFLOAT f -0.6").await, "$2\r\n10\r\n");
    assert_eq!(q(&mut r, "SET g 1.5e3").await, OK);
    assert_eq!(q(&mut r, "INCRBYFLOAT g 0").await, "$4\r\n1500\r\n");
    assert_eq!(q(&mut r, "INCRBYFLOAT h 0.1").await, "$3\r\n0.1\r\n");
    assert_eq!(q(&mut r, "INCRBYFLOAT h 0.2").await, "$3\r\n0.3\r\n");
    assert_eq!(q(&mut r, "INCRBYFLOAT i 5.0e3").await, "$4\r\n5000\r\n");
    assert_eq!(
        q(&mut r, "INCRBYFLOAT j 1e-17").await,
        "$19\r\n0.00000000000000001\r\n"
    );
    assert_eq!(q(&mut r, "INCRBYFLOAT k -0.0").await, "$1\r\n0\r\n");
    assert_eq!(q(&mut r, "INCRBYFLOAT k .5").await, "$3\r\n0.5\r\n");
    assert_eq!(
        q(&mut r, "INCRBYFLOAT f inf").await,
        "-ERR increment would produce NaN or Infinity\r\n"
    );
    assert_eq!(q(&mut r, "INCRBYFLOAT f abc").await, NOT_FLOAT);
    assert_eq!(qa(&mut r, &["INCRBYFLOAT", "f", " 1"]).await, NOT_FLOAT);
    assert_eq!(q(&mut r, "SET s abc").await, OK);
    assert_eq!(q(&mut r, "INCRBYFLOAT s 1").await, NOT_FLOAT);
    assert_eq!(q(&mut r, "INCRBYFLOAT s").await, arity("incrbyfloat"));
    node.stop().await;
}

#[tokio::test]
async fn getrange_and_substr() {
    let node = TestNode::start().await;
    let mut r = node.raw().await;
    assert_eq!(q(&mut r, "SET y abcdef").await, OK);
    assert_eq!(q(&mut r, "GETRANGE y 0 -1").await, "$6\r\nabcdef\r\n");
    assert_eq!(q(&mut r, "GETRANGE y -3 -1").await, "$3\r\ndef\r\n");
    // Redis 7.0 clamps a negative end to 0, so this is the first byte.
    assert_eq!(q(&mut r, "GETRANGE y 0 -100").await, "$1\r\na\r\n");
    assert_eq!(q(&mut r, "GETRANGE y -100 -50").await, "$1\r\na\r\n");
    assert_eq!(q(&mut r, "GETRANGE y -1 -3").await, "$0\r\n\r\n");
    assert_eq!(q(&mut r, "GETRANGE y 2 -100").await, "$0\r\n\r\n");
    assert_eq!(q(&mut r, "GETRANGE y 5 2").await, "$0\r\n\r\n");
    assert_eq!(q(&mut r, "GETRANGE y 10 20").await, "$0\r\n\r\n");
    assert_eq!(
        q(&mut r, "GETRANGE y 4 9223372036854775807").await,
        "$2\r\nef\r\n"
    );
    assert_eq!(
        q(&mut r, "GETRANGE y -9223372036854775808 1").await,
        "$2\r\nab\r\n"
    );
    assert_eq!(q(&mut r, "GETRANGE nokey 0 -1").await, "$0\r\n\r\n");
    assert_eq!(q(&mut r, "GETRANGE y a b").await, NOT_INT);
    assert_eq!(q(&mut r, "SUBSTR y 1 3").await, "$3\r\nbcd\r\n");
    assert_eq!(q(&mut r, "GETRANGE y 0").await, arity("getrange"));
    node.stop().await;
}

#[tokio::test]
async fn setrange_pads_and_limits() {
    let node = TestNode::start().await;
    let mut r = node.raw().await;
    assert_eq!(q(&mut r, "SETRANGE k 3 ab").await, ":5\r\n");
    assert_eq!(q(&mut r, "GET k").await, "$5\r\n\0\0\0ab\r\n");
    assert_eq!(q(&mut r, "SET y abcdef").await, OK);
    assert_eq!(q(&mut r, "SETRANGE y 2 XYZWVUT").await, ":9\r\n");
    assert_eq!(q(&mut r, "GET y").await, "$9\r\nabXYZWVUT\r\n");
    assert_eq!(q(&mut r, "SETRANGE y 1 Q").await, ":9\r\n");
    assert_eq!(q(&mut r, "GET y").await, "$9\r\naQXYZWVUT\r\n");
    // Empty values never create keys and answer the current length.
    assert_eq!(qa(&mut r, &["SETRANGE", "nokey", "5", ""]).await, ":0\r\n");
    assert_eq!(q(&mut r, "EXISTS nokey").await, ":0\r\n");
    assert_eq!(qa(&mut r, &["SETRANGE", "y", "100", ""]).await, ":9\r\n");
    assert_eq!(
        q(&mut r, "SETRANGE y -1 x").await,
        "-ERR offset is out of range\r\n"
    );
    assert_eq!(
        q(&mut r, "SETRANGE y 536870912 x").await,
        "-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n"
    );
    assert_eq!(q(&mut r, "SETRANGE y x x").await, NOT_INT);
    assert_eq!(q(&mut r, "SETRANGE y 1").await, arity("setrange"));
    node.stop().await;
}

#[tokio::test]
async fn lcs_variants() {
    let node = TestNode::start().await;
    let mut r = node.raw().await;
    assert_eq!(q(&mut r, "MSET a ohmytext b mynewtext").await, OK);
    assert_eq!(q(&mut r, "LCS a b").await, "$6\r\nmytext\r\n");
    assert_eq!(q(&mut r, "LCS a b LEN").await, ":6\r\n");
    assert_eq!(
        q(&mut r, "LCS a b IDX").await,
        "*4\r\n$7\r\nmatches\r\n*2\r\n*2\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n*2\r\n*2\r\n:2\r\n:3\r\n*2\r\n:0\r\n:1\r\n$3\r\nlen\r\n:6\r\n"
    );
    assert_eq!(
        q(&mut r, "LCS a b IDX MINMATCHLEN 4 WITHMATCHLEN").await,
        "*4\r\n$7\r\nmatches\r\n*1\r\n*3\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n:4\r\n$3\r\nlen\r\n:6\r\n"
    );
    assert_eq!(q(&mut r, "LCS a b MINMATCHLEN -5 LEN").await, ":6\r\n");
    assert_eq!(q(&mut r, "LCS a nokey").await, "$0\r\n\r\n");
    assert_eq!(
        q(&mut r, "LCS a b IDX LEN").await,
        "-ERR If you want both the length and indexes, please just use IDX.\r\n"
    );
    assert_eq!(q(&mut r, "LCS a b FOO").await, SYNTAX);
    assert_eq!(q(&mut r, "LCS a b MINMATCHLEN").await, SYNTAX);
    assert_eq!(q(&mut r, "LCS a b MINMATCHLEN x").await, NOT_INT);
    assert_eq!(q(&mut r, "LCS a").await, arity("lcs"));
    node.stop().await;
}
