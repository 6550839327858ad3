//! The peer benchmark in the browser (ignored by default; `cargo xtask bench` prepares the
//! ONNX graphs and onnxruntime-web, then runs it): in one headless Chromium session per
//! device, the app's two networks on Burn (the app's own worker, `TimeNetworks`) against the
//! same architectures on onnxruntime-web (`bench/peer/peer.js`), run by run in alternating
//! order, readback included. The analyser sends one cell per request, so batch 1 is the batch
//! size the app uses.

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};
use wbc_e2e::{artefacts, copy_dir, root, Driver, StaticServer};

/// Warm runs per network and engine.
const RUNS: usize = 30;

/// The site: the app's build, the peer page, onnxruntime-web's files and the graphs.
fn site() -> Result<std::path::PathBuf> {
    let site = root().join("target/peer-site");
    let _ = std::fs::remove_dir_all(&site);
    copy_dir(&root().join("dist"), &site)?;
    for f in ["peer.html", "peer.js"] {
        std::fs::copy(root().join("bench/peer").join(f), site.join(f))?;
    }
    let ort = root().join("target/npm/node_modules/onnxruntime-web/dist");
    ensure!(
        ort.exists(),
        "onnxruntime-web is missing: run cargo xtask bench"
    );
    std::fs::create_dir_all(site.join("ort"))?;
    for entry in std::fs::read_dir(&ort)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .context("name")?
            .to_string_lossy()
            .to_string();
        if (name.starts_with("ort.wasm.min")
            || name.starts_with("ort.webgpu.min")
            || name.starts_with("ort-wasm-simd-threaded"))
            && !name.ends_with(".map")
        {
            std::fs::copy(&path, site.join("ort").join(&name))?;
        }
    }
    let graphs = root().join("target/peer-graphs");
    ensure!(
        graphs.exists(),
        "the ONNX graphs are missing: run cargo xtask bench"
    );
    copy_dir(&graphs, &site.join("graphs"))?;
    Ok(site)
}

fn stats(mut runs: Vec<f64>) -> Value {
    runs.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| runs[((runs.len() - 1) as f64 * q).round() as usize];
    json!({"median_ms": at(0.5), "p90_ms": at(0.9), "runs": runs.len()})
}

#[test]
#[ignore = "benchmark: run with cargo xtask bench"]
fn burn_against_onnxruntime_web_in_the_same_browser() -> Result<()> {
    let site = site()?;
    let server = StaticServer::start_without_headers(site)?;
    let driver = Driver::start()?;
    let mut report = serde_json::Map::new();
    for (provider, webgpu, runs) in [("wasm", false, RUNS), ("webgpu", true, RUNS)] {
        let s = driver.session(webgpu)?;
        s.goto(&format!("{}/peer.html", server.url))?;
        s.wait_for("peer page", std::time::Duration::from_secs(30), |s| {
            Ok(s.js("return window.peerReady === true")?.as_bool() == Some(true))
        })?;
        let call = |script: &str| -> Result<Value> {
            let v = s.js_async(&format!(
                "const done = arguments[arguments.length - 1]; ({script}).then(done, e => done({{error: String(e)}}));"
            ))?;
            ensure!(v.get("error").is_none(), "{script}: {v}");
            Ok(v)
        };
        let load = call(&format!("window.peer.load('{provider}', [1])"))?;
        eprintln!("{provider}: {load}");
        // First runs (shader compilation, allocation), then warm runs alternating engines.
        let first_burn = call("window.peer.burn(1)")?;
        let first_ort_attr = call("window.peer.ort('attribute_net', 1)")?;
        let first_ort_seg = call("window.peer.ort('seg_net', 1)")?;
        let (mut burn_attr, mut burn_seg, mut ort_attr, mut ort_seg) =
            (vec![], vec![], vec![], vec![]);
        for run in 0..runs {
            // Alternate which engine goes first.
            let order: [&str; 2] = if run % 2 == 0 {
                ["burn", "ort"]
            } else {
                ["ort", "burn"]
            };
            for engine in order {
                if engine == "burn" {
                    let t = call("window.peer.burn(1)")?;
                    burn_attr.push(t["attribute_ms"].as_f64().context("attribute_ms")?);
                    burn_seg.push(t["segmentation_ms"].as_f64().context("segmentation_ms")?);
                } else {
                    ort_attr.push(
                        call("window.peer.ort('attribute_net', 1)")?
                            .as_f64()
                            .context("ms")?,
                    );
                    ort_seg.push(
                        call("window.peer.ort('seg_net', 1)")?
                            .as_f64()
                            .context("ms")?,
                    );
                }
            }
        }
        let (ba, bs, oa, os) = (
            stats(burn_attr),
            stats(burn_seg),
            stats(ort_attr),
            stats(ort_seg),
        );
        let ratio = |b: &Value, o: &Value| {
            b["median_ms"].as_f64().unwrap_or(f64::NAN)
                / o["median_ms"].as_f64().unwrap_or(f64::NAN)
        };
        let entry = json!({
            "load": load,
            "first": {"burn": first_burn, "ort_attribute_ms": first_ort_attr, "ort_segmentation_ms": first_ort_seg},
            "burn": {"attribute_net": ba, "seg_net": bs},
            "onnxruntime_web": {"attribute_net": oa, "seg_net": os},
            "ratio_burn_over_ort_median": {"attribute_net": ratio(&ba, &oa), "seg_net": ratio(&bs, &os)},
        });
        eprintln!("{provider}: {}", serde_json::to_string_pretty(&entry)?);
        report.insert(provider.to_string(), entry);
    }
    std::fs::write(
        artefacts().join("peer.json"),
        serde_json::to_vec_pretty(&report)?,
    )?;
    Ok(())
}
