//! Files kept for one boot (the kallsyms record, the vmlinux BTF facts):
//! where they live, which of them are trusted, and how they are written.
//!
//! A kept file is trusted only when it is a regular file (no symlink is
//! followed) owned by root or by this process's user and writable by
//! nobody else, in a directory of the same kind. It is written as a
//! temporary file renamed over the old one, mode 0600 in a directory
//! created mode 0700, so a reader never sees half of one.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The directory the `ksymrelo` command keeps its per-boot files in.
pub const DIR: &str = "/run/ksymrelo";

/// This boot's id (`/proc/sys/kernel/random/boot_id`), empty if unreadable;
/// read once per process.
pub fn boot_id() -> String {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default()
    })
    .clone()
}

/// Opens the kept file at `path` for reading if it is trusted (see the
/// module documentation).
pub(crate) fn open_trusted(path: &Path) -> Option<File> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .ok()?;
    let dir = path.parent().and_then(|d| std::fs::metadata(d).ok())?;
    let meta = file.metadata().ok()?;
    (meta.is_file() && trusted(&meta) && trusted(&dir)).then_some(file)
}

/// Writes `bytes` to `path` (see the module documentation).
pub(crate) fn save(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let base = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp: PathBuf = dir.join(format!(".{base}.{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_data());
    drop(file);
    match written.and_then(|()| std::fs::rename(&tmp, path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Owned by root or by us, and writable by no one else.
fn trusted(meta: &std::fs::Metadata) -> bool {
    let uid = meta.uid();
    (uid == 0 || Some(uid) == own_uid()) && meta.permissions().mode() & 0o022 == 0
}

/// This process's effective uid: `/proc/self` belongs to it.
fn own_uid() -> Option<u32> {
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}
