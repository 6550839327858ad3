//! `wbc-serve [FOLDER] [--port N] [--address A] [--headers FILE]`: serve a built WBC Explorer
//! (the folder `cargo xtask dist` writes) on this computer, with no toolchain. By default it
//! serves the `app` folder beside the program on 127.0.0.1:8080, with the headers of
//! `headers.toml` beside it when present.

use anyhow::{bail, Context, Result};
use std::path::PathBuf;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let here = std::env::current_exe()?
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default();
    let mut folder = here.join("app");
    let mut headers = Some(here.join("headers.toml")).filter(|h| h.is_file());
    let (mut address, mut port) = ("127.0.0.1".to_string(), 8080u16);
    let mut i = 0;
    while i < args.len() {
        let value = || {
            args.get(i + 1)
                .with_context(|| format!("{} needs a value", args[i]))
        };
        match args[i].as_str() {
            "--port" => port = value()?.parse().context("--port takes a number")?,
            "--address" => address = value()?.clone(),
            "--headers" => headers = Some(PathBuf::from(value()?)),
            "-h" | "--help" => {
                println!("wbc-serve [FOLDER] [--port N] [--address A] [--headers FILE]\n  serves FOLDER (default: app/ beside this program) on http://A:N (default 127.0.0.1:8080)");
                return Ok(());
            }
            other if !other.starts_with('-') => {
                folder = PathBuf::from(other);
                i += 1;
                continue;
            }
            other => bail!("unknown option {other} (see --help)"),
        }
        i += 2;
    }
    if !folder.join("index.html").is_file() {
        bail!(
            "{} holds no index.html: give the folder of a built WBC Explorer",
            folder.display()
        );
    }
    let headers = match headers {
        Some(file) => wbc_serve::served_headers(&file)?,
        None => Vec::new(),
    };
    let server = wbc_serve::Server::start(
        folder,
        &format!("{address}:{port}"),
        wbc_serve::Options {
            headers,
            ..wbc_serve::Options::default()
        },
    )?;
    println!("WBC Explorer is at {} (Ctrl-C stops it)", server.url);
    loop {
        std::thread::park();
    }
}
