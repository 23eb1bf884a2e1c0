//! `shoal-server`: parse the configuration, set up logging, run a node until
//! SIGTERM/SIGINT or SHUTDOWN, then shut down gracefully (exit 0 within 5 s).
//!
//! `shoal-server export FILE [flags]` and `shoal-server import FILE [flags]`
//! copy the records of the configured `persistence` backend in `dir` to or
//! from a portable file (to move between backends and versions).

use anyhow::Context as _;
use shoal::config::{Config, LogFormat};
use std::time::Duration;

const GRACE: Duration = Duration::from_secs(5);

fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let tool = match args.first().map(String::as_str) {
        Some(t @ ("export" | "import")) => {
            let t = t.to_string();
            args.remove(0);
            if args.is_empty() || args[0].starts_with("--") {
                eprintln!("usage: shoal-server {t} FILE [--persistence sled|redb] [--dir DIR]");
                std::process::exit(2);
            }
            Some((t, args.remove(0)))
        }
        _ => None,
    };
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{}", Config::help());
        return Ok(());
    }
    if args.iter().any(|a| a == "--version" || a == "-v") {
        println!("shoal-server v={}", env!("CARGO_PKG_VERSION"));
        return Ok(());
    }
    let config = match Config::from_args_and_env(&args, |k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("shoal-server: invalid configuration: {e}");
            eprintln!("(run shoal-server --help for the parameters)");
            std::process::exit(1);
        }
    };
    init_logging(&config);
    if let Some((tool, file)) = tool {
        return portable(&tool, &file, &config);
    }
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if config.worker_threads > 0 {
        rt.worker_threads(config.worker_threads);
    }
    let rt = rt.build().context("cannot start the tokio runtime")?;
    rt.block_on(run(config))
}

async fn run(config: Config) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    // Handlers first: a SIGTERM that arrives once the node says "ready" must
    // take the graceful path, not the default action that kills the process.
    let mut term = signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?;
    let node = shoal::Node::start(config)
        .await
        .context("cannot start the node")?;
    tokio::select! {
        _ = term.recv() => tracing::info!("received SIGTERM, shutting down"),
        _ = int.recv() => tracing::info!("received SIGINT, shutting down"),
        _ = node.shutdown_requested() => tracing::info!("SHUTDOWN requested"),
    }
    let failure = node.failure();
    node.shutdown(GRACE).await;
    if let Some(why) = failure {
        anyhow::bail!(why);
    }
    Ok(())
}

/// `export` / `import`: the node must not be running on `dir` (the
/// backends lock their files, so a running node makes this fail cleanly).
fn portable(tool: &str, file: &str, config: &Config) -> anyhow::Result<()> {
    use shoal::persist::{Kind, portable};
    let dir = std::path::Path::new(&config.dir);
    let file = std::path::Path::new(file);
    if config.persistence == Kind::None {
        anyhow::bail!(
            "{tool} needs --persistence sled|redb (and --dir) to know which data to read or write"
        );
    }
    let n = if tool == "export" {
        portable::export_dir(config.persistence, dir, file)
    } else {
        portable::import_dir(config.persistence, dir, file)
    }
    .with_context(|| format!("{tool} {} failed", file.display()))?;
    println!("{tool}: {n} keys");
    Ok(())
}

fn init_logging(config: &Config) {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;
    let level = match config.loglevel.as_str() {
        "debug" => LevelFilter::DEBUG,
        "verbose" => LevelFilter::INFO,
        "notice" => LevelFilter::INFO,
        "warning" => LevelFilter::WARN,
        _ => LevelFilter::OFF,
    };
    // RUST_LOG (e.g. "info,shoal::net=debug") overrides loglevel when set and valid.
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|s| s.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(level));
    let registry = tracing_subscriber::registry().with(filter);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    match config.log_format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .init(),
        LogFormat::Human => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(ansi)
                    .with_writer(std::io::stderr),
            )
            .init(),
    }
}
