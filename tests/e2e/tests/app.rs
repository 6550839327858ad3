//! The app as a user meets it: the built `dist/` in headless Chromium, once with WebGPU
//! (SwiftShader provides it here) and once without (the CPU fallback). Screenshots go to
//! target/e2e/.

use anyhow::{ensure, Context, Result};
use image::{Rgb, RgbImage};
use std::path::PathBuf;
use std::time::Duration;
use wbc_e2e::{
    artefacts, copy_dir, foreign_requests, own_assets, root, Driver, Session, StaticServer,
};

const LOAD: Duration = Duration::from_secs(240);

/// A synthetic cell: pale background, pink red cells, a violet nucleus in a blue-grey
/// cytoplasm. Not a real cell, but a real image through the whole path.
fn synthetic_cell() -> Result<PathBuf> {
    let img = RgbImage::from_fn(360, 363, |x, y| {
        let (dx, dy) = (x as f32 - 180.0, y as f32 - 181.0);
        let r = (dx * dx + dy * dy).sqrt();
        let rbc = ((x as f32 - 60.0).powi(2) + (y as f32 - 60.0).powi(2)).sqrt() < 40.0;
        if r < 45.0 {
            Rgb([110, 60, 150])
        } else if r < 80.0 {
            Rgb([190, 180, 215])
        } else if rbc {
            Rgb([230, 170, 170])
        } else {
            Rgb([240, 225, 220])
        }
    });
    let path = artefacts().join("synthetic-cell.png");
    img.save(&path)?;
    Ok(path)
}

/// The PBC cells of one type from ../shared/data, sorted by name.
fn pbc_cells(class: &str) -> Vec<PathBuf> {
    let p = root()
        .join("../shared/data/pbc/PBC_dataset_normal_DIB")
        .join(class);
    let mut files: Vec<_> = std::fs::read_dir(&p)
        .unwrap_or_else(|e| panic!("{}: {e} (the PBC images are needed)", p.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    files
}

/// A real PBC cell from ../shared/data.
fn real_cell() -> Option<PathBuf> {
    pbc_cells("monocyte").into_iter().next()
}

/// Several real cells of different types.
fn real_cells(n: usize) -> Vec<PathBuf> {
    ["neutrophil", "eosinophil", "lymphocyte", "basophil"]
        .iter()
        .filter_map(|class| pbc_cells(class).into_iter().next())
        .take(n)
        .collect()
}

/// The first cell of tecom300 (another microscope and stain: yellow background, the cell
/// filling the frame) and its type from the set's labels.
fn tecom_cell() -> (PathBuf, &'static str) {
    let dir = root().join("../shared/data/tecom300");
    let labels = std::fs::read_to_string(dir.join("labels.csv"))
        .unwrap_or_else(|e| panic!("{}: {e} (the tecom300 set is needed)", dir.display()));
    let class = wbc_core::csv_text::read(&labels)
        .ok()
        .and_then(|t| t.records.first().and_then(|(_, r)| r.get(1).cloned()))
        .and_then(|c| c.parse::<usize>().ok())
        .expect("a first labelled cell");
    let name = [
        "Neutrophil",
        "Lymphocyte",
        "Monocyte",
        "Eosinophil",
        "Basophil",
    ][class - 1];
    (dir.join("images/001.png"), name)
}

/// A cell from another microscope: the page says what the front end did (the estimated
/// scale), shows the corrected image on request, and either names the right type or warns
/// that the image is unlike the training images. Switching stain normalisation off analyses
/// the cell again in place.
fn other_microscope(s: &Session, name: &str) -> Result<()> {
    let (file, truth) = tecom_cell();
    let before = cell_count(s)?;
    upload_and_wait(s, &file)?;
    ensure!(
        cell_count(s)? == before + 1 && !s.visible("error")?,
        "{name}: the tecom300 cell was not analysed: {:?}",
        s.text("error")
    );
    let scale = s.attr("front-end", "data-scale")?;
    ensure!(
        scale
            .as_deref()
            .and_then(|v| v.parse::<f64>().ok())
            .is_some(),
        "{name}: no estimated scale shown ({scale:?}): is models/calibration.json built in?"
    );
    let said = s.text("cell-type")?;
    let warned = s.find("unfamiliar-warning")?.is_some();
    eprintln!(
        "{name}: tecom300 001 ({truth}) called {said}, scale ×{}, warning: {warned}",
        scale.unwrap_or_default()
    );
    ensure!(
        said == truth || warned,
        "{name}: a {truth} from another microscope called {said} with no warning"
    );
    ensure!(
        s.text("scale")?.contains("Magnification"),
        "{name}: the scale is not explained"
    );
    // The image as the networks saw it, on request.
    let src = |s: &Session| s.attr("cell-image", "src");
    let own = src(s)?;
    if s.find("show-normalised")?.is_some() {
        s.js("document.querySelector('[data-testid=show-normalised]').click(); return true;")?;
        s.wait_for("normalised image", Duration::from_secs(10), |s| {
            Ok(src(s)? != own)
        })?;
        s.screenshot(&format!("{name}-other-microscope-normalised"))?;
    }
    s.screenshot(&format!("{name}-other-microscope"))?;
    // Stain normalisation off: the same cell comes back analysed again, nothing lost.
    let stain_on = s.js("return document.querySelector('[data-testid=stain-toggle]').checked")?;
    s.js("document.querySelector('[data-testid=stain-toggle]').click(); return true;")?;
    s.wait_for("analysed again", LOAD, |s| {
        Ok(s.text("status")? == "idle"
            && s.js("return document.querySelector('[data-testid=stain-toggle]').checked")?
                != stain_on)
    })?;
    ensure!(
        cell_count(s)? == before + 1,
        "{name}: the cell count changed when the stain setting changed"
    );
    s.js("document.querySelector('[data-testid=stain-toggle]').click(); return true;")?;
    s.wait_for("analysed again", LOAD, |s| Ok(s.text("status")? == "idle"))?;
    Ok(())
}

fn not_an_image() -> Result<PathBuf> {
    let path = artefacts().join("notes.jpg");
    std::fs::write(&path, b"these are lab notes, not a JPEG")?;
    Ok(path)
}

/// A valid PNG whose header claims 20000 pixels of width: refused before decoding.
fn huge_image() -> Result<PathBuf> {
    let path = artefacts().join("huge.png");
    RgbImage::new(20000, 40).save(&path)?;
    Ok(path)
}

/// Wait until the page has chosen its device and loaded the model.
fn open(session: &Session) -> Result<String> {
    session.settled(LOAD)
}

fn cell_count(s: &Session) -> Result<u64> {
    Ok(
        s.js("return document.querySelectorAll('[data-testid=cell-list] li').length")?
            .as_u64()
            .unwrap_or(0),
    )
}

/// Upload one file and wait until the app has answered it.
fn upload_and_wait(s: &Session, file: &PathBuf) -> Result<()> {
    let before = cell_count(s)?;
    // Dismiss an earlier message (as a user would) so the next answer is this file's.
    s.js("const b=document.querySelector('[data-testid=error] .dismiss'); if (b) b.click();")?;
    s.wait_for("error dismissed", Duration::from_secs(5), |s| {
        Ok(!s.visible("error")?)
    })?;
    s.upload("file-input", file)?;
    s.wait_for("answer", LOAD, |s| {
        Ok(cell_count(s)? > before || s.visible("error")?)
    })?;
    // The new cell's panel is built in steps, a frame apart.
    s.wait_for("the panel built", Duration::from_secs(10), |s| {
        Ok(!s.panel_building()?)
    })
}

fn prediction(s: &Session) -> Result<Vec<f64>> {
    let raw = s
        .attr("cell-panel", "data-raw-prediction")?
        .context("no prediction")?;
    let v: serde_json::Value = serde_json::from_str(&raw)?;
    let mut out = Vec::new();
    for group in v["attributes"]
        .as_array()
        .context("attributes")?
        .iter()
        .chain([&v["cell_type"]])
    {
        for p in group
            .as_array()
            .context("group")?
            .iter()
            .chain(std::iter::empty())
        {
            out.push(p.as_f64().context("number")?);
        }
    }
    Ok(out)
}

fn set_attribute(s: &Session, attr: &str, value: &str) -> Result<()> {
    let script = format!(
        "const sel=document.querySelector('[data-testid=attribute-{attr}] select');\
         const opt=[...sel.options].find(o=>o.textContent.startsWith('{value}'));\
         sel.value=opt.value; sel.dispatchEvent(new Event('change',{{bubbles:true}})); return true;"
    );
    s.js(&script).map(|_| ())
}

/// Whether an element (e.g. an image, which has no text) is displayed.
fn drawn(s: &Session, testid: &str) -> Result<bool> {
    Ok(s.js(&format!("const e=document.querySelector('[data-testid=\"{testid}\"]'); return !!e && getComputedStyle(e).display !== 'none';"))? == serde_json::json!(true))
}

/// Pixels painted (alpha > 0) on a canvas, and its width; `None` when there is no canvas.
fn painted(s: &Session, testid: &str) -> Result<Option<(u64, u64)>> {
    let v = s.js(&format!("const c=document.querySelector('[data-testid=\"{testid}\"]'); if (!c || !c.width) return null; const d=c.getContext('2d').getImageData(0,0,c.width,c.height).data; let n=0; for (let i=3;i<d.length;i+=4) if (d[i]>0) n++; return [n, c.width];"))?;
    Ok(v.as_array().map(|a| {
        (
            a[0].as_u64().unwrap_or(0),
            a.get(1).and_then(|w| w.as_u64()).unwrap_or(0),
        )
    }))
}

/// The explorer on the selected real cell: overlay controls, edits driving the CBM, reset,
/// counterfactuals, and a page that answers clicks while the worker runs.
fn explorer(s: &Session, name: &str) -> Result<()> {
    // Overlay: a 360×360 label map painted on a canvas over the cell; toggling a class
    // redraws it, and the opacity slider changes only its CSS opacity (no redraw).
    let (before, side) = painted(s, "overlay")?.context("overlay canvas")?;
    ensure!(
        side == 360 && before > 1000,
        "{name}: overlay painted {before} px of {side}²"
    );
    s.js("document.querySelector('[data-testid=toggle-nucleus]').click(); return true;")?;
    s.wait_for("overlay redrawn", Duration::from_secs(10), |s| {
        Ok(painted(s, "overlay")?.is_some_and(|(n, _)| n < before))
    })?;
    let after_toggle = painted(s, "overlay")?.context("overlay canvas")?.0;
    s.js("const r=document.querySelector('[data-testid=overlay-opacity]'); r.value='80'; r.dispatchEvent(new Event('input', {bubbles: true})); return true;")?;
    s.wait_for("overlay opacity", Duration::from_secs(10), |s| {
        Ok(s.js(
            "return getComputedStyle(document.querySelector('[data-testid=overlay]')).opacity",
        )? == serde_json::json!("0.8"))
    })?;
    ensure!(
        painted(s, "overlay")?.context("overlay canvas")?.0 == after_toggle,
        "{name}: the opacity slider changed the painted pixels"
    );
    ensure!(
        s.visible("legend")? && s.visible("measurements")?,
        "{name}: legend or measurements missing"
    );
    // The caption says what drew the segmentation (network, or the labeller and why not).
    let segmenter = s.text("segmenter")?;
    ensure!(
        segmenter.contains("segmentation network") || segmenter.contains("labeller"),
        "{name}: segmenter caption {segmenter}"
    );
    eprintln!("{name}: {segmenter}");
    // Where it looked: an activation map for the nucleus shape replaces the overlay, and the
    // segmentation comes back on request.
    s.js("document.querySelector('[data-testid=cam-nucleus_shape]').click(); return true;")?;
    s.wait_for("activation map", LOAD, |s| drawn(s, "cam"))?;
    let cam_value = s.attr("cam", "data-value")?;
    ensure!(
        cam_value == s.attr("attribute-nucleus_shape", "data-value")?,
        "{name}: activation map for {cam_value:?}, not the value shown"
    );
    ensure!(
        painted(s, "cam")?.is_some_and(|(n, w)| w == 360 && n > 0),
        "{name}: activation map not painted"
    );
    ensure!(
        !drawn(s, "overlay")?,
        "{name}: overlay still drawn under the activation map"
    );
    s.screenshot(&format!("{name}-activation-map"))?;
    s.js("document.querySelector('[data-testid=cam-hide]').click(); return true;")?;
    s.wait_for("overlay back", Duration::from_secs(10), |s| {
        Ok(!drawn(s, "cam")? && drawn(s, "overlay")?)
    })?;
    // No edits: the CBM verdict and contributions are there.
    let before = s.text("cbm-type")?;
    ensure!(
        s.attr("cbm-type", "data-probability")?.is_some(),
        "{name}: cbm probability"
    );
    ensure!(
        s.find("contributions")?.is_some() && s.find("cbm-heatmap")?.is_some(),
        "{name}: plots missing"
    );
    // Counterfactuals among loaded cells: the synthetic cell is the other one.
    let paths = s.js("return [...document.querySelectorAll('[data-testid=counterfactuals] li[data-path]')].map(l=>l.dataset.path)")?;
    ensure!(
        paths.to_string().contains("synthetic-cell.png"),
        "{name}: counterfactuals {paths}"
    );
    // Purple coarse granules (and so granules seen: every WBCAtt cell with coarse granules has
    // granularity "yes"): a haematologist would now say basophil, and so should the CBM. With
    // granularity left at the monocyte's "no" the fourth encoder run's CBM said basophil 18%.
    set_attribute(s, "granule_colour", "purple")?;
    set_attribute(s, "granule_type", "coarse")?;
    set_attribute(s, "granularity", "yes")?;
    s.wait_for("edit applied", Duration::from_secs(10), |s| {
        Ok(s.attr("attribute-granule_type", "data-edited")?.as_deref() == Some("true"))
    })?;
    ensure!(s.attr("attribute-granule_colour", "data-value")?.as_deref() == Some("purple"));
    let after = s.text("cbm-type")?;
    ensure!(
        after == "Basophil",
        "{name}: CBM says {after} after purple coarse granules"
    );
    // With a reference index in the build, real reference cells with purple coarse granules
    // are offered too, and they are basophils.
    if root().join("dist/reference/index.json").exists() {
        let reference = s.js("return [...document.querySelectorAll('[data-testid=counterfactuals] li[data-source=reference]')].map(l=>l.innerText)")?;
        let items = reference.as_array().cloned().unwrap_or_default();
        ensure!(
            !items.is_empty(),
            "{name}: no reference counterfactuals with a reference index"
        );
        ensure!(
            items
                .iter()
                .all(|t| t.as_str().is_some_and(|t| t.contains("Basophil"))),
            "{name}: reference cells with purple coarse granules: {reference}"
        );
        // The reference thumbnails carry their source's credit (CC BY asks for it).
        let credit = s.js("return document.querySelector('.counterfactuals .hint').innerText")?;
        ensure!(
            credit
                .as_str()
                .is_some_and(|c| c.contains("Acevedo") && c.contains("CC BY 4.0")),
            "{name}: the reference cells are shown without their credit: {credit}"
        );
        let thumb = s.js("const i=document.querySelector('[data-testid=counterfactuals] li[data-source=reference] img'); return i && i.complete && i.naturalWidth")?;
        ensure!(
            thumb.as_u64().unwrap_or(0) > 0,
            "{name}: reference thumbnail not shown"
        );
        s.js("document.querySelector('[data-testid=counterfactuals]').scrollIntoView(); return true;")?;
        s.screenshot(&format!("{name}-counterfactuals"))?;
        s.js("window.scrollTo(0, 0); return true;")?;
    }
    s.screenshot(&format!("{name}-edited"))?;
    s.js("document.querySelector('[data-testid=reset-edits]').click(); return true;")?;
    s.wait_for("edits reset", Duration::from_secs(10), |s| {
        Ok(s.attr("attribute-granule_type", "data-edited")?.as_deref() == Some("false"))
    })?;
    ensure!(
        s.text("cbm-type")? == before,
        "{name}: reset did not restore the CBM verdict"
    );
    // The page stays responsive while the worker analyses: a click during inference is handled.
    let batch = real_cells(4);
    let before = cell_count(s)?;
    s.upload_many("file-input", &batch)?;
    s.wait_for("working", Duration::from_secs(10), |s| {
        Ok(s.text("status")?.starts_with("working"))
    })?;
    s.js("document.querySelector('[data-testid=cell-list] li button').click(); return true;")?;
    s.wait_for("click handled", Duration::from_secs(5), |s| {
        Ok(s.js("return document.querySelector('[data-testid=cell-list] li').classList.contains('selected')")? == serde_json::json!(true))
    })?;
    let status = s.text("status")?;
    eprintln!(
        "{name}: a click while analysing {} cells was handled; status then: {status}",
        batch.len()
    );
    s.wait_for("batch analysed", LOAD, |s| {
        Ok(cell_count(s)? == before + batch.len() as u64)
    })?;
    Ok(())
}

/// Run the user journey on one device and return the network output for the synthetic cell.
fn journey(driver: &Driver, server: &StaticServer, webgpu: bool) -> Result<Vec<f64>> {
    let session = driver.session(webgpu)?;
    let output = journey_in(&session, server, webgpu)?;
    // Nothing but the page's own assets was requested, by the page or its worker (and so no
    // image was sent anywhere), as the browser itself recorded it.
    // Three witnesses: the browser's DevTools network log, the page's resource timing, and
    // what this test's server was asked for (the worker's downloads show there for certain).
    let mut requests = session.requested_urls()?;
    let served = server.requests.lock().expect("log").clone();
    requests.extend(served.iter().map(|path| format!("{}{path}", server.url)));
    ensure!(
        requests
            .iter()
            .any(|u| u.contains("models/attribute_net.bpk"))
            && requests.iter().any(|u| u.ends_with(".wasm")),
        "the request record misses the page's own downloads: {requests:?}"
    );
    let foreign = foreign_requests(&requests, &server.url, &own_assets(&root().join("dist"))?);
    ensure!(
        foreign.is_empty(),
        "requests beyond the page's own assets: {foreign:?}"
    );
    // The page carries a Content-Security-Policy (written at build time) and nothing it did
    // broke it: the browser logs every violation.
    let page = std::fs::read_to_string(root().join("dist/index.html"))?;
    ensure!(
        page.contains("http-equiv=\"Content-Security-Policy\""),
        "the built page has no Content-Security-Policy"
    );
    let console = session.console();
    ensure!(
        !console.contains("Content Security Policy"),
        "Content-Security-Policy violations: {console}"
    );
    eprintln!(
        "{}: {} requests, all to the page's own assets",
        if webgpu { "webgpu" } else { "cpu" },
        requests.len()
    );
    Ok(output)
}

fn journey_in(session: &Session, server: &StaticServer, webgpu: bool) -> Result<Vec<f64>> {
    let name = if webgpu { "webgpu" } else { "cpu" };
    session.goto(&server.url)?;
    // A generated cell, chosen as soon as the page shows its file input: usually before the
    // model is ready, which once left the request unanswered. It must be answered.
    session.wait_for("file input", LOAD, |s| Ok(s.find("file-input")?.is_some()))?;
    let cold = !webgpu && session.text("device").map(|t| t == "…").unwrap_or(true);
    // With WebGPU the first cells run on the CPU worker until the WebGPU one takes over
    // (`the_cpu_worker_answers_first_and_webgpu_takes_over`): this journey's cells go to
    // WebGPU, so the two journeys compare the two devices.
    if !webgpu {
        session.upload("file-input", &synthetic_cell()?)?;
    }
    let device = open(&session)?;
    if webgpu {
        session.upload("file-input", &synthetic_cell()?)?;
    }
    ensure!(
        device == if webgpu { "WebGPU" } else { "CPU" },
        "{name}: device label is {device}"
    );
    session.wait_for("the first cell's answer", LOAD, |s| {
        Ok(cell_count(s)? == 1 || s.visible("error")?)
    })?;
    eprintln!(
        "{name}: first file chosen {} the model was ready, and answered",
        if cold { "before" } else { "after" }
    );
    ensure!(
        !session.visible("error")?,
        "{name}: synthetic cell refused: {:?}",
        session.text("error")
    );
    let shown = session.js("const i=document.querySelector('[data-testid=cell-image]'); return i && i.complete ? [i.naturalWidth, i.naturalHeight] : null")?;
    ensure!(
        shown == serde_json::json!([360, 360]),
        "{name}: cropped image not shown as 360×360: {shown}"
    );
    let output = prediction(&session)?;
    ensure!(output.len() == 36, "36 probabilities expected");
    let cell_type = session.text("cell-type")?;
    ensure!([
        "Basophil",
        "Eosinophil",
        "Lymphocyte",
        "Monocyte",
        "Neutrophil"
    ]
    .contains(&cell_type.as_str()));
    session.screenshot(&format!("{name}-synthetic"))?;

    // A file that is not an image: clear message, earlier cell kept.
    upload_and_wait(&session, &not_an_image()?)?;
    ensure!(
        session.visible("error")?,
        "{name}: no error for a text file"
    );
    let msg = session.text("error")?;
    ensure!(
        msg.contains("notes.jpg") && msg.contains("not a readable image"),
        "{name}: unclear message {msg}"
    );
    ensure!(
        cell_count(&session)? == 1,
        "{name}: the earlier cell was lost"
    );
    session.screenshot(&format!("{name}-refused"))?;

    // An absurdly large image: refused with the reason.
    upload_and_wait(&session, &huge_image()?)?;
    let msg = session.text("error")?;
    ensure!(msg.contains("20000"), "{name}: huge image message is {msg}");

    // The next real cell loads fine.
    if let Some(real) = real_cell() {
        upload_and_wait(&session, &real)?;
        ensure!(
            cell_count(&session)? == 2,
            "{name}: the real cell after the errors did not load"
        );
        ensure!(
            !session.visible("error")?,
            "{name}: error still shown after a good image"
        );
        for attr in ["cell_size", "nucleus_shape", "granule_colour"] {
            let v = session.attr(&format!("attribute-{attr}"), "data-value")?;
            ensure!(v.is_some(), "attribute-{attr} missing");
        }
        // How long it took and on what.
        let timings = session.text("timings")?;
        ensure!(
            timings.contains("attribute network")
                && timings.contains("segmentation")
                && timings.contains(&format!("on {device}"))
                && timings.contains("MB (segmentation)"),
            "{name}: timings {timings}"
        );
        session.screenshot(&format!("{name}-real-cell"))?;
        if name == "cpu" {
            readme_picture(&session)?;
        }
        explorer(&session, name)?;
        other_microscope(&session, name)?;
    }
    Ok(output)
}

#[test]
fn app_in_headless_chromium_on_webgpu_and_cpu() -> Result<()> {
    let dist = root().join("dist");
    ensure!(
        dist.join("index.html").exists(),
        "build the app first: cargo xtask build"
    );
    let server = StaticServer::start(dist)?;
    let driver = Driver::start()?;
    let gpu = journey(&driver, &server, true).context("WebGPU journey")?;
    let cpu = journey(&driver, &server, false).context("CPU journey")?;
    // Same weights, same input: both devices must agree. f32 on both; differences come from
    // summation order in the kernels.
    let worst = gpu
        .iter()
        .zip(&cpu)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    eprintln!("largest WebGPU vs CPU probability difference: {worst:.2e}");
    ensure!(worst < 1e-3, "WebGPU and CPU outputs differ by {worst}");
    Ok(())
}

/// A copy of `dist/` with some model files changed, served on its own.
fn broken_dist(name: &str, change: impl Fn(&std::path::Path) -> Result<()>) -> Result<PathBuf> {
    let dir = artefacts().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&root().join("dist"), &dir)?;
    change(&dir)?;
    Ok(dir)
}

/// Optional assets (the reference index here): absent is normal, even from a development
/// server that answers a missing file with the page and status 200; present but broken is
/// an error the page names.
#[test]
fn optional_assets_absent_or_broken() -> Result<()> {
    built()?;
    let driver = Driver::start()?;
    let without = broken_dist("dist-without-reference", |d| {
        let _ = std::fs::remove_dir_all(d.join("reference"));
        Ok(())
    })?;
    let server = StaticServer::start_with_fallback(without)?;
    let s = driver.session(false)?;
    s.goto(&server.url)?;
    open(&s)?;
    std::thread::sleep(Duration::from_secs(2));
    ensure!(
        !s.visible("error")?,
        "an absent reference index was reported: {:?}",
        s.text("error")
    );
    let broken = broken_dist("dist-broken-reference", |d| {
        std::fs::create_dir_all(d.join("reference"))?;
        std::fs::write(d.join("reference/index.json"), "{ not json")?;
        Ok(())
    })?;
    let server = StaticServer::start(broken)?;
    let s = driver.session(false)?;
    s.goto(&server.url)?;
    s.wait_for("the error about the broken index", LOAD, |s| {
        s.visible("error")
    })?;
    let error = s.text("error")?;
    ensure!(
        error.contains("reference/index.json could not be read"),
        "{error}"
    );
    Ok(())
}

/// Models that fail to load: without the segmentation network the overlay still comes (from
/// the classical labeller) and the page says why; with broken attribute weights the page says
/// the model could not be loaded, stays usable, and refuses files with that reason.
#[test]
fn models_that_fail_to_load_are_explained() -> Result<()> {
    built()?;
    let Some(real) = real_cell() else {
        return Ok(());
    };
    let driver = Driver::start()?;

    let no_seg = broken_dist("dist-without-segmenter", |d| {
        std::fs::remove_file(d.join("models/seg_net.json"))?;
        Ok(())
    })?;
    // A copy of the build, served, with the real cell analysed in it on the CPU path.
    let analysed_in = |dist: PathBuf| -> Result<(StaticServer, Session)> {
        let server = StaticServer::start(dist)?;
        let s = driver.session(false)?;
        s.goto(&server.url)?;
        open(&s)?;
        upload_and_wait(&s, &real)?;
        Ok((server, s))
    };
    // Without the segmenter's card, on both devices: the cell is analysed, the classical
    // labeller draws the overlay and the caption names the missing file.
    let server = StaticServer::start(no_seg)?;
    for webgpu in [false, true] {
        let s = driver.session(webgpu)?;
        s.goto(&server.url)?;
        let device = open(&s)?;
        let expected = if webgpu { "WebGPU" } else { "CPU" };
        ensure!(
            device == expected,
            "the build without a segmenter settled on {device}"
        );
        upload_and_wait(&s, &real)?;
        ensure!(
            cell_count(&s)? == 1,
            "the cell was not analysed without the segmenter on {device}"
        );
        let caption = s.text("segmenter")?;
        ensure!(
            caption.contains("classical") && caption.contains("seg_net.json"),
            "segmenter caption without the network on {device}: {caption}"
        );
        ensure!(
            painted(&s, "overlay")?.is_some_and(|(n, _)| n > 1000),
            "no overlay from the classical labeller on {device}"
        );
        s.screenshot(if webgpu {
            "without-segmenter-webgpu"
        } else {
            "without-segmenter"
        })?;
    }
    drop(server);

    // Segmentation weights cut short: named as not matching their card (size and SHA-256
    // recorded there), and the cell is still analysed with the classical labeller.
    let cut_seg = broken_dist("dist-cut-segmenter", |d| {
        let path = d.join("models/seg_net.bpk");
        let bytes = std::fs::read(&path)?;
        std::fs::write(&path, &bytes[..bytes.len() / 2])?;
        Ok(())
    })?;
    // One cell analysed, with the classical labeller and the caption naming the weights.
    let classical_after_cut = |s: &Session, device: &str| -> Result<()> {
        let caption = s.text("segmenter")?;
        ensure!(
            cell_count(s)? == 1
                && caption.contains("classical")
                && caption.contains("do not match its card"),
            "segmenter caption with cut weights on {device}: {caption}"
        );
        Ok(())
    };
    let (_server, s) = analysed_in(cut_seg.clone())?;
    classical_after_cut(&s, "the CPU")?;

    // The same fault on WebGPU (issue 18): the CPU worker starts first and the WebGPU worker
    // takes over; both meet the cut weights, so the cell analysed on WebGPU still gets the
    // classical labeller's overlay and the same caption.
    let server = StaticServer::start(cut_seg)?;
    let g = driver.session(true)?;
    g.goto(&server.url)?;
    let device = g.settled(LOAD)?;
    ensure!(
        device == "WebGPU",
        "the cut-segmenter build settled on {device}"
    );
    upload_and_wait(&g, &real)?;
    classical_after_cut(&g, "WebGPU")?;
    ensure!(
        painted(&g, "overlay")?.is_some_and(|(n, _)| n > 1000),
        "no overlay from the classical labeller on WebGPU"
    );
    drop(g);

    let bad_weights = broken_dist("dist-broken-weights", |d| {
        std::fs::write(d.join("models/attribute_net.bpk"), b"not a burnpack")?;
        Ok(())
    })?;
    let server = StaticServer::start(bad_weights)?;
    let s = driver.session(false)?;
    s.goto(&server.url)?;
    s.wait_for("fatal message", LOAD, |s| s.visible("fatal"))?;
    let fatal = s.text("fatal")?;
    ensure!(
        fatal.contains("could not be loaded"),
        "fatal message: {fatal}"
    );
    ensure!(s.text("status")? == "stopped", "status with a broken model");
    upload_and_wait(&s, &real)?;
    let error = s.text("error")?;
    ensure!(
        error.contains("could not be loaded") && cell_count(&s)? == 0,
        "a file after the model failed: {error}"
    );
    s.screenshot("broken-weights")?;

    // In a browser with WebGPU the CPU worker meets the broken weights first: the page says
    // so the same way, and a file is refused with the reason, not left waiting for WebGPU.
    let g = driver.session(true)?;
    g.goto(&server.url)?;
    g.wait_for("fatal message on WebGPU", LOAD, |s| s.visible("fatal"))?;
    let fatal = g.text("fatal")?;
    ensure!(
        fatal.contains("could not be loaded") && g.text("status")? == "stopped",
        "fatal message on WebGPU: {fatal}"
    );
    upload_and_wait(&g, &real)?;
    let error = g.text("error")?;
    ensure!(
        error.contains("could not be loaded") && cell_count(&g)? == 0,
        "a file after the model failed, on WebGPU: {error}"
    );
    Ok(())
}

/// The tests drive the built app: without dist/ they fail, saying how to build it.
fn built() -> Result<()> {
    ensure!(
        root().join("dist/index.html").exists(),
        "build the app first: cargo xtask build"
    );
    Ok(())
}

/// The built app served fresh, in a new session on the CPU path, loaded and idle. Fields drop
/// in order: the session, then the server, then the browser driver. Bind every field
/// (`_driver`, not `..`): a field left out of the pattern is dropped at once, and with it the
/// browser.
struct Opened {
    s: Session,
    server: StaticServer,
    _driver: Driver,
}

fn opened(query: &str) -> Result<Opened> {
    opened_on(false, query)
}

/// As [`opened`], with SwiftShader's WebGPU when `webgpu`.
fn opened_on(webgpu: bool, query: &str) -> Result<Opened> {
    built()?;
    let driver = Driver::start()?;
    let server = StaticServer::start(root().join("dist"))?;
    let s = driver.session(webgpu)?;
    s.goto(&format!("{}/{query}", server.url))?;
    open(&s)?;
    Ok(Opened {
        s,
        server,
        _driver: driver,
    })
}

/// The hostile corpus (`wbc-hostile`: PDFs, WebP, HEIC, truncated and oversized files, 16-bit,
/// CMYK, EXIF-rotated, transparent images…) chosen at once after a real cell: every image
/// becomes a cell, every other file is listed as refused with its name and reason, and the
/// cell analysed before stays. The same corpus goes through the CLI in crates/cli/tests.
#[test]
fn hostile_files_are_answered_one_by_one() -> Result<()> {
    let Some(real) = real_cell() else {
        return Ok(());
    };
    // WebDriver sends paths as UTF-8: the corpus's non-UTF-8 name is the CLI's test only.
    let corpus: Vec<(PathBuf, wbc_hostile::Input)> =
        wbc_hostile::write_corpus(&artefacts().join("hostile"))?
            .into_iter()
            .filter(|(p, _)| p.to_str().is_some())
            .collect();
    let paths: Vec<PathBuf> = corpus.iter().map(|(p, _)| p.clone()).collect();
    // On both devices: the worker decodes before the device matters, but the cells it makes
    // run on the device.
    for (webgpu, device) in [(false, "CPU"), (true, "WebGPU")] {
        let Opened {
            s,
            server: _server,
            _driver,
        } = opened_on(webgpu, "")?;
        ensure!(
            s.text("device")? == device,
            "opened on {}",
            s.text("device")?
        );
        upload_and_wait(&s, &real)?;
        ensure!(cell_count(&s)? == 1, "the real cell was not analysed");
        s.upload_many("file-input", &paths)?;
        answered_as_expected(&s, (1, 0), corpus.iter().map(|(_, i)| i))?;
        s.js("document.querySelector('[data-testid=refused]').open = true")?;
        s.screenshot(&format!("hostile-files-{}", device.to_lowercase()))?;
    }
    Ok(())
}

fn refused_count(s: &Session) -> Result<u64> {
    Ok(
        s.js("return document.querySelectorAll('[data-testid=refused-file]').length")?
            .as_u64()
            .unwrap_or(0),
    )
}

/// Wait until every one of `inputs` (given when the page had `before` cells and refused
/// files) is answered: each image a cell, each refused file listed by name with the words its
/// corpus entry expects.
fn answered_as_expected<'a>(
    s: &Session,
    (before, refused_before): (u64, u64),
    inputs: impl Iterator<Item = &'a wbc_hostile::Input> + Clone,
) -> Result<()> {
    let cells = inputs
        .clone()
        .filter(|i| i.expect == wbc_hostile::Expect::Cell)
        .count() as u64;
    let refusals = inputs.clone().count() as u64 - cells;
    s.wait_for("every hostile file answered", LOAD, |s| {
        Ok(
            (cell_count(s)? == before + cells && refused_count(s)? == refused_before + refusals)
                || s.visible("fatal")?,
        )
    })
    .with_context(|| {
        let listed = s.refused_files();
        format!(
            "expected {} cells and {} refused, found {:?} and {:?}: {listed:?}",
            before + cells,
            refused_before + refusals,
            cell_count(s),
            refused_count(s)
        )
    })?;
    ensure!(
        !s.visible("fatal")?,
        "the page stopped: {:?}",
        s.text("fatal")
    );
    let listed = s.refused_files()?;
    for input in inputs {
        if let wbc_hostile::Expect::Refused(words) = input.expect {
            let line = listed.iter().find(|(name, _)| *name == input.name);
            ensure!(
                line.is_some_and(|(_, text)| text.contains(words)),
                "{} ({}): listed as {line:?}, expected the words {words:?}",
                input.name,
                input.what
            );
        }
    }
    Ok(())
}

/// JavaScript for `File` objects made in the page from the test's bytes. A file over 1 MB
/// is sent as its size only (zeros): the page refuses it from `File.size` before reading it.
fn files_in_page(inputs: &[&wbc_hostile::Input]) -> String {
    use base64::Engine;
    let files: Vec<String> = inputs
        .iter()
        .map(|i| {
            let name = serde_json::to_string(&i.name).unwrap_or_default();
            if i.bytes.len() > 1 << 20 {
                format!("new File([new Uint8Array({})], {name})", i.bytes.len())
            } else {
                let b64 = base64::engine::general_purpose::STANDARD.encode(&i.bytes);
                format!("new File([Uint8Array.from(atob('{b64}'), c => c.charCodeAt(0))], {name})")
            }
        })
        .collect();
    format!(
        "const dt = new DataTransfer(); [{}].forEach(f => dt.items.add(f));",
        files.join(", ")
    )
}

/// The hostile corpus again, by the two other doors (issue 18): dropped on the drop zone all
/// at once, then pasted one file at a time as a clipboard holds it, with a real cell under a
/// 300-character name (longer than a Linux file name may be, so only these doors can bring
/// it). Every file gets the answer it gets through the file input.
#[test]
fn hostile_files_dropped_and_pasted() -> Result<()> {
    let Some(real) = real_cell() else {
        return Ok(());
    };
    let Opened {
        s,
        server: _server,
        _driver,
    } = opened("")?;
    let corpus = wbc_hostile::corpus();
    let all: Vec<&wbc_hostile::Input> = corpus.iter().collect();
    s.js(&format!(
        "{} document.querySelector('[data-testid=drop-zone]').dispatchEvent(new DragEvent('drop', {{dataTransfer: dt, bubbles: true, cancelable: true}})); return dt.files.length;",
        files_in_page(&all)
    ))?;
    answered_as_expected(&s, (0, 0), corpus.iter())?;
    let dropped = cell_count(&s)?;
    eprintln!(
        "dropped: {} files, {dropped} cells, {} refused",
        corpus.len(),
        refused_count(&s)?
    );

    let long_name = format!("{}.jpg", "a".repeat(296));
    let pasted = [
        wbc_hostile::Input {
            name: long_name.clone(),
            what: "a real cell under a 300-character name",
            bytes: std::fs::read(&real)?,
            expect: wbc_hostile::Expect::Cell,
        },
        corpus
            .iter()
            .find(|i| i.what.contains("HTML"))
            .context("no HTML in the corpus")?
            .clone(),
    ];
    for input in &pasted {
        let before = (cell_count(&s)?, refused_count(&s)?);
        s.js(&format!(
            "{} document.body.dispatchEvent(new ClipboardEvent('paste', {{clipboardData: dt, bubbles: true, cancelable: true}})); return null;",
            files_in_page(&[input])
        ))?;
        answered_as_expected(&s, before, std::iter::once(input))?;
    }
    ensure!(
        cell_names(&s)?.contains(&long_name),
        "the 300-character name is not kept"
    );
    s.screenshot("hostile-dropped-pasted")?;
    Ok(())
}

/// The privacy check can fail: a request planted in a live page (a POST to another port of
/// this host, an image from another origin, a fetch of a same-origin path that is no asset)
/// is seen by the same record and check `journey` uses, so "no foreign request" there means
/// none was made, not that none could be seen. The planting page has its
/// Content-Security-Policy taken out (that policy would block the requests first); with the
/// policy in place the browser refuses the cross-origin request and logs the violation.
#[test]
fn a_planted_foreign_request_is_caught() -> Result<()> {
    built()?;
    let plant = "fetch('http://127.0.0.1:9/upload', {method: 'POST', body: 'cell', mode: 'no-cors'}).catch(() => {}); \
          new Image().src = 'http://example.invalid/pixel.png'; \
          fetch('/collect?cell=1').catch(() => {}); return null;";
    let without_csp = broken_dist("dist-without-csp", |d| {
        let page = std::fs::read_to_string(d.join("index.html"))?;
        let start = page
            .find("<meta http-equiv=\"Content-Security-Policy\"")
            .context("no policy")?;
        let end = start + page[start..].find("/>").context("meta end")? + 2;
        std::fs::write(
            d.join("index.html"),
            format!("{}{}", &page[..start], &page[end..]),
        )?;
        Ok(())
    })?;
    let driver = Driver::start()?;
    let server = StaticServer::start_without_headers(without_csp.clone())?;
    let s = driver.session(false)?;
    s.goto(&server.url)?;
    open(&s)?;
    s.js(plant)?;
    std::thread::sleep(Duration::from_secs(2));
    let requests = s.requested_urls()?;
    let foreign = foreign_requests(&requests, &server.url, &own_assets(&without_csp)?);
    for planted in [
        "http://127.0.0.1:9/upload",
        "http://example.invalid/pixel.png",
    ] {
        ensure!(
            foreign.iter().any(|u| u == planted),
            "the planted request {planted} was not caught: {foreign:?}"
        );
    }
    ensure!(
        foreign.iter().any(|u| u.contains("/collect?cell=1")),
        "a same-origin request for no asset was not caught: {foreign:?}"
    );

    // The real page: the policy stops the cross-origin POST, and says so.
    let Opened {
        s,
        server: _server,
        _driver,
    } = opened("")?;
    s.js(plant)?;
    std::thread::sleep(Duration::from_secs(2));
    let console = s.console();
    ensure!(
        console.contains("Content Security Policy") && console.contains("127.0.0.1:9"),
        "the policy did not stop the planted request: {console}"
    );
    Ok(())
}

/// Presentation mode: full-screen layout with large type; → and a clicker's PageDown / PageUp
/// step through the loaded cells, I puts the keyboard on the "what if" selectors, Esc leaves.
/// Screenshots at 1920×1080 and at a 1280×720 projector.
#[test]
fn presentation_mode_steps_through_cells_by_key() -> Result<()> {
    let cells = real_cells(3);
    ensure!(cells.len() == 3, "three real cells are needed");
    let Opened {
        s,
        server: _server,
        _driver,
    } = opened("")?;
    s.upload_many("file-input", &cells)?;
    s.wait_for("three cells", LOAD, |s| Ok(cell_count(s)? == 3))?;
    // Full screen takes the headless screen's size: set the screen (viewport) to the hall's.
    let screen = |s: &Session, width: u32, height: u32| {
        s.cdp(
            "Emulation.setDeviceMetricsOverride",
            serde_json::json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false,
                "screenWidth": width, "screenHeight": height}),
        )
    };
    screen(&s, 1920, 1080)?;
    s.click("present")?;
    s.wait_for("presentation mode", Duration::from_secs(10), |s| {
        Ok(s.attr("present-bar", "data-testid")?.is_some())
    })?;
    ensure!(s.js("return document.querySelector('main').dataset.presenting")? == "true");
    let position = |s: &Session| s.text("present-position");
    let first = position(&s)?;
    ensure!(first.ends_with("of 3"), "position: {first}");
    let at = |text: &str| -> usize {
        text.split_whitespace()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let start = at(&first);
    // → , PageDown (a clicker's "next"), then PageUp (its "back").
    for (key, step) in [("\u{E014}", 1), ("\u{E00F}", 1), ("\u{E00E}", -1)] {
        let before = at(&position(&s)?);
        s.press(key)?;
        let expected = ((before as isize - 1 + step).rem_euclid(3) + 1) as usize;
        s.wait_for("the next cell", Duration::from_secs(30), |s| {
            Ok(at(&position(s)?) == expected)
        })?;
    }
    ensure!(
        at(&position(&s)?) == start % 3 + 1,
        "one step on after →, PageDown, PageUp"
    );
    s.wait_for("the cell on show", LOAD, |s| Ok(s.panel_ready()?))?;
    s.screenshot("present-1920x1080")?;
    // A 1280×720 projector (a new screen size may end full screen, and with it presentation
    // mode: enter again if so).
    screen(&s, 1280, 720)?;
    if s.find("present")?.is_some() {
        s.click("present")?;
    }
    s.wait_for("presentation mode", Duration::from_secs(10), |s| {
        Ok(s.js("return document.querySelector('main').dataset.presenting")? == "true")
    })?;
    s.screenshot("present-1280x720")?;
    // I: the keyboard lands on an intervention selector.
    s.press("i")?;
    let focused = s.js("const a = document.activeElement; return a && a.tagName === 'SELECT' && !!a.closest('[data-testid=cell-panel]')")?;
    let active = s.js("const a = document.activeElement; const sel = document.querySelectorAll('[data-testid=cell-panel] .attribute select').length; return [a ? a.tagName : null, sel, document.querySelector('main').dataset.presenting]")?;
    ensure!(
        focused == true,
        "I did not focus the what-if selectors; focus is on {active}"
    );
    s.press("\u{E00C}")?;
    s.wait_for("presentation left", Duration::from_secs(10), |s| {
        Ok(s.js("return document.querySelector('main').dataset.presenting")? == "false")
    })?;
    ensure!(s.find("present")?.is_some(), "the Present button is back");
    Ok(())
}

/// Offline: after one visit the service worker has stored the build and the page says so;
/// with the network gone (DevTools network emulation, and the server closing every
/// connection) a reload opens the app and a cell is analysed.
#[test]
fn works_offline_after_one_visit() -> Result<()> {
    ensure!(
        root().join("dist/sw.js").exists(),
        "build the app first (cargo xtask build writes dist/sw.js)"
    );
    let Some(real) = real_cell() else {
        return Ok(());
    };
    built()?;
    let _driver = Driver::start()?;
    let server = StaticServer::start(root().join("dist"))?;
    let s = _driver.session(false)?;
    // A first visit as a user makes it: a cell chosen as soon as the page shows its file
    // input, before the models are in.
    s.goto(&server.url)?;
    s.wait_for("file input", LOAD, |s| Ok(s.find("file-input")?.is_some()))?;
    let cold = s.text("device").map(|t| t == "…").unwrap_or(true);
    s.upload("file-input", &real)?;
    s.wait_for("the first answer", LOAD, |s| Ok(cell_count(s)? == 1))?;
    // What a first visit downloads up to its first prediction: every body the server sent,
    // the wasm and JSON compressed (the server sends the build's .br copies to Chromium).
    // Storing the build for offline use, and the WebGPU worker (four times the CPU worker's
    // download), wait until the first cell is answered: the service worker is registered
    // then, so nothing it stores is requested before its script. The sample cells and the
    // reference index are shown with the answer, not needed for it, and counted apart.
    let mut first = server.sent();
    if let Some(sw) = first.iter().position(|(p, _, _)| p.starts_with("/sw.js")) {
        first.truncate(sw);
    }
    let for_offline = |path: &str| path.starts_with("/samples/") || path.starts_with("/reference/");
    let first_bytes: usize = first
        .iter()
        .filter(|(p, _, _)| !for_offline(p))
        .map(|(_, n, _)| n)
        .sum();
    if cold {
        let early: Vec<_> = first
            .iter()
            .filter(|(p, _, _)| p.starts_with("/worker_bg.wasm"))
            .collect();
        ensure!(
            early.is_empty(),
            "the WebGPU worker was downloaded before the first prediction: {early:?}"
        );
    }
    open(&s)?;
    for (path, bytes, encoding) in &first {
        eprintln!(
            "  first visit: {path} {bytes} bytes {}",
            encoding.unwrap_or("identity")
        );
    }
    eprintln!(
        "first visit, up to the first prediction: {} files, {first_bytes} bytes",
        first.len()
    );
    for (path, _, encoding) in &first {
        if path.ends_with(".wasm") || path.ends_with(".js") {
            ensure!(encoding.is_some(), "{path} was sent uncompressed");
        }
    }
    s.wait_for("offline-ready", LOAD, |s| {
        Ok(s.attr("offline-ready", "data-ready")?.as_deref() == Some("true"))
    })?;
    let stored = s.text("offline-ready")?;
    eprintln!("offline: {stored}");
    ensure!(stored.contains("MB"), "offline status: {stored}");
    s.screenshot("offline-ready")?;
    // Storing the build for offline use revalidates what the page already has (304) rather
    // than downloading it again.
    let storing = server.sent()[first.len()..].to_vec();
    let again: Vec<_> = storing
        .iter()
        .filter(|(path, n, _)| *n > 0 && first.iter().any(|(p, m, _)| p == path && *m > 0))
        .collect();
    ensure!(again.is_empty(), "downloaded twice: {again:?}");
    // A second visit, online: the service worker answers from its store; at most the
    // browser's check for a new sw.js reaches the network.
    let before = server.sent().len();
    s.goto(&format!("{}/?cpu", server.url))?;
    open(&s)?;
    let second = server.sent()[before..].to_vec();
    let second_bytes: usize = second.iter().map(|(_, n, _)| n).sum();
    eprintln!("second visit: {second:?} ({second_bytes} bytes)");
    ensure!(
        second
            .iter()
            .all(|(path, n, _)| *n == 0 || path.starts_with("/sw.js") || path.starts_with("/?")),
        "a second visit downloaded more than the service worker check: {second:?}"
    );
    std::fs::write(
        artefacts().join("downloads.json"),
        serde_json::to_vec_pretty(&serde_json::json!({
            "first_visit_to_first_prediction": first.iter().map(|(p, n, e)| serde_json::json!({"path": p, "bytes": n, "encoding": e})).collect::<Vec<_>>(),
            "first_visit_bytes": first_bytes,
            "second_visit": second.iter().map(|(p, n, e)| serde_json::json!({"path": p, "bytes": n, "encoding": e})).collect::<Vec<_>>(),
            "second_visit_bytes": second_bytes,
        }))?,
    )?;

    server.set_online(false);
    s.cdp("Network.enable", serde_json::json!({}))?;
    s.cdp(
        "Network.emulateNetworkConditions",
        serde_json::json!({"offline": true, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}),
    )?;
    s.goto(&format!("{}/?cpu", server.url))?;
    open(&s)?;
    // The cell of the first visit comes back from the browser's storage, then one more.
    s.wait_for("the stored cell", Duration::from_secs(30), |s| {
        Ok(cell_count(s)? == 1)
    })?;
    upload_and_wait(&s, &real)?;
    ensure!(
        cell_count(&s)? == 2 && !s.visible("error")?,
        "no cell analysed offline: {:?}",
        s.text("error")
    );
    s.screenshot("offline-analysed")?;
    Ok(())
}

/// The quiz: on the sample cells (which carry their WBCAtt labels), a cell-type round and an
/// all-attributes round are marked against the label beside the model's answer; the score is
/// kept across a reload and goes with "reset".
#[test]
fn quiz_round_and_score_kept_across_a_reload() -> Result<()> {
    let Opened { s, server, _driver } = opened("")?;
    s.click("view-quiz")?;
    s.wait_for("the quiz", Duration::from_secs(10), |s| {
        Ok(s.find("quiz-load-samples")?.is_some())
    })?;
    s.click("quiz-load-samples")?;
    s.wait_for("labelled cells to ask about", LOAD, |s| {
        Ok(s.find("quiz-next")?.is_some())
    })?;
    let choose_all = "document.querySelectorAll('[data-testid^=quiz-choice-]').forEach(e => { e.value = '0'; e.dispatchEvent(new Event('change', {bubbles: true})); }); return document.querySelectorAll('[data-testid^=quiz-choice-]').length";
    let score = |s: &Session, what: &str| -> Result<u64> {
        Ok(s.attr("quiz-score", what)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(u64::MAX))
    };

    // A cell-type round.
    s.click("quiz-next")?;
    s.wait_for("a question", Duration::from_secs(30), |s| {
        Ok(s.find("quiz-question")?.is_some())
    })?;
    ensure!(s.js(choose_all)? == 1, "a type question has one choice");
    s.click("quiz-answer")?;
    s.wait_for("the marking", Duration::from_secs(10), |s| {
        Ok(s.find("quiz-result")?.is_some())
    })?;
    ensure!(s.find("quiz-row-cell_type")?.is_some(), "no cell-type row");
    ensure!(score(&s, "data-questions")? == 1 && score(&s, "data-asked")? == 1);

    // The type and all 11 attributes.
    s.js("const m = document.querySelector('[data-testid=quiz-mode]'); m.value = 'all'; m.dispatchEvent(new Event('change', {bubbles: true})); return null")?;
    s.click("quiz-next")?;
    s.wait_for("a question", Duration::from_secs(30), |s| {
        Ok(s.find("quiz-question")?.is_some())
    })?;
    let asked = s.js(choose_all)?.as_u64().unwrap_or(0);
    ensure!(
        asked == 12,
        "type and 11 attributes expected, {asked} asked"
    );
    s.click("quiz-answer")?;
    s.wait_for("the marking", Duration::from_secs(10), |s| {
        Ok(s.find("quiz-result")?.is_some())
    })?;
    let rows =
        s.js("return document.querySelectorAll('[data-testid=quiz-result] tbody tr').length")?;
    ensure!(rows == 12, "{rows} marked rows");
    ensure!(score(&s, "data-questions")? == 2 && score(&s, "data-asked")? == 13);
    let learner = score(&s, "data-learner")?;
    let model = score(&s, "data-model")?;
    eprintln!("quiz: learner {learner} of 13, model {model} of 13 (the learner always chose the first value)");
    s.screenshot("quiz")?;

    // Kept across a reload; gone with reset.
    s.goto(&server.url)?;
    open(&s)?;
    s.click("view-quiz")?;
    s.wait_for("the quiz", Duration::from_secs(10), |s| {
        Ok(s.find("quiz-score")?.is_some())
    })?;
    // The score comes back from the browser's storage (IndexedDB) just after the page opens.
    s.wait_for("the stored score", Duration::from_secs(10), |s| {
        Ok(score(s, "data-questions")? == 2)
    })?;
    ensure!(
        score(&s, "data-learner")? == learner,
        "the score did not survive the reload"
    );
    s.click("quiz-reset")?;
    ensure!(score(&s, "data-questions")? == 0);
    s.goto(&server.url)?;
    open(&s)?;
    s.click("view-quiz")?;
    s.wait_for("the quiz", Duration::from_secs(10), |s| {
        Ok(s.find("quiz-score")?.is_some())
    })?;
    std::thread::sleep(Duration::from_secs(2));
    ensure!(score(&s, "data-questions")? == 0, "reset did not last");

    // "Clear session" takes the score too.
    s.wait_for("the restored sample cells", LOAD, |s| {
        Ok(s.find("quiz-next")?.is_some())
    })?;
    s.click("quiz-next")?;
    s.wait_for("a question", Duration::from_secs(30), |s| {
        Ok(s.find("quiz-question")?.is_some())
    })?;
    s.js(choose_all)?;
    s.click("quiz-answer")?;
    s.wait_for("scored", Duration::from_secs(10), |s| {
        Ok(score(s, "data-questions")? == 1)
    })?;
    clear_session(&s)?;
    ensure!(score(&s, "data-questions")? == 0, "clearing left the score");
    ensure!(stored(&s)?.cells == 0, "clearing left stored cells");
    Ok(())
}

/// What the page keeps in the browser: records per IndexedDB store, and every URL in Cache
/// Storage (the service worker's copy of the app).
#[derive(Debug, serde::Deserialize)]
struct Kept {
    stores: std::collections::BTreeMap<String, u64>,
    cached: Vec<String>,
    #[serde(skip)]
    cells: u64,
}

fn stored(s: &Session) -> Result<Kept> {
    let value = s.js_async(
        "const done = arguments[0];
         const open = indexedDB.open('wbc-explorer-session');
         open.onerror = () => done({error: String(open.error)});
         open.onsuccess = async () => {
           const db = open.result, stores = {};
           for (const name of db.objectStoreNames) {
             stores[name] = await new Promise((ok, fail) => {
               const q = db.transaction(name).objectStore(name).count();
               q.onsuccess = () => ok(q.result); q.onerror = () => fail(q.error);
             });
           }
           db.close();
           const cached = [];
           for (const k of await caches.keys()) {
             const c = await caches.open(k);
             for (const r of await c.keys()) cached.push(r.url);
           }
           done({stores, cached});
         };",
    )?;
    ensure!(value.get("error").is_none(), "storage unreadable: {value}");
    let mut kept: Kept = serde_json::from_value(value)?;
    kept.cells = kept.stores.get("cells").copied().unwrap_or(0);
    Ok(kept)
}

/// Press "clear session", confirm, and wait until the page says what it removed.
fn clear_session(s: &Session) -> Result<String> {
    s.click("clear-session")?;
    s.click("clear-session-confirm")?;
    s.wait_for("the session cleared", Duration::from_secs(10), |s| {
        Ok(
            s.find("session-note")?.is_some()
                && s.text("session-note")?.contains("Session cleared"),
        )
    })?;
    s.text("session-note")
}

fn cell_names(s: &Session) -> Result<Vec<String>> {
    let names = s.js(
        "return [...document.querySelectorAll('[data-testid=cell-list] img')].map(i => i.alt)",
    )?;
    Ok(serde_json::from_value(names)?)
}

/// A session survives a reload (issue 16): three analysed cells come back with their
/// thumbnails and results, the cell on show with its edit and the same prediction, and the
/// table's filter. "Clear session" (issue 18) removes it from the page and from the browser:
/// every IndexedDB store is empty afterwards, Cache Storage holds only the app's own files,
/// and a reload brings nothing back.
#[test]
fn session_restored_after_reload_and_gone_after_clear() -> Result<()> {
    let cells = real_cells(3);
    if cells.len() < 3 {
        return Ok(());
    }
    let Opened { s, server, _driver } = opened("")?;
    s.upload_many("file-input", &cells)?;
    s.wait_for("three cells", LOAD, |s| Ok(cell_count(s)? == 3))?;
    s.wait_for("idle", LOAD, |s| Ok(s.text("status")? == "idle"))?;
    s.wait_for("the panel built", Duration::from_secs(10), |s| {
        s.panel_ready()
    })?;
    let names = cell_names(&s)?;
    let shown = s
        .attr("cell-panel", "data-name")?
        .context("no cell on show")?;
    let before = prediction(&s)?;
    set_attribute(&s, "granule_type", "coarse")?;
    s.wait_for("edit applied", Duration::from_secs(10), |s| {
        Ok(s.attr("attribute-granule_type", "data-edited")?.as_deref() == Some("true"))
    })?;
    s.click("view-table")?;
    let part = &names[1][..names[1].len().min(6)];
    s.js(&format!("const i = document.querySelector('[data-testid=filter-text]'); i.value = '{part}'; i.dispatchEvent(new Event('input', {{bubbles: true}})); return null"))?;
    s.click("view-explorer")?;
    s.wait_for("three cells stored", Duration::from_secs(10), |s| {
        Ok(stored(s)?.cells == 3)
    })?;

    s.goto(&server.url)?;
    open(&s)?;
    s.wait_for("the cells restored", Duration::from_secs(30), |s| {
        Ok(cell_count(s)? == 3)
    })?;
    ensure!(
        cell_names(&s)? == names,
        "restored in another order: {:?}",
        cell_names(&s)?
    );
    let note = s.text("session-note")?;
    ensure!(
        note.contains("3 cells") && note.contains("restored"),
        "note: {note}"
    );
    s.wait_for("the cell on show, analysed again", LOAD, |s| {
        Ok(s.panel_ready()?)
    })?;
    ensure!(
        s.attr("cell-panel", "data-name")?.as_deref() == Some(shown.as_str()),
        "another cell on show"
    );
    ensure!(
        s.attr("attribute-granule_type", "data-edited")?.as_deref() == Some("true")
            && s.attr("attribute-granule_type", "data-value")?.as_deref() == Some("coarse"),
        "the edit did not survive the reload"
    );
    let after = prediction(&s)?;
    ensure!(
        before.len() == after.len() && before.iter().zip(&after).all(|(a, b)| (a - b).abs() < 1e-4),
        "the prediction changed across the reload"
    );
    s.screenshot("session-restored")?;
    s.click("view-table")?;
    let filter = s.js("return document.querySelector('[data-testid=filter-text]').value")?;
    ensure!(
        filter == serde_json::json!(part),
        "table filter after the reload: {filter}"
    );
    s.click("view-explorer")?;

    let note = clear_session(&s)?;
    eprintln!("{note}");
    ensure!(note.contains("3 stored cells"), "{note}");
    ensure!(cell_count(&s)? == 0, "cells left on the page");
    s.screenshot("session-cleared")?;
    let kept = stored(&s)?;
    ensure!(
        kept.stores.len() == 3 && kept.stores.values().all(|&n| n == 0),
        "left in IndexedDB: {kept:?}"
    );
    let assets = own_assets(&root().join("dist"))?;
    let foreign = foreign_requests(&kept.cached, &server.url, &assets);
    ensure!(
        foreign.is_empty(),
        "Cache Storage holds more than the app: {foreign:?}"
    );
    ensure!(
        !kept
            .cached
            .iter()
            .any(|u| names.iter().any(|n| u.contains(n.as_str()))),
        "a cell's file in Cache Storage"
    );
    s.goto(&server.url)?;
    open(&s)?;
    std::thread::sleep(Duration::from_secs(2));
    ensure!(cell_count(&s)? == 0, "cells came back after clearing");
    s.click("view-table")?;
    let filter = s.js("return document.querySelector('[data-testid=filter-text]').value")?;
    ensure!(
        filter == serde_json::json!(""),
        "table filter after clearing: {filter}"
    );
    Ok(())
}

/// Accessibility: axe-core (npm, installed by `cargo xtask test`) over the explorer with a cell,
/// the table, the glossary, the quiz and presentation mode: no serious or critical violation.
#[test]
fn no_serious_accessibility_violations() -> Result<()> {
    built()?;
    let axe_path = root().join("target/npm/node_modules/axe-core/axe.min.js");
    let axe = std::fs::read_to_string(&axe_path).with_context(|| {
        format!(
            "{} (cargo xtask setup --browser installs it)",
            axe_path.display()
        )
    })?;
    let Some(real) = real_cell() else {
        return Ok(());
    };
    let driver = Driver::start()?;
    let server = StaticServer::start(root().join("dist"))?;
    let s = driver.session(false)?;
    s.goto(&server.url)?;
    open(&s)?;
    upload_and_wait(&s, &real)?;
    s.js(&format!("{axe}\nreturn null;"))?;
    let check = |s: &Session, view: &str| -> Result<Vec<String>> {
        let result = s.js_async(
            "const done = arguments[0]; axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical').map(v => v.id + ' (' + v.impact + '): ' + v.help + ' — ' + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', ')))).catch(e => done(['axe failed: ' + e]));",
        )?;
        let found: Vec<String> = serde_json::from_value(result)?;
        for v in &found {
            eprintln!("{view}: {v}");
        }
        Ok(found)
    };
    // Every view in turn, back to the explorer; in a narrow window, each view must also fit
    // the screen's width (nothing to scroll sideways but the table's own scroller).
    let every_view = |s: &Session, how: &str, narrow: Option<u32>| -> Result<Vec<String>> {
        let mut found = Vec::new();
        for (view, button) in [
            ("explorer", "view-explorer"),
            ("table", "view-table"),
            ("glossary", "view-glossary"),
            ("quiz", "view-quiz"),
            ("dataset", "view-dataset"),
        ] {
            s.click(button)?;
            std::thread::sleep(Duration::from_millis(300));
            found.extend(check(s, &format!("{view}, {how}"))?);
            if let Some(width) = narrow {
                let wide = s.js("return document.documentElement.scrollWidth")?;
                if wide.as_u64().is_none_or(|w| w > u64::from(width)) {
                    found.push(format!(
                        "{view}, {how}: the page is {wide} px wide on a {width} px screen"
                    ));
                }
            }
        }
        s.click("view-explorer")?;
        Ok(found)
    };
    let mut all = every_view(&s, "light", None)?;
    // Dark mode, as a reader who chose it in their system sees the page.
    s.cdp(
        "Emulation.setEmulatedMedia",
        serde_json::json!({"features": [{"name": "prefers-color-scheme", "value": "dark"}]}),
    )?;
    let background = s.js("return getComputedStyle(document.body).backgroundColor")?;
    let dark = background
        .as_str()
        .and_then(|c| {
            c.trim_start_matches("rgb(")
                .trim_end_matches(')')
                .split(',')
                .next()?
                .trim()
                .parse::<u32>()
                .ok()
        })
        .is_some_and(|red| red < 64);
    if !dark {
        all.push(format!(
            "dark mode: the page's background stays {background}"
        ));
    }
    all.extend(every_view(&s, "dark", None)?);
    s.screenshot("explorer-dark")?;
    // A phone's width (390 px), in the light scheme.
    s.cdp(
        "Emulation.setEmulatedMedia",
        serde_json::json!({"features": []}),
    )?;
    s.cdp(
        "Emulation.setDeviceMetricsOverride",
        serde_json::json!({"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": true}),
    )?;
    std::thread::sleep(Duration::from_millis(300));
    all.extend(every_view(&s, "390 px", Some(390))?);
    s.screenshot("explorer-narrow")?;
    s.cdp(
        "Emulation.clearDeviceMetricsOverride",
        serde_json::json!({}),
    )?;
    std::thread::sleep(Duration::from_millis(300));
    s.click("present")?;
    std::thread::sleep(Duration::from_millis(300));
    all.extend(check(&s, "presentation")?);
    ensure!(
        all.is_empty(),
        "{} serious or critical violations: {all:#?}",
        all.len()
    );
    Ok(())
}

/// A batch of 200 files with 20 bad ones mixed in (the corpus's refusals, some twice under
/// other names), chosen at once: the 180 real cells are analysed, the 20 are listed with their
/// names and reasons, and the batch runs to its end.
#[test]
fn a_batch_with_bad_files_mixed_in_finishes() -> Result<()> {
    let good: Vec<PathBuf> = [
        "basophil",
        "eosinophil",
        "lymphocyte",
        "monocyte",
        "neutrophil",
    ]
    .iter()
    .flat_map(|class| pbc_cells(class).into_iter().take(36))
    .collect();
    ensure!(good.len() == 180, "{} real cells", good.len());
    let dir = artefacts().join("mixed-batch");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let refused: Vec<wbc_hostile::Input> = wbc_hostile::corpus()
        .into_iter()
        .filter(|i| i.expect != wbc_hostile::Expect::Cell && i.bytes.len() < 1 << 20)
        .collect();
    let mut bad = Vec::new();
    for k in 0..20 {
        let input = &refused[k % refused.len()];
        let path = dir.join(format!("{k:02}-{}", input.name));
        std::fs::write(&path, &input.bytes)?;
        bad.push(path);
    }
    // Bad files spread through the batch, one after every nine good ones.
    let mut batch = Vec::new();
    for (i, cell) in good.iter().enumerate() {
        batch.push(cell.clone());
        if i % 9 == 8 {
            batch.push(bad[i / 9].clone());
        }
    }
    ensure!(batch.len() == 200);
    let Opened {
        s,
        server: _server,
        _driver,
    } = opened("")?;
    s.upload_many("file-input", &batch)?;
    s.wait_for("the batch of 200", LOAD, |s| {
        Ok(s.text("batch-progress")
            .is_ok_and(|t| t.starts_with("200 / 200"))
            || s.visible("fatal")?)
    })?;
    ensure!(
        !s.visible("fatal")?,
        "the page stopped: {:?}",
        s.text("fatal")
    );
    let listed: Vec<String> = s
        .refused_files()?
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    ensure!(
        cell_count(&s)? == 180 && listed.len() == 20,
        "{} cells and {} refusals for 180 good and 20 bad files",
        cell_count(&s)?,
        listed.len()
    );
    for path in &bad {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        ensure!(
            listed.iter().any(|l| *l == name),
            "{name} is not listed as refused"
        );
    }
    eprintln!(
        "a batch of 200 with 20 bad files: 180 cells, 20 refusals named ({})",
        s.text("batch-progress")?
    );
    Ok(())
}

/// The README's picture: the top of the cell panel (the cell with its overlay, the type and
/// both opinions), as a small JPEG in target/e2e/readme-screenshot.jpg (docs/screenshot.jpg
/// is a copy of it).
fn readme_picture(s: &Session) -> Result<()> {
    use base64::Engine;
    let rect = s.js("const r = document.querySelector('[data-testid=cell-panel]').getBoundingClientRect(); return [r.left + window.scrollX, r.top + window.scrollY, r.width];")?;
    let at = |i: usize| rect[i].as_f64().unwrap_or(0.0);
    let shot = s.cdp(
        "Page.captureScreenshot",
        serde_json::json!({"format": "jpeg", "quality": 80, "captureBeyondViewport": true,
            "clip": {"x": at(0), "y": at(1), "width": at(2), "height": 560.0, "scale": 0.75}}),
    )?;
    let jpeg =
        base64::engine::general_purpose::STANDARD.decode(shot["data"].as_str().unwrap_or(""))?;
    ensure!(jpeg.len() > 10_000, "the README picture is empty");
    std::fs::write(artefacts().join("readme-screenshot.jpg"), jpeg)?;
    Ok(())
}

/// A running command, stopped when dropped.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The first line of an HTTP answer and its headers, for `path` at `url`.
fn head_of(url: &str, path: &str) -> Result<String> {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr)?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n")?;
    let mut all = Vec::new();
    stream.read_to_end(&mut all)?;
    let text = String::from_utf8_lossy(&all);
    Ok(text.split("\r\n\r\n").next().unwrap_or("").to_string())
}

/// Wait until something answers HTTP at `url`.
fn answering(url: &str) -> Result<()> {
    let start = std::time::Instant::now();
    while head_of(url, "/").is_err() {
        ensure!(
            start.elapsed() < Duration::from_secs(120),
            "{url} never answered"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// Start `command`, which serves the app on `port`, and check that it answers the page with
/// the app's headers.
fn serving_the_app(command: &mut std::process::Command, port: u16, what: &str) -> Result<Running> {
    let running = Running(command.spawn()?);
    let url = format!("http://127.0.0.1:{port}");
    answering(&url)?;
    let head = head_of(&url, "/")?;
    ensure!(
        head.starts_with("HTTP/1.1 200") && head.contains("Content-Security-Policy"),
        "{what} answered: {head}"
    );
    Ok(running)
}

/// A free TCP port on this machine.
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The presenter's path (README): `cargo xtask serve --no-build --port N` serves the dist/
/// already built, on that port, with the app's headers; `cargo xtask dist --no-build` makes
/// a folder with the app, its own server program, the licences and a note on opening it
/// offline; copied elsewhere, that folder's `./serve` serves the app, which analyses a cell.
#[test]
fn the_presenter_path_serves_the_built_app_without_a_rebuild() -> Result<()> {
    built()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let xtask = |args: &[&str]| {
        let mut c = std::process::Command::new(&cargo);
        c.args(["run", "-q", "-p", "xtask", "--"])
            .args(args)
            .current_dir(root());
        c
    };
    // serve --no-build on a port of our choosing.
    let port = free_port()?;
    let mut serve = xtask(&["serve", "--no-build", "--port", &port.to_string()]);
    serve.stderr(std::process::Stdio::null());
    drop(serving_the_app(&mut serve, port, "serve --no-build")?);

    // dist: the folder a presenter copies to a laptop.
    let made = artefacts().join("presenter");
    let _ = std::fs::remove_dir_all(&made);
    let out = made.join("wbc-explorer");
    let status = xtask(&["dist", "--no-build", "--out", &out.display().to_string()]).status()?;
    ensure!(status.success(), "cargo xtask dist failed");
    for file in [
        "serve",
        "headers.toml",
        "HOW-TO-OPEN.txt",
        "LICENSE",
        "DATA-LICENCES.md",
        "app/index.html",
        "app/samples/NOTICE.txt",
    ] {
        ensure!(out.join(file).is_file(), "dist made no {file}");
    }
    ensure!(
        made.join("wbc-explorer.tar.gz").is_file(),
        "dist made no archive"
    );
    let note = std::fs::read_to_string(out.join("HOW-TO-OPEN.txt"))?;
    ensure!(
        note.lines().count() == 2 && note.contains("offline: ready"),
        "{note}"
    );
    // Moved elsewhere, as to a laptop: its own server serves it.
    let laptop = made.join("laptop");
    std::fs::rename(&out, &laptop)?;
    let port = free_port()?;
    let mut serve = std::process::Command::new(laptop.join("serve"));
    serve
        .args(["--port", &port.to_string()])
        .stdout(std::process::Stdio::null());
    let _served = serving_the_app(&mut serve, port, "the copied folder's server")?;
    let url = format!("http://127.0.0.1:{port}");
    let Some(real) = real_cell() else {
        return Ok(());
    };
    let driver = Driver::start()?;
    let s = driver.session(false)?;
    s.goto(&format!("{url}/?cpu"))?;
    open(&s)?;
    upload_and_wait(&s, &real)?;
    ensure!(
        cell_count(&s)? == 1 && s.panel_ready()?,
        "the copied app analysed no cell"
    );
    Ok(())
}
