#!/usr/bin/env bash
# Build partyline.exe (the Windows side of the `partyline` command) on Linux: the
# x86_64-pc-windows-gnu target, linked by Debian's mingw-w64 (the MSVC target cannot link a std
# program without the MSVC libraries). On Windows, `cargo build --release -p partyline-cli` does it.
#
# usage: scripts/build-cli-windows.sh
#   Cargo's output goes to stderr; the last line on stdout is the path of partyline.exe.
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-pc-windows-gnu

if ! command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1; then
  echo "error: x86_64-w64-mingw32-gcc is not installed (Debian: apt-get install -y gcc-mingw-w64-x86-64)" >&2
  exit 1
fi
if ! rustup target list --installed | grep -qx "$target"; then
  echo "== adding the $target target" >&2
  rustup target add "$target" >&2
fi
cargo build --release --locked -p partyline-cli --target "$target" >&2
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
exe="$target_dir/$target/release/partyline.exe"
if [ ! -f "$exe" ]; then
  echo "error: cargo finished but $exe is missing" >&2
  exit 1
fi
echo "$exe"
