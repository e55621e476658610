#!/usr/bin/env bash
# The Debian package, end to end: builds it with cargo deb, installs it with
# dpkg, runs the herald service, checks /healthz, /readyz and that the store
# lands in /var/lib/herald, then stops it, purges the package and removes
# what the package deliberately keeps (the data and the herald user), so the
# machine is left as it was. Needs root. When PID 1 is systemd the service
# runs under systemctl; otherwise (a container) the script runs the unit's
# own ExecStart as its User= with its Environment=, EnvironmentFile=,
# WorkingDirectory= and LimitNOFILE=, says so, and the unit's sandboxing
# directives are then checked by systemd-analyze only, not applied.
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir="${CARGO_TARGET_DIR:-target}"
case "$target_dir" in /*) ;; *) target_dir="$PWD/$target_dir" ;; esac
export CARGO_TARGET_DIR="$target_dir"

say() { echo "deb-test: $*"; }
fail() { echo "deb-test: FAIL: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "run as root (it installs and removes a package)"
# Never touch a real installation: its store holds clinical notifications.
if dpkg-query -W -f='${Status}' herald 2>/dev/null | grep -q 'ok installed'; then
  fail "the herald package is installed on this machine; not touching it"
fi
for path in /etc/herald /var/lib/herald; do
  [ ! -e "$path" ] || fail "$path exists already; not touching it"
done
user_existed=0
getent passwd herald >/dev/null && user_existed=1

if ! command -v cargo-deb >/dev/null; then
  say "installing cargo-deb"
  cargo install cargo-deb --locked
fi

server_pid=""
service_started=0
cleanup() {
  set +e
  if [ "$service_started" = 1 ]; then systemctl stop herald; fi
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid"
    wait "$server_pid"
  fi
  dpkg --purge herald >/dev/null 2>&1
  rm -rf /var/lib/herald /etc/herald
  if [ "$user_existed" = 0 ] && getent passwd herald >/dev/null; then userdel herald; fi
  if [ "$user_existed" = 0 ] && getent group herald >/dev/null; then groupdel herald; fi
}
trap cleanup EXIT

say "cargo deb (release build; quick when it is cached)"
deb=$(cargo deb -p herald --quiet | tail -n1)
[ -f "$deb" ] || fail "cargo deb printed no package file ($deb)"
say "built $deb ($(du -h "$deb" | cut -f1))"

contents=$(dpkg-deb --contents "$deb")
for f in ./usr/bin/herald ./etc/herald/herald.toml ./etc/herald/herald.env \
  ./usr/share/doc/herald/operations.md; do
  grep -q " $f\$" <<<"$contents" || fail "the package lacks $f"
done
unit_in_deb=$(grep -oE ' \./(usr/)?lib/systemd/system/herald\.service$' <<<"$contents" | sed 's@^ \./@/@' || true)
[ -n "$unit_in_deb" ] || fail "the package lacks the systemd unit"
conffiles=$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)
for f in /etc/herald/herald.toml /etc/herald/herald.env; do
  grep -qx "$f" <<<"$conffiles" || fail "$f is not a conffile"
done

say "dpkg -i"
dpkg -i "$deb" >/dev/null
unit="$unit_in_deb"
[ -f "$unit" ] || fail "no unit at $unit after install"
getent passwd herald >/dev/null || fail "postinst made no herald user"
[ "$(stat -c '%U:%G %a' /var/lib/herald)" = "herald:herald 750" ] \
  || fail "/var/lib/herald is $(stat -c '%U:%G %a' /var/lib/herald), not herald:herald 750"
[ "$(stat -c '%U:%G %a' /etc/herald/herald.env)" = "root:herald 640" ] \
  || fail "herald.env is $(stat -c '%U:%G %a' /etc/herald/herald.env), not root:herald 640"
if command -v systemd-analyze >/dev/null; then
  # Checks every directive's name and value (the hardening ones included)
  # against this systemd, without a running systemd.
  systemd-analyze verify "$unit" || fail "systemd-analyze verify $unit"
  say "systemd-analyze verify: ok"
fi
/usr/bin/herald --version >/dev/null || fail "/usr/bin/herald does not run"

# An operator's change to the secrets file: a free port, not 8001 which
# other tests use. No JWT_SECRET or API key: development credentials.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
echo "HERALD_PORT=$port" >>/etc/herald/herald.env

# One directive of the installed unit (its first value when repeated).
unit_value() { sed -n "s/^$1=//p" "$unit" | head -n1; }

if [ "$(cat /proc/1/comm)" = systemd ] && [ -d /run/systemd/system ]; then
  say "PID 1 is systemd: systemctl start herald"
  systemctl daemon-reload
  service_started=1
  systemctl start herald
else
  say "PID 1 is $(cat /proc/1/comm), not systemd: running the unit's ExecStart as User=$(unit_value User)" \
    "the way systemd would (environment, working directory, LimitNOFILE; sandboxing not applied)"
  env_args=()
  while read -r assignment; do env_args+=("$assignment"); done < <(unit_value Environment | tr ' ' '\n')
  env_file=$(unit_value EnvironmentFile)
  while read -r line; do env_args+=("$line"); done < <(grep -E '^[A-Za-z_][A-Za-z0-9_]*=' "${env_file#-}")
  read -r -a exec_start <<<"$(unit_value ExecStart)"
  log=$(mktemp)
  (
    cd "$(unit_value WorkingDirectory)"
    nofile=$(unit_value LimitNOFILE)
    if ! ulimit -n "$nofile" 2>/dev/null; then
      echo "deb-test: LimitNOFILE=$nofile is above this machine's hard limit; using its $(ulimit -Hn)"
      ulimit -n "$(ulimit -Hn)"
    fi
    umask "$(unit_value UMask)"
    exec setpriv --reuid="$(unit_value User)" --regid="$(unit_value Group)" --init-groups --no-new-privs \
      env -i PATH=/usr/bin:/bin "${env_args[@]}" "${exec_start[@]}"
  ) >"$log" 2>&1 &
  server_pid=$!
fi

base="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
  curl -fsS "$base/healthz" >/dev/null 2>&1 && break
  [ -z "$server_pid" ] || kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
server_log() {
  if [ "$service_started" = 1 ]; then journalctl -u herald --no-pager | tail -n 20; else tail -n 20 "$log"; fi
}
curl -fsS "$base/healthz" | grep -q '"ok"' || fail "/healthz did not answer on port $port: $(server_log)"
ready=$(curl -fsS "$base/readyz") || fail "/readyz is not 200"
grep -q '"store":"ok"' <<<"$ready" || fail "/readyz: $ready"
say "/healthz and /readyz: ok on port $port"

# The store and the generated development key are where the unit says, and
# belong to the service's user; a notification is accepted through them.
for f in herald.db dev-api-key; do
  [ "$(stat -c %U "/var/lib/herald/$f" 2>/dev/null)" = herald ] || fail "/var/lib/herald/$f missing or not herald's"
done
status=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$base/api/v1/users/deb-test/notifications" \
  -H "Authorization: Bearer $(cat /var/lib/herald/dev-api-key)" -H 'Content-Type: application/json' \
  -d '{"type":"test","severity":"info","title":"package test"}')
[ "$status" = 202 ] || fail "POST notification answered $status"
say "store in /var/lib/herald (herald.db, dev-api-key owned by herald); a notification accepted"

if [ "$service_started" = 1 ]; then
  systemctl stop herald
  service_started=0
  journalctl -u herald --no-pager | grep -q stopped || fail "the journal has no 'stopped' line"
else
  kill -TERM "$server_pid"
  wait "$server_pid" || fail "herald exited with $? on SIGTERM; log: $(cat "$log")"
  server_pid=""
  grep -q stopped "$log" || fail "no 'stopped' line in the log"
  rm -f "$log"
fi
say "stopped cleanly on SIGTERM"

dpkg --purge herald >/dev/null
[ ! -e /usr/bin/herald ] || fail "/usr/bin/herald left after purge"
[ ! -e /etc/herald ] || fail "/etc/herald left after purge"
[ -f /var/lib/herald/herald.db ] || fail "purge deleted the store; it must keep it"
say "purged: binary and configuration gone, /var/lib/herald kept as documented (now removed by this test)"
say "ok"
