#!/usr/bin/env bash
# llama.cpp's llama-server, llama-quantize and its GGUF converter, for the tests and benchmarks that run a real llama.cpp server.
# The source is the one the llama-cpp-python package on PyPI vendors (the package registry is what CI reaches); it
# converts MiniCPM-V 4.6 (its docs/multimodal/minicpmv4.6.md). Built into .llama.cpp/ (ignored by git), once.
#   scripts/build_llama_cpp.sh [python]      # python: the one whose pip downloads the source (default: .venv's)
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=0.3.36
DEST=.llama.cpp
PYTHON=${1:-.venv/bin/python}
if [ -x "$DEST/build/bin/llama-server" ] && [ -f "$DEST/.version" ] && [ "$(cat "$DEST/.version")" = "$VERSION" ]; then
  echo "llama.cpp $VERSION is built in $DEST"; exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "llama.cpp: downloading the source of llama-cpp-python $VERSION"
"$PYTHON" -m pip download -q --no-deps --no-binary :all: "llama-cpp-python==$VERSION" -d "$work"
tar xzf "$work/llama_cpp_python-$VERSION.tar.gz" -C "$work"
rm -rf "$DEST"
mv "$work/llama_cpp_python-$VERSION/vendor/llama.cpp" "$DEST"
generator=(); command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
cmake -S "$DEST" -B "$DEST/build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON >/dev/null
echo "llama.cpp: building llama-server (about 15 minutes on 2 cores)"
start=$(date +%s)
cmake --build "$DEST/build" -j"$(nproc)" --target llama-server llama-quantize >"$DEST/build.log" 2>&1 || { tail -30 "$DEST/build.log"; exit 1; }
echo "$VERSION" > "$DEST/.version"
echo "llama.cpp: built in $(( $(date +%s) - start )) s"
