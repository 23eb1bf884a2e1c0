//! Generates the Rust code for `proto/*.proto` (prost messages, tonic client
//! and server) into `OUT_DIR`.
//!
//! protoc comes from protoc-bin-vendored, so no system protoc is needed. It is
//! passed through `prost_build::Config::protoc_executable` rather than the
//! `PROTOC` environment variable, because `std::env::set_var` is `unsafe` in
//! edition 2024 (and the workspace denies `unsafe_code`).

use std::error::Error;

/// The .proto files compiled into this crate, relative to the crate root.
const PROTOS: &[&str] = &["proto/peer.proto"];
/// Import root for `PROTOS`.
const INCLUDES: &[&str] = &["proto"];

fn main() -> Result<(), Box<dyn Error>> {
    // Neither prost-build nor tonic-prost-build (0.14) emits rerun-if-changed
    // lines; without any, cargo would re-run this script whenever any file of
    // the package changes. With them, only these files trigger a re-run.
    println!("cargo:rerun-if-changed=build.rs");
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }

    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    // Every `bytes` field becomes `bytes::Bytes` instead of `Vec<u8>`: decoding
    // slices the received buffer instead of copying forwarded commands,
    // replies and records.
    config.bytes(["."]);

    tonic_prost_build::configure().compile_with_config(config, PROTOS, INCLUDES)?;
    Ok(())
}
