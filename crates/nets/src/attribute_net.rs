//! A compact CNN with one softmax group per WBCAtt attribute and one for the cell type.
//!
//! All groups share one linear layer (31 attribute values + 5 cell types = 36 logits) so the
//! head is one matrix product; the groups are softmaxed separately.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig, PaddingConfig2d, Relu,
};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

/// Logits per image: 31 attribute values then 5 cell types.
pub use wbc_core::HEAD_WIDTH;

/// Shape of the network; stored in the model card so a burnpack can be rebuilt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributeNetConfig {
    /// Input side in pixels.
    pub input_size: usize,
    /// Output channels of each 3×3 conv layer.
    pub widths: Vec<usize>,
    /// Stride of each conv layer (2 halves the resolution).
    pub strides: Vec<usize>,
    /// Dropout before the head.
    pub dropout: f64,
}

impl AttributeNetConfig {
    /// The shipped architecture: 9 conv layers, 112 px input.
    pub fn standard() -> Self {
        Self {
            input_size: wbc_core::preprocess::INPUT_SIZE,
            widths: vec![32, 32, 64, 64, 128, 128, 192, 192, 256],
            strides: vec![2, 1, 2, 1, 2, 1, 2, 1, 1],
            dropout: 0.2,
        }
    }

    /// A tiny variant for pipeline tests (seconds to train).
    pub fn tiny(input_size: usize) -> Self {
        Self {
            input_size,
            widths: vec![8, 16, 16],
            strides: vec![2, 2, 2],
            dropout: 0.0,
        }
    }

    /// Build the network with fresh weights on `device`.
    pub fn init(&self, device: &Device) -> AttributeNet {
        let mut blocks = Vec::new();
        let mut in_ch = 3;
        for (&w, &s) in self.widths.iter().zip(&self.strides) {
            blocks.push(ConvBnRelu {
                conv: Conv2dConfig::new([in_ch, w], [3, 3])
                    .with_stride([s, s])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .with_bias(false)
                    .init(device),
                norm: BatchNormConfig::new(w).init(device),
                activation: Relu::new(),
            });
            in_ch = w;
        }
        AttributeNet {
            blocks,
            pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            dropout: DropoutConfig::new(self.dropout).init(),
            head: LinearConfig::new(in_ch, HEAD_WIDTH).init(device),
        }
    }

    /// Multiply-accumulates per image ×2 (the usual "FLOPs" convention).
    pub fn flops(&self) -> u64 {
        let mut side = self.input_size as u64;
        let mut in_ch = 3u64;
        let mut macs = 0u64;
        for (&w, &s) in self.widths.iter().zip(&self.strides) {
            side = side.div_ceil(s as u64);
            macs += side * side * in_ch * w as u64 * 9;
            in_ch = w as u64;
        }
        macs += in_ch * HEAD_WIDTH as u64;
        2 * macs
    }
}

/// 3×3 convolution, batch norm, ReLU.
#[derive(Module, Debug)]
pub struct ConvBnRelu {
    conv: Conv2d,
    norm: BatchNorm,
    activation: Relu,
}

impl ConvBnRelu {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.activation
            .forward(self.norm.forward(self.conv.forward(x)))
    }
}

/// The attribute network.
#[derive(Module, Debug)]
pub struct AttributeNet {
    blocks: Vec<ConvBnRelu>,
    pool: AdaptiveAvgPool2d,
    dropout: Dropout,
    head: Linear,
}

impl AttributeNet {
    /// The last feature map `[batch, channels, h, w]` (used for class-activation maps).
    pub fn feature_map(&self, images: Tensor<4>) -> Tensor<4> {
        self.blocks.iter().fold(images, |x, b| b.forward(x))
    }

    /// Globally average-pooled features `[batch, channels]`.
    pub fn pooled_features(&self, images: Tensor<4>) -> Tensor<2> {
        self.pool.forward(self.feature_map(images)).flatten(1, 3)
    }

    /// Logits from pooled features (dropout while training, then the shared linear head).
    pub fn head_forward(&self, features: Tensor<2>) -> Tensor<2> {
        self.head.forward(self.dropout.forward(features))
    }

    /// Pooled features `[batch, channels]` and logits `[batch, HEAD_WIDTH]`.
    pub fn forward_with_features(&self, images: Tensor<4>) -> (Tensor<2>, Tensor<2>) {
        let features = self.pooled_features(images);
        let logits = self.head_forward(features.clone());
        (features, logits)
    }

    /// Logits `[batch, HEAD_WIDTH]` for normalised images `[batch, 3, size, size]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.forward_with_features(images).1
    }

    /// Class-activation map `[batch, h, w]` (the last feature map's resolution) for a
    /// direction in logit space: `direction[j]` weighs logit `j`. For this network (global
    /// average pooling, then one linear layer) the gradient of a logit with respect to the
    /// feature map is the head's weight column spread evenly over the map, so this is exactly
    /// Grad-CAM (before its ReLU), computed without autodiff.
    pub fn class_activation(&self, images: Tensor<4>, direction: &[f32]) -> Tensor<3> {
        assert_eq!(direction.len(), HEAD_WIDTH);
        let map = self.feature_map(images);
        let [_, channels, _, _] = map.dims();
        let device = map.device();
        let direction = Tensor::<2>::from_data(
            burn::tensor::TensorData::new(direction.to_vec(), [HEAD_WIDTH, 1]),
            &device,
        );
        // [channels, HEAD_WIDTH] × [HEAD_WIDTH, 1] → one weight per channel.
        let weights = self.head.weight.val().matmul(direction);
        (map * weights.reshape([1, channels, 1, 1]))
            .sum_dim(1)
            .squeeze_dim(1)
    }

    /// The same network with `offsets` (one per logit) added to the head's bias: a fixed
    /// per-value shift of the logits (e.g. a logit adjustment) costs nothing at inference.
    pub fn with_head_offsets(mut self, offsets: &[f32]) -> Self {
        assert_eq!(offsets.len(), HEAD_WIDTH);
        let device = self.head.weight.val().device();
        let delta = Tensor::<1>::from_data(
            burn::tensor::TensorData::new(offsets.to_vec(), [HEAD_WIDTH]),
            &device,
        );
        self.head.bias = self.head.bias.map(|b| b.map(|t| t + delta));
        self
    }

    /// Number of trainable parameters.
    pub fn parameter_count(&self) -> usize {
        self.num_params()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    /// The map averages to the logit it explains (minus the bias): CAM's defining property.
    #[test]
    fn activation_map_averages_to_the_logit() {
        let device = Device::flex();
        let config = AttributeNetConfig::tiny(32);
        let net = config.init(&device);
        let x = Tensor::<4>::from_data(
            TensorData::new(
                (0..3 * 32 * 32)
                    .map(|i| ((i * 37) % 11) as f32 / 5.0 - 1.0)
                    .collect::<Vec<f32>>(),
                [1, 3, 32, 32],
            ),
            &device,
        );
        let logits: Vec<f32> = net.forward(x.clone()).into_data().to_vec().unwrap();
        let bias: Vec<f32> = net
            .head
            .bias
            .as_ref()
            .unwrap()
            .val()
            .into_data()
            .to_vec()
            .unwrap();
        let mut direction = vec![0.0; HEAD_WIDTH];
        direction[3] = 1.0;
        let cam: Vec<f32> = net
            .class_activation(x, &direction)
            .into_data()
            .to_vec()
            .unwrap();
        let mean = cam.iter().sum::<f32>() / cam.len() as f32;
        assert!(
            (mean - (logits[3] - bias[3])).abs() < 1e-4,
            "{mean} vs {}",
            logits[3] - bias[3]
        );
    }

    #[test]
    fn head_offsets_shift_the_logits() {
        let device = Device::flex();
        let net = AttributeNetConfig::tiny(16).init(&device);
        let x = Tensor::<4>::from_data(
            TensorData::new(vec![0.3f32; 3 * 16 * 16], [1, 3, 16, 16]),
            &device,
        );
        let before: Vec<f32> = net.forward(x.clone()).into_data().to_vec().unwrap();
        let offsets: Vec<f32> = (0..HEAD_WIDTH).map(|j| j as f32 / 10.0).collect();
        let after: Vec<f32> = net
            .with_head_offsets(&offsets)
            .forward(x)
            .into_data()
            .to_vec()
            .unwrap();
        for j in 0..HEAD_WIDTH {
            assert!((after[j] - before[j] - offsets[j]).abs() < 1e-5);
        }
    }
}
