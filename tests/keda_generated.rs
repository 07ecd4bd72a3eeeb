//! The committed Rust code of KEDA's external-scaler interface
//! (`src/export/keda/generated/externalscaler.rs`) is exactly what `tonic-prost-build` makes of
//! `proto/externalscaler.proto` today, so the two cannot drift apart: building prescale needs
//! no protoc, but changing the proto without regenerating fails here.
//!
//! Needs `protoc` (Debian's `protobuf-compiler`, installed by `scripts/install-test-deps.sh`).
//! After a deliberate change to the proto, regenerate with
//! `PRESCALE_REGENERATE=1 cargo test --test keda_generated` and commit the result.

use std::path::Path;

const PROTO: &str = "proto/externalscaler.proto";
const COMMITTED: &str = "src/export/keda/generated/externalscaler.rs";

/// Runs the same generator configuration as the committed file was made with: messages, the
/// server and the client (the tests talk to the server through the generated client).
fn generate(out: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .build_transport(true)
        .emit_rerun_if_changed(false)
        .out_dir(out)
        .compile_protos(&[root.join(PROTO)], &[root.join("proto")])
        .unwrap_or_else(|e| {
            panic!("protoc on {PROTO} failed (is protobuf-compiler installed? see scripts/install-test-deps.sh): {e}")
        });
}

#[test]
fn committed_code_is_what_the_proto_generates() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path());
    let fresh_path = dir.path().join("externalscaler.rs");
    let fresh = std::fs::read_to_string(&fresh_path)
        .unwrap_or_else(|e| panic!("{}: {e}", fresh_path.display()));
    let committed_path = Path::new(env!("CARGO_MANIFEST_DIR")).join(COMMITTED);
    if std::env::var_os("PRESCALE_REGENERATE").is_some() {
        std::fs::write(&committed_path, &fresh).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&committed_path)
        .unwrap_or_else(|e| panic!("{}: {e}", committed_path.display()));
    if fresh != committed {
        let line = fresh
            .lines()
            .zip(committed.lines())
            .position(|(a, b)| a != b)
            .map_or_else(
                || fresh.lines().count().min(committed.lines().count()) + 1,
                |i| i + 1,
            );
        panic!(
            "{COMMITTED} differs from what {PROTO} generates (first at line {line}); \
             regenerate with PRESCALE_REGENERATE=1 cargo test --test keda_generated"
        );
    }
}
