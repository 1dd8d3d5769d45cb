//! Output files named on the command line, checked before a run starts: a report that cannot be
//! written is an error at once, not after an hour of traffic.

use std::path::Path;

/// Checks that `path` (given as `option`) can be written: its directory exists and takes a new
/// file, and the path is not a directory. Leaves nothing behind.
pub fn check_writable(option: &str, path: &Path) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        anyhow::bail!(
            "{option} {}: the directory {} does not exist",
            path.display(),
            dir.display()
        );
    }
    if path.is_dir() {
        anyhow::bail!("{option} {}: is a directory", path.display());
    }
    let probe = dir.join(format!(".write-probe-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => anyhow::bail!("{option} {}: cannot write there: {e}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_directories_and_directories_are_refused() {
        let e = check_writable("--report", Path::new("/nonexistent/dir/r.json")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--report /nonexistent/dir/r.json: the directory /nonexistent/dir does not exist"
        );
        let tmp = std::env::temp_dir();
        let e = check_writable("--report", &tmp).unwrap_err();
        assert!(e.to_string().ends_with("is a directory"), "{e}");
        check_writable("--report", &tmp.join("r.json")).unwrap();
        check_writable("--report", Path::new("r.json")).unwrap();
        assert!(!tmp
            .join(format!(".write-probe-{}", std::process::id()))
            .exists());
    }
}
