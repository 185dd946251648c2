//! Generates the osam.v1 messages, clients and servers from `proto/` with the vendored protoc,
//! so building needs no system protoc.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = [
        "common.proto",
        "catalog_authz.proto",
        "rights.proto",
        "accounts.proto",
    ]
    .map(|name| proto_root.join("osam/v1").join(name));
    let descriptor_path = PathBuf::from(std::env::var("OUT_DIR")?).join("osam_v1_descriptor.bin");

    let mut prost_config = tonic_prost_build::Config::new();
    prost_config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);

    tonic_prost_build::configure()
        .file_descriptor_set_path(&descriptor_path)
        .compile_with_config(prost_config, &files, std::slice::from_ref(&proto_root))?;

    println!("cargo:rerun-if-changed={}", proto_root.display());
    Ok(())
}
