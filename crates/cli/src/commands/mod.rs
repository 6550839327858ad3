//! One module per `wbc` command: its arguments and what it runs, over the library
//! (`wbc_lab`: data, training, cards, scoring).

pub mod adapt_eval;
pub mod analyse;
pub mod attribute_eval;
pub mod calibrate;
pub mod cbm;
pub mod counterfactual;
pub mod counterfactual_images;
pub mod evaluate;
pub mod external;
pub mod fit;
pub mod import_encoder;
pub mod measured_type;
pub mod predict;
pub mod samples;
pub mod seg_export;
pub mod segment;
pub mod structure;
pub mod time_networks;
pub mod train;
pub mod train_seg;

use serde_json::{json, Map, Value};
use wbc_core::metrics::argmax;
use wbc_core::schema::attribute;
use wbc_core::{ATTRIBUTES, CELL_TYPES};
use wbc_nets::CellPrediction;

pub fn named(labels: &[&str], probs: &[f32]) -> Value {
    let map: Map<String, Value> = labels
        .iter()
        .zip(probs)
        .map(|(l, p)| (l.to_string(), json!(p)))
        .collect();
    json!({"value": labels[argmax(probs)], "probabilities": map})
}

pub fn labelled(probs: &[f32]) -> Value {
    let v = named(&CELL_TYPES, probs);
    json!({"label": v["value"], "probabilities": v["probabilities"]})
}

/// The JSON object of one prediction (without the path).
pub fn prediction_json(p: &CellPrediction) -> Map<String, Value> {
    let mut obj = Map::new();
    obj.insert("cell_type".into(), labelled(&p.cell_type));
    let attrs: Map<String, Value> = ATTRIBUTES
        .iter()
        .zip(&p.attributes)
        .map(|(a, probs)| (a.name.to_string(), named(a.values, probs)))
        .collect();
    obj.insert("attributes".into(), Value::Object(attrs));
    obj
}

/// Parse `attr=value` into (attribute index, value index).
pub fn parse_setting(s: &str) -> Result<(usize, usize), String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("expected attribute=value, got {s}"))?;
    let (k, a) = attribute(name.trim()).ok_or_else(|| format!("unknown attribute {name}"))?;
    let v = a.value_index(value.trim()).ok_or_else(|| {
        format!(
            "{name} has no value {value}; values: {}",
            a.values.join(", ")
        )
    })?;
    Ok((k, v))
}
