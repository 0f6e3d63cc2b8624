#!/usr/bin/env bash
# Builds the container image model-monitor:<version of Cargo.toml> with
# buildah, as root and without a daemon: a static musl binary built here
# (`cargo build --profile image --target x86_64-unknown-linux-musl`), put
# into the image by the Containerfile's final stage (the `build` stage,
# which compiles inside rust:bookworm for Docker and Podman users, is
# replaced by the directory this script fills, so nothing is pulled).
#
#   scripts/build-image.sh                 # build and tag the image
#   scripts/build-image.sh --export DIR    # also unpack it: DIR/rootfs,
#                                          # DIR/image.json (buildah inspect),
#                                          # DIR/tag
#
# The integration test `image` runs the exported root filesystem's
# entrypoint in a chroot as the image's user; scripts/test.sh exports it and
# sets MODEL_MONITOR_IMAGE_DIR. Storage driver vfs and chroot isolation work
# in containers and sandboxes without overlayfs or user namespaces; set
# STORAGE_DRIVER to use another driver.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

export_dir=""
while [ $# -gt 0 ]; do
  case $1 in
    --export) export_dir=$2; shift 2 ;;
    --export=*) export_dir=${1#--export=}; shift ;;
    *) echo "unknown argument: $1 (expected --export DIR)" >&2; exit 2 ;;
  esac
done

# musl when its Rust target is installed or can be (MODEL_MONITOR_IMAGE_TARGET
# chooses); otherwise glibc linked statically (+crt-static), whose built-in
# "files" and "dns" lookups need no NSS modules in the image.
target=${MODEL_MONITOR_IMAGE_TARGET:-}
if [ -z "$target" ]; then
  target=x86_64-unknown-linux-musl
  if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed | grep -qx "$target"; then
    if ! rustup target add "$target"; then
      echo "cannot install the $target target; building a static glibc binary instead" >&2
      target=x86_64-unknown-linux-gnu
    fi
  fi
fi
case $target in
  *-musl) ensure_packages buildah:buildah musl-gcc:musl-tools ;;
  *-gnu)
    ensure_packages buildah:buildah
    # With --target, these flags reach the binary only, not build scripts.
    export RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static"
    ;;
  *) echo "unsupported image target: $target" >&2; exit 2 ;;
esac

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
tag="model-monitor:$version"
target_dir=${CARGO_TARGET_DIR:-target}
export BUILDAH_ISOLATION=chroot
buildah_() { buildah --storage-driver "${STORAGE_DRIVER:-vfs}" "$@"; }

echo "== cargo build --profile image --target $target" >&2
cargo build --locked --profile image --target "$target" --bin model-monitor
binary="$target_dir/$target/image/model-monitor"

# What the Containerfile's `build` stage leaves in /out.
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
mkdir -p "$context/out/storage"
cp "$binary" "$context/out/model-monitor"
cp /etc/ssl/certs/ca-certificates.crt "$context/out/ca-certificates.crt"
cp deploy/image/passwd deploy/image/group "$context/out/"

echo "== buildah build -t $tag" >&2
buildah_ build --isolation chroot --quiet \
  --build-context "build=$context" -f Containerfile -t "$tag" "$context" >/dev/null
buildah_ images --format '{{.Name}}:{{.Tag}} {{.Size}}' "$tag"

if [ -n "$export_dir" ]; then
  rm -rf "$export_dir"
  mkdir -p "$export_dir/rootfs"
  container=$(buildah_ from --quiet "$tag")
  mount=$(buildah_ mount "$container")
  cp -a "$mount/." "$export_dir/rootfs/"
  buildah_ umount "$container" >/dev/null
  buildah_ rm "$container" >/dev/null
  buildah_ inspect --type image "$tag" >"$export_dir/image.json"
  echo "$tag" >"$export_dir/tag"
  echo "exported $tag to $export_dir" >&2
fi
