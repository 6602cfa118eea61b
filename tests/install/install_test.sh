#!/usr/bin/env bash
# make install, as another project sees it: install the built tree into a temporary prefix (with
# DESTDIR, as a packager would), build examples/hello_server.cc there with find_package(unbroken),
# run it on port 0 and fetch a page.
#   tests/install/install_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$(realpath "$1")
build=$(realpath "$2")
tmp=$(mktemp -d)
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

prefix=/opt/unbroken-test
DESTDIR="$tmp/stage" cmake --install "$build" --prefix "$prefix" >/dev/null
root="$tmp/stage$prefix"
for f in bin/unbroken include/unbroken/http/server.h lib/libub_http.a lib/libllhttp.a \
  lib/cmake/unbroken/unbrokenConfig.cmake lib/cmake/unbroken/unbrokenConfigVersion.cmake \
  lib/cmake/unbroken/unbrokenTargets.cmake share/man/man1/unbroken.1; do
  [ -e "$root/$f" ] || { echo "install_test: $f was not installed under $root" >&2; exit 1; }
done

# The outside build sees only the installed prefix: the source tree is not on any include path.
cmake -S "$src/tests/install/hello" -B "$tmp/hello" -DCMAKE_BUILD_TYPE=Release -DCMAKE_EXPORT_COMPILE_COMMANDS=ON \
  -DCMAKE_PREFIX_PATH="$root" -DHELLO_SOURCE="$src/examples/hello_server.cc" >"$tmp/configure.log" 2>&1 ||
  { cat "$tmp/configure.log" >&2; exit 1; }
cmake --build "$tmp/hello" >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log" >&2; exit 1; }
# compile_commands.json, whichever the generator: a missing file fails the test, not passes it.
[ -f "$tmp/hello/compile_commands.json" ] || { echo "install_test: no compile_commands.json" >&2; exit 1; }
if grep -q -- "-I$src/src" "$tmp/hello/compile_commands.json"; then
  echo "install_test: the outside build includes the source tree" >&2
  exit 1
fi

# hello_server prints "listening on http://HOST:PORT" on stderr once it listens: read that line
# (blocking, bounded) to learn the port port 0 gave it.
exec 3< <(exec "$tmp/hello/hello_server" 127.0.0.1:0 2>&1 >/dev/null)
server_pid=$!
read -r -t 20 line <&3 || { echo "install_test: hello_server did not say where it listens" >&2; exit 1; }
url=${line#listening on }
[ "$url" != "$line" ] || { echo "install_test: unexpected first line: $line" >&2; exit 1; }

body=$(curl -sS --max-time 10 "$url/hello")
[ "$body" = "hello, world" ] || { echo "install_test: GET /hello said: $body" >&2; exit 1; }
sum=$(curl -sS --max-time 10 "$url/slow-sum/10")
[ "$sum" = "45" ] || { echo "install_test: GET /slow-sum/10 said: $sum" >&2; exit 1; }
echo "install_test: hello_server built against $root answered on $url"
