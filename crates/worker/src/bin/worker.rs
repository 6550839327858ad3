//! The analysis worker with WebGPU (and the CPU when WebGPU is missing or refused).
fn main() {
    wbc_worker::run();
}
