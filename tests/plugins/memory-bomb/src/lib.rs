//! Hostile fixture: an email validator that allocates without bound, touching every page so
//! the memory is really committed. The host's memory cap must stop it.

use std::hint::black_box;

use crm_users_guest::{EmailValidator, export_email_validator};

/// Allocated per step: large enough to reach any cap quickly.
const CHUNK_BYTES: usize = 1024 * 1024;

/// Wasm page size; writing one byte per page touches the whole chunk.
const PAGE_BYTES: usize = 64 * 1024;

struct MemoryBomb;

impl EmailValidator for MemoryBomb {
    fn validate(_email: String) -> Result<(), String> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            let mut chunk = vec![0u8; CHUNK_BYTES];
            for byte in chunk.iter_mut().step_by(PAGE_BYTES) {
                *byte = 1;
            }
            hoard.push(black_box(chunk));
            black_box(&hoard);
        }
    }
}

export_email_validator!(MemoryBomb);
