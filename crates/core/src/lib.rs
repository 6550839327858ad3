//! The WBC Explorer domain, free of Burn and of the DOM: the WBCAtt attribute schema and cell
//! types, image preprocessing shared by the CLI and the browser, the split CSVs, and the
//! evaluation metrics. Everything here compiles natively and to wasm.
#![forbid(unsafe_code)]

pub mod adapt;
pub mod audit;
pub mod cbm;
pub mod confidence;
pub mod counterfactual;
pub mod cross_check;
pub mod csv_text;
pub mod dataset;
pub mod edit;
pub mod front_end;
pub mod glossary;
pub mod logistic;
mod mask;
pub mod measured_type;
pub mod metrics;
pub mod morphometry;
pub mod prediction;
pub mod preprocess;
pub mod quiz;
pub mod schema;
pub mod segmentation;
pub mod table;

pub use prediction::CellPrediction;
pub use schema::{Attribute, ATTRIBUTES, CELL_TYPES, HEAD_WIDTH, NUM_ATTRIBUTE_VALUES, PBC_SIDE};
