//! What a shell and `man` need: completion scripts (clap_complete) and man pages
//! (clap_mangen), one page per subcommand, made from the same definitions as `--help`.

use std::path::{Path, PathBuf};

use clap::Command;
use clap_complete::Shell;

use crate::exit::{Exit, Failure, Outcome};
use crate::files::Output;

/// Prints the completion script for `shell` to standard output.
pub fn completions(shell: Shell, mut cmd: Command) -> Outcome {
    let name = cmd.get_name().to_owned();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, name.clone(), &mut script);
    if shell == Shell::Bash {
        // clap_complete 4.6 spells a hyphenated name two ways in the bash script (the
        // command path `matrix__transplant…`, the case labels `matrix__subcmd__transplant…`),
        // so no subcommand ever completes. One spelling for both; the completion test
        // checks that `keys fi<TAB>` completes.
        let text = String::from_utf8_lossy(&script)
            .replace(&name.replace('-', "__subcmd__"), &name.replace('-', "__"));
        script = text.into_bytes();
    }
    Output::plan(None, false, false, "output")?.write(&script)
}

/// Every page: the command's, then one per subcommand (`matrix-transplant-keys-filter`),
/// depth first, as (file name without `.1`, command named for its page).
fn pages(cmd: &Command, prefix: &str, out: &mut Vec<(String, Command)>) {
    let name = if prefix.is_empty() {
        cmd.get_name().to_owned()
    } else {
        format!("{prefix}-{}", cmd.get_name())
    };
    out.push((name.clone(), cmd.clone().display_name(name.clone())));
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        pages(sub, &name, out);
    }
}

fn render(cmd: Command) -> Outcome<Vec<u8>> {
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut page)
        .map_err(|e| Failure::new(Exit::Io, format!("cannot render a man page: {e}")))?;
    Ok(page)
}

/// Writes every man page into `dir` (`NAME.1`, mode 0600 like every output, never over an
/// existing file without `force`), or prints the main page when no folder is given.
pub fn manpages(mut cmd: Command, dir: Option<&Path>, force: bool) -> Outcome {
    cmd.build();
    let Some(dir) = dir else {
        let page = render(cmd)?;
        return Output::plan(None, force, false, "output")?.write(&page);
    };
    let mut all = Vec::new();
    pages(&cmd, "", &mut all);
    // Check every target first, so a refusal leaves no half-written set behind.
    let planned: Vec<(PathBuf, Command)> = all
        .into_iter()
        .map(|(name, page)| (dir.join(format!("{name}.1")), page))
        .collect();
    let outputs = planned
        .iter()
        .map(|(path, _)| Output::plan(Some(path), force, false, "output"))
        .collect::<Outcome<Vec<_>>>()?;
    for (output, (_, page)) in outputs.iter().zip(planned) {
        output.write(&render(page)?)?;
    }
    crate::note!("wrote {} man pages to {}", outputs.len(), dir.display());
    Ok(())
}
