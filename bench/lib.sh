# Shared by the bench scripts: ports, waiting, wrk runs, medians, cleanup. Source it; needs $tmp.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {  # port path
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$1/$2" && return 0; sleep 0.05; done
  echo "no server on $1" >&2
  exit 1
}
measure() {  # url [connections] [seconds] -> requests/s; wrk pinned to CPU 1
  taskset -c 1 wrk -t1 -c"${2:-64}" -d"${3:-5}s" --latency "$1" | awk '/Requests\/sec/ {print $2}'
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
