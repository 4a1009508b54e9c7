#!/usr/bin/env bash
# Test-sign a partyline package folder on Linux: what inf2cat + signtool do on Windows.
#   1. a self-signed code-signing certificate (openssl), made once in <certificate-dir> and reused;
#   2. partyline.sys signed in place (osslsigncode, Authenticode SHA-256, page hashes);
#   3. partyline.cat made by the project (crates/partyline-catalog: the Authenticode hash of the
#      signed .sys and the SHA-256 of the .inf, with the attributes inf2cat writes) and signed
#      by osslsigncode;
#   4. partyline-test.cer (DER) copied into the package for the test machine;
#   5. both signatures verified with osslsigncode, the .sys against the catalog too.
# For test machines with `bcdedit /set testsigning on` only; see docs/INSTALL.md. Windows:
# scripts/sign-windows.cmd.
#
# usage: scripts/sign-linux.sh <package-dir> <certificate-dir>
#   <package-dir> holds partyline.sys and partyline.inf (scripts/package.sh assembles it).
#   PARTYLINE_TOOL_PROFILE: the cargo profile partyline-catalog is built with (default release).
set -euo pipefail

if [ "$#" -ne 2 ]; then
  echo "usage: $0 <package-dir> <certificate-dir>" >&2
  exit 2
fi
package=$1
cert_dir=$2
root=$(cd "$(dirname "$0")/.." && pwd)
profile=${PARTYLINE_TOOL_PROFILE:-release}

for tool in openssl osslsigncode cargo; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "error: $tool is not installed (Debian/Ubuntu: apt-get install -y $tool)" >&2
    exit 1
  fi
done
for file in partyline.sys partyline.inf; do
  if [ ! -f "$package/$file" ]; then
    echo "error: $package/$file does not exist (scripts/package.sh assembles the package)" >&2
    exit 1
  fi
done

mkdir -p "$cert_dir"
cert="$cert_dir/partyline-test.pem"
key="$cert_dir/partyline-test.key"
if [ ! -f "$cert" ] || [ ! -f "$key" ]; then
  echo "== making a self-signed test code-signing certificate in $cert_dir"
  openssl req -x509 -newkey rsa:3072 -sha256 -nodes -days 3650 \
    -subj "/CN=partyline test signing (not trusted)" \
    -addext "keyUsage=critical,digitalSignature" \
    -addext "extendedKeyUsage=codeSigning" \
    -keyout "$key" -out "$cert" 2>/dev/null
fi
openssl x509 -in "$cert" -outform DER -out "$cert_dir/partyline-test.cer"

work=$(mktemp -d "${TMPDIR:-/tmp}/partyline-sign.XXXXXX")
trap 'rm -rf "$work"' EXIT

sign() { # <in> <out>: osslsigncode refuses to overwrite, so sign into the work folder first
  rm -f "$work/signed"
  osslsigncode sign -certs "$cert" -key "$key" -h sha256 "$@" \
    -n "partyline" -i "https://example.invalid/partyline" -in "$work/unsigned" -out "$work/signed"
}

echo "== signing partyline.sys"
# Any earlier embedded signature is removed first, so that signing twice gives one signature.
if osslsigncode remove-signature -in "$package/partyline.sys" -out "$work/unsigned" >/dev/null 2>&1; then :; else
  cp "$package/partyline.sys" "$work/unsigned"
fi
sign -ph
mv "$work/signed" "$package/partyline.sys"

echo "== making partyline.cat"
# After signing the .sys: the Authenticode hash leaves the signature out, but signing pads the
# image, so the catalog lists the signed file's hash (the one Windows computes).
(cd "$root" && "${CARGO:-cargo}" run -q --locked --profile "$profile" -p partyline-catalog -- \
  --out "$work/unsigned" --hwid PL_PARTYLINE "$package/partyline.inf" "$package/partyline.sys")
echo "== signing partyline.cat"
sign
mv "$work/signed" "$package/partyline.cat"
cp "$cert_dir/partyline-test.cer" "$package/partyline-test.cer"

echo "== verifying"
osslsigncode verify -CAfile "$cert" -in "$package/partyline.sys"
osslsigncode verify -CAfile "$cert" -in "$package/partyline.cat"
osslsigncode verify -CAfile "$cert" -catalog "$package/partyline.cat" -in "$package/partyline.sys"
echo "signed: $package/partyline.sys and $package/partyline.cat (certificate: $package/partyline-test.cer)"
