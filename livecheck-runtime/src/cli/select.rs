//! Which registered cases a run takes: `--case` and `--exclude`, and their globs.

use super::error::CliError;
use super::flags::Options;
use crate::service::case::registry::registered_cases;
use crate::service::case::CaseDescriptor;

impl Options {
    /// The registered cases that `--case` selects (all of them without it) and `--exclude`
    /// does not leave out, sorted by name. A glob that matches no case is an error (a typo
    /// would otherwise select nothing, or everything).
    pub(crate) fn selected_cases(&self) -> Result<Vec<&'static CaseDescriptor>, CliError> {
        let all = registered_cases()?;
        for (flag, globs) in [("--case", &self.cases), ("--exclude", &self.exclude)] {
            for glob in globs {
                if !all.iter().any(|c| glob_match(glob, c.name)) {
                    let names: Vec<_> = all.iter().map(|c| c.name).collect();
                    return Err(CliError::Usage(format!(
                        "{flag} {glob:?} matches no registered case (there are: {})",
                        names.join(", ")
                    )));
                }
            }
        }
        let selected: Vec<_> = all
            .into_iter()
            .filter(|c| self.cases.is_empty() || self.cases.iter().any(|g| glob_match(g, c.name)))
            .filter(|c| !self.exclude.iter().any(|g| glob_match(g, c.name)))
            .collect();
        if selected.is_empty() && !self.exclude.is_empty() {
            return Err(CliError::Usage(
                "--exclude leaves out every selected case".into(),
            ));
        }
        Ok(selected)
    }
}

/// Whether `text` matches `glob`: `*` is any run of characters (`::` included), `?` is one
/// character, anything else matches itself.
pub(crate) fn glob_match(glob: &str, text: &str) -> bool {
    let (glob, text): (Vec<char>, Vec<char>) = (glob.chars().collect(), text.chars().collect());
    let (mut g, mut t) = (0, 0);
    // Where the last `*` was, and the text position it has swallowed up to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match glob.get(g) {
            Some('*') => {
                star = Some((g, t));
                g += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                g += 1;
                t += 1;
            }
            _ => match star {
                Some((star_g, star_t)) => {
                    g = star_g + 1;
                    t = star_t + 1;
                    star = Some((star_g, star_t + 1));
                }
                None => return false,
            },
        }
    }
    glob[g..].iter().all(|&c| c == '*')
}
