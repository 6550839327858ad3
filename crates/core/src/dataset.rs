//! The WBCAtt split CSVs: one record per image with its cell type and 11 attribute labels.

use crate::schema::{cell_type_index, ATTRIBUTES};
use std::path::{Path, PathBuf};

/// One labelled cell of a split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelledCell {
    /// File name, e.g. `BNE_7323.jpg` (unique across PBC).
    pub img_name: String,
    /// Path relative to the `pbc/` folder.
    pub path: String,
    /// Index into [`crate::CELL_TYPES`].
    pub cell_type: usize,
    /// Value index per attribute, in [`ATTRIBUTES`] order.
    pub attributes: [usize; 11],
}

/// A split CSV that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    /// The file could not be opened.
    #[error("cannot read {0}: {1}")]
    Io(PathBuf, std::io::Error),
    /// A row does not follow the WBCAtt schema.
    #[error("{file}:{line}: {msg}")]
    Format {
        /// File being parsed.
        file: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        msg: String,
    },
}

/// The official split names.
pub const SPLITS: [&str; 3] = ["train", "val", "test"];

/// The cell type of each class number (1–5) in the external sets' `labels.csv`
/// (cellavision100 and tecom300, Zheng et al. 2018), in its order.
pub const EXTERNAL_CLASSES: [&str; 5] = [
    "Neutrophil",
    "Lymphocyte",
    "Monocyte",
    "Eosinophil",
    "Basophil",
];

/// Path of a split CSV under the data folder (`<data>/wbcatt/pbc_attr_v1_<split>.csv`).
pub fn split_csv(data: &Path, split: &str) -> PathBuf {
    data.join("wbcatt").join(format!("pbc_attr_v1_{split}.csv"))
}

/// Parse a WBCAtt CSV (split files and the re-annotation file share the format).
pub fn read_csv(file: &Path) -> Result<Vec<LabelledCell>, CsvError> {
    let text = std::fs::read_to_string(file).map_err(|e| CsvError::Io(file.into(), e))?;
    parse_csv(&text).map_err(|(line, msg)| CsvError::Format {
        file: file.into(),
        line,
        msg,
    })
}

/// Parse CSV text; errors carry the 1-based line number.
pub fn parse_csv(text: &str) -> Result<Vec<LabelledCell>, (usize, String)> {
    let table = crate::csv_text::read(text).map_err(|e| (1, e))?;
    let header = &table.header;
    let col = |name: &str| {
        table
            .column(name)
            .ok_or((1, format!("missing column {name}")))
    };
    let name_col = col("img_name")?;
    let label_col = col("label")?;
    let path_col = col("path")?;
    let attr_cols: Vec<usize> = ATTRIBUTES
        .iter()
        .map(|a| col(a.name))
        .collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for (lineno, fields) in &table.records {
        let lineno = *lineno;
        if fields.len() != header.len() {
            return Err((
                lineno,
                format!("{} fields, expected {}", fields.len(), header.len()),
            ));
        }
        let cell_type = cell_type_index(&fields[label_col])
            .ok_or((lineno, format!("unknown cell type {}", fields[label_col])))?;
        let mut attributes = [0; 11];
        for (k, (a, &c)) in ATTRIBUTES.iter().zip(&attr_cols).enumerate() {
            attributes[k] = a
                .value_index(&fields[c])
                .ok_or((lineno, format!("unknown {} value {}", a.name, fields[c])))?;
        }
        out.push(LabelledCell {
            img_name: fields[name_col].to_string(),
            path: fields[path_col].to_string(),
            cell_type,
            attributes,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Quoted fields (a comma inside an image name) and a byte-order mark are read as CSV
    /// means them.
    #[test]
    fn quoted_fields_and_a_byte_order_mark_are_read() {
        let header = format!(
            "\u{feff}img_name,label,path,{}",
            ATTRIBUTES
                .iter()
                .map(|a| a.name)
                .collect::<Vec<_>>()
                .join(",")
        );
        let values = ATTRIBUTES
            .iter()
            .map(|a| a.values[0])
            .collect::<Vec<_>>()
            .join(",");
        let text = format!("{header}\n\"a, b.jpg\",Monocyte,\"x/a, b.jpg\",{values}\n");
        let cells = parse_csv(&text).expect("parses");
        assert_eq!(cells[0].img_name, "a, b.jpg");
        assert_eq!(cells[0].path, "x/a, b.jpg");
    }

    #[test]
    fn parses_rows_and_reports_bad_values() {
        let head = "img_name,label,cell_size,cell_shape,nucleus_shape,nuclear_cytoplasmic_ratio,chromatin_density,cytoplasm_vacuole,cytoplasm_texture,cytoplasm_colour,granule_type,granule_colour,granularity,path";
        let row = "BNE_1.jpg,Neutrophil,big,round,unsegmented-band,low,densely,no,clear,light blue,small,pink,yes,PBC_dataset_normal_DIB/neutrophil/BNE_1.jpg";
        let cells = parse_csv(&format!("{head}\n{row}\n")).unwrap();
        assert_eq!(cells[0].cell_type, 4);
        assert_eq!(cells[0].attributes, [0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0]);
        let bad = row.replace("light blue", "green");
        assert_eq!(parse_csv(&format!("{head}\n{bad}")).unwrap_err().0, 2);
    }
}
