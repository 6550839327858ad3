//! A compact encoder-decoder (U-Net shaped) that labels every pixel of a cell crop with the six
//! WBCAtt+ classes (0 other, 1 cytoplasm, 2 nucleus, 3 platelet, 4 red cell, 5 vacuole).
//!
//! It reads the same normalised 112 px input as the attribute network, so one decoded cell
//! feeds both. The decoder stops at half resolution and the logits are bilinearly resized to
//! whatever size the caller wants: smooth boundaries at a quarter of the cost of a full-res
//! decoder.

use crate::layers::{no_probe, ConvBnRelu, Probe};
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use wbc_core::segmentation::TidyParams;
use wbc_core::segmentation::NUM_LABELS;

/// Shape of the segmentation network; stored in its model card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegNetConfig {
    /// Input side in pixels.
    pub input_size: usize,
    /// Channels of each encoder stage; every stage halves the resolution.
    pub widths: Vec<usize>,
    /// Feed the distance from the image centre as a fourth input channel. Only the central
    /// white cell is labelled, and the convolutions alone cannot tell a cell at the centre
    /// from one at the border. Absent (false) in cards written before it existed.
    #[serde(default)]
    pub centre_prior: bool,
    /// Give each label map the labeller's shape of the central cell
    /// (`wbc_core::segmentation::tidy_cell`). Not learnt: `wbc export-seg` switches it on when
    /// it raises whole-cell IoU on val.
    #[serde(default)]
    pub tidy_cell: bool,
    /// How tidying tells the central cell's nucleus pieces from other cells' (chosen on val
    /// by `wbc export-seg`'s sweep; cards written before the sweep used the default).
    #[serde(default)]
    pub tidy: TidyParams,
}

impl SegNetConfig {
    /// The shipped network: four stages (112 → 56 → 28 → 14 → 7), decoder back to 56.
    pub fn standard() -> Self {
        Self {
            input_size: wbc_core::preprocess::INPUT_SIZE,
            widths: vec![16, 32, 64, 128],
            centre_prior: true,
            tidy_cell: false,
            tidy: TidyParams::default(),
        }
    }

    /// A tiny variant for pipeline tests.
    pub fn tiny(input_size: usize) -> Self {
        Self {
            input_size,
            widths: vec![4, 8],
            centre_prior: true,
            tidy_cell: false,
            tidy: TidyParams::default(),
        }
    }

    pub fn init(&self, device: &Device) -> SegNet {
        let mut encoder = Vec::new();
        let mut in_ch = self.input_channels();
        for &w in &self.widths {
            encoder.push(EncoderStage {
                down: ConvBnRelu::new(in_ch, w, 3, 2, device),
                conv: ConvBnRelu::new(w, w, 3, 1, device),
            });
            in_ch = w;
        }
        // Decoder: from the deepest stage up to the first, each fusing the skip of its level.
        let mut decoder = Vec::new();
        for level in (0..self.widths.len() - 1).rev() {
            let skip = self.widths[level];
            decoder.push(ConvBnRelu::new(in_ch + skip, skip, 3, 1, device));
            in_ch = skip;
        }
        SegNet {
            encoder,
            decoder,
            classifier: Conv2dConfig::new([in_ch, NUM_LABELS], [1, 1]).init(device),
            centre_prior: self.centre_prior,
            tidy_cell: self.tidy_cell,
            lobe_reach: self.tidy.lobe_reach,
            waist_gain: self.tidy.waist_gain,
        }
    }

    fn input_channels(&self) -> usize {
        3 + self.centre_prior as usize
    }

    /// Multiply-accumulates ×2 per image, logits at half resolution (resizing not counted).
    pub fn flops(&self) -> u64 {
        let mut macs = 0u64;
        let mut side = self.input_size as u64;
        let mut in_ch = self.input_channels() as u64;
        let mut sides = Vec::new();
        for &w in &self.widths {
            side = side.div_ceil(2);
            let w = w as u64;
            macs += side * side * 9 * (in_ch * w + w * w);
            sides.push(side);
            in_ch = w;
        }
        for level in (0..self.widths.len() - 1).rev() {
            let (s, skip) = (sides[level], self.widths[level] as u64);
            macs += s * s * 9 * (in_ch + skip) * skip;
            in_ch = skip;
        }
        macs += sides[0] * sides[0] * in_ch * NUM_LABELS as u64;
        2 * macs
    }
}

#[derive(Module, Debug)]
pub struct EncoderStage {
    down: ConvBnRelu,
    conv: ConvBnRelu,
}

/// The segmentation network.
#[derive(Module, Debug)]
pub struct SegNet {
    encoder: Vec<EncoderStage>,
    decoder: Vec<ConvBnRelu>,
    classifier: Conv2d,
    centre_prior: bool,
    tidy_cell: bool,
    lobe_reach: f32,
    waist_gain: f32,
}

impl SegNet {
    /// Logits `[batch, 6, size/2, size/2]` for normalised images `[batch, 3, size, size]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<4> {
        self.forward_probed(images, &mut no_probe)
    }

    /// [`Self::forward`], calling `probe` after each layer: the centre prior, each encoder
    /// stage's strided and plain convolution, each decoder block's upsampling and concatenation
    /// and its convolution, the classifier.
    pub fn forward_probed(&self, images: Tensor<4>, probe: Probe) -> Tensor<4> {
        let mut skips = Vec::with_capacity(self.encoder.len());
        let mut x = if self.centre_prior {
            let x = with_centre_distance(images);
            probe("centre prior", 1, &x);
            x
        } else {
            images
        };
        for (i, stage) in self.encoder.iter().enumerate() {
            x = stage.down.forward(x);
            probe("encoder down", i + 1, &x);
            x = stage.conv.forward(x);
            probe("encoder conv", i + 1, &x);
            skips.push(x.clone());
        }
        skips.pop();
        for (i, block) in self.decoder.iter().enumerate() {
            let skip = skips.pop().expect("one skip per decoder block");
            let [_, _, h, w] = skip.dims();
            let up = interpolate(
                x,
                InterpolateOptions::new(InterpolateMode::Nearest).with_output_size([h, w]),
            );
            x = Tensor::cat(vec![up, skip], 1);
            probe("decoder up+concat", i + 1, &x);
            x = block.forward(x);
            probe("decoder conv", i + 1, &x);
        }
        let logits = self.classifier.forward(x);
        probe("classifier", 1, &logits);
        logits
    }

    /// Logits resized to `[batch, 6, side, side]` (bilinear, so boundaries are smooth).
    pub fn forward_at(&self, images: Tensor<4>, side: usize) -> Tensor<4> {
        resize_logits(self.forward(images), side)
    }

    /// The label map `[batch, side, side]`: the most likely class per pixel.
    pub fn labels(&self, images: Tensor<4>, side: usize) -> Tensor<3, Int> {
        self.forward_at(images, side).argmax(1).squeeze_dim(1)
    }

    pub fn parameter_count(&self) -> usize {
        self.num_params()
    }

    /// The same network with every batch norm folded into its convolution (inference only;
    /// see [`crate::AttributeNet::folded`]).
    pub fn folded(self) -> Self {
        Self {
            encoder: self
                .encoder
                .into_iter()
                .map(|stage| EncoderStage {
                    down: stage.down.folded(),
                    conv: stage.conv.folded(),
                })
                .collect(),
            decoder: self.decoder.into_iter().map(ConvBnRelu::folded).collect(),
            ..self
        }
    }

    /// The same network with label-map tidying off (`None`) or on with these parameters.
    pub fn with_tidy(mut self, tidy: Option<TidyParams>) -> Self {
        self.tidy_cell = tidy.is_some();
        if let Some(p) = tidy {
            self.lobe_reach = p.lobe_reach;
            self.waist_gain = p.waist_gain;
        }
        self
    }

    /// How label maps get the labeller's shape of the central cell, if they do (see
    /// [`SegNetConfig::tidy_cell`]).
    pub fn tidy(&self) -> Option<TidyParams> {
        self.tidy_cell.then_some(TidyParams {
            lobe_reach: self.lobe_reach,
            waist_gain: self.waist_gain,
        })
    }
}

/// The images with one more channel: each pixel's distance from the image centre, 0 there and
/// 1 at the middle of each edge.
fn with_centre_distance(images: Tensor<4>) -> Tensor<4> {
    let [n, _, h, w] = images.dims();
    let mut plane = Vec::with_capacity(h * w);
    for y in 0..h {
        for x in 0..w {
            let dy = 2.0 * (y as f32 + 0.5) / h as f32 - 1.0;
            let dx = 2.0 * (x as f32 + 0.5) / w as f32 - 1.0;
            plane.push((dx * dx + dy * dy).sqrt());
        }
    }
    let plane = Tensor::<4>::from_data(TensorData::new(plane, [1, 1, h, w]), &images.device());
    Tensor::cat(vec![images, plane.repeat_dim(0, n)], 1)
}

/// Bilinear resize of `[batch, classes, h, w]` logits to `side`×`side`.
pub fn resize_logits(logits: Tensor<4>, side: usize) -> Tensor<4> {
    interpolate(
        logits,
        InterpolateOptions::new(InterpolateMode::Bilinear)
            .with_align_corners(false)
            .with_output_size([side, side]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_flops() {
        let device = Device::flex();
        let config = SegNetConfig::tiny(32);
        let net = config.init(&device);
        let x = Tensor::<4>::from_data(
            TensorData::new(vec![0.1f32; 2 * 3 * 32 * 32], [2, 3, 32, 32]),
            &device,
        );
        assert_eq!(net.forward(x.clone()).dims(), [2, NUM_LABELS, 16, 16]);
        assert_eq!(net.labels(x, 40).dims(), [2, 40, 40]);
        // Cards written before the centre channel existed load as networks without it.
        let old: SegNetConfig =
            serde_json::from_str(r#"{"input_size":112,"widths":[16,32]}"#).unwrap();
        assert!(!old.centre_prior);
        let x = Tensor::<4>::from_data(
            TensorData::new(vec![0.1f32; 3 * 32 * 32], [1, 3, 32, 32]),
            &device,
        );
        assert_eq!(old.init(&device).forward(x).dims(), [1, NUM_LABELS, 16, 16]);
        let standard = SegNetConfig::standard();
        assert!(standard.flops() > 10_000_000 && standard.flops() < 1_000_000_000);
    }
}
