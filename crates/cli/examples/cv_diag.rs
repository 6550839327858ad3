// Throwaway diagnostic: per-image cellavision IoU for the shipped seg net and the labeller.
use burn::tensor::Device;
use image::GrayImage;
use wbc_core::{preprocess, segmentation};
use wbc_nets::predict::{load_seg_net, segment};
use wbc_nets::SegNetConfig;

fn main() {
    let device = Device::flex();
    let stem = std::env::args().nth(1).unwrap_or("models/seg_net".into());
    let card: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{stem}.json")).unwrap()).unwrap();
    let config: SegNetConfig = serde_json::from_value(card["config"].clone()).unwrap();
    let net = load_seg_net(
        &config,
        std::fs::read(format!("{stem}.bpk")).unwrap(),
        &device,
    )
    .unwrap();
    let size = config.input_size;
    let dir = std::path::Path::new("../shared/data/cellavision100");
    let out = std::path::Path::new("target/cvdiag");
    std::fs::create_dir_all(out).unwrap();
    for i in 1..=100 {
        let name = format!("{i:03}.png");
        let img = image::open(dir.join("images").join(&name))
            .unwrap()
            .to_rgb8();
        let truth = image::open(dir.join("masks").join(&name))
            .unwrap()
            .to_luma8();
        let side = img.width() as usize;
        let input = preprocess::normalize(&preprocess::cell_pixels(&img, size), size);
        let map = segment(&net, &[input], size, side, &device)
            .unwrap()
            .pop()
            .unwrap();
        let map = GrayImage::from_raw(side as u32, side as u32, map).unwrap();
        let lab = segmentation::segment(&img);
        let (nn, nw) = segmentation::cellavision_iou(&map, &truth);
        let (ln, lw) = segmentation::cellavision_iou(&lab, &truth);
        let area = |m: &GrayImage| m.pixels().filter(|p| matches!(p.0[0], 1 | 2 | 5)).count();
        let tarea = truth.pixels().filter(|p| p.0[0] >= 64).count();
        println!(
            "{name} net {nn:5.1} {nw:5.1} ratio {:.2} | lab {ln:5.1} {lw:5.1} ratio {:.2} | truth area {tarea}",
            area(&map) as f64 / tarea as f64,
            area(&lab) as f64 / tarea as f64
        );
        let mut trip = image::RgbImage::new(side as u32 * 3, side as u32);
        image::imageops::replace(&mut trip, &img, 0, 0);
        let t = GrayImage::from_fn(side as u32, side as u32, |x, y| {
            let v = truth.get_pixel(x, y).0[0];
            image::Luma([if v >= 192 {
                2
            } else if v >= 64 {
                1
            } else {
                0
            }])
        });
        image::imageops::replace(&mut trip, &segmentation::colorize(&t), side as i64, 0);
        image::imageops::replace(&mut trip, &segmentation::colorize(&map), 2 * side as i64, 0);
        trip.save(out.join(format!("{i:03}.png"))).unwrap();
    }
}
