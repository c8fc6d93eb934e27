# Shared by stack/wallet-stack and scripts/*: environment of the local stack.
# shellcheck shell=bash

log() { printf '[wallet-stack] %s\n' "$*" >&2; }
fail() { printf '[wallet-stack] ERROR: %s\n' "$*" >&2; exit 1; }

# Export KEY=VALUE lines of a file, except keys already set in the environment (the environment wins).
_export_file() {
  local line key
  while IFS= read -r line || [[ -n "$line" ]]; do
    [[ "$line" =~ ^[[:space:]]*(#|$) ]] && continue
    key="${line%%=*}"
    if [[ -z "${!key+x}" ]]; then export "$key=${line#*=}"; fi
  done <"$1"
}

load_env() {
  : "${ROOT:?}"
  export WL_STACK_DIR="${WL_STACK_DIR:-$ROOT/.stack}"
  export WL_CACHE_DIR="${WL_CACHE_DIR:-$HOME/.cache/wallet-lake}"
  export DAGSTER_HOME="${DAGSTER_HOME:-$ROOT/.dagster_home}"
  mkdir -p "$WL_STACK_DIR" "$WL_CACHE_DIR"
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
  printf 'export WL_SPARK_WORKER_SOCKET=%q\n' "$WL_SPARK_WORKER_SOCKET"
  [[ -z "${KAFKA_HOME:-}" ]] || printf 'export WL_KAFKA_HOME=%q\n' "$KAFKA_HOME"  # the Kafka jars (bench: ProducerPerformance)
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
