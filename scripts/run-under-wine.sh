#!/usr/bin/env bash
# Run partyline.exe (the x86_64-pc-windows-gnu build) under Wine, for CI and tests on Linux.
#
# usage: scripts/run-under-wine.sh <partyline.exe> [arguments...]
#   Runs a copy of the program in a work folder ($PARTYLINE_WINE_DIR, else a new temporary one)
#   next to scripts/wine/bcryptprimitives.c built as a DLL (Wine 8.0 lacks that DLL, which Rust's
#   std imports), with its own Wine prefix in the same folder (made on first use, a few seconds).
#   The exit status is the program's. Needs Debian's wine64 (or wine) and gcc-mingw-w64-x86-64.
set -euo pipefail

if [ "$#" -lt 1 ]; then
  echo "usage: $0 <partyline.exe> [arguments...]" >&2
  exit 2
fi
exe=$1
shift
here=$(cd "$(dirname "$0")" && pwd)

wine=""
for candidate in wine64 /usr/lib/wine/wine64 wine; do
  if command -v "$candidate" >/dev/null 2>&1; then
    wine=$(command -v "$candidate")
    break
  fi
done
if [ -z "$wine" ]; then
  echo "error: Wine is not installed (Debian: apt-get install -y --no-install-recommends wine64)" >&2
  exit 127
fi
if ! command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1; then
  echo "error: x86_64-w64-mingw32-gcc is not installed (Debian: apt-get install -y gcc-mingw-w64-x86-64)" >&2
  exit 127
fi
if [ ! -f "$exe" ]; then
  echo "error: $exe does not exist (build it with scripts/build-cli-windows.sh)" >&2
  exit 2
fi

work=${PARTYLINE_WINE_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/partyline-wine.XXXXXX")}
mkdir -p "$work"
cp "$exe" "$work/partyline.exe"
if [ ! -f "$work/bcryptprimitives.dll" ] || [ "$here/wine/bcryptprimitives.c" -nt "$work/bcryptprimitives.dll" ]; then
  x86_64-w64-mingw32-gcc -shared -O2 -o "$work/bcryptprimitives.dll" "$here/wine/bcryptprimitives.c" -ladvapi32
fi

export WINEPREFIX=${WINEPREFIX:-$work/prefix}
export WINEDEBUG=${WINEDEBUG:--all}
# A console program: no display needed, and no dialog for the missing Mono/Gecko.
export WINEDLLOVERRIDES=${WINEDLLOVERRIDES:-mscoree,mshtml=}
unset DISPLAY
exec "$wine" "$work/partyline.exe" "$@"
