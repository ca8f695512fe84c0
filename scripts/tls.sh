#!/usr/bin/env bash
# TLS peers of the store's server tests: `scripts/tls.sh up` (idempotent) makes sure that
#  1. the local PostgreSQL has `ssl = on` (when it is off: a generated self-signed certificate for
#     `localhost`, `ALTER SYSTEM SET ssl = on` and a reload), and
#  2. a second, TLS-only MariaDB instance runs on 127.0.0.1:${POWER_LOOP_TLS_MYSQL_PORT:-3307}
#     (own datadir, socket and port under ~/.cache/power-loop-tls/mariadb, a generated CA and a
#     server certificate for IP 127.0.0.1, `require_secure_transport = ON`).
# `scripts/tls.sh down` stops the MariaDB instance; `scripts/tls.sh status` prints what runs.
# The store-mysql TLS tests find the instance at that port and its CA at $DIR/ca.pem.
set -euo pipefail

DIR="${POWER_LOOP_TLS_DIR:-$HOME/.cache/power-loop-tls}/mariadb"
PORT="${POWER_LOOP_TLS_MYSQL_PORT:-3307}"
PG="${POWER_LOOP_TEST_PG_DSN:-postgres://postgres@127.0.0.1:5432/test}"
PG_CERT_DIR=/var/lib/postgresql/power-loop-tls

pg_up() {
    if ! psql "$PG" -Atc 'SELECT 1' >/dev/null 2>&1; then
        echo "tls: PostgreSQL at $PG is not reachable; skipped" >&2
        return 1
    fi
    if [ "$(psql "$PG" -Atc 'SHOW ssl')" = on ]; then
        echo "tls: PostgreSQL ssl = on ($(psql "$PG" -Atc 'SHOW ssl_cert_file'))"
        return 0
    fi
    echo "tls: PostgreSQL ssl = off: generating a certificate and turning it on"
    mkdir -p "$PG_CERT_DIR"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=localhost" \
        -addext "subjectAltName=DNS:localhost" \
        -keyout "$PG_CERT_DIR/server.key" -out "$PG_CERT_DIR/server.crt" 2>/dev/null
    chown -R postgres:postgres "$PG_CERT_DIR"
    chmod 600 "$PG_CERT_DIR/server.key"
    psql "$PG" -q -c "ALTER SYSTEM SET ssl_cert_file = '$PG_CERT_DIR/server.crt'" \
        -c "ALTER SYSTEM SET ssl_key_file = '$PG_CERT_DIR/server.key'" \
        -c "ALTER SYSTEM SET ssl = on" -c "SELECT pg_reload_conf()" >/dev/null
    sleep 1
    [ "$(psql "$PG" -Atc 'SHOW ssl')" = on ] || { echo "tls: PostgreSQL ssl is still off" >&2; return 1; }
    echo "tls: PostgreSQL ssl = on"
}

mysql_ping() {
    mysqladmin --no-defaults --socket="$DIR/mysqld.sock" -uroot ping >/dev/null 2>&1
}

mysql_certs() {
    [ -f "$DIR/server-cert.pem" ] && return 0
    mkdir -p "$DIR"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=power-loop test CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout "$DIR/ca-key.pem" -out "$DIR/ca.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=power-loop-mariadb-tls" \
        -keyout "$DIR/server-key.pem" -out "$DIR/server.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
        >"$DIR/server.ext"
    openssl x509 -req -in "$DIR/server.csr" -CA "$DIR/ca.pem" -CAkey "$DIR/ca-key.pem" \
        -CAcreateserial -days 3650 -extfile "$DIR/server.ext" -out "$DIR/server-cert.pem" 2>/dev/null
}

mysql_up() {
    if mysql_ping; then
        echo "tls: MariaDB TLS instance is up on 127.0.0.1:$PORT"
        return 0
    fi
    command -v mariadbd >/dev/null || { echo "tls: mariadbd not installed" >&2; return 1; }
    mysql_certs
    if [ ! -d "$DIR/data/mysql" ]; then
        mkdir -p "$DIR/data"
        mariadb-install-db --no-defaults --user="$(id -un)" --datadir="$DIR/data" \
            --auth-root-authentication-method=normal >"$DIR/install.log" 2>&1
    fi
    setsid nohup mariadbd --no-defaults --user="$(id -un)" --datadir="$DIR/data" \
        --port="$PORT" --bind-address=127.0.0.1 --socket="$DIR/mysqld.sock" \
        --pid-file="$DIR/mysqld.pid" --log-error="$DIR/error.log" --skip-name-resolve \
        --ssl-ca="$DIR/ca.pem" --ssl-cert="$DIR/server-cert.pem" --ssl-key="$DIR/server-key.pem" \
        --require-secure-transport=ON --innodb-buffer-pool-size=32M >/dev/null 2>&1 </dev/null &
    local i
    for ((i = 0; i < 60; i++)); do
        mysql_ping && break
        sleep 1
    done
    mysql_ping || { echo "tls: MariaDB TLS instance did not start (see $DIR/error.log)" >&2; return 1; }
    mariadb --no-defaults --socket="$DIR/mysqld.sock" -uroot -e \
        "CREATE DATABASE IF NOT EXISTS test;
         CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';
         GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;"
    echo "tls: MariaDB TLS instance is up on 127.0.0.1:$PORT (CA: $DIR/ca.pem)"
}

mysql_down() {
    if [ -f "$DIR/mysqld.pid" ]; then
        kill "$(cat "$DIR/mysqld.pid")" 2>/dev/null || true
        echo "tls: MariaDB TLS instance stopped"
    fi
}

case "${1:-}" in
    up)
        rc=0
        pg_up || rc=1
        mysql_up || rc=1
        exit $rc
        ;;
    down) mysql_down ;;
    status)
        psql "$PG" -Atc 'SHOW ssl' 2>/dev/null | sed 's/^/PostgreSQL ssl: /' || echo "PostgreSQL: unreachable"
        if mysql_ping; then echo "MariaDB TLS instance: up on 127.0.0.1:$PORT"; else echo "MariaDB TLS instance: down"; fi
        ;;
    *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
