#!/usr/bin/env bash
# Builds the examples and runs every one that needs no network, no server and no API key, each
# with a timeout, naming each in the output. Exit status: 0 when all passed, 1 otherwise.
#
# Not run here (they need a peer; CI only builds them):
#   real-provider     a model provider (POWER_LOOP_BASE_URL / POWER_LOOP_API_KEY / POWER_LOOP_MODEL)
#   postgres-session  a PostgreSQL or MySQL server (POWER_LOOP_PG_DSN)
#   mcp_tools         the MCP reference server-everything (scripts/peers.sh up)
# `axum-handler` runs in its self-test mode (it serves on 127.0.0.1 on a free port and calls
# itself); `chatbot-tools` runs on the offline model with its input piped in.
#
# Usage: bash examples/run-offline.sh   (honours CARGO_TARGET_DIR; TIMEOUT=seconds per example)
set -uo pipefail
cd "$(dirname "$0")/.."

OFFLINE=(
  hello-world quickstart store-sqlite-basic agent-tools streaming-events structured-output
  hooks-veto-rewrite custom-tool-trait default-tools subagents timers compaction-recall
  sinks-jsonl-replay resume-after-crash cancel-and-budgets retry-rate-limit memory-provider
  human-input schema-verify store-maintenance axum-handler chatbot-tools workflow_research
)
TIMEOUT="${TIMEOUT:-120}"

cargo build --quiet -p examples --examples || exit 1
target="${CARGO_TARGET_DIR:-target}"

# The offline examples must not reach a provider even if the caller's shell has one configured.
unset POWER_LOOP_BASE_URL POWER_LOOP_PROVIDER POWER_LOOP_API_KEY POWER_LOOP_MODEL

passed=0
failed=0
failed_names=()
for name in "${OFFLINE[@]}"; do
  echo "=== example ${name}"
  start=$(date +%s)
  if [ "$name" = chatbot-tools ]; then
    printf 'hello\nwhat time is it?\nwhat is 12 * 7?\n/quit\n' \
      | timeout "$TIMEOUT" "$target/debug/examples/$name"
  else
    timeout "$TIMEOUT" "$target/debug/examples/$name" </dev/null
  fi
  rc=$?
  secs=$(( $(date +%s) - start ))
  if [ "$rc" -eq 0 ]; then
    echo "--- example ${name}: ok (${secs}s)"
    passed=$((passed + 1))
  else
    echo "--- example ${name}: FAILED (exit ${rc}, ${secs}s)"
    failed=$((failed + 1))
    failed_names+=("$name")
  fi
done
echo "examples: ${passed} passed, ${failed} failed"
if [ "$failed" -ne 0 ]; then
  echo "failed: ${failed_names[*]}"
  exit 1
fi
