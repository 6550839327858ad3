//! Training: augmentation ([`augment`]), losses ([`losses`]), the one epoch loop of the three
//! trainers ([`epochs`]) and the resumable run folder ([`checkpoint`]).

pub mod augment;
pub mod checkpoint;
pub mod epochs;
pub mod losses;
