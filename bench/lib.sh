# Shared by the bench scripts: ports, waiting, wrk runs, medians, cleanup. Source it; needs $tmp.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {  # port path [scheme]; https is not verified (the benches' throwaway certificates)
  for _ in $(seq 100); do curl -sk -o /dev/null "${3:-http}://127.0.0.1:$1/$2" && return 0; sleep 0.05; done
  echo "no server on $1" >&2
  exit 1
}
measure() {  # url [connections] [seconds] -> requests/s; wrk pinned to CPU 1
  taskset -c 1 wrk -t1 -c"${2:-64}" -d"${3:-5}s" --latency "$1" | awk '/Requests\/sec/ {print $2}'
}
cpu_ticks() {  # pid -> utime+stime of the process and its child processes (nginx's worker), in ticks
  local total=0 p
  for p in "$1" $(pgrep -P "$1" || true); do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}
wrk_stats() {  # ticks-before ticks-after < `wrk --latency` output -> "req/s p50_ms p99_ms cpu_us_per_req errors"
  awk -v b="$1" -v a="$2" -v hz="$(getconf CLK_TCK)" '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    / requests in / {n = $1}
    /Requests\/sec/ {r = $2}
    /^ +50%/ {p50 = ms($2)}
    /^ +99%/ {p99 = ms($2)}
    /Non-2xx/ {bad += $NF}
    /Socket errors/ {gsub(",", ""); bad += $4 + $6 + $8 + $10}
    END {printf "%.0f %.3f %.3f %.2f %d\n", r, p50, p99, (n > 0 ? (a - b) / hz * 1e6 / n : 0), bad}'
}
stats() {  # column < lines -> "median min max"
  awk -v c="$1" 'NF {print $c}' | sort -n | awk '{a[NR]=$1} END {printf "%s %s %s\n", a[int((NR+1)/2)], a[1], a[NR]}'
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
need() {  # command package
  command -v "$1" >/dev/null || { echo "bench: installing $2"; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }
}
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
start_unbroken() {  # port extra-args... ; one loop pinned to CPU 0; $UNBROKEN_BIN picks the binary
  local port=$1
  shift
  taskset -c 0 "${UNBROKEN_BIN:-build/release/unbroken}" serve --listen 127.0.0.1:"$port" --admin off --threads 1 --workers 1 --diag "$@" \
    2>>"$tmp/unbroken.err" &
  pids+=($!)
}
bench_tool() {  # name: builds bench/NAME/NAME.c into build/bench/NAME when it is newer
  mkdir -p build/bench
  [ "build/bench/$1" -nt "bench/$1/$1.c" ] || cc -O2 -Wall -o "build/bench/$1" "bench/$1/$1.c"
}
start_floor() {  # -> sets floor_port and floor_pid; bench/floor/floor.c built into build/bench, pinned to CPU 0
  bench_tool floor
  taskset -c 0 build/bench/floor 0 >"$tmp/floor.port" &
  floor_pid=$!
  pids+=($floor_pid)
  for _ in $(seq 100); do [ -s "$tmp/floor.port" ] && break; sleep 0.05; done
  floor_port=$(cat "$tmp/floor.port")
}
