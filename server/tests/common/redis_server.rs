//! A real `redis-server` child for tests that compare against Redis: started
//! on a free port with bounded waits, killed by PID on drop, `None` when
//! redis-server is not installed (callers print why they skip). Standalone
//! ([`start_redis`]) or a one-node cluster owning every slot
//! ([`start_redis_cluster`]).

use super::WAIT;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A `redis-server` child process, killed (by PID) and reaped on drop.
pub struct RedisServer {
    child: Child,
    pub addr: SocketAddr,
    /// The cluster node's directory (nodes.conf), removed on drop.
    _dir: Option<tempfile::TempDir>,
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Asks the OS for a free port (bind port 0, read it, release it).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    l.local_addr().expect("local addr").port()
}

/// Sends PING with a bounded wait; true on `+PONG`.
async fn pings(addr: SocketAddr) -> bool {
    let attempt = async {
        let mut s = TcpStream::connect(addr).await.ok()?;
        s.write_all(b"PING\r\n").await.ok()?;
        let mut buf = [0u8; 7];
        s.read_exact(&mut buf).await.ok()?;
        Some(&buf == b"+PONG\r\n")
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(1), attempt).await,
        Ok(Some(true))
    )
}

/// Starts `redis-server` on a free port, retrying if the port was taken
/// between asking for it and redis binding it. `None` if not installed.
pub async fn start_redis() -> Option<RedisServer> {
    spawn(&[], None).await
}

/// Starts `redis-server --cluster-enabled yes` announcing 127.0.0.1, assigns
/// it all 16384 slots and waits until CLUSTER INFO says `cluster_state:ok`.
/// `None` if not installed.
pub async fn start_redis_cluster() -> Option<RedisServer> {
    let dir = tempfile::tempdir().expect("temp dir");
    let conf = dir.path().join("nodes.conf");
    let conf = conf.to_string_lossy().into_owned();
    let args = [
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        &conf,
        "--cluster-announce-ip",
        "127.0.0.1",
    ];
    let server = spawn(&args, Some(dir)).await?;
    let deadline = Instant::now() + WAIT;
    let mut assigned = false;
    loop {
        assert!(
            Instant::now() < deadline,
            "redis-server cluster did not reach cluster_state:ok in time"
        );
        if !assigned {
            assigned = command(server.addr, &["CLUSTER", "ADDSLOTSRANGE", "0", "16383"])
                .await
                .is_some_and(|r| r.starts_with(b"+OK"));
        } else if command(server.addr, &["CLUSTER", "INFO"])
            .await
            .is_some_and(|r| {
                let ok = b"cluster_state:ok\r\n";
                r.windows(ok.len()).any(|w| w == ok)
            })
        {
            return Some(server);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends one command on a new connection and returns the raw reply (bounded wait).
async fn command(addr: SocketAddr, args: &[&str]) -> Option<Vec<u8>> {
    let attempt = async {
        let mut s = TcpStream::connect(addr).await.ok()?;
        let bytes: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        s.write_all(&super::encode(&bytes)).await.ok()?;
        let mut buf = Vec::new();
        loop {
            if super::reply_len(&buf).is_some() {
                return Some(buf);
            }
            let mut chunk = [0u8; 4096];
            let n = s.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(2), attempt)
        .await
        .ok()
        .flatten()
}

async fn spawn(extra: &[&str], dir: Option<tempfile::TempDir>) -> Option<RedisServer> {
    let bin = find_on_path("redis-server")?;
    let cluster = dir.is_some();
    let work_dir = dir
        .as_ref()
        .map_or_else(std::env::temp_dir, |d| d.path().to_path_buf());
    let mut dir = dir;
    for _ in 0..5 {
        // A cluster node also binds port + 10000 (its bus), so its port must
        // be at most 55535; and that bus port must be free too.
        let port = loop {
            let p = free_port();
            if !cluster
                || (p <= 55535 && std::net::TcpListener::bind(("127.0.0.1", p + 10000)).is_ok())
            {
                break p;
            }
        };
        let child = Command::new(&bin)
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--protected-mode", "no"])
            .arg("--dir")
            .arg(&work_dir)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        let mut server = RedisServer {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            _dir: None,
        };
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if server.child.try_wait().ok().flatten().is_some() {
                break; // exited: most likely the port was taken; try another
            }
            if pings(server.addr).await {
                server._dir = dir.take();
                return Some(server);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    panic!("redis-server did not answer PING in time (5 attempts)");
}
