//! Listeners: bind the configured addresses, accept, enforce `maxclients`
//! and protected mode, set TCP options, and spawn one task per connection.

use crate::config::Config;
use crate::node::{NodeError, Shared};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::task::TaskTracker;

const DENIED: &str = "-DENIED shoal is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to shoal you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to shoal from the same host the server is running, however MAKE SURE shoal is not publicly accessible from internet if you do so. 2) Alternatively you can just disable the protected mode by setting the protected-mode option to 'no' in the configuration file, and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Set up an authentication password for the default user (requirepass). NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

/// Binds every `bind` address on `port`. An address prefixed with '-' may fail.
pub async fn bind_all(config: &Config) -> Result<Vec<TcpListener>, NodeError> {
    let mut out = Vec::new();
    let mut port = config.port;
    for spec in &config.bind {
        let (optional, host) = match spec.strip_prefix('-') {
            Some(h) => (true, h),
            None => (false, spec.as_str()),
        };
        let host = if host == "*" { "0.0.0.0" } else { host };
        let addr = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        match TcpListener::bind(&addr).await {
            Ok(l) => {
                // With port 0, every further address shares the port picked first.
                if port == 0
                    && let Ok(a) = l.local_addr()
                {
                    port = a.port();
                }
                out.push(l);
            }
            Err(e) if optional => {
                tracing::warn!(%addr, error = %e, "optional bind address skipped");
            }
            Err(source) => return Err(NodeError::Bind { addr, source }),
        }
    }
    if out.is_empty() {
        return Err(NodeError::NothingBound(config.bind.join(" ")));
    }
    Ok(out)
}

/// Accepts until shutdown; each connection runs in its own tracked task.
pub async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, tracker: TaskTracker) {
    loop {
        let accepted = tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            r = listener.accept() => r,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let shared2 = Arc::clone(&shared);
        tracker.spawn(async move {
            if let Some(stream) = admit(&shared2, stream, peer).await {
                crate::net::connection::serve(shared2, stream, peer).await;
            }
        });
    }
}

/// Applies connection-level policy; returns the stream if the client may proceed.
async fn admit(shared: &Shared, mut stream: TcpStream, peer: SocketAddr) -> Option<TcpStream> {
    use std::sync::atomic::Ordering::Relaxed;
    shared.stats.total_connections.fetch_add(1, Relaxed);
    let (maxclients, protected, nopass, keepalive) = {
        let c = shared.config.read();
        (
            c.maxclients,
            c.protected_mode,
            c.requirepass.is_empty(),
            c.tcp_keepalive,
        )
    };
    if shared.clients.len() >= maxclients {
        shared.stats.rejected_connections.fetch_add(1, Relaxed);
        let _ = stream
            .write_all(b"-ERR max number of clients reached\r\n")
            .await;
        return None;
    }
    if protected && nopass && !peer.ip().is_loopback() {
        shared.stats.rejected_connections.fetch_add(1, Relaxed);
        let _ = stream.write_all(DENIED.as_bytes()).await;
        return None;
    }
    let _ = stream.set_nodelay(true);
    if keepalive > 0 {
        let ka = socket2::TcpKeepalive::new()
            .with_time(Duration::from_secs(keepalive))
            .with_interval(Duration::from_secs((keepalive / 3).max(1)));
        if let Err(e) = socket2::SockRef::from(&stream).set_tcp_keepalive(&ka) {
            tracing::debug!(error = %e, "cannot set TCP keepalive");
        }
    }
    Some(stream)
}
