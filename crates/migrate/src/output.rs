//! A file written whole or not at all: the content goes into a temporary file beside the
//! target (mode 0600, created new), is synced to disk, then renamed into place (never over
//! an existing file unless replacing was asked), and the folder is synced. If producing
//! the content fails, the temporary file is deleted and the target is untouched. Every
//! output of every job goes through it: exports, reports, plans, rooms files.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Why an output was not written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The target exists and replacing it was not asked.
    #[error("{} exists; nothing was written", .0.display())]
    Exists(PathBuf),
    /// The file or its folder could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The target.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// A target file, written atomically.
#[derive(Debug, Clone)]
pub struct AtomicFile {
    target: PathBuf,
    replace: bool,
}

impl AtomicFile {
    /// `target`, replaced if it exists only when `replace`.
    pub fn new(target: impl Into<PathBuf>, replace: bool) -> Self {
        AtomicFile {
            target: target.into(),
            replace,
        }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.target
    }

    /// Writes `data` in full, then moves it into place.
    pub fn write(&self, data: &[u8]) -> Result<(), OutputError> {
        self.write_with(&|_| (), |w| {
            w.write_all(data).map_err(|source| self.io(source))
        })
    }

    /// Lets `produce` stream the content; `guard` is told the temporary file's path before
    /// it exists (a front end registers it for removal on a signal) and what it returns is
    /// dropped once the file is in place or gone.
    pub fn write_with<T, E: From<OutputError>, G>(
        &self,
        guard: &dyn Fn(&Path) -> G,
        produce: impl FnOnce(&mut dyn Write) -> Result<T, E>,
    ) -> Result<T, E> {
        let dir = folder_of(&self.target);
        let mut held = None;
        let mut tmp = tempfile::Builder::new()
            .prefix(".matrix-transplant-")
            .suffix(".part")
            .make_in(dir, |path| {
                held = Some(guard(path));
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
            })
            .map_err(|source| OutputError::Io {
                path: dir.to_owned(),
                source,
            })?;
        let value = {
            let mut w = std::io::BufWriter::with_capacity(1 << 16, tmp.as_file_mut());
            let value = produce(&mut w)?;
            w.flush().map_err(|source| self.io(source))?;
            value
        };
        self.place(tmp)?;
        drop(held);
        Ok(value)
    }

    /// Puts the written temporary file in place (never over a file unless `replace`), both
    /// synced to disk.
    fn place(&self, tmp: tempfile::NamedTempFile) -> Result<(), OutputError> {
        tmp.as_file().sync_all().map_err(|source| self.io(source))?;
        let placed = if self.replace {
            tmp.persist(&self.target).map(|_| ())
        } else {
            tmp.persist_noclobber(&self.target).map(|_| ())
        };
        placed.map_err(|e| match e.error.kind() {
            std::io::ErrorKind::AlreadyExists => OutputError::Exists(self.target.clone()),
            _ => self.io(e.error),
        })?;
        sync_folder(folder_of(&self.target)).map_err(|source| self.io(source))
    }

    fn io(&self, source: std::io::Error) -> OutputError {
        OutputError::Io {
            path: self.target.clone(),
            source,
        }
    }
}

/// The folder a file is in (`.` for a bare name).
pub fn folder_of(file: &Path) -> &Path {
    match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Makes a rename in `dir` durable.
fn sync_folder(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn written_whole_or_not_at_all_and_never_over_a_file_unasked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        AtomicFile::new(&path, false).write(b"one").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(matches!(
            AtomicFile::new(&path, false).write(b"two"),
            Err(OutputError::Exists(_))
        ));
        let failed: Result<(), OutputError> =
            AtomicFile::new(&path, true).write_with(&|_| (), |w| {
                w.write_all(b"half").unwrap();
                Err(OutputError::Exists(PathBuf::from("stop")))
            });
        assert!(failed.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"one", "untouched");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file left");
        AtomicFile::new(&path, true).write(b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
    }
}
