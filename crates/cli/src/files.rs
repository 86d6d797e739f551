//! Safe file handling: inputs are only read; outputs go to a temporary file in the
//! target folder, created mode 0600, renamed into place only when complete, and never
//! over an existing file without --force.

use std::fs::File;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use key_export::pipeline::Source;
use key_export::Passphrase;
use zeroize::Zeroizing;

use crate::secrets;

use crate::exit::{Exit, Failure, Outcome};
use migrate::output::{AtomicFile, OutputError};

impl From<OutputError> for Failure {
    fn from(e: OutputError) -> Self {
        match e {
            OutputError::Exists(p) => exists(&p),
            e => Failure::new(Exit::Io, e.to_string()),
        }
    }
}

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
    let f =
        File::open(path).map_err(|e| Failure::new(Exit::Io, format!("cannot open {name}: {e}")))?;
    let len = f.metadata().map(|m| m.len() as usize).unwrap_or(0);
    Ok(Input {
        name,
        reader: Box::new(f),
        len,
    })
}

/// What an export is read from: a file, or standard input.
pub type ExportReader = Box<dyn Read + Send>;
/// An export with its passphrase.
pub type ExportSource = Source<ExportReader>;

/// Opened exports with their passphrases, in order.
pub struct Sources(Vec<ExportSource>);

impl Sources {
    /// Opens `files`; `pass_files` names one passphrase file for all inputs, one per input
    /// in order, or none (then the environment, else a prompt per input).
    pub fn open(files: &[PathBuf], pass_files: &[PathBuf]) -> Outcome<Self> {
        if !(pass_files.len() <= 1 || pass_files.len() == files.len()) {
            return Err(Failure::new(
                Exit::Usage,
                format!(
                    "{} inputs but {} --passphrase-file: give one for all inputs or one per input, in order",
                    files.len(),
                    pass_files.len()
                ),
            ));
        }
        files
            .iter()
            .enumerate()
            .map(|(i, f)| {
                Sources::one(
                    f,
                    pass_files
                        .get(i)
                        .or(pass_files.first())
                        .map(PathBuf::as_path),
                )
            })
            .collect::<Outcome<_>>()
            .map(Sources)
    }

    /// Opens one export; its passphrase from `pass_file`, else the environment, else a
    /// prompt.
    pub fn one(file: &Path, pass_file: Option<&Path>) -> Outcome<ExportSource> {
        let passphrase = secrets::existing(pass_file, &file.display().to_string())?;
        let input = open_input(file)?;
        Ok(Source {
            name: input.name,
            reader: input.reader,
            len: input.len,
            passphrase,
        })
    }

    /// The first input's passphrase (the default for a new export).
    pub fn first_passphrase(&self) -> Passphrase {
        self.0[0].passphrase.clone()
    }

    /// The sources, for a job.
    pub fn into_vec(self) -> Vec<ExportSource> {
        self.0
    }
}

/// Reads a whole input into a buffer wiped on drop (for plaintext inputs).
pub fn read_secret(path: &Path) -> Outcome<Zeroizing<Vec<u8>>> {
    let mut input = open_input(path)?;
    read_wiping(&mut input.reader, input.len)
        .map_err(|e| Failure::new(Exit::Io, format!("cannot read {}: {e}", input.name)))
}

/// Reads everything into a buffer wiped on drop. A buffer that must grow (standard input
/// has no known length) is copied into a larger one and the old one wiped, so no copy is
/// left behind the way `read_to_end`'s reallocation would.
fn read_wiping(reader: &mut dyn Read, expected: usize) -> std::io::Result<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(vec![0u8; expected.max(1 << 16) + 64]);
    let mut len = 0;
    loop {
        if len == buf.len() {
            let mut bigger = Zeroizing::new(vec![0u8; buf.len() * 2]);
            bigger[..len].copy_from_slice(&buf[..len]);
            buf = bigger; // the old buffer is wiped as it is dropped
        }
        match reader.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(len);
    Ok(buf)
}

/// Reads a whole UTF-8 text input (wiped from memory on drop: it may be a token).
pub fn read_text(path: &Path) -> Outcome<Zeroizing<String>> {
    let bytes = read_secret(path)?;
    std::str::from_utf8(&bytes)
        .map(|t| Zeroizing::new(t.to_owned()))
        .map_err(|_| Failure::new(Exit::Format, format!("{}: not UTF-8 text", path.display())))
}

/// Reads a list of rooms: one room ID per line (`#` comments), a JSON list, or
/// `keys inspect --json` output.
pub fn read_room_list(path: &Path) -> Outcome<Vec<String>> {
    let text = read_text(path)?;
    Ok(key_export::select::parse_rooms_file(
        &text,
        &path.display().to_string(),
    )?)
}

/// Reads and parses an `m.direct` map (content, or a whole event).
pub fn read_direct_map(path: &Path) -> Outcome<m_direct::DirectMap> {
    let text = read_text(path)?;
    m_direct::DirectMap::parse(&text)
        .map_err(|e| Failure::new(Exit::Format, format!("{}: {e}", path.display())))
}

/// The display names of `paths`, for messages.
pub fn names(paths: &[PathBuf]) -> Vec<String> {
    paths.iter().map(|p| p.display().to_string()).collect()
}

/// Where output goes.
#[derive(Debug)]
pub struct Output {
    target: Option<PathBuf>,
    force: bool,
}

impl Output {
    /// Checks, before any work is done, that `path` (given as the argument `own`) may be
    /// written: it is none of the other files named on the command line (inputs, secret
    /// files, another output: compared by device and inode, or by resolved path for files
    /// not made yet), and if it exists it is a regular file and `force` was given. `None` or
    /// `-` means standard output; `secret` output is refused on a terminal unless `-` was
    /// explicit.
    pub fn plan(path: Option<&Path>, force: bool, secret: bool, own: &str) -> Outcome<Self> {
        match path {
            None if secret && std::io::stdout().is_terminal() => Err(Failure::new(Exit::Io,
                "refusing to print decrypted keys to the terminal: give -o FILE (or -o - if you really mean it)",
            )),
            None => Ok(Output { target: None, force }),
            Some(p) if p.as_os_str() == "-" => Ok(Output { target: None, force }),
            Some(p) => {
                not_an_input(p, own)?;
                report_leftovers(p);
                match p.symlink_metadata() {
                    Ok(m) if !m.file_type().is_file() => Err(Failure::new(
                        Exit::OutputExists,
                        format!("{} exists and is not a regular file (a folder, link, pipe or device); nothing was written: choose a file", p.display()),
                    )),
                    Ok(_) if !force => Err(exists(p)),
                    _ => Ok(Output { target: Some(p.to_owned()), force }),
                }
            }
        }
    }

    /// Writes `data` in full, then moves it into place.
    pub fn write(&self, data: &[u8]) -> Outcome {
        self.write_with(|w| Ok(w.write_all(data)?))
    }

    /// Lets `produce` stream the content into a temporary file (mode 0600, same folder),
    /// syncs it to disk, then renames it into place ([`migrate::output::AtomicFile`]). If
    /// `produce` fails, the temporary file is deleted and the target is untouched.
    pub fn write_with<T>(&self, produce: impl FnOnce(&mut dyn Write) -> Outcome<T>) -> Outcome<T> {
        let Some(target) = &self.target else {
            let mut out = std::io::stdout().lock();
            let value = produce(&mut out)?;
            out.flush()?;
            return Ok(value);
        };
        // Registered for removal on a signal before it exists, so no moment leaves it behind.
        AtomicFile::new(target, self.force).write_with(&crate::cleanup::TempFile::register, produce)
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
        Exit::OutputExists,
        format!(
            "{} exists; nothing was written (use --force to replace it)",
            p.display()
        ),
    )
}

/// Where a path leads: an existing file (device, inode; links followed), or the resolved
/// path of one not made yet.
#[derive(Debug, PartialEq, Eq)]
enum Place {
    File(u64, u64),
    New(PathBuf),
}

fn place(p: &Path) -> Option<Place> {
    use std::os::unix::fs::MetadataExt;
    if let Ok(m) = std::fs::metadata(p) {
        return Some(Place::File(m.dev(), m.ino()));
    }
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    Some(Place::New(dir.canonicalize().ok()?.join(p.file_name()?)))
}

/// Refuses `p` when another argument of the command line names the same file: inputs,
/// secret files and other outputs are never written over (`own` is `p`'s own argument).
pub fn not_an_input(p: &Path, own: &str) -> Outcome {
    let here = place(p);
    for (id, other) in arguments() {
        if id != own && other != "-" && here.is_some() && place(Path::new(other)) == here {
            return Err(Failure::new(Exit::OutputExists,
                format!("{} is also an input (given as --{}); inputs, secret files and other outputs are never written over: choose another output", p.display(), id.replace('_', "-")),
            ));
        }
    }
    Ok(())
}

/// Every value given on the command line, with the argument it was given to.
static ARGUMENTS: std::sync::OnceLock<Vec<(String, std::ffi::OsString)>> =
    std::sync::OnceLock::new();

/// Records the values of the command line, so that outputs are planned against all of them.
pub fn remember_arguments(matches: &clap::ArgMatches) {
    let mut all = Vec::new();
    let mut m = Some(matches);
    while let Some(level) = m {
        for id in level.ids() {
            let id = id.as_str();
            if level.value_source(id) != Some(clap::parser::ValueSource::CommandLine) {
                continue;
            }
            if let Ok(Some(values)) = level.try_get_raw(id) {
                all.extend(values.map(|v| (id.to_owned(), v.to_owned())));
            }
        }
        m = level.subcommand().map(|(_, sub)| sub);
    }
    let _ = ARGUMENTS.set(all);
}

fn arguments() -> impl Iterator<Item = (&'static str, &'static std::ffi::OsStr)> {
    ARGUMENTS
        .get()
        .into_iter()
        .flatten()
        .map(|(id, v)| (id.as_str(), v.as_os_str()))
}

/// Says so when the folder of `target` holds temporary files of an earlier run that was
/// killed (they may hold plaintext keys). They are not removed: another run may own them.
fn report_leftovers(target: &Path) {
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let stale: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".matrix-transplant-") && n.ends_with(".part"))
        .collect();
    if !stale.is_empty() {
        crate::warn!(
            "{} holds {} temporary file(s) of an interrupted run, which may hold plaintext keys: {}; delete them once no other run is writing there",
            dir.display(),
            stale.len(),
            stale.join(", ")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn parts(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn a_failure_once_the_temporary_file_exists_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.txt");
        let out = Output::plan(Some(&target), false, false, "output").unwrap();
        let result = out.write_with(|w| {
            w.write_all(b"half of the plaintext")?;
            let now = parts(dir.path());
            assert_eq!(now.len(), 1, "{now:?}");
            assert!(now[0].starts_with(".matrix-transplant-") && now[0].ends_with(".part"));
            let mode = std::fs::metadata(dir.path().join(&now[0]))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
            Err::<(), _>(Failure::new(Exit::Io, "the job failed half way"))
        });
        assert_eq!(result.unwrap_err().exit, Exit::Io);
        assert!(parts(dir.path()).is_empty(), "{:?}", parts(dir.path()));
    }

    #[test]
    fn reading_past_the_first_buffer_keeps_every_byte() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let got = read_wiping(&mut &data[..], 0).unwrap();
        assert_eq!(&got[..], &data[..]);
        let got = read_wiping(&mut &data[..], data.len()).unwrap();
        assert_eq!(&got[..], &data[..]);
    }

    #[test]
    fn an_existing_output_is_kept_without_force_and_replaced_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.txt");
        std::fs::write(&target, "old").unwrap();
        let refused = Output::plan(Some(&target), false, false, "output").unwrap_err();
        assert_eq!(refused.exit, Exit::OutputExists);
        Output::plan(Some(&target), true, false, "output")
            .unwrap()
            .write(b"new")
            .unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
    }
}
