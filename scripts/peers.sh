#!/usr/bin/env bash
# Third-party peers the test suites talk to: `scripts/peers.sh up` installs what is missing
# (idempotent; Debian packages via apt, cached downloads under ~/.cache/power-loop-peers).
# `scripts/peers.sh status` lists what is present. Tests that need a missing peer skip with a
# reason, unless POWER_LOOP_REQUIRE_PEERS=1 (set by .ci/run) turns the skip into a failure.
set -euo pipefail

CACHE="${POWER_LOOP_PEERS_CACHE:-$HOME/.cache/power-loop-peers}"
mkdir -p "$CACHE"

apt_install() { # apt_install PACKAGE...: installs the Debian packages, updating the index once if needed
    # Waits for the dpkg lock (another apt may be running) instead of failing at once.
    local apt=(apt-get -o DPkg::Lock::Timeout=600)
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -q "$@" >/dev/null 2>&1 \
        || { "${apt[@]}" update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -q "$@" >/dev/null; }
}

# peer NAME CHECK-CMD INSTALL-CMD...: installs NAME when CHECK-CMD fails.
peer() {
    local name=$1 check=$2; shift 2
    if bash -c "$check" >/dev/null 2>&1; then
        echo "peer $name: present"
    else
        echo "peer $name: installing"
        "$@" || { echo "peer $name: install FAILED" >&2; return 1; }
    fi
}

up() {
    local rc=0
    # bubblewrap: the sandbox boundary of BubblewrapShell (tools) and of workflow leaf launchers.
    peer bubblewrap "command -v bwrap" apt_install bubblewrap || rc=1
    # firejail: the other sandbox launcher of workflow leaves (FirejailLauncher).
    peer firejail "command -v firejail" apt_install firejail || rc=1
    # setpriv (util-linux): the sandbox tests re-run themselves as an unprivileged user.
    peer setpriv "command -v setpriv" apt_install util-linux || rc=1
    # promtool + prometheus (Debian `prometheus`): the sinks' exposition is checked and scraped.
    peer prometheus "command -v promtool && command -v prometheus" apt_install prometheus || rc=1
    # A real StatsD daemon (npm `statsd`), run by the sinks' peer tests on loopback ports.
    peer statsd "test -f '$CACHE/statsd/node_modules/statsd/stats.js'" \
        npm install --silent --no-audit --no-fund --prefix "$CACHE/statsd" statsd@0.9.0 || rc=1
    # An OTLP/HTTP receiver (PyPI `oteltap`) in its own virtualenv: receives the exported spans.
    peer oteltap "test -x '$CACHE/oteltap-venv/bin/oteltap'" \
        bash -c "python3 -m venv '$CACHE/oteltap-venv' && '$CACHE/oteltap-venv/bin/pip' install -q oteltap==1.0.0" || rc=1
    # MCP reference servers (issue 18): server-everything (stdio and Streamable HTTP) and
    # server-filesystem from npm, mcp-server-time from PyPI in its own virtualenv.
    peer mcp-server-everything "test -f '$CACHE/mcp/node_modules/@modelcontextprotocol/server-everything/package.json'" \
        npm install --silent --no-audit --no-fund --prefix "$CACHE/mcp" \
            @modelcontextprotocol/server-everything@2026.8.31 @modelcontextprotocol/server-filesystem@2026.8.31 || rc=1
    peer mcp-server-filesystem "test -f '$CACHE/mcp/node_modules/@modelcontextprotocol/server-filesystem/package.json'" \
        npm install --silent --no-audit --no-fund --prefix "$CACHE/mcp" \
            @modelcontextprotocol/server-everything@2026.8.31 @modelcontextprotocol/server-filesystem@2026.8.31 || rc=1
    peer mcp-server-time "test -x '$CACHE/mcp-time-venv/bin/mcp-server-time'" \
        bash -c "python3 -m venv '$CACHE/mcp-time-venv' && '$CACHE/mcp-time-venv/bin/pip' install -q mcp-server-time==2026.10.19" || rc=1
    return $rc
}

status() {
    local c
    for c in bwrap firejail setpriv promtool prometheus; do
        if command -v "$c" >/dev/null 2>&1; then echo "$c: $(command -v "$c")"; else echo "$c: missing"; fi
    done
    local f
    for f in "$CACHE/statsd/node_modules/statsd/stats.js" "$CACHE/oteltap-venv/bin/oteltap" \
        "$CACHE/mcp/node_modules/@modelcontextprotocol/server-everything/package.json" \
        "$CACHE/mcp/node_modules/@modelcontextprotocol/server-filesystem/package.json" \
        "$CACHE/mcp-time-venv/bin/mcp-server-time"; do
        if [ -e "$f" ]; then echo "$f: present"; else echo "$f: missing"; fi
    done
}

case "${1:-}" in
    up) up ;;
    status) status ;;
    *) echo "usage: $0 up|status" >&2; exit 2 ;;
esac
