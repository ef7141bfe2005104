#!/bin/sh
# `make docs`: the README's picture, examples/demo/launch.dts drawn by
# `domb config show --dot` and rendered by Graphviz's dot (Debian package graphviz).
# Usage: scripts/docs.sh [DOMB [OUTPUT-DIRECTORY]] (defaults: the debug build, docs/).
# The Swift suite runs this with its own build into a temporary directory and compares
# the result with the committed files (DocsPictureTests).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
domb=${1:-$(cd "$root" && swift build --show-bin-path)/domb}
out=${2:-$root/docs}
command -v dot >/dev/null || { echo "docs.sh: dot is not installed — install the Debian package graphviz" >&2; exit 2; }
cd "$root"
"$domb" config show examples/demo/launch.dts --dot -o "$out/demo-topology.dot"
"$domb" config show examples/demo/launch.dts --svg -o "$out/demo-topology.svg"
