#!/usr/bin/env bash
# The Debian package on a real machine: lintian, dpkg -i, the unbroken user serving a page with the
# packaged config (on port 0), logrotate's SIGHUP, then dpkg -r (only the conffiles, the data and
# the logs stay) and dpkg -P (nothing stays). It installs into this machine, so it runs as root, from
# `make test-deb`, never from ctest.
#   tests/install/deb_test.sh BUILD_DIR      (after `make deb`)
set -euo pipefail
build=$(realpath "$1")
say() { echo "deb_test: $*"; }
die() { echo "deb_test: $*" >&2; exit 1; }

if [ "$(id -u)" -ne 0 ]; then
  say "skipped: dpkg -i needs root (run it as root on a machine you may install into)"
  exit 0
fi
deb=$(ls -t "$build"/unbroken_*.deb 2>/dev/null | head -1)
[ -n "$deb" ] || die "no package in $build: run make deb first"
# Any trace of the package (installed, or removed with its config and data kept) or of its data:
# the test ends with a purge, which would take an operator's site and sessions with it.
status=$(dpkg-query -W -f='${db:Status-Status}' unbroken 2>/dev/null || echo not-installed)
if [ "$status" != not-installed ] || [ -e /var/lib/unbroken ] || [ -e /etc/unbroken ]; then
  die "unbroken ($status) or its /etc/unbroken or /var/lib/unbroken is on this machine, and the test would purge it; dpkg -P unbroken first"
fi

tmp=$(mktemp -d)
user_existed=no
getent passwd unbroken >/dev/null && user_existed=yes
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill -KILL "$server_pid" 2>/dev/null || true
  dpkg-query -W unbroken >/dev/null 2>&1 && dpkg -P unbroken >/dev/null 2>&1 || true
  # The package keeps its user on purge (Debian's practice); the test removes the one it made.
  if [ "$user_existed" = no ] && getent passwd unbroken >/dev/null; then
    deluser --quiet --system unbroken >/dev/null 2>&1 || true
    getent group unbroken >/dev/null && delgroup --quiet --system unbroken >/dev/null 2>&1 || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

say "package $deb"
if command -v lintian >/dev/null; then
  # Warnings are printed, not fatal (a package outside Debian's archive closes no ITP bug, ...);
  # an error fails the test.
  lintian --pedantic --display-info "$deb" >"$tmp/lintian" 2>&1 || true
  grep -v '^running with root privileges' "$tmp/lintian" | sed 's/^/deb_test: lintian: /' || true
  if grep -q '^E:' "$tmp/lintian"; then die "lintian reports errors"; fi
else
  say "lintian is not installed (scripts/install-deps installs it); not checked"
fi

dpkg -i "$deb" >"$tmp/dpkg-i" 2>&1 || { cat "$tmp/dpkg-i" >&2; die "dpkg -i failed"; }
dpkg-query -L unbroken >"$tmp/files"
conffiles=$(dpkg-query -W -f='${Conffiles}\n' unbroken | awk 'NF { print $1 }')
say "installed $(wc -l <"$tmp/files") paths; conffiles: $(echo $conffiles)"

uid=$(id -u unbroken) || die "no unbroken user"
[ "$uid" -lt 1000 ] || die "unbroken is not a system user (uid $uid)"
[ "$(stat -c %U "/var/lib/unbroken")" = unbroken ] || die "/var/lib/unbroken is not the unbroken user's"
[ -f /var/lib/unbroken/www/index.html ] || die "the site was not seeded"
[ -f /etc/unbroken/unbroken.toml ] || die "no /etc/unbroken/unbroken.toml"
[ -f /usr/share/man/man1/unbroken.1.gz ] || die "no man page"
if command -v man >/dev/null; then
  [ "$(man -w unbroken)" = /usr/share/man/man1/unbroken.1.gz ] || die "man -w unbroken: $(man -w unbroken)"
fi
if command -v systemd-analyze >/dev/null; then
  systemd-analyze verify /lib/systemd/system/unbroken.service || die "systemd-analyze verify: the unit is wrong"
fi
if command -v logrotate >/dev/null; then
  logrotate --debug /etc/logrotate.d/unbroken >"$tmp/logrotate" 2>&1 ||
    { cat "$tmp/logrotate" >&2; die "logrotate rejects /etc/logrotate.d/unbroken"; }
fi

# Installed again (what an upgrade runs): postinst is idempotent and the site is the operator's now.
echo "<!-- the operator's edit -->" >>/var/lib/unbroken/www/index.html
dpkg -i "$deb" >"$tmp/dpkg-i2" 2>&1 || { cat "$tmp/dpkg-i2" >&2; die "dpkg -i over an installed package failed"; }
[ "$(id -u unbroken)" = "$uid" ] || die "the second install changed the unbroken user"
grep -q "the operator's edit" /var/lib/unbroken/www/index.html || die "the second install overwrote the site"

/usr/bin/unbroken --version >"$tmp/version" 2>&1 || die "unbroken --version failed: $(cat "$tmp/version")"
say "unbroken --version: $(head -1 "$tmp/version")"
version=$(dpkg-query -W -f='${Version}' unbroken)
grep -qF "${version%-*}" "$tmp/version" || die "--version does not name the package's version ${version%-*}"

# The packaged config as the service runs it, as the unbroken user (setpriv execs, so the pid is
# the server's and signals reach it), on port 0 and without the admin port (both fixed in the file).
start_server() {
  exec 3< <(exec setpriv --reuid=unbroken --regid=unbroken --init-groups --reset-env \
    /usr/bin/unbroken serve --config /etc/unbroken/unbroken.toml --listen 127.0.0.1:0 --admin off 2>&1)
  server_pid=$!
  url=""
  while [ -z "$url" ] && IFS= read -r -t 20 line <&3; do
    echo "$line" >>"$tmp/serve.log"
    case "$line" in *"listening on http://"*) url=${line#*listening on }; url=${url%% *} ;; esac
  done
  [ -n "$url" ] || { cat "$tmp/serve.log" >&2; die "serve did not start"; }
}
stop_server() {
  kill -TERM "$server_pid"
  # The pipe ends when the server has exited: read it to its end, bounded. (A while loop's status
  # is its body's, so read's own is kept: above 128 is its timeout.)
  local status=0
  while true; do
    IFS= read -r -t 30 line <&3 || { status=$?; break; }
    echo "$line" >>"$tmp/serve.log"
  done
  [ "$status" -le 128 ] || die "serve did not exit 30 s after SIGTERM"
  ! kill -0 "$server_pid" 2>/dev/null || die "serve still runs after its output ended"
  server_pid=""
}
# Reads the server's output until a line containing $1 appears, within 10 s.
await_line() {
  while IFS= read -r -t 10 line <&3; do
    echo "$line" >>"$tmp/serve.log"
    case "$line" in *"$1"*) return 0 ;; esac
  done
  die "serve never said: $1"
}
start_server
owner=$(stat -c %U "/proc/$server_pid")  # a process's /proc directory belongs to its user
[ "$owner" = unbroken ] || die "serve runs as $owner"
say "serving $url as $owner"
curl -sS --max-time 10 "$url/" >"$tmp/page" || die "GET / failed"
grep -q "unbroken is serving" "$tmp/page" || die "GET / did not return the seeded page: $(head -3 "$tmp/page")"
[ "$(stat -c %U /var/lib/unbroken/sessions.db)" = unbroken ] || die "no sessions.db of the unbroken user"

# What logrotate does: move the log, SIGHUP; the next request lands in a new access.log.
mv /var/log/unbroken/access.log /var/log/unbroken/access.log.1
kill -HUP "$server_pid"
await_line "SIGHUP: reopening the access log"  # the reopen is done: the next record goes to the new file
curl -sS --max-time 10 -o /dev/null "$url/after-rotate" || die "GET after SIGHUP failed"
stop_server
grep -q '/after-rotate' /var/log/unbroken/access.log || die "after SIGHUP the request is not in a new access.log"
! grep -q '/after-rotate' /var/log/unbroken/access.log.1 || die "after SIGHUP the request went to the moved file"
records=$(cat /var/log/unbroken/access.log.1 /var/log/unbroken/access.log | wc -l)
[ "$records" -eq 2 ] || die "two requests, $records log lines"
say "logged, rotated and reopened: $(wc -l </var/log/unbroken/access.log.1) + $(wc -l </var/log/unbroken/access.log) lines"

dpkg -r unbroken >"$tmp/dpkg-r" 2>&1 || { cat "$tmp/dpkg-r" >&2; die "dpkg -r failed"; }
left=0
while IFS= read -r path; do
  [ -e "$path" ] && [ ! -d "$path" ] || continue
  if ! grep -qxF "$path" <<<"$conffiles"; then
    echo "deb_test: left after dpkg -r: $path" >&2
    left=1
  fi
done <"$tmp/files"
[ "$left" -eq 0 ] || die "dpkg -r left files of the package behind"
for f in $conffiles; do [ -f "$f" ] || die "dpkg -r removed the conffile $f"; done
[ -f /var/lib/unbroken/sessions.db ] || die "dpkg -r removed the data in /var/lib/unbroken"
[ ! -e /usr/share/unbroken ] || die "dpkg -r left /usr/share/unbroken"
say "dpkg -r: only $(echo $conffiles), /var/lib/unbroken and the logs in /var/log/unbroken remain"

dpkg -P unbroken >"$tmp/dpkg-p" 2>&1 || { cat "$tmp/dpkg-p" >&2; die "dpkg -P failed"; }
for path in $conffiles /etc/unbroken /var/lib/unbroken /var/log/unbroken; do
  [ ! -e "$path" ] || die "dpkg -P left $path"
done
say "dpkg -P: nothing of the package remains"
