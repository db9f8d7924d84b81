#!/bin/sh
# Makes the X.509 certificates for NBD over TLS between a board and its clients, in the layout
# qemu-nbd, nbdkit, libnbd and ssd-board read (--tls-certificates DIR):
#   OUT/ca/      ca-cert.pem, ca-key.pem      the authority: keep ca-key.pem off the board
#   OUT/server/  ca-cert.pem, server-cert.pem, server-key.pem    for the board (/etc/ssd-board/tls)
#   OUT/client/  ca-cert.pem, client-cert.pem, client-key.pem    for each client (ssdhost, nbdinfo, qemu)
# Usage: make-tls-certificates.sh HOSTNAME [OUT] [CLIENT-NAME]
#   HOSTNAME     the name clients use for the board (raspberrypi.local); an IP address works too
# Needs certtool (Debian: gnutls-bin). Run it again with another CLIENT-NAME and the same OUT to
# add a client: the authority is kept.
set -eu
host=${1:?usage: make-tls-certificates.sh HOSTNAME [OUT] [CLIENT-NAME]}
out=${2:-tls}
client=${3:-client}
command -v certtool >/dev/null || { echo "certtool not found: sudo apt install gnutls-bin" >&2; exit 2; }
umask 077
mkdir -p "$out/ca" "$out/server" "$out/client"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ ! -f "$out/ca/ca-key.pem" ]; then
  certtool --generate-privkey --outfile "$out/ca/ca-key.pem" 2>/dev/null
  printf 'cn = ssd-board TLS authority\nca\ncert_signing_key\nexpiration_days = 3650\n' > "$tmp/ca.info"
  certtool --generate-self-signed --load-privkey "$out/ca/ca-key.pem" --template "$tmp/ca.info" --outfile "$out/ca/ca-cert.pem" 2>/dev/null
fi

case "$host" in
  *[!0-9.]*) name="dns_name = $host" ;;
  *) name="ip_address = $host" ;;
esac
certtool --generate-privkey --outfile "$out/server/server-key.pem" 2>/dev/null
printf 'cn = %s\n%s\ndns_name = localhost\nip_address = 127.0.0.1\ntls_www_server\nencryption_key\nsigning_key\nexpiration_days = 3650\n' "$host" "$name" > "$tmp/server.info"
certtool --generate-certificate --load-ca-certificate "$out/ca/ca-cert.pem" --load-ca-privkey "$out/ca/ca-key.pem" \
  --load-privkey "$out/server/server-key.pem" --template "$tmp/server.info" --outfile "$out/server/server-cert.pem" 2>/dev/null

certtool --generate-privkey --outfile "$out/client/client-key.pem" 2>/dev/null
printf 'cn = %s\ntls_www_client\nencryption_key\nsigning_key\nexpiration_days = 3650\n' "$client" > "$tmp/client.info"
certtool --generate-certificate --load-ca-certificate "$out/ca/ca-cert.pem" --load-ca-privkey "$out/ca/ca-key.pem" \
  --load-privkey "$out/client/client-key.pem" --template "$tmp/client.info" --outfile "$out/client/client-cert.pem" 2>/dev/null

cp "$out/ca/ca-cert.pem" "$out/server/ca-cert.pem"
cp "$out/ca/ca-cert.pem" "$out/client/ca-cert.pem"
echo "made $out/server (for the board) and $out/client (for $client), signed by $out/ca"
