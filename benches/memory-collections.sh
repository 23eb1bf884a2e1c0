#!/usr/bin/env bash
# Memory of collections, shoal next to redis-server, each in a fresh process:
# 100k hashes of 10 fields and 10k sorted sets of 100 members (both the
# packed encodings under the default limits), plus 1k sets of 1000 members
# (hashtable). Prints (RSS after - RSS before) per collection and per element.
# Usage: benches/memory-collections.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
command -v redis-server >/dev/null && command -v redis-cli >/dev/null || {
  echo "needs redis-server and redis-cli" >&2; exit 2; }
cargo build --release --bin shoal-server --manifest-path "$root/Cargo.toml" >&2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
python3 - "$tmp" <<'PY'
import sys
d = sys.argv[1]
def cmd(*a):
    return b"*%d\r\n" % len(a) + b"".join(b"$%d\r\n%s\r\n" % (len(x), x) for x in a)
with open(d + "/hash", "wb") as f:
    for i in range(100_000):
        args = [b"HSET", b"user:%06d" % i]
        for j in range(10):
            args += [b"field%d" % j, b"value:%d" % (i * 10 + j)]
        f.write(cmd(*args))
with open(d + "/zset", "wb") as f:
    for i in range(10_000):
        args = [b"ZADD", b"board:%05d" % i]
        for j in range(100):
            args += [b"%d" % ((i * 7919 + j * 104729) % 1000003), b"player:%d" % j]
        f.write(cmd(*args))
with open(d + "/set", "wb") as f:
    for i in range(1_000):
        args = [b"SADD", b"tags:%04d" % i] + [b"tag:%d" % j for j in range(1000)]
        f.write(cmd(*args))
PY
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss() { awk '/VmRSS/{print $2*1024}' "/proc/$1/status"; }
measure() { # name dataset collections elements-per-collection command...
  local name=$1 data=$2 n=$3 per=$4; shift 4
  local port; port=$(free_port)
  "$@" --port "$port" >/dev/null 2>&1 &
  local pid=$!
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  local before; before=$(rss "$pid")
  redis-cli -p "$port" --pipe < "$tmp/$data" >/dev/null
  local keys; keys=$(redis-cli -p "$port" dbsize)
  local k0; k0=$(redis-cli -p "$port" randomkey)
  local enc; enc=$(redis-cli -p "$port" object encoding "$k0")
  local after; after=$(rss "$pid")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  printf '%-6s %-5s keys=%-7s encoding=%-9s RSS/collection=%-6s B RSS/element=%s B\n' \
    "$name" "$data" "$keys" "$enc" $(( (after - before) / n )) $(( (after - before) / (n * per) ))
}
for spec in "hash 100000 10" "zset 10000 100" "set 1000 1000"; do
  set -- $spec
  measure shoal "$1" "$2" "$3" "$root/target/release/shoal-server" --loglevel warning
  measure redis "$1" "$2" "$3" redis-server --save '' --appendonly no
done
