//! The WBCAtt attribute set: 11 attributes with 31 values, and the 5 cell types, spelled
//! exactly as in the official CSVs so that predictions can be compared with labels directly.

/// One morphological attribute of a white blood cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attribute {
    /// CSV column name, e.g. `granule_colour`.
    pub name: &'static str,
    /// Human-readable title.
    pub title: &'static str,
    /// The part of the cell the attribute describes (the paper's grouping).
    pub group: &'static str,
    /// The values, spelled as in the CSVs, in the order the network's head emits them.
    pub values: &'static [&'static str],
    /// A one-line definition in the project's own words.
    pub definition: &'static str,
}

impl Attribute {
    /// Index of `value` among this attribute's values.
    pub fn value_index(&self, value: &str) -> Option<usize> {
        self.values.iter().position(|v| *v == value)
    }
}

/// The 11 WBCAtt attributes in the order the network's heads use.
pub const ATTRIBUTES: [Attribute; 11] = [
    Attribute {
        name: "cell_size",
        title: "Cell size",
        group: "cell",
        values: &["big", "small"],
        definition: "Whole white cell compared with the surrounding red cells: small is about red-cell size, big is clearly larger.",
    },
    Attribute {
        name: "cell_shape",
        title: "Cell shape",
        group: "cell",
        values: &["round", "irregular"],
        definition: "Outline of the whole cell: a smooth circle or oval, or an uneven, bulging outline.",
    },
    Attribute {
        name: "nucleus_shape",
        title: "Nucleus shape",
        group: "nucleus",
        values: &[
            "segmented-bilobed",
            "segmented-multilobed",
            "unsegmented-band",
            "unsegmented-round",
            "unsegmented-indented",
            "irregular",
        ],
        definition: "How the nucleus is divided: two lobes, three or more lobes joined by thin strands, a curved band, a round mass, a kidney-like indent, or an irregular shape.",
    },
    Attribute {
        name: "nuclear_cytoplasmic_ratio",
        title: "N:C ratio",
        group: "nucleus",
        values: &["low", "high"],
        definition: "Share of the cell taken by the nucleus: high when the nucleus fills most of the cell.",
    },
    Attribute {
        name: "chromatin_density",
        title: "Chromatin density",
        group: "nucleus",
        values: &["densely", "loosely"],
        definition: "How compact the nuclear chromatin looks: dark and clumped, or pale and open.",
    },
    Attribute {
        name: "cytoplasm_vacuole",
        title: "Cytoplasm vacuoles",
        group: "cytoplasm",
        values: &["no", "yes"],
        definition: "Clear, round holes in the cytoplasm.",
    },
    Attribute {
        name: "cytoplasm_texture",
        title: "Cytoplasm texture",
        group: "cytoplasm",
        values: &["clear", "frosted"],
        definition: "Whether the cytoplasm looks smooth and transparent or finely ground-glass.",
    },
    Attribute {
        name: "cytoplasm_colour",
        title: "Cytoplasm colour",
        group: "cytoplasm",
        values: &["light blue", "blue", "purple blue"],
        definition: "Background colour of the cytoplasm between granules.",
    },
    Attribute {
        name: "granule_type",
        title: "Granule type",
        group: "granules",
        values: &["small", "round", "coarse", "nil"],
        definition: "Look of the cytoplasmic granules: fine dust, distinct round beads, large coarse dots, or none.",
    },
    Attribute {
        name: "granule_colour",
        title: "Granule colour",
        group: "granules",
        values: &["pink", "red", "purple", "nil"],
        definition: "Stain colour of the granules: pink (neutrophilic), orange-red (eosinophilic), dark purple (basophilic), or none.",
    },
    Attribute {
        name: "granularity",
        title: "Granularity",
        group: "granules",
        values: &["yes", "no"],
        definition: "Whether granules are visible in the cytoplasm at all.",
    },
];

/// The five cell types, spelled as in the CSVs' `label` column.
pub const CELL_TYPES: [&str; 5] = [
    "Basophil",
    "Eosinophil",
    "Lymphocyte",
    "Monocyte",
    "Neutrophil",
];

/// Total number of attribute values (31): the width of the concept vector.
pub const NUM_ATTRIBUTE_VALUES: usize = {
    let mut n = 0;
    let mut i = 0;
    while i < ATTRIBUTES.len() {
        n += ATTRIBUTES[i].values.len();
        i += 1;
    }
    n
};

/// Width of the attribute network's head: the 31 attribute logits, then the 5 cell-type logits.
pub const HEAD_WIDTH: usize = NUM_ATTRIBUTE_VALUES + CELL_TYPES.len();

/// The paper's grouping of the attributes, in the order the page shows them.
pub const ATTRIBUTE_GROUPS: [&str; 4] = ["cell", "nucleus", "cytoplasm", "granules"];

/// Side (pixels) of the square PBC crop: the scale at which the classical labeller, the
/// morphometry and every label map exchanged between worker and page are made.
pub const PBC_SIDE: u32 = 360;

/// Where attribute `k`'s values start in the concept vector (and in the network's head).
pub fn attribute_offset(k: usize) -> usize {
    ATTRIBUTES[..k].iter().map(|a| a.values.len()).sum()
}

/// Look up an attribute by its CSV column name.
pub fn attribute(name: &str) -> Option<(usize, &'static Attribute)> {
    ATTRIBUTES.iter().enumerate().find(|(_, a)| a.name == name)
}

/// Index of a cell type label.
pub fn cell_type_index(label: &str) -> Option<usize> {
    CELL_TYPES.iter().position(|c| *c == label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_has_31_values_and_unique_names() {
        assert_eq!(NUM_ATTRIBUTE_VALUES, 31);
        let mut names: Vec<_> = ATTRIBUTES.iter().map(|a| a.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 11);
        assert_eq!(
            attribute("granule_colour").unwrap().1.value_index("purple"),
            Some(2)
        );
        assert_eq!(cell_type_index("Monocyte"), Some(3));
    }
}
