//! The cell pipeline: one decoded image in, everything the page shows out. The image is
//! cropped once; that crop feeds the attribute network and the segmenter (network, or the
//! classical labeller when there is no network), whose label map is tidied and measured.
//! The worker, `wbc analyse`, `wbc segment`, `wbc masks` and `wbc export-seg`'s scoring all
//! run cells through here, so a cell gives the same answer wherever it is analysed. Its policy
//! (input sizes, tidying, measurement thresholds) comes from the model cards.
//!
//! Reads are asynchronous because WebGPU in the browser allows nothing else; native callers
//! use [`block_on`].

use crate::attribute_net::{AttributeNet, AttributeNetConfig, HEAD_WIDTH};
use crate::card::ModelCard;
use crate::predict::{batch_tensor, load_attribute_net, load_seg_net, LoadError};
use crate::seg_net::{resize_logits, SegNet, SegNetConfig};
use burn::tensor::{Device, Tensor, TensorData};
use image::{imageops, GrayImage, RgbImage};
use std::future::Future;
use wbc_core::confidence::{Calibration, Familiarity};
use wbc_core::cross_check::{rules_from_card, Rule};
use wbc_core::front_end::{
    self, FrontEndSettings, Look, Placement, Restain, ScaleEstimate, ScaleSource,
};
use wbc_core::measured_type::{self, MeasuredTypeAnswer, MeasuredTypeCard};
use wbc_core::morphometry::{self, Morphometry};
use wbc_core::{preprocess, segmentation, CellPrediction, ATTRIBUTES, PBC_SIDE};

/// What draws the label map.
pub enum Segmenter {
    /// The segmentation network and its input side (it may differ from the attribute
    /// network's).
    Network { net: SegNet, size: usize },
    /// The classical stain-based labeller, with the reason the network is not used.
    Classical { reason: String },
}

impl Segmenter {
    /// Build the network from its card and burnpack bytes.
    pub fn network(
        card: &ModelCard<SegNetConfig>,
        weights: Vec<u8>,
        device: &Device,
    ) -> Result<Self, LoadError> {
        card.check_weights(&weights)?;
        Ok(Segmenter::Network {
            // Inference only: batch norms folded into the convolutions.
            net: load_seg_net(&card.config, weights, device)?.folded(),
            size: card.input_size,
        })
    }

    /// What the page says draws the overlay.
    pub fn describe(&self) -> String {
        match self {
            Segmenter::Network { .. } => "segmentation network".into(),
            Segmenter::Classical { reason } => format!(
                "classical stain-based labeller (the segmentation network is not in use: {reason})"
            ),
        }
    }

    /// The label map of a whole image at the image's own size: the segmenter sees the centre
    /// square (as in the page); outside it the map says "other".
    pub async fn label_image(
        &self,
        img: &RgbImage,
        device: &Device,
    ) -> Result<GrayImage, LoadError> {
        let square = preprocess::center_square(img);
        let side = square.width();
        let map = self.label_square(&square, None, side, device).await?;
        let (w, h) = img.dimensions();
        if (w, h) == (side, side) {
            return Ok(map);
        }
        let mut full = GrayImage::new(w, h);
        imageops::replace(
            &mut full,
            &map,
            ((w - side) / 2) as i64,
            ((h - side) / 2) as i64,
        );
        Ok(full)
    }

    /// The label map of a square crop at `side`×`side`. The network sees the crop at its own
    /// input size (`input` when the caller already has it); the labeller, tuned at PBC scale,
    /// works on a [`PBC_SIDE`] copy unless the crop is within 2% of it.
    pub async fn label_square(
        &self,
        square: &RgbImage,
        input: Option<&[f32]>,
        side: u32,
        device: &Device,
    ) -> Result<GrayImage, LoadError> {
        match self {
            Segmenter::Network { net, size } => {
                let input = match input {
                    Some(i) => i.to_vec(),
                    None => network_input(square, *size),
                };
                let images = batch_tensor(std::slice::from_ref(&input), *size, device);
                let labels = net.labels(images, side as usize);
                let data = labels.into_data_async().await.map_err(readback)?;
                let values: Vec<i64> = data.convert::<i64>().try_into_vec().map_err(readback)?;
                let mut map: Vec<u8> = values.iter().map(|&v| v as u8).collect();
                if let Some(p) = net.tidy() {
                    segmentation::tidy_cell_with(&mut map, side as usize, side as usize, p);
                }
                GrayImage::from_raw(side, side, map)
                    .ok_or_else(|| LoadError::Readback("label map of the wrong size".into()))
            }
            Segmenter::Classical { .. } => {
                let near_pbc = (square.width() as f32 / PBC_SIDE as f32 - 1.0).abs() < 0.02;
                let work = if near_pbc {
                    segmentation::segment(square)
                } else {
                    let small = imageops::resize(
                        square,
                        PBC_SIDE,
                        PBC_SIDE,
                        imageops::FilterType::Triangle,
                    );
                    segmentation::segment(&small)
                };
                Ok(if work.width() == side {
                    work
                } else {
                    imageops::resize(&work, side, side, imageops::FilterType::Nearest)
                })
            }
        }
    }

    /// The network input side, when a network draws the map.
    pub fn input_size(&self) -> Option<usize> {
        match self {
            Segmenter::Network { size, .. } => Some(*size),
            Segmenter::Classical { .. } => None,
        }
    }

    /// The card key under which this segmenter's measurement thresholds are stored.
    fn card_key(&self) -> &'static str {
        match self {
            Segmenter::Network { .. } => "network",
            Segmenter::Classical { .. } => "classical_labeller",
        }
    }
}

/// Normalised CHW input of a square crop at `size`.
pub fn network_input(square: &RgbImage, size: usize) -> Vec<f32> {
    preprocess::normalize(&preprocess::square_pixels(square, size), size)
}

fn readback(e: impl std::fmt::Debug) -> LoadError {
    LoadError::Readback(format!("{e:?}"))
}

/// Milliseconds spent in each stage of one cell.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StageTimes {
    /// Crop and resize for both networks.
    pub preprocess_ms: f64,
    /// Attribute network forward pass and readback.
    pub inference_ms: f64,
    /// Segmentation, tidying and morphometry.
    pub segmentation_ms: f64,
}

/// What the front end did to one image.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FrontEndReport {
    pub settings: FrontEndSettings,
    /// The image's own look before correction.
    pub look: Look,
    /// The colour correction applied (identity when colour correction is off).
    pub restain: Restain,
    /// The estimated magnification (factor 1, `Unchanged`, when scaling is off).
    pub scale: ScaleEstimate,
    /// Where the square (and so the label map) lies on the image.
    pub placement: Placement,
}

/// Everything the pipeline says about one cell.
pub struct CellAnalysis {
    /// The square both networks saw: cropped, and with the front end on, rescaled to PBC's
    /// scale and recoloured to PBC's look.
    pub square: RgbImage,
    /// The same square in the image's own colours (equal to `square` without colour
    /// correction): what the page shows unless the normalised image is asked for.
    pub shown: RgbImage,
    pub front_end: FrontEndReport,
    /// The familiarity check; `None` without a calibration card.
    pub familiarity: Option<Familiarity>,
    /// The attribute network's raw logits (before temperature scaling).
    pub logits: Vec<f32>,
    pub prediction: CellPrediction,
    /// Pooled encoder features, L2-normalised (the counterfactual tie-breaker).
    pub features: Vec<f32>,
    /// The label map, [`PBC_SIDE`]² (one label id per pixel).
    pub labels: GrayImage,
    pub morphometry: Morphometry,
    /// The measurements the measured type reads (`None` when the map holds no cell).
    pub measured_features: Option<[f32; measured_type::NUM_FEATURES]>,
    /// The network's and the measured type's opinions, when the measured-type card is
    /// loaded; `prediction.cell_type` is then their joining.
    pub measured_type: Option<MeasuredTypeAnswer>,
    /// The attribute network's input, kept for explanations on demand.
    pub attribute_input: Vec<f32>,
    pub times: StageTimes,
}

/// One layer's time in [`Analyzer::profile_layers`].
#[derive(Clone, Debug, serde::Serialize)]
pub struct LayerTime {
    pub network: &'static str,
    /// Kind and 1-based index, e.g. "conv 3" or "decoder conv 2".
    pub layer: String,
    /// The layer's output shape.
    pub output: Vec<usize>,
    pub ms: f64,
}

/// The laps of a per-layer profile.
struct LayerClock<'a, F: Fn() -> f64> {
    now: &'a F,
    last: f64,
    times: Vec<LayerTime>,
}

impl<F: Fn() -> f64> LayerClock<'_, F> {
    fn lap(&mut self, network: &'static str, layer: String, output: &[usize]) {
        let t = (self.now)();
        self.times.push(LayerTime {
            network,
            layer,
            output: output.to_vec(),
            ms: t - self.last,
        });
        self.last = t;
    }
}

/// The loaded networks on their device, and the policy read from their cards.
pub struct Analyzer {
    device: Device,
    attribute_net: AttributeNet,
    attribute_size: usize,
    segmenter: Segmenter,
    rules: Vec<Rule>,
    calibration: Option<Calibration>,
    settings: FrontEndSettings,
    measured_type: Option<MeasuredTypeCard>,
}

impl Analyzer {
    /// Build the pipeline from the attribute network's card and weights and a segmenter.
    /// `seg_metrics` is the segmentation card's `metrics` (where its measurement thresholds
    /// live); without it no measurement is checked against the attributes.
    pub fn new(
        attribute_card: &ModelCard<AttributeNetConfig>,
        attribute_weights: Vec<u8>,
        segmenter: Segmenter,
        seg_metrics: Option<&serde_json::Value>,
        device: &Device,
    ) -> Result<Self, LoadError> {
        attribute_card.check_weights(&attribute_weights)?;
        // Inference only: batch norms folded into the convolutions.
        let attribute_net =
            load_attribute_net(&attribute_card.config, attribute_weights, device)?.folded();
        let rules = seg_metrics
            .map(|m| rules_from_card(m, segmenter.card_key()))
            .unwrap_or_default();
        Ok(Self {
            device: device.clone(),
            attribute_net,
            attribute_size: attribute_card.input_size,
            segmenter,
            rules,
            calibration: None,
            settings: FrontEndSettings::OFF,
            measured_type: None,
        })
    }

    /// Add the front end's reference and the confidence calibration (`wbc calibrate`). The
    /// front end then runs with the card's default settings.
    pub fn with_calibration(mut self, calibration: Calibration) -> Self {
        self.settings = calibration.card.default_settings;
        self.calibration = Some(calibration);
        self
    }

    /// Add the measured type (`wbc measured-type`): the cell's type is then the network's
    /// answer joined with it as the card says.
    pub fn with_measured_type(mut self, card: MeasuredTypeCard) -> Self {
        self.measured_type = Some(card);
        self
    }

    pub fn measured_type(&self) -> Option<&MeasuredTypeCard> {
        self.measured_type.as_ref()
    }

    pub fn calibration(&self) -> Option<&Calibration> {
        self.calibration.as_ref()
    }

    /// The front-end settings [`Analyzer::analyse`] uses.
    pub fn settings(&self) -> FrontEndSettings {
        self.settings
    }

    /// Change the default front-end settings (without a calibration card there is no
    /// reference to correct towards, and the front end stays off).
    pub fn set_settings(&mut self, settings: FrontEndSettings) {
        if self.calibration.is_some() {
            self.settings = settings;
        }
    }

    pub fn segmenter(&self) -> &Segmenter {
        &self.segmenter
    }

    /// The measurement-vs-attribute rules from the segmentation card.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// One forward pass of each network alone on a fixed input of `batch` cells, output read
    /// back: (attribute network ms, segmentation network ms, logits only: no resizing,
    /// tidying or measuring). The peer benchmark times onnxruntime-web against this.
    pub async fn time_networks(
        &self,
        batch: usize,
        now: impl Fn() -> f64,
    ) -> Result<(f64, f64), LoadError> {
        let input = |size: usize| self.blank_batch(batch, size);
        let attribute_input = input(self.attribute_size);
        let t0 = now();
        let logits = self.attribute_net.forward(attribute_input);
        read_f32(logits.into_data_async().await.map_err(readback)?)?;
        let attribute_ms = now() - t0;
        let segmentation_ms = match &self.segmenter {
            Segmenter::Network { net, size } => {
                let seg_input = input(*size);
                let t1 = now();
                let logits = net.forward(seg_input);
                read_f32(logits.into_data_async().await.map_err(readback)?)?;
                now() - t1
            }
            Segmenter::Classical { .. } => f64::NAN,
        };
        Ok((attribute_ms, segmentation_ms))
    }

    /// `batch` blank (mid-grey) images of `size`², the fixed input the timings run on.
    fn blank_batch(&self, batch: usize, size: usize) -> Tensor<4> {
        batch_tensor(
            &vec![vec![0.5f32; 3 * size * size]; batch],
            size,
            &self.device,
        )
    }

    /// Each layer's share of one forward pass of each network on the same fixed input as
    /// [`Analyzer::time_networks`]: the device is synchronised after every layer and the
    /// clock read (flex runs each operation as it is called, so that is the layer's own
    /// time). The attribute network's pooling and head come last, as "pool+head". A native,
    /// blocking profile, set beside onnxruntime's per-node profile of the same graphs.
    pub fn profile_layers(&self, batch: usize, now: impl Fn() -> f64) -> Vec<LayerTime> {
        let input = |size: usize| self.blank_batch(batch, size);
        let mut clock = LayerClock {
            now: &now,
            last: 0.0,
            times: Vec::new(),
        };
        let images = input(self.attribute_size);
        let _ = self.device.sync();
        clock.last = now();
        let map = self
            .attribute_net
            .feature_map_probed(images, &mut |kind, index, x| {
                let _ = self.device.sync();
                clock.lap("attribute_net", format!("{kind} {index}"), &x.dims());
            });
        let logits = self
            .attribute_net
            .head_forward(self.attribute_net.pool(map));
        let dims = logits.dims();
        let _ = logits.into_data();
        clock.lap("attribute_net", "pool+head".into(), &dims);
        if let Segmenter::Network { net, size } = &self.segmenter {
            let images = input(*size);
            let _ = self.device.sync();
            clock.last = now();
            let _ = net
                .forward_probed(images, &mut |kind, index, x| {
                    let _ = self.device.sync();
                    clock.lap("seg_net", format!("{kind} {index}"), &x.dims());
                })
                .into_data();
        }
        clock.times
    }

    /// One inference on blank inputs: the first run compiles the GPU shaders.
    pub async fn warm_up(&self) -> Result<(), LoadError> {
        let blank = RgbImage::from_pixel(PBC_SIDE, PBC_SIDE, image::Rgb([255, 255, 255]));
        self.analyse(&blank, || 0.0).await.map(|_| ())
    }

    /// Analyse one decoded image with the default front-end settings. `now` is a
    /// millisecond clock for the stage times.
    pub async fn analyse(
        &self,
        image: &RgbImage,
        now: impl Fn() -> f64,
    ) -> Result<CellAnalysis, LoadError> {
        self.analyse_with(image, self.settings, now).await
    }

    /// The attribute network's input for an image, as [`Analyzer::analyse_with`] makes it
    /// (front end, then resize), without running the networks: what an explanation needs
    /// when the input was not kept.
    pub async fn attribute_input(
        &self,
        image: &RgbImage,
        settings: FrontEndSettings,
    ) -> Result<Vec<f32>, LoadError> {
        let (square, _, _) = self.front_end(image, settings).await?;
        Ok(network_input(&square, self.attribute_size))
    }

    /// Analyse one decoded image with these front-end settings (ignored without a
    /// calibration card).
    pub async fn analyse_with(
        &self,
        image: &RgbImage,
        settings: FrontEndSettings,
        now: impl Fn() -> f64,
    ) -> Result<CellAnalysis, LoadError> {
        let t0 = now();
        let (square, shown, mut front_end) = self.front_end(image, settings).await?;
        let attribute_input = network_input(&square, self.attribute_size);
        // Both networks usually share an input size: then one resized crop feeds both.
        let own_seg_input = match self.segmenter.input_size() {
            Some(size) if size != self.attribute_size => Some(network_input(&square, size)),
            _ => None,
        };
        let seg_input = match self.segmenter.input_size() {
            Some(_) => Some(own_seg_input.as_deref().unwrap_or(&attribute_input)),
            None => None,
        };
        let t1 = now();
        let (features, logits) = self.attribute_net.forward_with_features(batch_tensor(
            std::slice::from_ref(&attribute_input),
            self.attribute_size,
            &self.device,
        ));
        let logits: Vec<f32> = read_f32(logits.into_data_async().await.map_err(readback)?)?;
        let features: Vec<f32> = read_f32(features.into_data_async().await.map_err(readback)?)?;
        if logits.len() != HEAD_WIDTH {
            return Err(LoadError::Readback(
                "the attribute network returned nothing".into(),
            ));
        }
        let features = wbc_core::counterfactual::normalised(&features);
        let mut prediction = match &self.calibration {
            Some(c) => CellPrediction::from_logits_tempered(&logits, &c.card.temperatures),
            None => CellPrediction::from_logits(&logits),
        };
        let t2 = now();
        let labels = self
            .segmenter
            .label_square(&square, seg_input, PBC_SIDE, &self.device)
            .await?;
        let morphometry = morphometry::measure(&labels);
        // Without resampling the networks saw the plain crop, so its label map measures the
        // scale (no second segmentation pass).
        let settings = front_end.settings;
        if let (Some(c), false) = (
            &self.calibration,
            settings.scale || settings == FrontEndSettings::OFF,
        ) {
            front_end.scale = front_end::estimate_scale(
                &labels,
                &morphometry,
                square.width(),
                &c.card.reference.scale,
            );
        }
        let mut familiarity = self.calibration.as_ref().map(|c| {
            Familiarity::judge(
                &c.card,
                c.features.distance(&features),
                front_end.restain.strength(),
                front_end.scale.factor,
                &prediction.cell_type,
            )
        });
        let measured_features = measured_type::features(&square, &labels, &morphometry);
        let unfamiliar = familiarity.as_ref().is_some_and(|f| f.is_unfamiliar());
        let measured_type = self.measured_type.as_ref().and_then(|card| {
            let (answer, joined) = card.answer(
                &prediction.cell_type,
                measured_features.as_ref(),
                unfamiliar,
            )?;
            prediction.cell_type = joined;
            // Joined first, warned after: a warning for differing opinions does not change
            // which answer the joining gives.
            if card.warns(&answer) {
                if let Some(f) = familiarity.as_mut() {
                    f.add_opinions_differ();
                }
            }
            Some(answer)
        });
        let t3 = now();
        Ok(CellAnalysis {
            square,
            shown,
            front_end,
            familiarity,
            logits,
            prediction,
            features,
            labels,
            morphometry,
            measured_features,
            measured_type,
            attribute_input,
            times: StageTimes {
                preprocess_ms: t1 - t0,
                inference_ms: t2 - t1,
                segmentation_ms: t3 - t2,
            },
        })
    }

    /// The front end: the square the networks see, the same square in the image's own
    /// colours, and what was done. Without a calibration card (no reference) or with every
    /// step off, this is the plain centre crop.
    async fn front_end(
        &self,
        image: &RgbImage,
        settings: FrontEndSettings,
    ) -> Result<(RgbImage, RgbImage, FrontEndReport), LoadError> {
        let look = front_end::measure_look(image);
        let mut report = FrontEndReport {
            settings: FrontEndSettings::OFF,
            look,
            restain: Restain::IDENTITY,
            // Measured below when scaling, else on the main label map (see `analyse_with`).
            scale: ScaleEstimate {
                factor: 1.0,
                source: ScaleSource::Unchanged,
            },
            placement: Placement::centre_square(image.width(), image.height(), PBC_SIDE),
        };
        let reference = match &self.calibration {
            Some(c) if settings != FrontEndSettings::OFF => &c.card.reference,
            _ => {
                let square = preprocess::center_square(image);
                return Ok((square.clone(), square, report));
            }
        };
        report.settings = settings;
        let coloured = if settings.recolours() {
            report.restain = Restain::between(&look, &reference.look, settings.stain);
            report.restain.apply(image, &look)
        } else {
            image.clone()
        };
        let square = if settings.scale {
            // A first look at the crop as it is finds the red cells (or the white cell) to
            // measure; the networks then see the image at PBC's scale.
            let provisional = preprocess::center_square(&coloured);
            let labels = self
                .segmenter
                .label_square(&provisional, None, PBC_SIDE, &self.device)
                .await?;
            let measured = morphometry::measure(&labels);
            report.scale = front_end::estimate_scale(
                &labels,
                &measured,
                provisional.width(),
                &reference.scale,
            );
            let fill = front_end::background_pixel(if settings.recolours() {
                &reference.look
            } else {
                &look
            });
            let (square, placement) =
                front_end::resample(&coloured, report.scale.factor, PBC_SIDE, fill);
            report.placement = placement;
            square
        } else {
            preprocess::center_square(&coloured)
        };
        // The same square in the image's own colours, for the page.
        let shown = match (settings.recolours(), settings.scale) {
            (false, _) => square.clone(),
            (true, false) => preprocess::center_square(image),
            (true, true) => {
                let fill = front_end::background_pixel(&look);
                front_end::resample(image, report.scale.factor, PBC_SIDE, fill).0
            }
        };
        Ok((square, shown, report))
    }

    /// A class-activation map for `value` of `attribute` on a cell's attribute input: evidence
    /// for this value against the attribute's other values (its logit minus their mean), as
    /// `side`² bytes scaled to the strongest evidence (0 = none, 255 = the strongest).
    pub async fn explain(
        &self,
        attribute_input: &[f32],
        attribute: usize,
        value: usize,
        side: u32,
    ) -> Result<Vec<u8>, String> {
        let a = ATTRIBUTES.get(attribute).ok_or("no such attribute")?;
        if value >= a.values.len() {
            return Err("no such value".into());
        }
        let offset = wbc_core::schema::attribute_offset(attribute);
        let n = a.values.len() as f32;
        let mut direction = vec![0.0f32; HEAD_WIDTH];
        for v in 0..a.values.len() {
            direction[offset + v] = if v == value { 1.0 - 1.0 / n } else { -1.0 / n };
        }
        let cam = self.attribute_net.class_activation(
            batch_tensor(
                &[attribute_input.to_vec()],
                self.attribute_size,
                &self.device,
            ),
            &direction,
        );
        let cam = resize_logits(cam.unsqueeze_dim(1), side as usize);
        let values = read_f32(cam.into_data_async().await.map_err(|e| format!("{e:?}"))?)
            .map_err(|e| e.to_string())?;
        let max = values.iter().copied().fold(0.0f32, f32::max);
        Ok(values
            .iter()
            .map(|&v| {
                if max > 0.0 {
                    (v.max(0.0) / max * 255.0).round() as u8
                } else {
                    0
                }
            })
            .collect())
    }
}

fn read_f32(data: TensorData) -> Result<Vec<f32>, LoadError> {
    data.convert::<f32>().try_into_vec().map_err(readback)
}

/// Run a future to completion on this thread. Native backends (flex) answer reads at once,
/// so this only polls; it exists so the CLI can share the browser's asynchronous pipeline.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut context) {
            return out;
        }
        std::thread::yield_now();
    }
}
