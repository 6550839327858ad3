//! The training pipeline end to end on a small subset with the tiny network, in seconds:
//! train (and resume), export, evaluate, predict. The real training never runs in CI.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The shared data folder. These tests measure real cells: without the data they fail, loudly,
/// rather than pass having checked nothing.
fn data() -> PathBuf {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    assert!(
        data.join("pbc/PBC_dataset_normal_DIB").is_dir() && data.join("wbcatt").is_dir(),
        "{} must hold pbc/PBC_dataset_normal_DIB and wbcatt (the PBC images and WBCAtt labels)",
        data.display()
    );
    data
}

fn wbc(args: &[&str], dir: &Path) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_wbc"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run wbc");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The first file of a folder, by name.
fn first_file(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .min()
        .unwrap()
}

/// A command line's words (test paths hold no spaces).
fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// Run `wbc` with `args` in `dir`; it must succeed. Returns its stdout and stderr.
fn wbc_ok(args: &[&str], dir: &Path) -> (String, String) {
    let (ok, out, err) = wbc(args, dir);
    assert!(ok, "wbc {}: {err}", args.join(" "));
    (out, err)
}

#[test]
fn train_resume_export_evaluate_predict_on_a_subset() {
    let data = data();
    assert!(data.join("wbcatt").exists(), "../shared/data is needed");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pipeline");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let d = data.display().to_string();
    let common = ["--data", d.as_str(), "--cache", "cache", "--limit", "96"];

    // One epoch, then resume to two: the run folder remembers where it stopped.
    let mut train = vec![
        "train", "--tiny", "32", "--batch", "32", "--out", "run", "--epochs", "1",
    ];
    train.extend(common);
    let (ok, _, err) = wbc(&train, &dir);
    assert!(ok, "{err}");
    train[8] = "2";
    let (ok, _, err) = wbc(&train, &dir);
    assert!(ok, "{err}");
    assert!(err.contains("resuming after epoch 1"), "{err}");
    let state: Value =
        serde_json::from_slice(&std::fs::read(dir.join("run/state.json")).unwrap()).unwrap();
    assert_eq!(state["history"].as_array().unwrap().len(), 2);

    let mut export = vec!["export", "--run", "run", "--out", "models/tiny"];
    export.extend(common);
    let (ok, out, err) = wbc(&export, &dir);
    assert!(ok, "{err}");
    assert!(out.contains("MEAN over 11 attributes"), "{out}");
    let card: Value =
        serde_json::from_slice(&std::fs::read(dir.join("models/tiny.json")).unwrap()).unwrap();
    assert_eq!(card["input_size"], 32);
    assert!(card["bytes"].as_u64().unwrap() > 1000);
    let f1 = card["metrics"]["test"]["scores"]["mean_attribute_macro_f1"]
        .as_f64()
        .unwrap();
    assert!((0.0..=100.0).contains(&f1));

    // Stage 2: the same weights fine-tuned at a larger input, exported with a logit
    // adjustment; the card tells both stages.
    let mut stage2 = vec![
        "train",
        "--tiny",
        "48",
        "--init",
        "run/best.bpk",
        "--batch",
        "32",
        "--out",
        "run2",
        "--epochs",
        "1",
    ];
    stage2.extend(common);
    let (ok, _, err) = wbc(&stage2, &dir);
    assert!(ok, "{err}");
    assert!(err.contains("starting from run/best.bpk"), "{err}");
    let mut export2 = vec![
        "export",
        "--run",
        "run2",
        "--out",
        "models/tiny2",
        "--logit-adjustment",
    ];
    export2.extend(common);
    let (ok, _, err) = wbc(&export2, &dir);
    assert!(ok, "{err}");
    let card2: Value =
        serde_json::from_slice(&std::fs::read(dir.join("models/tiny2.json")).unwrap()).unwrap();
    assert_eq!(card2["input_size"], 48);
    assert_eq!(card2["training"]["first_stage"]["input_size"], 32);
    assert!(card2["commands"]["train"]
        .as_str()
        .unwrap()
        .contains("--init run/best.bpk"));
    let tau = card2["metrics"]["logit_adjustment"]["tau"]
        .as_object()
        .unwrap();
    assert_eq!(tau.len(), 11);

    let mut evaluate = vec!["evaluate", "--model", "models/tiny", "--split", "val"];
    evaluate.extend(["--data", d.as_str(), "--cache", "cache", "--limit", "96"]);
    let (ok, out, err) = wbc(&evaluate, &dir);
    assert!(ok, "{err}");
    assert!(out.contains("cell type: accuracy"), "{out}");

    // predict: a real cell, a folder, and a file that is not an image.
    std::fs::write(dir.join("notes.jpg"), b"not an image").unwrap();
    let cell = data.join("pbc/PBC_dataset_normal_DIB/basophil");
    let first = first_file(&cell);
    let (out, _) = wbc_ok(
        &words(&format!(
            "predict --model models/tiny {} notes.jpg",
            first.display()
        )),
        &dir,
    );
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    let label = lines[0]["cell_type"]["label"].as_str().unwrap();
    assert!([
        "Basophil",
        "Eosinophil",
        "Lymphocyte",
        "Monocyte",
        "Neutrophil"
    ]
    .contains(&label));
    let size = &lines[0]["attributes"]["cell_size"];
    let p_big = size["probabilities"]["big"].as_f64().unwrap();
    let p_small = size["probabilities"]["small"].as_f64().unwrap();
    assert!((p_big + p_small - 1.0).abs() < 1e-4);
    assert!(["big", "small"].contains(&size["value"].as_str().unwrap()));
    assert_eq!(lines[0]["attributes"].as_object().unwrap().len(), 11);
    assert!(lines[1]["error"]
        .as_str()
        .unwrap()
        .contains("not a readable image"));
}

/// The shipped models through the whole cell pipeline (`wbc analyse`, what the page runs) on
/// the first PBC test cell of each type: each must get its own type, a label map with a
/// nucleus inside a cell, and the segmentation network (not the fallback labeller).
#[test]
fn shipped_models_name_known_cells() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let test = std::fs::read_to_string(data().join("wbcatt/pbc_attr_v1_test.csv"))
        .expect("the WBCAtt test split");
    let mut header = test.lines().next().unwrap().split(',');
    let path_col = header.position(|c| c == "path").expect("a path column");
    let mut cells = Vec::new();
    for class in [
        "basophil",
        "eosinophil",
        "lymphocyte",
        "monocyte",
        "neutrophil",
    ] {
        let path = test
            .lines()
            .skip(1)
            .map(|l| l.split(',').nth(path_col).unwrap().to_string())
            .find(|p| p.contains(&format!("/{class}/")))
            .expect("a test cell of each type");
        cells.push((class, data().join("pbc").join(path)));
    }
    let mut args = vec!["analyse".to_string()];
    args.extend(cells.iter().map(|(_, p)| p.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, out, err) = wbc(&args, &root);
    assert!(ok, "{err}");
    assert!(
        err.contains("segmentation by the segmentation network"),
        "{err}"
    );
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), cells.len(), "{out}");
    for ((class, _), v) in cells.iter().zip(&lines) {
        let label = v["cell_type"]["label"].as_str().unwrap_or_default();
        assert_eq!(label.to_lowercase(), *class, "{v}");
        let m = &v["morphometry"];
        assert!(m["nucleus_area"].as_u64().unwrap() > 1000, "{v}");
        assert!(m["nc_ratio"].as_f64().unwrap() < 1.0, "{v}");
        assert!(v["timings_ms"]["total"].as_f64().unwrap() > 0.0, "{v}");
    }
}

/// Segmentation, structure-aware attributes and counterfactuals on a subset: bootstrap
/// masks, a tiny segmenter trained and exported with its card, a tiny one-pass model and the
/// ablation, then an index, a counterfactual query and the boundary report.
#[test]
fn masks_segmenter_structure_and_counterfactuals_on_a_subset() {
    let data = data();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pipeline-seg");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let d = data.display().to_string();
    let common = ["--data", d.as_str(), "--cache", "cache", "--limit", "32"];
    let with = |line: &'static str| {
        let mut v: Vec<&str> = line.split_whitespace().collect();
        v.extend(common);
        v
    };

    let (out, _) = wbc_ok(
        &words(&format!("masks --out masks --data {d} --limit 32")),
        &dir,
    );
    assert!(out.contains("96 label maps"), "{out}");

    wbc_ok(
        &with("train-seg --tiny 32 --epochs 1 --stain-jitter --out segrun --masks masks"),
        &dir,
    );
    wbc_ok(
        &with("export-seg --run segrun --out models/seg --masks masks"),
        &dir,
    );
    let card: Value =
        serde_json::from_slice(&std::fs::read(dir.join("models/seg.json")).unwrap()).unwrap();
    // The card's training command reproduces the run, augmentation switch included.
    let train = card["commands"]["train"].as_str().unwrap();
    assert!(train.contains("--stain-jitter --out segrun"), "{train}");
    assert_eq!(card["training"]["args"]["stain_jitter"], true);
    // Tidying is chosen on val by the sweep, and the card's config carries the choice;
    // `tidy-sweep` reruns it on the exported network and writes the same record.
    let sweep = &card["metrics"]["tidy_sweep_on_val"];
    assert_eq!(sweep["lobe_reach"].as_array().unwrap().len(), 6, "{sweep}");
    assert_eq!(sweep["waist_gain"].as_array().unwrap().len(), 7, "{sweep}");
    assert_eq!(card["config"]["tidy_cell"], sweep["chosen"].is_object());
    wbc_ok(&with("tidy-sweep --model models/seg --masks masks"), &dir);
    let swept: Value =
        serde_json::from_slice(&std::fs::read(dir.join("models/seg.json")).unwrap()).unwrap();
    let again = &swept["metrics"]["tidy_sweep_on_val"];
    assert_eq!(again["untidied"], sweep["untidied"]);
    assert_eq!(swept["config"]["tidy"], card["config"]["tidy"]);
    let miou = card["metrics"]["test_vs_bootstrap_labels_at_input_size"]["miou"]
        .as_f64()
        .unwrap();
    assert!((0.0..=100.0).contains(&miou));
    let labeller = &card["metrics"]["cellavision100"]["classical_labeller"];
    assert_eq!(labeller["images"], 100);
    assert!(
        labeller["nucleus_iou"].as_f64().unwrap() > 50.0,
        "{labeller}"
    );
    // A one-epoch tiny network may find no nucleus at all (no AUC then); the labeller's maps
    // always give one.
    let morph = &card["metrics"]["morphometry_vs_wbcatt"];
    assert!(
        morph["classical_labeller"]["nc_area_ratio_vs_nuclear_cytoplasmic_ratio_high"]["test_auc"]
            .is_number(),
        "{morph}"
    );
    assert_eq!(
        morph["network"]["nc_area_ratio_vs_nuclear_cytoplasmic_ratio_high"]["test_cells"],
        32
    );

    wbc_ok(&with("train-structure --tiny 32 --aggregation attention --epochs 1 --batch 16 --out strun --masks masks"), &dir);
    let (out, _) = wbc_ok(
        &with("ablation strun --seg models/seg --out ablation.json --masks masks"),
        &dir,
    );
    assert!(out.contains("| strun | One | Attention |"), "{out}");

    // Counterfactuals with the shipped attribute model (run from the repository root).
    let index = dir.join("index.json").display().to_string();
    wbc_ok(
        &words(&format!(
            "index --split val --limit 40 --data {d} --out {index}"
        )),
        &root,
    );
    let basophils = data.join("pbc/PBC_dataset_normal_DIB/neutrophil");
    let first = first_file(&basophils);
    let (out, err) = wbc_ok(
        &words(&format!(
            "counterfactual {} --set granule_colour=purple --index {index} -k 2",
            first.display()
        )),
        &root,
    );
    // 40 val cells hold purple granules (basophils): there must be a match.
    assert!(out.lines().count() >= 1, "no counterfactual found: {err}");
    for line in out.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["requested"]["granule_colour"], "purple");
        assert!(v["distance"].as_f64().unwrap() >= 0.0);
    }
    let report = dir.join("report.json").display().to_string();
    wbc_ok(
        &words(&format!(
            "counterfactual-report --index {index} --queries {index} --out {report}"
        )),
        &root,
    );
    let r: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert!(r["crossing_changes"].as_u64().unwrap() > 0, "{r}");
}

/// The front end and the familiarity check with the shipped calibration: generated noise is
/// flagged and a PBC cell gets the front end's report; `wbc external` scores a few cells of
/// both external sets and writes its summary; `wbc calibrate` runs end to end on a handful of
/// cells and writes a card and a feature distribution of the right size.
#[test]
fn front_end_familiarity_external_and_calibrate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let data = data();
    for set in ["cellavision100", "tecom300"] {
        assert!(
            data.join(set).join("labels.csv").exists(),
            "{set} is needed in {}",
            data.display()
        );
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("front_end");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // Uniform noise: not a cell, and it must say so.
    let mut state = 12345u64;
    let noise = image::RgbImage::from_fn(300, 300, |_, _| {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
        let v = (state >> 33) as u32;
        image::Rgb([v as u8, (v >> 8) as u8, (v >> 16) as u8])
    });
    let noise_path = dir.join("noise.png");
    noise.save(&noise_path).unwrap();
    let cell = data.join("pbc/PBC_dataset_normal_DIB/neutrophil");
    let mut cells: Vec<_> = std::fs::read_dir(&cell)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    cells.sort();
    let (ok, out, err) = wbc(
        &[
            "analyse",
            &noise_path.display().to_string(),
            &cells[0].display().to_string(),
        ],
        &root,
    );
    assert!(ok, "{err}");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Noise carries a warning: unlike the training images, or (with the doubt model of the
    // pretrained encoder's calibration) a cell type in doubt with a high score.
    let warning = lines[0]["warning"].as_str().unwrap_or_default();
    let doubt = lines[0]["doubt"].as_f64().unwrap_or(0.0);
    assert!(
        warning.contains("Unlike the training images")
            || (warning.contains("in doubt") && doubt > 0.5),
        "noise not flagged: {}",
        lines[0]
    );
    // The doubt score, a number beside the warning for every cell.
    for line in &lines {
        let doubt = line["doubt"].as_f64().unwrap_or(-1.0);
        assert!((0.0..=1.0).contains(&doubt), "no doubt score: {line}");
    }
    assert!(
        lines[1]["front_end"]["scale"]["factor"].as_f64().is_some(),
        "no front-end report: {}",
        lines[1]
    );
    // Both opinions on the type, with the shipped measured-type card.
    assert!(
        lines[1]["measured_type"]["measured"]["label"]
            .as_str()
            .is_some(),
        "no measured type: {}",
        lines[1]
    );

    let summary = dir.join("external.json");
    let (ok, out, err) = wbc(
        &[
            "external",
            "--limit",
            "4",
            "--default-only",
            "--out",
            &summary.display().to_string(),
            "--cells-out",
            &dir.join("cells.jsonl").display().to_string(),
        ],
        &root,
    );
    assert!(ok, "{err}");
    assert!(out.contains("| tecom300 |"), "{out}");
    let report: Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{report}");
    for row in rows {
        assert_eq!(row["cells"], 4, "{row}");
        for key in ["nucleus_iou", "whole_cell_iou", "cell_type_accuracy"] {
            let v = row[key].as_f64().unwrap();
            assert!((0.0..=100.0).contains(&v), "{key} {v}");
        }
        assert!(row["flagged"].as_f64().is_some(), "{row}");
        assert!(row["measured_accuracy"].as_f64().is_some(), "{row}");
    }
    // Nucleus IoU on a few cells is far from zero: the map was put back onto the image.
    assert!(rows[0]["nucleus_iou"].as_f64().unwrap() > 50.0, "{report}");

    // The measured type fitted, chosen and scored end to end on a handful of cells.
    let measured = dir.join("measured_type.json");
    let out = measured.display();
    wbc_ok(
        &words(&format!(
            "measured-type --train-cells 10 --val-cells 10 --shifted-cells 3 --out {out}"
        )),
        &root,
    );
    wbc_ok(
        &words(&format!(
            "measured-type --test-only --test-cells 5 --out {out}"
        )),
        &root,
    );
    let card: Value = serde_json::from_slice(&std::fs::read(&measured).unwrap()).unwrap();
    assert_eq!(
        card["model"]["weights"].as_array().unwrap().len(),
        5,
        "{card}"
    );
    assert_eq!(
        card["model"]["mean"].as_array().unwrap().len(),
        wbc_core::measured_type::NUM_FEATURES
    );
    assert!(card["joining"].as_str().is_some(), "{card}");
    assert_eq!(card["record"]["test"]["cells"], 5, "{card}");

    let stem = dir.join("calibration");
    wbc_ok(&words(&format!("calibrate --reference-cells 8 --choice-cells 2 --feature-cells 30 --limit 6 --calibration {}", stem.display())), &root);
    let card: Value =
        serde_json::from_slice(&std::fs::read(stem.with_extension("json")).unwrap()).unwrap();
    assert_eq!(card["temperatures"].as_array().unwrap().len(), 12, "{card}");
    let d = card["feature_dim"].as_u64().unwrap() as usize;
    let bin = std::fs::metadata(stem.with_extension("bin")).unwrap().len() as usize;
    assert_eq!(bin, 4 * (d + d * d));
    // The doubt model, with its threshold and what it gave on the cells it was fitted on.
    let doubt = &card["doubt"];
    assert_eq!(doubt["weights"].as_array().unwrap().len(), 5, "{card}");
    assert!(
        (0.0..=1.0).contains(&doubt["threshold"].as_f64().unwrap()),
        "{card}"
    );
    assert!(
        card["record"]["doubt"]["fit_sets"]["chula_held_back"]["cells"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(
        card["reference"]["scale"]["red_cell_diameter"]
            .as_f64()
            .unwrap()
            > 20.0
    );
}

/// `wbc time-training` (the training half of the native peer benchmark) takes real steps:
/// one JSON line with a positive rate, the head's group widths adding up to its width, and
/// larger inputs costing more per step.
#[test]
fn time_training_reports_steps_of_the_attribute_network() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let step = |size: &str| -> serde_json::Value {
        let (out, _) = wbc_ok(
            &[
                "time-training",
                "--input-size",
                size,
                "--batch",
                "4",
                "--steps",
                "3",
            ],
            dir,
        );
        serde_json::from_str(out.trim()).expect("one JSON line")
    };
    let (small, large) = (step("32"), step("96"));
    assert!(small["images_per_second"].as_f64().unwrap() > 0.0);
    assert_eq!(small["step"]["runs"], 3);
    let widths: u64 = small["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_u64().unwrap())
        .sum();
    assert_eq!(widths as usize, wbc_core::schema::HEAD_WIDTH);
    assert!(
        large["step"]["median_ms"].as_f64() > small["step"]["median_ms"].as_f64(),
        "9× the pixels should cost more: {small} vs {large}"
    );
}

/// A question of one's own, end to end with the shipped models: `wbc fit` on a folder of
/// class folders writes a profile with both classifiers cross-validated; `wbc analyse
/// --profile` answers the question for each cell; the same profile made for other networks,
/// or broken, is refused with a message that says why.
#[test]
fn a_profile_is_fitted_applied_and_refused_for_other_networks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let samples = root.join("public/samples");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("profile");
    let _ = std::fs::remove_dir_all(&dir);
    // Two classes from the shipped sample cells: granular (eosinophils, basophils) or not.
    for (class, prefixes) in [("granular", ["EO_", "BA_"]), ("plain", ["LY_", "MO_"])] {
        let folder = dir.join("labels").join(class);
        std::fs::create_dir_all(&folder).unwrap();
        let mut names: Vec<PathBuf> = std::fs::read_dir(&samples)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                let n = p.file_name().unwrap().to_string_lossy();
                prefixes.iter().any(|x| n.starts_with(x))
            })
            .collect();
        names.sort();
        for p in names.iter().take(6) {
            std::fs::copy(p, folder.join(p.file_name().unwrap())).unwrap();
        }
    }
    let profile = dir.join("profile.json");
    let (_, err) = wbc_ok(
        &[
            "fit",
            "--labels",
            dir.join("labels").to_str().unwrap(),
            "--out",
            profile.to_str().unwrap(),
        ],
        &root,
    );
    assert!(err.contains("cross-validated"), "{err}");
    let p: Value = serde_json::from_str(&std::fs::read_to_string(&profile).unwrap()).unwrap();
    assert_eq!(p["classes"], serde_json::json!(["granular", "plain"]));
    assert_eq!(p["counts"], serde_json::json!([6, 6]));
    let cell = first_file(&dir.join("labels/granular"));
    let (out, _) = wbc_ok(
        &[
            "analyse",
            cell.to_str().unwrap(),
            "--profile",
            profile.to_str().unwrap(),
        ],
        &root,
    );
    let line: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    let answer = &line["profile"]["interpretable"]["value"];
    assert!(answer == "granular" || answer == "plain", "{line}");
    assert!(
        line["profile"]["probe"]["probabilities"]["plain"].is_number(),
        "{line}"
    );
    // Fitted on other networks, or not a profile: refused, saying which.
    let other = dir.join("other.json");
    let refused_with = |text: &str, said: &str| {
        std::fs::write(&other, text).unwrap();
        let args = [
            "analyse",
            cell.to_str().unwrap(),
            "--profile",
            other.to_str().unwrap(),
        ];
        let (ok, _, err) = wbc(&args, &root);
        assert!(!ok && err.contains(said), "{err}");
    };
    let mut q = p.clone();
    q["networks"]["attribute_net"] = serde_json::json!("0000");
    refused_with(&q.to_string(), "other network versions");
    refused_with("{ not json", "not a WBC Explorer profile");
}
