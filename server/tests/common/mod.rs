//! Test harness: start a real node in-process on 127.0.0.1:0 and talk to it
//! with the `redis` crate or raw RESP bytes. Every wait is bounded.
#![allow(dead_code)]

pub mod redis_server;

use shoal::store::ManualClock;
use shoal::{Config, Node, NodeHandle};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Upper bound for any single wait in a test.
pub const WAIT: Duration = Duration::from_secs(10);

/// A node for one test; shut down at the end of the test with `stop()`.
pub struct TestNode {
    pub handle: Option<NodeHandle>,
    pub addr: SocketAddr,
}

impl TestNode {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts with a config tweak (port is always 0).
    pub async fn start_with(f: impl FnOnce(&mut Config)) -> Self {
        let mut c = Config {
            port: 0,
            ..Config::default()
        };
        f(&mut c);
        let handle = Node::start(c).await.expect("node starts");
        let addr = handle.addr();
        TestNode {
            handle: Some(handle),
            addr,
        }
    }

    /// Starts with a manual clock the test advances.
    pub async fn start_with_clock(clock: Arc<ManualClock>) -> Self {
        let c = Config {
            port: 0,
            ..Config::default()
        };
        let handle = Node::start_with_clock(c, clock).await.expect("node starts");
        let addr = handle.addr();
        TestNode {
            handle: Some(handle),
            addr,
        }
    }

    pub async fn client(&self) -> redis::aio::MultiplexedConnection {
        let url = format!("redis://{}/", self.addr);
        let client = redis::Client::open(url).expect("client");
        tokio::time::timeout(WAIT, client.get_multiplexed_async_connection())
            .await
            .expect("connect in time")
            .expect("connect")
    }

    pub async fn raw(&self) -> Raw {
        Raw::connect(self.addr).await
    }

    pub async fn stop(mut self) {
        if let Some(h) = self.handle.take() {
            assert!(
                h.shutdown(WAIT).await,
                "node shut down within the grace period"
            );
        }
    }
}

/// A raw TCP connection speaking bytes.
pub struct Raw {
    pub stream: TcpStream,
}

impl Raw {
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = tokio::time::timeout(WAIT, TcpStream::connect(addr))
            .await
            .expect("connect in time")
            .expect("connect");
        Raw { stream }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// Sends one command as a RESP array.
    pub async fn cmd(&mut self, args: &[&[u8]]) -> Vec<u8> {
        self.send(&encode(args)).await;
        self.read_reply().await
    }

    /// Reads exactly one complete RESP reply (any type, nested aggregates included).
    pub async fn read_reply(&mut self) -> Vec<u8> {
        match self.try_read_reply().await {
            Ok(reply) => reply,
            Err(e) => panic!("{e}"),
        }
    }

    /// Like `read_reply`, but says what went wrong instead of panicking, so a
    /// caller can collect failures (the differential suite reports them all).
    pub async fn try_read_reply(&mut self) -> Result<Vec<u8>, String> {
        let mut buf = Vec::new();
        loop {
            if let Some(n) = reply_len(&buf) {
                if n != buf.len() {
                    return Err(format!(
                        "more than one reply arrived: {}",
                        shoal::util_repr(&buf)
                    ));
                }
                return Ok(buf);
            }
            let mut chunk = [0u8; 65536];
            match tokio::time::timeout(WAIT, self.stream.read(&mut chunk)).await {
                Err(_) => {
                    return Err(format!(
                        "<no reply within {WAIT:?}; got {}>",
                        shoal::util_repr(&buf)
                    ));
                }
                Ok(Err(e)) => return Err(format!("<read error: {e}>")),
                Ok(Ok(0)) => {
                    return Err(format!(
                        "<connection closed; got {}>",
                        shoal::util_repr(&buf)
                    ));
                }
                Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Reads until the server closes the connection; returns everything read.
    pub async fn read_to_close(&mut self) -> Vec<u8> {
        let mut buf = Vec::new();
        tokio::time::timeout(WAIT, self.stream.read_to_end(&mut buf))
            .await
            .expect("server closed in time")
            .ok();
        buf
    }
}

pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        v.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        v.extend_from_slice(a);
        v.extend_from_slice(b"\r\n");
    }
    v
}

/// Length of the first complete RESP2/RESP3 reply in `b`, if complete.
pub fn reply_len(b: &[u8]) -> Option<usize> {
    fn line(b: &[u8], at: usize) -> Option<(usize, &[u8])> {
        let rel = b.get(at..)?.windows(2).position(|w| w == b"\r\n")?;
        Some((at + rel + 2, &b[at + 1..at + rel]))
    }
    // Iterative: a stack of remaining element counts.
    let mut pos = 0;
    let mut pending: Vec<i64> = vec![1];
    while let Some(top) = pending.last_mut() {
        if *top == 0 {
            pending.pop();
            continue;
        }
        *top -= 1;
        let t = *b.get(pos)?;
        let (next, body) = line(b, pos)?;
        pos = next;
        match t {
            b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => {}
            b'$' | b'=' | b'!' => {
                let n: i64 = std::str::from_utf8(body).ok()?.parse().ok()?;
                if n >= 0 {
                    pos += n as usize + 2;
                    if b.len() < pos {
                        return None;
                    }
                }
            }
            b'*' | b'~' | b'>' => {
                let n: i64 = std::str::from_utf8(body).ok()?.parse().ok()?;
                if n > 0 {
                    pending.push(n);
                }
            }
            b'%' | b'|' => {
                let n: i64 = std::str::from_utf8(body).ok()?.parse().ok()?;
                if n > 0 {
                    pending.push(2 * n);
                }
            }
            _ => panic!("unexpected reply type byte {t:?}"),
        }
    }
    Some(pos)
}

impl Raw {
    /// Reads one reply, or whatever arrives before the server closes.
    pub async fn read_to_close_or_reply(&mut self) -> Vec<u8> {
        let mut buf = Vec::new();
        loop {
            if reply_len(&buf).is_some() {
                return buf;
            }
            let mut chunk = [0u8; 4096];
            match tokio::time::timeout(WAIT, self.stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return buf,
                Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}
