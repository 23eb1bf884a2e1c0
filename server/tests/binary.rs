//! The `shoal-server` binary: starts from flags, exits 0 on SIGTERM and on
//! SHUTDOWN, refuses a bad configuration with a clear message.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);

/// A child process killed on drop if it is still running.
struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_shoal-server"))
        .args([
            "--port",
            "0",
            "--log-format",
            "json",
            "--worker-threads",
            "1",
        ])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn shoal-server");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("ready to accept connections") {
                // The JSON line has addrs="[127.0.0.1:PORT]".
                let at = line.find("127.0.0.1:").expect("address in the ready line");
                let addr: String = line[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                    .collect();
                let _ = tx.send(addr);
            }
        }
    });
    let addr = rx.recv_timeout(WAIT).expect("server ready in time");
    Server { child, addr }
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(
            start.elapsed() < within,
            "server did not exit within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn roundtrip(s: &mut TcpStream, req: &[u8], want: &[u8]) {
    s.write_all(req).expect("write request");
    let mut buf = vec![0; want.len()];
    s.read_exact(&mut buf).expect("read reply");
    assert_eq!(buf, want);
}

#[test]
fn sigterm_exits_zero_promptly() {
    let mut srv = start();
    let mut c = TcpStream::connect(&srv.addr).unwrap();
    c.set_read_timeout(Some(WAIT)).unwrap();
    roundtrip(&mut c, b"PING\r\n", b"+PONG\r\n");
    let pid = srv.child.id() as libc::pid_t;
    #[allow(unsafe_code)]
    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    let status = wait_exit(&mut srv.child, Duration::from_secs(5));
    assert_eq!(status.code(), Some(0));
    // The open connection was closed, not left hanging.
    let mut rest = Vec::new();
    let _ = c.read_to_end(&mut rest);
}

#[test]
fn shutdown_command_exits_zero() {
    let mut srv = start();
    let mut c = TcpStream::connect(&srv.addr).unwrap();
    c.set_read_timeout(Some(WAIT)).unwrap();
    roundtrip(&mut c, b"SET k v\r\n", b"+OK\r\n");
    c.write_all(b"SHUTDOWN\r\n").unwrap();
    let status = wait_exit(&mut srv.child, Duration::from_secs(5));
    assert_eq!(status.code(), Some(0));
}

#[test]
fn bad_config_fails_at_start_with_a_clear_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_shoal-server"))
        .args(["--port", "notaport"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--port") && err.contains("notaport"), "{err}");
}

#[test]
fn help_lists_parameters() {
    let out = Command::new(env!("CARGO_BIN_EXE_shoal-server"))
        .arg("--help")
        .output()
        .expect("run");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for p in [
        "--port",
        "--bind",
        "--maxclients",
        "--requirepass",
        "SHOAL_",
    ] {
        assert!(text.contains(p), "help mentions {p}");
    }
}
