#!/usr/bin/env bash
# `make image-check`: build the Dockerfile and start the image as its non-root user, without a
# Docker engine and without pulling python:3.11-slim (see "The image" in docs/operations.md).
#
# 1. The base: Debian bookworm from the configured mirror (debootstrap), imported into podman
#    as docker.io/library/python:3.11-slim. The tarball is cached in IMAGE_CHECK_CACHE.
# 2. `podman build --format docker` (keeps the HEALTHCHECK), chroot isolation, no pull.
# 3. `podman create` + `podman mount`, then chroot into it as uid 10001 with the image's Env,
#    WorkingDir and Cmd: migrate, `governance demo --if-empty`, serve; then call /healthz, a
#    check, the console and its static files. Any failure exits non-zero with one clear line.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=${IMAGE_CHECK_CACHE:-/var/tmp/governance-image-check}
TAG=${IMAGE_CHECK_TAG:-governance:check}
PORT=${IMAGE_CHECK_PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
BASE_IMAGE=docker.io/library/python:3.11-slim
BASE_TAR=$CACHE/bookworm-python3.tar
KEY="gov_image_check_$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
BASE="http://127.0.0.1:$PORT"

sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi

say() { printf 'image-check: %s\n' "$*" >&2; }
fail() {
    say "FAILED: $*"
    exit 1
}

container="" mountpoint="" server_pid="" dev_bound="" work=""
cleanup() {
    local status=$?
    set +e
    if [ -n "$server_pid" ]; then
        $sudo kill -- "-$server_pid" 2>/dev/null || $sudo kill "$server_pid" 2>/dev/null
        wait "$server_pid" 2>/dev/null
    fi
    if [ -n "$dev_bound" ]; then $sudo umount "$mountpoint/dev"; fi
    if [ -n "$container" ]; then
        $sudo podman umount "$container" >/dev/null
        $sudo podman rm -f "$container" >/dev/null
    fi
    if [ -n "$work" ]; then rm -rf "$work"; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- tools -----------------------------------------------------------------------------------
if ! command -v podman >/dev/null || ! command -v debootstrap >/dev/null; then
    say "installing podman and debootstrap"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        podman debootstrap >/dev/null \
        || fail "could not install podman and debootstrap (apt-get)"
fi
work=$(mktemp -d)

# --- the base image --------------------------------------------------------------------------
mirror() {
    # The first Debian (not security) archive apt is configured with, one-line or deb822 style.
    local url
    url=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
        2>/dev/null | grep -E '^[[:space:]]*(URIs:|deb )' | grep -oE '(https?|file)://[^ ]*/debian/?' \
        | grep -v security | head -n1 || true)
    echo "${url:-http://deb.debian.org/debian}"
}

if ! $sudo podman image exists "$BASE_IMAGE"; then
    if [ ! -s "$BASE_TAR" ]; then
        say "debootstrap bookworm from $(mirror) (first run only; cached in $CACHE)"
        $sudo mkdir -p "$CACHE"
        rootfs="$CACHE/rootfs.tmp"
        $sudo rm -rf "$rootfs"
        $sudo debootstrap --variant=minbase \
            --include=python3,python3-venv,python-is-python3,ca-certificates \
            bookworm "$rootfs" "$(mirror)" >"$work/debootstrap.log" 2>&1 \
            || { tail -n 20 "$work/debootstrap.log" >&2; fail "debootstrap of the base failed"; }
        $sudo rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
        $sudo tar -C "$rootfs" -c . | $sudo tee "$BASE_TAR.tmp" >/dev/null
        $sudo mv "$BASE_TAR.tmp" "$BASE_TAR"
        $sudo rm -rf "$rootfs"
    fi
    say "importing the base as $BASE_IMAGE"
    $sudo podman import --quiet "$BASE_TAR" "$BASE_IMAGE" >/dev/null || fail "podman import of the base failed"
fi

# --- the build -------------------------------------------------------------------------------
say "building $TAG"
$sudo podman build --isolation=chroot --pull=never --format docker \
    -v /etc/ssl/certs:/etc/ssl/certs:ro -t "$TAG" . >"$work/build.log" 2>&1 \
    || { tail -n 30 "$work/build.log" >&2; fail "the image does not build (podman build)"; }

inspect() { $sudo podman image inspect --format "$1" "$TAG"; }
[ "$(inspect '{{.Config.User}}')" = governance ] || fail "the image does not run as user governance"
inspect '{{json .Config.Healthcheck}}' | grep -q healthz || fail "the image lost its HEALTHCHECK"
workdir=$(inspect '{{.Config.WorkingDir}}')
mapfile -t image_env < <(inspect '{{range .Config.Env}}{{println .}}{{end}}' | sed '/^$/d')
mapfile -d "" -t image_cmd < <(inspect '{{json .Config.Entrypoint}}|{{json .Config.Cmd}}' | python3 -c '
import json, sys
entrypoint, cmd = sys.stdin.read().strip().split("|", 1)
sys.stdout.write("".join(a + "\0" for a in (json.loads(entrypoint) or []) + (json.loads(cmd) or [])))')
[ "${#image_cmd[@]}" -gt 0 ] || fail "the image has no Cmd"

# --- start it as uid 10001 -------------------------------------------------------------------
container=$($sudo podman create --no-healthcheck "$TAG")
mountpoint=$($sudo podman mount "$container")
if [ ! -c "$mountpoint/dev/null" ]; then
    $sudo mount --bind /dev "$mountpoint/dev"
    dev_bound=1
fi
[ "$($sudo stat -c %u "$mountpoint/home/governance")" = 10001 ] || fail "user governance is not uid 10001"

in_image() {
    # Runs "$@" inside the image as uid 10001, in its WorkingDir, with its Env only.
    $sudo chroot --userspec=10001:10001 "$mountpoint" /usr/bin/env -i "${image_env[@]}" \
        HOME=/home/governance GOVERNANCE_HOST=127.0.0.1 GOVERNANCE_PORT="$PORT" \
        GOVERNANCE_PUBLIC_URL="$BASE" GOVERNANCE_BOOTSTRAP_ADMIN_KEY="$KEY" \
        sh -c 'cd "$0" && exec "$@"' "$workdir" "$@"
}

in_image python -c '
import importlib.util, sys
dev = [m for m in ("pytest", "ruff", "mypy", "hypothesis", "playwright") if importlib.util.find_spec(m)]
sys.exit(f"development packages in the image: {dev}" if dev else 0)' || fail "the image holds dev dependencies"
in_image governance migrate >"$work/migrate.log" 2>&1 \
    || { cat "$work/migrate.log" >&2; fail "governance migrate failed in the image"; }
in_image governance demo --if-empty >"$work/demo.log" 2>&1 \
    || { cat "$work/demo.log" >&2; fail "governance demo --if-empty failed in the image"; }

if curl -s -o /dev/null "$BASE/"; then fail "port $PORT is already in use (set IMAGE_CHECK_PORT)"; fi
say "serving on $BASE as uid 10001 (the image's Cmd: ${image_cmd[*]})"
setsid bash -c "$(declare -f in_image); $(declare -p sudo mountpoint image_env PORT BASE KEY workdir); "'in_image "$@"' \
    image "${image_cmd[@]}" >"$work/serve.log" 2>&1 &
server_pid=$!

for _ in $(seq 120); do
    if curl -fsS -o /dev/null "$BASE/healthz" 2>/dev/null; then break; fi
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/serve.log" >&2; fail "the server exited"; }
    sleep 0.5
done
curl -fsS -o /dev/null "$BASE/healthz" || { cat "$work/serve.log" >&2; fail "/healthz does not answer"; }

# --- call it ---------------------------------------------------------------------------------
status=$(curl -sS -o "$work/check.json" -w '%{http_code}' "$BASE/v1/checks" \
    -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' -d '{
  "attributes": {"region": "EMEA", "segment": "enterprise", "amount": "120000", "currency": "EUR",
                 "value_position": "parity"},
  "terms": {"discount_pct": "18", "contract_months": 24, "support_level": "premium"}}')
[ "$status" = 200 ] && grep -q '"verdict"' "$work/check.json" \
    || { cat "$work/check.json" >&2; echo >&2; fail "POST /v1/checks answered $status"; }

get() { # get PATH [curl options]: fails unless PATH answers 200
    local path=$1 code
    shift
    code=$(curl -sS -o "$work/page" -w '%{http_code}' "$@" "$BASE$path")
    [ "$code" = 200 ] || fail "GET $path answered $code"
}
jar="$work/cookies"
get / -L -c "$jar" -b "$jar"
grep -q 'name="csrf_token"' "$work/page" || fail "GET / did not lead to the sign-in page"
token=$(grep -o 'name="csrf_token" value="[^"]*"' "$work/page" | sed 's/.*value="//; s/"$//')
mapfile -t assets < <(grep -oE '/static/[^"?]+' "$work/page" | sort -u)
[ "${#assets[@]}" -gt 0 ] || fail "the sign-in page links no static file"
for asset in "${assets[@]}" /static/vendor/htmx.min.js /static/vendor/swagger-ui-bundle.js; do
    get "$asset"
done
code=$(curl -sS -o /dev/null -w '%{http_code}' -c "$jar" -b "$jar" "$BASE/sign-in" \
    --data-urlencode "csrf_token=$token" --data-urlencode "api_key=$KEY" --data-urlencode "next=/")
[ "$code" = 303 ] || fail "signing in to the console answered $code"
get /playbooks -b "$jar"
get /docs

say "ok: built, migrated, demo loaded, /healthz, a check, the console and its static files answer as uid 10001"
