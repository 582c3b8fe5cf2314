#!/usr/bin/env bash
# schemathesis (PyPI) against a running proxy's OpenAPI document, signed in:
# examples, coverage, fuzzing and stateful phases; fails on any 5xx, on any
# status code or content type the document does not list for the operation.
#
#   tests/schemathesis/run.sh http://127.0.0.1:PORT MAX_SECONDS [USER]
#
# `cargo xtask test` runs it for 110 s against the debug proxy; a longer run
# is in RELIABILITY.md.
set -euo pipefail
BASE=$1
TIME=$2
USER_NAME=${3:-demo}
TOKEN=$(python3 - "$BASE" "$USER_NAME" <<'PY'
import json, sys, urllib.request
base, user = sys.argv[1], sys.argv[2]
body = json.dumps({"username": user, "password": "veritable-demo"}).encode()
request = urllib.request.Request(base + "/api/v1/auth/login", body, {"content-type": "application/json"})
print(json.load(urllib.request.urlopen(request))["token"])
PY
)
exec schemathesis --no-color run "$BASE/api/v1/openapi.json" \
    --url "$BASE" \
    -H "Authorization: Bearer $TOKEN" \
    --phases examples,coverage,fuzzing,stateful \
    --checks not_a_server_error,status_code_conformance,content_type_conformance \
    --max-time "$TIME" \
    --request-timeout 15 \
    --seed "${SCHEMATHESIS_SEED:-20261202}" \
    --exclude-path /api/v1/auth/logout \
    --workers 2
