//! Image decoding and preprocessing. One implementation for the CLI and the browser, so a cell
//! gives the same network input in both.

use image::metadata::Orientation;
use image::{imageops, DynamicImage, ImageDecoder, ImageReader, Limits, RgbImage};
use std::io::Cursor;

/// Side of the network input in pixels (the 360×360 PBC crop resized).
pub const INPUT_SIZE: usize = 112;
/// Largest accepted file, in bytes: microscope fields are a few MB at most.
pub const MAX_FILE_BYTES: usize = 40 * 1024 * 1024;
/// Largest accepted image side, in pixels.
pub const MAX_SIDE: u32 = 8192;

/// Per-channel mean and standard deviation of PBC crops (0..1 scale), fixed so that training
/// and inference normalise identically.
pub const MEAN: [f32; 3] = [0.87, 0.75, 0.72];
/// See [`MEAN`].
pub const STD: [f32; 3] = [0.10, 0.16, 0.07];

/// Why an input could not become a cell image.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InputError {
    /// The file has no bytes at all.
    #[error("not a readable image: the file is empty (0 bytes)")]
    Empty,
    /// The file is larger than [`MAX_FILE_BYTES`].
    #[error("the file is {0} MB; images over 40 MB are refused")]
    FileTooLarge(usize),
    /// The image is wider or taller than [`MAX_SIDE`].
    #[error(
        "the image is {0}×{1} pixels; sides over 8192 pixels are refused (crop the cell first)"
    )]
    TooManyPixels(u32, u32),
    /// Decoding would pass the memory limit (a header claiming more than the machine, or a
    /// 32-bit browser, can address).
    #[error("the image is too large to decode: its pixels would need over 1 GiB (sides up to 8192 pixels are read)")]
    TooLarge,
    /// The image is too small to hold a cell.
    #[error("the image is {0}×{1} pixels; at least 32×32 is needed")]
    TooSmall(u32, u32),
    /// A file recognised by its first bytes as something the app does not read.
    #[error("not a readable image: this is {0}; JPEG, PNG, BMP or TIFF expected (export the cell as PNG)")]
    Unsupported(&'static str),
    /// The bytes are not an image in a supported format.
    #[error("not a readable image (JPEG, PNG, BMP or TIFF expected): {0}")]
    NotAnImage(String),
}

/// What a file is, from its first bytes, when it is a format people drop by mistake and the
/// app does not read: named in the refusal so the user knows what to do.
fn unsupported_format(bytes: &[u8]) -> Option<&'static str> {
    let head = &bytes[..bytes.len().min(256)];
    if head.starts_with(b"RIFF") && head.get(8..12) == Some(b"WEBP") {
        return Some("a WebP image");
    }
    if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        return Some("a GIF image");
    }
    if head.get(4..8) == Some(b"ftyp") {
        return Some(match head.get(8..12) {
            Some(b"avif") | Some(b"avis") => "an AVIF image",
            Some(b"heic") | Some(b"heix") | Some(b"hevc") | Some(b"heim") | Some(b"heis")
            | Some(b"mif1") | Some(b"msf1") => "a HEIC/HEIF photo (as phones save them)",
            _ => "a video or other ISO media file",
        });
    }
    if head.starts_with(b"%PDF") {
        return Some("a PDF document");
    }
    if head.starts_with(b"PK\x03\x04") {
        return Some("a ZIP archive or an Office document");
    }
    // Text formats: skip a byte-order mark and leading white space, compare without case.
    let text = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let start = text
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(text.len());
    let lower = text[start..].to_ascii_lowercase();
    let has = |needle: &[u8]| lower.windows(needle.len()).any(|w| w == needle);
    if lower.starts_with(b"<svg") || (lower.starts_with(b"<?xml") && has(b"<svg")) {
        return Some("an SVG drawing");
    }
    if lower.starts_with(b"<!doctype html") || lower.starts_with(b"<html") || has(b"<head>") {
        return Some("a web page (HTML)");
    }
    None
}

fn unreadable(e: impl std::fmt::Display) -> InputError {
    InputError::NotAnImage(e.to_string())
}

/// A decoder's error, with the memory limit told apart from a broken file.
fn header_error(e: image::ImageError) -> InputError {
    match e {
        image::ImageError::Limits(_) => InputError::TooLarge,
        e => unreadable(e),
    }
}

/// Decode JPEG/PNG/BMP/TIFF bytes into RGB, refusing huge or tiny inputs from the header
/// before allocating. The image is turned upright as its EXIF orientation says (phone
/// photos), and transparency is laid over white, the colour of an empty slide.
pub fn decode(bytes: &[u8]) -> Result<RgbImage, InputError> {
    if bytes.is_empty() {
        return Err(InputError::Empty);
    }
    if bytes.len() > MAX_FILE_BYTES {
        return Err(InputError::FileTooLarge(bytes.len() / (1024 * 1024)));
    }
    if let Some(kind) = unsupported_format(bytes) {
        return Err(InputError::Unsupported(kind));
    }
    // A JPEG cut short still decodes, grey below the cut: refuse it for want of its end
    // marker (FF D9 occurs nowhere else but as a marker; bytes may trail it).
    if bytes.starts_with(&[0xFF, 0xD8]) && !bytes.windows(2).any(|w| w == [0xFF, 0xD9]) {
        return Err(InputError::NotAnImage(
            "the JPEG file is cut short (no end marker): copy it again".into(),
        ));
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(unreadable)?;
    // Reading the header allocates nothing; without limits it reports the true size even
    // where the default limit would trip first (a 50,000² header on 32-bit wasm).
    reader.no_limits();
    if reader.format().is_none() {
        return Err(InputError::NotAnImage("unknown file format".into()));
    }
    // A PNG's size is in its first chunk: read it ourselves, since a decoder on 32-bit wasm
    // fails on a 50,000² header with a bare "memory limit" before reporting the size.
    let png_size = (bytes.len() >= 24
        && bytes.starts_with(b"\x89PNG\r\n\x1a\n")
        && bytes.get(12..16) == Some(b"IHDR"))
    .then(|| {
        let be =
            |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        (be(16), be(20))
    });
    let (w, h) = match png_size {
        Some((w, h)) if w > MAX_SIDE || h > MAX_SIDE => (w, h),
        _ => reader.into_dimensions().map_err(header_error)?,
    };
    if w > MAX_SIDE || h > MAX_SIDE {
        return Err(InputError::TooManyPixels(w, h));
    }
    if w < 32 || h < 32 {
        return Err(InputError::TooSmall(w, h));
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(unreadable)?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(1 << 30);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(header_error)?;
    // A broken orientation tag is not worth refusing the image for.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(header_error)?;
    img.apply_orientation(orientation);
    Ok(if img.color().has_alpha() {
        over_white(&img.to_rgba8())
    } else {
        img.to_rgb8()
    })
}

/// RGBA laid over white: a transparent pixel becomes slide background, not black.
fn over_white(rgba: &image::RgbaImage) -> RgbImage {
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let p = rgba.get_pixel(x, y).0;
        let a = p[3] as u32;
        image::Rgb([0, 1, 2].map(|c| ((p[c] as u32 * a + 255 * (255 - a) + 127) / 255) as u8))
    })
}

/// Centre-crop to the largest square (360×363 PBC images become the reference 360×360).
pub fn center_square(img: &RgbImage) -> RgbImage {
    let (w, h) = img.dimensions();
    let side = w.min(h);
    let (x, y) = ((w - side) / 2, (h - side) / 2);
    imageops::crop_imm(img, x, y, side, side).to_image()
}

/// The square crop resized to `size`×`size`, as RGB bytes (row-major, HWC): the form cached by
/// the CLI and shown by the browser.
pub fn cell_pixels(img: &RgbImage, size: usize) -> Vec<u8> {
    square_pixels(&center_square(img), size)
}

/// An already square crop resized to `size`×`size`, as RGB bytes (row-major, HWC).
pub fn square_pixels(square: &RgbImage, size: usize) -> Vec<u8> {
    if square.width() as usize == size && square.height() as usize == size {
        return square.as_raw().clone();
    }
    imageops::resize(
        square,
        size as u32,
        size as u32,
        imageops::FilterType::Triangle,
    )
    .into_raw()
}

/// Normalise HWC RGB bytes into the CHW float layout the networks take.
pub fn normalize(hwc: &[u8], size: usize) -> Vec<f32> {
    let plane = size * size;
    let mut out = vec![0.0; 3 * plane];
    for (p, px) in hwc.chunks_exact(3).enumerate() {
        for c in 0..3 {
            out[c * plane + p] = (px[c] as f32 / 255.0 - MEAN[c]) / STD[c];
        }
    }
    out
}

/// Decode and preprocess in one step: bytes to the network input (CHW floats).
pub fn input_from_bytes(bytes: &[u8], size: usize) -> Result<Vec<f32>, InputError> {
    let img = decode(bytes)?;
    Ok(normalize(&cell_pixels(&img, size), size))
}

/// One of the 8 symmetries of the square (k = 0..8: rotation by k % 4 quarter turns, mirrored
/// when k >= 4) of HWC pixels. Cells have no preferred orientation, so every symmetry is an
/// equally valid view (test-time augmentation averages over them).
pub fn dihedral(hwc: &[u8], size: usize, k: usize) -> Vec<u8> {
    let n = size;
    let mut out = vec![0u8; hwc.len()];
    for y in 0..n {
        for x in 0..n {
            let (a, b) = match k % 4 {
                0 => (y, x),
                1 => (x, n - 1 - y),
                2 => (n - 1 - y, n - 1 - x),
                _ => (n - 1 - x, y),
            };
            let b = if k >= 4 { n - 1 - b } else { b };
            let (src, dst) = ((a * n + b) * 3, (y * n + x) * 3);
            out[dst..dst + 3].copy_from_slice(&hwc[src..src + 3]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageFormat, Rgb};

    fn encode(img: &RgbImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    #[test]
    fn crops_pbc_shape_to_centre_square() {
        let mut img = RgbImage::new(360, 363);
        img.put_pixel(0, 1, Rgb([255, 0, 0]));
        img.put_pixel(0, 2, Rgb([0, 255, 0]));
        let sq = center_square(&img);
        assert_eq!(sq.dimensions(), (360, 360));
        assert_eq!(sq.get_pixel(0, 0), &Rgb([255, 0, 0]));
        assert_eq!(sq.get_pixel(0, 1), &Rgb([0, 255, 0]));
    }

    #[test]
    fn decodes_all_supported_formats_identically() {
        let img = RgbImage::from_fn(64, 48, |x, y| Rgb([x as u8 * 3, y as u8 * 5, 100]));
        for f in [ImageFormat::Png, ImageFormat::Bmp, ImageFormat::Tiff] {
            let back = decode(&encode(&img, f)).unwrap();
            assert_eq!(back, img, "{f:?}");
        }
        let jpeg = decode(&encode(&img, ImageFormat::Jpeg)).unwrap();
        assert_eq!(jpeg.dimensions(), (64, 48));
    }

    #[test]
    fn refuses_garbage_tiny_and_huge() {
        assert!(matches!(
            decode(b"hello, not an image"),
            Err(InputError::NotAnImage(_))
        ));
        let tiny = encode(&RgbImage::new(8, 8), ImageFormat::Png);
        assert_eq!(decode(&tiny), Err(InputError::TooSmall(8, 8)));
        // A PNG header claiming 20000×20000 is refused before any pixel is allocated.
        let huge = encode(&RgbImage::new(20000, 1), ImageFormat::Png);
        assert!(matches!(
            decode(&huge),
            Err(InputError::TooManyPixels(20000, 1))
        ));
    }

    #[test]
    fn normalize_is_chw() {
        let hwc = vec![255u8, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255];
        let chw = normalize(&hwc, 2);
        assert_eq!(chw.len(), 12);
        assert!((chw[0] - (1.0 - MEAN[0]) / STD[0]).abs() < 1e-6);
        assert!((chw[4 + 1] - (1.0 - MEAN[1]) / STD[1]).abs() < 1e-6);
    }

    #[test]
    fn the_eight_symmetries_are_distinct_and_invertible() {
        let size = 3;
        let img: Vec<u8> = (0..27).collect();
        let views: Vec<Vec<u8>> = (0..8).map(|k| dihedral(&img, size, k)).collect();
        for (i, a) in views.iter().enumerate() {
            for b in &views[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(views[0], img);
        // Four quarter turns come back to the start.
        let mut v = img.clone();
        for _ in 0..4 {
            v = dihedral(&v, size, 1);
        }
        assert_eq!(v, img);
    }
}
