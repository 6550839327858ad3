//! The app's static server and its precompression.
//!
//! `cargo xtask serve` and the e2e tests serve `dist/` with this one server, so the tests see
//! the app as a user gets it: the headers of `[serve.headers]` in Trunk.toml (the
//! Content-Security-Policy), each file's MIME type (`application/wasm` lets the browser compile
//! while downloading), and the precompressed copy the build wrote beside a file (`.br`, else
//! `.gz`) when the browser accepts that encoding. A missing file is a 404, not index.html.
//! Every answer says `Cache-Control: no-cache` with an ETag: the browser keeps what it
//! downloaded and asks again each time, so the service worker storing the build after the
//! first prediction gets "304 Not Modified" for what the page already fetched instead of a
//! second download.
#![forbid(unsafe_code)]

use anyhow::{anyhow, Context, Result};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The headers every answer carries (`[serve.headers]` of `trunk_toml`), as `(name, value)`.
pub fn served_headers(trunk_toml: &Path) -> Result<Vec<(String, String)>> {
    let config: toml::Table = std::fs::read_to_string(trunk_toml)
        .with_context(|| format!("reading {}", trunk_toml.display()))?
        .parse()?;
    let headers = config
        .get("serve")
        .and_then(|s| s.get("headers"))
        .and_then(|h| h.as_table())
        .ok_or_else(|| anyhow!("{} has no [serve.headers]", trunk_toml.display()))?;
    Ok(headers
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect())
}

/// How to serve.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Sent with every answer.
    pub headers: Vec<(String, String)>,
    /// Answer a missing file with index.html and 200, as development servers (`trunk serve`)
    /// do: only for the test that checks the app does not take that for its file.
    pub spa_fallback: bool,
    /// Wait this long before answering each request: a slow network's round trip, for the
    /// benchmark of the first prediction on one (requests on separate connections overlap,
    /// as they would).
    pub latency: std::time::Duration,
}

/// A running server (a background thread per connection).
pub struct Server {
    pub url: String,
    /// Every request's path, in order of arrival.
    pub requests: Arc<Mutex<Vec<String>>>,
    /// Bytes sent in bodies, per path (compressed size where a compressed copy was sent).
    pub sent: Arc<Mutex<Vec<(String, usize, Option<&'static str>)>>>,
    online: Arc<AtomicBool>,
}

impl Server {
    /// Serve `dir` on `address` (`127.0.0.1:0` for a free port).
    pub fn start(dir: PathBuf, address: &str, options: Options) -> Result<Self> {
        let listener =
            TcpListener::bind(address).with_context(|| format!("listening on {address}"))?;
        let url = format!("http://{}", listener.local_addr()?);
        let requests = Arc::new(Mutex::new(Vec::new()));
        let sent = Arc::new(Mutex::new(Vec::new()));
        let online = Arc::new(AtomicBool::new(true));
        let (log, sent_log, up) = (requests.clone(), sent.clone(), online.clone());
        let options = Arc::new(options);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                if !up.load(Ordering::SeqCst) {
                    drop(stream);
                    continue;
                }
                let (dir, log, sent, options) =
                    (dir.clone(), log.clone(), sent_log.clone(), options.clone());
                std::thread::spawn(move || {
                    let _ = serve_one(stream, &dir, &log, &sent, &options);
                });
            }
        });
        Ok(Self {
            url,
            requests,
            sent,
            online,
        })
    }

    /// Take the server off the network (connections closed unanswered) or back on.
    pub fn set_online(&self, online: bool) {
        self.online.store(online, Ordering::SeqCst);
    }
}

/// The MIME type of a served file.
pub fn mime(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript",
        "wasm" => "application/wasm",
        "css" => "text/css",
        "json" => "application/json",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "svg" => "image/svg+xml",
        "webmanifest" => "application/manifest+json",
        _ => "application/octet-stream",
    }
}

/// The file a request path names under `dir`, or None when it tries to leave `dir` or is not
/// a well-formed path. The path is percent-decoded first (a browser asks for `a%20b.png`);
/// an encoded `..`, `/` or `\` is judged after decoding, so it cannot leave `dir` either.
fn file_for(dir: &Path, path: &str) -> Option<PathBuf> {
    let raw = path.split(['?', '#']).next().unwrap_or("/");
    let decoded = percent_decode(raw)?;
    let clean = decoded.trim_start_matches('/');
    if clean.split('/').any(|part| part == "..")
        || clean.contains(['\\', '\0', ':'])
        || Path::new(clean).is_absolute()
    {
        return None;
    }
    Some(if clean.is_empty() {
        dir.join("index.html")
    } else {
        dir.join(clean)
    })
}

/// `%XX` escapes decoded; None for a broken escape or bytes that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Whether the request's Accept-Encoding header accepts `encoding` (RFC 9110 §12.5.3):
/// names in any case, a q-value of zero (`q=0`, `q=0.000`) refuses, `*` stands for every
/// encoding not named. A q-value that is not a number refuses too.
fn accepts(header: Option<&str>, encoding: &str) -> bool {
    let Some(header) = header else {
        return false;
    };
    let mut named = None;
    let mut any = None;
    for item in header.split(',') {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let mut quality = Some(1.0f32);
        for param in parts {
            if let Some((key, value)) = param.split_once('=') {
                if key.trim().eq_ignore_ascii_case("q") {
                    quality = value
                        .trim()
                        .parse::<f32>()
                        .ok()
                        .filter(|q| (0.0..=1.0).contains(q));
                }
            }
        }
        let ok = quality.is_some_and(|q| q > 0.0);
        if name == encoding {
            named = Some(ok);
        } else if name == "*" {
            any = Some(ok);
        }
    }
    named.or(any).unwrap_or(false)
}

/// The file to send for `file`: its precompressed copy in the first encoding the request
/// accepts (brotli, then gzip), else the file itself. A copy older than its file is stale (the
/// file was changed after the build) and is not sent.
fn variant_for(file: &Path, accept_encoding: Option<&str>) -> (PathBuf, Option<&'static str>) {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    for (encoding, suffix) in [("br", "br"), ("gzip", "gz")] {
        if accepts(accept_encoding, encoding) {
            let mut name = file.as_os_str().to_owned();
            name.push(format!(".{suffix}"));
            let copy = PathBuf::from(name);
            if copy.is_file() && modified(&copy) >= modified(file) {
                return (copy, Some(encoding));
            }
        }
    }
    (file.to_path_buf(), None)
}

type SentLog = Mutex<Vec<(String, usize, Option<&'static str>)>>;

fn serve_one(
    mut stream: TcpStream,
    dir: &Path,
    log: &Mutex<Vec<String>>,
    sent: &SentLog,
    options: &Options,
) -> Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut accept_encoding = None;
    let mut if_none_match = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" {
            break;
        }
        if let Some((name, value)) = h.split_once(':') {
            if name.trim().eq_ignore_ascii_case("accept-encoding") {
                accept_encoding = Some(value.trim().to_string());
            } else if name.trim().eq_ignore_ascii_case("if-none-match") {
                if_none_match = Some(value.trim().to_string());
            }
        }
    }
    let mut words = line.split_whitespace();
    let method = words.next().unwrap_or("").to_string();
    let path = words.next().unwrap_or("/").to_string();
    log.lock().expect("log").push(path.clone());
    if !options.latency.is_zero() {
        std::thread::sleep(options.latency);
    }
    let file = file_for(dir, &path).map(|file| {
        if options.spa_fallback && !file.is_file() {
            dir.join("index.html")
        } else {
            file
        }
    });
    let headers: String = options
        .headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    // A static folder is only read: nothing else is answered as if it were a GET.
    if method != "GET" && method != "HEAD" {
        write!(
            stream,
            "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\nContent-Length: 0\r\n{headers}Connection: close\r\n\r\n"
        )?;
        return Ok(());
    }
    match file.filter(|f| f.is_file()) {
        Some(file) => {
            let (variant, encoding) = variant_for(&file, accept_encoding.as_deref());
            let tag = etag(&file, encoding);
            // The browser's copy is still good: no need to read the file.
            if if_none_match
                .as_deref()
                .is_some_and(|tags| tags.split(',').any(|t| t.trim() == tag))
            {
                write!(
                    stream,
                    "HTTP/1.1 304 Not Modified\r\nETag: {tag}\r\nCache-Control: no-cache\r\nVary: Accept-Encoding\r\n{headers}Connection: close\r\n\r\n"
                )?;
                sent.lock().expect("sent").push((path, 0, encoding));
                return Ok(());
            }
            let length = std::fs::metadata(&variant)?.len() as usize;
            let body = if method == "HEAD" {
                Vec::new()
            } else {
                std::fs::read(&variant)?
            };
            let encoding_header = encoding
                .map(|e| format!("Content-Encoding: {e}\r\n"))
                .unwrap_or_default();
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {}\r\n{encoding_header}ETag: {tag}\r\nCache-Control: no-cache\r\nVary: Accept-Encoding\r\n{headers}Connection: close\r\n\r\n",
                mime(&file),
                length
            )?;
            stream.write_all(&body)?;
            sent.lock()
                .expect("sent")
                .push((path, body.len(), encoding));
        }
        None => {
            write!(
                stream,
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n{headers}Connection: close\r\n\r\n"
            )?;
        }
    }
    Ok(())
}

/// A file's version as the browser sees it: its length and modification time, and the
/// encoding sent (each encoding is a different body).
fn etag(file: &Path, encoding: Option<&str>) -> String {
    let meta = std::fs::metadata(file).ok();
    let modified = meta
        .as_ref()
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "\"{:x}-{modified:x}-{}\"",
        meta.map(|m| m.len()).unwrap_or(0),
        encoding.unwrap_or("identity")
    )
}

/// Files worth compressing: text and wasm. (The f16 weights gain under 10% and are still
/// compressed only when that pays, see [`precompress`].)
fn compressible(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some(
            "wasm" | "js" | "mjs" | "css" | "html" | "json" | "svg" | "webmanifest" | "bpk" | "bin"
        )
    )
}

/// What precompressing one file gave.
#[derive(Debug, Clone)]
pub struct Compressed {
    /// Path under the served folder.
    pub path: String,
    pub bytes: usize,
    pub gzip: usize,
    pub brotli: usize,
}

/// Write `FILE.gz` (gzip, best) and `FILE.br` (brotli at `brotli_quality`: 11 for what
/// ships, less for a test build, where quality 11 on its 45 MB took CI two and a half minutes)
/// beside every compressible file under `dir` whose copy is at least 5% smaller; stale copies
/// are removed first. Returns every compressible file's sizes.
pub fn precompress(dir: &Path, brotli_quality: u32) -> Result<Vec<Compressed>> {
    let mut files = Vec::new();
    walk(dir, &mut files)?;
    let mut out = Vec::new();
    for file in files {
        let name = file.to_string_lossy().to_string();
        if name.ends_with(".gz") || name.ends_with(".br") {
            std::fs::remove_file(&file)?;
            continue;
        }
        if !compressible(&file) {
            continue;
        }
        let raw = std::fs::read(&file)?;
        let gzip = gzip(&raw)?;
        let brotli = brotli_at(&raw, brotli_quality)?;
        for (suffix, bytes) in [("gz", &gzip), ("br", &brotli)] {
            if bytes.len() * 100 <= raw.len() * 95 {
                std::fs::write(format!("{name}.{suffix}"), bytes)?;
            }
        }
        out.push(Compressed {
            path: file
                .strip_prefix(dir)
                .unwrap_or(&file)
                .to_string_lossy()
                .replace('\\', "/"),
            bytes: raw.len(),
            gzip: gzip.len(),
            brotli: brotli.len(),
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// gzip at the best compression.
pub fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(bytes)?;
    Ok(e.finish()?)
}

/// brotli at quality 11, window 22 (the format's usual best).
pub fn brotli(bytes: &[u8]) -> Result<Vec<u8>> {
    brotli_at(bytes, 11)
}

/// brotli at `quality` (0–11), window 22.
pub fn brotli_at(bytes: &[u8], quality: u32) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    {
        let mut w = brotli::CompressorWriter::new(&mut out, 1 << 16, quality, 22);
        w.write_all(bytes)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn get(url: &str, path: &str, accept: &str) -> (String, Vec<u8>) {
        let addr = url.trim_start_matches("http://");
        let mut s = TcpStream::connect(addr).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept-Encoding: {accept}\r\n\r\n"
        )
        .unwrap();
        let mut all = Vec::new();
        s.read_to_end(&mut all).unwrap();
        let split = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        (
            String::from_utf8_lossy(&all[..split]).to_string(),
            all[split + 4..].to_vec(),
        )
    }

    /// A browser that takes gzip gets the gzip copy with its Content-Encoding; one that takes
    /// brotli gets brotli; one that takes neither gets the file; both decode to the file.
    #[test]
    fn precompressed_copies_are_served_by_what_the_browser_accepts() {
        let dir = std::env::temp_dir().join(format!("wbc-serve-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("models")).unwrap();
        let text: Vec<u8> = (0..20_000u32)
            .flat_map(|i| format!("cell {} ", i % 97).into_bytes())
            .collect();
        std::fs::write(dir.join("app.wasm"), &text).unwrap();
        std::fs::write(dir.join("index.html"), b"<html></html>").unwrap();
        // Random-looking bytes do not compress: no copy is written.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let noise: Vec<u8> = (0..5000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        std::fs::write(dir.join("models/w.bpk"), &noise).unwrap();
        let sizes = precompress(&dir, 11).unwrap();
        assert!(dir.join("app.wasm.gz").is_file() && dir.join("app.wasm.br").is_file());
        assert!(!dir.join("models/w.bpk.gz").exists());
        assert_eq!(
            sizes.iter().find(|c| c.path == "app.wasm").unwrap().bytes,
            text.len()
        );
        // Precompressing again does not compress the copies.
        precompress(&dir, 11).unwrap();
        assert!(!dir.join("app.wasm.gz.gz").exists());

        let server = Server::start(
            dir.clone(),
            "127.0.0.1:0",
            Options {
                headers: vec![("X-Content-Type-Options".into(), "nosniff".into())],
                ..Options::default()
            },
        )
        .unwrap();
        let (head, body) = get(&server.url, "/app.wasm", "gzip, deflate");
        assert!(
            head.contains("Content-Encoding: gzip") && head.contains("application/wasm"),
            "{head}"
        );
        assert!(head.contains("X-Content-Type-Options: nosniff"));
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain, text);
        let (head, body) = get(&server.url, "/app.wasm", "gzip, br");
        assert!(head.contains("Content-Encoding: br"), "{head}");
        let mut plain = Vec::new();
        brotli::Decompressor::new(&body[..], 4096)
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain, text);
        let (head, body) = get(&server.url, "/app.wasm", "identity, gzip;q=0");
        assert!(!head.contains("Content-Encoding"), "{head}");
        assert_eq!(body, text);
        // The browser's copy is still good: 304, no body.
        let tag = head
            .lines()
            .find_map(|l| l.strip_prefix("ETag: "))
            .unwrap()
            .to_string();
        assert!(head.contains("Cache-Control: no-cache"));
        let (head, body) = get(
            &server.url,
            "/app.wasm",
            &format!("identity\r\nIf-None-Match: {tag}"),
        );
        assert!(head.starts_with("HTTP/1.1 304"), "{head}");
        assert!(body.is_empty());
        // A file changed after precompressing: its stale copies are not sent.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(dir.join("app.wasm"), b"changed").unwrap();
        let (head, body) = get(&server.url, "/app.wasm", "gzip, br");
        assert!(!head.contains("Content-Encoding"), "{head}");
        assert_eq!(body, b"changed");
        let (head, _) = get(&server.url, "/missing.json", "gzip");
        assert!(head.starts_with("HTTP/1.1 404"), "{head}");
        let (head, _) = get(&server.url, "/../etc/passwd", "gzip");
        assert!(head.starts_with("HTTP/1.1 404"), "{head}");
        assert_eq!(server.requests.lock().unwrap().len(), 7);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[cfg(test)]
mod request_tests {
    use super::*;
    use std::io::Read;

    fn ask(url: &str, request_line: &str) -> (String, Vec<u8>) {
        let addr = url.trim_start_matches("http://");
        let mut s = TcpStream::connect(addr).unwrap();
        write!(s, "{request_line}\r\nHost: {addr}\r\n\r\n").unwrap();
        let mut all = Vec::new();
        s.read_to_end(&mut all).unwrap();
        let split = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        (
            String::from_utf8_lossy(&all[..split]).to_string(),
            all[split + 4..].to_vec(),
        )
    }

    fn served(name: &str) -> (PathBuf, Server) {
        let dir = std::env::temp_dir().join(format!("wbc-serve-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("cells")).unwrap();
        std::fs::write(dir.join("index.html"), b"<html></html>").unwrap();
        std::fs::write(dir.join("cells/a cell, 1.json"), b"{}").unwrap();
        std::fs::write(dir.join("cells/100%.json"), b"[]").unwrap();
        std::fs::write(dir.join("../wbc-serve-secret"), b"secret").unwrap();
        let server = Server::start(dir.clone(), "127.0.0.1:0", Options::default()).unwrap();
        (dir, server)
    }

    /// Only GET and HEAD read files: anything else is 405 with the methods allowed, and HEAD
    /// gets the headers without the body.
    #[test]
    fn methods_other_than_get_and_head_are_refused() {
        let (dir, server) = served("methods");
        for method in ["POST", "PUT", "DELETE", "OPTIONS"] {
            let (head, body) = ask(&server.url, &format!("{method} /index.html HTTP/1.1"));
            assert!(head.starts_with("HTTP/1.1 405"), "{method}: {head}");
            assert!(head.contains("Allow: GET, HEAD"), "{head}");
            assert!(body.is_empty());
        }
        let (head, body) = ask(&server.url, "HEAD /index.html HTTP/1.1");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.contains("Content-Length: 13"), "{head}");
        assert!(body.is_empty(), "HEAD sent a body");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A browser percent-encodes spaces and commas in file names; the decoded path is served,
    /// and an encoded `..` or `/` still cannot leave the folder.
    #[test]
    fn percent_encoded_paths_are_decoded_and_kept_inside() {
        let (dir, server) = served("decode");
        let (head, body) = ask(&server.url, "GET /cells/a%20cell%2C%201.json HTTP/1.1");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert_eq!(body, b"{}");
        let (head, body) = ask(&server.url, "GET /cells/100%25.json HTTP/1.1");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert_eq!(body, b"[]");
        for escape in [
            "/%2e%2e/wbc-serve-secret",
            "/..%2fwbc-serve-secret",
            "/cells/%2E%2E/%2E%2E/wbc-serve-secret",
            "/%5c..%5cwbc-serve-secret",
            "/cells/%00",
            "/cells/%zz",
        ] {
            let (head, body) = ask(&server.url, &format!("GET {escape} HTTP/1.1"));
            assert!(head.starts_with("HTTP/1.1 404"), "{escape}: {head}");
            assert!(body.is_empty(), "{escape}");
        }
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(std::env::temp_dir().join("wbc-serve-secret"));
    }

    /// Accept-Encoding as RFC 9110 reads it: names in any case, q-values as numbers (q=0,
    /// q=0.0, q=0.000 refuse), `*` for any encoding not named.
    #[test]
    fn accept_encoding_is_parsed_with_its_quality_values() {
        assert!(accepts(Some("gzip, br"), "br"));
        assert!(accepts(Some("GZIP"), "gzip"));
        assert!(accepts(Some("br;q=0.5"), "br"));
        assert!(!accepts(Some("br;q=0"), "br"));
        assert!(!accepts(Some("br; q=0.0"), "br"));
        assert!(!accepts(Some("br;Q=0.000"), "br"));
        assert!(!accepts(Some("br ; q = 0"), "br"));
        assert!(accepts(Some("*"), "br"));
        assert!(!accepts(Some("*;q=0"), "gzip"));
        assert!(!accepts(Some("*, br;q=0"), "br"));
        assert!(accepts(Some("*;q=0, gzip"), "gzip"));
        assert!(!accepts(Some("identity"), "gzip"));
        assert!(!accepts(None, "gzip"));
        assert!(!accepts(Some("br;q=banana"), "br"));
    }
}
