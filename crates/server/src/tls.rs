//! TLS: the operator's certificate, or a development certificate made on first run and kept in
//! the data directory (valid for `localhost` and `127.0.0.1` only).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Paths of the development certificate and key in `data`.
pub fn dev_paths(data: &Path) -> (PathBuf, PathBuf) {
    let dir = data.join("tls");
    (dir.join("dev-cert.pem"), dir.join("dev-key.pem"))
}

/// Returns the development certificate and key, making them on first use. The key file is
/// readable by its owner only.
pub fn dev_certificate(data: &Path) -> Result<(Vec<u8>, Vec<u8>, bool)> {
    let (cert_path, key_path) = dev_paths(data);
    if cert_path.exists() && key_path.exists() {
        return Ok((std::fs::read(&cert_path)?, std::fs::read(&key_path)?, false));
    }
    let dir = cert_path.parent().context("certificate directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
    let certified = rcgen::generate_simple_self_signed(names).context("generating the development certificate")?;
    let cert = certified.cert.pem().into_bytes();
    let key = certified.key_pair.serialize_pem().into_bytes();
    crate::private_file::write(&key_path, &key).with_context(|| format!("writing {}", key_path.display()))?;
    std::fs::write(&cert_path, &cert)?;
    Ok((cert, key, true))
}
