#!/usr/bin/env bash
# Starts model-service and gateway (which serves web/), waits until both are healthy,
# prints the page URL and a demo API key, and stops both on Ctrl-C.
# MODELS=a,b (model directories under models/): one model-service per model on ports 6006, 6007...,
# each the only replica of its model's pool in the gateway (GATEWAY_UPSTREAMS model=url entries).
set -euo pipefail
cd "$(dirname "$0")/.."

MODEL_PORT=${MODEL_SERVICE_PORT:-6006}
GATEWAY_PORT=${SERVER_PORT:-8888}
STATE=.run
mkdir -p "$STATE" data

# Secrets for a local run: made once, kept in .run/ (gitignored), reused on the next run.
secret() { [ -s "$STATE/$1" ] || python3 -c "import secrets;print('$2'+secrets.token_urlsafe(24))" >"$STATE/$1"; cat "$STATE/$1"; }
UPSTREAM_KEY=$(secret upstream-key "ms-")
ADMIN_TOKEN=${GATEWAY_ADMIN_TOKEN:-$(secret admin-token "adm-")}
DEMO_KEY=${GATEWAY_BOOTSTRAP_KEY:-$(secret demo-key "sk-relay-")}

pids=()
stop() {
  trap - INT TERM EXIT
  echo; echo "stopping..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "stopped"
}
trap stop INT TERM EXIT

services=()  # "name port" of each model-service started
if [ -n "${MODELS:-}" ]; then
  IFS=, read -r -a models <<<"$MODELS"
  upstreams=()
  port=$MODEL_PORT
  for model in "${models[@]}"; do
    [ -f "models/$model/config.json" ] || { echo "models/$model is missing: make model MODEL=$model" >&2; exit 1; }
    MODEL_SERVICE_PORT=$port MODEL_SERVICE_API_KEY=$UPSTREAM_KEY MODEL_SERVICE_MODEL_PATH=models/$model \
    MODEL_SERVICE_MODEL_NAME=$model \
      .venv/bin/python -m model_service > >(sed -u "s/^/[$model] /") 2>&1 &
    pids+=($!)
    services+=("$model $port")
    upstreams+=("$model=http://127.0.0.1:$port")
    port=$((port + 1))
  done
  DEFAULT_UPSTREAMS=$(IFS=,; echo "${upstreams[*]}")
else
  MODEL_SERVICE_PORT=$MODEL_PORT MODEL_SERVICE_API_KEY=$UPSTREAM_KEY \
    .venv/bin/python -m model_service > >(sed -u 's/^/[model-service] /') 2>&1 &
  pids+=($!)
  services+=("model-service $MODEL_PORT")
  DEFAULT_UPSTREAMS=http://127.0.0.1:$MODEL_PORT
fi

GATEWAY_UPSTREAMS=${GATEWAY_UPSTREAMS:-$DEFAULT_UPSTREAMS} \
GATEWAY_UPSTREAM_API_KEY=$UPSTREAM_KEY GATEWAY_ADMIN_TOKEN=$ADMIN_TOKEN GATEWAY_BOOTSTRAP_KEY=$DEMO_KEY \
GATEWAY_DB_URL=${GATEWAY_DB_URL:-jdbc:h2:file:$PWD/data/gateway} GATEWAY_WEB_DIR=${GATEWAY_WEB_DIR:-$PWD/web} \
SERVER_PORT=$GATEWAY_PORT \
  java ${JAVA_OPTS:--Xmx512m} -jar java-gateway/target/java-gateway.jar > >(sed -u 's/^/[gateway] /') 2>&1 &
pids+=($!)

wait_healthy() {  # name url
  for _ in $(seq 1 600); do
    curl -fsS -o /dev/null "$2" 2>/dev/null && { echo "$1 is healthy"; return 0; }
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null || { echo "$1 exited during start-up" >&2; exit 1; }; done
    sleep 0.5
  done
  echo "$1 did not become healthy" >&2; exit 1
}
for service in "${services[@]}"; do
  read -r name port <<<"$service"
  wait_healthy "$name" "http://127.0.0.1:$port/health"
done
wait_healthy gateway "http://127.0.0.1:$GATEWAY_PORT/actuator/health"

cat <<MSG

  llm-relay is up.
    chat page:   http://localhost:$GATEWAY_PORT/
    API key:     $DEMO_KEY
    admin token: $ADMIN_TOKEN   (for /admin/keys and /admin/usage)
    models:      $(printf '%s (:%s) ' ${services[@]})

  try:
    curl -N http://localhost:$GATEWAY_PORT/v1/chat/completions \\
      -H "Authorization: Bearer $DEMO_KEY" -H 'Content-Type: application/json' \\
      -d '{"messages":[{"role":"user","content":"What is the capital of France?"}],"stream":true}'

  Ctrl-C stops both.
MSG
wait -n "${pids[@]}" || true
echo "a process exited; shutting down the stack" >&2
