//! A compact CNN with one softmax group per WBCAtt attribute and one for the cell type.
//!
//! All groups share one linear layer (31 attribute values + 5 cell types = 36 logits) so the
//! head is one matrix product; the groups are softmaxed separately.
//!
//! Two families share the type: the plain stack of 3×3 conv layers the app first shipped,
//! and residual networks (a plain stem, then ResNet basic blocks or MobileNetV2 inverted
//! bottlenecks, then an optional 1×1 layer widening the features), chosen by the card's
//! `block` so older cards still load.

use crate::layers::{no_probe, ConvBn, ConvBnRelu, Probe};
use burn::module::Module;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig, Relu};
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
    /// How each entry of `widths` after the first is built (the first is always a plain
    /// 3×3 stem layer); cards written before residual blocks existed are plain.
    #[serde(default)]
    pub block: BlockKind,
    /// A last 1×1 conv layer (batch norm, ReLU) to this many channels before pooling.
    #[serde(default)]
    pub feature_width: Option<usize>,
}

/// The layer type of an attribute network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockKind {
    /// One 3×3 conv, batch norm, ReLU per width.
    #[default]
    Plain,
    /// ResNet's basic block: two 3×3 convs with a skip (a 1×1 conv when the shape changes).
    Basic,
    /// MobileNetV2's inverted bottleneck: 1×1 expansion by this factor, 3×3 depthwise, 1×1
    /// projection, with a skip when the shape is kept.
    Inverted { expansion: usize },
    /// torchvision's MobileNetV2 exactly, so its ImageNet weights load: ReLU6 everywhere, the
    /// first block without expansion, the others expanding 6×; the widths and strides list
    /// the stem and then one entry per block (`AttributeNetConfig::mobilenet_v2`).
    MobileNetV2,
}

/// torchvision's MobileNetV2 stages: (expansion, channels, repeats, first stride).
const MOBILENET_V2_STAGES: [(usize, usize, usize, usize); 7] = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
];

impl AttributeNetConfig {
    /// The shipped architecture: 9 conv layers, 112 px input.
    pub fn standard() -> Self {
        Self {
            input_size: wbc_core::preprocess::INPUT_SIZE,
            widths: vec![32, 32, 64, 64, 128, 128, 192, 192, 256],
            strides: vec![2, 1, 2, 1, 2, 1, 2, 1, 1],
            dropout: 0.2,
            block: BlockKind::Plain,
            feature_width: None,
        }
    }

    /// The residual candidates measured against [`Self::standard`] on val (`wbc train
    /// --arch`): a narrow ResNet (basic blocks) and a MobileNetV2-style network.
    pub fn named(arch: &str, input_size: usize) -> Option<Self> {
        let config = match arch {
            "plain" => Self::standard(),
            "resnet" => Self {
                input_size,
                widths: vec![32, 32, 64, 64, 128, 128, 192],
                strides: vec![2, 1, 2, 1, 2, 1, 2],
                dropout: 0.2,
                block: BlockKind::Basic,
                feature_width: None,
            },
            "mobilenet_v2" => Self::mobilenet_v2(input_size),
            "mobile" => Self {
                input_size,
                widths: vec![32, 24, 32, 32, 64, 64, 96, 96, 160, 160],
                strides: vec![2, 1, 2, 1, 2, 1, 1, 1, 2, 1],
                dropout: 0.2,
                block: BlockKind::Inverted { expansion: 6 },
                feature_width: Some(640),
            },
            _ => return None,
        };
        Some(Self {
            input_size,
            ..config
        })
    }

    /// The ImageNet-pretrained MobileNetV2 encoder (fine-tuned by `train/finetune_encoder.py`,
    /// imported by `wbc import-encoder`): a 32-channel stem, 17 inverted bottlenecks, a 1×1
    /// layer to 1280 features.
    pub fn mobilenet_v2(input_size: usize) -> Self {
        let mut widths = vec![32];
        let mut strides = vec![2];
        for (_, channels, repeats, stride) in MOBILENET_V2_STAGES {
            for i in 0..repeats {
                widths.push(channels);
                strides.push(if i == 0 { stride } else { 1 });
            }
        }
        Self {
            input_size,
            widths,
            strides,
            dropout: 0.2,
            block: BlockKind::MobileNetV2,
            feature_width: Some(1280),
        }
    }

    /// A tiny variant for pipeline tests (seconds to train).
    pub fn tiny(input_size: usize) -> Self {
        Self {
            input_size,
            widths: vec![8, 16, 16],
            strides: vec![2, 2, 2],
            dropout: 0.0,
            block: BlockKind::Plain,
            feature_width: None,
        }
    }

    /// Channels of the pooled features (the head's input).
    pub fn feature_channels(&self) -> usize {
        self.feature_width
            .unwrap_or(*self.widths.last().expect("at least one layer"))
    }

    /// Build the network with fresh weights on `device`.
    pub fn init(&self, device: &Device) -> AttributeNet {
        let mut blocks = Vec::new();
        let mut residual = Vec::new();
        let mut in_ch = 3;
        for (i, (&w, &s)) in self.widths.iter().zip(&self.strides).enumerate() {
            match self.block {
                BlockKind::Basic if i > 0 => {
                    residual.push(ResidualBlock::basic(in_ch, w, s, device))
                }
                BlockKind::Inverted { expansion } if i > 0 => {
                    residual.push(ResidualBlock::inverted(in_ch, w, s, expansion, device))
                }
                BlockKind::MobileNetV2 if i > 0 => {
                    let expansion = if i == 1 { 1 } else { 6 };
                    residual.push(ResidualBlock::mobilenet_v2(in_ch, w, s, expansion, device))
                }
                BlockKind::MobileNetV2 => blocks.push(ConvBnRelu::with_relu6(ConvBn::new(
                    [in_ch, w],
                    3,
                    s,
                    1,
                    device,
                ))),
                _ => blocks.push(ConvBnRelu::new(in_ch, w, 3, s, device)),
            }
            in_ch = w;
        }
        let features = self.feature_width.map(|w| {
            let layer = ConvBn::new([in_ch, w], 1, 1, 1, device);
            match self.block {
                BlockKind::MobileNetV2 => ConvBnRelu::with_relu6(layer),
                _ => ConvBnRelu::with_activation(layer),
            }
        });
        AttributeNet {
            blocks,
            residual,
            features,
            pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            dropout: DropoutConfig::new(self.dropout).init(),
            head: LinearConfig::new(self.feature_channels(), HEAD_WIDTH).init(device),
        }
    }

    /// Multiply-accumulates per image ×2 (the usual "FLOPs" convention).
    pub fn flops(&self) -> u64 {
        let mut side = self.input_size as u64;
        let mut in_ch = 3u64;
        let mut macs = 0u64;
        for (i, (&w, &s)) in self.widths.iter().zip(&self.strides).enumerate() {
            let (w, s) = (w as u64, s as u64);
            let out_side = side.div_ceil(s);
            let out_px = out_side * out_side;
            macs += match self.block {
                BlockKind::Basic if i > 0 => {
                    let shortcut = if s != 1 || in_ch != w { in_ch * w } else { 0 };
                    out_px * (in_ch * w * 9 + w * w * 9 + shortcut)
                }
                BlockKind::Inverted { expansion } if i > 0 => {
                    let hidden = in_ch * expansion as u64;
                    side * side * in_ch * hidden + out_px * (hidden * 9 + hidden * w)
                }
                BlockKind::MobileNetV2 if i > 0 => {
                    let expansion = if i == 1 { 1 } else { 6 };
                    let hidden = in_ch * expansion;
                    let expand = if expansion == 1 {
                        0
                    } else {
                        side * side * in_ch * hidden
                    };
                    expand + out_px * (hidden * 9 + hidden * w)
                }
                _ => out_px * in_ch * w * 9,
            };
            side = out_side;
            in_ch = w;
        }
        if let Some(f) = self.feature_width {
            macs += side * side * in_ch * f as u64;
            in_ch = f as u64;
        }
        macs += in_ch * HEAD_WIDTH as u64;
        2 * macs
    }
}

/// A residual block: `branch` (ReLU between its layers) added to the input, or to
/// `shortcut` of it when the block changes the shape and has one.
#[derive(Module, Debug)]
pub struct ResidualBlock {
    /// Every layer of the branch but the last, each with its ReLU.
    layers: Vec<ConvBnRelu>,
    last: ConvBn,
    shortcut: Option<ConvBn>,
    /// ReLU after the sum (basic blocks) or none (inverted bottlenecks keep it linear).
    activation: Option<Relu>,
}

impl ResidualBlock {
    fn basic(in_ch: usize, out_ch: usize, stride: usize, device: &Device) -> Self {
        let shortcut = (stride != 1 || in_ch != out_ch)
            .then(|| ConvBn::new([in_ch, out_ch], 1, stride, 1, device));
        Self {
            layers: vec![ConvBnRelu::new(in_ch, out_ch, 3, stride, device)],
            last: ConvBn::new([out_ch, out_ch], 3, 1, 1, device),
            shortcut,
            activation: Some(Relu::new()),
        }
    }

    fn inverted(
        in_ch: usize,
        out_ch: usize,
        stride: usize,
        expansion: usize,
        device: &Device,
    ) -> Self {
        let hidden = in_ch * expansion;
        Self {
            layers: vec![
                ConvBnRelu::new(in_ch, hidden, 1, 1, device),
                ConvBnRelu::with_activation(ConvBn::new(
                    [hidden, hidden],
                    3,
                    stride,
                    hidden,
                    device,
                )),
            ],
            last: ConvBn::new([hidden, out_ch], 1, 1, 1, device),
            shortcut: None,
            activation: None,
        }
    }

    /// torchvision's inverted residual: ReLU6, no expansion layer when `expansion` is 1.
    fn mobilenet_v2(
        in_ch: usize,
        out_ch: usize,
        stride: usize,
        expansion: usize,
        device: &Device,
    ) -> Self {
        let hidden = in_ch * expansion;
        let mut layers = Vec::new();
        if expansion != 1 {
            layers.push(ConvBnRelu::with_relu6(ConvBn::new(
                [in_ch, hidden],
                1,
                1,
                1,
                device,
            )));
        }
        layers.push(ConvBnRelu::with_relu6(ConvBn::new(
            [hidden, hidden],
            3,
            stride,
            hidden,
            device,
        )));
        Self {
            layers,
            last: ConvBn::new([hidden, out_ch], 1, 1, 1, device),
            shortcut: None,
            activation: None,
        }
    }

    fn folded(self) -> Self {
        Self {
            layers: self.layers.into_iter().map(ConvBnRelu::folded).collect(),
            last: self.last.folded(),
            shortcut: self.shortcut.map(ConvBn::folded),
            activation: self.activation,
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let branch = self
            .last
            .forward(self.layers.iter().fold(x.clone(), |h, l| l.forward(h)));
        let sum = if branch.dims() == x.dims() {
            branch + x
        } else if let Some(shortcut) = &self.shortcut {
            branch + shortcut.forward(x)
        } else {
            branch
        };
        match &self.activation {
            Some(relu) => relu.forward(sum),
            None => sum,
        }
    }
}

/// The attribute network.
#[derive(Module, Debug)]
pub struct AttributeNet {
    /// The plain layers (all of a plain network; the stem of a residual one).
    blocks: Vec<ConvBnRelu>,
    residual: Vec<ResidualBlock>,
    features: Option<ConvBnRelu>,
    pool: AdaptiveAvgPool2d,
    dropout: Dropout,
    head: Linear,
}

impl AttributeNet {
    /// The last feature map `[batch, channels, h, w]` (used for class-activation maps).
    pub fn feature_map(&self, images: Tensor<4>) -> Tensor<4> {
        self.feature_map_probed(images, &mut no_probe)
    }

    /// [`Self::feature_map`], calling `probe` after each layer (plain layers are "conv",
    /// residual blocks "block", the last 1×1 layer "features").
    pub fn feature_map_probed(&self, images: Tensor<4>, probe: Probe) -> Tensor<4> {
        let mut x = images;
        for (i, layer) in self.blocks.iter().enumerate() {
            x = layer.forward(x);
            probe("conv", i + 1, &x);
        }
        for (i, block) in self.residual.iter().enumerate() {
            x = block.forward(x);
            probe("block", i + 1, &x);
        }
        if let Some(layer) = &self.features {
            x = layer.forward(x);
            probe("features", 1, &x);
        }
        x
    }

    /// Globally average-pooled features `[batch, channels]`.
    pub fn pooled_features(&self, images: Tensor<4>) -> Tensor<2> {
        self.pool(self.feature_map(images))
    }

    /// A feature map globally average-pooled to `[batch, channels]`.
    pub fn pool(&self, map: Tensor<4>) -> Tensor<2> {
        self.pool.forward(map).flatten(1, 3)
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

    /// The same network with every batch norm folded into its convolution: the same
    /// answers (to float rounding) in fewer passes. For inference only (the cell pipeline);
    /// a folded network cannot be trained or have its statistics refreshed.
    pub fn folded(self) -> Self {
        Self {
            blocks: self.blocks.into_iter().map(ConvBnRelu::folded).collect(),
            residual: self
                .residual
                .into_iter()
                .map(ResidualBlock::folded)
                .collect(),
            features: self.features.map(ConvBnRelu::folded),
            ..self
        }
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
        assert_cam_averages_to_logit(&net, x, 3);
    }

    /// The class-activation map of the first image for logit `j` averages to that logit
    /// minus its bias.
    fn assert_cam_averages_to_logit(net: &AttributeNet, x: Tensor<4>, j: usize) {
        let vec = |t: TensorData| t.try_to_vec::<f32>().unwrap();
        let first = x.slice([0..1]);
        let logits = vec(net.forward(first.clone()).into_data());
        let bias = vec(net.head.bias.as_ref().unwrap().val().into_data());
        let mut direction = vec![0.0; HEAD_WIDTH];
        direction[j] = 1.0;
        let cam = vec(net.class_activation(first, &direction).into_data());
        let mean = cam.iter().sum::<f32>() / cam.len() as f32;
        assert!(
            (mean - (logits[j] - bias[j])).abs() < 1e-4,
            "{mean} vs {}",
            logits[j] - bias[j]
        );
    }

    /// Tiny residual networks of both kinds: the skips keep shapes right (strides, width
    /// changes, the 1×1 feature layer), the FLOP count is the layers' sum, and CAM still
    /// averages to the logit (the network still ends in pooling and one linear layer).
    #[test]
    fn residual_networks_run_and_explain() {
        let device = Device::flex();
        for block in [BlockKind::Basic, BlockKind::Inverted { expansion: 2 }] {
            let config = AttributeNetConfig {
                input_size: 32,
                widths: vec![8, 8, 16, 16],
                strides: vec![2, 1, 2, 1],
                dropout: 0.0,
                block,
                feature_width: Some(24),
            };
            let net = config.init(&device);
            assert_eq!(net.residual.len(), 3);
            let x = Tensor::<4>::from_data(
                TensorData::new(
                    (0..2 * 3 * 32 * 32)
                        .map(|i| ((i * 13) % 7) as f32 / 3.0 - 1.0)
                        .collect::<Vec<f32>>(),
                    [2, 3, 32, 32],
                ),
                &device,
            );
            assert_eq!(net.feature_map(x.clone()).dims(), [2, 24, 8, 8]);
            let logits = net
                .forward(x.clone())
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            assert_eq!(logits.len(), 2 * HEAD_WIDTH);
            assert_cam_averages_to_logit(&net, x.clone(), 5);
            // Folding the batch norms changes nothing but rounding.
            let folded = net.clone().folded();
            let again = folded.forward(x).into_data().try_to_vec::<f32>().unwrap();
            for (a, b) in logits.iter().zip(&again) {
                assert!((a - b).abs() < 1e-4, "{block:?}: {a} vs {b}");
            }
        }
        // The basic net by hand: stem 16²·3·8·9; block 1 (same shape) 16²·(8·8·9·2);
        // block 2 (stride 2, 8→16, 1×1 shortcut) 8²·(8·16·9 + 16·16·9 + 8·16); block 3
        // 8²·16·16·9·2; features 8²·16·24; head 24·36.
        let basic = AttributeNetConfig {
            input_size: 32,
            widths: vec![8, 8, 16, 16],
            strides: vec![2, 1, 2, 1],
            dropout: 0.0,
            block: BlockKind::Basic,
            feature_width: Some(24),
        };
        let macs = 256 * 3 * 8 * 9
            + 256 * 8 * 8 * 18
            + 64 * (8 * 16 * 9 + 16 * 16 * 9 + 8 * 16)
            + 64 * 16 * 16 * 18
            + 64 * 16 * 24
            + 24 * HEAD_WIDTH as u64;
        assert_eq!(basic.flops(), 2 * macs);
    }

    /// The MobileNetV2 layout is torchvision's, so its ImageNet weights fit: the same
    /// parameter count (2,223,872 without the classifier, plus our 1280×36 head), a 1,280-wide
    /// map at 1/32 of the input, CAM still the logit, folding still exact (ReLU6 kept).
    #[test]
    fn mobilenet_v2_matches_torchvision() {
        let device = Device::flex();
        let config = AttributeNetConfig::mobilenet_v2(64);
        assert_eq!(config.widths.len(), 18);
        let net = config.init(&device);
        // Burn also counts each batch norm's running mean and variance (17,056 channels).
        assert_eq!(
            net.parameter_count(),
            2_223_872 + 2 * 17_056 + 1280 * HEAD_WIDTH + HEAD_WIDTH
        );
        let x = Tensor::<4>::from_data(
            TensorData::new(
                (0..3 * 64 * 64)
                    .map(|i| ((i * 29) % 13) as f32 / 4.0 - 1.5)
                    .collect::<Vec<f32>>(),
                [1, 3, 64, 64],
            ),
            &device,
        );
        assert_eq!(net.feature_map(x.clone()).dims(), [1, 1280, 2, 2]);
        assert_cam_averages_to_logit(&net, x.clone(), 33);
        let logits = net
            .forward(x.clone())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let folded = net.folded();
        let again = folded.forward(x).into_data().try_to_vec::<f32>().unwrap();
        for (a, b) in logits.iter().zip(&again) {
            assert!((a - b).abs() < 1e-3, "{a} vs {b}");
        }
        // torchvision's count at 224 px: about 300 M multiply-adds (0.6 GFLOPs).
        let flops = AttributeNetConfig::mobilenet_v2(224).flops();
        assert!((550_000_000..650_000_000).contains(&flops), "{flops}");
        // A card names the kind so the page rebuilds the same network.
        let json = serde_json::to_string(&config).unwrap();
        let back: AttributeNetConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, config);
    }

    /// A card written before residual networks existed still reads as the plain stack.
    #[test]
    fn old_cards_are_plain() {
        let config: AttributeNetConfig =
            serde_json::from_str(r#"{"input_size":160,"widths":[8],"strides":[2],"dropout":0.2}"#)
                .unwrap();
        assert_eq!(config.block, BlockKind::Plain);
        assert_eq!(config.feature_channels(), 8);
    }

    #[test]
    fn head_offsets_shift_the_logits() {
        let device = Device::flex();
        let net = AttributeNetConfig::tiny(16).init(&device);
        let x = Tensor::<4>::from_data(
            TensorData::new(vec![0.3f32; 3 * 16 * 16], [1, 3, 16, 16]),
            &device,
        );
        let before: Vec<f32> = net
            .forward(x.clone())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let offsets: Vec<f32> = (0..HEAD_WIDTH).map(|j| j as f32 / 10.0).collect();
        let after: Vec<f32> = net
            .with_head_offsets(&offsets)
            .forward(x)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        for j in 0..HEAD_WIDTH {
            assert!((after[j] - before[j] - offsets[j]).abs() < 1e-5);
        }
    }
}
