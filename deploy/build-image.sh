#!/usr/bin/env bash
# Builds Valet's container image without a container engine and without pulling a base image:
# an OCI image layout made with umoci (Debian: apt-get install umoci) from a locally built
# binary plus the shared libraries ldd names for it.
#
#   deploy/build-image.sh BINARY OUT_DIR [TAG]
#   deploy/build-image.sh target/release/valet /tmp/valet-oci 0.1.0
#
# OUT_DIR/oci is an OCI image layout holding OUT_DIR/oci:TAG. Push it with skopeo (Debian:
# apt-get install skopeo):  skopeo copy oci:OUT_DIR/oci:TAG docker://REGISTRY/valet:TAG
# The image matches deploy/Dockerfile's runtime stage: /usr/local/bin/valet, ENTRYPOINT
# [valet, serve], USER 65532:65532, VALET_DATA_DIR=/tmp/valet, a writable /tmp, the host's CA
# bundle. The libraries come from this machine, so build on the same Debian release the
# binary was linked on (bookworm here), for the same architecture.
set -euo pipefail

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    echo "usage: $0 BINARY OUT_DIR [TAG]" >&2
    exit 2
fi
binary=$1
out=$2
tag=${3:-latest}
command -v umoci >/dev/null || { echo "umoci is not installed (apt-get install umoci)" >&2; exit 1; }
[ -x "$binary" ] || { echo "$binary is not an executable file" >&2; exit 1; }

rootless=()
[ "$(id -u)" -eq 0 ] || rootless=(--rootless)

layout=$out/oci
bundle=$(mktemp -d)
trap 'rm -rf "$bundle"' EXIT
rm -rf "$layout"
mkdir -p "$out"

umoci init --layout "$layout"
umoci new --image "$layout:$tag"
umoci unpack "${rootless[@]}" --image "$layout:$tag" "$bundle/b"
rootfs=$bundle/b/rootfs

install -D -m 0755 "$binary" "$rootfs/usr/local/bin/valet"

# Every shared library the binary needs, at the path the loader will look for it. A static
# binary has none ("not a dynamic executable").
while read -r lib; do
    [ -n "$lib" ] || continue
    install -D -m 0755 "$(readlink -f "$lib")" "$rootfs$lib"
done < <(ldd "$binary" 2>/dev/null | awk '/=> \//{print $3} /^\s*\/[^ ]+/{print $1}' | sort -u)

# What a program expects of a minimal system (distroless has the same).
mkdir -p "$rootfs/etc" "$rootfs/tmp" "$rootfs/etc/ssl/certs"
chmod 1777 "$rootfs/tmp"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$rootfs/etc/group"
install -d -m 0755 -o 65532 -g 65532 "$rootfs/home/nonroot" 2>/dev/null || install -d -m 0755 "$rootfs/home/nonroot"
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
fi

umoci repack --image "$layout:$tag" "$bundle/b"

arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
umoci config --image "$layout:$tag" \
    --os linux --architecture "$arch" \
    --config.user 65532:65532 \
    --config.workingdir / \
    --config.entrypoint /usr/local/bin/valet --config.entrypoint serve \
    --config.env VALET_DATA_DIR=/tmp/valet \
    --config.env PATH=/usr/local/bin:/usr/bin:/bin \
    --config.exposedports 8080/tcp \
    --clear=config.cmd
umoci gc --layout "$layout"

echo "built $layout:$tag"
umoci stat --image "$layout:$tag" --json >/dev/null
