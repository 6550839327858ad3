//! The morphology analyser in headless Chromium on the CPU path: the built-in sample cells
//! and 150 more real PBC test cells (200 in all) go through the page; the table has one row
//! per cell, a combined filter and a sort work, the keyboard opens a cell and back keeps the
//! filters, and the CSV export equals `wbc analyse --out` on the same files (types and
//! attribute values), as it does for 10 cells on WebGPU; the dataset view audits the 200 cells
//! against their WBCAtt labels; a folder is taken through the folder picker. Screenshots go
//! to target/e2e/.

use anyhow::{ensure, Context, Result};
use std::path::PathBuf;
use std::time::Duration;
use wbc_e2e::{
    artefacts, equals_cli, exported_csv, parse_csv, root, same_types_and_attributes, Driver,
    Session, StaticServer,
};

const LOAD: Duration = Duration::from_secs(600);

/// `n` real PBC cells from the official test split that are not among the sample cells.
fn more_test_cells(n: usize) -> Result<Vec<PathBuf>> {
    let data = root().join("../shared/data");
    let csv = data.join("wbcatt/pbc_attr_v1_test.csv");
    let text = std::fs::read_to_string(&csv)
        .with_context(|| format!("{} (the WBCAtt labels are needed)", csv.display()))?;
    let samples = std::fs::read_to_string(root().join("public/samples/labels.csv"))?;
    let shipped = wbc_core::audit::parse_labels(&samples).map_err(anyhow::Error::msg)?;
    let cells = wbc_core::dataset::parse_csv(&text)
        .map_err(|(line, e)| anyhow::anyhow!("{} line {line}: {e}", csv.display()))?;
    let files: Vec<PathBuf> = cells
        .iter()
        .filter(|c| !shipped.contains_key(&c.img_name))
        .map(|c| data.join("pbc").join(&c.path))
        // Every 7th row: a spread over the five types.
        .step_by(7)
        .take(n)
        .collect();
    ensure!(files.len() == n && files.iter().all(|f| f.exists()));
    Ok(files)
}

/// Wait until the table has put in every row (it fills a few dozen rows per frame).
fn table_filled(s: &Session) -> Result<()> {
    s.wait_for("the table's rows", Duration::from_secs(20), |s| {
        Ok(s.js("const t = document.querySelector('[data-testid=batch-table]'); return !!t && !t.dataset.rowsPending")? == serde_json::json!(true))
    })
}

fn rows(s: &Session) -> Result<Vec<String>> {
    table_filled(s)?;
    let v = s.js("return [...document.querySelectorAll('[data-testid=batch-table] tbody tr')].map(r => r.dataset.path)")?;
    Ok(serde_json::from_value(v)?)
}

/// Column `col` (0-based) of every shown row, as text.
fn column(s: &Session, col: usize) -> Result<Vec<String>> {
    table_filled(s)?;
    let v = s.js(&format!("return [...document.querySelectorAll('[data-testid=batch-table] tbody tr')].map(r => r.children[{col}].innerText.split(' ')[0])"))?;
    Ok(serde_json::from_value(v)?)
}

fn choose(s: &Session, testid: &str, value: &str) -> Result<()> {
    s.js(&format!("const e=document.querySelector('[data-testid=\"{testid}\"]'); e.value='{value}'; e.dispatchEvent(new Event('change', {{bubbles: true}}));"))?;
    Ok(())
}

#[test]
fn analyser_table_on_200_real_cells() -> Result<()> {
    let dist = root().join("dist");
    ensure!(
        dist.join("samples/index.json").exists(),
        "build the app first: cargo xtask build (dist/samples is missing)"
    );
    let server = StaticServer::start(dist)?;
    let driver = Driver::start()?;
    let s = driver.session(false)?;
    s.goto(&server.url)?;
    s.wait_for("sample button", LOAD, |s| {
        Ok(s.find("sample-cells")?.is_some())
    })?;

    // The page must answer a click within 200 ms throughout a batch (issue 18): once the
    // page is ready, every main-thread task over 50 ms is recorded (PerformanceObserver
    // 'longtask') while the cells come in, first with the explorer on show, then the table.
    // The test's own screenshot (Chrome paints the page for it) is left out.
    s.wait_for("ready", LOAD, |s| Ok(s.text("status")? == "idle"))?;
    // Once the page is ready it stores its offline copy (the service worker fetches the whole
    // build, 50 MB in this build): on two cores that stretches every main-thread task. The
    // bound is on the page's own work, so the batch starts once the copy is stored.
    s.wait_for("the offline copy", LOAD, |s| {
        Ok(s.attr("offline-ready", "data-ready")?.as_deref() == Some("true"))
    })?;
    s.js("window.__long = []; new PerformanceObserver(l => { for (const e of l.getEntries()) window.__long.push([e.startTime, e.duration]); }).observe({type: 'longtask'}); return null")?;

    // The sample cells alone, then 150 more through the file input: 200 cells.
    s.js("document.querySelector('[data-testid=sample-cells]').click()")?;
    s.wait_for("batch progress", LOAD, |s| {
        Ok(s.find("batch-progress")?.is_some())
    })?;
    s.wait_for("the 50 sample cells", LOAD, |s| {
        Ok(s.text("batch-progress")?.starts_with("50 / 50"))
    })?;
    let extra = more_test_cells(150)?;
    s.upload_many("file-input", &extra)?;
    s.wait_for("progress with a rate", LOAD, |s| {
        Ok(s.text("batch-progress")?.contains("cells/s"))
    })?;
    let shot_from = s.js("return performance.now()")?.as_f64().unwrap_or(0.0);
    s.screenshot("analyser-progress")?;
    let shot_to = s.js("return performance.now()")?.as_f64().unwrap_or(0.0);
    s.js("document.querySelector('[data-testid=view-table]').click()")?;
    let started = std::time::Instant::now();
    s.wait_for("200 cells", LOAD, |s| {
        Ok(s.text("batch-progress")?.starts_with("150 / 150") || s.visible("fatal")?)
    })?;
    ensure!(
        !s.visible("fatal")?,
        "the worker stopped: {:?}",
        s.text("fatal")
    );
    let progress = s.text("batch-progress")?;
    eprintln!(
        "150 cells in {:.1} s on the CPU path ({progress})",
        started.elapsed().as_secs_f64()
    );
    let tasks: Vec<(f64, f64)> = serde_json::from_value(s.js("return window.__long")?)?;
    let page_tasks: Vec<(f64, f64)> = tasks
        .into_iter()
        .filter(|(start, length)| start + length < shot_from || *start > shot_to)
        .collect();
    let longest = page_tasks.iter().map(|t| t.1).fold(0.0, f64::max);
    eprintln!(
        "200 cells: longest main-thread task {longest:.0} ms; tasks over 50 ms (ms after the page opened, ms long): {:?} (the screenshot's own task left out)",
        page_tasks
            .iter()
            .map(|&(start, length)| (start.round() as u64, length.round() as u64))
            .collect::<Vec<_>>()
    );
    // The bound is 200 ms. The first cell's panel is built in five steps a frame apart and
    // the table fills 40 rows a frame (runs measured 148 and 155 ms longest); one task may
    // reach 300 ms, a margin for a loaded machine. A panel or table built in one task, as
    // before, fails here.
    let over: Vec<f64> = page_tasks
        .iter()
        .map(|t| t.1)
        .filter(|&l| l >= 200.0)
        .collect();
    ensure!(
        over.len() <= 1 && longest < 300.0,
        "the page was busy for {longest:.0} ms at once during the batch ({} tasks over 200 ms)",
        over.len()
    );

    // The table: one row per cell.
    s.js("document.querySelector('[data-testid=view-table]').click()")?;
    s.wait_for("the table", LOAD, |s| Ok(s.find("batch-table")?.is_some()))?;
    let all = rows(&s)?;
    ensure!(all.len() == 200, "{} rows for 200 cells", all.len());
    s.screenshot("analyser-table")?;

    // Sort by file name, and back the other way.
    s.js("[...document.querySelectorAll('[data-testid=batch-table] th button')].find(b => b.innerText.startsWith('file')).click()")?;
    let sorted = rows(&s)?;
    let mut expected = all.clone();
    expected.sort_by_key(|n| n.to_lowercase());
    ensure!(sorted == expected, "rows not sorted by name");
    s.js("[...document.querySelectorAll('[data-testid=batch-table] th button')].find(b => b.innerText.startsWith('file')).click()")?;
    expected.reverse();
    ensure!(rows(&s)? == expected, "second click does not reverse");

    // Filters: neutrophils, then big neutrophils; the differential count follows.
    choose(&s, "filter-type", "4")?;
    let neutrophils = rows(&s)?;
    ensure!(
        !neutrophils.is_empty() && column(&s, 2)?.iter().all(|t| t == "Neutrophil"),
        "type filter"
    );
    let diff = s.text("differential")?;
    ensure!(
        diff.starts_with(&format!("{} of 200 cells", neutrophils.len())),
        "differential count: {diff}"
    );
    choose(&s, "filter-cell_size", "0")?;
    let big = rows(&s)?;
    ensure!(
        big.len() < neutrophils.len() && column(&s, 4)?.iter().all(|v| v == "big"),
        "combined filter: {} of {} neutrophils big",
        big.len(),
        neutrophils.len()
    );
    s.screenshot("analyser-filtered")?;

    // Keyboard: the second row opens with ArrowDown, Enter; back keeps the filters. A screen
    // reader is told where the arrow keys moved: the grid's active descendant is the row
    // marked selected.
    s.js("const t=document.querySelector('[data-testid=batch-table]'); t.focus(); t.dispatchEvent(new KeyboardEvent('keydown', {key: 'ArrowDown', bubbles: true}));")?;
    std::thread::sleep(Duration::from_millis(200));
    let told = s.js("const t=document.querySelector('[data-testid=batch-table]'); const rows=[...t.querySelectorAll('tbody tr')]; const sel=rows.filter(r => r.getAttribute('aria-selected') === 'true'); return [t.getAttribute('role'), t.getAttribute('aria-activedescendant'), sel.length, sel.length ? sel[0].id : null, rows.indexOf(sel[0])];")?;
    ensure!(
        told[0] == "grid"
            && told[2] == 1
            && told[4] == 1
            && told[1].is_string()
            && told[1] == told[3],
        "the table does not tell where the cursor is (role, active descendant, selected rows, its id, its position): {told}"
    );
    s.js("const t=document.querySelector('[data-testid=batch-table]'); t.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', bubbles: true}));")?;
    s.wait_for("the explorer", LOAD, |s| Ok(s.panel_ready()?))?;
    s.js("document.querySelector('[data-testid=view-table]').click()")?;
    s.wait_for("the table again", LOAD, |s| {
        Ok(s.find("batch-table")?.is_some())
    })?;
    ensure!(rows(&s)? == big, "the filters were lost on the way back");

    // Export the whole table as CSV and compare it with the CLI on the same files.
    choose(&s, "filter-type", "")?;
    choose(&s, "filter-cell_size", "")?;
    ensure!(rows(&s)?.len() == 200);
    let page_csv = exported_csv(&s)?;
    std::fs::write(artefacts().join("analyser-page.csv"), &page_csv)?;
    let wbc = std::env::var("WBC_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join("target/debug/wbc"));
    let inputs: Vec<PathBuf> = std::iter::once(root().join("public/samples"))
        .chain(extra.iter().cloned())
        .collect();
    let (page, cli) = equals_cli(
        &page_csv,
        &wbc,
        &inputs,
        &artefacts().join("analyser-cli.csv"),
    )?;
    ensure!(page.len() == 200, "{} rows", page.len());
    eprintln!("page CSV export equals wbc analyse --out on 200 cells (type and 11 attributes)");

    // The same on WebGPU (SwiftShader here, slow: 10 cells).
    let g = driver.session(true)?;
    g.goto(&server.url)?;
    // The header appears once the page's wasm has started, which may be after the load event.
    g.wait_for("WebGPU ready", LOAD, |s| {
        Ok(s.text("device").is_ok_and(|d| d == "WebGPU"))
    })?;
    g.upload_many("file-input", &extra[..10])?;
    g.wait_for("10 cells on WebGPU", LOAD, |s| {
        Ok(s.text("batch-progress")
            .is_ok_and(|t| t.starts_with("10 / 10")))
    })?;
    g.js("document.querySelector('[data-testid=view-table]').click()")?;
    g.wait_for("the WebGPU table", LOAD, |s| Ok(rows(s)?.len() == 10))?;
    let gpu = parse_csv(&exported_csv(&g)?);
    ensure!(gpu.len() == 10, "{} WebGPU rows", gpu.len());
    same_types_and_attributes(&gpu, &cli)?;
    eprintln!("WebGPU: 10 cells, the same types and attribute values as the CLI");
    drop(g);

    // Dataset view: WBCAtt labels for these 200 cells give accuracy, confusion and the error
    // rate per attribute value; a bad labels file is refused and the loaded labels stay.
    let mut labels = std::fs::read_to_string(root().join("public/samples/labels.csv"))?;
    let test_csv =
        std::fs::read_to_string(root().join("../shared/data/wbcatt/pbc_attr_v1_test.csv"))?;
    for f in &extra {
        let name = f
            .file_name()
            .and_then(|n| n.to_str())
            .context("file name")?;
        let line = test_csv
            .lines()
            .find(|l| l.starts_with(&format!("{name},")))
            .context("label line")?;
        labels.push_str(line);
        labels.push('\n');
    }
    let labels_file = artefacts().join("analyser-labels.csv");
    std::fs::write(&labels_file, labels)?;
    s.js("document.querySelector('[data-testid=view-dataset]').click()")?;
    s.wait_for("the dataset view", LOAD, |s| {
        Ok(s.find("labels-input")?.is_some())
    })?;
    s.upload("labels-input", &labels_file)?;
    s.wait_for("the audit", LOAD, |s| {
        Ok(s.find("audit-summary")?.is_some())
    })?;
    let summary = s.text("audit-summary")?;
    ensure!(
        summary.starts_with("200 labelled cells: direct type"),
        "{summary}"
    );
    let value_rows = s
        .js("return document.querySelectorAll('[data-testid=errors-by-value] tr').length")?
        .as_u64()
        .unwrap_or(0);
    ensure!(
        value_rows > 20,
        "{value_rows} rows of error rates per value"
    );
    let agreement = s.text("attribute-agreement")?;
    ensure!(agreement.contains("nucleus shape"), "{agreement}");
    eprintln!("dataset view: {summary}");
    s.screenshot("analyser-dataset")?;
    let bad = artefacts().join("analyser-bad-labels.csv");
    std::fs::write(&bad, "img_name,label\nx.jpg,Promyelocyte\n")?;
    s.upload("labels-input", &bad)?;
    s.wait_for("the refusal", LOAD, |s| s.visible("error"))?;
    ensure!(s.text("error")?.contains("Promyelocyte"));
    ensure!(
        s.text("audit-summary")? == summary,
        "the loaded labels were lost"
    );

    // Glossary: every value with a confident example among the loaded cells shows one (the
    // page's own export says which values have one), and "what is this?" opens it at the
    // attribute.
    s.js("document.querySelector('[data-testid=view-glossary]').click()")?;
    s.wait_for("the glossary", LOAD, |s| Ok(s.find("glossary")?.is_some()))?;
    let shown: Vec<(String, String, u64)> = serde_json::from_value(s.js(
        "return [...document.querySelectorAll('[data-testid=glossary] article')].flatMap(a => \
         [...a.querySelectorAll('dt')].map(dt => [a.id.replace('glossary-', ''), dt.innerText, \
         dt.nextElementSibling.querySelectorAll('.examples img').length]))",
    )?)?;
    ensure!(shown.len() == 31, "{} values in the glossary", shown.len());
    let mut with_examples = 0;
    for (attribute, value, n) in &shown {
        let expected = page.values().any(|r| {
            r[attribute] == *value
                && r[&format!("{attribute}_probability")]
                    .parse::<f32>()
                    .is_ok_and(|p| p >= 0.9)
        });
        ensure!(
            (*n > 0) == expected,
            "{attribute} = {value}: {n} examples shown, a confident one exists: {expected}"
        );
        with_examples += usize::from(*n > 0);
    }
    eprintln!("glossary: {with_examples} of 31 values show confident examples");
    s.screenshot("glossary")?;
    s.js("document.querySelector('[data-testid=view-explorer]').click()")?;
    s.wait_for("a cell in the explorer", LOAD, |s| {
        Ok(s.find("what-is-nucleus_shape")?.is_some())
    })?;
    s.js("document.querySelector('[data-testid=what-is-nucleus_shape]').click()")?;
    s.wait_for("the glossary at nucleus shape", LOAD, |s| {
        Ok(s.js("const a = document.querySelector('[data-testid=glossary] article.focused'); return a ? a.id : null")?
            == "glossary-nucleus_shape")
    })?;

    // A folder through the folder picker: its images are taken (sub-folders too), other
    // files skipped.
    let folder = artefacts().join("analyser-folder");
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(folder.join("nested"))?;
    for (i, f) in extra.iter().take(3).enumerate() {
        let into = if i == 2 {
            folder.join("nested")
        } else {
            folder.clone()
        };
        std::fs::copy(f, into.join(format!("folder-{i}.jpg")))?;
    }
    std::fs::write(folder.join("report.txt"), "not an image")?;
    std::fs::write(folder.join(".DS_Store"), [0u8; 16])?;
    s.js("const b=document.querySelector('[data-testid=error] .dismiss'); if (b) b.click();")?;
    s.upload("folder-input", &folder)?;
    s.wait_for("the folder's cells", LOAD, |s| {
        Ok(s.text("batch-progress")?.starts_with("3 / 3"))
    })?;
    s.js("document.querySelector('[data-testid=view-table]').click()")?;
    s.wait_for("the table with the folder", LOAD, |s| {
        Ok(rows(s)?.len() == 203)
    })?;
    ensure!(
        !s.visible("error")?,
        "a file from the folder was refused: {:?}",
        s.text("error")
    );
    Ok(())
}

/// The served build in a new session (`webgpu`: with SwiftShader's WebGPU), opened at `query`
/// and loaded; returns the session and the device it chose.
fn loaded(
    driver: &Driver,
    server: &StaticServer,
    webgpu: bool,
    query: &str,
) -> Result<(Session, String)> {
    let s = driver.session(webgpu)?;
    s.goto(&format!("{}/{query}", server.url))?;
    let device = s.settled(LOAD)?;
    Ok((s, device))
}

/// Give the page `cells` at once and wait until every one is answered and the page is idle.
fn batch(s: &Session, cells: &[PathBuf]) -> Result<()> {
    s.upload_many("file-input", cells)?;
    let done = format!("{n} / {n}", n = cells.len());
    // A single file shows no progress bar: then its panel (or a message) is the answer.
    s.wait_for("the batch", LOAD, |s| {
        let answered = if cells.len() == 1 {
            s.panel_ready()? || s.visible("error")?
        } else {
            s.text("batch-progress").is_ok_and(|t| t.starts_with(&done))
        };
        Ok(answered && s.text("status")? == "idle")
    })
}

fn name_of(p: &std::path::Path) -> String {
    p.file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

/// `n` test cells, the built app served, and a browser driver.
fn served(n: usize) -> Result<(Vec<PathBuf>, StaticServer, Driver)> {
    let dist = root().join("dist");
    ensure!(
        dist.join("worker_loader.js").exists(),
        "build the app first: cargo xtask build"
    );
    Ok((
        more_test_cells(n)?,
        StaticServer::start(dist)?,
        Driver::start()?,
    ))
}

/// The WebGPU device lost in the middle of a batch (issue 18). `lose-gpu-after=3` in the page
/// address makes the worker's loader call `GPUDevice.destroy()` on the networks' device once
/// three cells are answered on it. The page says so, goes on with a worker on the CPU, and the batch ends
/// with the same types and attribute values as a CPU-only run of the same files.
#[test]
fn webgpu_lost_mid_batch_finishes_on_the_cpu() -> Result<()> {
    let (cells, server, driver) = served(8)?;

    let (cpu, _) = loaded(&driver, &server, false, "?cpu")?;
    batch(&cpu, &cells)?;
    cpu.click("view-table")?;
    let reference = parse_csv(&exported_csv(&cpu)?);

    let (s, device) = loaded(&driver, &server, true, "?lose-gpu-after=3")?;
    ensure!(device == "WebGPU", "the run began on {device}");
    batch(&s, &cells)?;
    let note = s.text("engine-note")?;
    ensure!(note.contains("WebGPU device was lost"), "message: {note}");
    eprintln!("{note}");
    ensure!(s.text("device")? == "CPU", "still on {}", s.text("device")?);
    let title = s.attr("device", "title")?.unwrap_or_default();
    ensure!(title.contains("lost"), "device title: {title}");
    ensure!(!s.visible("fatal")?, "the page stopped");
    s.screenshot("webgpu-lost")?;
    s.click("view-table")?;
    let page = parse_csv(&exported_csv(&s)?);
    ensure!(
        page.len() == cells.len(),
        "{} rows after the device was lost",
        page.len()
    );
    same_types_and_attributes(&page, &reference)?;
    eprintln!(
        "device lost after 3 of 8 cells: the batch ended on the CPU, equal to a CPU-only run"
    );
    Ok(())
}

/// CPU first, WebGPU behind (issue 17): the page starts the CPU-only worker (a quarter of the
/// download), which answers the first cell; only then is the WebGPU worker fetched, and when
/// it is ready it takes over the cells not answered yet. Every file is answered once, with the
/// same results as a CPU-only run, and "where?" works on a cell the CPU worker analysed (the
/// WebGPU worker makes its input again from the file).
#[test]
fn the_cpu_worker_answers_first_and_webgpu_takes_over() -> Result<()> {
    let (cells, server, driver) = served(6)?;
    let (cpu, _) = loaded(&driver, &server, false, "?cpu")?;
    batch(&cpu, &cells)?;
    cpu.click("view-table")?;
    let reference = parse_csv(&exported_csv(&cpu)?);
    drop(cpu);

    let before = server.sent().len();
    let s = driver.session(true)?;
    s.goto(&server.url)?;
    s.wait_for("file input", LOAD, |s| Ok(s.find("file-input")?.is_some()))?;
    let cold = s.text("device").map(|t| t == "…").unwrap_or(true);
    s.upload_many("file-input", &cells)?;
    s.wait_for("the first answer", LOAD, |s| Ok(s.panel_ready()?))?;
    let first_device = s.text("device")?;
    // Up to the service worker's script: it is registered once the first cell is answered,
    // together with the start of the WebGPU worker.
    let fetched: Vec<String> = server.sent()[before..]
        .iter()
        .map(|(p, _, _)| p.clone())
        .take_while(|p| !p.starts_with("/sw.js"))
        .collect();
    s.screenshot("cpu-first")?;
    ensure!(
        first_device == "CPU",
        "the first cell was answered on {first_device}"
    );
    ensure!(
        fetched.iter().any(|p| p.starts_with("/worker_cpu_bg.wasm")),
        "the CPU worker was not fetched: {fetched:?}"
    );
    if cold {
        ensure!(
            !fetched.iter().any(|p| p.starts_with("/worker_bg.wasm")),
            "the WebGPU worker was fetched before the first answer: {fetched:?}"
        );
    }
    let device = s.settled(LOAD)?;
    ensure!(device == "WebGPU", "WebGPU did not take over: {device}");
    s.wait_for("the batch", LOAD, |s| {
        Ok(s.text("batch-progress")
            .is_ok_and(|t| t.starts_with("6 / 6")))
    })?;
    // "where?" on the first cell, analysed by the CPU worker that is gone now.
    s.js("document.querySelector('[data-testid=cell-list] li').click(); return true;")?;
    s.wait_for("the explain button", LOAD, |s| {
        Ok(s.find("cam-nucleus_shape")?.is_some())
    })?;
    s.js("document.querySelector('[data-testid=cam-nucleus_shape]').click(); return true;")?;
    s.wait_for("activation map", LOAD, |s| {
        Ok(s.js("const e=document.querySelector('[data-testid=cam]'); return !!e && getComputedStyle(e).display !== 'none';")? == serde_json::json!(true)
            || s.visible("error")?)
    })?;
    ensure!(
        !s.visible("error")?,
        "where? on a cell the CPU worker analysed: {}",
        s.text("error")?
    );
    s.screenshot("webgpu-took-over")?;
    s.click("view-table")?;
    let page = parse_csv(&exported_csv(&s)?);
    ensure!(page.len() == cells.len(), "{} rows", page.len());
    same_types_and_attributes(&page, &reference)?;
    eprintln!("first cell on the CPU worker, WebGPU took over, 6 cells equal to a CPU-only run");
    Ok(())
}

/// WebGPU is not always the faster device: when the WebGPU worker is ready the page times
/// both networks once on it and on the CPU worker, and hands over only if WebGPU is faster;
/// otherwise it stops the WebGPU worker, stays on the CPU and says why in the device's title.
/// Here WebGPU is SwiftShader, about ten times slower, so the page stays on the CPU; with a
/// faster GPU it would hand over. Either way its choice must follow the two times it shows.
#[test]
fn the_page_keeps_the_faster_device() -> Result<()> {
    let (cells, server, driver) = served(3)?;
    let s = driver.session(true)?.letting_the_page_choose();
    s.goto(&server.url)?;
    s.wait_for("file input", LOAD, |s| Ok(s.find("file-input")?.is_some()))?;
    batch(&s, &cells)?;
    let device = s.settled(LOAD)?;
    let time = |name: &str| -> Result<f64> {
        s.attr("device", name)?
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("no {name} on the device badge (device {device})"))
    };
    let (gpu, cpu) = (time("data-webgpu-ms")?, time("data-cpu-ms")?);
    let title = s.attr("device", "title")?.unwrap_or_default();
    s.screenshot("faster-device")?;
    if gpu > cpu {
        ensure!(
            device == "CPU" && title.contains("slower than the CPU"),
            "WebGPU {gpu:.0} ms against CPU {cpu:.0} ms, yet the page is on {device} ({title})"
        );
        ensure!(
            s.visible("cpu-faster")?,
            "the header does not say the CPU was chosen for its speed"
        );
    } else {
        ensure!(
            device == "WebGPU",
            "WebGPU {gpu:.0} ms against CPU {cpu:.0} ms, yet the page is on {device} ({title})"
        );
    }
    ensure!(
        s.find("gpu-loading")?.is_none() && !s.visible("fatal")?,
        "the page did not settle"
    );
    eprintln!("both networks: WebGPU {gpu:.0} ms, CPU {cpu:.0} ms a cell: the page chose {device} ({title})");
    Ok(())
}

/// WebGPU refused when the page opens (issue 18): no adapter (`fail-gpu-adapter`), or the
/// device request failing (`fail-gpu-device`), both simulated in the worker's loader. The page
/// runs on the CPU, says why, and analyses a cell.
#[test]
fn webgpu_refused_at_start_runs_on_the_cpu() -> Result<()> {
    let (cells, server, driver) = served(1)?;
    for (query, why) in [
        ("?fail-gpu-adapter", "no adapter"),
        ("?fail-gpu-device", "initialisation failed"),
    ] {
        let (s, device) = loaded(&driver, &server, true, query)?;
        let title = s.attr("device", "title")?.unwrap_or_default();
        ensure!(
            device == "CPU" && title.contains(why),
            "{query}: {device}, {title}"
        );
        batch(&s, &cells)?;
        ensure!(s.panel_ready()? && !s.visible("fatal")?, "{query}: no cell");
        eprintln!("{query}: CPU ({title})");
    }
    Ok(())
}

/// A worker that panics (issue 18). `panic-on=NAME` in the page address makes the worker
/// panic on that file. The worker is restarted once, that file is listed as failed with the
/// reason, and the other cells of the batch are analysed with the same results as without the
/// crash. On the CPU path, and on WebGPU once the WebGPU worker has taken over (the restarted
/// worker is a WebGPU one again: a panic is not the device's fault).
#[test]
fn a_worker_that_panics_is_restarted_and_the_batch_goes_on() -> Result<()> {
    let (cells, server, driver) = served(6)?;
    let victim = name_of(&cells[2]);

    let (clean, _) = loaded(&driver, &server, false, "?cpu")?;
    batch(&clean, &cells)?;
    clean.click("view-table")?;
    let mut reference = parse_csv(&exported_csv(&clean)?);
    reference.remove(&victim);
    drop(clean);

    for webgpu in [false, true] {
        let query = if webgpu {
            format!("?panic-on={victim}")
        } else {
            format!("?cpu&panic-on={victim}")
        };
        let (s, device) = loaded(&driver, &server, webgpu, &query)?;
        let expected = if webgpu { "WebGPU" } else { "CPU" };
        ensure!(device == expected, "{query}: the page settled on {device}");
        batch(&s, &cells)?;
        let refused = s.refused_files()?;
        ensure!(
            refused.len() == 1 && refused[0].0 == victim && refused[0].1.contains("fault injected"),
            "{device}: refused: {refused:?}"
        );
        ensure!(
            !s.visible("fatal")?,
            "{device}: the page stopped: {}",
            s.text("fatal")?
        );
        let note = s.text("engine-note")?;
        ensure!(note.contains("restarted"), "{device}: engine note: {note}");
        ensure!(
            s.text("device")? == expected,
            "the restarted worker runs on {}, not {expected}",
            s.text("device")?
        );
        s.js("document.querySelector('[data-testid=refused]').open = true")?;
        s.screenshot(if webgpu {
            "worker-restarted-webgpu"
        } else {
            "worker-restarted"
        })?;
        s.click("view-table")?;
        let page = parse_csv(&exported_csv(&s)?);
        ensure!(
            page.len() == cells.len() - 1,
            "{device}: {} cells after the crash",
            page.len()
        );
        same_types_and_attributes(&page, &reference)?;
        eprintln!(
            "{device}: {victim} crashed the worker: listed as failed; the other 5 cells equal a clean CPU run"
        );
    }
    Ok(())
}

/// A dropped folder part of which cannot be read (a locked sub-folder, a file removed while
/// being read): the page names each part that failed, with the reason, among the refused
/// files, and analyses the rest of the drop (before, it waited forever). Browsers give
/// dropped folders as FileSystemEntry objects; WebDriver cannot drop a folder, so the test
/// drops entries made in the page that behave as Chromium's do, around a real cell image.
#[test]
fn a_dropped_folder_that_cannot_be_read_is_named_and_the_rest_goes_on() -> Result<()> {
    let (cells, server, driver) = served(1)?;
    let (s, _) = loaded(&driver, &server, false, "?cpu")?;
    let name = name_of(&cells[0]);
    std::fs::copy(&cells[0], root().join("dist/e2e-drop-cell.jpg"))?;
    let dropped = s.js_async(
        r#"const done = arguments[0];
        fetch('e2e-drop-cell.jpg').then(r => r.blob()).then(blob => {
            const fail = (name, message) => (ok, err) =>
                setTimeout(() => err(new DOMException(message, name)), 0);
            const file = new File([blob], 'NAME', {type: 'image/jpeg'});
            const entry = (props) => Object.assign({isFile: false, isDirectory: false}, props);
            const good = entry({isFile: true, name: 'NAME', fullPath: '/slide/NAME',
                file: (ok) => setTimeout(() => ok(file), 0)});
            const gone = entry({isFile: true, name: 'gone.jpg', fullPath: '/slide/gone.jpg',
                file: fail('NotFoundError', 'A requested file could not be found')});
            const locked = entry({isDirectory: true, name: 'locked', fullPath: '/slide/locked',
                createReader: () => ({readEntries: fail('NotReadableError', 'permission denied')})});
            let given = false;
            const slide = entry({isDirectory: true, name: 'slide', fullPath: '/slide',
                createReader: () => ({readEntries: (ok) => setTimeout(() => {
                    ok(given ? [] : [good, gone, locked]); given = true; }, 0)})});
            const items = [{kind: 'file', webkitGetAsEntry: () => slide}];
            const transfer = {items: Object.assign(items, {length: 1}), files: [], types: ['Files']};
            const drop = new DragEvent('drop', {bubbles: true, cancelable: true});
            Object.defineProperty(drop, 'dataTransfer', {value: transfer});
            document.querySelector('[data-testid=drop-zone]').dispatchEvent(drop);
            done('dropped');
        }).catch(e => done('failed: ' + e));"#
            .replace("NAME", &name)
            .as_str(),
    )?;
    ensure!(dropped == "dropped", "{dropped}");
    s.wait_for("the readable cell and the refusals", LOAD, |s| {
        Ok(s.panel_ready()? && s.refused_files()?.len() == 2 && s.text("status")? == "idle")
    })?;
    let refused = s.refused_files()?;
    let names: Vec<&str> = refused.iter().map(|r| r.0.as_str()).collect();
    ensure!(
        names.contains(&"/slide/gone.jpg") && names.contains(&"/slide/locked"),
        "refused: {refused:?}"
    );
    ensure!(
        refused
            .iter()
            .all(|r| r.1.contains("could not be read") && r.1.contains("Error")),
        "reasons: {refused:?}"
    );
    ensure!(
        s.text("cell-name").is_ok_and(|t| t.contains(&name))
            || s.js("return document.body.innerText")?
                .as_str()
                .unwrap_or("")
                .contains(&name),
        "the readable cell {name} was not analysed"
    );
    let _ = std::fs::remove_file(root().join("dist/e2e-drop-cell.jpg"));
    Ok(())
}
