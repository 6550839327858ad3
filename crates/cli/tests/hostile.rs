//! The hostile-input corpus (`wbc-hostile`) through `wbc predict`, `wbc segment` and
//! `wbc analyse` with the shipped models: one JSON line per input, in order, each a result or
//! an "error" naming the reason; the run succeeds unless `--fail-on-error` is given.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use wbc_hostile::{write_corpus, Expect};

fn wbc(args: &[&str], paths: &[PathBuf]) -> (bool, Vec<Value>, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new(env!("CARGO_BIN_EXE_wbc"))
        .args(args)
        .args(paths)
        .current_dir(root)
        .output()
        .expect("run wbc");
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (
        out.status.success(),
        lines,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_command_answers_every_hostile_input() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("hostile");
    let _ = std::fs::remove_dir_all(&dir);
    let corpus = write_corpus(&dir.join("in")).unwrap();
    let paths: Vec<PathBuf> = corpus.iter().map(|(p, _)| p.clone()).collect();
    let out = dir.join("maps").display().to_string();
    let commands: [&[&str]; 3] = [
        &["predict"],
        &["segment", "--network", "models/seg_net", "--out", &out],
        &["analyse"],
    ];
    for command in commands {
        let (ok, lines, err) = wbc(command, &paths);
        assert!(ok, "wbc {command:?} failed without --fail-on-error: {err}");
        assert_eq!(
            lines.len(),
            corpus.len(),
            "wbc {command:?}: one line per input"
        );
        for (line, (path, input)) in lines.iter().zip(&corpus) {
            assert_eq!(
                line["path"].as_str(),
                Some(path.display().to_string().as_str())
            );
            match input.expect {
                Expect::Cell => assert!(
                    line.get("error").is_none(),
                    "wbc {command:?} {}: {line}",
                    input.name
                ),
                Expect::Refused(words) => {
                    let error = line["error"].as_str().unwrap_or_else(|| {
                        panic!("wbc {command:?} {}: no error in {line}", input.name)
                    });
                    assert!(error.contains(words), "{}: {error}", input.name);
                }
            }
        }
        let refused = corpus
            .iter()
            .filter(|(_, i)| i.expect != Expect::Cell)
            .count();
        assert!(
            err.contains(&format!("{refused} of {} input(s)", corpus.len())),
            "{err}"
        );
    }
    // Noise is analysed but carries the "unlike the training images" warning.
    let noise: Vec<PathBuf> = paths
        .iter()
        .filter(|p| p.ends_with("noise.png"))
        .cloned()
        .collect();
    let (_, lines, _) = wbc(&["analyse"], &noise);
    assert!(
        lines[0]["warning"].is_string(),
        "noise not flagged: {}",
        lines[0]
    );

    // Asked to, the run fails when any input does, and still writes every line.
    let (ok, lines, _) = wbc(&["predict", "--fail-on-error"], &paths);
    assert!(!ok);
    assert_eq!(lines.len(), corpus.len());
    let good: Vec<PathBuf> = paths[..2].to_vec();
    let (ok, _, err) = wbc(&["predict", "--fail-on-error"], &good);
    assert!(ok, "{err}");
}
