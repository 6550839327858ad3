//! The analysis worker without WebGPU: a quarter of the download, for the first cells and for
//! browsers without a GPU.
fn main() {
    wbc_worker::run();
}
