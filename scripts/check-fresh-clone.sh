#!/usr/bin/env bash
# A new user's first run, simulated: a fresh clone of this repository's HEAD in a folder with no ../shared beside
# it, empty cache and data folders, and MNIST reachable only over HTTP (served from 127.0.0.1, standing in for the
# internet). Runs `make test` there, then starts `make run` and checks that the dashboard answers.
#
# Usage: scripts/check-fresh-clone.sh [MNIST_FOLDER]   (default: ../shared/data/mnist, or $DIGITLAB_MNIST_SOURCE)
# Only committed work is checked: the clone is of HEAD.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
source_folder="${1:-${DIGITLAB_MNIST_SOURCE:-$root/../shared/data/mnist}}"
if [ ! -f "$source_folder/t10k-images-idx3-ubyte.gz" ]; then
    echo "error: $source_folder does not hold the four MNIST .gz files to serve; pass their folder as the argument." >&2
    exit 2
fi
source_folder="$(cd "$source_folder" && pwd)"
python="$(command -v python3.11 || command -v python3)"

work="$(mktemp -d "${TMPDIR:-/tmp}/digitlab-fresh-clone.XXXXXX")"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

free_port() {
    "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

mirror_port="$(free_port)"
"$python" -m http.server "$mirror_port" --bind 127.0.0.1 --directory "$source_folder" >"$work/mirror.log" 2>&1 &
pids+=($!)

echo "==> cloning $(git -C "$root" rev-parse --short HEAD) into $work/digitlab (no ../shared beside it)"
git clone --quiet "$root" "$work/digitlab"
mkdir -p "$work/cache" "$work/data"

# A new user's environment: no data folder setting, nothing cached, MNIST only from the mirror.
run_as_new_user() {
    env -u DIGITLAB_DATA_DIR -u DIGITLAB_MODELS_DIR -u DIGITLAB_DB \
        XDG_CACHE_HOME="$work/cache" XDG_DATA_HOME="$work/data" \
        DIGITLAB_MNIST_MIRRORS="http://127.0.0.1:$mirror_port/" \
        "$@"
}

started=$SECONDS
echo "==> make test (MNIST from http://127.0.0.1:$mirror_port/)"
run_as_new_user make -C "$work/digitlab" test
tested=$SECONDS
if [ ! -f "$work/cache/digitlab/mnist/train-images-idx3-ubyte.gz" ]; then
    echo "error: the tests did not download MNIST into the new user's cache folder" >&2
    exit 1
fi

dashboard_port="$(free_port)"
echo "==> make run on port $dashboard_port"
run_as_new_user make -C "$work/digitlab" run PORT="$dashboard_port" >"$work/dashboard.log" 2>&1 &
pids+=($!)
for _ in $(seq 120); do
    if curl -fsS "http://127.0.0.1:$dashboard_port/_stcore/health" 2>/dev/null | grep -q ok; then
        echo "==> the dashboard answers on port $dashboard_port"
        echo "fresh clone: make test passed in $((tested - started)) s; make run serves the dashboard"
        pkill -f "streamlit run app.py --server.port $dashboard_port" || true
        exit 0
    fi
    sleep 1
done
echo "error: the dashboard did not answer within 120 s; its log:" >&2
cat "$work/dashboard.log" >&2
exit 1
