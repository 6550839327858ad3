//! The glossary: every WBCAtt attribute and each of its 31 values in the project's own words —
//! what it means, where to look in the image, and how it helps tell the five cell types
//! apart. The page shows it with example cells; the texts live here so they are checked
//! against the schema (one entry per value, in the schema's order).

/// One attribute's entry.
pub struct AttributeEntry {
    pub attribute: &'static str,
    /// What the attribute describes and where to look.
    pub look_at: &'static str,
    /// One line per value, in the schema's order: (meaning, how it separates the types).
    pub values: &'static [(&'static str, &'static str)],
}

pub const GLOSSARY: [AttributeEntry; 11] = [
    AttributeEntry {
        attribute: "cell_size",
        look_at: "The whole white cell's diameter, judged against the red cells around it (about 7–8 µm each): magnification changes both together, so the comparison holds on any microscope.",
        values: &[
            ("big: clearly wider than about one and a half red cells.", "Monocytes, most neutrophils and eosinophils are big; a big cell with a round nucleus and much cytoplasm points to a monocyte rather than a lymphocyte."),
            ("small: about the size of one or one and a half red cells.", "Typical of small lymphocytes; basophils are often on the small side too."),
        ],
    },
    AttributeEntry {
        attribute: "cell_shape",
        look_at: "The outline of the cell membrane: a smooth circle or ellipse, or bumps, points and flattened sides.",
        values: &[
            ("round: a smooth, nearly circular outline.", "Most lymphocytes, neutrophils and eosinophils in a good smear."),
            ("irregular: an uneven outline, with bulges, points or sides pressed flat by neighbours.", "Monocytes often have irregular outlines; so do cells squeezed between red cells or damaged in spreading."),
        ],
    },
    AttributeEntry {
        attribute: "nucleus_shape",
        look_at: "The dark purple nucleus: is it one piece or several lobes joined by thin threads, and is its outline round, bent or folded?",
        values: &[
            ("segmented-bilobed: two lobes joined by a thin strand.", "The classic eosinophil nucleus (two lobes, 'spectacles'); some neutrophils too."),
            ("segmented-multilobed: three to five lobes joined by thin strands.", "The mature (segmented) neutrophil."),
            ("unsegmented-band: a curved sausage or horseshoe of even width, not pinched into lobes.", "The band neutrophil, one step younger than the segmented one; a rise in bands suggests infection."),
            ("unsegmented-round: a single round or oval nucleus.", "Lymphocytes: a round nucleus filling most of the cell."),
            ("unsegmented-indented: one piece with a notch or fold, kidney- or bean-shaped.", "Monocytes (kidney-shaped, folded nucleus); some lymphocytes have a small notch."),
            ("irregular: one piece of no regular shape, often hidden under granules.", "Basophils, whose nucleus is masked by dark granules, and some monocytes."),
        ],
    },
    AttributeEntry {
        attribute: "nuclear_cytoplasmic_ratio",
        look_at: "How much of the cell the nucleus takes: compare the purple nucleus area with the paler cytoplasm around it.",
        values: &[
            ("low: plenty of cytoplasm around the nucleus.", "Neutrophils, eosinophils, monocytes and basophils."),
            ("high: the nucleus fills most of the cell, with a thin rim of cytoplasm.", "The hallmark of lymphocytes (and of immature blasts)."),
        ],
    },
    AttributeEntry {
        attribute: "chromatin_density",
        look_at: "The texture inside the nucleus: solid, dark and clumped, or finer, paler and lacy.",
        values: &[
            ("densely: dark, condensed, clumped chromatin.", "Mature cells: neutrophils, eosinophils, lymphocytes and basophils."),
            ("loosely: finer, paler, more open (lacy) chromatin.", "Monocytes, whose chromatin looks stringy and lighter than a lymphocyte's."),
        ],
    },
    AttributeEntry {
        attribute: "cytoplasm_vacuole",
        look_at: "Clear, round, unstained holes in the cytoplasm.",
        values: &[
            ("no: the cytoplasm has no clear holes.", "Most cells of every type."),
            ("yes: one or more clear vacuoles.", "Common in monocytes; in neutrophils vacuoles can mean infection (toxic change) or a smear left standing."),
        ],
    },
    AttributeEntry {
        attribute: "cytoplasm_texture",
        look_at: "The cytoplasm between the granules: smooth and clear, or finely grainy like ground glass.",
        values: &[
            ("clear: smooth, transparent cytoplasm.", "Lymphocytes; granulocytes' background cytoplasm under the granules."),
            ("frosted: a fine ground-glass look.", "Monocytes' grey-blue 'ground glass' cytoplasm."),
        ],
    },
    AttributeEntry {
        attribute: "cytoplasm_colour",
        look_at: "The colour of the cytoplasm itself, away from the nucleus and the granules.",
        values: &[
            ("light blue: pale blue or almost colourless.", "Neutrophils, eosinophils and basophils (under their granules)."),
            ("blue: a clear, stronger blue.", "Lymphocytes (sky blue); very deep blue suggests a reactive lymphocyte."),
            ("purple blue: greyish, slightly purple blue.", "Monocytes' grey-blue cytoplasm."),
        ],
    },
    AttributeEntry {
        attribute: "granule_type",
        look_at: "The dots in the cytoplasm: are they there, and are they fine dust, round beads or large coarse blobs?",
        values: &[
            ("small: fine, dust-like granules.", "Neutrophils (fine lilac granules); monocytes can show very fine ones."),
            ("round: evenly sized round beads filling the cytoplasm.", "Eosinophils: round orange-red granules."),
            ("coarse: large, uneven, dark granules that may cover the nucleus.", "Basophils: coarse dark purple-black granules."),
            ("nil: no visible granules.", "Lymphocytes (apart from a few large granular ones)."),
        ],
    },
    AttributeEntry {
        attribute: "granule_colour",
        look_at: "The colour of the granules, when there are any.",
        values: &[
            ("pink: pale pink to lilac.", "Neutrophils."),
            ("red: orange-red.", "Eosinophils (they take up the red eosin stain)."),
            ("purple: dark purple to black.", "Basophils."),
            ("nil: no granules to colour.", "Lymphocytes and most monocytes."),
        ],
    },
    AttributeEntry {
        attribute: "granularity",
        look_at: "Whether the cytoplasm carries visible granules at all.",
        values: &[
            ("yes: granules are visible.", "The granulocytes: neutrophils, eosinophils and basophils."),
            ("no: no visible granules.", "Lymphocytes and monocytes (the agranulocytes)."),
        ],
    },
];

/// The entry of the attribute named `name`.
pub fn entry(name: &str) -> Option<&'static AttributeEntry> {
    GLOSSARY.iter().find(|e| e.attribute == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ATTRIBUTES;

    /// One entry per attribute, in the schema's order, one text per value; each value's
    /// text starts with the value's own name.
    #[test]
    fn glossary_matches_the_schema() {
        let mut values = 0;
        for (e, a) in GLOSSARY.iter().zip(ATTRIBUTES.iter()) {
            assert_eq!(e.attribute, a.name);
            assert_eq!(e.values.len(), a.values.len(), "{}", a.name);
            for ((meaning, separates), v) in e.values.iter().zip(a.values) {
                assert!(
                    meaning.starts_with(&format!("{v}:")),
                    "{}: {meaning}",
                    a.name
                );
                assert!(!separates.is_empty());
                values += 1;
            }
        }
        assert_eq!(values, 31);
        assert!(entry("nucleus_shape").is_some() && entry("nope").is_none());
    }
}
