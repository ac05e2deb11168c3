//! Generates the protobuf types with protox (pure Rust): there is no `protoc` to rely on.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["proto/metrics.proto", "proto/store.proto"];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    let descriptors = protox::compile(protos, ["proto"])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
