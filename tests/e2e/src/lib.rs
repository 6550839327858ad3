//! Test harness for the built app: a static file server for `dist/`, ChromeDriver started on a
//! free port, and a small blocking WebDriver client (only the commands the tests use).
#![forbid(unsafe_code)]

use anyhow::{anyhow, bail, ensure, Context, Result};
use serde_json::{json, Value};
use std::io::Read;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("root")
}

/// Where tests write screenshots and generated images.
pub fn artefacts() -> PathBuf {
    let dir = root().join("target/e2e");
    std::fs::create_dir_all(&dir).expect("target/e2e");
    dir
}

/// Serve `dir` over HTTP on 127.0.0.1 (a free port) as `cargo xtask serve` does (the same
/// server, `wbc-serve`: the headers of Trunk.toml, precompressed copies), recording every
/// request path so tests can check the page fetched nothing but its own assets.
pub struct StaticServer {
    pub url: String,
    pub requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    server: wbc_serve::Server,
}

impl StaticServer {
    pub fn start(dir: PathBuf) -> Result<Self> {
        Self::serve(dir, false, served_headers()?)
    }

    /// As a development server does (`trunk serve`): a missing file is answered with
    /// index.html and status 200, so an app must not take any 200 answer for its file.
    pub fn start_with_fallback(dir: PathBuf) -> Result<Self> {
        Self::serve(dir, true, served_headers()?)
    }

    /// Without the served headers (no policy header): for the test that takes the policy out
    /// to show the request check catches what the policy would have stopped.
    pub fn start_without_headers(dir: PathBuf) -> Result<Self> {
        Self::serve(dir, false, Vec::new())
    }

    /// Every request answered after `latency`: a slow network (the served headers as usual).
    pub fn start_with_latency(dir: PathBuf, latency: std::time::Duration) -> Result<Self> {
        Self::with_options(
            dir,
            wbc_serve::Options {
                headers: served_headers()?,
                latency,
                ..wbc_serve::Options::default()
            },
        )
    }

    fn serve(dir: PathBuf, spa_fallback: bool, headers: Vec<(String, String)>) -> Result<Self> {
        Self::with_options(
            dir,
            wbc_serve::Options {
                headers,
                spa_fallback,
                ..wbc_serve::Options::default()
            },
        )
    }

    fn with_options(dir: PathBuf, options: wbc_serve::Options) -> Result<Self> {
        let server = wbc_serve::Server::start(dir, "127.0.0.1:0", options)?;
        Ok(Self {
            url: server.url.clone(),
            requests: server.requests.clone(),
            server,
        })
    }

    /// Take the server off the network (connections closed unanswered) or back on.
    pub fn set_online(&self, online: bool) {
        self.server.set_online(online);
    }

    /// Body bytes sent so far per path, with the encoding used (None: uncompressed).
    pub fn sent(&self) -> Vec<(String, usize, Option<&'static str>)> {
        self.server.sent.lock().expect("sent").clone()
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A ChromeDriver process. On drop it ends every session it opened that is still open (each
/// closes its Chromium), asks ChromeDriver to shut down, and only then kills what is left of
/// its process group: killing ChromeDriver first left headless browsers running, parented
/// to nothing, run after run.
pub struct Driver {
    child: Child,
    pub url: String,
    /// The sessions opened and not yet closed (their WebDriver URLs).
    open: Arc<Mutex<Vec<String>>>,
}

impl Driver {
    pub fn start() -> Result<Self> {
        let port = free_port()?;
        let bin = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        // Its own process group (id = its pid), so that whatever it starts can be found and
        // stopped with it.
        let child = Command::new(&bin)
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {bin} (install chromium-driver)"))?;
        let url = format!("http://127.0.0.1:{port}");
        let start = Instant::now();
        while ureq::get(&format!("{url}/status")).call().is_err() {
            if start.elapsed() > Duration::from_secs(20) {
                bail!("chromedriver did not start");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(Self {
            child,
            url,
            open: Arc::default(),
        })
    }

    /// A headless Chromium session; `webgpu` adds `--enable-unsafe-webgpu` (SwiftShader here)
    /// and opens the app with `?webgpu`, so it moves to WebGPU without comparing speeds
    /// (SwiftShader is slower than the CPU here, and these sessions test the WebGPU path);
    /// [`Session::letting_the_page_choose`] leaves the choice to the page.
    pub fn session(&self, webgpu: bool) -> Result<Session> {
        let mut args = vec![
            "--headless=new",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--window-size=1280,1600",
        ];
        if webgpu {
            args.push("--enable-unsafe-webgpu");
        }
        let binary = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": binary, "args": args},
            "goog:loggingPrefs": {"browser": "ALL", "performance": "ALL"}
        }}});
        let response: Value = ureq::post(&format!("{}/session", self.url))
            .send_json(caps)
            .map_err(|e| anyhow!("new session: {}", describe(e)))?
            .into_json()?;
        let id = response["value"]["sessionId"]
            .as_str()
            .ok_or_else(|| anyhow!("no session id: {response}"))?;
        let base = format!("{}/session/{id}", self.url);
        self.open.lock().expect("sessions").push(base.clone());
        Ok(Session {
            base,
            force_webgpu: webgpu,
            open: self.open.clone(),
        })
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let open: Vec<String> = std::mem::take(&mut *self.open.lock().expect("sessions"));
        for base in open {
            end_session(&base);
        }
        let _ = ureq::get(&format!("{}/shutdown", self.url))
            .timeout(Duration::from_secs(5))
            .call();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Anything of its group still running (a browser that did not close) goes too, one
        // process at a time by its own (positive) pid: Debian's procps-ng 4.0.2 `kill` mangles
        // a negative one (`kill -KILL -12930` signalled -1, every process of the user).
        let _ = self.child.kill();
        for pid in group_members(self.child.id()) {
            let _ = Command::new("kill")
                .args(["-s", "KILL", "--", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.wait();
    }
}

/// The processes whose process group is `group` (from /proc; this process never among them).
fn group_members(group: u32) -> Vec<u32> {
    let me = std::process::id();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|p| {
            let pid: u32 = p.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(p.path().join("stat")).ok()?;
            // pid (comm) state ppid pgrp …: the name may hold spaces, so read after its ')'.
            let after = &stat[stat.rfind(')')? + 1..];
            let pgrp: u32 = after.split_whitespace().nth(2)?.parse().ok()?;
            (pgrp == group && pid != me && pid > 1).then_some(pid)
        })
        .collect()
}

/// Close a WebDriver session (and with it its browser).
fn end_session(base: &str) {
    let _ = ureq::delete(base).timeout(Duration::from_secs(30)).call();
}

fn describe(e: ureq::Error) -> String {
    match e {
        ureq::Error::Status(code, r) => {
            format!("HTTP {code}: {}", r.into_string().unwrap_or_default())
        }
        other => other.to_string(),
    }
}

/// One browser session; closed on drop.
pub struct Session {
    base: String,
    /// Open the app's pages with `webgpu` in the address (see [`Driver::session`]).
    force_webgpu: bool,
    /// Its driver's list of open sessions, which it leaves when closed.
    open: Arc<Mutex<Vec<String>>>,
}

impl Session {
    fn cmd(&self, method: &str, path: &str, body: Value) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let req = ureq::request(method, &url).timeout(Duration::from_secs(300));
        let resp = if method == "GET" {
            req.call()
        } else {
            req.send_json(body)
        };
        let v: Value = resp
            .map_err(|e| anyhow!("{method} {path}: {}", describe(e)))?
            .into_json()?;
        Ok(v["value"].clone())
    }

    pub fn goto(&self, url: &str) -> Result<()> {
        let query = url.split_once('?').map_or("", |(_, q)| q);
        let asks_cpu = wbc_messages::query_has(query, "cpu");
        let url = if self.force_webgpu && url.starts_with("http") && !asks_cpu {
            let (page, fragment) = url
                .split_once('#')
                .map_or((url, None), |(p, f)| (p, Some(f)));
            let joined = format!("{page}{}webgpu", if page.contains('?') { '&' } else { '?' });
            match fragment {
                Some(f) => format!("{joined}#{f}"),
                None => joined,
            }
        } else {
            url.to_string()
        };
        self.cmd("POST", "/url", json!({"url": url})).map(|_| ())
    }

    /// A WebGPU session that leaves the device to the page: it hands over to WebGPU only
    /// where that is faster than the CPU.
    pub fn letting_the_page_choose(mut self) -> Self {
        self.force_webgpu = false;
        self
    }

    /// A Chrome DevTools Protocol command through ChromeDriver (e.g. network emulation).
    pub fn cdp(&self, cmd: &str, params: Value) -> Result<Value> {
        self.cmd(
            "POST",
            "/goog/cdp/execute",
            json!({"cmd": cmd, "params": params}),
        )
    }

    /// Resize the browser window (CSS pixels of the outer window).
    pub fn set_window_size(&self, width: u32, height: u32) -> Result<()> {
        self.cmd(
            "POST",
            "/window/rect",
            json!({"width": width, "height": height}),
        )
        .map(|_| ())
    }

    /// Click the element with `data-testid` as a user would (a trusted gesture, which the
    /// Fullscreen API asks for).
    pub fn click(&self, testid: &str) -> Result<()> {
        let id = self.find(testid)?.ok_or_else(|| anyhow!("no {testid}"))?;
        self.cmd("POST", &format!("/element/{id}/click"), json!({}))
            .map(|_| ())
    }

    /// Press and release one key as the keyboard would send it (WebDriver key codes, e.g.
    /// "\u{E014}" for →), to whatever has the focus.
    pub fn press(&self, key: &str) -> Result<()> {
        self.cmd(
            "POST",
            "/actions",
            json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
                {"type": "keyDown", "value": key}, {"type": "keyUp", "value": key}
            ]}]}),
        )
        .map(|_| ())
    }

    /// Run asynchronous JavaScript in the page: the script calls `arguments[0](result)`.
    pub fn js_async(&self, script: &str) -> Result<Value> {
        self.cmd(
            "POST",
            "/execute/async",
            json!({"script": script, "args": []}),
        )
    }

    /// The files the page listed as refused: each name and its line (name and reason).
    pub fn refused_files(&self) -> Result<Vec<(String, String)>> {
        let listed = self.js("return [...document.querySelectorAll('[data-testid=refused-file]')].map(li => [li.dataset.name, li.textContent])")?;
        Ok(serde_json::from_value(listed)?)
    }

    /// Run JavaScript in the page and return its result.
    pub fn js(&self, script: &str) -> Result<Value> {
        self.cmd(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": []}),
        )
    }

    /// Whether a cell's panel is on show and fully built (it is built in steps, one frame
    /// apart: the image and type, then the attributes, then the "why" section).
    pub fn panel_ready(&self) -> Result<bool> {
        Ok(self.find("cell-panel")?.is_some() && !self.panel_building()?)
    }

    /// Whether a cell's panel is still being built.
    pub fn panel_building(&self) -> Result<bool> {
        Ok(
            self.js("return !!document.querySelector('[data-testid=cell-panel][data-building]')")?
                == Value::Bool(true),
        )
    }

    /// The element with `data-testid`, if present.
    pub fn find(&self, testid: &str) -> Result<Option<String>> {
        let sel = format!("[data-testid=\"{testid}\"]");
        match self.cmd(
            "POST",
            "/elements",
            json!({"using": "css selector", "value": sel}),
        )? {
            Value::Array(list) if !list.is_empty() => Ok(list[0]
                .as_object()
                .and_then(|o| o.values().next())
                .and_then(|v| v.as_str())
                .map(str::to_string)),
            _ => Ok(None),
        }
    }

    pub fn text(&self, testid: &str) -> Result<String> {
        let v = self.js(&format!("const e=document.querySelector('[data-testid=\"{testid}\"]'); return e ? e.innerText : null;"))?;
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("no element {testid}"))
    }

    pub fn attr(&self, testid: &str, name: &str) -> Result<Option<String>> {
        let v = self.js(&format!("const e=document.querySelector('[data-testid=\"{testid}\"]'); return e ? e.getAttribute('{name}') : null;"))?;
        Ok(v.as_str().map(str::to_string))
    }

    pub fn visible(&self, testid: &str) -> Result<bool> {
        let v = self.js(&format!("const e=document.querySelector('[data-testid=\"{testid}\"]'); return !!e && e.offsetParent !== null && e.innerText.trim().length > 0;"))?;
        Ok(v.as_bool().unwrap_or(false))
    }

    /// Type a path into the file input: what a user choosing that file does.
    pub fn upload(&self, testid: &str, file: &Path) -> Result<()> {
        let id = self.find(testid)?.ok_or_else(|| anyhow!("no {testid}"))?;
        let path = file.canonicalize()?.display().to_string();
        self.cmd(
            "POST",
            &format!("/element/{id}/value"),
            json!({"text": path}),
        )
        .map(|_| ())
    }

    /// Choose several files at once (the input accepts multiple files).
    pub fn upload_many(&self, testid: &str, files: &[PathBuf]) -> Result<()> {
        let id = self.find(testid)?.ok_or_else(|| anyhow!("no {testid}"))?;
        let paths: Vec<String> = files
            .iter()
            .map(|f| f.canonicalize().map(|p| p.display().to_string()))
            .collect::<std::io::Result<_>>()?;
        self.cmd(
            "POST",
            &format!("/element/{id}/value"),
            json!({"text": paths.join("\n")}),
        )
        .map(|_| ())
    }

    /// Poll `cond` until it is true or `timeout` passes.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        mut cond: impl FnMut(&Self) -> Result<bool>,
    ) -> Result<()> {
        let start = Instant::now();
        loop {
            if cond(self)? {
                return Ok(());
            }
            if start.elapsed() > timeout {
                let _ = self.screenshot(&format!("timeout-{}", what.replace(' ', "_")));
                bail!(
                    "timed out after {timeout:?} waiting for {what}; browser console: {}",
                    self.console()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Wait until the page is ready on the device it stays on, and return that device: the
    /// models loaded, the page idle, and no longer moving to WebGPU (the page starts on the
    /// CPU-only worker and a WebGPU worker takes over when the browser has a GPU).
    pub fn settled(&self, timeout: Duration) -> Result<String> {
        self.wait_for("the device settled", timeout, |s| {
            Ok(s.text("device").is_ok_and(|d| d != "…")
                && s.find("gpu-loading")?.is_none()
                && s.text("status")? == "idle")
        })?;
        self.text("device")
    }

    /// The browser console so far (for failure messages).
    pub fn console(&self) -> String {
        self.cmd("POST", "/se/log", json!({"type": "browser"}))
            .map(|v| v.to_string())
            .unwrap_or_default()
    }

    /// Every URL the browser has requested since the last call, from two witnesses: the
    /// DevTools protocol's network events (page and worker) and the page's resource timing.
    pub fn requested_urls(&self) -> Result<Vec<String>> {
        let mut urls = Vec::new();
        let log = self.cmd("POST", "/se/log", json!({"type": "performance"}))?;
        for entry in log.as_array().into_iter().flatten() {
            let Some(message) = entry["message"].as_str() else {
                continue;
            };
            let event: Value = serde_json::from_str(message).unwrap_or_default();
            if event["message"]["method"] == "Network.requestWillBeSent" {
                if let Some(url) = event["message"]["params"]["request"]["url"].as_str() {
                    urls.push(url.to_string());
                }
            }
        }
        let timing = self.js(
            "return performance.getEntriesByType('resource').map(e => e.name).concat([location.href]);",
        )?;
        urls.extend(
            timing
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|u| u.as_str().map(str::to_string)),
        );
        Ok(urls)
    }

    /// Save a PNG screenshot under target/e2e/.
    pub fn screenshot(&self, name: &str) -> Result<PathBuf> {
        use base64::Engine;
        let v = self.cmd("GET", "/screenshot", Value::Null)?;
        let png = base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap_or(""))?;
        let path = artefacts().join(format!("{name}.png"));
        std::fs::write(&path, png)?;
        Ok(path)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        end_session(&self.base);
        self.open
            .lock()
            .expect("sessions")
            .retain(|b| *b != self.base);
    }
}

/// The analyser's table as CSV (the page's export and `wbc analyse --out`): rows by file name,
/// each a map from column to field.
pub type Table = std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>;

/// A CSV as maps from column name to field, keyed by `img_name`.
pub fn parse_csv(text: &str) -> Table {
    let table = wbc_core::csv_text::read(text).unwrap_or_default();
    table
        .records
        .iter()
        .map(|(_, record)| {
            let fields: std::collections::BTreeMap<String, String> = table
                .header
                .iter()
                .zip(record)
                .map(|(h, f)| (h.clone(), f.clone()))
                .collect();
            (fields["img_name"].clone(), fields)
        })
        .collect()
}

/// Every row of `page` has the same cell type and attribute values as the CLI's row of the
/// same file.
pub fn same_types_and_attributes(page: &Table, cli: &Table) -> Result<()> {
    let columns = [
        "label",
        "cell_size",
        "cell_shape",
        "nucleus_shape",
        "nuclear_cytoplasmic_ratio",
        "chromatin_density",
        "cytoplasm_vacuole",
        "cytoplasm_texture",
        "cytoplasm_colour",
        "granule_type",
        "granule_colour",
        "granularity",
    ];
    let mut differ = Vec::new();
    for (name, row) in page {
        let other = cli
            .get(name)
            .with_context(|| format!("{name} missing from the CLI table"))?;
        for c in columns {
            if row[c] != other[c] {
                differ.push(format!("{name} {c}: page {} CLI {}", row[c], other[c]));
            }
        }
    }
    ensure!(differ.is_empty(), "page and CLI tables differ: {differ:?}");
    Ok(())
}

/// Run `wbc analyse` (which analyses the cells one by one) on `inputs` into `out`, and check
/// the page's exported CSV has the same rows, each with the same type and attribute values.
/// Returns both tables.
pub fn equals_cli(
    page_csv: &str,
    wbc: &Path,
    inputs: &[PathBuf],
    out: &Path,
) -> Result<(Table, Table)> {
    let status = Command::new(wbc)
        .arg("analyse")
        .args(inputs)
        .arg("--out")
        .arg(out)
        .current_dir(root())
        .stdout(Stdio::null())
        .status()
        .with_context(|| format!("running {}", wbc.display()))?;
    ensure!(status.success(), "wbc analyse failed");
    let page = parse_csv(page_csv);
    let cli = parse_csv(&std::fs::read_to_string(out)?);
    ensure!(
        page.len() == cli.len(),
        "{} page rows, {} CLI rows",
        page.len(),
        cli.len()
    );
    same_types_and_attributes(&page, &cli)?;
    Ok((page, cli))
}

/// Press "export CSV" and read what would have been downloaded (the anchor's click is caught,
/// the blob read back).
pub fn exported_csv(s: &Session) -> Result<String> {
    s.js("window.__exported = null; const click = HTMLAnchorElement.prototype.click; HTMLAnchorElement.prototype.click = function() { window.__exported = this.href; }; document.querySelector('[data-testid=export-csv]').click(); HTMLAnchorElement.prototype.click = click;")?;
    Ok(s
        .js("const x = new XMLHttpRequest(); x.open('GET', window.__exported, false); x.send(); return x.responseText;")?
        .as_str()
        .context("no CSV exported")?
        .to_string())
}

/// The headers `cargo xtask serve` sends (`[serve.headers]` in Trunk.toml).
pub fn served_headers() -> Result<Vec<(String, String)>> {
    wbc_serve::served_headers(&root().join("Trunk.toml"))
}

/// The URL paths of every file under `dir` (what the page may fetch from its own origin).
pub fn own_assets(dir: &Path) -> Result<std::collections::BTreeSet<String>> {
    fn walk(base: &Path, dir: &Path, out: &mut std::collections::BTreeSet<String>) -> Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                walk(base, &path, out)?;
            } else if let Ok(rel) = path.strip_prefix(base) {
                out.insert(format!("/{}", rel.display()));
            }
        }
        Ok(())
    }
    let mut out = std::collections::BTreeSet::new();
    walk(dir, dir, &mut out)?;
    // The page itself, the icon every browser asks for on its own, and the optional
    // reference index the page looks for in every build (present only when built in).
    out.insert("/".into());
    out.insert("/favicon.ico".into());
    out.insert("/reference/index.json".into());
    Ok(out)
}

/// The requests that are not the page's own assets: another origin, or a path of this origin
/// that is not a file of the build. Object URLs (`blob:` of this origin) and `data:` URLs
/// never leave the browser and are allowed.
pub fn foreign_requests(
    urls: &[String],
    origin: &str,
    assets: &std::collections::BTreeSet<String>,
) -> Vec<String> {
    urls.iter()
        .filter(|url| {
            if url.starts_with("data:") || url.starts_with(&format!("blob:{origin}/")) {
                return false;
            }
            match url.strip_prefix(origin) {
                Some(rest) if rest.is_empty() || rest.starts_with('/') => {
                    let path = rest.split(['?', '#']).next().unwrap_or("");
                    let path = if path.is_empty() { "/" } else { path };
                    !assets.contains(path)
                }
                _ => true,
            }
        })
        .cloned()
        .collect()
}

/// Copy a folder and everything under it (a built dist/ to change for a test).
pub fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Read a whole file (helper for tests).
pub fn read(path: &Path) -> Result<Vec<u8>> {
    let mut f = std::fs::File::open(path)?;
    let mut v = Vec::new();
    f.read_to_end(&mut v)?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_own_assets_pass_the_allow_list() {
        let assets: std::collections::BTreeSet<String> =
            ["/", "/index.html", "/models/seg_net.bpk", "/favicon.ico"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        let origin = "http://127.0.0.1:4000";
        let urls: Vec<String> = [
            "http://127.0.0.1:4000/",
            "http://127.0.0.1:4000/models/seg_net.bpk?v=2",
            "blob:http://127.0.0.1:4000/1234-5678",
            "data:image/png;base64,AAAA",
            "http://127.0.0.1:4000/upload",
            "https://cdn.example.com/model.bpk",
            "blob:https://elsewhere.example/1",
            "http://127.0.0.1:40000/",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            foreign_requests(&urls, origin, &assets),
            vec![
                "http://127.0.0.1:4000/upload",
                "https://cdn.example.com/model.bpk",
                "blob:https://elsewhere.example/1",
                "http://127.0.0.1:40000/",
            ]
        );
    }
}
