#!/bin/sh
# Installs crun from a build tree into a fresh prefix, then builds the C API example as
# an outside user would, with find_package(crun) (shared and static) and with
# `pkg-config --cflags --libs crun`, and runs each build on the demo images.
#   tests/install/check.sh BUILD_DIR SOURCE_DIR
set -eu
build=$(cd "$1" && pwd) src=$(cd "$2" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
cmake --install "$build" --prefix "$prefix" >/dev/null
images=$(ls "$src"/demo/images/*.npy)
libdir=$(dirname "$(find "$prefix" -name 'libcrun.so' | head -n 1)")

run() { # program: must classify every demo image as the class in its name
    out=$(LD_LIBRARY_PATH=$libdir "$@" "$src/demo/fashion_mnist.onnx" $images)
    for img in $images; do
        echo "$out" | grep -q "$(basename "$img"): " || { echo "FAIL $1: no line for $img"; exit 1; }
    done
    echo "$out" | grep -q "0_t-shirt_top.npy: T-shirt/top (" || { echo "FAIL $1: wrong class"; echo "$out"; exit 1; }
    echo "ok $(basename "$1")"
}

cmake -S "$src/tests/install/project" -B "$tmp/cmake" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCLASSIFY_SOURCE="$src/examples/classify.c" >/dev/null
cmake --build "$tmp/cmake" >/dev/null
run "$tmp/cmake/classify_shared"
run "$tmp/cmake/classify_static"

pc=$(dirname "$(find "$prefix" -name crun.pc | head -n 1)")
# shellcheck disable=SC2046
cc -o "$tmp/classify_pc" "$src/examples/classify.c" $(PKG_CONFIG_PATH=$pc pkg-config --cflags --libs crun)
run "$tmp/classify_pc"
echo "installed tree works with find_package and pkg-config"
