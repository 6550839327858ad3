//! Hostile and odd inputs, made on the spot (nothing is read from ../shared or committed): what a
//! clinician drops by mistake (a PDF report, a screenshot saved as WebP, a phone's HEIC photo, a
//! whole-slide tile), broken files, and images that are valid but unusual (16-bit, greyscale,
//! transparent, CMYK, EXIF-rotated, multi-page TIFF, odd BMP rows). Each comes with what the app
//! must do with it: analyse it, or refuse it with a message naming the reason.
//!
//! The CLI's pipeline test, the core decoding test and the fuzzer ([`fuzz`]) all start from
//! this corpus, so the page, `wbc predict` and `wbc analyse` meet the same files.
#![forbid(unsafe_code)]

pub mod fuzz;

use image::{DynamicImage, ImageBuffer, ImageFormat, Luma, Rgb, RgbImage, Rgba};
use std::io::Cursor;
use std::path::{Path, PathBuf};

/// What the app must do with an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Decode it and analyse it like any cell.
    Cell,
    /// Refuse it with a message containing these words.
    Refused(&'static str),
}

/// One input of the corpus.
#[derive(Debug, Clone)]
pub struct Input {
    /// File name, extension included (sometimes a lying one).
    pub name: String,
    /// What it is, for reports and RELIABILITY.md.
    pub what: &'static str,
    pub bytes: Vec<u8>,
    pub expect: Expect,
}

impl Input {
    fn new(name: &str, what: &'static str, bytes: Vec<u8>, expect: Expect) -> Self {
        Self {
            name: name.into(),
            what,
            bytes,
            expect,
        }
    }
}

/// A white blood cell drawn on a pale slide: a bluish cytoplasm disc around a purple nucleus,
/// with two red cells. Big enough for the pipeline, small enough to encode fast.
pub fn synthetic_cell(side: u32) -> RgbImage {
    let c = side as f32 / 2.0;
    let r = side as f32;
    RgbImage::from_fn(side, side, |x, y| {
        let d = |cx: f32, cy: f32| ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt();
        if d(c, c) < 0.17 * r {
            Rgb([105, 55, 150])
        } else if d(c, c) < 0.3 * r {
            Rgb([205, 190, 225])
        } else if d(0.15 * r, 0.15 * r) < 0.12 * r || d(0.85 * r, 0.8 * r) < 0.12 * r {
            Rgb([225, 150, 150])
        } else {
            Rgb([235, 220, 212])
        }
    })
}

fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format)
        .expect("encoding an in-memory image");
    out.into_inner()
}

fn cell_bytes(format: ImageFormat) -> Vec<u8> {
    encode(&DynamicImage::ImageRgb8(synthetic_cell(128)), format)
}

fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc_input = kind.to_vec();
    crc_input.extend_from_slice(data);
    out.extend_from_slice(&crc32fast::hash(&crc_input).to_be_bytes());
    out
}

/// A PNG whose header claims `w`×`h` RGB pixels, with no pixel data behind it: a decoder that
/// trusts the header before checking allocates w·h·3 bytes.
pub fn png_header_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    out.extend(png_chunk(b"IHDR", &ihdr));
    out.extend(png_chunk(
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    ));
    out.extend(png_chunk(b"IEND", &[]));
    out
}

/// A real, decodable `side`×`side` image (1-bit greyscale PNG, a few KB): a whole-slide
/// tile's size without its file size.
pub fn big_real_png(side: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, side, side);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::One);
    let row = (side as usize).div_ceil(8);
    let data: Vec<u8> = (0..side as usize * row)
        .map(|i| if (i / row) % 64 < 32 { 0xF0 } else { 0x0F })
        .collect();
    let mut writer = encoder.write_header().expect("png header");
    writer.write_image_data(&data).expect("png data");
    writer.finish().expect("png end");
    out
}

/// A JPEG of the synthetic cell, 64×40 with a red mark in its top-left corner, carrying an EXIF
/// orientation: 6 means "turn 90° clockwise to show it upright" (phones store it so).
pub fn exif_rotated_jpeg(orientation: u16) -> Vec<u8> {
    let mut img = image::imageops::resize(
        &synthetic_cell(64),
        64,
        40,
        image::imageops::FilterType::Triangle,
    );
    for y in 0..8 {
        for x in 0..8 {
            img.put_pixel(x, y, Rgb([255, 0, 0]));
        }
    }
    let jpeg = encode(&DynamicImage::ImageRgb8(img), ImageFormat::Jpeg);
    // APP1: "Exif\0\0", a big-endian TIFF header, one IFD with the Orientation tag (0x0112).
    let mut tiff = b"MM\x00\x2a\x00\x00\x00\x08".to_vec();
    tiff.extend_from_slice(&1u16.to_be_bytes());
    tiff.extend_from_slice(&0x0112u16.to_be_bytes());
    tiff.extend_from_slice(&3u16.to_be_bytes());
    tiff.extend_from_slice(&1u32.to_be_bytes());
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0]);
    tiff.extend_from_slice(&0u32.to_be_bytes());
    let mut app1 = b"Exif\x00\x00".to_vec();
    app1.extend(tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend(app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// A CMYK JPEG (as print workflows and some scanners write) of the synthetic cell.
pub fn cmyk_jpeg() -> Vec<u8> {
    let img = synthetic_cell(96);
    let cmyk: Vec<u8> = img
        .pixels()
        .flat_map(|p| {
            let [r, g, b] = p.0.map(|v| v as f32 / 255.0);
            let k = 1.0 - r.max(g).max(b);
            let ink = |v: f32| {
                if k >= 1.0 {
                    0.0
                } else {
                    (1.0 - v - k) / (1.0 - k)
                }
            };
            [ink(r), ink(g), ink(b), k].map(|v| (v * 255.0).round() as u8)
        })
        .collect();
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 90)
        .encode(&cmyk, 96, 96, jpeg_encoder::ColorType::Cmyk)
        .expect("cmyk jpeg");
    out
}

/// A TIFF with two pages (the cell, then a flat grey page): the first page is analysed.
pub fn multi_page_tiff() -> Vec<u8> {
    use tiff::encoder::{colortype, TiffEncoder};
    let mut out = Cursor::new(Vec::new());
    {
        let mut encoder = TiffEncoder::new(&mut out).expect("tiff encoder");
        let cell = synthetic_cell(96);
        encoder
            .write_image::<colortype::RGB8>(96, 96, cell.as_raw())
            .expect("tiff page 1");
        encoder
            .write_image::<colortype::RGB8>(64, 64, &[128u8; 64 * 64 * 3])
            .expect("tiff page 2");
    }
    out.into_inner()
}

/// The smallest animated-GIF-shaped file: a header and one frame (the app reads no GIF).
const TINY_GIF: &[u8] = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00!\xf9\x04\x00\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;";

/// Every input of the corpus (32 of them), in a fixed order.
pub fn corpus() -> Vec<Input> {
    use Expect::{Cell, Refused};
    let jpeg = cell_bytes(ImageFormat::Jpeg);
    let png = cell_bytes(ImageFormat::Png);
    let cell = synthetic_cell(128);
    let not_an_image = "not a readable image";
    let rgba = ImageBuffer::from_fn(128, 128, |x, y| {
        let p = cell.get_pixel(x, y).0;
        // A transparent border, as a screenshot tool's cut-out leaves.
        let edge = x < 10 || y < 10 || x >= 118 || y >= 118;
        Rgba([p[0], p[1], p[2], if edge { 0 } else { 255 }])
    });
    let deep = ImageBuffer::from_fn(128, 128, |x, y| {
        Rgb(cell.get_pixel(x, y).0.map(|v| v as u16 * 257))
    });
    let grey = DynamicImage::ImageRgb8(cell.clone()).to_luma8();
    let grey16: ImageBuffer<Luma<u16>, Vec<u16>> = ImageBuffer::from_fn(128, 128, |x, y| {
        Luma([grey.get_pixel(x, y).0[0] as u16 * 257])
    });
    let noise = RgbImage::from_fn(128, 128, |x, y| {
        let h = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)).wrapping_mul(97);
        Rgb([(h >> 3) as u8, (h >> 11) as u8, (h >> 19) as u8])
    });
    vec![
        Input::new("cell.jpg", "a plain JPEG cell", jpeg.clone(), Cell),
        Input::new("cell.png", "a plain PNG cell", png.clone(), Cell),
        Input::new("cell copy.jpg", "the same file twice (another name)", jpeg.clone(), Cell),
        Input::new("empty.jpg", "zero bytes", Vec::new(), Refused("empty")),
        Input::new("truncated.jpg", "a JPEG cut in half", jpeg[..jpeg.len() / 2].to_vec(), Refused(not_an_image)),
        Input::new("truncated.png", "a PNG cut in half", png[..png.len() / 2].to_vec(), Refused(not_an_image)),
        Input::new("notes.jpg", "a text file named .jpg", b"Patient 12: differential count attached.\n".to_vec(), Refused(not_an_image)),
        Input::new("page.jpg", "an HTML page named .jpg", b"<!DOCTYPE html><html><head><title>Sign in</title></head><body></body></html>".to_vec(), Refused("web page")),
        Input::new("report.pdf", "a PDF report", b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n".to_vec(), Refused("PDF")),
        Input::new("drawing.svg", "an SVG drawing", b"<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"64\" height=\"64\"><circle cx=\"32\" cy=\"32\" r=\"20\"/></svg>".to_vec(), Refused("SVG")),
        Input::new("screenshot.webp", "a WebP header", b"RIFF\x24\x00\x00\x00WEBPVP8L\x18\x00\x00\x00\x2f\x3f\xc0\x0f\x00\x07\x10\x11\x11\x88\x88\xfe\x07\x00".to_vec(), Refused("WebP")),
        Input::new("animated.gif", "an animated GIF", TINY_GIF.to_vec(), Refused("GIF")),
        Input::new("photo.avif", "an AVIF header", b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf\x00\x00\x00\x00".to_vec(), Refused("AVIF")),
        Input::new("IMG_0001.heic", "a HEIC header (iPhone photo)", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic\x00\x00\x00\x00".to_vec(), Refused("HEIC")),
        Input::new("archive.jpg", "a ZIP archive named .jpg", b"PK\x03\x04\x14\x00\x00\x00\x08\x00".to_vec(), Refused("ZIP")),
        Input::new("garbage.png", "a PNG signature followed by garbage", [b"\x89PNG\r\n\x1a\n".as_slice(), &[7u8; 200]].concat(), Refused(not_an_image)),
        Input::new("pixel.png", "a 1×1 image", encode(&DynamicImage::ImageRgb8(RgbImage::new(1, 1)), ImageFormat::Png), Refused("at least 32×32")),
        Input::new("strip.png", "an 8×4,000 strip", encode(&DynamicImage::ImageRgb8(RgbImage::from_pixel(8, 4000, Rgb([200, 180, 190]))), ImageFormat::Png), Refused("at least 32×32")),
        Input::new("smallest.png", "exactly 32×32", encode(&DynamicImage::ImageRgb8(synthetic_cell(32)), ImageFormat::Png), Cell),
        Input::new("bomb.png", "a PNG header claiming 50,000×50,000", png_header_claiming(50_000, 50_000), Refused("over 8192")),
        Input::new("slide-tile.png", "a real 12,000×12,000 image", big_real_png(12_000), Refused("over 8192")),
        Input::new("oversized.jpg", "a 41 MB file", [jpeg.as_slice(), &vec![0u8; 41 * 1024 * 1024]].concat(), Refused("over 40 MB")),
        Input::new("deep.png", "a 16-bit RGB PNG", encode(&DynamicImage::ImageRgb16(deep), ImageFormat::Png), Cell),
        Input::new("grey.png", "an 8-bit greyscale PNG", encode(&DynamicImage::ImageLuma8(grey), ImageFormat::Png), Cell),
        Input::new("grey16.png", "a 16-bit greyscale PNG", encode(&DynamicImage::ImageLuma16(grey16), ImageFormat::Png), Cell),
        Input::new("cutout.png", "RGBA with a transparent border", encode(&DynamicImage::ImageRgba8(rgba), ImageFormat::Png), Cell),
        Input::new("cmyk.jpg", "a CMYK JPEG", cmyk_jpeg(), Cell),
        Input::new("phone.jpg", "an EXIF-rotated JPEG (orientation 6)", exif_rotated_jpeg(6), Cell),
        Input::new("pages.tiff", "a two-page TIFF", multi_page_tiff(), Cell),
        Input::new("odd-rows.bmp", "a 33-pixel-wide BMP (padded rows)", encode(&DynamicImage::ImageRgb8(synthetic_cell(33)), ImageFormat::Bmp), Cell),
        Input::new("noise.png", "random noise (an image, not a cell)", encode(&DynamicImage::ImageRgb8(noise), ImageFormat::Png), Cell),
        Input::new(&format!("{}.jpg", "very-long-name-".repeat(15)), "a 229-character file name", jpeg, Cell),
    ]
}

/// Write the corpus into `dir` (created), returning each file's path and expectation. On
/// Unix one more copy of the plain cell gets a name that is not UTF-8.
pub fn write_corpus(dir: &Path) -> std::io::Result<Vec<(PathBuf, Input)>> {
    std::fs::create_dir_all(dir)?;
    let mut out = Vec::new();
    for input in corpus() {
        let path = dir.join(&input.name);
        std::fs::write(&path, &input.bytes)?;
        out.push((path, input));
    }
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let name = std::ffi::OsStr::from_bytes(b"caf\xe9-latin1.jpg");
        let path = dir.join(name);
        let cell = Input::new(
            "caf\u{FFFD}-latin1.jpg",
            "a file name that is not UTF-8",
            cell_bytes(ImageFormat::Jpeg),
            Expect::Cell,
        );
        std::fs::write(&path, &cell.bytes)?;
        out.push((path, cell));
    }
    Ok(out)
}

#[cfg(test)]
mod chunk_tests {
    use super::*;

    /// The hand-made PNG chunks carry the CRC every decoder checks: the empty IEND chunk's is
    /// the well-known AE 42 60 82, and the forged header's IHDR is accepted by the png crate
    /// (which reads its claimed size instead of stopping at a checksum).
    #[test]
    fn forged_png_chunks_carry_valid_checksums() {
        assert_eq!(&png_chunk(b"IEND", &[])[8..], &[0xAE, 0x42, 0x60, 0x82]);
        let bytes = png_header_claiming(50_000, 40_000);
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let reader = decoder.read_info();
        if let Err(e) = &reader {
            assert!(!format!("{e:?}").to_lowercase().contains("crc"), "{e:?}");
        }
    }
}
