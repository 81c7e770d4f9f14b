#!/usr/bin/env bash
# A pip user without npm gets a working page: install the built wheel into a fresh venv (no torch),
# then, with npm and node off PATH, start `islr serve MODEL` from outside the source tree and fetch
# / (the real page, not the "assets missing" one) and a vendored asset: HTTP 200 each.
#
#   bash .ci/wheel_serve.sh dist/islr-*.whl MODEL      (run by `make ci-wheel`)
set -euo pipefail
wheel=$(realpath "$1")
model=$2
[ -e "$model" ] && model=$(realpath "$model")
python=${PYTHON:-python3}
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

started=$(date +%s)
"$python" -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install -q "$wheel"
echo "wheel installed into a fresh venv in $(($(date +%s) - started)) s"
if "$tmp/venv/bin/python" -c "import importlib.util as u, sys; sys.exit(u.find_spec('torch') is None)"; then
    echo "error: the core install pulled in torch"
    exit 1
fi

bare=(env -i "HOME=$HOME" "PATH=$tmp/venv/bin" "TMPDIR=$tmp")
if "${bare[@]}" /bin/sh -c 'command -v npm || command -v node'; then
    echo "error: npm or node is reachable; the check must run without them"
    exit 1
fi
port=$("$tmp/venv/bin/python" -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
cd "$tmp"  # the installed islr, not the source tree
"${bare[@]}" "$tmp/venv/bin/islr" serve "$model" --port "$port" --no-access-log >"$tmp/serve.log" 2>&1 &
pid=$!

"$tmp/venv/bin/python" - "$port" "$tmp/serve.log" <<'PY'
import sys
import time
import urllib.request

port, log = sys.argv[1], sys.argv[2]
base = f"http://127.0.0.1:{port}"
deadline = time.monotonic() + 60
while True:
    try:
        urllib.request.urlopen(base + "/healthz", timeout=2).read()
        break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit(f"error: islr serve did not answer within 60 s:\n{open(log).read()}")
        time.sleep(0.3)
for path in ("/", "/static/vendor/ort/ort.wasm.min.js", "/static/vendor/holistic/holistic.js"):
    with urllib.request.urlopen(base + path, timeout=10) as r:
        body = r.read()
        assert r.status == 200, (path, r.status)
    if path == "/":
        assert b"static/app.js" in body, f"/ is not the page:\n{body[:400]!r}"
    print(f"GET {path}: 200, {len(body):,} bytes")
startup = open(log).read()
assert "assets are not installed" not in startup, startup
PY
echo "ok: the wheel serves the page with no npm, no Node and no torch"
