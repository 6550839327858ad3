//! A mutation fuzzer on stable Rust: inputs of the corpus, damaged at random (bit flips,
//! overwritten header fields, inserted and deleted runs, truncation, splices of two files),
//! go through what every cell goes through before the networks: decoding, the centre square,
//! the network input, the front end's look, the classical labeller, tidying and morphometry.
//! A panic is a failure; an `Err` from decoding is the expected answer to most damage.
//!
//! `cargo test -p wbc-hostile` runs it for a few seconds; `cargo xtask fuzz` runs it for ten
//! minutes (RELIABILITY.md). Every crash found is saved and becomes a regression test.

use crate::corpus;
use image::RgbImage;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};
use wbc_core::{front_end, morphometry, preprocess, segmentation};

/// A small, fast, seeded generator (xorshift*): runs reproduce from their seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// Damage `bytes` in one to four random ways.
pub fn mutate(bytes: &[u8], other: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = out.len();
        match rng.below(7) {
            // Flip a few bits.
            0 if len > 0 => {
                for _ in 0..1 + rng.below(8) {
                    let i = rng.below(len);
                    out[i] ^= 1 << rng.below(8);
                }
            }
            // Overwrite a field near the start (headers: sizes, counts, offsets) with an
            // extreme value.
            1 if len > 4 => {
                let i = rng.below(len.min(64) - 3);
                let v: [u8; 4] = match rng.below(4) {
                    0 => [0xFF; 4],
                    1 => [0; 4],
                    2 => [0x7F, 0xFF, 0xFF, 0xFF],
                    _ => (rng.next_u64() as u32).to_be_bytes(),
                };
                out[i..i + 4].copy_from_slice(&v);
            }
            // Truncate.
            2 if len > 1 => out.truncate(rng.below(len)),
            // Delete a run.
            3 if len > 2 => {
                let i = rng.below(len - 1);
                let n = 1 + rng.below((len - i).min(256));
                out.drain(i..i + n);
            }
            // Insert random bytes.
            4 => {
                let i = rng.below(len + 1);
                let run: Vec<u8> = (0..1 + rng.below(64))
                    .map(|_| rng.next_u64() as u8)
                    .collect();
                out.splice(i..i, run);
            }
            // Splice: this file's start with another's end.
            5 if !other.is_empty() => {
                let cut = rng.below(len + 1);
                let from = rng.below(other.len());
                out.truncate(cut);
                out.extend_from_slice(&other[from..]);
            }
            // Duplicate a run (repeated chunks and markers).
            _ if len > 2 => {
                let i = rng.below(len - 1);
                let n = 1 + rng.below((len - i).min(128));
                let run = out[i..i + n].to_vec();
                out.splice(i..i, run);
            }
            _ => {}
        }
    }
    out
}

/// Everything a cell goes through before the networks, on the CPU: the decoded image's
/// centre square, the network input, the look, the classical labeller, tidying, morphometry.
/// Large decoded images are labelled at 360 px, as the pipeline does.
pub fn preprocess_and_label(bytes: &[u8]) -> Result<(), preprocess::InputError> {
    let img = preprocess::decode(bytes)?;
    let square = preprocess::center_square(&img);
    let input = preprocess::normalize(
        &preprocess::square_pixels(&square, preprocess::INPUT_SIZE),
        preprocess::INPUT_SIZE,
    );
    assert_eq!(
        input.len(),
        3 * preprocess::INPUT_SIZE * preprocess::INPUT_SIZE
    );
    assert!(
        input.iter().all(|v| v.is_finite()),
        "network input not finite"
    );
    let _ = front_end::measure_look(&square);
    let work: RgbImage = if square.width() > 360 {
        image::imageops::resize(&square, 360, 360, image::imageops::FilterType::Triangle)
    } else {
        square
    };
    let labels = segmentation::segment(&work);
    let (w, h) = labels.dimensions();
    let mut raw = labels.into_raw();
    segmentation::tidy_cell(&mut raw, w as usize, h as usize);
    let labels = image::GrayImage::from_raw(w, h, raw).expect("same size");
    let _ = morphometry::measure(&labels);
    Ok(())
}

/// What a fuzzing run found.
#[derive(Debug, Default)]
pub struct Report {
    pub cases: usize,
    /// Cases decoded into an image and run through the whole preprocessing.
    pub decoded: usize,
    /// Inputs that panicked, with the panic message.
    pub crashes: Vec<(Vec<u8>, String)>,
    pub seconds: f64,
}

/// Fuzz for `duration` from `seed`: mutate corpus inputs (the valid images mostly; damage to
/// a valid file reaches deeper than damage to a refused one) and run each through
/// [`preprocess_and_label`], catching panics.
pub fn run(duration: Duration, seed: u64) -> Report {
    // Seeds: every corpus input under 1 MB (the 41 MB one only tests the size check).
    let seeds: Vec<Vec<u8>> = corpus()
        .into_iter()
        .map(|i| i.bytes)
        .filter(|b| b.len() < 1 << 20)
        .collect();
    let mut rng = Rng::new(seed);
    let mut report = Report::default();
    let started = Instant::now();
    // Panics are the findings: keep the default hook from printing each one.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    while started.elapsed() < duration {
        let a = &seeds[rng.below(seeds.len())];
        let b = &seeds[rng.below(seeds.len())];
        let input = mutate(a, b, &mut rng);
        report.cases += 1;
        match catch_unwind(AssertUnwindSafe(|| preprocess_and_label(&input))) {
            Ok(Ok(())) => report.decoded += 1,
            Ok(Err(_)) => {}
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panic".into());
                report.crashes.push((input, message));
            }
        }
    }
    std::panic::set_hook(hook);
    report.seconds = started.elapsed().as_secs_f64();
    report
}
