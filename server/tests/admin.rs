//! Server/admin commands end to end: INFO, CONFIG, COMMAND, SLOWLOG, MONITOR,
//! DEBUG, CLIENT PAUSE and SHUTDOWN, with replies compared to Redis 7.0's.
mod common;

use common::{Raw, TestNode, WAIT};
use std::time::{Duration, Instant};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The payload of a bulk or verbatim string reply.
fn bulk_payload(reply: &[u8]) -> String {
    let s = text(reply);
    let body = s.split_once("\r\n").map(|x| x.1).unwrap_or_default();
    let body = body.strip_suffix("\r\n").unwrap_or(body);
    body.strip_prefix("txt:").unwrap_or(body).to_string()
}

async fn cmd(raw: &mut Raw, line: &str) -> Vec<u8> {
    let args: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
    // Boxed: Raw's read future holds a 64 KiB buffer, and many of them inline
    // in one test future overflow the test thread's stack in debug builds.
    Box::pin(raw.cmd(&args)).await
}

#[tokio::test]
async fn info_sections_are_parseable() {
    let node = TestNode::start().await;
    let mut r = node.raw().await;
    assert_eq!(cmd(&mut r, "SET a 1").await, b"+OK\r\n");
    assert_eq!(cmd(&mut r, "SET b 2 EX 100").await, b"+OK\r\n");
    assert_eq!(cmd(&mut r, "GET a").await, b"$1\r\n1\r\n");
    assert_eq!(cmd(&mut r, "GET nope").await, b"$-1\r\n");

    let info = bulk_payload(&cmd(&mut r, "INFO").await);
    let mut sections = Vec::new();
    for line in info.split("\r\n") {
        if let Some(h) = line.strip_prefix("# ") {
            sections.push(h.to_string());
        } else if !line.is_empty() {
            assert!(line.contains(':'), "field line without ':' {line:?}");
        }
    }
    assert_eq!(
        sections,
        [
            "Server",
            "Clients",
            "Memory",
            "Persistence",
            "Stats",
            "Replication",
            "CPU",
            "Modules",
            "Errorstats",
            "Cluster",
            "Keyspace"
        ]
    );
    assert!(info.contains("\r\nredis_version:7.0.15\r\n"));
    assert!(info.contains("\r\nshoal_version:"));
    assert!(info.contains("\r\nkeyspace_hits:1\r\n"), "{info}");
    assert!(info.contains("\r\nkeyspace_misses:1\r\n"));
    assert!(info.contains("\r\ndb0:keys=2,expires=1,avg_ttl=0\r\n"));
    assert!(!info.contains("db1:"), "empty dbs are not listed");
    let used: u64 = info
        .split("\r\n")
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.parse().ok())
        .expect("used_memory");
    assert!(used > 0);

    // Explicit sections, any case, in Redis's order; unknown ones are ignored.
    let two = bulk_payload(&cmd(&mut r, "INFO cpu SERVER bogus").await);
    assert!(two.starts_with("# Server\r\n"));
    assert!(two.contains("\r\n\r\n# CPU\r\nused_cpu_sys:"));
    assert_eq!(two.matches("# ").count(), 2);
    assert_eq!(cmd(&mut r, "INFO bogus").await, b"$0\r\n\r\n");

    let stats = bulk_payload(&cmd(&mut r, "INFO commandstats").await);
    assert!(stats.contains("cmdstat_set:calls=2,usec="), "{stats}");
    assert!(stats.contains("rejected_calls=0,failed_calls=0"));

    // RESP3: verbatim string.
    cmd(&mut r, "HELLO 3").await;
    let v = cmd(&mut r, "INFO server").await;
    assert!(v.starts_with(b"="), "{}", text(&v));
    assert!(text(&v).contains("\r\ntxt:# Server\r\n"));
    node.stop().await;
}

#[tokio::test]
async fn config_get_set_round_trip_and_errors() {
    let node = TestNode::start().await;
    let mut r = node.raw().await;
    assert_eq!(
        cmd(&mut r, "CONFIG SET maxclients 123 timeout 5").await,
        b"+OK\r\n"
    );
    assert_eq!(
        cmd(&mut r, "CONFIG GET maxclients").await,
        b"*2\r\n$10\r\nmaxclients\r\n$3\r\n123\r\n"
    );
    // A plain name echoes the client's spelling; patterns list each parameter once.
    assert_eq!(
        cmd(&mut r, "CONFIG GET TIMEOUT").await,
        b"*2\r\n$7\r\nTIMEOUT\r\n$1\r\n5\r\n"
    );
    let both = text(&cmd(&mut r, "CONFIG GET maxc* maxclients hz").await);
    assert!(both.starts_with("*4\r\n"), "{both}");

    assert_eq!(
        text(&cmd(&mut r, "CONFIG SET nosuch 1").await),
        "-ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'\r\n"
    );
    assert_eq!(
        text(&cmd(&mut r, "CONFIG SET databases 3").await),
        "-ERR CONFIG SET failed (possibly related to argument 'databases') - can't set immutable config\r\n"
    );
    assert_eq!(
        text(&cmd(&mut r, "CONFIG SET maxclients abc").await),
        "-ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument couldn't be parsed into an integer\r\n"
    );
    assert_eq!(
        text(&cmd(&mut r, "CONFIG SET hz 10 hz 11").await),
        "-ERR CONFIG SET failed (possibly related to argument 'hz') - duplicate parameter\r\n"
    );
    assert_eq!(
        text(&cmd(&mut r, "CONFIG SET hz 10 timeout").await),
        "-ERR syntax error\r\n"
    );
    assert_eq!(
        text(&cmd(&mut r, "CONFIG SET timeout").await),
        "-ERR wrong number of arguments for 'config|set' command\r\n"
    );
    // Atomic: the valid first pair is not applied when the second fails.
    assert!(
        cmd(&mut r, "CONFIG SET timeout 7 maxclients abc")
            .await
            .starts_with(b"-ERR")
    );
    assert_eq!(
        cmd(&mut r, "CONFIG GET timeout").await,
        b"*2\r\n$7\r\ntimeout\r\n$1\r\n5\r\n"
    );
    assert_eq!(
        text(&cmd(&mut r, "CONFIG REWRITE").await),
        "-ERR The server is running without a config file\r\n"
    );
    assert_eq!(
        text(&cmd(&mut r, "CONFIG nope").await),
        "-ERR unknown subcommand 'nope'. Try CONFIG HELP.\r\n"
    );
    assert!(
        cmd(&mut r, "CONFIG HELP")
            .await
            .starts_with(b"*11\r\n+CONFIG <subcommand>")
    );
    assert_eq!(cmd(&mut r, "CONFIG RESETSTAT").await, b"+OK\r\n");

    // RESP3 answers a map.
    cmd(&mut r, "HELLO 3").await;
    assert_eq!(
        cmd(&mut r, "CONFIG GET maxclients").await,
        b"%1\r\n$10\r\nmaxclients\r\n$3\r\n123\r\n"
    );
    node.stop().await;
}

#[tokio::test]
async fn config_set_changes_slowlog_behaviour() {
    let node = TestNode::start().await;
    let mut r = node.raw().await;
    assert_eq!(cmd(&mut r, "SLOWLOG RESET").await, b"+OK\r\n");
    assert_eq!(cmd(&mut r, "SET a b").await, b"+OK\r\n");
    assert_eq!(cmd(&mut r, "SLOWLOG LEN").await, b":0\r\n");
    assert_eq!(
        cmd(&mut r, "CONFIG SET slowlog-log-slower-than 0").await,
        b"+OK\r\n"
    );
    assert_eq!(cmd(&mut r, "SET slowkey v").await, b"+OK\r\n");
    let got = text(&cmd(&mut r, "SLOWLOG GET 1").await);
    assert!(got.starts_with("*1\r\n*6\r\n:"), "{got}");
    assert!(
        got.contains("*3\r\n$3\r\nSET\r\n$7\r\nslowkey\r\n$1\r\nv\r\n"),
        "{got}"
    );
    assert_eq!(
        text(&cmd(&mut r, "SLOWLOG GET -2").await),
        "-ERR count should be greater than or equal to -1\r\n"
    );
    // Shrinking the log trims it.
    assert_eq!(
        cmd(&mut r, "CONFIG SET slowlog-max-len 1").await,
        b"+OK\r\n"
    );
    assert_eq!(cmd(&mut r, "SLOWLOG LEN").await, b":1\r\n");
    node.stop().await;
}

#[tokio::test]
async fn command_introspection() {
    let node = TestNode::start().await;
    let mut r = node.raw().await;
    let n = node
        .handle
        .as_ref()
        .expect("running")
        .shared()
        .commands
        .all()
        .len();
    assert_eq!(
        text(&cmd(&mut r, "COMMAND COUNT").await),
        format!(":{n}\r\n")
    );
    let all = cmd(&mut r, "COMMAND").await;
    assert!(text(&all).starts_with(&format!("*{n}\r\n*10\r\n")));

    // COMMAND INFO get: Redis 7.0's 10-element shape (ACL category order aside).
    let info = text(&cmd(&mut r, "COMMAND INFO get nosuch").await);
    assert!(
        info.starts_with(
            "*2\r\n*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n*3\r\n"
        ),
        "{info}"
    );
    for cat in ["+@read\r\n", "+@fast\r\n", "+@string\r\n"] {
        assert!(info.contains(cat));
    }
    assert!(info.ends_with(
        "*0\r\n*1\r\n*6\r\n$5\r\nflags\r\n*2\r\n+RO\r\n+access\r\n$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n*2\r\n$5\r\nindex\r\n:1\r\n$9\r\nfind_keys\r\n*4\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n*6\r\n$7\r\nlastkey\r\n:0\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n*0\r\n$-1\r\n"
    ), "{info}");

    assert_eq!(
        cmd(&mut r, "COMMAND GETKEYS MSET a 1 b 2").await,
        b"*2\r\n$1\r\na\r\n$1\r\nb\r\n"
    );
    assert_eq!(
        text(&cmd(&mut r, "COMMAND GETKEYS MSET a").await),
        "-ERR Invalid number of arguments specified for command\r\n"
    );
    assert_eq!(
        text(&cmd(&mut r, "COMMAND GETKEYS nosuch a").await),
        "-ERR Invalid command specified\r\n"
    );
    assert_eq!(
        text(&cmd(&mut r, "COMMAND GETKEYS PING x").await),
        "-ERR The command has no key arguments\r\n"
    );
    assert_eq!(
        cmd(&mut r, "COMMAND GETKEYS MEMORY USAGE k").await,
        b"*1\r\n$1\r\nk\r\n"
    );

    // DOCS carries Redis's argument tree, which redis-cli turns into hints.
    let docs = text(&cmd(&mut r, "COMMAND DOCS set nosuch").await);
    assert!(docs.starts_with("*2\r\n$3\r\nset\r\n"), "{docs}");
    assert!(docs.contains("$9\r\narguments\r\n"));
    assert!(docs.contains("$7\r\nKEEPTTL\r\n"));
    let cfg = text(&cmd(&mut r, "COMMAND DOCS config|get").await);
    assert!(cfg.starts_with("*2\r\n$10\r\nconfig|get\r\n"), "{cfg}");

    let list = text(&cmd(&mut r, "COMMAND LIST FILTERBY PATTERN slowlog*").await);
    assert!(list.starts_with("*5\r\n$7\r\nslowlog\r\n"), "{list}");
    assert_eq!(
        cmd(&mut r, "COMMAND LIST FILTERBY MODULE x").await,
        b"*0\r\n"
    );
    assert_eq!(
        text(&cmd(&mut r, "COMMAND LIST x").await),
        "-ERR syntax error\r\n"
    );
    node.stop().await;
}

#[tokio::test]
async fn monitor_sees_other_clients() {
    let node = TestNode::start().await;
    let mut mon = node.raw().await;
    let mut other = node.raw().await;
    assert_eq!(cmd(&mut mon, "MONITOR").await, b"+OK\r\n");
    assert_eq!(cmd(&mut other, "SET foo bar").await, b"+OK\r\n");
    let line = text(&mon.read_reply().await);
    assert!(line.starts_with('+'), "{line}");
    assert!(line.ends_with("\"SET\" \"foo\" \"bar\"\r\n"), "{line}");
    node.stop().await;
}

#[tokio::test]
async fn reset_leaves_monitor_mode() {
    let node = TestNode::start().await;
    let mut mon = node.raw().await;
    let mut other = node.raw().await;
    assert_eq!(cmd(&mut mon, "MONITOR").await, b"+OK\r\n");
    assert_eq!(cmd(&mut mon, "RESET").await, b"+RESET\r\n");
    assert_eq!(cmd(&mut other, "SET foo bar").await, b"+OK\r\n");
    // A still-monitoring connection would get the SET line before PONG.
    assert_eq!(cmd(&mut mon, "PING").await, b"+PONG\r\n");
    node.stop().await;
}

#[tokio::test]
async fn debug_and_misc() {
    let node = TestNode::start().await;
    let mut r = node.raw().await;
    assert_eq!(cmd(&mut r, "DEBUG SLEEP 0").await, b"+OK\r\n");
    let t = Instant::now();
    assert_eq!(cmd(&mut r, "DEBUG SLEEP 0.2").await, b"+OK\r\n");
    assert_eq!(cmd(&mut r, "PING").await, b"+PONG\r\n");
    assert!(t.elapsed() >= Duration::from_millis(200));
    assert_eq!(
        text(&cmd(&mut r, "DEBUG nope").await),
        "-ERR unknown subcommand or wrong number of arguments for 'nope'. Try DEBUG HELP.\r\n"
    );
    assert_eq!(cmd(&mut r, "DEBUG SET-ACTIVE-EXPIRE 0").await, b"+OK\r\n");
    assert_eq!(cmd(&mut r, "DEBUG SET-ACTIVE-EXPIRE 1").await, b"+OK\r\n");
    assert_eq!(
        text(&cmd(&mut r, "DEBUG OBJECT k").await),
        "-ERR no such key\r\n"
    );
    cmd(&mut r, "SET k v").await;
    let obj = text(&cmd(&mut r, "DEBUG OBJECT k").await);
    assert!(
        obj.starts_with("+Value at:") && obj.contains(" encoding:embstr "),
        "{obj}"
    );
    let usage = text(&cmd(&mut r, "MEMORY USAGE k").await);
    assert!(usage.starts_with(':'), "{usage}");
    assert_eq!(cmd(&mut r, "MEMORY USAGE nokey").await, b"$-1\r\n");
    assert_eq!(
        text(&cmd(&mut r, "MEMORY USAGE k SAMPLES x").await),
        "-ERR value is not an integer or out of range\r\n"
    );
    assert!(cmd(&mut r, "MEMORY STATS").await.starts_with(b"*"));
    assert_eq!(cmd(&mut r, "FUNCTION LIST").await, b"*0\r\n");
    assert_eq!(cmd(&mut r, "FUNCTION FLUSH").await, b"+OK\r\n");
    let time = text(&cmd(&mut r, "TIME").await);
    assert!(time.starts_with("*2\r\n$10\r\n"), "{time}");
    assert!(cmd(&mut r, "LASTSAVE").await.starts_with(b":"));
    node.stop().await;
}

#[tokio::test]
async fn client_pause_write_blocks_writes_only() {
    let node = TestNode::start().await;
    let mut admin = node.raw().await;
    let mut writer = node.raw().await;
    let mut reader = node.raw().await;
    assert_eq!(
        cmd(&mut admin, "CLIENT PAUSE 20000 WRITE").await,
        b"+OK\r\n"
    );
    writer.send(&common::encode(&[b"SET", b"p", b"1"])).await;
    // The write is held back ...
    assert!(
        tokio::time::timeout(Duration::from_millis(300), writer.read_reply())
            .await
            .is_err(),
        "SET answered during CLIENT PAUSE WRITE"
    );
    // ... while PING passes.
    assert_eq!(cmd(&mut reader, "PING").await, b"+PONG\r\n");
    assert_eq!(cmd(&mut admin, "CLIENT UNPAUSE").await, b"+OK\r\n");
    let r = tokio::time::timeout(WAIT, writer.read_reply())
        .await
        .expect("SET after unpause");
    assert_eq!(r, b"+OK\r\n");
    node.stop().await;
}

#[tokio::test]
async fn shutdown_variants_and_stop() {
    let node = TestNode::start().await;
    let mut r = node.raw().await;
    assert_eq!(
        text(&cmd(&mut r, "SHUTDOWN ABORT").await),
        "-ERR No shutdown in progress.\r\n"
    );
    assert_eq!(
        text(&cmd(&mut r, "SHUTDOWN bogus").await),
        "-ERR syntax error\r\n"
    );
    assert_eq!(
        text(&cmd(&mut r, "SHUTDOWN SAVE NOSAVE").await),
        "-ERR syntax error\r\n"
    );
    assert_eq!(
        text(&cmd(&mut r, "SHUTDOWN SAVE").await),
        "-ERR Errors trying to SHUTDOWN. Check logs.\r\n"
    );
    r.send(&common::encode(&[b"SHUTDOWN", b"NOSAVE"])).await;
    // No reply: the connection just closes.
    assert_eq!(r.read_to_close().await, b"");
    let handle = node.handle.as_ref().expect("running");
    tokio::time::timeout(WAIT, handle.shutdown_requested())
        .await
        .expect("shutdown requested in time");
    node.stop().await;
}
