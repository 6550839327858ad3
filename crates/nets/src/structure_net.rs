//! Cell-structure-aware attribute network (after WBCAtt+): the attribute network's encoder
//! sees the cell together with its segmentation, and the heads read features gathered per
//! structure (cytoplasm, nucleus, platelet, red cell, vacuole) plus the whole image.
//!
//! Two ways to gather them:
//! - **K-pass** (the paper's): the encoder runs once per structure on the image masked to that
//!   structure, plus once on the whole image; K+1 pooled vectors, K+1 times the cost.
//! - **one-pass**: the encoder runs once and its last feature map is average-pooled inside
//!   each structure's mask (resized to the map); K+1 vectors for almost no extra cost.
//!
//! The K+1 vectors are aggregated by an element-wise max or by learned attention (a score per
//! vector, softmaxed over the structures present), then go through the attribute net's head.
//! Aggregation "global" keeps only the whole-image vector: the plain attribute network, used as
//! the control in the ablation.

use crate::attribute_net::{AttributeNet, AttributeNetConfig};
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::module::adaptive_avg_pool2d;
use burn::tensor::{activation::softmax, Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use wbc_core::segmentation::NUM_LABELS;

/// Structures pooled separately: every label but "other" (1 cytoplasm … 5 vacuole).
pub const STRUCTURES: usize = NUM_LABELS - 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Aggregation {
    /// Only the whole-image vector (the plain attribute network).
    Global,
    /// Element-wise maximum over the vectors.
    Max,
    /// Softmax-weighted sum with a learned score per vector.
    Attention,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Passes {
    One,
    K,
}

impl std::str::FromStr for Aggregation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "global" => Ok(Self::Global),
            "max" => Ok(Self::Max),
            "attention" => Ok(Self::Attention),
            _ => Err(format!("{s}: expected global, max or attention")),
        }
    }
}

impl std::str::FromStr for Passes {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "one" => Ok(Self::One),
            "k" => Ok(Self::K),
            _ => Err(format!("{s}: expected one or k")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StructureNetConfig {
    pub base: AttributeNetConfig,
    pub aggregation: Aggregation,
    pub passes: Passes,
}

impl StructureNetConfig {
    /// Masked pooling of the last feature map: K × channels × cells multiply-adds.
    fn pooling_flops(&self) -> u64 {
        let side = self
            .base
            .strides
            .iter()
            .fold(self.base.input_size, |s, &st| s.div_ceil(st)) as u64;
        let channels = self.base.feature_channels() as u64;
        2 * STRUCTURES as u64 * channels * side * side
    }

    pub fn init(&self, device: &Device) -> StructureAwareNet {
        let channels = self.base.feature_channels();
        StructureAwareNet {
            base: self.base.init(device),
            attention: (self.aggregation == Aggregation::Attention)
                .then(|| LinearConfig::new(channels, 1).init(device)),
            aggregation: self.aggregation,
            passes: self.passes,
        }
    }

    /// FLOPs per cell: the encoder once (one-pass) or K+1 times (K-pass).
    pub fn flops(&self) -> u64 {
        let base = self.base.flops();
        match (self.aggregation, self.passes) {
            (Aggregation::Global, _) => base,
            (_, Passes::One) => base + self.pooling_flops(),
            (_, Passes::K) => base * (STRUCTURES as u64 + 1),
        }
    }
}

#[derive(Module, Debug)]
pub struct StructureAwareNet {
    /// The attribute network whose encoder and head are shared.
    pub base: AttributeNet,
    attention: Option<Linear>,
    #[module(skip)]
    aggregation: Aggregation,
    #[module(skip)]
    passes: Passes,
}

/// One-hot structure masks `[batch, STRUCTURES, size, size]` from label maps (`size`² bytes each).
pub fn structure_masks(labels: &[&[u8]], size: usize, device: &Device) -> Tensor<4> {
    let plane = size * size;
    let mut data = vec![0.0f32; labels.len() * STRUCTURES * plane];
    for (b, map) in labels.iter().enumerate() {
        for (p, &l) in map.iter().enumerate() {
            if (1..NUM_LABELS as u8).contains(&l) {
                data[(b * STRUCTURES + l as usize - 1) * plane + p] = 1.0;
            }
        }
    }
    Tensor::from_data(
        TensorData::new(data, [labels.len(), STRUCTURES, size, size]),
        device,
    )
}

impl StructureAwareNet {
    /// Logits `[batch, HEAD_WIDTH]` from normalised images and their structure masks
    /// (`[batch, STRUCTURES, size, size]`, see [`structure_masks`]).
    pub fn forward(&self, images: Tensor<4>, masks: Tensor<4>) -> Tensor<2> {
        let vectors = match (self.aggregation, self.passes) {
            (Aggregation::Global, _) => return self.base.forward(images),
            (_, Passes::One) => self.one_pass_vectors(images, masks),
            (_, Passes::K) => self.k_pass_vectors(images, masks),
        };
        let features = self.aggregate(vectors);
        self.base.head_forward(features)
    }

    /// `[batch, K+1, channels]` and the presence of each vector `[batch, K+1]`.
    fn one_pass_vectors(&self, images: Tensor<4>, masks: Tensor<4>) -> (Tensor<3>, Tensor<2>) {
        let map = self.base.feature_map(images);
        let [b, c, h, w] = map.dims();
        // The share of each feature cell covered by each structure.
        let cover = adaptive_avg_pool2d(masks, [h, w]).reshape([b, STRUCTURES, h * w]);
        let flat = map.reshape([b, c, h * w]);
        let area = cover.clone().sum_dim(2); // [b, K, 1]
        let pooled = cover.matmul(flat.clone().swap_dims(1, 2)) / (area.clone() + 1e-6);
        let global = flat.mean_dim(2).swap_dims(1, 2); // [b, 1, c]
        let present = area.reshape([b, STRUCTURES]).greater_elem(1e-3).float();
        let ones = Tensor::<2>::ones([b, 1], &present.device());
        (
            Tensor::cat(vec![global, pooled], 1),
            Tensor::cat(vec![ones, present], 1),
        )
    }

    fn k_pass_vectors(&self, images: Tensor<4>, masks: Tensor<4>) -> (Tensor<3>, Tensor<2>) {
        let [b, ch, s, _] = images.dims();
        // The whole image and its K masked copies go through the encoder as one batch, so
        // batch norm sees the same mixture in training and at inference. Outside a structure
        // the input is 0, the dataset's mean colour after normalisation.
        let masked = images.clone().unsqueeze_dim::<5>(1) * masks.clone().unsqueeze_dim::<5>(2);
        let all = Tensor::cat(
            vec![
                images.unsqueeze_dim::<5>(1),
                masked, // [b, K, ch, s, s]
            ],
            1,
        )
        .reshape([b * (STRUCTURES + 1), ch, s, s]);
        let pooled = self.base.pooled_features(all);
        let [_, c] = pooled.dims();
        let vectors = pooled.reshape([b, STRUCTURES + 1, c]);
        let area = masks
            .reshape([b, STRUCTURES, s * s])
            .sum_dim(2)
            .reshape([b, STRUCTURES]);
        let present = area.greater_elem(0.5).float();
        let ones = Tensor::<2>::ones([b, 1], &present.device());
        (vectors, Tensor::cat(vec![ones, present], 1))
    }

    fn aggregate(&self, (vectors, present): (Tensor<3>, Tensor<2>)) -> Tensor<2> {
        let [b, n, c] = vectors.dims();
        match &self.attention {
            None => {
                // Features are post-ReLU (≥ 0), so an absent structure's zero vector never
                // wins the max.
                vectors.max_dim(1).reshape([b, c])
            }
            Some(score) => {
                let logits = score.forward(vectors.clone()).reshape([b, n]);
                // Absent structures get no weight.
                let logits = logits + (present - 1.0) * 1e4;
                let weights = softmax(logits, 1).reshape([b, n, 1]);
                (vectors * weights).sum_dim(1).reshape([b, c])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HEAD_WIDTH;

    fn inputs(device: &Device) -> (Tensor<4>, Tensor<4>) {
        let images = Tensor::<4>::from_data(
            TensorData::new(
                (0..2 * 3 * 32 * 32)
                    .map(|i| ((i * 13) % 7) as f32 / 3.0 - 1.0)
                    .collect::<Vec<f32>>(),
                [2, 3, 32, 32],
            ),
            device,
        );
        let a: Vec<u8> = (0..32 * 32).map(|p| ((p / 32) / 6) as u8).collect();
        let b = vec![2u8; 32 * 32];
        (images, structure_masks(&[&a, &b], 32, device))
    }

    #[test]
    fn every_variant_gives_head_width_logits() {
        let device = Device::flex();
        let (images, masks) = inputs(&device);
        for aggregation in [
            Aggregation::Global,
            Aggregation::Max,
            Aggregation::Attention,
        ] {
            for passes in [Passes::One, Passes::K] {
                let config = StructureNetConfig {
                    base: AttributeNetConfig::tiny(32),
                    aggregation,
                    passes,
                };
                let net = config.init(&device);
                let out = net.forward(images.clone(), masks.clone());
                assert_eq!(out.dims(), [2, HEAD_WIDTH]);
                let v: Vec<f32> = out.into_data().try_to_vec::<f32>().unwrap();
                assert!(
                    v.iter().all(|x| x.is_finite()),
                    "{aggregation:?} {passes:?}"
                );
            }
        }
    }

    #[test]
    fn global_aggregation_is_the_plain_network() {
        let device = Device::flex();
        let (images, masks) = inputs(&device);
        let config = StructureNetConfig {
            base: AttributeNetConfig::tiny(32),
            aggregation: Aggregation::Global,
            passes: Passes::One,
        };
        let net = config.init(&device);
        let a: Vec<f32> = net
            .forward(images.clone(), masks)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let b: Vec<f32> = net
            .base
            .forward(images)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn masks_are_one_hot_without_other() {
        let device = Device::flex();
        let map = [0u8, 1, 2, 5];
        let m: Vec<f32> = structure_masks(&[&map], 2, &device)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        // Pixel 0 is "other": in no mask. Pixel 1 cytoplasm (mask 0), 2 nucleus (mask 1),
        // 3 vacuole (mask 4).
        assert_eq!(m.iter().sum::<f32>(), 3.0);
        assert_eq!(m[1], 1.0);
        assert_eq!(m[4 + 2], 1.0);
        assert_eq!(m[4 * 4 + 3], 1.0);
    }
}
