//! From logits to named probabilities ([`CellPrediction`], defined in wbc-core so the page can
//! carry it without Burn), and loading weights from burnpack bytes.

use crate::attribute_net::{AttributeNet, AttributeNetConfig, HEAD_WIDTH};
use crate::seg_net::{SegNet, SegNetConfig};
use burn::store::{BurnpackStore, HalfPrecisionAdapter, ModuleSnapshot};
use burn::tensor::{Device, Tensor, TensorData};
pub use wbc_core::CellPrediction;

/// A model file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The burnpack bytes did not match the architecture.
    #[error("model weights do not load: {0}")]
    Weights(String),
    /// The weight file does not match its card (size or SHA-256).
    #[error("{0}")]
    Damaged(String),
    /// Reading the network output failed (e.g. a lost GPU device).
    #[error("reading the network output failed: {0}")]
    Readback(String),
}

/// Round every conv and linear weight (parameters of two or more dimensions; biases and
/// batch norms keep full precision) to `bits` explicit mantissa bits. Stored as f16 (10
/// mantissa bits) the dropped low bits are zeros, which gzip and brotli squeeze out: the
/// download shrinks by about a third while each weight moves by at most 2^-(bits+1) of
/// itself. `wbc import-encoder` measures what it costs on val before shipping it.
pub fn round_mantissa<M: burn::module::Module>(model: M, bits: u32) -> M {
    struct Rounding(i32);
    impl burn::module::ModuleMapper for Rounding {
        fn map_float<const D: usize>(
            &mut self,
            param: burn::module::Param<Tensor<D>>,
        ) -> burn::module::Param<Tensor<D>> {
            if D < 2 {
                return param;
            }
            let bits = self.0;
            param.map(|t| {
                let shape = t.shape();
                let device = t.device();
                let values: Vec<f32> = t
                    .into_data()
                    .convert::<f32>()
                    .try_to_vec::<f32>()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|v| round_to_bits(v, bits))
                    .collect();
                Tensor::from_data(TensorData::new(values, shape), &device)
            })
        }
    }
    model.map(&mut Rounding(bits as i32))
}

/// `v` rounded to `bits` mantissa bits (relative step 2^-bits).
pub fn round_to_bits(v: f32, bits: i32) -> f32 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let step = (v.abs().log2().floor() - bits as f32).exp2();
    (v / step).round() * step
}

/// Serialise weights as burnpack bytes with half-precision conv and linear weights (the
/// shipped format: half the download; BatchNorm statistics stay f32).
pub fn save_half<M: ModuleSnapshot>(net: &M) -> Result<Vec<u8>, LoadError> {
    let mut store = BurnpackStore::from_bytes(None).with_to_adapter(HalfPrecisionAdapter::new());
    net.save_into(&mut store)
        .map_err(|e| LoadError::Weights(e.to_string()))?;
    Ok(store
        .get_bytes()
        .map_err(|e| LoadError::Weights(e.to_string()))?
        .to_vec())
}

/// Build the network and load burnpack weights written by [`save_half`] from bytes.
pub fn load_attribute_net(
    config: &AttributeNetConfig,
    bytes: Vec<u8>,
    device: &Device,
) -> Result<AttributeNet, LoadError> {
    loaded(config.init(device), bytes)
}

/// A freshly built network with burnpack weights loaded into it.
fn loaded<M: ModuleSnapshot>(mut model: M, bytes: Vec<u8>) -> Result<M, LoadError> {
    load_half(&mut model, bytes)?;
    Ok(model)
}

/// Load burnpack weights written by [`save_half`] into a freshly built network.
pub fn load_half<M: ModuleSnapshot>(model: &mut M, bytes: Vec<u8>) -> Result<(), LoadError> {
    let mut store = BurnpackStore::from_bytes(Some(burn::tensor::Bytes::from_bytes_vec(bytes)))
        .with_from_adapter(HalfPrecisionAdapter::new());
    let result = model
        .load_from(&mut store)
        .map_err(|e| LoadError::Weights(e.to_string()))?;
    if !result.missing.is_empty() {
        return Err(LoadError::Weights(format!(
            "missing tensors: {:?}",
            result.missing
        )));
    }
    Ok(())
}

/// Build the segmentation network and load its burnpack weights from bytes.
pub fn load_seg_net(
    config: &SegNetConfig,
    bytes: Vec<u8>,
    device: &Device,
) -> Result<SegNet, LoadError> {
    loaded(config.init(device), bytes)
}

/// Label maps (`side`×`side`, row-major, values 0..6) for a batch of CHW inputs, read
/// synchronously (native batch scoring; one cell in the browser goes through
/// [`crate::Analyzer`]).
pub fn segment(
    net: &SegNet,
    inputs: &[Vec<f32>],
    size: usize,
    side: usize,
    device: &Device,
) -> Result<Vec<Vec<u8>>, LoadError> {
    let labels = net.labels(batch_tensor(inputs, size, device), side);
    label_maps(
        labels
            .try_into_data()
            .map_err(|e| LoadError::Readback(format!("{e:?}")))?,
        side,
        net.tidy(),
    )
}

fn label_maps(
    data: TensorData,
    side: usize,
    tidy: Option<wbc_core::segmentation::TidyParams>,
) -> Result<Vec<Vec<u8>>, LoadError> {
    let values: Vec<i64> = data
        .convert::<i64>()
        .try_into_vec()
        .map_err(|e| LoadError::Readback(format!("{e:?}")))?;
    Ok(values
        .chunks_exact(side * side)
        .map(|m| {
            let mut map: Vec<u8> = m.iter().map(|&v| v as u8).collect();
            if let Some(p) = tidy {
                wbc_core::segmentation::tidy_cell_with(&mut map, side, side, p);
            }
            map
        })
        .collect())
}

/// A batch tensor from CHW inputs of side `size`.
pub fn batch_tensor(inputs: &[Vec<f32>], size: usize, device: &Device) -> Tensor<4> {
    let flat: Vec<f32> = inputs.iter().flatten().copied().collect();
    Tensor::from_data(TensorData::new(flat, [inputs.len(), 3, size, size]), device)
}

/// Split `[batch, HEAD_WIDTH]` logits data into per-cell predictions.
pub fn predictions_from_data(data: TensorData) -> Result<Vec<CellPrediction>, LoadError> {
    let values: Vec<f32> = data
        .convert::<f32>()
        .try_into_vec()
        .map_err(|e| LoadError::Readback(format!("{e:?}")))?;
    Ok(values
        .chunks_exact(HEAD_WIDTH)
        .map(CellPrediction::from_logits)
        .collect())
}

/// Run the network on a batch and read the result synchronously (native only).
pub fn predict(
    net: &AttributeNet,
    inputs: &[Vec<f32>],
    size: usize,
    device: &Device,
) -> Result<Vec<CellPrediction>, LoadError> {
    let logits = net.forward(batch_tensor(inputs, size, device));
    predictions_from_data(
        logits
            .try_into_data()
            .map_err(|e| LoadError::Readback(format!("{e:?}")))?,
    )
}

/// Predictions and L2-normalised pooled features (the counterfactual tie-breaker), read
/// synchronously (native only).
pub fn predict_with_features(
    net: &AttributeNet,
    inputs: &[Vec<f32>],
    size: usize,
    device: &Device,
) -> Result<Vec<(CellPrediction, Vec<f32>)>, LoadError> {
    let (features, logits) = net.forward_with_features(batch_tensor(inputs, size, device));
    let read = |t: Tensor<2>| {
        t.try_into_data()
            .map_err(|e| LoadError::Readback(format!("{e:?}")))
    };
    with_features(read(logits)?, read(features)?)
}

fn with_features(
    logits: TensorData,
    features: TensorData,
) -> Result<Vec<(CellPrediction, Vec<f32>)>, LoadError> {
    let preds = predictions_from_data(logits)?;
    let values: Vec<f32> = features
        .convert::<f32>()
        .try_into_vec()
        .map_err(|e| LoadError::Readback(format!("{e:?}")))?;
    let width = values.len() / preds.len().max(1);
    Ok(preds
        .into_iter()
        .zip(values.chunks_exact(width.max(1)))
        .map(|(p, f)| (p, wbc_core::counterfactual::normalised(f)))
        .collect())
}

#[cfg(test)]
mod rounding_tests {
    use super::*;

    #[test]
    fn rounding_keeps_the_leading_bits() {
        assert_eq!(round_to_bits(1.0, 4), 1.0);
        assert_eq!(round_to_bits(1.0 + 1.0 / 64.0, 4), 1.0);
        assert_eq!(round_to_bits(-3.1, 4), -3.125);
        for v in [0.123f32, -7.7e-3, 42.0] {
            assert!((round_to_bits(v, 4) - v).abs() <= v.abs() / 32.0);
            // A whole number of steps of 2^(exponent − 4): f16 stores it with its 6 lowest
            // mantissa bits zero.
            let steps = round_to_bits(v, 4) / (v.abs().log2().floor() - 4.0).exp2();
            assert_eq!(steps, steps.round(), "{v}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_weights_round_trip_and_predict_identically() {
        let device = Device::flex();
        let config = AttributeNetConfig::tiny(32);
        let net = config.init(&device);
        let bytes = save_half(&net).unwrap();
        let loaded = load_attribute_net(&config, bytes, &device).unwrap();
        let input = vec![(0..3 * 32 * 32)
            .map(|i| (i % 7) as f32 / 7.0)
            .collect::<Vec<f32>>()];
        let a = predict(&net, &input, 32, &device).unwrap();
        let b = predict(&loaded, &input, 32, &device).unwrap();
        // f16 storage: same answer to within half-precision rounding.
        for (x, y) in a[0].concepts().iter().zip(b[0].concepts()) {
            assert!((x - y).abs() < 2e-2, "{x} vs {y}");
        }
        assert!(
            load_attribute_net(&AttributeNetConfig::tiny(32), b"junk".to_vec(), &device).is_err()
        );
    }
}
