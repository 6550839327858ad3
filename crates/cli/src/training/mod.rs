//! Training: augmentation ([`augment`]), losses ([`losses`]), the resumable run folder with
//! the run's schedule and record ([`checkpoint`]), and the one epoch loop of the three
//! trainers ([`epochs`]), which depends on the run folder and never the other way round.

pub mod augment;
pub mod checkpoint;
pub mod epochs;
pub mod losses;
