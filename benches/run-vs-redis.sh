#!/usr/bin/env bash
# Side-by-side throughput of shoal vs redis-server on this machine, by the
# method of bench-vs-redis (pinning, alternating A/B rounds, medians, ratios).
# Usage: benches/run-vs-redis.sh            (full: 5 rounds, ~5 min)
#        BVR_QUICK=1 benches/run-vs-redis.sh (smoke: ~1 min)
# Extra knobs: every BVR_* variable of benches/bench-vs-redis; SHOAL_ARGS adds
# server flags. Results go to benches/results/<date>-vs-redis.txt.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null || {
  echo "needs redis-server and redis-benchmark (apt-get install redis-server redis-tools)" >&2; exit 2; }
cargo build --release --bin shoal-server --manifest-path "$root/Cargo.toml"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# One worker thread: the tool pins both servers to CPU 0 and the client to CPU 1.
setsid "$root/target/release/shoal-server" --port "$port" --worker-threads "${SHOAL_WORKERS:-1}" \
  --loglevel warning ${SHOAL_ARGS:-} &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
mkdir -p "$here/results"
out="$here/results/$(date +%Y-%m-%d)-vs-redis${BVR_SUITE:+-$BVR_SUITE}${BVR_QUICK:+-quick}.txt"
{
  echo "# shoal vs redis-server $(redis-server --version | awk '{print $3}'), $(date -u +%FT%TZ)"
  echo "# machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
  echo "# shoal workers: ${SHOAL_WORKERS:-1}; rounds: ${BVR_ROUNDS:-5}"
  BVR_ROUNDS=${BVR_ROUNDS:-5} BVR_MAX_SECONDS=${BVR_MAX_SECONDS:-480} python3 "$here/bench-vs-redis" "$port"
} | tee "$out"
echo "results written to $out"
