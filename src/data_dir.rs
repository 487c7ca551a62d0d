//! The data directory's own files: key files made at first start (`jwt-secret`, `mfa-key`)
//! and other private files (`initial-admin-password`), readable by their owner only.

use std::io::Write as _;
use std::path::Path;

use rand::rngs::OsRng;

/// Creates the data directory if it is missing.
pub fn create(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))
}

/// A key file of the data directory: its bytes, or `len` fresh random bytes written with mode
/// 0600 at first start. A file shorter than `len` is an error, never silently replaced.
pub fn load_or_create_key(path: &Path, len: usize) -> Result<Vec<u8>, String> {
    match std::fs::read(path) {
        Ok(bytes) if bytes.len() >= len => Ok(bytes),
        Ok(_) => Err(format!("{} is shorter than {len} bytes", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = vec![0u8; len];
            rand::RngCore::fill_bytes(&mut OsRng, &mut bytes);
            write_private_file(path, &bytes)?;
            Ok(bytes)
        }
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Writes `contents` to a new file readable by its owner only, replacing any older one.
pub fn write_private_file(path: &Path, contents: &[u8]) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("writing {}: {e}", path.display());
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(fail)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(fail)?;
    }
    file.write_all(contents).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    Ok(())
}
