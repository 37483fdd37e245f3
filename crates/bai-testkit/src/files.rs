//! Hashes, file modes and fast deterministic test data.

use std::io::Write as _;
use std::path::Path;

use sha2::{Digest as _, Sha256};

/// sha256 of `bytes`, in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// sha256 of a file's content, in hex (streamed: fine for hundreds of MiB).
pub fn sha256_file(path: &Path) -> String {
    let mut file = std::fs::File::open(path)
        .unwrap_or_else(|e| panic!("open {} for hashing: {e}", path.display()));
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).expect("hash");
    hex::encode(hasher.finalize())
}

/// The permission bits (`& 0o777`) of a file.
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("metadata of {}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// `len` deterministic pseudo-random bytes (xorshift64*): incompressible, and fast enough for
/// hundreds of MiB.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    fill_noise(&mut out, len, seed);
    out
}

/// Appends pseudo-random bytes to `out` until it holds `len`; returns the generator's state.
fn fill_noise(out: &mut Vec<u8>, len: usize, seed: u64) -> u64 {
    let mut x = seed | 1;
    while out.len() + 8 <= len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    while out.len() < len {
        out.push(x as u8);
        x = x.rotate_left(8);
    }
    x
}

/// Writes `size` pseudo-random bytes to `path` in 1 MiB blocks; returns their sha256 (hex).
pub fn write_noise_file(path: &Path, size: u64, seed: u64) -> String {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).expect("create data"));
    let mut hasher = Sha256::new();
    let mut state = seed;
    let mut left = size;
    let mut block = Vec::with_capacity(1 << 20);
    while left > 0 {
        let n = left.min(1 << 20) as usize;
        block.clear();
        state = fill_noise(&mut block, n, state.wrapping_add(0x9E37_79B9_7F4A_7C15));
        hasher.update(&block);
        file.write_all(&block).expect("write data");
        left -= n as u64;
    }
    file.flush().expect("flush data");
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_is_deterministic_and_sized() {
        assert_eq!(noise(1001, 7), noise(1001, 7));
        assert_ne!(noise(64, 7), noise(64, 8));
        assert_eq!(noise(13, 1).len(), 13);
    }

    #[test]
    fn written_noise_hashes_like_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("data");
        let sha = write_noise_file(&path, (1 << 20) + 5, 3);
        assert_eq!(sha, sha256_file(&path));
        assert_eq!(sha, sha256_hex(&std::fs::read(&path).expect("read")));
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o640))
            .expect("chmod");
        assert_eq!(mode(&path), 0o640);
    }

    #[test]
    fn sha256_of_nothing() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
