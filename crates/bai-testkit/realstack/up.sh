#!/usr/bin/env bash
# Brings up the real Backend.AI stack for bai's real-stack tests, everything on 127.0.0.1 with
# free ports: PostgreSQL, etcd, Redis, backend.ai-manager, backend.ai-agent (dummy backend,
# patched by sitecustomize.py: each session gets a local sshd of its own) and
# backend.ai-webserver. Usage:
#
#   BAI_REALSTACK_VENV=.venv-realstack up.sh DIR [ACCOUNT]
#
# DIR must be empty or absent. Every server is started with setsid, so its pid is its process
# group: DIR/pids/NAME.pid holds "PID STARTTIME" (also for each session's sshd, which the
# patched agent starts). down.sh, or bai-testkit's realstack module, stops those groups and
# everything below them (also for stacks left behind by killed test runs). Writes
# DIR/stack.env (ports, credentials, paths) last, when the stack is ready; logs are in
# DIR/logs/. ACCOUNT is the OS account sessions log in as (default: the current user; `work`
# when run as root).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mkdir -p "$1" && cd "$1" && pwd)
venv=$(cd "${BAI_REALSTACK_VENV:?set BAI_REALSTACK_VENV to the venv of scripts/deps.sh}" && pwd)
if [ "$(id -u)" -eq 0 ]; then account=${2:-work}; else account=${2:-$(id -un)}; fi
bai=$venv/bin/backend.ai
py=$venv/bin/python
SECONDS=0
log() { echo "realstack: ${SECONDS}s $*" >&2; }
die() { echo "realstack: $*" >&2; exit 1; }

# The patched agent keeps its sessions' sshd pidfiles and logs here.
export BAI_REALSTACK_DIR=$dir
mkdir -p "$dir"/{pids,logs,keys,pg,etcd,redis,manager/ipc,agent,webserver/static,sshd}
chmod 0711 "$dir" "$dir/sshd"

# Free ports, all different (bound together, then released).
read -r PG_PORT ETCD_PORT ETCD_PEER_PORT REDIS_PORT MANAGER_PORT MANAGER_INTERNAL_PORT \
  MANAGER_MON1_PORT MANAGER_MON2_PORT MANAGER_METRICS_PORT AGENT_RPC_PORT AGENT_SERVICE_PORT \
  AGENT_SOCK_PORT AGENT_METADATA_PORT AGENT_MON_PORT WEBSERVER_PORT < <("$py" -c '
import socket
ss = [socket.socket() for _ in range(15)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')
# Below the ephemeral port range (32768 and up).
CONTAINER_PORT_LO=$((20000 + RANDOM % 12000)); CONTAINER_PORT_HI=$((CONTAINER_PORT_LO + 99))
EMAIL=tester@bai.test
PASSWORD=$("$py" -c 'import secrets; print(secrets.token_urlsafe(12))')
ACCESS_KEY=AKIABAI$("$py" -c 'import secrets; print(secrets.token_hex(6).upper())')
SECRET_KEY=$("$py" -c 'import secrets; print(secrets.token_urlsafe(30))')
DIR=$dir

# Renders TEMPLATE into FILE, replacing every @NAME@ by the value of $NAME.
render() {
  local text; text=$(<"$1")
  for name in DIR PG_PORT ETCD_PORT REDIS_PORT MANAGER_PORT MANAGER_INTERNAL_PORT \
    MANAGER_MON1_PORT MANAGER_MON2_PORT MANAGER_METRICS_PORT AGENT_RPC_PORT AGENT_SERVICE_PORT \
    AGENT_SOCK_PORT AGENT_METADATA_PORT AGENT_MON_PORT WEBSERVER_PORT CONTAINER_PORT_LO \
    CONTAINER_PORT_HI EMAIL PASSWORD ACCESS_KEY SECRET_KEY; do
    text=${text//@$name@/${!name}}
  done
  printf '%s\n' "$text" >"$2"
}

# start NAME CMD...: a new session (pid = process group), output to logs/NAME.log.
start() {
  local name=$1; shift
  setsid "$@" >"$dir/logs/$name.log" 2>&1 </dev/null &
  # "PID STARTTIME": the start time keeps a reused pid from being taken for ours.
  local st; st=$(sed 's/.*) //' "/proc/$!/stat" | cut -d' ' -f20)
  echo "$! $st" >"$dir/pids/$name.pid"
}
alive() { kill -0 "$(cut -d' ' -f1 "$dir/pids/$1.pid")" 2>/dev/null; }
# wait_for NAME SECONDS CHECK...: until CHECK succeeds, failing early when NAME died.
wait_for() {
  local name=$1 secs=$2; shift 2
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if ! alive "$name"; then tail -n 40 "$dir/logs/$name.log" >&2; die "$name exited during start-up"; fi
    if ((SECONDS > end)); then tail -n 40 "$dir/logs/$name.log" >&2; die "$name not ready in ${secs}s"; fi
    sleep 0.2
  done
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# as_db CMD...: PostgreSQL refuses to run as root; as root it runs as the `postgres` account.
as_db=(); [ "$(id -u)" -ne 0 ] || as_db=(setpriv --reuid postgres --regid postgres --init-groups)

# --- what each session's own sshd (started by the patched agent, sitecustomize.py) uses ---
ssh-keygen -q -t ed25519 -N '' -C bai-realstack-host -f "$dir/sshd/host_ed25519"
ssh-keygen -q -t ed25519 -N '' -C bai-realstack-session -f "$dir/sshd/id_container"
install -m 0644 "$dir/sshd/id_container.pub" "$dir/sshd/authorized_keys"
cat >"$dir/sshd/sshd_config" <<CONF
ListenAddress 127.0.0.1
HostKey $dir/sshd/host_ed25519
PidFile none
AuthorizedKeysFile $dir/sshd/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
AllowUsers $account
Subsystem sftp internal-sftp
CONF
[ "$(id -u)" -ne 0 ] || mkdir -p /run/sshd
/usr/sbin/sshd -t -f "$dir/sshd/sshd_config" -p 22 || die "sshd refuses its configuration"

# --- PostgreSQL, etcd, Redis ---
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$pgbin/postgres" ] || die "PostgreSQL is not installed (scripts/deps.sh installs it)"
[ "$(id -u)" -ne 0 ] || chown postgres: "$dir/pg"
"${as_db[@]}" "$pgbin/initdb" -D "$dir/pg/data" -U postgres --auth=trust -E UTF8 --no-instructions >"$dir/logs/initdb.log" 2>&1 \
  || { cat "$dir/logs/initdb.log" >&2; die "initdb failed"; }
start postgres "${as_db[@]}" "$pgbin/postgres" -D "$dir/pg/data" -p "$PG_PORT" -c listen_addresses=127.0.0.1 \
  -c unix_socket_directories="$dir/pg" -c fsync=off -c synchronous_commit=off -c full_page_writes=off
start etcd etcd --name bai --data-dir "$dir/etcd/data" \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "bai=http://127.0.0.1:$ETCD_PEER_PORT"
start redis redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no --dir "$dir/redis"
wait_for postgres 60 "$pgbin/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"
"$pgbin/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres backend
wait_for etcd 60 port_open "$ETCD_PORT"
wait_for redis 60 port_open "$REDIS_PORT"
log "postgres, etcd and redis are up"

# --- the manager: configuration, etcd keys, schema, fixtures ---
export DOCKER_HOST=unix://$dir/no-docker.sock   # asserted to be set even in dummy mode; never used
render "$here/manager.toml.in" "$dir/manager/manager.toml"
render "$here/agent.toml.in" "$dir/agent/agent.toml"
render "$here/webserver.toml.in" "$dir/webserver/webserver.toml"
render "$here/fixture.json.in" "$dir/manager/fixture.json"
render "$here/alembic.ini.in" "$dir/manager/alembic.ini"
cp "$here/agent.dummy.toml" "$dir/agent/agent.dummy.toml"
mgr() {
  local log; log="$dir/logs/mgr-$(echo "$1-$2" | tr -c 'a-z0-9-' _).log"
  (cd "$dir/manager" && "$bai" mgr -f "$dir/manager/manager.toml" "$@") >>"$log" 2>&1 \
    || { tail -n 40 "$log" >&2; die "backend.ai mgr $* failed"; }
}
# In parallel with the schema (each CLI call is a Python start-up of seconds): the RPC keypairs
# (ZeroMQ CURVE, as `backend.ai mgr generate-rpc-keypair` makes them; it would print the secret
# keys) and the etcd keys.
printf '{"socket_timeout": 5.0, "socket_connect_timeout": 2.0, "reconnect_poll_timeout": 0.3}\n' >"$dir/manager/redis-helper.json"
printf '{"_types": {"group": "", "user": ""}, "default_host": "local:volume1", "proxies": {}, "exposed_volume_info": "percentage"}\n' >"$dir/manager/volumes.json"
"$py" -c 'import sys, zmq.auth
for name in ("manager", "agent"):
    zmq.auth.create_certificates(sys.argv[1], name)' "$dir/keys" || die "creating the RPC keypairs failed"
(
  mgr etcd put config/redis/addr "127.0.0.1:$REDIS_PORT"
  mgr etcd put-json config/redis/redis_helper_config "$dir/manager/redis-helper.json"
  mgr etcd put-json volumes "$dir/manager/volumes.json"
) &
etcd_keys=$!
mgr schema oneshot -f "$dir/manager/alembic.ini"
mgr fixture populate "$dir/manager/fixture.json"
wait $etcd_keys || die "putting the etcd keys failed"
log "schema and fixtures loaded"
(cd "$dir/manager" && start manager "$bai" mgr -f "$dir/manager/manager.toml" start-server)
wait_for manager 120 curl -fsS "http://127.0.0.1:$MANAGER_PORT/"
log "manager is up"

# --- the agent (dummy backend + bai's patches) and the webserver ---
(cd "$dir/agent" && PYTHONPATH=$here BAI_REALSTACK_PATCH_AGENT=1 \
  start agent "$bai" ag -f "$dir/agent/agent.toml" start-server)
(cd "$dir/webserver" && start webserver "$bai" web start-server -f "$dir/webserver/webserver.toml")
psql() { "$pgbin/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d backend -tAq "$@"; }
agent_alive() { [ "$(psql -c "select count(*) from agents where status = 'ALIVE'")" -ge 1 ]; }
wait_for agent 120 agent_alive
log "agent is alive"
wait_for webserver 120 curl -fsS -o /dev/null "http://127.0.0.1:$WEBSERVER_PORT/func/"
log "webserver is up"

# The user joins the default project through the API (the 26.9 RBAC tables are filled by it).
export BACKEND_ENDPOINT=http://127.0.0.1:$MANAGER_PORT BACKEND_ENDPOINT_TYPE=api \
  BACKEND_ACCESS_KEY=$ACCESS_KEY BACKEND_SECRET_KEY=$SECRET_KEY
"$bai" admin group add-users 5f0c6a2e-7a51-4c1e-9a3b-0b1a1c000002 5f0c6a2e-7a51-4c1e-9a3b-0b1a1c000004 \
  >>"$dir/logs/client.log" 2>&1 || { tail -n 20 "$dir/logs/client.log" >&2; die "adding the user to the project failed"; }

cat >"$dir/stack.env.tmp" <<ENV
MANAGER_URL=http://127.0.0.1:$MANAGER_PORT
WEBSERVER_URL=http://127.0.0.1:$WEBSERVER_PORT
EMAIL=$EMAIL
PASSWORD=$PASSWORD
ACCESS_KEY=$ACCESS_KEY
SECRET_KEY=$SECRET_KEY
IMAGE=cr.backend.ai/stable/python:3.13-ubuntu24.04
ACCOUNT=$account
KEY=$dir/sshd/id_container
PG_PORT=$PG_PORT
ENV
mv "$dir/stack.env.tmp" "$dir/stack.env"
log "ready"
