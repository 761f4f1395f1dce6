//! Compiles `proto/*.proto` with protox (pure Rust, so no system `protoc`) and hands the
//! descriptors to tonic-prost-build. The descriptor set is also written out so the broker can
//! serve gRPC reflection.

use std::path::PathBuf;

fn main() -> anyhow_free::Result {
    let files = [
        "proto/tributary/v1/tributary.proto",
        "proto/tributary/v1/control.proto",
        "proto/tributary/v1/group.proto",
        "proto/tributary/v1/consume.proto",
    ];
    let fds = protox::compile(files, ["proto"])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptor_bytes = prost::Message::encode_to_vec(&fds);
    std::fs::write(out_dir.join("tributary_descriptor.bin"), descriptor_bytes)?;
    tonic_prost_build::configure().bytes(".").compile_fds(fds)?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}

mod anyhow_free {
    pub type Result = std::result::Result<(), Box<dyn std::error::Error>>;
}
