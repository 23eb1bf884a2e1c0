//! Property tests for the request parser: commands encoded by an independent
//! RESP implementation (redis-protocol) parse back to the same arguments,
//! whole or fed in random chunks; arbitrary bytes never panic it and parse
//! the same whether fed whole or in pieces; and random byte blobs sent to a
//! live node never take it down.

mod common;

use proptest::prelude::*;
use proptest::test_runner::{Config as PropConfig, TestRunner};
use redis_protocol::resp2::encode::encode;
use redis_protocol::resp2::types::{OwnedFrame, Resp2Frame};
use shoal::protocol::{Limits, Parsed, ProtocolError, RequestParser};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Encodes a command as a RESP2 array of bulk strings with redis-protocol.
fn resp_encode(args: &[Vec<u8>]) -> Vec<u8> {
    let frame = OwnedFrame::Array(
        args.iter()
            .map(|a| OwnedFrame::BulkString(a.clone()))
            .collect(),
    );
    let mut buf = vec![0u8; frame.encode_len(false)];
    let n = encode(&mut buf, &frame, false).expect("redis-protocol encodes");
    buf.truncate(n);
    buf
}

/// One parse outcome, owned, for comparisons.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Request(usize, Vec<Vec<u8>>),
    Empty(usize),
    Incomplete,
    Error(ProtocolError),
}

fn parse_once(p: &mut RequestParser, buf: &[u8]) -> Outcome {
    match p.parse(buf) {
        Ok(Parsed::Request(n)) => Outcome::Request(n, p.args(buf).to_owned_vec()),
        Ok(Parsed::Empty(n)) => Outcome::Empty(n),
        Ok(Parsed::Incomplete(_)) => Outcome::Incomplete,
        Err(e) => Outcome::Error(e),
    }
}

/// Parses a whole buffer: every request until the input runs out or errs.
fn parse_all(input: &[u8]) -> (Vec<Outcome>, usize) {
    let mut p = RequestParser::new(Limits::default());
    let mut at = 0;
    let mut out = Vec::new();
    loop {
        let o = parse_once(&mut p, &input[at..]);
        match &o {
            Outcome::Request(n, _) | Outcome::Empty(n) => {
                assert!(
                    *n > 0 && at + n <= input.len(),
                    "consumed {n} at {at} of {}",
                    input.len()
                );
                at += n;
                out.push(o);
            }
            Outcome::Incomplete | Outcome::Error(_) => {
                out.push(o);
                return (out, at);
            }
        }
    }
}

/// Parses the same input delivered in chunks: after `Incomplete` the parser is
/// called again with the same request start and more bytes appended.
fn parse_chunked(input: &[u8], cuts: &[usize]) -> (Vec<Outcome>, usize) {
    let mut p = RequestParser::new(Limits::default());
    let mut ends: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    ends.push(input.len());
    ends.sort_unstable();
    let mut at = 0;
    let mut out = Vec::new();
    for &end in &ends {
        if end < at {
            continue;
        }
        loop {
            let o = parse_once(&mut p, &input[at..end]);
            match &o {
                Outcome::Request(n, _) | Outcome::Empty(n) => {
                    assert!(*n > 0 && at + n <= end, "consumed {n} at {at} of {end}");
                    at += n;
                    out.push(o);
                }
                Outcome::Incomplete => {
                    if end == input.len() {
                        out.push(o);
                        return (out, at);
                    }
                    break;
                }
                Outcome::Error(_) => {
                    out.push(o);
                    return (out, at);
                }
            }
        }
    }
    unreachable!("the last chunk ends the input")
}

fn arg() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..40),
        // bytes that look like RESP framing inside a payload
        proptest::collection::vec(
            prop::sample::select(b"*$\r\n:+-0123456789 \"'".to_vec()),
            0..40
        ),
        proptest::collection::vec(any::<u8>(), 1000..5000),
    ]
}

fn command() -> impl Strategy<Value = Vec<Vec<u8>>> {
    proptest::collection::vec(arg(), 1..8)
}

/// Byte soup biased towards RESP tokens so the parser's branches are reached.
fn blob() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        Just(b"*".to_vec()),
        Just(b"$".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"-".to_vec()),
        Just(b"+".to_vec()),
        Just(b":".to_vec()),
        Just(b"\"".to_vec()),
        Just(b"'".to_vec()),
        Just(b"\\x4".to_vec()),
        Just(b"\\".to_vec()),
        Just(b" ".to_vec()),
        Just(b"PING".to_vec()),
        Just(b"GET".to_vec()),
        Just(b"ECHO".to_vec()),
        (0u32..20).prop_map(|n| n.to_string().into_bytes()),
        any::<i64>().prop_map(|n| n.to_string().into_bytes()),
        proptest::collection::vec(any::<u8>(), 0..8),
    ];
    proptest::collection::vec(token, 0..64).prop_map(|t| t.concat())
}

proptest! {
    #![proptest_config(PropConfig { cases: 512, failure_persistence: None, ..PropConfig::default() })]

    /// (a) redis-protocol's encoding parses back to the same arguments.
    #[test]
    fn encoded_commands_round_trip(cmds in proptest::collection::vec(command(), 1..5)) {
        let mut input = Vec::new();
        for c in &cmds {
            input.extend(resp_encode(c));
        }
        let (outcomes, used) = parse_all(&input);
        prop_assert_eq!(used, input.len());
        prop_assert_eq!(outcomes.len(), cmds.len() + 1);
        prop_assert_eq!(outcomes.last(), Some(&Outcome::Incomplete));
        for (o, c) in outcomes.iter().zip(&cmds) {
            match o {
                Outcome::Request(n, args) => {
                    prop_assert_eq!(*n, resp_encode(c).len());
                    prop_assert_eq!(args, c);
                }
                other => prop_assert!(false, "expected a request, got {:?}", other),
            }
        }
    }

    /// (a) the same, fed in random chunks (exercises resumption).
    #[test]
    fn encoded_commands_round_trip_in_chunks(
        cmds in proptest::collection::vec(command(), 1..5),
        cuts in proptest::collection::vec(any::<usize>(), 0..40),
    ) {
        let mut input = Vec::new();
        for c in &cmds {
            input.extend(resp_encode(c));
        }
        let whole = parse_all(&input);
        let chunked = parse_chunked(&input, &cuts);
        prop_assert_eq!(&chunked, &whole);
        let args: Vec<&Vec<Vec<u8>>> = whole.0.iter().filter_map(|o| match o {
            Outcome::Request(_, a) => Some(a),
            _ => None,
        }).collect();
        prop_assert_eq!(args, cmds.iter().collect::<Vec<_>>());
    }

    /// (a) byte-at-a-time delivery of one command.
    #[test]
    fn encoded_command_byte_by_byte(cmd in proptest::collection::vec(
        proptest::collection::vec(any::<u8>(), 0..20), 1..5)
    ) {
        let input = resp_encode(&cmd);
        let cuts: Vec<usize> = (0..input.len()).collect();
        let (outcomes, used) = parse_chunked(&input, &cuts);
        prop_assert_eq!(used, input.len());
        prop_assert_eq!(&outcomes[0], &Outcome::Request(input.len(), cmd));
    }

    /// (b) arbitrary bytes never panic the parser, it always makes progress,
    /// and chunked delivery gives the same results as whole delivery.
    #[test]
    fn random_bytes_never_panic(
        input in prop_oneof![proptest::collection::vec(any::<u8>(), 0..512), blob()],
        cuts in proptest::collection::vec(any::<usize>(), 0..16),
    ) {
        let whole = parse_all(&input);
        let chunked = parse_chunked(&input, &cuts);
        prop_assert_eq!(chunked, whole);
    }
}

/// (b) inputs past the 64 KB line limit (kept apart: few, large cases).
#[test]
fn long_random_lines_never_panic() {
    let mut runner = TestRunner::new(PropConfig {
        cases: 16,
        failure_persistence: None,
        ..PropConfig::default()
    });
    let strategy = (
        prop::sample::select(vec![
            b"*".to_vec(),
            b"*1\r\n$".to_vec(),
            Vec::new(),
            b"*2\r\n$3\r\nGET\r\n$".to_vec(),
        ]),
        prop::sample::select(vec![b'1', b'a', b' ', b'\r', b'"']),
        60_000usize..70_000,
    );
    runner
        .run(&strategy, |(prefix, fill, len)| {
            let mut input = prefix;
            input.extend(std::iter::repeat_n(fill, len));
            let whole = parse_all(&input);
            let chunked = parse_chunked(&input, &[1000, 20_000, 65_536, 65_537]);
            prop_assert_eq!(chunked, whole);
            Ok(())
        })
        .expect("property holds");
}

/// (c) random blobs sent to a live node never crash it: after each blob (and
/// the client closing its side), a fresh connection still gets +PONG.
#[test]
fn random_blobs_never_crash_a_live_node() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let node = rt.block_on(common::TestNode::start());
    let addr = node.addr;
    let mut runner = TestRunner::new(PropConfig {
        cases: 64,
        failure_persistence: None,
        ..PropConfig::default()
    });
    let strategy = prop_oneof![proptest::collection::vec(any::<u8>(), 0..2048), blob()];
    let result = runner.run(&strategy, |bytes| {
        rt.block_on(async {
            let mut raw = common::Raw::connect(addr).await;
            let _ = raw.stream.write_all(&bytes).await;
            let _ = raw.stream.shutdown().await;
            // The server answers what it can and closes once it sees our EOF
            // (or a framing error); it must not hang on to the connection.
            let mut sink = Vec::new();
            let closed =
                tokio::time::timeout(common::WAIT, raw.stream.read_to_end(&mut sink)).await;
            prop_assert!(closed.is_ok(), "server kept the connection open after EOF");

            let mut probe = common::Raw::connect(addr).await;
            let pong = tokio::time::timeout(Duration::from_secs(10), probe.cmd(&[b"PING"])).await;
            prop_assert_eq!(pong.ok(), Some(b"+PONG\r\n".to_vec()));
            Ok(())
        })
    });
    rt.block_on(node.stop());
    result.expect("the node survives random input");
}
