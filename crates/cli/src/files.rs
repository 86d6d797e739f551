//! Safe file handling: inputs are only read; outputs go to a temporary file in the
//! target folder, created mode 0600, renamed into place only when complete, and never
//! over an existing file without --force.

use std::fs::{File, Permissions};
use std::io::{IsTerminal, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::failure::{Failure, Outcome, FORMAT, IO, OUTPUT_EXISTS};

/// An opened input: a file (with its length) or standard input.
pub struct Input {
    pub name: String,
    pub reader: Box<dyn Read + Send>,
    pub len: usize,
}

/// Opens `path` for reading; `-` is standard input.
pub fn open_input(path: &Path) -> Outcome<Input> {
    let name = path.display().to_string();
    if path.as_os_str() == "-" {
        return Ok(Input {
            name: "standard input".into(),
            reader: Box::new(std::io::stdin()),
            len: 0,
        });
    }
    let f = File::open(path).map_err(|e| Failure::new(IO, format!("cannot open {name}: {e}")))?;
    let len = f.metadata().map(|m| m.len() as usize).unwrap_or(0);
    Ok(Input {
        name,
        reader: Box::new(f),
        len,
    })
}

/// Reads a whole input into a buffer wiped on drop (for plaintext inputs).
pub fn read_secret(path: &Path) -> Outcome<Zeroizing<Vec<u8>>> {
    let mut input = open_input(path)?;
    // Room for the whole file and read_to_end's end-of-file probe, so the buffer is never
    // reallocated (which would leave an unwiped copy behind).
    let mut buf = Zeroizing::new(Vec::with_capacity(input.len + 64));
    input
        .reader
        .read_to_end(&mut buf)
        .map_err(|e| Failure::new(IO, format!("cannot read {}: {e}", input.name)))?;
    Ok(buf)
}

/// Reads a whole UTF-8 text input (wiped from memory on drop: it may be a token).
pub fn read_text(path: &Path) -> Outcome<Zeroizing<String>> {
    let bytes = read_secret(path)?;
    std::str::from_utf8(&bytes)
        .map(|t| Zeroizing::new(t.to_owned()))
        .map_err(|_| Failure::new(FORMAT, format!("{}: not UTF-8 text", path.display())))
}

/// Reads a list of rooms: one room ID per line (`#` comments), a JSON list, or
/// `keys inspect --json` output.
pub fn read_room_list(path: &Path) -> Outcome<Vec<String>> {
    let text = read_text(path)?;
    key_export::select::parse_rooms_file(&text, &path.display().to_string())
        .map_err(|e| Failure::new(FORMAT, e.to_string()))
}

/// Where output goes.
pub struct Output {
    target: Option<PathBuf>,
    force: bool,
}

impl Output {
    /// Checks, before any work is done, that `path` may be written. `None` or `-` means
    /// standard output; `secret` output is refused on a terminal unless `-` was explicit.
    pub fn plan(path: Option<&Path>, force: bool, secret: bool, inputs: &[&Path]) -> Outcome<Self> {
        match path {
            None if secret && std::io::stdout().is_terminal() => Err(Failure::new(
                IO,
                "refusing to print decrypted keys to the terminal: give -o FILE (or -o - if you really mean it)",
            )),
            None => Ok(Output { target: None, force }),
            Some(p) if p.as_os_str() == "-" => Ok(Output { target: None, force }),
            Some(p) => {
                for i in inputs {
                    if i.as_os_str() != "-" && same_file(i, p) {
                        return Err(Failure::new(
                            OUTPUT_EXISTS,
                            format!("{} is also an input; inputs are never modified: choose another output", p.display()),
                        ));
                    }
                }
                if !force && p.symlink_metadata().is_ok() {
                    return Err(exists(p));
                }
                Ok(Output { target: Some(p.to_owned()), force })
            }
        }
    }

    /// Writes `data` in full, then moves it into place.
    pub fn write(&self, data: &[u8]) -> Outcome {
        self.write_with(|w| Ok(w.write_all(data)?))
    }

    /// Lets `produce` stream the content into a temporary file (mode 0600, same folder),
    /// syncs it to disk, then renames it into place. If `produce` fails, the temporary
    /// file is deleted and the target is untouched.
    pub fn write_with<T>(&self, produce: impl FnOnce(&mut dyn Write) -> Outcome<T>) -> Outcome<T> {
        let Some(target) = &self.target else {
            let mut out = std::io::stdout().lock();
            let value = produce(&mut out)?;
            out.flush()?;
            return Ok(value);
        };
        let dir = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let mut tmp = tempfile::Builder::new()
            .prefix(".matrix-transplant-")
            .suffix(".part")
            .permissions(Permissions::from_mode(0o600))
            .tempfile_in(dir)
            .map_err(|e| {
                Failure::new(
                    IO,
                    format!("cannot create a file in {}: {e}", dir.display()),
                )
            })?;
        let value = {
            let mut w = std::io::BufWriter::with_capacity(1 << 16, tmp.as_file_mut());
            let value = produce(&mut w)?;
            w.flush()
                .map_err(|e| Failure::new(IO, format!("cannot write {}: {e}", target.display())))?;
            value
        };
        tmp.as_file()
            .sync_all()
            .map_err(|e| Failure::new(IO, format!("cannot write {}: {e}", target.display())))?;
        let result = if self.force {
            tmp.persist(target).map(|_| ()).map_err(|e| e.error)
        } else {
            tmp.persist_noclobber(target)
                .map(|_| ())
                .map_err(|e| e.error)
        };
        result.map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                exists(target)
            } else {
                Failure::new(IO, format!("cannot write {}: {e}", target.display()))
            }
        })?;
        Ok(value)
    }

    /// A name for messages.
    pub fn describe(&self) -> String {
        self.target
            .as_ref()
            .map_or("standard output".into(), |p| p.display().to_string())
    }
}

fn exists(p: &Path) -> Failure {
    Failure::new(
        OUTPUT_EXISTS,
        format!(
            "{} exists; nothing was written (use --force to replace it)",
            p.display()
        ),
    )
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}
