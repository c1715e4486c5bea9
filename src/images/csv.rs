//! The run's CSV log, one appended row at a time.

use crate::Error;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

/// Appends `row` to the CSV file at `path`, first writing `header` if the file is new or empty.
/// A file that starts with another header is refused rather than mixed with other columns.
pub fn append_csv_row(path: &Path, header: &str, row: &str) -> Result<(), Error> {
    let (header, row) = (header.trim_end(), row.trim_end());
    let failed = |e: std::io::Error| Error::io("append to", path, e);
    let mut existing = String::new();
    if path.exists() {
        let file = fs::File::open(path).map_err(failed)?;
        BufReader::new(file)
            .read_line(&mut existing)
            .map_err(failed)?;
    }
    let existing = existing.trim_end();
    if !existing.is_empty() && existing != header {
        let problem = format!("cannot append: the file's header is `{existing}`, not `{header}`");
        return Err(Error::bad_file(path, problem));
    }
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(failed)?;
    let text = if existing.is_empty() {
        format!("{header}\n{row}\n")
    } else {
        format!("{row}\n")
    };
    // One write per row, so a reader never sees half a line of a row written in pieces.
    file.write_all(text.as_bytes()).map_err(failed)
}
