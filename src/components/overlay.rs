//! The segmentation drawn over the cell: each class toggleable, an opacity slider, a legend in
//! a colour-blind-safe (Okabe–Ito) palette; and the measurements taken from it beside the
//! attributes they explain.

use image::{ImageFormat, Rgba, RgbaImage};
use leptos::prelude::*;
use std::io::Cursor;
use wbc_core::morphometry::Morphometry;
use wbc_core::segmentation::{LABEL_NAMES, NUM_LABELS, PALETTE, SHOW_CELL_LABELS};

/// A transparent PNG with the visible classes painted at `opacity`.
fn overlay_png(
    labels: &[u8],
    side: u32,
    visible: [bool; NUM_LABELS],
    opacity: f32,
) -> Option<String> {
    let alpha = (opacity.clamp(0.0, 1.0) * 255.0) as u8;
    let img = RgbaImage::from_fn(side, side, |x, y| {
        let l = labels.get((y * side + x) as usize).copied().unwrap_or(0) as usize;
        if l < NUM_LABELS && visible[l] {
            let [r, g, b] = PALETTE[l];
            Rgba([r, g, b, alpha])
        } else {
            Rgba([0, 0, 0, 0])
        }
    });
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png).ok()?;
    let bytes = js_sys::Uint8Array::from(out.into_inner().as_slice());
    crate::app::png_object_url(&bytes)
}

/// Viridis (perceptually ordered, colour-blind safe), 5 anchors linearly interpolated.
const VIRIDIS: [[f32; 3]; 5] = [
    [68.0, 1.0, 84.0],
    [59.0, 82.0, 139.0],
    [33.0, 145.0, 140.0],
    [94.0, 201.0, 98.0],
    [253.0, 231.0, 37.0],
];

fn viridis(t: f32) -> [u8; 3] {
    let x = t.clamp(0.0, 1.0) * 4.0;
    let i = (x.floor() as usize).min(3);
    let f = x - i as f32;
    std::array::from_fn(|c| (VIRIDIS[i][c] * (1.0 - f) + VIRIDIS[i + 1][c] * f).round() as u8)
}

/// A PNG object URL of an activation map (`side`² bytes): viridis, transparent where weak.
pub fn heat_png(heat: &[u8], side: u32) -> Option<String> {
    if heat.len() != (side * side) as usize {
        return None;
    }
    let img = RgbaImage::from_fn(side, side, |x, y| {
        let t = heat[(y * side + x) as usize] as f32 / 255.0;
        let [r, g, b] = viridis(t);
        Rgba([r, g, b, (t * 200.0) as u8])
    });
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png).ok()?;
    crate::app::png_object_url(&js_sys::Uint8Array::from(out.into_inner().as_slice()))
}

/// Cell image with the segmentation overlay and its controls, and an activation map when the
/// user asked for one.
#[component]
pub fn SegmentationOverlay(
    cell_id: u32,
    image_url: String,
    name: String,
    labels: std::sync::Arc<Vec<u8>>,
    side: u32,
) -> impl IntoView {
    let state = expect_context::<crate::app::AppState>();
    let cam = move || state.cam.get().filter(|c| c.cell == cell_id);
    let segmenter = state
        .engine
        .get_untracked()
        .map(|e| e.segmenter)
        .unwrap_or_default();
    let visible = RwSignal::new(SHOW_CELL_LABELS);
    let opacity = RwSignal::new(0.45f32);
    let url = Memo::new(move |previous: Option<&Option<String>>| {
        if let Some(Some(old)) = previous {
            let _ = web_sys::Url::revoke_object_url(old);
        }
        overlay_png(&labels, side, visible.get(), opacity.get())
    });
    view! {
        <figure class="overlay-figure">
            <div class="stack">
                <img src=image_url alt=format!("cell {name}") data-testid="cell-image"/>
                <img class="overlay" src=move || url.get().unwrap_or_default() alt="segmentation overlay" data-testid="overlay"
                    style:display=move || if cam().is_some() { "none" } else { "block" }/>
                {move || cam().map(|c| view! {
                    <img class="overlay" src=c.url.clone() alt="class-activation map" data-testid="cam"
                        data-attribute=wbc_core::ATTRIBUTES[c.attribute].name data-value=wbc_core::ATTRIBUTES[c.attribute].values[c.value]/>
                })}
            </div>
            {move || cam().map(|c| {
                let a = &wbc_core::ATTRIBUTES[c.attribute];
                view! {
                    <p class="cam-caption" data-testid="cam-caption">
                        {format!("Where the network found evidence for {} = {} rather than its other values (Grad-CAM, {:.0} ms). Bright: strong evidence. ", a.title.to_lowercase(), a.values[c.value], c.ms)}
                        <button data-testid="cam-hide" on:click=move |_| state.clear_cam()>"Show the segmentation again"</button>
                    </p>
                }
            })}
            <div class="legend" data-testid="legend">
                {(0..NUM_LABELS).filter(|&l| l != 0).map(|l| {
                    let [r, g, b] = PALETTE[l];
                    view! {
                        <label class="legend-item">
                            <input type="checkbox" data-testid=format!("toggle-{}", LABEL_NAMES[l].replace(' ', "-"))
                                prop:checked=move || visible.get()[l]
                                on:change=move |_| visible.update(|v| v[l] = !v[l])/>
                            <span class="swatch" style:background=format!("rgb({r},{g},{b})")></span>
                            {LABEL_NAMES[l]}
                        </label>
                    }
                }).collect_view()}
                <label class="opacity">"opacity "
                    <input type="range" min="0" max="100" data-testid="overlay-opacity"
                        prop:value=move || (opacity.get() * 100.0).round().to_string()
                        on:input=move |e| opacity.set(event_target_value(&e).parse::<f32>().unwrap_or(45.0) / 100.0)/>
                </label>
            </div>
            <figcaption data-testid="segmenter">{format!("{name}: drawn by the {segmenter}")}</figcaption>
        </figure>
    }
}

/// Measurements from the label map, next to the attribute each one explains. A note appears
/// where a rough rule on the measurement disagrees with the learned attribute.
#[component]
pub fn Measurements(m: Morphometry, predicted: Vec<&'static str>) -> impl IntoView {
    // predicted: values of cell_size, nucleus_shape, nuclear_cytoplasmic_ratio, cytoplasm_vacuole.
    let (size, shape, nc, vac) = (predicted[0], predicted[1], predicted[2], predicted[3]);
    let mut rows: Vec<(String, String, String, Option<String>)> = Vec::new();
    if let Some(r) = m.nc_ratio {
        let note = if r > 0.65 && nc == "low" {
            Some("nucleus fills most of the segmented cell, yet the model says low".to_string())
        } else if r < 0.4 && nc == "high" {
            Some(
                "nucleus is a small part of the segmented cell, yet the model says high"
                    .to_string(),
            )
        } else {
            None
        };
        rows.push((
            "N:C area ratio".into(),
            format!("{:.2}", r),
            format!("N:C ratio: {nc}"),
            note,
        ));
    }
    match m.cell_to_red_cell {
        Some(r) => {
            let note = if r < 1.2 && size == "big" {
                Some("about red-cell size, yet the model says big".to_string())
            } else if r > 1.9 && size == "small" {
                Some("about twice a red cell, yet the model says small".to_string())
            } else {
                None
            };
            rows.push((
                "diameter / red cell".into(),
                format!(
                    "{r:.2} ({:.0} px / {:.0} px)",
                    m.cell_diameter,
                    m.red_cell_diameter.unwrap_or(0.0)
                ),
                format!("cell size: {size}"),
                note,
            ));
        }
        None => rows.push((
            "diameter".into(),
            format!("{:.0} px (no red cell found)", m.cell_diameter),
            format!("cell size: {size}"),
            None,
        )),
    }
    let lobe_note = (m.nucleus_lobes >= 3 && shape.starts_with("unsegmented")).then(|| {
        format!(
            "{} separate nucleus pieces, yet the model says {shape}",
            m.nucleus_lobes
        )
    });
    rows.push((
        "nucleus lobes".into(),
        m.nucleus_lobes.to_string(),
        format!("nucleus shape: {shape}"),
        lobe_note,
    ));
    let vac_note = (m.vacuole_count >= 2 && vac == "no")
        .then(|| "vacuole-like holes found, yet the model says none".to_string());
    rows.push((
        "vacuoles".into(),
        format!(
            "{} ({:.1}% of the cell)",
            m.vacuole_count,
            100.0 * m.vacuole_fraction
        ),
        format!("vacuoles: {vac}"),
        vac_note,
    ));
    rows.push((
        "platelets in view".into(),
        m.platelet_count.to_string(),
        String::new(),
        None,
    ));
    view! {
        <table class="measurements" data-testid="measurements">
            <thead><tr><th>"measured"</th><th>"value"</th><th>"learned attribute"</th></tr></thead>
            <tbody>
                {rows.into_iter().map(|(what, value, attr, note)| {
                    let disagrees = if note.is_some() { "disagrees" } else { "" };
                    view! {
                    <tr class=disagrees>
                        <td>{what}</td><td>{value}</td>
                        <td>{attr}{note.map(|n| view! { <div class="note" data-testid="measurement-note">{"⚠ "}{n}</div> })}</td>
                    </tr>
                }}).collect_view()}
            </tbody>
        </table>
    }
}
