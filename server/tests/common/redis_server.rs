//! A real `redis-server` child for tests that compare against Redis: started
//! on a free port with bounded waits, killed by PID on drop, `None` when
//! redis-server is not installed (callers print why they skip).

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
    let bin = find_on_path("redis-server")?;
    let dir = std::env::temp_dir();
    for _ in 0..5 {
        let port = free_port();
        let child = Command::new(&bin)
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--protected-mode", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        let mut server = RedisServer {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if server.child.try_wait().ok().flatten().is_some() {
                break; // exited: most likely the port was taken; try another
            }
            if pings(server.addr).await {
                return Some(server);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    panic!("redis-server did not answer PING in time (5 attempts)");
}
