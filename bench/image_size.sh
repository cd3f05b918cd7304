#!/usr/bin/env bash
# Size of the Docker image above its base (python:3.11-slim), and its biggest layers.
# Builds the image from this checkout unless IMAGE names one already built.
# Run: bash bench/image_size.sh            (needs a running Docker engine and the base image;
#      ../shared/tools/docker-base.sh makes both on a machine without Docker Hub)
set -euo pipefail
cd "$(dirname "$0")/.."
base=python:3.11-slim
image="${IMAGE:-aiinfra-digest:size-bench}"
if [ -z "${IMAGE:-}" ]; then
    docker build -q -t "$image" . >/dev/null
fi
base_bytes=$(docker image inspect -f '{{.Size}}' "$base")
image_bytes=$(docker image inspect -f '{{.Size}}' "$image")
above=$(( (image_bytes - base_bytes) / 1000000 ))
echo "base $base: $(( base_bytes / 1000000 )) MB; image $image: $(( image_bytes / 1000000 )) MB"
echo "layers above the base (largest first):"
# History lists the image's own layers first; the base's layers are the last ones, skip them.
base_layers=$(docker history -q "$base" | wc -l)
docker history --no-trunc --format '{{.Size}}\t{{.CreatedBy}}' "$image" \
    | head -n "-$base_layers" | sort -h -r | head -5 | cut -c1-110 | sed 's/^/  /'
verdict=$([ "$above" -le 250 ] && echo OK || echo "TOO BIG")
echo "image size above $base: $above MB (target ≤ 250 MB): $verdict"
