//! The browser app's static files (built into `target/web` by `scripts/build-web.sh`), served
//! from memory: read once at start-up, so no request ever touches the file system (no path
//! tricks). `index.html` gets the Subresource Integrity hash of every script, style sheet and
//! the wasm module filled in (`{{sri:NAME}}` becomes `sha384-…`, in every HTML file), so the browser refuses any
//! file that differs from what the server hashed.

use std::collections::BTreeMap;
use std::path::Path;

use axum::body::Bytes;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use data_encoding::BASE64;
use sha2::{Digest, Sha384};

/// The largest file served (the wasm module in a debug build is the largest).
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// The app's files, by URL path.
#[derive(Debug, Clone, Default)]
pub struct WebApp {
    /// Shared bytes: answering a request clones a handle, not the file.
    files: BTreeMap<String, (&'static str, Bytes)>,
}

/// The page served when the app has not been built.
const NOT_BUILT: &str = "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>kluis</title>\
<p>The kluis server is running, but its browser app is not built. Run <code>bash scripts/build-web.sh</code> \
(or <code>bash scripts/run.sh</code>, which does it).</p></html>";

fn content_type(path: &str) -> Option<&'static str> {
    let ext = path.rsplit_once('.').map(|(_, e)| e)?;
    Some(match ext {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "wasm" => "application/wasm",
        "svg" => "image/svg+xml",
        "txt" => "text/plain; charset=utf-8",
        _ => return None,
    })
}

/// `sha384-…` of some bytes (the SRI form).
pub fn sri(bytes: &[u8]) -> String {
    format!("sha384-{}", BASE64.encode(&Sha384::digest(bytes)))
}

fn collect(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let meta = entry.metadata()?;
        if meta.is_dir() {
            collect(root, &path, out)?;
        } else if meta.is_file() && meta.len() <= MAX_FILE_BYTES {
            let rel = path.strip_prefix(root).map_err(std::io::Error::other)?;
            let url: Vec<String> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
            out.insert(format!("/{}", url.join("/")), std::fs::read(&path)?);
        }
    }
    Ok(())
}

impl WebApp {
    /// Loads the built app from `dir`; `Ok(None)` if it has not been built.
    pub fn load(dir: &Path) -> std::io::Result<Option<Self>> {
        if !dir.join("index.html").is_file() {
            return Ok(None);
        }
        let mut raw = BTreeMap::new();
        collect(dir, dir, &mut raw)?;
        let mut files = BTreeMap::new();
        for (path, bytes) in &raw {
            if let Some(ct) = content_type(path) {
                files.insert(path.clone(), (ct, Bytes::from(bytes.clone())));
            }
        }
        for (path, bytes) in &raw {
            if !path.ends_with(".html") {
                continue;
            }
            let mut html = String::from_utf8(bytes.clone()).map_err(std::io::Error::other)?;
            while let Some(start) = html.find("{{sri:") {
                let end = html[start..]
                    .find("}}")
                    .map(|e| start + e)
                    .ok_or_else(|| std::io::Error::other(format!("{path}: unclosed {{{{sri:")))?;
                let name = &html[start + 6..end];
                let bytes = raw
                    .get(&format!("/{name}"))
                    .ok_or_else(|| std::io::Error::other(format!("{path} names {name}, which is not built")))?;
                html.replace_range(start..end + 2, &sri(bytes));
            }
            let url = if path == "/index.html" { "/".to_owned() } else { path.clone() };
            files.insert(url, ("text/html; charset=utf-8", Bytes::from(html.into_bytes())));
        }
        files.remove("/index.html");
        Ok(Some(WebApp { files }))
    }

    /// The response for a path, if it is one of the app's files.
    pub fn get(&self, path: &str) -> Option<Response> {
        let (ct, bytes) = self.files.get(path)?;
        let mut res = (StatusCode::OK, bytes.clone()).into_response();
        res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
        Some(res)
    }

    /// How many files it serves.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether it serves nothing.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

/// The response for `/` when the app has not been built.
pub fn not_built() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], NOT_BUILT).into_response()
}
