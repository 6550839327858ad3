//! The analyser's table: one row per cell, with its filters, sort orders, per-type counts and
//! the CSV/JSON export. The page's export and `wbc analyse --out` both write it through here,
//! so a file from either can be compared line by line, and scored against WBCAtt labels by
//! any tool: the first 13 columns are WBCAtt's own (`img_name, label, cell_size, …`) with its
//! value spellings.

use crate::metrics::argmax;
use crate::morphometry::Morphometry;
use crate::{CellPrediction, ATTRIBUTES, CELL_TYPES};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// Below this probability of its cell type a cell is marked "low confidence".
pub const LOW_CONFIDENCE: f32 = 0.6;

/// One analysed cell, as the table shows and exports it.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub name: String,
    /// The networks' probabilities (after the card's temperatures).
    pub prediction: CellPrediction,
    /// The concept-bottleneck model's cell type and its probability, when a CBM is loaded.
    pub cbm: Option<(usize, f32)>,
    pub morphometry: Option<Morphometry>,
    /// Why the cell carries a warning (unlike the training images, or the two opinions on
    /// its type differ); empty when it carries none.
    pub cautions: Vec<crate::confidence::Caution>,
    /// The user's own label of the cell (a type or a class of their question), if any.
    pub user_label: Option<String>,
    /// The answer of the user's own question (the interpretable classifier's class and its
    /// probability), when a question profile is applied.
    pub question: Option<(String, f32)>,
    /// The attribute values the user gave the cell (value index per attribute), if any.
    pub user_attributes: [Option<usize>; 11],
}

impl Row {
    /// A cell's row: the CBM's verdict on its attribute probabilities when a CBM is given,
    /// the familiarity check's warning when it has one.
    pub fn new(
        name: String,
        prediction: CellPrediction,
        cbm: Option<&crate::cbm::Cbm>,
        morphometry: Option<Morphometry>,
        familiarity: Option<&crate::confidence::Familiarity>,
    ) -> Self {
        let cbm = cbm.map(|cbm| top(&cbm.probabilities(&prediction.concepts())));
        Row {
            name,
            cbm,
            morphometry,
            cautions: familiarity.map(|f| f.reasons.clone()).unwrap_or_default(),
            prediction,
            user_label: None,
            question: None,
            user_attributes: [None; 11],
        }
    }

    /// The attribute values the user gave, as `name=value` joined by "; " (empty if none).
    pub fn user_attributes_text(&self) -> String {
        ATTRIBUTES
            .iter()
            .zip(&self.user_attributes)
            .filter_map(|(a, v)| {
                v.and_then(|v| a.values.get(v))
                    .map(|v| format!("{}={v}", a.name))
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The cell's warning in words, when it has one.
    pub fn warning(&self) -> Option<String> {
        crate::confidence::Caution::warning(&self.cautions)
    }

    /// Carries a warning, for any reason.
    pub fn warned(&self) -> bool {
        !self.cautions.is_empty()
    }

    /// Unlike the training images (the familiarity check).
    pub fn unfamiliar(&self) -> bool {
        self.cautions.iter().any(|c| c.is_unlike_training())
    }

    /// The measured type is sure of another type than the image network.
    pub fn opinions_differ(&self) -> bool {
        self.cautions
            .contains(&crate::confidence::Caution::OpinionsDiffer)
    }

    /// The doubt model finds the cell type likely wrong.
    pub fn in_doubt(&self) -> bool {
        self.cautions.contains(&crate::confidence::Caution::Doubt)
    }

    /// The flags the table shows, in words.
    pub fn flags(&self) -> Vec<&'static str> {
        [
            self.unfamiliar().then_some("unfamiliar"),
            self.in_doubt().then_some("in doubt"),
            self.opinions_differ().then_some("opinions differ"),
            self.low_confidence().then_some("low confidence"),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// The direct cell type and its probability.
    pub fn cell_type(&self) -> (usize, f32) {
        top(&self.prediction.cell_type)
    }

    /// Attribute `k`'s predicted value and its probability.
    pub fn attribute(&self, k: usize) -> (usize, f32) {
        top(&self.prediction.attributes[k])
    }

    pub fn low_confidence(&self) -> bool {
        self.cell_type().1 < LOW_CONFIDENCE
    }

    /// The direct and the concept-bottleneck types differ.
    pub fn disagree(&self) -> bool {
        self.cbm.is_some_and(|(t, _)| t != self.cell_type().0)
    }

    fn measure<T>(&self, f: impl Fn(&Morphometry) -> Option<T>) -> Option<T> {
        self.morphometry.as_ref().and_then(f)
    }

    pub fn nc_ratio(&self) -> Option<f32> {
        self.measure(|m| m.nc_ratio)
    }

    pub fn size_in_red_cells(&self) -> Option<f32> {
        self.measure(|m| m.cell_to_red_cell)
    }

    pub fn lobes(&self) -> Option<usize> {
        self.measure(|m| Some(m.nucleus_lobes))
    }

    pub fn vacuoles(&self) -> Option<usize> {
        self.measure(|m| Some(m.vacuole_count))
    }
}

/// A row for tests: certain of `cell_type`, of the given `(attribute, value)`s and of the
/// first value of every other attribute.
#[cfg(test)]
pub(crate) fn test_row(name: &str, cell_type: usize, values: &[(usize, usize)]) -> Row {
    let mut attributes: Vec<Vec<f32>> = ATTRIBUTES
        .iter()
        .map(|a| {
            let mut v = vec![0.0; a.values.len()];
            v[0] = 1.0;
            v
        })
        .collect();
    for &(k, v) in values {
        attributes[k].fill(0.0);
        attributes[k][v] = 1.0;
    }
    let mut types = vec![0.0; 5];
    types[cell_type] = 1.0;
    Row {
        name: name.into(),
        prediction: CellPrediction {
            attributes,
            cell_type: types,
        },
        cbm: None,
        morphometry: None,
        cautions: Vec::new(),
        user_label: None,
        question: None,
        user_attributes: [None; 11],
    }
}

fn top(p: &[f32]) -> (usize, f32) {
    let i = argmax(p);
    (i, p[i])
}

/// Which rows to show: every set part must hold ("big cells with vacuoles").
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Filter {
    /// The direct cell type.
    pub cell_type: Option<usize>,
    /// A value per attribute ([`ATTRIBUTES`] order).
    pub attributes: [Option<usize>; 11],
    /// Part of the file name (case-insensitive).
    pub text: String,
    /// Only cells carrying the warning or the low-confidence mark.
    pub flagged_only: bool,
}

impl AsRef<Row> for Row {
    fn as_ref(&self) -> &Row {
        self
    }
}

impl Filter {
    pub fn matches(&self, row: &Row) -> bool {
        self.cell_type.is_none_or(|t| row.cell_type().0 == t)
            && self
                .attributes
                .iter()
                .enumerate()
                .all(|(k, v)| v.is_none_or(|v| row.attribute(k).0 == v))
            && (self.text.is_empty() || row.name.to_lowercase().contains(&self.text.to_lowercase()))
            && (!self.flagged_only || row.warned() || row.low_confidence())
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// A column to sort by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SortKey {
    /// The order the cells were loaded in.
    Loaded,
    Name,
    /// Direct type, then its probability.
    CellType,
    CbmType,
    /// Attribute `k`'s value, then its probability.
    Attribute(usize),
    NcRatio,
    Size,
    Lobes,
    Vacuoles,
    /// Warned first, then low confidence.
    Flag,
}

impl SortKey {
    /// Compare two rows; rows without a measurement sort after those with one.
    pub fn compare(self, a: &Row, b: &Row) -> Ordering {
        fn opt<T: PartialOrd>(a: Option<T>, b: Option<T>) -> Ordering {
            match (a, b) {
                (Some(a), Some(b)) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            }
        }
        let by_value = |(va, pa): (usize, f32), (vb, pb): (usize, f32)| {
            va.cmp(&vb)
                .then(pb.partial_cmp(&pa).unwrap_or(Ordering::Equal))
        };
        match self {
            Self::Loaded => Ordering::Equal,
            Self::Name => a.name.to_lowercase().cmp(&b.name.to_lowercase()),
            Self::CellType => by_value(a.cell_type(), b.cell_type()),
            Self::CbmType => opt(a.cbm.map(|c| c.0), b.cbm.map(|c| c.0)),
            Self::Attribute(k) => by_value(a.attribute(k), b.attribute(k)),
            Self::NcRatio => opt(a.nc_ratio(), b.nc_ratio()),
            Self::Size => opt(a.size_in_red_cells(), b.size_in_red_cells()),
            Self::Lobes => opt(a.lobes(), b.lobes()),
            Self::Vacuoles => opt(a.vacuoles(), b.vacuoles()),
            Self::Flag => {
                let rank = |r: &Row| (!r.warned(), !r.low_confidence());
                rank(a).cmp(&rank(b))
            }
        }
    }
}

/// The indices of the rows that pass `filter`, in `key` order (stable: ties keep the loaded
/// order), reversed when `descending`.
pub fn view<R: AsRef<Row>>(
    rows: &[R],
    filter: &Filter,
    key: SortKey,
    descending: bool,
) -> Vec<usize> {
    let mut shown: Vec<usize> = (0..rows.len())
        .filter(|&i| filter.matches(rows[i].as_ref()))
        .collect();
    shown.sort_by(|&a, &b| {
        let o = key.compare(rows[a].as_ref(), rows[b].as_ref());
        if descending {
            o.reverse()
        } else {
            o
        }
    });
    shown
}

/// Cells per direct type (a differential count), [`CELL_TYPES`] order.
pub fn counts<'a>(rows: impl IntoIterator<Item = &'a Row>) -> [usize; 5] {
    let mut n = [0; 5];
    for r in rows {
        n[r.cell_type().0] += 1;
    }
    n
}

/// The CSV's columns: WBCAtt's 13, then probabilities, the CBM, the measurements, the
/// warnings, the user's own label and question's answer, and the attribute values the user
/// gave ("nucleus_shape=indented; …").
pub fn csv_header() -> Vec<String> {
    let mut h = vec!["img_name".to_string(), "label".to_string()];
    h.extend(ATTRIBUTES.iter().map(|a| a.name.to_string()));
    h.push("label_probability".into());
    h.extend(ATTRIBUTES.iter().map(|a| format!("{}_probability", a.name)));
    h.extend(
        [
            "cbm_label",
            "cbm_probability",
            "nuclear_cytoplasmic_ratio_measured",
            "cell_size_in_red_cells",
            "nucleus_lobes",
            "vacuole_count",
            "unfamiliar",
            "in_doubt",
            "opinions_differ",
            "low_confidence",
            "user_label",
            "question_answer",
            "question_probability",
            "user_attributes",
        ]
        .map(String::from),
    );
    h
}

fn num(v: Option<f32>) -> String {
    v.map(|v| format!("{v:.4}")).unwrap_or_default()
}

/// One row's fields, in [`csv_header`] order.
pub fn csv_fields(row: &Row) -> Vec<String> {
    let (t, p) = row.cell_type();
    let mut f = vec![row.name.clone(), CELL_TYPES[t].to_string()];
    f.extend(
        ATTRIBUTES
            .iter()
            .enumerate()
            .map(|(k, a)| a.values[row.attribute(k).0].to_string()),
    );
    f.push(num(Some(p)));
    f.extend((0..ATTRIBUTES.len()).map(|k| num(Some(row.attribute(k).1))));
    f.push(
        row.cbm
            .map(|(t, _)| CELL_TYPES[t].to_string())
            .unwrap_or_default(),
    );
    f.push(num(row.cbm.map(|c| c.1)));
    f.push(num(row.nc_ratio()));
    f.push(num(row.size_in_red_cells()));
    f.push(row.lobes().map(|n| n.to_string()).unwrap_or_default());
    f.push(row.vacuoles().map(|n| n.to_string()).unwrap_or_default());
    f.push(row.unfamiliar().to_string());
    f.push(row.in_doubt().to_string());
    f.push(row.opinions_differ().to_string());
    f.push(row.low_confidence().to_string());
    f.push(row.user_label.clone().unwrap_or_default());
    f.push(
        row.question
            .as_ref()
            .map(|q| q.0.clone())
            .unwrap_or_default(),
    );
    f.push(num(row.question.as_ref().map(|q| q.1)));
    f.push(row.user_attributes_text());
    f
}

/// The table as CSV (header line first, `\n` line ends; a name holding a comma or a quote
/// is quoted, so the export loads back as a labels file).
pub fn to_csv<'a>(rows: impl IntoIterator<Item = &'a Row>) -> String {
    crate::csv_text::write(std::iter::once(csv_header()).chain(rows.into_iter().map(csv_fields)))
}

/// The table as JSON: one object per row keyed by the CSV's column names, with the full
/// probability vectors and the warning's text as well.
pub fn to_json<'a>(rows: impl IntoIterator<Item = &'a Row>) -> serde_json::Value {
    let header = csv_header();
    let rows: Vec<serde_json::Value> = rows
        .into_iter()
        .map(|r| {
            let mut obj = serde_json::Map::new();
            for (h, f) in header.iter().zip(csv_fields(r)) {
                obj.insert(h.clone(), serde_json::Value::String(f));
            }
            obj.insert("warning".into(), serde_json::json!(r.warning()));
            obj.insert(
                "probabilities".into(),
                serde_json::json!({
                    "attributes": r.prediction.attributes,
                    "cell_type": r.prediction.cell_type,
                }),
            );
            serde_json::Value::Object(obj)
        })
        .collect();
    serde_json::Value::Array(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, cell_type: usize, size: usize, vacuole: usize, p: f32) -> Row {
        let mut r = test_row(name, cell_type, &[(0, size), (5, vacuole)]);
        r.prediction.attributes[0][size] = 0.9;
        r.prediction.cell_type = vec![(1.0 - p) / 4.0; 5];
        r.prediction.cell_type[cell_type] = p;
        r.cbm = Some((cell_type, 0.8));
        r
    }

    #[test]
    fn filters_combine_and_counts_follow_them() {
        // ATTRIBUTES[0] is cell_size (big, small), [5] cytoplasm_vacuole (no, yes).
        assert_eq!(ATTRIBUTES[0].name, "cell_size");
        assert_eq!(ATTRIBUTES[5].name, "cytoplasm_vacuole");
        let rows = vec![
            row("a.jpg", 3, 0, 1, 0.9),
            row("b.jpg", 3, 1, 1, 0.9),
            row("c.jpg", 4, 0, 0, 0.5),
            row("D.png", 4, 0, 1, 0.95),
        ];
        let mut f = Filter::default();
        f.attributes[0] = Some(0);
        f.attributes[5] = Some(1);
        let big_with_vacuoles = view(&rows, &f, SortKey::Loaded, false);
        assert_eq!(big_with_vacuoles, vec![0, 3]);
        assert_eq!(
            counts(big_with_vacuoles.iter().map(|&i| &rows[i])),
            [0, 0, 0, 1, 1]
        );
        f.cell_type = Some(4);
        assert_eq!(view(&rows, &f, SortKey::Loaded, false), vec![3]);
        let by_text = Filter {
            text: "d.P".into(),
            ..Filter::default()
        };
        assert_eq!(view(&rows, &by_text, SortKey::Loaded, false), vec![3]);
        let flagged = Filter {
            flagged_only: true,
            ..Filter::default()
        };
        assert_eq!(view(&rows, &flagged, SortKey::Loaded, false), vec![2]);
    }

    #[test]
    fn sorting_is_stable_and_reversible() {
        let rows = vec![
            row("b.jpg", 4, 0, 0, 0.9),
            row("a.jpg", 2, 0, 0, 0.7),
            row("c.jpg", 2, 0, 0, 0.99),
        ];
        let all = Filter::default();
        assert_eq!(view(&rows, &all, SortKey::Name, false), vec![1, 0, 2]);
        assert_eq!(view(&rows, &all, SortKey::Name, true), vec![2, 0, 1]);
        // Same type: the more probable first.
        assert_eq!(view(&rows, &all, SortKey::CellType, false), vec![2, 1, 0]);
        assert_eq!(view(&rows, &all, SortKey::Loaded, false), vec![0, 1, 2]);
    }

    #[test]
    fn csv_uses_wbcatt_columns_and_spellings_and_quotes_names() {
        let mut r = row("odd, \"name\".jpg", 3, 1, 1, 0.55);
        r.cbm = Some((4, 0.6));
        let csv = to_csv([&r]);
        let mut lines = csv.lines();
        let header = lines.next().unwrap();
        assert!(header.starts_with(
            "img_name,label,cell_size,cell_shape,nucleus_shape,nuclear_cytoplasmic_ratio,\
             chromatin_density,cytoplasm_vacuole,cytoplasm_texture,cytoplasm_colour,granule_type,\
             granule_colour,granularity,"
        ));
        let line = lines.next().unwrap();
        assert!(
            line.starts_with("\"odd, \"\"name\"\".jpg\",Monocyte,small,round,"),
            "{line}"
        );
        // …the warnings, then no label of the user's and no question answered.
        assert!(line.ends_with(",false,true,,,,"), "{line}");
        assert!(r.disagree());
        // The parser that reads WBCAtt's own files reads the export's first columns.
        let fields = csv_fields(&r);
        assert_eq!(fields.len(), csv_header().len());
        let mut labelled = r.clone();
        labelled.user_attributes[2] = Some(1);
        labelled.user_attributes[7] = Some(0);
        assert_eq!(
            csv_fields(&labelled).pop().unwrap(),
            format!(
                "nucleus_shape={}; cytoplasm_colour=light blue",
                ATTRIBUTES[2].values[1]
            )
        );
        assert_eq!(fields[7], "yes");
        let json = to_json([&r]);
        assert_eq!(json[0]["label"], "Monocyte");
        assert_eq!(json[0]["cbm_label"], "Neutrophil");
    }

    #[test]
    fn a_warning_for_differing_opinions_is_not_called_unfamiliar() {
        use crate::confidence::Caution;
        let mut r = test_row("a.jpg", 3, &[]);
        assert!(r.flags().is_empty());
        r.cautions = vec![Caution::OpinionsDiffer];
        assert_eq!(r.flags(), vec!["opinions differ"]);
        let header = csv_header();
        let fields = csv_fields(&r);
        let column = |name: &str| fields[header.iter().position(|h| h == name).unwrap()].clone();
        assert_eq!(column("unfamiliar"), "false");
        assert_eq!(column("opinions_differ"), "true");
        assert!(Filter {
            flagged_only: true,
            ..Filter::default()
        }
        .matches(&r));
        r.cautions.insert(0, Caution::Look);
        assert_eq!(r.flags(), vec!["unfamiliar", "opinions differ"]);
        r.cautions.push(Caution::Doubt);
        assert_eq!(r.flags(), vec!["unfamiliar", "in doubt", "opinions differ"]);
        let fields = csv_fields(&r);
        let column = |name: &str| fields[header.iter().position(|h| h == name).unwrap()].clone();
        assert_eq!(column("in_doubt"), "true");
    }
}
