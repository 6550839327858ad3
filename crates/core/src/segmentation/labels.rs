//! The six WBCAtt+ label ids, their names and overlay colours: what every part of the
//! segmentation shares (and imports from here, not from the module above it).

/// Label id: background, or anything that is not part of the labelled classes (including a
/// second white cell).
pub const OTHER: u8 = 0;
/// Label id: cytoplasm of the central white cell.
pub const CYTOPLASM: u8 = 1;
/// Label id: nucleus of the central white cell.
pub const NUCLEUS: u8 = 2;
/// Label id: platelet.
pub const PLATELET: u8 = 3;
/// Label id: red blood cell.
pub const RED_CELL: u8 = 4;
/// Label id: vacuole inside the cytoplasm of the central white cell.
pub const VACUOLE: u8 = 5;
/// Number of labels.
pub const NUM_LABELS: usize = 6;

/// Human-readable label names, indexed by label id.
pub const LABEL_NAMES: [&str; NUM_LABELS] = [
    "other",
    "cytoplasm",
    "nucleus",
    "platelet",
    "red blood cell",
    "vacuole",
];

/// Overlay colours (Okabe–Ito, distinguishable under the common colour-vision deficiencies),
/// indexed by label id: black, sky blue, vermillion, yellow, reddish purple, bluish green.
pub const PALETTE: [[u8; 3]; NUM_LABELS] = [
    [0x00, 0x00, 0x00],
    [0x56, 0xB4, 0xE9],
    [0xD5, 0x5E, 0x00],
    [0xF0, 0xE4, 0x42],
    [0xCC, 0x79, 0xA7],
    [0x00, 0x9E, 0x73],
];

/// Per-label visibility for [`overlay`] that shows every label except "other".
pub const SHOW_CELL_LABELS: [bool; NUM_LABELS] = [false, true, true, true, true, true];

/// Whether a label is part of the white cell (nucleus, cytoplasm or vacuole).
pub fn is_white_cell(label: u8) -> bool {
    matches!(label, NUCLEUS | CYTOPLASM | VACUOLE)
}
