//! Your microscope, your question, in headless Chromium on the CPU path:
//! - tecom300 cells (another microscope) labelled in the cell panel, five of each type; the
//!   fitted profile, switched on, lifts the other cells' accuracy as `wbc fit` and
//!   `wbc analyse --profile` predict on the same cells; 200 cells labelled from a labels CSV
//!   fit in under a second without holding the page more than 100 ms at a time;
//! - band against segmented neutrophils (PBC test cells) dropped as a folder whose
//!   sub-folders name the classes: the question is fitted, its answers kept across a reload,
//!   the profile exported and imported in a fresh browser with the same answers, and a broken
//!   profile or one for other networks refused with a message while the one in use stays.
//!
//! Screenshots go to target/e2e/.

use anyhow::{ensure, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use wbc_e2e::{artefacts, exported_csv, parse_csv, root, Driver, Session, StaticServer};

const LOAD: Duration = Duration::from_secs(600);

fn name_of(p: &Path) -> String {
    p.file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

/// The CLI the e2e build uses (`WBC_BIN`, else the debug build `cargo xtask test` makes).
fn wbc() -> PathBuf {
    std::env::var("WBC_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join("target/debug/wbc"))
}

fn served() -> Result<(StaticServer, Driver)> {
    let dist = root().join("dist");
    ensure!(
        dist.join("worker_loader.js").exists(),
        "build the app first: cargo xtask build"
    );
    Ok((StaticServer::start(dist)?, Driver::start()?))
}

fn opened(driver: &Driver, server: &StaticServer) -> Result<Session> {
    let s = driver.session(false)?;
    s.goto(&format!("{}/?cpu", server.url))?;
    s.settled(LOAD)?;
    Ok(s)
}

/// Wait until `n` cells are answered and the page is idle.
fn answered(s: &Session, n: usize) -> Result<()> {
    let done = format!("{n} / {n}");
    s.wait_for("the batch", LOAD, |s| {
        Ok(s.text("batch-progress").is_ok_and(|t| t.starts_with(&done))
            && s.text("status")? == "idle")
    })
}

/// What pressing button `testid` offers as a download (the anchor's click is caught).
fn offered(s: &Session, testid: &str) -> Result<String> {
    s.js(&format!("window.__offered = null; const click = HTMLAnchorElement.prototype.click; HTMLAnchorElement.prototype.click = function() {{ window.__offered = this.href; }}; document.querySelector('[data-testid={testid}]').click(); HTMLAnchorElement.prototype.click = click;"))?;
    Ok(s
        .js("const x = new XMLHttpRequest(); x.open('GET', window.__offered, false); x.send(); return x.responseText;")?
        .as_str()
        .context("nothing offered")?
        .to_string())
}

/// Fit the labelled cells (in the table view) and wait for the profile.
fn fit(s: &Session, labelled: usize) -> Result<()> {
    s.click("view-table")?;
    s.wait_for("the label counts", Duration::from_secs(30), |s| {
        Ok(s.attr("label-counts", "data-total")?.as_deref() == Some(&labelled.to_string()))
    })?;
    let before = s.attr("fit-timing", "data-total-ms").ok().flatten();
    s.click("fit-profile")?;
    s.wait_for("the profile", Duration::from_secs(60), |s| {
        Ok(s.find("profile-summary")?.is_some()
            && s.find("fit-progress")?.is_none()
            && s.attr("fit-timing", "data-total-ms").ok().flatten() != before)
    })
}

fn number(s: &Session, testid: &str, name: &str) -> Result<f64> {
    s.attr(testid, name)?
        .with_context(|| format!("{testid} has no {name}"))?
        .parse()
        .with_context(|| format!("{testid} {name}"))
}

/// The fit's timing: every slice well under 100 ms, the whole under `limit_ms`.
fn fit_was_quick(s: &Session, cells: usize, limit_ms: f64) -> Result<(f64, f64)> {
    let total = number(s, "fit-timing", "data-total-ms")?;
    let longest = number(s, "fit-timing", "data-longest-ms")?;
    ensure!(
        number(s, "fit-timing", "data-cells")? as usize == cells,
        "the fit saw another number of cells"
    );
    ensure!(
        longest < 100.0,
        "a slice of the fit held the page {longest} ms"
    );
    ensure!(total < limit_ms, "fitting {cells} cells took {total} ms");
    Ok((total, longest))
}

/// Column `name` of an exported table, by file name.
fn by_name(csv: &str, name: &str) -> Result<BTreeMap<String, String>> {
    parse_csv(csv)
        .into_iter()
        .map(|(file, row)| {
            let field = row.get(name).with_context(|| format!("no column {name}"))?;
            Ok((file, field.clone()))
        })
        .collect()
}

/// tecom300's cells with their types (its labels.csv: image ID, class 1–5).
fn tecom300() -> Result<Vec<(PathBuf, String)>> {
    use wbc_core::dataset::EXTERNAL_CLASSES as CLASSES;
    let dir = root().join("../shared/data/tecom300");
    let text = std::fs::read_to_string(dir.join("labels.csv"))
        .context("../shared/data/tecom300/labels.csv (the external sets are needed)")?;
    let mut cells = Vec::new();
    for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let mut f = line.split(',');
        let id: usize = f.next().context("id")?.trim().parse()?;
        let class: usize = f.next().context("class")?.trim().parse()?;
        let name = CLASSES.get(class.wrapping_sub(1)).context("class")?;
        cells.push((
            dir.join("images").join(format!("{id:03}.png")),
            name.to_string(),
        ));
    }
    Ok(cells)
}

fn accuracy(types: &BTreeMap<String, String>, truth: &[(PathBuf, String)]) -> f64 {
    let right = truth
        .iter()
        .filter(|(p, t)| types.get(&name_of(p)) == Some(t))
        .count();
    100.0 * right as f64 / truth.len().max(1) as f64
}

/// `wbc fit --labels CSV --images DIR` then `wbc analyse --profile` on `cells`: the CLI's
/// table (CSV text); the profile and table are kept in target/e2e/ under `name`.
fn cli_fit_and_analyse(
    labels: &Path,
    images: &Path,
    cells: impl IntoIterator<Item = PathBuf>,
    name: &str,
) -> Result<String> {
    let profile = artefacts().join(format!("{name}-profile.json"));
    let status = Command::new(wbc())
        .args(["fit", "--labels"])
        .arg(labels)
        .arg("--images")
        .arg(images)
        .arg("--out")
        .arg(&profile)
        .current_dir(root())
        .stdout(Stdio::null())
        .status()?;
    ensure!(status.success(), "wbc fit failed");
    let table = artefacts().join(format!("{name}-cli.csv"));
    let status = Command::new(wbc())
        .arg("analyse")
        .args(cells)
        .arg("--profile")
        .arg(&profile)
        .arg("--out")
        .arg(&table)
        .current_dir(root())
        .stdout(Stdio::null())
        .status()?;
    ensure!(status.success(), "wbc analyse --profile failed");
    Ok(std::fs::read_to_string(&table)?)
}

/// Show cell `name` in the explorer and give it `label` in its panel.
fn label_in_panel(s: &Session, name: &str, label: &str) -> Result<()> {
    s.click("view-explorer")?;
    s.js(&format!("[...document.querySelectorAll('[data-testid=cell-list] button')].find(b => b.title == '{name}').click()"))?;
    s.wait_for("the cell's panel", LOAD, |s| {
        Ok(s.panel_ready()? && s.attr("cell-panel", "data-name")?.as_deref() == Some(name))
    })?;
    s.js(&format!("const e = document.querySelector('[data-testid=cell-label]'); e.value = '{label}'; e.dispatchEvent(new Event('change', {{bubbles: true}}));"))?;
    Ok(())
}

#[test]
fn tecom300_cells_labelled_in_the_page_lift_the_others_as_the_cli_predicts() -> Result<()> {
    let cells = tecom300()?;
    // Five of each type, the first by image number (all of a type with fewer).
    let mut labelled: Vec<(PathBuf, String)> = Vec::new();
    for t in [
        "Neutrophil",
        "Lymphocyte",
        "Monocyte",
        "Eosinophil",
        "Basophil",
    ] {
        labelled.extend(cells.iter().filter(|c| c.1 == t).take(5).cloned());
    }
    let others: Vec<(PathBuf, String)> = cells
        .iter()
        .filter(|c| !labelled.contains(c))
        .cloned()
        .collect();
    let (server, driver) = served()?;
    let s = opened(&driver, &server)?;
    let files: Vec<PathBuf> = cells.iter().map(|c| c.0.clone()).collect();
    s.upload_many("file-input", &files)?;
    answered(&s, files.len())?;
    for (path, label) in &labelled {
        label_in_panel(&s, &name_of(path), &label.to_lowercase())?;
    }
    s.click("view-table")?;
    // Typed in lower case, the labels are the types, spelt once.
    let counts = s.text("label-counts")?;
    ensure!(
        counts.contains("Monocyte 5") && !counts.contains("monocyte"),
        "{counts}"
    );
    let before = exported_csv(&s)?;
    let shipped = accuracy(&by_name(&before, "label")?, &others);
    let unlike = |csv: &str| -> Result<usize> {
        let flags = by_name(csv, "unfamiliar")?;
        Ok(others
            .iter()
            .filter(|c| flags.get(&name_of(&c.0)).map(String::as_str) == Some("true"))
            .count())
    };
    fit(&s, labelled.len())?;
    ensure!(s.attr("profile-summary", "data-kind")?.as_deref() == Some("adaptation"));
    fit_was_quick(&s, labelled.len(), 1000.0)?;
    // Not applied until the user switches it on.
    ensure!(accuracy(&by_name(&exported_csv(&s)?, "label")?, &others) == shipped);
    s.click("apply-profile")?;
    let after = exported_csv(&s)?;
    let page = by_name(&after, "label")?;
    let adapted = accuracy(&page, &others);
    s.screenshot("adapt-tecom300-profile")?;

    // The same labelled cells through the CLI.
    let labels_csv = artefacts().join("adapt-tecom300-labels.csv");
    let mut text = String::from("img_name,label\n");
    for (path, label) in &labelled {
        text.push_str(&format!("{},{label}\n", name_of(path)));
    }
    std::fs::write(&labels_csv, text)?;
    let cli_text = cli_fit_and_analyse(
        &labels_csv,
        &root().join("../shared/data/tecom300/images"),
        others.iter().map(|c| c.0.clone()),
        "adapt-tecom300",
    )?;
    let cli = by_name(&cli_text, "label")?;
    let cli_adapted = accuracy(&cli, &others);
    let differ = others
        .iter()
        .filter(|c| page.get(&name_of(&c.0)) != cli.get(&name_of(&c.0)))
        .count();
    eprintln!(
        "tecom300, {} cells not labelled: shipped {shipped:.1}%, adapted in the page {adapted:.1}%, by the CLI {cli_adapted:.1}% ({differ} answers differ)",
        others.len()
    );
    ensure!(
        adapted >= shipped + 5.0,
        "adapting lifted {shipped:.1}% only to {adapted:.1}%"
    );
    ensure!(
        differ <= 3,
        "{differ} of {} adapted answers differ from the CLI's",
        others.len()
    );
    // The familiarity check learnt the labelled cells: cells like them are no longer "unlike
    // the training images" (at least 15% fewer cells warned; its reach, chosen on Chula, keeps
    // the warning on cells unlike every labelled one), in the page as in the CLI.
    let (unlike_before, unlike_after, unlike_cli) =
        (unlike(&before)?, unlike(&after)?, unlike(&cli_text)?);
    eprintln!("unlike the training images: {unlike_before} cells before, {unlike_after} after (CLI {unlike_cli})");
    ensure!(
        unlike_after * 100 < unlike_before * 85 && unlike_after.abs_diff(unlike_cli) <= 3,
        "unlike the training images: {unlike_before} before, {unlike_after} after, CLI {unlike_cli}"
    );

    // The panel says the type is adapted.
    label_in_panel(&s, &name_of(&others[0].0), "")?;
    ensure!(
        s.find("type-adapted")?.is_some(),
        "no note on the adapted type"
    );

    // 200 labelled cells from a labels CSV: a fit under a second, never holding the page.
    let csv = artefacts().join("adapt-tecom300-200.csv");
    let mut text = String::from("img_name,label\n");
    for (path, label) in cells.iter().take(200) {
        text.push_str(&format!("{},{label}\n", name_of(path)));
    }
    std::fs::write(&csv, text)?;
    s.click("view-dataset")?;
    s.upload("labels-input", &csv)?;
    let n = cells
        .iter()
        .take(200)
        .chain(labelled.iter())
        .map(|c| name_of(&c.0))
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    fit(&s, n)?;
    let (total, longest) = fit_was_quick(&s, n, 1000.0)?;
    eprintln!(
        "fitted {n} labelled cells in the page in {total:.0} ms, longest slice {longest:.0} ms"
    );
    Ok(())
}

/// Band and segmented neutrophils of the PBC test split (file prefixes BNE and SNE), `n` of
/// each.
fn band_and_segmented(n: usize) -> Result<BTreeMap<&'static str, Vec<PathBuf>>> {
    let data = root().join("../shared/data");
    let text = std::fs::read_to_string(data.join("wbcatt/pbc_attr_v1_test.csv"))
        .context("the WBCAtt labels are needed")?;
    let cells =
        wbc_core::dataset::parse_csv(&text).map_err(|(l, e)| anyhow::anyhow!("{l}: {e}"))?;
    let mut out = BTreeMap::new();
    for (class, prefix) in [("band", "BNE_"), ("segmented", "SNE_")] {
        let files: Vec<PathBuf> = cells
            .iter()
            .filter(|c| c.img_name.starts_with(prefix))
            .map(|c| data.join("pbc").join(&c.path))
            .take(n)
            .collect();
        ensure!(files.len() == n, "{} {class} cells", files.len());
        out.insert(class, files);
    }
    Ok(out)
}

/// Drop a folder `question/` whose sub-folders hold `tree`'s files (served from
/// `dist/e2e-question/`). WebDriver cannot drop a folder: the page is given entries that
/// behave as Chromium's do.
fn drop_folder(s: &Session, tree: &BTreeMap<&'static str, Vec<PathBuf>>) -> Result<()> {
    let names: BTreeMap<&str, Vec<String>> = tree
        .iter()
        .map(|(k, v)| (*k, v.iter().map(|p| name_of(p)).collect()))
        .collect();
    let dropped = s.js_async(&format!(
        r#"const done = arguments[0];
        const tree = {};
        const entry = (props) => Object.assign({{isFile: false, isDirectory: false}}, props);
        const folder = (name, path, children) => {{ let given = false; return entry({{isDirectory: true, name, fullPath: path,
            createReader: () => ({{readEntries: (ok) => setTimeout(() => {{ ok(given ? [] : children); given = true; }}, 0)}})}}); }};
        const file = (cls, name) => entry({{isFile: true, name, fullPath: `/question/${{cls}}/${{name}}`,
            file: (ok, err) => fetch(`e2e-question/${{cls}}/${{name}}`).then(r => r.blob())
                .then(b => ok(new File([b], name, {{type: 'image/jpeg'}}))).catch(err)}});
        const root = folder('question', '/question', Object.entries(tree).map(([cls, names]) =>
            folder(cls, `/question/${{cls}}`, names.map(n => file(cls, n)))));
        const items = [{{kind: 'file', webkitGetAsEntry: () => root}}];
        const transfer = {{items: Object.assign(items, {{length: 1}}), files: [], types: ['Files']}};
        const drop = new DragEvent('drop', {{bubbles: true, cancelable: true}});
        Object.defineProperty(drop, 'dataTransfer', {{value: transfer}});
        document.querySelector('[data-testid=drop-zone]').dispatchEvent(drop);
        done('dropped');"#,
        serde_json::to_string(&names)?
    ))?;
    ensure!(dropped == "dropped", "{dropped}");
    Ok(())
}

#[test]
fn a_question_from_a_dropped_folder_is_fitted_kept_exported_and_imported() -> Result<()> {
    let tree = band_and_segmented(50)?;
    let served_dir = root().join("dist/e2e-question");
    for (class, files) in &tree {
        std::fs::create_dir_all(served_dir.join(class))?;
        for f in files {
            std::fs::copy(f, served_dir.join(class).join(name_of(f)))?;
        }
    }
    let all: Vec<PathBuf> = tree.values().flatten().cloned().collect();
    let (server, driver) = served()?;
    let s = opened(&driver, &server)?;
    drop_folder(&s, &tree)?;
    answered(&s, all.len())?;
    fit(&s, all.len())?;
    ensure!(s.attr("profile-summary", "data-kind")?.as_deref() == Some("question"));
    let interpretable = number(&s, "profile-summary", "data-interpretable")?;
    let probe = number(&s, "profile-summary", "data-probe")?;
    let weights: Vec<String> = serde_json::from_value(s.js(
        "return [...document.querySelectorAll('[data-testid=question-weights] li')].map(l => l.dataset.input)",
    )?)?;
    let (total, longest) = fit_was_quick(&s, all.len(), 1000.0)?;
    eprintln!(
        "band vs segmented from 100 dropped cells: interpretable {:.1}%, probe {:.1}% (cross-validated); fitted in {total:.0} ms, longest slice {longest:.0} ms; top inputs {weights:?}",
        100.0 * interpretable,
        100.0 * probe
    );
    ensure!(
        weights
            .iter()
            .any(|w| w.to_lowercase().starts_with("nucleus shape")),
        "nucleus shape is not among the largest weights: {weights:?}"
    );
    ensure!(
        interpretable > 0.6 && probe > 0.6,
        "the question was not learnt"
    );
    s.screenshot("adapt-question-profile")?;
    let first = exported_csv(&s)?;
    let answers = by_name(&first, "question_answer")?;
    let labels = by_name(&first, "user_label")?;
    ensure!(answers.len() == 100 && answers.values().all(|a| a == "band" || a == "segmented"));
    for (class, files) in &tree {
        ensure!(files
            .iter()
            .all(|f| labels.get(&name_of(f)).map(String::as_str) == Some(*class)));
    }
    // Bias discovery on the question: its error rate per attribute value.
    s.click("view-dataset")?;
    s.wait_for(
        "the question's errors per value",
        Duration::from_secs(30),
        |s| Ok(s.find("question-errors")?.is_some()),
    )?;
    let worst: Vec<String> = serde_json::from_value(s.js(
        "return [...document.querySelectorAll('[data-testid=question-errors] tr')].slice(1, 4).map(r => r.innerText.replace(/\\s+/g, ' '))",
    )?)?;
    eprintln!("where the question's interpretable classifier fails most: {worst:?}");
    ensure!(
        worst.len() == 3,
        "the question's errors per value: {worst:?}"
    );
    // The panel answers it too.
    s.click("view-explorer")?;
    s.wait_for("the question in the panel", Duration::from_secs(60), |s| {
        Ok(s.find("question-answer")?.is_some() && s.panel_ready()?)
    })?;
    // "What if" works on the question: the nucleus shape edited one way, then the other.
    let shape = &wbc_core::ATTRIBUTES[wbc_core::ATTRIBUTES
        .iter()
        .position(|a| a.name == "nucleus_shape")
        .context("nucleus_shape")?];
    // The interpretable classifier's probability of "segmented" with the nucleus shape set
    // to `value` (the verdict reads "<class> (<p>%, …").
    let segmented_with = |value: &str| -> Result<f64> {
        let v = shape
            .values
            .iter()
            .position(|x| *x == value)
            .context("value")?;
        s.js(&format!("const e = document.querySelector('[data-testid=attribute-nucleus_shape] select'); e.value = '{v}'; e.dispatchEvent(new Event('change', {{bubbles: true}}));"))?;
        std::thread::sleep(Duration::from_millis(500));
        let class = s.attr("question-answer", "data-class")?.unwrap_or_default();
        let verdict = s.js(
            "return document.querySelector('[data-testid=question-answer] .verdict').innerText",
        )?;
        let verdict = verdict.as_str().unwrap_or_default();
        let p: f64 = verdict
            .split('(')
            .nth(1)
            .and_then(|t| t.split('%').next())
            .and_then(|t| t.trim().parse().ok())
            .with_context(|| format!("the verdict {verdict:?}"))?;
        eprintln!("nucleus shape set to {value}: {verdict}");
        Ok(if class == "segmented" { p } else { 100.0 - p })
    };
    // The band nucleus weighs for band, the multilobed one for segmented: the answer moves
    // by more than 20 points between them and is segmented with the multilobed nucleus.
    let (as_band, as_segmented) = (
        segmented_with("unsegmented-band")?,
        segmented_with("segmented-multilobed")?,
    );
    ensure!(
        as_segmented > 50.0 && as_segmented - as_band > 20.0,
        "P(segmented) with a band nucleus {as_band}%, with a multilobed one {as_segmented}%"
    );
    s.click("reset-edits")?;
    let profile = offered(&s, "export-profile").or_else(|_| {
        s.click("view-table")?;
        offered(&s, "export-profile")
    })?;
    ensure!(
        profile.contains("\"question\""),
        "the exported profile: {profile:.200}"
    );
    let profile_path = artefacts().join("adapt-question-profile.json");
    std::fs::write(&profile_path, &profile)?;

    // A reload keeps the labels, the profile and its answers.
    s.goto(&format!("{}/?cpu", server.url))?;
    s.settled(LOAD)?;
    s.click("view-table")?;
    s.wait_for("the session back", LOAD, |s| {
        Ok(
            s.attr("label-counts", "data-total")?.as_deref() == Some("100")
                && s.find("profile-summary")?.is_some(),
        )
    })?;
    ensure!(
        by_name(&exported_csv(&s)?, "question_answer")? == answers,
        "answers changed on reload"
    );

    // A colleague's fresh browser: the same cells, not labelled, and the imported profile.
    let c = opened(&driver, &server)?;
    c.upload_many("file-input", &all)?;
    answered(&c, all.len())?;
    c.click("view-table")?;
    c.upload("profile-input", &profile_path)?;
    c.wait_for("the imported profile", Duration::from_secs(30), |s| {
        Ok(s.find("profile-summary")?.is_some())
    })?;
    let imported = exported_csv(&c)?;
    ensure!(
        by_name(&imported, "question_answer")? == answers,
        "the imported profile answers otherwise"
    );
    ensure!(by_name(&imported, "user_label")?
        .values()
        .all(String::is_empty));

    // Refused with a reason; the profile in use stays.
    let broken = artefacts().join("adapt-broken-profile.json");
    std::fs::write(&broken, "{\"format\": 1, \"classes\": [")?;
    c.upload("profile-input", &broken)?;
    c.wait_for("the refusal", Duration::from_secs(30), |s| {
        Ok(s.text("error")
            .is_ok_and(|t| t.contains("not a WBC Explorer profile")))
    })?;
    let mut other: serde_json::Value = serde_json::from_str(&profile)?;
    other["networks"]["attribute_net"] = serde_json::json!("0".repeat(64));
    let other_path = artefacts().join("adapt-other-networks-profile.json");
    std::fs::write(&other_path, other.to_string())?;
    c.upload("profile-input", &other_path)?;
    c.wait_for("the refusal", Duration::from_secs(30), |s| {
        Ok(s.text("error")
            .is_ok_and(|t| t.contains("other network versions")))
    })?;
    ensure!(c.find("profile-summary")?.is_some());
    ensure!(by_name(&exported_csv(&c)?, "question_answer")? == answers);
    let _ = std::fs::remove_dir_all(&served_dir);
    Ok(())
}

/// PBC test cells (spread through the split) with their WBCAtt cytoplasm colour: `n` that
/// WBCAtt calls blue and `n` that it does not, after skipping `skip` of each.
fn cytoplasm_cells(skip: usize, n: usize) -> Result<Vec<(PathBuf, String)>> {
    let data = root().join("../shared/data");
    let text = std::fs::read_to_string(data.join("wbcatt/pbc_attr_v1_test.csv"))
        .context("the WBCAtt test split is needed")?;
    let cells =
        wbc_core::dataset::parse_csv(&text).map_err(|(l, e)| anyhow::anyhow!("{l}: {e}"))?;
    let (k, colour) = wbc_core::schema::attribute("cytoplasm_colour").context("colour")?;
    let pick = |blue: bool| -> Vec<(PathBuf, String)> {
        let of: Vec<_> = cells
            .iter()
            .filter(|c| (colour.values[c.attributes[k]] == "blue") == blue)
            .collect();
        let step = (of.len() / (skip + n)).max(1);
        of.iter()
            .step_by(step)
            .skip(skip)
            .take(n)
            .map(|c| {
                (
                    data.join("pbc").join(&c.path),
                    colour.values[c.attributes[k]].to_string(),
                )
            })
            .collect()
    };
    let mut out = pick(true);
    out.extend(pick(false));
    Ok(out)
}

/// A user who calls "light blue" every cytoplasm WBCAtt calls blue gives that value for 100
/// PBC cells in a labels CSV (the dataset view's): the fitted profile corrects the
/// cytoplasm colour, and switched on, the page calls most of 40 other blue cells light blue,
/// as `wbc fit` + `wbc analyse --profile` do on the same cells. A value given in the cell
/// panel is counted, exported with the table and kept across a reload.
#[test]
fn attribute_values_correct_that_attribute_as_the_cli_predicts() -> Result<()> {
    let labelled = cytoplasm_cells(0, 50)?;
    let others: Vec<(PathBuf, String)> = cytoplasm_cells(50, 20)?
        .into_iter()
        .filter(|c| !labelled.iter().any(|l| l.0 == c.0))
        .collect();
    let habit = |v: &str| if v == "blue" { "light blue" } else { v }.to_string();
    // The images in one folder, as `wbc fit --images` reads them.
    let folder = artefacts().join("adapt-attribute-cells");
    std::fs::create_dir_all(&folder)?;
    for (p, _) in labelled.iter().chain(&others) {
        std::fs::copy(p, folder.join(name_of(p)))?;
    }
    let csv = artefacts().join("adapt-attribute-labels.csv");
    let mut text = String::from("img_name,cytoplasm_colour\n");
    for (p, v) in &labelled {
        text.push_str(&format!("{},{}\n", name_of(p), habit(v)));
    }
    std::fs::write(&csv, &text)?;

    let (server, driver) = served()?;
    let s = opened(&driver, &server)?;
    let files: Vec<PathBuf> = labelled
        .iter()
        .chain(&others)
        .map(|c| c.0.clone())
        .collect();
    s.upload_many("file-input", &files)?;
    answered(&s, files.len())?;
    let light_blue = |csv: &str| -> Result<usize> {
        let colours = by_name(csv, "cytoplasm_colour")?;
        Ok(others
            .iter()
            .filter(|c| {
                c.1 == "blue"
                    && colours.get(&name_of(&c.0)).map(String::as_str) == Some("light blue")
            })
            .count())
    };
    let blue_others = others.iter().filter(|c| c.1 == "blue").count();
    s.click("view-table")?;
    let before = exported_csv(&s)?;
    s.click("view-dataset")?;
    s.upload("labels-input", &csv)?;
    fit(&s, labelled.len())?;
    ensure!(s.attr("profile-summary", "data-kind")?.as_deref() == Some("attributes"));
    let used = s.attr("attribute-fit-cytoplasm_colour", "data-used")?;
    let (shipped_cv, adapted_cv) = (
        number(&s, "attribute-fit-cytoplasm_colour", "data-shipped")?,
        number(&s, "attribute-fit-cytoplasm_colour", "data-adapted")?,
    );
    ensure!(
        used.as_deref() == Some("true") && adapted_cv > shipped_cv,
        "the cytoplasm colour correction: used {used:?}, cross-validated {shipped_cv} → {adapted_cv}"
    );
    s.click("apply-profile")?;
    let after = exported_csv(&s)?;
    let (n_before, n_after) = (light_blue(&before)?, light_blue(&after)?);
    s.screenshot("adapt-attribute-profile")?;

    // The CLI, from the same labels.
    let cli_text = cli_fit_and_analyse(
        &csv,
        &folder,
        others.iter().map(|c| folder.join(name_of(&c.0))),
        "adapt-attribute",
    )?;
    let (page, cli) = (
        by_name(&after, "cytoplasm_colour")?,
        by_name(&cli_text, "cytoplasm_colour")?,
    );
    let differ = others
        .iter()
        .filter(|c| page.get(&name_of(&c.0)) != cli.get(&name_of(&c.0)))
        .count();
    let changed_others = others
        .iter()
        .filter(|c| c.1 != "blue")
        .filter(|c| {
            by_name(&before, "cytoplasm_colour")
                .ok()
                .and_then(|b| b.get(&name_of(&c.0)).cloned())
                != page.get(&name_of(&c.0)).cloned()
        })
        .count();
    eprintln!(
        "cytoplasm colour from 100 cells' values (cross-validated {:.1}% → {:.1}%): of {blue_others} other cells WBCAtt calls blue, {n_before} called light blue before, {n_after} after (CLI {}); {changed_others} of {} not-blue cells changed; {differ} answers differ from the CLI's",
        100.0 * shipped_cv,
        100.0 * adapted_cv,
        light_blue(&cli_text)?,
        others.len() - blue_others
    );
    ensure!(
        n_after >= n_before + blue_others / 4,
        "the correction moved {n_before} → {n_after} of {blue_others} blue cells to light blue"
    );
    ensure!(
        differ <= 2,
        "{differ} cytoplasm colours differ from the CLI's"
    );

    // A value given in the panel: counted, shown corrected, exported, kept across a reload.
    let (cell, _) = others
        .iter()
        .find(|c| c.1 == "blue")
        .context("a blue cell")?;
    let name = name_of(cell);
    label_in_panel(&s, &name, "")?;
    ensure!(
        s.find("corrected-cytoplasm_colour")?.is_some(),
        "the panel does not say the cytoplasm colour is corrected"
    );
    let (_, shape) = wbc_core::schema::attribute("nucleus_shape").context("shape")?;
    let indented = shape
        .value_index("unsegmented-indented")
        .context("indented")?;
    s.js(&format!("const e = document.querySelector('[data-testid=own-nucleus_shape]'); e.value = '{indented}'; e.dispatchEvent(new Event('change', {{bubbles: true}}));"))?;
    s.js("document.querySelector('[data-testid=attribute-cytoplasm_colour]').scrollIntoView()")?;
    s.screenshot("adapt-attribute-panel")?;
    s.click("view-table")?;
    let counts = s.text("label-counts")?;
    ensure!(
        counts.contains("nucleus shape 1") && counts.contains("cytoplasm colour 100"),
        "{counts}"
    );
    let exported = by_name(&exported_csv(&s)?, "user_attributes")?;
    ensure!(
        exported.get(&name).map(String::as_str) == Some("nucleus_shape=unsegmented-indented"),
        "exported: {:?}",
        exported.get(&name)
    );
    s.goto(&format!("{}/?cpu", server.url))?;
    s.settled(LOAD)?;
    label_in_panel(&s, &name, "")?;
    let kept = s.js("return document.querySelector('[data-testid=own-nucleus_shape]').value")?;
    ensure!(
        kept.as_str() == Some(&indented.to_string()),
        "after a reload the panel's nucleus shape value is {kept:?}"
    );
    ensure!(
        s.find("corrected-cytoplasm_colour")?.is_some(),
        "after a reload the profile no longer corrects the cytoplasm colour"
    );
    Ok(())
}
