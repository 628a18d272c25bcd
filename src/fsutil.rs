//! Small file-system helpers: private directories and files, atomic replacement of
//! small files, directory fsync.

use std::fs::{self, File, OpenOptions};
use std::path::Path;

/// Creates `dir` (and parents) readable only by the owner (0700 on Unix).
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Creates a new file readable only by the owner (0600 on Unix); fails if it exists.
pub fn create_private_file(path: &Path) -> std::io::Result<File> {
    let mut o = OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
}

/// A new random 32-byte key seed written to `path` (its directory created private, the
/// file atomically, mode 0600): the checkpoint signing key's and a witness's.
///
/// # Errors
/// I/O errors, or no randomness.
pub fn create_seed(path: &Path, scope: &str) -> std::io::Result<[u8; 32]> {
    if let Some(parent) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_private_dir(parent)?;
    }
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(|e| std::io::Error::other(format!("no randomness: {e}")))?;
    write_atomic(path, &seed, scope)?;
    Ok(seed)
}

/// Replaces the small file `path` with `bytes` so that a crash at any moment leaves
/// either the old file whole or the new one whole, and once this returns the new one
/// survives a crash: write a temporary file beside it (mode 0600), fsync it, rename it
/// over `path`, fsync the directory. Every small file the ledger keeps goes through here
/// (checkpoints, keys, the `LEDGER` file, vault secret and salts, principals, an
/// auditor's saved state); `scope` names the ledger for fault injection
/// (`crate::failpoint`, point `atomic.write`, between the fsync and the rename).
///
/// # Errors
/// Any I/O error; the temporary file is removed and `path` is left as it was.
pub fn write_atomic(path: &Path, bytes: &[u8], scope: &str) -> std::io::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| std::io::Error::other(format!("{} names no file", path.display())))?;
    let mut tmp_name = name.to_os_string();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    // A temporary file left by a crash is garbage: never a version of the file.
    match fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let written = (|| {
        let mut f = create_private_file(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        crate::failpoint::pass("atomic.write", scope)?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(dir)
}

/// Makes a directory's entries (new or renamed files) durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Bytes an unprivileged writer may still use on the file system holding `dir`.
pub fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).map_err(|_| std::io::Error::other("a NUL byte in the path"))?;
        let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
        // SAFETY: `path` is NUL-terminated and `st` is written by statvfs before it is read.
        let rc = unsafe { libc::statvfs(path.as_ptr(), st.as_mut_ptr()) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: statvfs returned 0, so it filled `st`.
        let st = unsafe { st.assume_init() };
        #[allow(clippy::unnecessary_cast)] // the field widths differ between platforms
        Ok((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_atomic_write_replaces_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        write_atomic(&p, b"one", "fsutil-test").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"one");
        // A stale temporary file from a crash does not stop the next write.
        fs::write(dir.path().join("f.tmp"), b"garbage").unwrap();
        write_atomic(&p, b"two", "fsutil-test").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        crate::failpoint::arm("atomic.write", "fsutil-test-fail", crate::failpoint::Action::Error, None);
        assert!(write_atomic(&p, b"three", "fsutil-test-fail").is_err());
        crate::failpoint::disarm("atomic.write", "fsutil-test-fail");
        assert_eq!(fs::read(&p).unwrap(), b"two", "a failed write leaves the old file");
        assert!(!dir.path().join("f.tmp").exists(), "and no temporary file");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
}
