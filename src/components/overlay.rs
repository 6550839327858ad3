//! The segmentation drawn over the cell on a `<canvas>`: each class toggleable, an opacity
//! slider (CSS opacity, so sliding costs no redraw), a legend in a colour-blind-safe
//! (Okabe–Ito) palette; the activation map on a second canvas; and the measurements taken
//! from the segmentation beside the attributes they explain, checked with the thresholds from
//! the segmentation card.

use crate::state::{Cam, Engine};
use leptos::html;
use leptos::prelude::*;
use std::sync::Arc;
use wasm_bindgen::{Clamped, JsCast};
use wbc_core::cross_check::{Measure, Rule};
use wbc_core::morphometry::Morphometry;
use wbc_core::segmentation::{LABEL_NAMES, NUM_LABELS, PALETTE, SHOW_CELL_LABELS};
use wbc_core::CellPrediction;

/// Paint `side`² RGBA pixels into a canvas (sized to the map; CSS scales it to the image).
fn paint(canvas: &web_sys::HtmlCanvasElement, side: u32, rgba: &[u8]) {
    canvas.set_width(side);
    canvas.set_height(side);
    let Some(context) = canvas
        .get_context("2d")
        .ok()
        .flatten()
        .and_then(|c| c.dyn_into::<web_sys::CanvasRenderingContext2d>().ok())
    else {
        return;
    };
    if let Ok(data) =
        web_sys::ImageData::new_with_u8_clamped_array_and_sh(Clamped(rgba), side, side)
    {
        let _ = context.put_image_data(&data, 0.0, 0.0);
    }
}

/// The visible classes of a label map as opaque colours, the rest transparent.
fn label_pixels(labels: &[u8], visible: [bool; NUM_LABELS]) -> Vec<u8> {
    labels
        .iter()
        .flat_map(|&l| {
            let l = l as usize;
            if l < NUM_LABELS && visible[l] {
                let [r, g, b] = PALETTE[l];
                [r, g, b, 255]
            } else {
                [0, 0, 0, 0]
            }
        })
        .collect()
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

/// An activation map as viridis, transparent where weak.
fn heat_pixels(heat: &[u8]) -> Vec<u8> {
    heat.iter()
        .flat_map(|&h| {
            let t = h as f32 / 255.0;
            let [r, g, b] = viridis(t);
            [r, g, b, (t * 200.0) as u8]
        })
        .collect()
}

/// Cell image with the segmentation overlay and its controls, and an activation map when the
/// user asked for one.
#[component]
pub fn SegmentationOverlay(
    cell_id: u32,
    #[prop(into)] image_url: Signal<String>,
    name: String,
    labels: Arc<Vec<u8>>,
    side: u32,
) -> impl IntoView {
    let (maps, engine) = (expect_context::<Cam>(), expect_context::<Engine>());
    let cam = Memo::new(move |_| maps.shown.get().filter(|c| c.cell == cell_id));
    let segmenter = engine
        .info
        .get_untracked()
        .map(|e| e.segmenter)
        .unwrap_or_default();
    let visible = RwSignal::new(SHOW_CELL_LABELS);
    let opacity = RwSignal::new(0.45f32);
    let overlay_ref = NodeRef::<html::Canvas>::new();
    let cam_ref = NodeRef::<html::Canvas>::new();
    // Redrawn only when the visible classes change (never for the opacity).
    Effect::new(move |_| {
        let shown = visible.get();
        if let Some(canvas) = overlay_ref.get() {
            paint(&canvas, side, &label_pixels(&labels, shown));
        }
    });
    Effect::new(move |_| {
        if let (Some(c), Some(canvas)) = (cam.get(), cam_ref.get()) {
            paint(&canvas, c.side, &heat_pixels(&c.heat));
        }
    });
    view! {
        <figure class="overlay-figure">
            <div class="stack">
                <img decoding="async" src=move || image_url.get() alt=format!("cell {name}") data-testid="cell-image"/>
                <canvas class="overlay" node_ref=overlay_ref aria-label="segmentation overlay" data-testid="overlay"
                    style:opacity=move || format!("{:.2}", opacity.get())
                    style:display=move || if cam.get().is_some() { "none" } else { "block" }></canvas>
                <canvas class="overlay" node_ref=cam_ref aria-label="class-activation map" data-testid="cam"
                    style:display=move || if cam.get().is_some() { "block" } else { "none" }
                    data-attribute=move || cam.get().map(|c| wbc_core::ATTRIBUTES[c.attribute].name)
                    data-value=move || cam.get().map(|c| wbc_core::ATTRIBUTES[c.attribute].values[c.value])></canvas>
            </div>
            {move || cam.get().map(|c| {
                let a = &wbc_core::ATTRIBUTES[c.attribute];
                view! {
                    <p class="cam-caption" data-testid="cam-caption">
                        {format!("Where the network found evidence for {} = {} rather than its other values (Grad-CAM, {:.0} ms). Bright: strong evidence. ", a.title.to_lowercase(), a.values[c.value], c.ms)}
                        <button data-testid="cam-hide" on:click=move |_| maps.clear()>"Show the segmentation again"</button>
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

/// One row of the measurements table: what, its value, the attribute it explains and how far
/// the card's rule (when it holds one) can be trusted.
fn row_of(
    m: &Morphometry,
    p: &CellPrediction,
    measure: Measure,
    rule: Option<&Rule>,
) -> (String, String, String) {
    let attribute = measure.attribute();
    let predicted = p.value_of(attribute).unwrap_or("?");
    let (what, value) = match measure {
        Measure::NcRatio => (
            "N:C area ratio",
            m.nc_ratio
                .map_or("no cell found".into(), |r| format!("{r:.2}")),
        ),
        Measure::CellToRedCell => match m.cell_to_red_cell {
            Some(r) => (
                "diameter / red cell",
                format!(
                    "{r:.2} ({:.0} px / {:.0} px)",
                    m.cell_diameter,
                    m.red_cell_diameter.unwrap_or(0.0)
                ),
            ),
            None => (
                "diameter",
                format!("{:.0} px (no red cell found)", m.cell_diameter),
            ),
        },
        Measure::NucleusLobes => ("nucleus lobes", m.nucleus_lobes.to_string()),
        Measure::VacuoleFraction => (
            "vacuoles",
            format!(
                "{} ({:.1}% of the cell)",
                m.vacuole_count,
                100.0 * m.vacuole_fraction
            ),
        ),
    };
    let guide = match rule {
        Some(rule) if rule.trusted() => format!(
            "above {} ⇒ {} (agrees with the labels on {:.0}% of test cells)",
            rule.measure.format(rule.threshold),
            rule.positive.join(" or "),
            rule.test_balanced_accuracy
        ),
        Some(rule) => format!(
            "a weak guide here (AUC {:.0}%): no check made",
            rule.test_auc
        ),
        None => "no threshold in the segmentation card: no check made".to_string(),
    };
    (
        what.to_string(),
        value,
        format!("{}: {predicted} — {guide}", attribute.replace('_', " ")),
    )
}

/// Measurements from the label map, next to the attribute each one explains. A note appears
/// where a trusted rule on the measurement disagrees with the learned attribute.
#[component]
pub fn Measurements(m: Morphometry, prediction: CellPrediction) -> impl IntoView {
    let rules = expect_context::<Engine>()
        .info
        .get_untracked()
        .map(|e| e.rules)
        .unwrap_or_default();
    let mut rows: Vec<(String, String, String, Option<String>)> = Measure::ALL
        .iter()
        .map(|&measure| {
            let rule = rules.iter().find(|r| r.measure == measure);
            let (what, value, attr) = row_of(&m, &prediction, measure, rule);
            let note = rule.and_then(|r| r.check(&m, &prediction)).map(|d| d.note);
            (what, value, attr, note)
        })
        .collect();
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
