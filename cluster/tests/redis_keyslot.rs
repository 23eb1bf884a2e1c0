//! key_slot against a real redis-server: CLUSTER KEYSLOT for thousands of random keys (many with braces) must equal ours. Skipped with a message when redis-server is not installed.

use shoal_cluster::{SLOTS, key_slot};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Bound on every wait: start-up, each read and write.
const WAIT: Duration = Duration::from_secs(10);
const KEYS: usize = 5000;
const BATCH: usize = 500;

/// A redis-server child, killed by PID and reaped on drop (also on a failed
/// assertion), so no test leaves a server behind.
struct Redis {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Redis {
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

/// A port nobody listened on a moment ago (bind port 0, read it, release it).
/// Another process may take it before redis binds it; `start` then retries.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    l.local_addr().expect("local addr").port()
}

fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    s.set_read_timeout(Some(WAIT))?;
    s.set_write_timeout(Some(WAIT))?;
    Ok(s)
}

fn pings(addr: SocketAddr) -> bool {
    let attempt = || -> std::io::Result<bool> {
        let mut s = connect(addr)?;
        s.set_read_timeout(Some(Duration::from_secs(1)))?;
        s.write_all(b"PING\r\n")?;
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line)?;
        Ok(line == "+PONG\r\n")
    };
    attempt().unwrap_or(false)
}

fn start(bin: &Path, dir: &Path) -> Redis {
    for _ in 0..5 {
        let port = free_port();
        let child = Command::new(bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(["--cluster-enabled", "yes", "--cluster-config-file"])
            .arg(dir.join("nodes.conf"))
            .arg("--dir")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        let mut redis = Redis {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if redis.child.try_wait().ok().flatten().is_some() {
                break; // exited: most likely the port was taken; try another
            }
            if pings(redis.addr) {
                return redis;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!("redis-server did not answer PING within {WAIT:?} (5 attempts)");
}

/// xorshift64*: enough randomness for keys, no dependency, reproducible
/// from the printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Random binary keys of 0-40 bytes where braces are common, so empty tags,
/// nested and unclosed braces and several tags per key all occur.
fn random_key(rng: &mut Rng) -> Vec<u8> {
    let len = rng.below(41) as usize;
    (0..len)
        .map(|_| match rng.below(8) {
            0 => b'{',
            1 => b'}',
            2 => b'a' + rng.below(3) as u8,
            _ => rng.below(256) as u8,
        })
        .collect()
}

fn keyslot_command(key: &[u8]) -> Vec<u8> {
    let mut cmd = b"*3\r\n$7\r\nCLUSTER\r\n$7\r\nKEYSLOT\r\n".to_vec();
    cmd.extend_from_slice(format!("${}\r\n", key.len()).as_bytes());
    cmd.extend_from_slice(key);
    cmd.extend_from_slice(b"\r\n");
    cmd
}

#[test]
fn key_slot_matches_redis_cluster_keyslot() {
    let Some(bin) = find_on_path("redis-server") else {
        println!("skipping: redis-server is not installed");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let redis = start(&bin, dir.path());

    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    println!("seed {seed}");
    let mut rng = Rng(seed);
    let mut keys: Vec<Vec<u8>> = [
        &b""[..],
        b"foo",
        b"bar",
        b"{user1000}.following",
        b"foo{}{bar}",
        b"foo{{bar}}",
        b"foo{bar}{zap}",
        b"{",
        b"}",
        b"{}",
        b"123456789",
    ]
    .iter()
    .map(|k| k.to_vec())
    .collect();
    while keys.len() < KEYS {
        keys.push(random_key(&mut rng));
    }

    let stream = connect(redis.addr).expect("connect to redis-server");
    let mut writer = stream.try_clone().expect("clone stream");
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    // Pipelined in batches, so neither side's socket buffer can fill up while
    // the other is not reading.
    for batch in keys.chunks(BATCH) {
        let request: Vec<u8> = batch.iter().flat_map(|k| keyslot_command(k)).collect();
        writer.write_all(&request).expect("write to redis-server");
        for key in batch {
            line.clear();
            reader.read_line(&mut line).expect("read from redis-server");
            let theirs: u16 = line
                .strip_prefix(':')
                .and_then(|l| l.trim_end().parse().ok())
                .unwrap_or_else(|| panic!("unexpected reply {line:?} for key {key:?}"));
            assert!(theirs < SLOTS);
            assert_eq!(
                key_slot(key),
                theirs,
                "key {:?} (seed {seed})",
                String::from_utf8_lossy(key)
            );
        }
    }
    drop(redis);
}
