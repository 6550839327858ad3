//! Every corpus input through the decoder and preprocessing the page, the worker and the CLI
//! share: a cell where one is expected (upright, transparency over white), and otherwise a
//! refusal whose message names the reason. Then a short fuzzing run; `cargo xtask fuzz` runs
//! the long one.

use std::time::Duration;
use wbc_core::preprocess;
use wbc_hostile::{corpus, fuzz, Expect};

#[test]
fn every_input_gets_a_cell_or_a_named_reason() {
    let inputs = corpus();
    assert!(inputs.len() >= 30, "the corpus has {} inputs", inputs.len());
    for input in inputs {
        let result = fuzz::preprocess_and_label(&input.bytes);
        match (input.expect, &result) {
            (Expect::Cell, Ok(())) => {}
            (Expect::Refused(words), Err(e)) => {
                let message = e.to_string();
                assert!(
                    message.contains(words),
                    "{} ({}): refused with {message:?}, expected the words {words:?}",
                    input.name,
                    input.what
                );
            }
            _ => panic!(
                "{} ({}): expected {:?}, got {result:?}",
                input.name, input.what, input.expect
            ),
        }
    }
}

#[test]
fn phone_photos_are_turned_upright() {
    // Stored 64×40 with a red mark top-left; orientation 6 shows it turned a quarter clockwise:
    // 40×64, the mark top-right.
    let img = preprocess::decode(&wbc_hostile::exif_rotated_jpeg(6)).unwrap();
    assert_eq!(img.dimensions(), (40, 64));
    let red = |x: u32, y: u32| {
        let p = img.get_pixel(x, y).0;
        p[0] > 200 && p[1] < 80 && p[2] < 80
    };
    assert!(
        red(37, 2),
        "the mark is top-right: {:?}",
        img.get_pixel(37, 2)
    );
    assert!(!red(2, 2));
    // Orientation 1 (or none) leaves the image as stored.
    let plain = preprocess::decode(&wbc_hostile::exif_rotated_jpeg(1)).unwrap();
    assert_eq!(plain.dimensions(), (64, 40));
}

#[test]
fn transparency_is_slide_white_and_cmyk_keeps_its_colours() {
    let cutout = corpus()
        .into_iter()
        .find(|i| i.name == "cutout.png")
        .unwrap();
    let img = preprocess::decode(&cutout.bytes).unwrap();
    assert_eq!(img.get_pixel(0, 0).0, [255, 255, 255]);
    // The CMYK cell: the nucleus stays darker and bluer than the slide around it.
    let cmyk = preprocess::decode(&wbc_hostile::cmyk_jpeg()).unwrap();
    let (centre, corner) = (cmyk.get_pixel(48, 48).0, cmyk.get_pixel(40, 4).0);
    let brightness = |p: [u8; 3]| p.iter().map(|&v| v as u32).sum::<u32>();
    assert!(
        brightness(centre) + 150 < brightness(corner),
        "nucleus {centre:?} vs slide {corner:?}"
    );
    assert!(centre[2] > centre[1], "the nucleus is purple: {centre:?}");
}

#[test]
fn a_short_fuzzing_run_finds_no_panic() {
    let report = fuzz::run(Duration::from_secs(8), 2026);
    assert!(report.cases > 50, "{report:?}");
    assert!(
        report.decoded > 0,
        "no mutated input decoded: the fuzzer only scratches"
    );
    for (input, message) in &report.crashes {
        eprintln!("crash ({} bytes): {message}", input.len());
    }
    assert!(
        report.crashes.is_empty(),
        "{} crashes",
        report.crashes.len()
    );
}

/// Inputs that once crashed the fuzzer, kept in `crates/hostile/crashes/`: each must now be
/// answered without a panic.
#[test]
fn former_crashes_stay_fixed() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crashes");
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let bytes = std::fs::read(entry.path()).unwrap();
        let _ = fuzz::preprocess_and_label(&bytes);
    }
}

/// The long run (`cargo xtask fuzz [minutes]`, ten minutes by default): the seconds come from
/// `WBC_FUZZ_SECONDS`. Crashing inputs are written to `target/fuzz-crashes/` to be copied
/// into `crates/hostile/crashes/` once fixed.
#[test]
#[ignore]
fn long_fuzzing_run() {
    let seconds: u64 = std::env::var("WBC_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_secs());
    let report = fuzz::run(Duration::from_secs(seconds), seed);
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/fuzz-crashes");
    for (i, (input, message)) in report.crashes.iter().enumerate() {
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join(format!("{seed}-{i}.bin")), input).unwrap();
        eprintln!("crash {i}: {message}");
    }
    println!(
        "fuzz: seed {seed}, {:.0} s, {} cases ({:.0}/s), {} decoded and preprocessed, {} crashes",
        report.seconds,
        report.cases,
        report.cases as f64 / report.seconds,
        report.decoded,
        report.crashes.len()
    );
    assert!(report.crashes.is_empty());
}
