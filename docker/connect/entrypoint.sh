#!/usr/bin/env bash
# Renders the Kafka Connect worker config and starts a distributed worker in the foreground.
#
# connect/worker.properties is a template: ${NAME} placeholders are filled from the environment,
# as stack/wallet-stack does with envsubst (envsubst is not in this image, so bash does it here).
# Differences from envsubst, on purpose: comment lines are copied untouched, and a placeholder
# whose variable is unset stops the container instead of silently becoming empty.
# ${provider:key} references (e.g. ${env:WL_PG_SINK_PASSWORD}) are not placeholders: they stay for
# the worker's config providers to resolve.
set -euo pipefail

template="${CONNECT_WORKER_TEMPLATE:?}"
rendered="${CONNECT_WORKER_CONFIG:-/tmp/connect-worker.properties}"

[[ -r "$template" ]] || { echo "connect-entrypoint: worker config template $template is missing" >&2; exit 1; }

placeholder='\$\{([A-Za-z_][A-Za-z0-9_]*)\}'
: >"$rendered"
while IFS= read -r line || [[ -n "$line" ]]; do
  if [[ ! "$line" =~ ^[[:space:]]*[#!] ]]; then
    out=""
    while [[ "$line" =~ $placeholder ]]; do
      match="${BASH_REMATCH[0]}" name="${BASH_REMATCH[1]}"
      if [[ -z "${!name+x}" ]]; then
        echo "connect-entrypoint: $template uses \${$name}, which is not set in the environment" >&2
        exit 1
      fi
      out+="${line%%"$match"*}${!name}"
      line="${line#*"$match"}"
    done
    line="$out$line"
  fi
  printf '%s\n' "$line" >>"$rendered"
done <"$template"

echo "connect-entrypoint: rendered $template -> $rendered" >&2
exec /opt/kafka/bin/connect-distributed.sh "$rendered"
