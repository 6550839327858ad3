//! The shipped model files: `models/<name>.bpk` (burnpack, f16 weights) and
//! `models/<name>.json` (the model card, which also carries the architecture).

use anyhow::{Context, Result};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use wbc_core::cbm::Cbm;
use wbc_nets::predict::load_attribute_net;
use wbc_nets::predict::load_seg_net;
use wbc_nets::{AttributeNet, AttributeNetConfig};
use wbc_nets::{SegNet, SegNetConfig};

/// The attribute network's model card (one card type for every network: wbc-nets'
/// [`wbc_nets::ModelCard`]).
pub type ModelCard = wbc_nets::ModelCard<AttributeNetConfig>;

/// Read a card of any network from `<stem>.json`.
pub fn read_any_card<C: serde::de::DeserializeOwned>(
    stem: &Path,
) -> Result<wbc_nets::ModelCard<C>> {
    let (_, card) = paths(stem);
    let bytes = std::fs::read(&card).with_context(|| format!("reading {}", card.display()))?;
    wbc_nets::ModelCard::from_slice(&bytes).with_context(|| format!("parsing {}", card.display()))
}

/// `models/attribute_net` → (`.bpk`, `.json`).
pub fn paths(stem: &Path) -> (PathBuf, PathBuf) {
    (stem.with_extension("bpk"), stem.with_extension("json"))
}

pub fn read_card(stem: &Path) -> Result<ModelCard> {
    read_any_card(stem)
}

/// Load a shipped model (card + f16 weights).
pub fn attribute_net(stem: &Path, device: &Device) -> Result<(AttributeNet, ModelCard)> {
    let card = read_card(stem)?;
    let (bpk, _) = paths(stem);
    let bytes = std::fs::read(&bpk).with_context(|| format!("reading {}", bpk.display()))?;
    card.check_weights(&bytes)
        .with_context(|| bpk.display().to_string())?;
    let net = load_attribute_net(&card.config, bytes, device)?;
    Ok((net, card))
}

/// The current commit, for the card, with `-dirty` when tracked files have uncommitted
/// changes (then the commit alone did not produce the card, and the card says so).
pub fn git_commit() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let Some(commit) = git(&["rev-parse", "--short", "HEAD"]) else {
        return "unknown".into();
    };
    // Model files are what an export writes: their changes do not make the tree dirty.
    let dirty = git(&[
        "status",
        "--porcelain",
        "--untracked-files=no",
        "--",
        ".",
        ":!models",
    ])
    .is_some_and(|s| !s.is_empty());
    if dirty {
        format!("{commit}-dirty")
    } else {
        commit
    }
}

/// Today's date (UTC), for the card: from the system clock, with no outside program (`date
/// -u` is missing on some systems, and the card's date was then empty).
pub fn today() -> String {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    civil_date(seconds / 86_400)
}

/// The proleptic Gregorian date `days` after 1970-01-01, as YYYY-MM-DD (Howard Hinnant's
/// days-to-civil algorithm).
pub fn civil_date(days: u64) -> String {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod date_tests {
    use super::*;

    #[test]
    fn dates_come_from_the_clock_not_a_program() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(59), "1970-03-01");
        assert_eq!(civil_date(11_016), "2000-02-29");
        assert_eq!(civil_date(20_790), "2026-12-03");
        assert_eq!(civil_date(2_932_896), "9999-12-31");
        let today = today();
        assert_eq!(today.len(), 10, "{today}");
        assert!(today.as_str() >= "2026-01-01", "{today}");
    }
}

/// The model files the cell pipeline runs, as the page loads them (the options of `wbc
/// analyse`, `wbc external` and `wbc calibrate`).
#[derive(clap::Args, Debug, Clone)]
pub struct PipelineArgs {
    /// Attribute network stem (reads <stem>.bpk and <stem>.json).
    #[arg(long, default_value = "models/attribute_net")]
    pub model: PathBuf,
    /// Segmentation network stem; when its files are missing the classical labeller draws
    /// the map, as in the page.
    #[arg(long, default_value = "models/seg_net")]
    pub seg: PathBuf,
    /// Calibration stem (<stem>.json card, <stem>.bin feature distribution: the front end,
    /// temperatures and familiarity check); when missing, cells go in as plain crops.
    /// `wbc calibrate` writes it.
    #[arg(long, default_value = "models/calibration")]
    pub calibration: PathBuf,
    /// The measured-type card (`wbc measured-type`); when missing, the cell type is the
    /// attribute network's alone.
    #[arg(long, default_value = "models/measured_type.json")]
    pub measured_type: PathBuf,
}

impl PipelineArgs {
    fn seg(&self) -> Option<&Path> {
        self.seg
            .with_extension("bpk")
            .exists()
            .then_some(self.seg.as_path())
    }

    /// The pipeline with the calibration when its card exists.
    pub fn load(&self, device: &Device) -> Result<wbc_nets::Analyzer> {
        let calibration = self
            .calibration
            .with_extension("json")
            .exists()
            .then_some(self.calibration.as_path());
        let analyzer = load_analyzer_calibrated(&self.model, self.seg(), calibration, device)?;
        Ok(match self.measured_type.exists() {
            true => analyzer.with_measured_type(read_measured_type(&self.measured_type)?),
            false => analyzer,
        })
    }

    /// Which networks these are (their weights' SHA-256, from the cards): what a profile
    /// fitted on their outputs is tied to.
    pub fn networks(&self) -> Result<wbc_core::adapt::Networks> {
        let sha = |stem: &Path| -> Result<String> {
            let card: wbc_nets::ModelCard<serde_json::Value> = read_any_card(stem)?;
            Ok(card.weights_sha256.unwrap_or_default())
        };
        Ok(wbc_core::adapt::Networks {
            attribute_net: sha(&self.model)?,
            seg_net: match self.seg() {
                Some(stem) => sha(stem)?,
                None => "the classical labeller".into(),
            },
        })
    }

    /// The pipeline without any calibration (what `wbc calibrate` starts from).
    pub fn load_uncalibrated(&self, device: &Device) -> Result<wbc_nets::Analyzer> {
        load_analyzer(&self.model, self.seg(), device)
    }
}

/// The measured-type card.
pub fn read_measured_type(path: &Path) -> Result<wbc_core::measured_type::MeasuredTypeCard> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&text)
        .with_context(|| format!("{} is not a measured-type card", path.display()))
}

/// The calibration (`<stem>.json` card + `<stem>.bin` feature distribution).
pub fn load_calibration(stem: &Path) -> Result<wbc_core::confidence::Calibration> {
    let card = stem.with_extension("json");
    let bin = stem.with_extension("bin");
    let card = std::fs::read(&card).with_context(|| format!("reading {}", card.display()))?;
    let bin = std::fs::read(&bin).with_context(|| format!("reading {}", bin.display()))?;
    wbc_core::confidence::Calibration::from_bytes(&card, &bin).map_err(anyhow::Error::msg)
}

/// The cell pipeline as the page runs it: [`load_analyzer`] plus the calibration when
/// `calibration` is given (front end, temperatures, familiarity check).
pub fn load_analyzer_calibrated(
    attribute: &Path,
    seg: Option<&Path>,
    calibration: Option<&Path>,
    device: &Device,
) -> Result<wbc_nets::Analyzer> {
    let analyzer = load_analyzer(attribute, seg, device)?;
    Ok(match calibration {
        Some(stem) => analyzer.with_calibration(load_calibration(stem)?),
        None => analyzer,
    })
}

/// The cell pipeline from shipped models: the attribute network and, when `seg` is given and
/// loads, the segmentation network (otherwise the classical labeller, as in the page).
pub fn load_analyzer(
    attribute: &Path,
    seg: Option<&Path>,
    device: &Device,
) -> Result<wbc_nets::Analyzer> {
    let card = read_card(attribute)?;
    let (bpk, _) = paths(attribute);
    let weights = std::fs::read(&bpk).with_context(|| format!("reading {}", bpk.display()))?;
    let (segmenter, seg_metrics) = match seg {
        Some(stem) => {
            let seg_card: wbc_nets::ModelCard<wbc_nets::SegNetConfig> = read_any_card(stem)?;
            let (bpk, _) = paths(stem);
            let bytes =
                std::fs::read(&bpk).with_context(|| format!("reading {}", bpk.display()))?;
            let segmenter = wbc_nets::Segmenter::network(&seg_card, bytes, device)?;
            (segmenter, Some(seg_card.metrics))
        }
        None => (
            wbc_nets::Segmenter::Classical {
                reason: "no segmentation network was given".into(),
            },
            None,
        ),
    };
    Ok(wbc_nets::Analyzer::new(
        &card,
        weights,
        segmenter,
        seg_metrics.as_ref(),
        device,
    )?)
}

/// The segmentation model card.
pub type SegCard = wbc_nets::ModelCard<SegNetConfig>;

/// Load a shipped segmentation network (`<stem>.json` card + `<stem>.bpk` f16 weights).
pub fn seg_net(stem: &Path, device: &Device) -> Result<(SegNet, SegCard)> {
    let card: SegCard = read_any_card(stem)?;
    let bytes = std::fs::read(stem.with_extension("bpk"))
        .with_context(|| format!("reading {}.bpk", stem.display()))?;
    card.check_weights(&bytes)
        .with_context(|| format!("{}.bpk", stem.display()))?;
    Ok((load_seg_net(&card.config, bytes, device)?, card))
}

/// `models/cbm.json`: the model plus how it was chosen and how it scores.
#[derive(Debug, Serialize, Deserialize)]
pub struct CbmFile {
    #[serde(flatten)]
    pub cbm: Cbm,
    #[serde(default)]
    pub metrics: serde_json::Value,
    #[serde(default)]
    pub commands: serde_json::Value,
}

/// Load `models/cbm.json`.
pub fn cbm(path: &Path) -> Result<Cbm> {
    let file: CbmFile = serde_json::from_slice(
        &std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
    )?;
    Ok(file.cbm)
}

/// The CBM when its file exists (commands that can do without it).
pub fn cbm_if_present(path: &Path) -> Result<Option<Cbm>> {
    path.exists().then(|| cbm(path)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What an explanation rebuilds from the file (`Analyzer::attribute_input`, used by the
    /// page's worker when it did not analyse the cell) is the input the analysis used.
    #[test]
    fn attribute_input_is_the_analysis_input() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let models = root.join("models");
        let device = Device::flex();
        let analyzer = load_analyzer_calibrated(
            &models.join("attribute_net"),
            Some(&models.join("seg_net")),
            Some(&models.join("calibration")),
            &device,
        )
        .unwrap();
        let bytes = std::fs::read(root.join("public/samples/BA_158647.jpg")).unwrap();
        let image = wbc_core::preprocess::decode(&bytes).unwrap();
        for stain in [true, false] {
            let settings = wbc_core::front_end::FrontEndSettings {
                stain,
                ..analyzer.settings()
            };
            let analysed =
                wbc_nets::block_on(analyzer.analyse_with(&image, settings, || 0.0)).unwrap();
            let rebuilt = wbc_nets::block_on(analyzer.attribute_input(&image, settings)).unwrap();
            assert_eq!(rebuilt, analysed.attribute_input, "stain {stain}");
        }
    }
}
