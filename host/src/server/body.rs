//! A precomputed response body with its ETag and, on first demand, its gzip form.

use std::io::Write;
use std::sync::OnceLock;

use bytes::Bytes;

/// Bodies this small are not worth compressing.
const GZIP_MIN_BYTES: usize = 1024;

#[derive(Debug)]
pub struct Body {
    pub bytes: Bytes,
    /// Strong ETag over the bytes, quoted.
    pub etag: String,
    gzip: OnceLock<Option<Bytes>>,
}

impl Body {
    pub fn new(bytes: impl Into<Bytes>) -> Body {
        let bytes = bytes.into();
        let etag = format!("\"{:016x}\"", xxhash_rust::xxh64::xxh64(&bytes, 0));
        Body { bytes, etag, gzip: OnceLock::new() }
    }

    /// The gzip-compressed bytes, computed once; `None` for small bodies.
    pub fn gzip(&self) -> Option<&Bytes> {
        self.gzip
            .get_or_init(|| {
                if self.bytes.len() < GZIP_MIN_BYTES {
                    return None;
                }
                let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                encoder.write_all(&self.bytes).ok()?;
                encoder.finish().ok().map(Bytes::from)
            })
            .as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_follows_content_and_gzip_is_lazy_and_skips_small_bodies() {
        let a = Body::new("[]\n");
        assert_eq!(a.etag, Body::new("[]\n").etag);
        assert_ne!(a.etag, Body::new("[1]\n").etag);
        assert!(a.gzip().is_none());
        let big = Body::new("x".repeat(10_000));
        let gz = big.gzip().unwrap();
        let mut out = String::new();
        use std::io::Read;
        flate2::read::GzDecoder::new(&gz[..]).read_to_string(&mut out).unwrap();
        assert_eq!(out.len(), 10_000);
    }
}
