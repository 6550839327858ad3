// Throwaway: image | colourised label maps from several folders, one row per image.
use wbc_core::segmentation;
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (out, rest) = args.split_first().unwrap();
    let sep = rest.iter().position(|a| a == "--").unwrap();
    let (dirs, imgs) = (&rest[..sep], &rest[sep + 1..]);
    let t = 300u32;
    let mut sheet = image::RgbImage::new(t * (1 + dirs.len() as u32), t * imgs.len() as u32);
    for (r, p) in imgs.iter().enumerate() {
        let img = image::open(p).unwrap().to_rgb8();
        let stem = std::path::Path::new(p)
            .file_stem()
            .unwrap()
            .to_str()
            .unwrap();
        let small = |i: &image::RgbImage| {
            image::imageops::resize(i, t, t, image::imageops::FilterType::Nearest)
        };
        image::imageops::replace(&mut sheet, &small(&img), 0, (r as u32 * t) as i64);
        for (c, d) in dirs.iter().enumerate() {
            let m = image::open(format!("{d}/{stem}.png")).unwrap().to_luma8();
            image::imageops::replace(
                &mut sheet,
                &small(&segmentation::colorize(&m)),
                ((c as u32 + 1) * t) as i64,
                (r as u32 * t) as i64,
            );
        }
    }
    sheet.save(out).unwrap();
}
