#!/bin/sh
# Ensure the PostgreSQL the tests use is reachable: ALPHASTREAM_TEST_DATABASE_URL
# (default postgresql://postgres@127.0.0.1:5432/test, trust auth on loopback).
# Order: already up -> start the Debian cluster (pg_ctlcluster) -> install Debian's
# `postgresql` package with apt-get, create the cluster, allow trust on 127.0.0.1,
# create the database. Fails with a clear message when none of that works.
set -e
URL="${ALPHASTREAM_TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/test}"
PY="${PYTHON:-.venv/bin/python}"
reachable() {
    "$PY" - "$URL" <<'PYEOF' >/dev/null 2>&1
import sys, psycopg
psycopg.connect(sys.argv[1], connect_timeout=3).close()
PYEOF
}
if reachable; then echo "postgresql: $URL"; exit 0; fi
SUDO=""
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo"
start_cluster() {
    if command -v pg_lsclusters >/dev/null 2>&1; then
        pg_lsclusters -h 2>/dev/null | while read -r ver name rest; do
            $SUDO pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" start 2>/dev/null || true
        done
    fi
}
start_cluster
for _ in 1 2 3 4 5 6 7 8 9 10; do reachable && { echo "postgresql: started ($URL)"; exit 0; }; sleep 1; done
case "$URL" in
    *127.0.0.1:5432/test*|*localhost:5432/test*) ;;
    *) echo "PostgreSQL at $URL is unreachable; start it or point ALPHASTREAM_TEST_DATABASE_URL at a server" >&2; exit 1 ;;
esac
if ! command -v apt-get >/dev/null 2>&1; then
    echo "PostgreSQL is not reachable at $URL and there is no apt-get to install it: install PostgreSQL >= 13" \
         "(trust auth on 127.0.0.1, database 'test') or set ALPHASTREAM_TEST_DATABASE_URL" >&2
    exit 1
fi
if ! command -v pg_lsclusters >/dev/null 2>&1 || [ -z "$(pg_lsclusters -h 2>/dev/null)" ]; then
    echo "installing Debian's postgresql with apt-get (needs root)"
    $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq postgresql >/dev/null
fi
# loopback trust for the tests (only 127.0.0.1/::1), then the database
for hba in /etc/postgresql/*/*/pg_hba.conf; do
    [ -f "$hba" ] || continue
    if ! $SUDO grep -q "alphastream tests" "$hba"; then
        $SUDO sh -c "printf '# alphastream tests: loopback trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n' | cat - '$hba' > '$hba.new' && mv '$hba.new' '$hba'"
    fi
done
start_cluster
pg_lsclusters -h | while read -r ver name rest; do $SUDO pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" reload || true; done
sleep 2
$SUDO -u postgres psql -h 127.0.0.1 -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" 2>/dev/null | grep -q 1 || \
    $SUDO -u postgres createdb -h 127.0.0.1 test 2>/dev/null || su postgres -c "createdb test" || true
if reachable; then echo "postgresql: installed and started ($URL)"; exit 0; fi
echo "PostgreSQL could not be started: check 'pg_lsclusters' and the server log (/var/log/postgresql/)" >&2
exit 1
