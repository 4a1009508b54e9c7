#!/usr/bin/env bash
# Build the test-signed partyline driver package on Linux (what `cargo make package` runs):
#   partyline.sys, partyline.pdb   the kernel image (crates/partyline-image's nested build)
#   partyline.inf                  inf/partyline.inf
#   partyline.exe                  the `partyline` command for Windows (scripts/build-cli-windows.sh)
#   partyline.cat                  the catalog, made by the project and signed (scripts/sign-linux.sh)
#   partyline-test.cer             the test certificate to trust on the test machine
# and windows-test.ps1, the tester's one-shot test (docs/INSTALL.md).
# Windows: scripts/package-windows.cmd. Needs: rustup, openssl, osslsigncode, gcc-mingw-w64-x86-64.
#
# usage: scripts/package.sh [<package-dir>]
#   Default <package-dir>: <target>/package/partyline. The certificate is kept in
#   <target>/test-cert and reused, so the test machine trusts one certificate across builds.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

missing=()
for tool in openssl osslsigncode x86_64-w64-mingw32-gcc cargo rustup; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "error: missing ${missing[*]} (Debian: apt-get install -y openssl osslsigncode gcc-mingw-w64-x86-64; rustup from rustup.rs)" >&2
  exit 1
fi

target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
package=${1:-$target_dir/package/partyline}
profile=${PARTYLINE_TOOL_PROFILE:-release}

echo "== partyline.sys and partyline.pdb"
# The image is always built with the release profile by the nested cargo of partyline-image's
# build script; the host crate around it can use any profile.
cargo build -q --locked --profile "$profile" -p partyline-image
echo "== partyline.exe"
exe=$(bash scripts/build-cli-windows.sh | tail -n 1)

echo "== assembling $package"
rm -rf "$package"
mkdir -p "$package"
cp "$target_dir/driver/partyline.sys" "$target_dir/driver/partyline.pdb" "$package/"
cp "$root/inf/partyline.inf" "$package/"
cp "$root/scripts/windows-test.ps1" "$package/"   # the tester's one-shot test (docs/INSTALL.md)
# Without its DWARF debug information (24 MB with it; the Rust-side symbols are for Linux tools).
x86_64-w64-mingw32-strip --strip-debug -o "$package/partyline.exe" "$exe"

PARTYLINE_TOOL_PROFILE=$profile bash scripts/sign-linux.sh "$package" "$target_dir/test-cert"

for file in partyline.sys partyline.inf partyline.cat partyline.pdb partyline-test.cer partyline.exe; do
  if [ ! -s "$package/$file" ]; then
    echo "error: the package lacks $file" >&2
    exit 1
  fi
done
echo "packaged: $package"
ls -l "$package"
