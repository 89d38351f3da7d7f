//! Embeds the built web app (`web/dist`) into the crate: writes `$OUT_DIR/assets.rs`, a static
//! table of `Asset`s whose bodies are `include_bytes!` of the built files.
//!
//! Without `web/dist` (npm never ran) the table holds one small page that says how to build the
//! app, so `cargo build` of the workspace never needs npm.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs};

const MISSING_PAGE: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Livecast</title></head>\
<body><main><h1>Livecast</h1><p>web app not built; run <code>make web</code> \
(or <code>npm ci &amp;&amp; npm run build</code> in <code>web/</code>) and rebuild.</p></main></body></html>\n";

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let web_dir = manifest_dir.join("../../web");
    let dist = web_dir.join("dist");
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    println!("cargo:rerun-if-changed=build.rs");

    let mut files = Vec::new();
    let built = dist.join("index.html").is_file();
    if built {
        println!("cargo:rerun-if-changed={}", dist.display());
        collect(&dist, &dist, &mut files);
        files.sort();
    } else {
        // Watch the app's folder so that a later `npm run build` is picked up; without it, a
        // missing path would make Cargo rerun this script on every build.
        if web_dir.is_dir() {
            println!("cargo:rerun-if-changed={}", web_dir.display());
        }
        let page = out_dir.join("missing-index.html");
        fs::write(&page, MISSING_PAGE).expect("write placeholder page");
        files.push(("index.html".to_string(), page));
    }

    let mut table = format!(
        "/// Whether `web/dist` was embedded (else the placeholder page).\nconst BUILT: bool = {built};\n\
         /// Every embedded file of the web app.\npub static ASSETS: &[Asset] = &[\n"
    );
    for (path, file) in &files {
        let file = file.canonicalize().expect("canonical asset path");
        writeln!(
            table,
            "    Asset {{ path: {path:?}, content_type: {:?}, body: include_bytes!({:?}) }},",
            content_type(path),
            file.display().to_string(),
        )
        .expect("write to string");
    }
    table.push_str("];\n");
    fs::write(out_dir.join("assets.rs"), table).expect("write assets.rs");
}

/// Every file under `dir`, as (path relative to `root` with `/` separators, absolute path).
fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            collect(root, &path, files);
        } else if path.is_file() {
            let relative = path.strip_prefix(root).expect("under root");
            let name = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            files.push((name, path));
        }
    }
}

fn content_type(path: &str) -> &'static str {
    let extension = path.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    match extension.to_ascii_lowercase().as_str() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}
