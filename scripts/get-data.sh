#!/usr/bin/env bash
# Fetches a full dataset into data/full/NAME. Usage: scripts/get-data.sh fashion-mnist
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:-}
case "$name" in
  fashion-mnist)
    dst=data/full/fashion-mnist
    mkdir -p "$dst"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    if (cd "$tmp" && apt-get download dataset-fashion-mnist >/dev/null 2>&1); then
      dpkg -x "$tmp"/dataset-fashion-mnist_*.deb "$tmp/x"
      cp "$tmp"/x/usr/share/datasets/fashion-mnist/*-ubyte.gz "$dst/"
    else
      base=http://fashion-mnist.s3-website.eu-central-1.amazonaws.com
      for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
        curl -fsSL -o "$dst/$f.gz" "$base/$f.gz"
      done
    fi
    cp data/fashion-mnist/LICENSE "$dst/"
    echo "Fashion-MNIST (70,000 images) in $dst"
    ;;
  *)
    echo "usage: scripts/get-data.sh fashion-mnist" >&2
    exit 2
    ;;
esac
