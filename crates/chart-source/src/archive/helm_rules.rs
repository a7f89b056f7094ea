//! Helm's own rules for the entries of a chart archive (`LoadArchiveFiles` in Helm's
//! `pkg/chart/loader/archive`), as pure functions: what helm accepts we accept, what it
//! refuses we refuse, at the same boundaries.

/// Helm's `MaxDecompressedChartSize`: the files' sizes must sum to *less* than this (a
/// chart of exactly 100 MiB is refused: helm fails once its remaining budget reaches 0).
pub const HELM_MAX_CHART_BYTES: u64 = 100 << 20;
/// Helm's `MaxDecompressedFileSize`: a file may be exactly this large, not larger.
pub const HELM_MAX_FILE_BYTES: u64 = 5 << 20;

/// The name of an archive entry inside the chart, or why helm refuses it.
///
/// Helm drops the first path component, whatever it is (`mychart/`, `./`), splits on `\`
/// when the name holds one (archives packaged on Windows), then cleans the rest like Go's
/// `path.Clean`; absolute names, names outside the chart, names starting with `..` and
/// drive-letter names are refused, and so is a `Chart.yaml` at the top.
pub fn chart_file_name(raw: &str) -> Result<String, &'static str> {
    let delimiter = if raw.contains('\\') { '\\' } else { '/' };
    let mut parts = raw.split(delimiter);
    let first = parts.next().unwrap_or_default();
    let rest: Vec<&str> = parts.collect();
    let joined = rest.join("/");
    if joined.starts_with('/') {
        return Err("chart illegally contains absolute paths");
    }
    let name = clean(&joined);
    if name == "." {
        return Err("chart illegally contains content outside the base directory");
    }
    if name.starts_with("..") {
        return Err("chart illegally references parent directory");
    }
    if is_drive_path(&name) {
        return Err("chart contains illegally named files");
    }
    if first == "Chart.yaml" {
        return Err("chart yaml not in base directory");
    }
    Ok(name)
}

/// `^[a-zA-Z]:/`
fn is_drive_path(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && b[2] == b'/'
}

/// Go's `path.Clean` for a relative, `/`-separated path: `.` and empty components go,
/// `..` removes the component before it (or stays, at the start); empty → `.`.
fn clean(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match out.last() {
                Some(&last) if last != ".." => {
                    out.pop();
                }
                _ => out.push(".."),
            },
            other => out.push(other),
        }
    }
    if out.is_empty() {
        ".".to_string()
    } else {
        out.join("/")
    }
}

/// Why helm refuses a file on its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeRefusal {
    /// The chart's files reach `max_total` bytes.
    Chart,
    /// This one file is over `max_file` bytes.
    File,
}

/// Helm's size budget, charged one file at a time in archive order (directories and pax
/// headers are free): returns the budget left, or the refusal helm gives. The checks run
/// in helm's order: the chart budget, then the file size, then "budget used up".
pub fn charge(remaining: u64, size: u64, max_file: u64) -> Result<u64, SizeRefusal> {
    if size > remaining {
        return Err(SizeRefusal::Chart);
    }
    if size > max_file {
        return Err(SizeRefusal::File);
    }
    match remaining - size {
        0 => Err(SizeRefusal::Chart),
        left => Ok(left),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_helm_reads_them() {
        let table: &[(&str, Result<&str, &str>)] = &[
            ("app/Chart.yaml", Ok("Chart.yaml")),
            ("./Chart.yaml", Ok("Chart.yaml")),
            ("./templates/cm.yaml", Ok("templates/cm.yaml")),
            ("anything/templates/x.yaml", Ok("templates/x.yaml")),
            ("app\\templates\\cm.yaml", Ok("templates/cm.yaml")),
            ("app\\Chart.yaml", Ok("Chart.yaml")),
            ("app/templates/../values.yaml", Ok("values.yaml")),
            (
                "app//templates/./x",
                Err("chart illegally contains absolute paths"),
            ),
            ("app/./templates//x", Ok("templates/x")),
            (
                "app/../../etc/evil",
                Err("chart illegally references parent directory"),
            ),
            (
                "app/templates/../../x",
                Err("chart illegally references parent directory"),
            ),
            (
                "app/..hidden",
                Err("chart illegally references parent directory"),
            ),
            ("/etc/passwd", Ok("etc/passwd")),
            (
                "app",
                Err("chart illegally contains content outside the base directory"),
            ),
            (
                "README.md",
                Err("chart illegally contains content outside the base directory"),
            ),
            (
                "app/.",
                Err("chart illegally contains content outside the base directory"),
            ),
            ("Chart.yaml/x", Err("chart yaml not in base directory")),
            ("app/C:/x", Err("chart contains illegally named files")),
            ("app\\C:\\x", Err("chart contains illegally named files")),
            ("app/C:x", Ok("C:x")),
        ];
        for (raw, want) in table {
            let got = chart_file_name(raw);
            assert_eq!(got.as_deref().map_err(|e| *e), *want, "{raw}");
        }
    }

    #[test]
    fn size_budget_at_helms_boundaries() {
        let max_file = HELM_MAX_FILE_BYTES;
        let total = HELM_MAX_CHART_BYTES;
        assert_eq!(charge(total, max_file, max_file), Ok(total - max_file));
        assert_eq!(
            charge(total, max_file + 1, max_file),
            Err(SizeRefusal::File)
        );
        assert_eq!(charge(10, 11, max_file), Err(SizeRefusal::Chart));
        // The last file may bring the budget to 1 byte, not to 0.
        assert_eq!(charge(10, 9, max_file), Ok(1));
        assert_eq!(charge(10, 10, max_file), Err(SizeRefusal::Chart));
        assert_eq!(charge(10, 0, max_file), Ok(10));
        // Over both: the chart budget is checked first.
        assert_eq!(charge(10, max_file + 1, max_file), Err(SizeRefusal::Chart));
    }
}
