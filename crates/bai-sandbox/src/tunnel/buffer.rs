//! Buffer sizing for both directions of a tunnel: small while idle, large while busy.

use super::{CHUNK, MIN_BUF, SHORT_READS};

/// Buffer sizing: doubles while reads fill the buffer, halves after [`SHORT_READS`] short
/// reads in a row, and drops to [`MIN_BUF`] when the connection idles.
#[derive(Debug)]
pub(super) struct Sizer {
    pub(super) cap: usize,
    short: u32,
}

impl Sizer {
    pub(super) fn new() -> Self {
        Sizer {
            cap: MIN_BUF,
            short: 0,
        }
    }

    /// Records a read of `n` bytes into `room` free bytes.
    pub(super) fn after_read(&mut self, n: usize, room: usize) {
        if n >= room && self.cap < CHUNK {
            self.cap = (self.cap * 2).min(CHUNK);
            self.short = 0;
        } else if n <= self.cap / 4 {
            self.short += 1;
            if self.short >= SHORT_READS && self.cap > MIN_BUF {
                self.cap /= 2;
                self.short = 0;
            }
        } else {
            self.short = 0;
        }
    }

    pub(super) fn idle(&mut self) {
        self.cap = MIN_BUF;
        self.short = 0;
    }
}

/// Resizes `buf` to `len` bytes, giving memory back when it shrinks.
pub(super) fn fit(buf: &mut Vec<u8>, len: usize) {
    if buf.len() < len {
        buf.resize(len, 0);
    } else if buf.len() > len {
        buf.truncate(len);
        buf.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_grow_on_full_reads_and_shrink_on_short_ones() {
        let mut s = Sizer::new();
        assert_eq!(s.cap, MIN_BUF);
        while s.cap < CHUNK {
            let cap = s.cap;
            s.after_read(cap, cap);
            assert_eq!(s.cap, cap * 2);
        }
        s.after_read(CHUNK, CHUNK);
        assert_eq!(s.cap, CHUNK, "never above CHUNK");
        // A few short reads are tolerated; a run of them halves the buffer.
        for _ in 0..SHORT_READS - 1 {
            s.after_read(100, CHUNK);
        }
        s.after_read(CHUNK / 2, CHUNK);
        assert_eq!(s.cap, CHUNK, "a long read resets the run");
        for _ in 0..SHORT_READS {
            s.after_read(100, CHUNK);
        }
        assert_eq!(s.cap, CHUNK / 2);
        s.idle();
        assert_eq!(s.cap, MIN_BUF);
        for _ in 0..10 * SHORT_READS {
            s.after_read(1, MIN_BUF);
        }
        assert_eq!(s.cap, MIN_BUF, "never below MIN_BUF");
    }
}
