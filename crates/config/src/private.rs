//! Files holding secrets or personal data (keys, the user directory, audit logs and
//! spools, stored sessions) are created readable by their owner only, whatever the
//! process umask says.

use std::fs::{DirBuilder, OpenOptions};
use std::io;
use std::path::Path;

/// Options that create a file with mode 0600 (on Unix); add `write`, `append`, `create`
/// as needed. An existing file keeps its mode.
pub fn file_options() -> OpenOptions {
    #[allow(unused_mut)] // only Unix sets a mode
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options
}

/// Creates `dir` and any missing parents, each new one with mode 0700 (on Unix).
pub fn create_dir(dir: &Path) -> io::Result<()> {
    let mut builder = DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Creates `path` empty with mode 0600 if it does not exist, so a library that creates
/// it on first open (SQLite, redb) finds a private file.
pub fn precreate(path: &Path) -> io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_dir(dir)?;
    }
    match file_options().write(true).create_new(true).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn new_private_files_and_folders_are_owner_only() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("a/b/data.db");
        precreate(&file).expect("created");
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(&dir.path().join("a/b")), 0o700);
        precreate(&file).expect("an existing file is left alone");
    }
}
