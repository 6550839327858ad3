//! CSV as RFC 4180 means it, for every table the project reads or writes (labels files, the
//! WBCAtt splits, the analyser's export, the external sets): quoted fields may hold commas,
//! quotes (doubled) and line breaks, and a UTF-8 byte-order mark (Excel's "CSV UTF-8") is
//! ignored. One reader and one writer, so the app's own export always loads back.

/// A table read from CSV text: the header's names (trimmed) and each non-empty record with
/// its 1-based line number in the text.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    pub header: Vec<String>,
    pub records: Vec<(usize, Vec<String>)>,
}

impl Table {
    /// Where column `name` is (exact match after trimming).
    pub fn column(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }
}

/// Read CSV text whose first record is the header. Fields are trimmed; records may have any
/// number of fields (the caller judges); blank lines are skipped. Errors name the line.
pub fn read(text: &str) -> Result<Table, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // Windows line ends as plain ones: the reader's line numbers then count every line.
    let text = text.replace("\r\n", "\n");
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut table = Table::default();
    let (mut counted, mut lines_seen) = (0usize, 0usize);
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| match e.position() {
            Some(p) => format!("line {}: {e}", p.line()),
            None => e.to_string(),
        })?;
        // The line from the record's byte offset (the reader's own count skips blank lines).
        let line = record.position().map_or(i + 1, |p| {
            // It may point at blank lines before the record.
            let mut at = (p.byte() as usize).min(text.len());
            while text.as_bytes().get(at) == Some(&b'\n') {
                at += 1;
            }
            lines_seen += bytecount(&text.as_bytes()[counted..at]);
            counted = at;
            lines_seen + 1
        });
        let fields: Vec<String> = record.iter().map(|f| f.trim().to_string()).collect();
        if i == 0 {
            table.header = fields;
        } else if !fields.iter().all(String::is_empty) {
            table.records.push((line, fields));
        }
    }
    if table.header.iter().all(String::is_empty) {
        return Err("the file is empty".into());
    }
    Ok(table)
}

fn bytecount(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

/// Write records as CSV (`\n` line ends; a field is quoted only when it must be).
pub fn write<I, R, F>(records: I) -> String
where
    I: IntoIterator<Item = R>,
    R: IntoIterator<Item = F>,
    F: AsRef<[u8]>,
{
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .flexible(true)
        .from_writer(Vec::new());
    for r in records {
        // Writing into memory cannot fail.
        writer.write_record(r).expect("writing CSV into memory");
    }
    let bytes = writer.into_inner().expect("flushing CSV into memory");
    String::from_utf8(bytes).expect("CSV written from UTF-8 fields is UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_fields_round_trip() {
        let rows = vec![
            vec!["img_name", "label"],
            vec!["a, b.jpg", "monocyte"],
            vec!["say \"hi\"", "two\nlines"],
        ];
        let text = write(&rows);
        assert!(
            text.starts_with("img_name,label\n\"a, b.jpg\",monocyte\n"),
            "{text}"
        );
        let t = read(&text).unwrap();
        assert_eq!(t.header, ["img_name", "label"]);
        assert_eq!(
            t.records[0],
            (2, vec!["a, b.jpg".into(), "monocyte".into()])
        );
        assert_eq!(t.records[1].1, ["say \"hi\"", "two\nlines"]);
        assert_eq!(t.column("label"), Some(1));
        let t = read("\u{feff}img_name , label\r\n\r\nx.jpg, Neutrophil \r\n").unwrap();
        assert_eq!(t.header, ["img_name", "label"]);
        assert_eq!(
            t.records,
            vec![(3, vec!["x.jpg".into(), "Neutrophil".into()])]
        );
        assert!(read("").is_err());
    }
}
