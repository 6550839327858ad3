//! Dataset audit (the paper's bias discovery, §5.4): for a set of analysed cells, how each
//! attribute's values spread over the predicted types, and, when the user supplies labels
//! (WBCAtt's CSV format), both classifiers' accuracy and confusion, the error rate per
//! attribute value with a 95% interval (the values where the model fails most first: this is
//! how the paper found blue-cytoplasm cells being missed), and the model's agreement with any
//! attribute labels.

use crate::table::Row;
use crate::{ATTRIBUTES, CELL_TYPES};
use std::collections::BTreeMap;

/// What a labels file says about one cell; attribute columns are optional.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Labels {
    pub cell_type: Option<usize>,
    pub attributes: [Option<usize>; 11],
}

/// Read a labels CSV: `img_name` and `label` columns (cell types spelt as WBCAtt does,
/// case-insensitive), any of the 11 attribute columns; other columns are ignored. Errors name
/// the line.
pub fn parse_labels(text: &str) -> Result<BTreeMap<String, Labels>, String> {
    let table = crate::csv_text::read(text).map_err(|e| {
        if e.contains("empty") {
            "the labels file is empty".to_string()
        } else {
            e
        }
    })?;
    let header: Vec<String> = table.header.iter().map(|h| h.to_lowercase()).collect();
    let col = |name: &str| header.iter().position(|h| h == name);
    let name_col = col("img_name").ok_or("the labels file has no img_name column")?;
    let label_col = col("label");
    let attr_cols: Vec<Option<usize>> = ATTRIBUTES.iter().map(|a| col(a.name)).collect();
    if label_col.is_none() && attr_cols.iter().all(Option::is_none) {
        return Err("the labels file has neither a label column nor attribute columns".into());
    }
    let find = |options: &[&str], v: &str, line: usize, what: &str| {
        options
            .iter()
            .position(|o| o.eq_ignore_ascii_case(v.trim()))
            .ok_or_else(|| format!("line {}: unknown {what} \"{v}\"", line + 1))
    };
    let mut out = BTreeMap::new();
    for (line, fields) in &table.records {
        let line = line - 1;
        let field = |c: usize| fields.get(c).map(String::as_str).filter(|f| !f.is_empty());
        let name = field(name_col).ok_or_else(|| format!("line {}: no img_name", line + 1))?;
        let mut labels = Labels::default();
        if let Some(v) = label_col.and_then(field) {
            labels.cell_type = Some(find(&CELL_TYPES, v, line, "cell type")?);
        }
        for (k, c) in attr_cols.iter().enumerate() {
            if let Some(v) = c.and_then(field) {
                labels.attributes[k] =
                    Some(find(ATTRIBUTES[k].values, v, line, ATTRIBUTES[k].name)?);
            }
        }
        out.insert(name.to_string(), labels);
    }
    Ok(out)
}

/// `counts[type][attribute][value]`: predicted attribute values of the cells of each
/// predicted type.
pub fn value_distribution<'a>(rows: impl IntoIterator<Item = &'a Row>) -> Vec<Vec<Vec<usize>>> {
    let mut counts: Vec<Vec<Vec<usize>>> = (0..CELL_TYPES.len())
        .map(|_| ATTRIBUTES.iter().map(|a| vec![0; a.values.len()]).collect())
        .collect();
    for r in rows {
        let t = r.cell_type().0;
        for (k, slot) in counts[t].iter_mut().enumerate() {
            slot[r.attribute(k).0] += 1;
        }
    }
    counts
}

/// Wilson score interval of `k` successes in `n` (95%).
pub fn wilson(k: usize, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (n, p, z) = (n as f64, k as f64 / n as f64, 1.959964);
    let centre = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
    let half = z * ((p * (1.0 - p) + z * z / (4.0 * n)) / n).sqrt() / (1.0 + z * z / n);
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// How both classifiers do against the labelled cell types.
#[derive(Clone, Debug, PartialEq)]
pub struct TypeScores {
    /// Cells with a type label among the rows.
    pub labelled: usize,
    pub direct_correct: usize,
    pub cbm_correct: usize,
    /// `[truth][prediction]`.
    pub direct_confusion: [[usize; 5]; 5],
    pub cbm_confusion: [[usize; 5]; 5],
}

/// The direct type's errors among cells whose predicted `attribute` is `value`.
#[derive(Clone, Debug, PartialEq)]
pub struct ValueErrors {
    pub attribute: usize,
    pub value: usize,
    pub cells: usize,
    pub errors: usize,
    /// Error rate and its 95% Wilson interval.
    pub rate: f64,
    pub low: f64,
    pub high: f64,
}

/// Agreement of the predicted attribute with the labelled one.
#[derive(Clone, Debug, PartialEq)]
pub struct AttributeAgreement {
    pub attribute: usize,
    pub labelled: usize,
    pub agree: usize,
}

/// Everything the dataset view shows once labels are loaded.
#[derive(Clone, Debug, PartialEq)]
pub struct Audit {
    pub types: TypeScores,
    /// Worst first (by rate, then by the interval's lower end, then by count).
    pub errors_by_value: Vec<ValueErrors>,
    /// Only attributes that some labelled cell carries.
    pub agreement: Vec<AttributeAgreement>,
    /// Rows whose file name the labels do not mention.
    pub unmatched: usize,
}

/// Cross the rows with their labels (matched by file name).
pub fn audit(rows: &[Row], labels: &BTreeMap<String, Labels>) -> Audit {
    let mut types = TypeScores {
        labelled: 0,
        direct_correct: 0,
        cbm_correct: 0,
        direct_confusion: [[0; 5]; 5],
        cbm_confusion: [[0; 5]; 5],
    };
    let mut agreement: Vec<AttributeAgreement> = (0..ATTRIBUTES.len())
        .map(|k| AttributeAgreement {
            attribute: k,
            labelled: 0,
            agree: 0,
        })
        .collect();
    let mut unmatched = 0;
    for r in rows {
        let Some(l) = labels.get(&r.name) else {
            unmatched += 1;
            continue;
        };
        if let Some(truth) = l.cell_type {
            let direct = r.cell_type().0;
            types.labelled += 1;
            types.direct_confusion[truth][direct] += 1;
            types.direct_correct += usize::from(direct == truth);
            let cbm = r.cbm.map_or(direct, |c| c.0);
            types.cbm_confusion[truth][cbm] += 1;
            types.cbm_correct += usize::from(cbm == truth);
        }
        for (k, a) in agreement.iter_mut().enumerate() {
            if let Some(v) = l.attributes[k] {
                a.labelled += 1;
                a.agree += usize::from(r.attribute(k).0 == v);
            }
        }
    }
    let errors_by_value = errors_by_value(rows, |r| {
        let truth = labels.get(&r.name)?.cell_type?;
        Some(r.cell_type().0 != truth)
    });
    agreement.retain(|a| a.labelled > 0);
    Audit {
        types,
        errors_by_value,
        agreement,
        unmatched,
    }
}

/// The error rate among cells with each predicted attribute value, worst first (by rate, then
/// by the interval's lower end, then by count): `wrong` says whether a row's answer is wrong,
/// `None` for a row without a label. The paper's bias discovery (§5.4), for the cell type or
/// for the user's own question.
pub fn errors_by_value(rows: &[Row], wrong: impl Fn(&Row) -> Option<bool>) -> Vec<ValueErrors> {
    let mut by_value: BTreeMap<(usize, usize), (usize, usize)> = BTreeMap::new();
    for r in rows {
        let Some(w) = wrong(r) else { continue };
        for k in 0..ATTRIBUTES.len() {
            let e = by_value.entry((k, r.attribute(k).0)).or_default();
            e.0 += 1;
            e.1 += usize::from(w);
        }
    }
    let mut errors: Vec<ValueErrors> = by_value
        .into_iter()
        .map(|((attribute, value), (cells, errors))| {
            let (low, high) = wilson(errors, cells);
            ValueErrors {
                attribute,
                value,
                cells,
                errors,
                rate: errors as f64 / cells as f64,
                low,
                high,
            }
        })
        .collect();
    errors.sort_by(|a, b| {
        b.rate
            .total_cmp(&a.rate)
            .then(b.low.total_cmp(&a.low))
            .then(b.cells.cmp(&a.cells))
    });
    errors
}

/// The user's own question's errors per predicted attribute value: rows with the user's
/// label and the question's answer (a class name, compared without case).
pub fn question_errors(rows: &[Row]) -> Vec<ValueErrors> {
    errors_by_value(rows, |r| {
        let label = r.user_label.as_ref()?;
        let (answer, _) = r.question.as_ref()?;
        Some(!answer.eq_ignore_ascii_case(label.trim()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, cell_type: usize, colour: usize, cbm: usize) -> Row {
        let mut r = crate::table::test_row(name, cell_type, &[(7, colour)]);
        r.cbm = Some((cbm, 0.9));
        r
    }

    /// The page's own export loads back as a labels file: a file name holding a comma or a
    /// quote survives the round trip, and a byte-order mark (Excel's UTF-8 CSV) is ignored.
    #[test]
    fn the_exported_table_loads_back_as_labels() {
        use crate::table::{to_csv, Row};
        let mut p = crate::CellPrediction {
            attributes: ATTRIBUTES
                .iter()
                .map(|a| {
                    let mut v = vec![0.0; a.values.len()];
                    v[0] = 1.0;
                    v
                })
                .collect(),
            cell_type: vec![0.0; CELL_TYPES.len()],
        };
        p.cell_type[3] = 1.0;
        let names = ["plain.jpg", "smear 3, field 2.jpg", "the \"odd\" one.png"];
        let rows: Vec<Row> = names
            .iter()
            .map(|n| Row::new(n.to_string(), p.clone(), None, None, None))
            .collect();
        let text = to_csv(&rows);
        let labels = parse_labels(&text).expect("the export is a labels file");
        assert_eq!(labels.len(), 3);
        for n in names {
            assert_eq!(labels[n].cell_type, Some(3), "{n}");
            assert_eq!(labels[n].attributes[0], Some(0), "{n}");
        }
        let bom = format!("\u{feff}{text}");
        assert_eq!(parse_labels(&bom).expect("with a BOM").len(), 3);
        let crlf = text.replace('\n', "\r\n");
        assert_eq!(parse_labels(&crlf).expect("with CRLF").len(), 3);
    }

    #[test]
    fn labels_parse_leniently_and_name_bad_lines() {
        let text =
            "img_name,label,cytoplasm_colour,other\na.jpg,Neutrophil,blue,x\nb.jpg,lymphocyte,,y\n";
        let l = parse_labels(text).unwrap();
        assert_eq!(l["a.jpg"].cell_type, Some(4));
        assert_eq!(ATTRIBUTES[7].name, "cytoplasm_colour");
        assert_eq!(l["a.jpg"].attributes[7], Some(1));
        assert_eq!(l["b.jpg"].cell_type, Some(2));
        assert_eq!(l["b.jpg"].attributes[7], None);
        let bad = parse_labels("img_name,label\na.jpg,Promyelocyte\n").unwrap_err();
        assert!(
            bad.contains("line 2") && bad.contains("Promyelocyte"),
            "{bad}"
        );
        assert!(parse_labels("name,type\n").is_err());
    }

    #[test]
    fn the_value_where_the_model_fails_most_comes_first() {
        // Blue cytoplasm (value 1): 3 of 4 wrong; light blue (0): 0 of 4.
        let mut rows = Vec::new();
        let mut labels = BTreeMap::new();
        for i in 0..8 {
            let blue = i < 4;
            let truth = 2;
            let predicted = if blue && i > 0 { 3 } else { 2 };
            let name = format!("{i}.jpg");
            rows.push(row(&name, predicted, usize::from(blue), 2));
            labels.insert(
                name,
                Labels {
                    cell_type: Some(truth),
                    attributes: {
                        let mut a = [None; 11];
                        a[7] = Some(1);
                        a
                    },
                },
            );
        }
        rows.push(row("unlabelled.jpg", 0, 0, 0));
        let a = audit(&rows, &labels);
        assert_eq!(a.unmatched, 1);
        assert_eq!(
            (
                a.types.labelled,
                a.types.direct_correct,
                a.types.cbm_correct
            ),
            (8, 5, 8)
        );
        assert_eq!(a.types.direct_confusion[2][3], 3);
        let worst = &a.errors_by_value[0];
        assert_eq!(
            (worst.attribute, worst.value, worst.cells, worst.errors),
            (7, 1, 4, 3)
        );
        assert!(worst.low < 0.75 && worst.high > 0.75);
        assert_eq!(a.agreement.len(), 1);
        assert_eq!((a.agreement[0].labelled, a.agreement[0].agree), (8, 4));
        let d = value_distribution(&rows);
        assert_eq!(d[3][7], vec![0, 3, 0]);
    }

    /// The user's question: rows carry their label and the question's answer; the value
    /// where the answers go wrong comes first, and unlabelled rows are left out.
    #[test]
    fn the_questions_errors_are_counted_per_value() {
        let mut rows = Vec::new();
        for i in 0..8 {
            let colour = i % 2;
            let mut r = row(&format!("{i}.jpg"), 0, colour, 0);
            r.user_label = Some("Band".into());
            let answer = if colour == 1 { "segmented" } else { "band" };
            r.question = Some((answer.into(), 0.8));
            rows.push(r);
        }
        rows.push(row("unlabelled.jpg", 0, 1, 0));
        let e = question_errors(&rows);
        let first = &e[0];
        assert_eq!(
            (first.attribute, first.value, first.cells, first.errors),
            (7, 1, 4, 4)
        );
        assert!(e.iter().all(|v| v.cells <= 8));
    }

    #[test]
    fn wilson_interval_brackets_the_rate() {
        let (lo, hi) = wilson(3, 4);
        assert!(
            lo > 0.30 && lo < 0.31 && hi > 0.95 && hi < 0.96,
            "{lo} {hi}"
        );
        assert_eq!(wilson(0, 0), (0.0, 1.0));
    }
}
