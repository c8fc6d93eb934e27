# The one helper of the stack scripts (stack/wallet-stack, scripts/*, .ci/run): the local stack's
# environment, and how a service is started, waited for, checked and stopped. Scripts source it
# after setting ROOT (the clone).
# shellcheck shell=bash

log() { printf '[wallet-stack] %s\n' "$*" >&2; }
fail() { printf '[wallet-stack] ERROR: %s\n' "$*" >&2; exit 1; }

# A <property> of stack/kafka/pom.xml: the Kafka and Debezium versions are declared there only.
pom_property() { sed -n "s:.*<$1>\(.*\)</$1>.*:\1:p" "$ROOT/stack/kafka/pom.xml" | head -1; }

# Where services keep data, logs and PID files (the environment may move it: WL_STACK_DIR).
stack_paths() {
  : "${ROOT:?}"
  export WL_STACK_DIR="${WL_STACK_DIR:-$ROOT/.stack}"
  LOGS="$WL_STACK_DIR/logs"
  PIDS="$WL_STACK_DIR/pids"
  mkdir -p "$LOGS" "$PIDS"
}

# Export KEY=VALUE lines of a file, except keys already set in the environment (the environment wins).
_export_file() {
  local line key
  while IFS= read -r line || [[ -n "$line" ]]; do
    [[ "$line" =~ ^[[:space:]]*(#|$) ]] && continue
    key="${line%%=*}"
    if [[ -z "${!key+x}" ]]; then export "$key=${line#*=}"; fi
  done <"$1"
}

# The JDK of the broker, the Connect worker and Kafka's tools, printed (nothing: the java on PATH):
# WL_KAFKA_JAVA_HOME when set and not empty, else the first Java 25 JDK in /usr/lib/jvm. Kafka 4.2
# recommends the newest LTS (Java 25) for performance; the sink's figures on 17 and 25 are in
# docs/benchmarks.md (session 16). Spark (the curation) stays on the PATH's java. No side effects:
# stack/java.py asks it when the environment does not say.
kafka_java_home() {
  if [[ -n "${WL_KAFKA_JAVA_HOME:-}" ]]; then printf '%s' "$WL_KAFKA_JAVA_HOME"; return; fi
  local java
  for java in /usr/lib/jvm/temurin-25-*/bin/java /usr/lib/jvm/java-25-*/bin/java; do
    if [[ -x "$java" ]]; then printf '%s' "${java%/bin/java}"; return; fi
  done
}

load_env() {
  stack_paths
  export WL_CACHE_DIR="${WL_CACHE_DIR:-$HOME/.cache/wallet-lake}"
  export DAGSTER_HOME="${DAGSTER_HOME:-$ROOT/.dagster_home}"
  mkdir -p "$WL_CACHE_DIR"
  # The broker's and Connect's jars: one folder per dependency set (the pom's digest), so a clone
  # with another pom never rebuilds the jars under a running stack of another clone.
  KAFKA_VERSION="$(pom_property kafka.version)"
  [[ -n "$KAFKA_VERSION" ]] || fail "no <kafka.version> in $ROOT/stack/kafka/pom.xml"
  KAFKA_HOME="$WL_CACHE_DIR/kafka-$KAFKA_VERSION-$(sha256sum "$ROOT/stack/kafka/pom.xml" | cut -c1-12)"
  # The broker's, the Connect worker's and Kafka's tools' JDK (kafka_java_home).
  WL_KAFKA_JAVA_HOME="$(kafka_java_home)"
  export WL_KAFKA_JAVA_HOME
  KAFKA_JAVA="${WL_KAFKA_JAVA_HOME:+$WL_KAFKA_JAVA_HOME/bin/}java"
  _export_file "$ROOT/stack/local.env"
  # Local secrets (database password, Kafka SCRAM users): generated once per clone, each when
  # missing, kept out of git, never printed.
  local secrets="$WL_STACK_DIR/secrets.env" key
  for key in WL_PG_PASSWORD WL_PG_PIPELINE_PASSWORD WL_PG_SINK_PASSWORD WL_PG_API_PASSWORD WL_PG_KEYS_PASSWORD \
             WL_DAGSTER_PG_PASSWORD WL_KAFKA_PRODUCER_PASSWORD WL_KAFKA_CONNECT_PASSWORD WL_KAFKA_TESTS_PASSWORD \
             WL_KAFKA_BENCH_PASSWORD WL_KAFKA_INTRUDER_PASSWORD WL_CONNECT_REST_PASSWORD; do
    if ! grep -q "^$key=" "$secrets" 2>/dev/null; then
      (umask 077; printf '%s=%s\n' "$key" "$(openssl rand -hex 24)" >>"$secrets")
    fi
  done
  # The pipeline's own Kafka login (WL_KAFKA_SASL_USERNAME=producer) is the producer principal's.
  if ! grep -q "^WL_KAFKA_SASL_PASSWORD=" "$secrets"; then
    (umask 077; grep "^WL_KAFKA_PRODUCER_PASSWORD=" "$secrets" | sed 's/^WL_KAFKA_PRODUCER_PASSWORD=/WL_KAFKA_SASL_PASSWORD=/' >>"$secrets")
  fi
  _export_file "$secrets"
  # TLS material of the stack (stack/tls.py): the CA every Kafka and Postgres client verifies the
  # server with. PGSSLROOTCERT: for libpq clients configured by file only (Dagster's instance
  # storage, dagster.yaml); it sets where the CA is, never whether TLS is verified (sslmode does).
  export WL_TLS_DIR="${WL_TLS_DIR:-$WL_STACK_DIR/tls}"
  export WL_KAFKA_SSL_CA_LOCATION="${WL_KAFKA_SSL_CA_LOCATION:-$WL_TLS_DIR/ca.pem}"
  export WL_PG_SSLROOTCERT="${WL_PG_SSLROOTCERT:-$WL_TLS_DIR/ca.pem}"
  export PGSSLROOTCERT="${PGSSLROOTCERT:-$WL_PG_SSLROOTCERT}"
  # Provisioning's cluster administrator reaches the local server over its Unix socket only.
  export WL_PG_ADMIN_HOST="${WL_PG_ADMIN_HOST:-$WL_STACK_DIR/postgres/run}"
  # The warm curation worker (stack/wallet-stack up) listens here; runs curate on it.
  export WL_SPARK_WORKER_SOCKET="${WL_SPARK_WORKER_SOCKET:-$WL_STACK_DIR/run/curation-worker.sock}"
  # The Dagster code server (stack/wallet-stack apps) listens here; workspace.yaml points the
  # webserver and the daemon at it.
  export WL_DAGSTER_CODE_SERVER_SOCKET="${WL_DAGSTER_CODE_SERVER_SOCKET:-$WL_STACK_DIR/run/dagster-code.sock}"
  # The reports API keeps local copies of lake files here (lake/file_cache.py).
  export WL_API_LAKE_CACHE_DIR="${WL_API_LAKE_CACHE_DIR:-$WL_STACK_DIR/lake-cache}"
  # Dagster reads dagster.yaml from DAGSTER_HOME: link the repo's file into the git-ignored home.
  mkdir -p "$DAGSTER_HOME"
  ln -sfn "$ROOT/dagster.yaml" "$DAGSTER_HOME/dagster.yaml"
}

# The exports a shell needs: the effective values (a variable set in the caller's environment
# wins over stack/local.env); secrets are read from the secrets file by reference, not printed,
# and likewise only where the caller has not set them.
print_env() {
  local line key
  while IFS= read -r line || [[ -n "$line" ]]; do
    [[ "$line" =~ ^[[:space:]]*(#|$) ]] && continue
    key="${line%%=*}"
    printf 'export %s=%q\n' "$key" "${!key}"
  done <"$ROOT/stack/local.env"
  printf 'export WL_STACK_DIR=%q WL_CACHE_DIR=%q DAGSTER_HOME=%q\n' "$WL_STACK_DIR" "$WL_CACHE_DIR" "$DAGSTER_HOME"
  printf 'export WL_TLS_DIR=%q WL_KAFKA_SSL_CA_LOCATION=%q\n' "$WL_TLS_DIR" "$WL_KAFKA_SSL_CA_LOCATION"
  printf 'export WL_PG_SSLROOTCERT=%q PGSSLROOTCERT=%q WL_PG_ADMIN_HOST=%q\n' "$WL_PG_SSLROOTCERT" "$PGSSLROOTCERT" "$WL_PG_ADMIN_HOST"
  printf 'export WL_SPARK_WORKER_SOCKET=%q WL_API_LAKE_CACHE_DIR=%q\n' "$WL_SPARK_WORKER_SOCKET" "$WL_API_LAKE_CACHE_DIR"
  printf 'export WL_DAGSTER_CODE_SERVER_SOCKET=%q\n' "$WL_DAGSTER_CODE_SERVER_SOCKET"
  [[ -z "${KAFKA_HOME:-}" ]] || printf 'export WL_KAFKA_HOME=%q\n' "$KAFKA_HOME"  # the Kafka jars (bench: ProducerPerformance)
  printf 'export WL_KAFKA_JAVA_HOME=%q\n' "${WL_KAFKA_JAVA_HOME:-}"  # as kafka_java_home chose it; empty: the java on PATH
  printf 'while IFS= read -r _l; do [[ -z "$_l" || "$_l" == \\#* ]] && continue; _k="${_l%%%%=*}"; [[ -n "${!_k+x}" ]] || export "$_l"; done < %q; unset _l _k\n' "$WL_STACK_DIR/secrets.env"
}

# The stack's ports (55000-59094 by default) sit inside Linux's ephemeral range (32768-60999):
# an outgoing connection may be given one of them as its source port, and a restarted broker then
# fails with "Address already in use" (seen after SIGKILL recoveries). Reserve them where we may
# (root, writable sysctl); elsewhere this is a no-op and the error names the port as before.
reserve_stack_ports() {
  local f=/proc/sys/net/ipv4/ip_local_reserved_ports ports=() hp current
  [[ -w "$f" ]] || return 0
  for hp in "$WL_PG_PORT" "${WL_S3_ENDPOINT_URL##*:}" "${WL_KAFKA_BOOTSTRAP##*:}" "${WL_KAFKA_CONTROLLER_PORT:-}" \
            "${WL_KAFKA_INTERNAL_PORT:-}" "${WL_CONNECT_URL##*:}" "${WL_API_PORT:-}" "${WL_DAGSTER_PORT:-}"; do
    hp="${hp%%/*}"
    [[ "$hp" =~ ^[0-9]+$ ]] && ports+=("$hp")
  done
  ((${#ports[@]})) || return 0
  current="$(cat "$f")"
  local IFS=,
  echo "${current:+$current,}${ports[*]}" >"$f" 2>/dev/null || true
}

# What scripts/run and scripts/test do first: the stack up (a no-op when it is healthy) and its
# environment in this shell, exactly as an operator's `eval "$(stack/wallet-stack env)"` gives it.
stack_up() {
  bash "$ROOT/stack/wallet-stack" up
  eval "$(bash "$ROOT/stack/wallet-stack" env)"
  stack_paths
}

# Stop everything this clone started (services and apps), newest first.
stack_down() { bash "$ROOT/stack/wallet-stack" down; }

# Install Debian packages when a command is missing (root only; output to $LOGS/apt-<what>.log).
apt_install() { # what [apt-get option...] package...
  local what="$1" arg pkgs=(); shift
  for arg; do [[ "$arg" == -* ]] || pkgs+=("$arg"); done
  log "$what: installing ${pkgs[*]} from Debian's packages"
  [[ $(id -u) -eq 0 ]] || fail "$what: missing, and installing it needs root (apt-get install ${pkgs[*]})"
  apt-get update -qq >"$LOGS/apt-$what.log" 2>&1
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >>"$LOGS/apt-$what.log" 2>&1 \
    || fail "$what: apt-get install ${pkgs[*]} failed; see $LOGS/apt-$what.log"
}

# ---------------------------------------------------------------- start, wait, check, stop
# A service is a process group led by the PID in $PIDS/<name>.pid, logging to $LOGS/<name>.log.

pid_alive() { # name -> 0 when the PID file names a live process
  local f="$PIDS/$1.pid"
  [[ -f "$f" ]] && kill -0 "$(cat "$f")" 2>/dev/null
}

port_of() { echo "${1##*:}"; }

port_busy() { ss -ltnH "sport = :$1" | grep -q .; }

require_port_free() { # service port
  if port_busy "$2"; then
    fail "$1: port $2 is already taken by another process: $(ss -ltnpH "sport = :$2" | awk '{print $NF}' | head -1). Stop it, or set the port variable (see stack/local.env), then rerun: stack/wallet-stack up"
  fi
}

start_bg() { # name command... : start detached in its own process group, record PID
  local name="$1"; shift
  # SIGINT, SIGQUIT and SIGTERM at their defaults, whoever runs this script: its background jobs
  # start with SIGINT and SIGQUIT ignored, and Dagster's code server maps SIGTERM to SIGINT's
  # handler, so it ignored SIGTERM too (every stop waited 30 s, then killed it, leaving its gRPC
  # socket and scratch folder). A caller that ignores SIGTERM (wallet_lake_tests/stack_command.py
  # says when) would pass that on as well.
  setsid nohup env --default-signal=INT,QUIT,TERM "$@" >>"$LOGS/$name.log" 2>&1 < /dev/null &
  echo $! >"$PIDS/$name.pid"
}

wait_for() { # service seconds command... : poll once a second until the command passes
  local name="$1" secs="$2"; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      fail "$name did not become healthy within ${secs}s. Log: $LOGS/$name.log (last lines below). Retry: ${RETRY_HINT:-stack/wallet-stack up}
$(tail -n 25 "$LOGS/$name.log" 2>/dev/null)"
    fi
    sleep 1
  done
}

http_ok() { curl -fs -o /dev/null --max-time 5 "$1"; }

status_line() { # name healthy-command endpoint
  local state=DOWN
  "$2" >/dev/null 2>&1 && state=up
  printf '%-9s %-5s %-28s log %s\n' "$1" "$state" "$3" "$LOGS/$1.log"
}

stop_pid() { # name
  local f="$PIDS/$1.pid"
  [[ -f "$f" ]] || return 0
  local pid; pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    # Services start as process-group leaders (start_bg): stop the whole group, so that what they
    # spawned (the Dagster daemon's code server, run workers and their Spark JVMs) goes with them.
    local target="$pid"
    [[ "$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ')" == "$pid" ]] && target="-$pid"
    log "$1: stopping pid $pid"
    kill -TERM -- "$target" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -0 "$pid" 2>/dev/null && log "$1: still alive, killing"
    kill -KILL -- "$target" 2>/dev/null || true
  fi
  rm -f "$f"
}
