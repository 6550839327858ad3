//! The layers the networks share: convolution + batch norm (+ ReLU), and folding the batch
//! norm into the convolution for inference.

use burn::module::{Module, Param};
use burn::nn::activation::Relu6;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d, Relu};
use burn::tensor::{Device, Tensor};

/// Called after each layer of a forward pass with the layer's kind, its 1-based index among
/// layers of that kind, and its output: a per-layer profile synchronises the device and reads
/// its clock there ([`crate::Analyzer::profile_layers`]); a plain forward pass passes
/// [`no_probe`].
pub type Probe<'a> = &'a mut dyn FnMut(&'static str, usize, &Tensor<4>);

/// The probe of a plain forward pass.
pub fn no_probe(_: &'static str, _: usize, _: &Tensor<4>) {}

/// Convolution (3×3 or 1×1), batch norm, ReLU (or ReLU6, as the pretrained MobileNetV2 has).
#[derive(Module, Debug)]
pub struct ConvBnRelu {
    pub(crate) conv: Conv2d,
    /// `None` once folded into `conv` ([`ConvBnRelu::folded`]).
    pub(crate) norm: Option<BatchNorm>,
    pub(crate) activation: Relu,
    /// `Some` for ReLU6 (clamped at 6) instead of the plain ReLU; no weights either way, so
    /// burnpacks of older networks load unchanged.
    pub(crate) capped: Option<Relu6>,
}

impl ConvBnRelu {
    pub(crate) fn new(
        in_ch: usize,
        out_ch: usize,
        kernel: usize,
        stride: usize,
        device: &Device,
    ) -> Self {
        Self::with_activation(ConvBn::new([in_ch, out_ch], kernel, stride, 1, device))
    }

    /// A conv + batch norm layer followed by a ReLU.
    pub(crate) fn with_activation(layer: ConvBn) -> Self {
        Self {
            conv: layer.conv,
            norm: layer.norm,
            activation: Relu::new(),
            capped: None,
        }
    }

    /// A conv + batch norm layer followed by a ReLU6.
    pub(crate) fn with_relu6(layer: ConvBn) -> Self {
        Self {
            capped: Some(Relu6::new()),
            ..Self::with_activation(layer)
        }
    }

    pub(crate) fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = normalised(&self.norm, self.conv.forward(x));
        match &self.capped {
            Some(relu6) => relu6.forward(x),
            None => self.activation.forward(x),
        }
    }

    /// The same layer with its batch norm folded into the convolution (inference only).
    pub(crate) fn folded(self) -> Self {
        let ConvBn { conv, norm } = ConvBn {
            conv: self.conv,
            norm: self.norm,
        }
        .folded();
        Self { conv, norm, ..self }
    }
}

/// Convolution and batch norm, no activation (the last layer of a residual branch).
#[derive(Module, Debug)]
pub struct ConvBn {
    pub(crate) conv: Conv2d,
    /// `None` once folded into `conv` ([`ConvBn::folded`]).
    pub(crate) norm: Option<BatchNorm>,
}

impl ConvBn {
    pub(crate) fn new(
        channels: [usize; 2],
        kernel: usize,
        stride: usize,
        groups: usize,
        device: &Device,
    ) -> Self {
        let pad = kernel / 2;
        Self {
            conv: Conv2dConfig::new(channels, [kernel, kernel])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
                .with_groups(groups)
                .with_bias(false)
                .init(device),
            norm: Some(BatchNormConfig::new(channels[1]).init(device)),
        }
    }

    pub(crate) fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        normalised(&self.norm, self.conv.forward(x))
    }

    /// The same layer with its batch norm (running statistics, as at inference) folded into
    /// the convolution's weights and bias: one pass over the activations instead of two.
    /// onnxruntime does this to every graph it loads; Burn runs each batch norm as its own
    /// kernel. Only for inference: training needs the batch norm.
    pub(crate) fn folded(self) -> Self {
        let Some(norm) = self.norm else {
            return self;
        };
        // y = γ (conv(x) + b − μ) / √(σ² + ε) + β  =  conv'(x) + b'
        let scale = norm.gamma.val() / norm.running_var.value().add_scalar(norm.epsilon).sqrt();
        let mut conv = self.conv;
        let shift = match conv.bias.take() {
            Some(bias) => bias.val() - norm.running_mean.value(),
            None => norm.running_mean.value().neg(),
        } * scale.clone()
            + norm.beta.val();
        let [out, _, _, _] = conv.weight.val().dims();
        conv.weight = Param::from_tensor(conv.weight.val() * scale.reshape([out, 1, 1, 1]));
        conv.bias = Some(Param::from_tensor(shift));
        Self { conv, norm: None }
    }
}

fn normalised(norm: &Option<BatchNorm>, x: Tensor<4>) -> Tensor<4> {
    match norm {
        Some(n) => n.forward(x),
        None => x,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::RunningState;
    use burn::tensor::TensorData;

    fn values(n: usize, seed: usize, low: f32, high: f32, device: &Device) -> Tensor<1> {
        let v: Vec<f32> = (0..n)
            .map(|i| low + (high - low) * (((i * 7919 + seed * 104_729) % 1000) as f32 / 1000.0))
            .collect();
        Tensor::from_data(TensorData::new(v, [n]), device)
    }

    /// Folding leaves the layer's output unchanged (to float rounding), with and without a
    /// convolution bias, for a grouped (depthwise) convolution too.
    #[test]
    fn folding_keeps_the_output() {
        let device = Device::flex();
        for (channels, groups) in [([3, 8], 1), ([8, 8], 8)] {
            let mut layer = ConvBn::new(channels, 3, 2, groups, &device);
            let norm = layer.norm.as_mut().unwrap();
            norm.gamma = Param::from_tensor(values(channels[1], 1, 0.5, 1.5, &device));
            norm.beta = Param::from_tensor(values(channels[1], 2, -0.3, 0.3, &device));
            norm.running_mean = RunningState::new(values(channels[1], 3, -0.2, 0.2, &device));
            norm.running_var = RunningState::new(values(channels[1], 4, 0.2, 2.0, &device));
            let x = Tensor::<4>::from_data(
                TensorData::new(
                    (0..channels[0] * 10 * 10)
                        .map(|i| ((i * 31) % 17) as f32 / 8.0 - 1.0)
                        .collect::<Vec<f32>>(),
                    [1, channels[0], 10, 10],
                ),
                &device,
            );
            let before = layer
                .forward(x.clone())
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            let folded = layer.folded();
            assert!(folded.norm.is_none());
            let after = folded.forward(x).into_data().try_to_vec::<f32>().unwrap();
            for (a, b) in before.iter().zip(&after) {
                assert!((a - b).abs() < 1e-4, "{a} vs {b}");
            }
        }
    }
}
