fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = "../../proto";
    let files = [
        "../../proto/livecast/v1/events.proto",
        "../../proto/livecast/v1/catalogue.proto",
        "../../proto/livecast/v1/ingest.proto",
        "../../proto/livecast/v1/worker.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_protos(&files, &[root])?;
    Ok(())
}
