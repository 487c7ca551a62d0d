//! The data directory and the files in it: created readable by their owner only whatever the
//! process umask (the directory 0700, every file 0600), key files (`jwt-secret`, `mfa-key`)
//! made once and never overwritten, even by two processes starting together.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use rand::rngs::OsRng;

#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};

/// Mode bits that let anyone but the owner in.
#[cfg(unix)]
const OTHERS: u32 = 0o077;

/// Tightens `path` to `mode` if it lets others in, saying so.
#[cfg(unix)]
pub fn tighten(path: &Path, mode: u32) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.permissions().mode() & OTHERS != 0 {
        tracing::warn!(
            "{} was readable by other users (mode {:o}); set to {mode:o}",
            path.display(),
            meta.permissions().mode() & 0o777
        );
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

#[cfg(not(unix))]
pub fn tighten(_path: &Path, _mode: u32) -> Result<(), String> {
    Ok(())
}

/// Creates the data directory (0700) if it is missing; tightens it if others may enter.
pub fn create(dir: &Path) -> Result<(), String> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(0o700);
    builder
        .create(dir)
        .map_err(|e| format!("creating {}: {e}", dir.display()))?;
    tighten(dir, 0o700)
}

/// Makes sure the database file exists with mode 0600 before SQLite opens it: SQLite gives its
/// `-wal` and `-shm` files the database file's mode. Existing ones that let others in are
/// tightened.
pub fn prepare_database(path: &Path) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true);
    #[cfg(unix)]
    options.mode(0o600);
    options
        .open(path)
        .map_err(|e| format!("creating {}: {e}", path.display()))?;
    for companion in [
        path.to_path_buf(),
        with_suffix(path, "-wal"),
        with_suffix(path, "-shm"),
    ] {
        if companion.exists() {
            tighten(&companion, 0o600)?;
        }
    }
    Ok(())
}

/// `path` with `suffix` appended to its file name (`claribi.db` -> `claribi.db-wal`).
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

const LOCK_FILE: &str = "claribi.lock";

/// What `serve` holds for its lifetime: a shared lock on `<data_dir>/claribi.lock` (several
/// servers may share a data directory), which `restore` needs exclusively.
pub fn lock_shared(dir: &Path) -> Result<std::fs::File, String> {
    let file = open_lock(dir)?;
    file.lock_shared()
        .map_err(|e| format!("locking {}: {e}", dir.join(LOCK_FILE).display()))?;
    Ok(file)
}

/// The lock `restore` takes: `None` while a server holds its shared lock.
pub fn try_lock_exclusive(dir: &Path) -> Result<Option<std::fs::File>, String> {
    let file = open_lock(dir)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(format!("locking {}: {e}", dir.join(LOCK_FILE).display()))
        }
    }
}

fn open_lock(dir: &Path) -> Result<std::fs::File, String> {
    create(dir)?;
    let path = dir.join(LOCK_FILE);
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true);
    #[cfg(unix)]
    options.mode(0o600);
    options
        .open(&path)
        .map_err(|e| format!("opening {}: {e}", path.display()))
}

/// A new file readable by its owner only; an existing one is an error (never replaced).
pub fn create_private_new(path: &Path) -> Result<std::fs::File, String> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    options
        .open(path)
        .map_err(|e| format!("creating {}: {e}", path.display()))
}

/// A key file of the data directory: its bytes, or `len` fresh random bytes made at first
/// start. The new key is written to a temporary file and linked into place, which fails if
/// another process made the key first: then that key is used. A file shorter than `len` is an
/// error, never replaced; one that others may read is tightened to 0600 with a warning.
pub fn load_or_create_key(path: &Path, len: usize) -> Result<Vec<u8>, String> {
    match std::fs::read(path) {
        Ok(bytes) if bytes.len() >= len => {
            tighten(path, 0o600)?;
            Ok(bytes)
        }
        Ok(_) => Err(format!("{} is shorter than {len} bytes", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = vec![0u8; len];
            rand::RngCore::fill_bytes(&mut OsRng, &mut bytes);
            let mut suffix = [0u8; 8];
            rand::RngCore::fill_bytes(&mut OsRng, &mut suffix);
            let temporary = with_suffix(path, &format!(".{}.tmp", crate::domain::hex(&suffix)));
            let written = write_new(&temporary, &bytes);
            let linked = written.and_then(|()| {
                std::fs::hard_link(&temporary, path).map_err(|e| (e, format!("{}", path.display())))
            });
            let _ = std::fs::remove_file(&temporary);
            match linked {
                Ok(()) => {
                    sync_dir(path);
                    Ok(bytes)
                }
                // Another process made it between our read and our link: theirs is the key.
                Err((e, _)) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    load_or_create_key(path, len)
                }
                Err((e, what)) => Err(format!("writing {what}: {e}")),
            }
        }
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

fn write_new(path: &Path, contents: &[u8]) -> Result<(), (std::io::Error, String)> {
    let what = || path.display().to_string();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path).map_err(|e| (e, what()))?;
    file.write_all(contents).map_err(|e| (e, what()))?;
    file.sync_all().map_err(|e| (e, what()))
}

/// Syncs the directory of `path`, so that a new name in it survives a crash (best effort).
pub fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent() {
        if let Ok(dir) = std::fs::File::open(dir) {
            let _ = dir.sync_all();
        }
    }
}

/// Writes `contents` to a file readable by its owner only, replacing any older one.
pub fn write_private_file(path: &Path, contents: &[u8]) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("writing {}: {e}", path.display());
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path).map_err(fail)?;
    #[cfg(unix)]
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(fail)?;
    file.write_all(contents).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn two_makers_of_one_key_file_end_with_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mfa-key");
        let keys: Vec<Vec<u8>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| load_or_create_key(&path, 32).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(
            keys.windows(2).all(|w| w[0] == w[1]),
            "a key was overwritten"
        );
        assert_eq!(std::fs::read(&path).unwrap(), keys[0]);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "temporary files left behind");
    }

    #[test]
    fn a_key_file_readable_by_others_is_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwt-secret");
        std::fs::write(&path, [7u8; 32]).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(load_or_create_key(&path, 32).unwrap(), vec![7u8; 32]);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
