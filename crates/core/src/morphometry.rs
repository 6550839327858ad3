//! Measurements of the central white cell from a label map (the ids of
//! [`crate::segmentation`]): the quantities behind WBCAtt's cell size, nuclear-cytoplasmic
//! ratio, nucleus shape and vacuole attributes, so that they can be shown next to the
//! network's predictions.

use crate::mask::{components, erode};
use crate::segmentation::{CYTOPLASM, NUCLEUS, PLATELET, RED_CELL, VACUOLE};
use image::GrayImage;
use serde::{Deserialize, Serialize};

/// Measurements of one labelled image. Lengths are in pixels of the label map.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Morphometry {
    /// Nucleus area (pixels).
    pub nucleus_area: usize,
    /// Cytoplasm area, vacuoles excluded (pixels).
    pub cytoplasm_area: usize,
    /// Vacuole area (pixels).
    pub vacuole_area: usize,
    /// White-cell area = nucleus + cytoplasm + vacuoles (pixels).
    pub cell_area: usize,
    /// Nucleus area / cell area; `None` when there is no cell.
    pub nc_ratio: Option<f32>,
    /// Equivalent diameter of the white cell, `sqrt(4A/π)` (pixels).
    pub cell_diameter: f32,
    /// Median equivalent diameter of the red cells (pixels); `None` when there is none.
    pub red_cell_diameter: Option<f32>,
    /// `cell_diameter / red_cell_diameter`: cell size in red-cell units, independent of the
    /// magnification; `None` without red cells or without a cell.
    pub cell_to_red_cell: Option<f32>,
    /// Number of nucleus lobes: components of the lightly eroded nucleus, specks ignored.
    /// `0` when there is no nucleus.
    pub nucleus_lobes: usize,
    /// Number of vacuoles.
    pub vacuole_count: usize,
    /// Vacuole area / cell area (`0` when there is no cell).
    pub vacuole_fraction: f32,
    /// Number of platelets.
    pub platelet_count: usize,
    /// Number of red-cell components (touching red cells count once).
    pub red_cell_count: usize,
}

/// Equivalent diameter of a region of `area` pixels: the diameter of the disc of that area.
pub fn equivalent_diameter(area: usize) -> f32 {
    (4.0 * area as f32 / std::f32::consts::PI).sqrt()
}

/// Measure a label map. Sizes that depend on the magnification (erosion radius, speck size)
/// are scaled from the 360×360 PBC crop by the shorter side of the map.
pub fn measure(labels: &GrayImage) -> Morphometry {
    let (w, h) = (labels.width() as usize, labels.height() as usize);
    let px = labels.as_raw();
    let s = w.min(h) as f32 / 360.0;
    let scaled_area = |a: f32| (a * s * s).round().max(1.0) as usize;
    let count = |l: u8| px.iter().filter(|&&v| v == l).count();
    let mask = |l: u8| -> Vec<bool> { px.iter().map(|&v| v == l).collect() };

    let nucleus_area = count(NUCLEUS);
    let cytoplasm_area = count(CYTOPLASM);
    let vacuole_area = count(VACUOLE);
    let cell_area = nucleus_area + cytoplasm_area + vacuole_area;
    let cell_diameter = equivalent_diameter(cell_area);

    // Red cells: a cell cut by the image border would shrink the median, so whole ones are
    // preferred when there are any.
    let (_, rbcs) = components(&mask(RED_CELL), w, h, true);
    let rbcs: Vec<_> = rbcs
        .into_iter()
        .filter(|c| c.area >= scaled_area(100.0))
        .collect();
    let inner: Vec<usize> = rbcs
        .iter()
        .filter(|c| !c.touches_border)
        .map(|c| c.area)
        .collect();
    let mut areas = if inner.is_empty() {
        rbcs.iter().map(|c| c.area).collect()
    } else {
        inner
    };
    areas.sort_unstable();
    let red_cell_diameter = (!areas.is_empty()).then(|| {
        let m = areas.len() / 2;
        if areas.len() % 2 == 1 {
            equivalent_diameter(areas[m])
        } else {
            0.5 * (equivalent_diameter(areas[m - 1]) + equivalent_diameter(areas[m]))
        }
    });

    // Lobes: a light erosion separates lobes joined by a thin chromatin filament; pieces
    // under 3 % of the nucleus are specks.
    let nucleus_lobes = if nucleus_area == 0 {
        0
    } else {
        let eroded = erode(&mask(NUCLEUS), w, h, (3.0 * s).max(1.0));
        let (_, parts) = components(&eroded, w, h, true);
        let min = scaled_area(20.0).max(nucleus_area * 3 / 100);
        parts.iter().filter(|c| c.area >= min).count().max(1)
    };

    let (_, vacuoles) = components(&mask(VACUOLE), w, h, true);
    let (_, platelets) = components(&mask(PLATELET), w, h, true);
    let speck = scaled_area(4.0);
    // A platelet is 2–3 µm across, about 20 px at the PBC scale (a red cell is ~80 px):
    // smaller blobs are debris or segmentation noise.
    let platelet_min = scaled_area(60.0);

    Morphometry {
        nucleus_area,
        cytoplasm_area,
        vacuole_area,
        cell_area,
        nc_ratio: (cell_area > 0).then(|| nucleus_area as f32 / cell_area as f32),
        cell_diameter,
        red_cell_diameter,
        cell_to_red_cell: red_cell_diameter
            .filter(|&d| d > 0.0 && cell_area > 0)
            .map(|d| cell_diameter / d),
        nucleus_lobes,
        vacuole_count: vacuoles.iter().filter(|c| c.area >= speck).count(),
        vacuole_fraction: if cell_area > 0 {
            vacuole_area as f32 / cell_area as f32
        } else {
            0.0
        },
        platelet_count: platelets.iter().filter(|c| c.area >= platelet_min).count(),
        red_cell_count: rbcs.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segmentation::OTHER;
    use image::Luma;

    /// Paint a disc of `label` onto `map`.
    fn disc(map: &mut GrayImage, cx: f32, cy: f32, r: f32, label: u8) {
        let (w, h) = map.dimensions();
        for y in 0..h {
            for x in 0..w {
                if (x as f32 - cx).powi(2) + (y as f32 - cy).powi(2) <= r * r {
                    map.put_pixel(x, y, Luma([label]));
                }
            }
        }
    }

    #[test]
    fn empty_map_has_no_cell() {
        let m = measure(&GrayImage::new(50, 40));
        assert_eq!(m.cell_area, 0);
        assert_eq!(m.nc_ratio, None);
        assert_eq!(m.red_cell_diameter, None);
        assert_eq!(m.cell_to_red_cell, None);
        assert_eq!(m.nucleus_lobes, 0);
        assert_eq!(m.vacuole_fraction, 0.0);
        // Degenerate sizes must not panic either.
        let _ = measure(&GrayImage::new(0, 0));
        let _ = measure(&GrayImage::new(1, 7));
    }

    #[test]
    fn round_cell_with_red_cells() {
        let mut map = GrayImage::new(360, 360);
        disc(&mut map, 180.0, 180.0, 60.0, CYTOPLASM);
        disc(&mut map, 180.0, 180.0, 40.0, NUCLEUS);
        // Three whole red cells of radius 40 and one cut by the border.
        for (cx, cy) in [(60.0, 60.0), (300.0, 60.0), (60.0, 300.0)] {
            disc(&mut map, cx, cy, 40.0, RED_CELL);
        }
        disc(&mut map, 359.0, 300.0, 30.0, RED_CELL);
        // Two platelets.
        disc(&mut map, 300.0, 200.0, 6.0, PLATELET);
        disc(&mut map, 250.0, 320.0, 5.0, PLATELET);
        let m = measure(&map);
        let nc = m.nc_ratio.unwrap_or(0.0);
        assert!((nc - (40.0f32 / 60.0).powi(2)).abs() < 0.02, "nc {nc}");
        assert!((m.cell_diameter - 120.0).abs() < 2.0);
        let d = m.red_cell_diameter.unwrap_or(0.0);
        assert!((d - 80.0).abs() < 2.0, "rbc diameter {d}");
        assert!((m.cell_to_red_cell.unwrap_or(0.0) - 1.5).abs() < 0.05);
        assert_eq!(m.nucleus_lobes, 1);
        assert_eq!(m.platelet_count, 2);
        assert_eq!(m.red_cell_count, 4);
        assert_eq!(m.vacuole_count, 0);
    }

    #[test]
    fn lobes_joined_by_a_filament_are_counted() {
        let mut map = GrayImage::new(360, 360);
        disc(&mut map, 180.0, 180.0, 80.0, CYTOPLASM);
        disc(&mut map, 140.0, 180.0, 22.0, NUCLEUS);
        disc(&mut map, 220.0, 180.0, 22.0, NUCLEUS);
        disc(&mut map, 180.0, 130.0, 20.0, NUCLEUS);
        // A 3-pixel filament joins the first two lobes.
        for x in 140..=220 {
            for y in 179..=181 {
                map.put_pixel(x, y, Luma([NUCLEUS]));
            }
        }
        // A speck that is not a lobe.
        map.put_pixel(180, 240, Luma([NUCLEUS]));
        let m = measure(&map);
        assert_eq!(m.nucleus_lobes, 3);
        assert_eq!(m.red_cell_diameter, None);
        assert_eq!(m.cell_to_red_cell, None);
    }

    #[test]
    fn vacuoles_are_counted_and_part_of_the_cell() {
        let mut map = GrayImage::new(300, 300);
        disc(&mut map, 150.0, 150.0, 70.0, CYTOPLASM);
        disc(&mut map, 150.0, 150.0, 30.0, NUCLEUS);
        disc(&mut map, 100.0, 150.0, 6.0, VACUOLE);
        disc(&mut map, 200.0, 150.0, 6.0, VACUOLE);
        disc(&mut map, 150.0, 205.0, 5.0, VACUOLE);
        map.put_pixel(0, 0, Luma([OTHER]));
        let m = measure(&map);
        assert_eq!(m.vacuole_count, 3);
        assert_eq!(
            m.cell_area,
            m.nucleus_area + m.cytoplasm_area + m.vacuole_area
        );
        let expected = m.vacuole_area as f32 / m.cell_area as f32;
        assert!((m.vacuole_fraction - expected).abs() < 1e-6);
        assert!(m.vacuole_fraction > 0.01 && m.vacuole_fraction < 0.05);
        // Serializable for the CLI's JSON output.
        let json = serde_json::to_string(&m).unwrap_or_default();
        assert!(json.contains("\"vacuole_count\":3"));
    }
}
