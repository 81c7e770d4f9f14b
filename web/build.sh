#!/usr/bin/env bash
# Build the web page's vendored assets: install the pinned npm packages (package-lock.json) and copy
# exactly the files the page loads into islr/serving/static/vendor/. Node is needed only here;
# `islr serve` serves the copied files and needs no Node at run time.
#
#   bash web/build.sh        (or: make web, or: cd web && npm run build)
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v npm >/dev/null 2>&1; then
    echo "web/build.sh: npm not found; install Node.js and npm (Debian: apt-get install -y npm)" >&2
    exit 1
fi

# --ignore-scripts: the packages ship ready-made files; no install script is needed.
npm ci --no-audit --no-fund --ignore-scripts --loglevel=error

HOLISTIC=node_modules/@mediapipe/holistic
ORT=node_modules/onnxruntime-web/dist
# The page uses modelComplexity 1 (pose_landmark_full), or 0 (pose_landmark_lite) on a static
# site built with `islr web build --pose lite` or with ?pose=lite, and the SIMD build of the
# Holistic wasm (every current browser has wasm SIMD); the heavy pose model and the non-SIMD
# wasm are never fetched, so they are not shipped. For onnxruntime-web: the wasm-only script build and its
# one wasm binary (+ the .mjs glue it imports).
FILES=(
    "$HOLISTIC/holistic.js"
    "$HOLISTIC/holistic.binarypb"
    "$HOLISTIC/holistic_solution_packed_assets_loader.js"
    "$HOLISTIC/holistic_solution_packed_assets.data"
    "$HOLISTIC/holistic_solution_simd_wasm_bin.js"
    "$HOLISTIC/holistic_solution_simd_wasm_bin.wasm"
    "$HOLISTIC/pose_landmark_full.tflite"
    "$HOLISTIC/pose_landmark_lite.tflite"
    "$ORT/ort.wasm.min.js"
    "$ORT/ort-wasm-simd-threaded.mjs"
    "$ORT/ort-wasm-simd-threaded.wasm"
)

STATIC=../islr/serving/static
DEST=$STATIC/vendor
# Build into a temporary folder and swap it in, so an interrupted build never leaves a half copy.
TMP=$(mktemp -d "$STATIC/.vendor-build.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
chmod 755 "$TMP"
mkdir -p "$TMP/holistic" "$TMP/ort"
for f in "${FILES[@]}"; do
    case "$f" in
        "$HOLISTIC"/*) install -m 644 "$f" "$TMP/holistic/" ;;
        "$ORT"/*) install -m 644 "$f" "$TMP/ort/" ;;
    esac
done

holistic_version=$(node -p "require('./$HOLISTIC/package.json').version")
ort_version=$(node -p "require('./node_modules/onnxruntime-web/package.json').version")
cat >"$TMP/VERSIONS.json" <<EOF
{
  "@mediapipe/holistic": {"version": "$holistic_version", "license": "Apache-2.0", "dir": "holistic"},
  "onnxruntime-web": {"version": "$ort_version", "license": "MIT", "dir": "ort"}
}
EOF

rm -rf "$DEST.old"
[ -d "$DEST" ] && mv "$DEST" "$DEST.old"
mv "$TMP" "$DEST"
rm -rf "$DEST.old"
trap - EXIT
echo "web assets: $(du -sh "$DEST" | cut -f1) in islr/serving/static/vendor" \
    "(@mediapipe/holistic $holistic_version, onnxruntime-web $ort_version)"
