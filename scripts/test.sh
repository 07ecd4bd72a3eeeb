#!/usr/bin/env bash
# Runs every test prescale has, installing what they need first. This is the README's test
# command and what CI runs (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "test.sh: cargo not found; install the Rust toolchain (rustup, Rust >= 1.89) first" >&2
  exit 1
fi
scripts/install-test-deps.sh
# A CI run builds once from a clean clone: incremental compilation's bookkeeping would only slow it.
if [[ "${CI:-}" == "true" ]]; then
  export CARGO_INCREMENTAL=0
fi
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt

echo "== format"
cargo fmt --all -- --check
echo "== clippy (also type-checks the benches)"
cargo clippy --all-targets --locked -- -D warnings
echo "== docs (broken intra-doc links and links to private items fail)"
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps
echo "== tests"
# Library, binary and integration tests (the integration tests start real Prometheus servers on
# loopback), then doc tests. Benches are not run here: `cargo bench` measures them.
cargo test --locked --lib --bins --tests
cargo test --locked --doc
