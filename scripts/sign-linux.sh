#!/usr/bin/env bash
# Test-sign partyline.sys on Linux: Authenticode (SHA-256) with osslsigncode and a self-signed
# code-signing certificate made with openssl. For test machines with `bcdedit /set testsigning on`
# only; see docs/INSTALL.md. Windows builds use scripts/sign-windows.cmd (signtool + inf2cat).
#
# usage: scripts/sign-linux.sh <input.sys> <output.sys> <certificate-dir>
#   The certificate and key are made once in <certificate-dir> (partyline-test.pem/.key, and
#   partyline-test.cer, the DER form to import on the test machine) and reused after that.
#   <output.sys> may be <input.sys>. The signature is verified before the script succeeds.
set -euo pipefail

if [ "$#" -ne 3 ]; then
  echo "usage: $0 <input.sys> <output.sys> <certificate-dir>" >&2
  exit 2
fi
input=$1
output=$2
cert_dir=$3

for tool in openssl osslsigncode; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "error: $tool is not installed (Debian/Ubuntu: apt-get install -y $tool)" >&2
    exit 1
  fi
done
if [ ! -f "$input" ]; then
  echo "error: $input does not exist (build it with \`cargo make driver\` or \`cargo build -p partyline-image --release\`)" >&2
  exit 1
fi

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
  openssl x509 -in "$cert" -outform DER -out "$cert_dir/partyline-test.cer"
fi

echo "== signing $input -> $output"
unsigned=$(mktemp "${output}.XXXXXX")
signed=$(mktemp "${output}.XXXXXX")
trap 'rm -f "$unsigned" "$signed"' EXIT
cp "$input" "$unsigned"
rm -f "$signed" # osslsigncode refuses to overwrite
osslsigncode sign -certs "$cert" -key "$key" -h sha256 -ph \
  -n "partyline" -i "https://example.invalid/partyline" \
  -in "$unsigned" -out "$signed"

echo "== verifying"
osslsigncode verify -CAfile "$cert" -in "$signed"
mv "$signed" "$output"
echo "signed: $output (certificate: $cert_dir/partyline-test.cer)"
