#!/usr/bin/env bash
# Installs what the test suite needs beyond the Rust toolchain: Debian's Prometheus server,
# promtool and node_exporter (the collector and exporter tests run a real server on loopback),
# and single-node VictoriaMetrics (the collector is also tested against a second
# Prometheus-compatible store; the package's binary is `victoria-metrics`), and protoc
# (protobuf-compiler: tests/keda_generated.rs regenerates the committed KEDA gRPC code with it;
# building prescale itself needs no protoc).
# Idempotent: does nothing when they are already there.
set -euo pipefail

need=()
if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
  need+=(prometheus)
fi
command -v prometheus-node-exporter >/dev/null 2>&1 || need+=(prometheus-node-exporter)
command -v victoria-metrics >/dev/null 2>&1 || need+=(victoria-metrics)
command -v protoc >/dev/null 2>&1 || need+=(protobuf-compiler)
[ ${#need[@]} -eq 0 ] && exit 0

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo=(sudo); else
    echo "install-test-deps: need root or sudo to apt-get install ${need[*]}" >&2
    exit 1
  fi
fi
echo "install-test-deps: installing ${need[*]} from Debian's packages" >&2
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
  "${need[@]}" >/dev/null
