//! The on-disk cache of compiled components.
//!
//! Owns one directory that only this process writes: files named
//! `<sha256 of the wasm>-<engine compatibility hash>.cwasm`, each written to a
//! temporary name and renamed into place, so a reader never sees a partial
//! file. Only files from this directory are ever deserialized as compiled
//! code (deserializing is `unsafe`: wasmtime trusts the bytes); user-supplied
//! files are always compiled from wasm. An entry from another wasmtime version
//! or config has another name (the compatibility hash), and one that fails to
//! load anyway is deleted and recompiled.
//!
//! It must not decide what to compile or load: [`Runtime`](super::Runtime) asks.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Why a cache directory cannot be used (the allocator then compiles every time).
#[derive(Debug, thiserror::Error)]
pub enum CacheDirError {
    #[error("creating {path}: {source}")]
    Create { path: String, source: std::io::Error },
    #[error(
        "{path} is not a directory (a symlink or a file?); the compiled-code cache must be a real directory"
    )]
    NotADirectory { path: String },
    #[error(
        "{path} is writable by other users (mode {mode:o}); the compiled-code cache must be private to the allocator (chmod 700)"
    )]
    NotPrivate { path: String, mode: u32 },
    #[error("{path} belongs to another user; the compiled-code cache must be the allocator's own directory")]
    NotOwned { path: String },
}

/// A compiled-component cache directory, checked to be private.
#[derive(Debug)]
pub struct CodeCache {
    dir: PathBuf,
    /// Hex of the engine's compatibility hash: part of every file name.
    engine_key: String,
}

impl CodeCache {
    /// Creates `dir` if needed (mode 0700) and checks it is a private directory.
    pub fn open(dir: &Path, engine: &Engine) -> Result<CodeCache, CacheDirError> {
        let shown = dir.display().to_string();
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(|source| CacheDirError::Create { path: shown.clone(), source })?;
        // `symlink_metadata`: a symlink planted in place of the directory is refused.
        let meta = fs::symlink_metadata(dir)
            .map_err(|source| CacheDirError::Create { path: shown.clone(), source })?;
        if !meta.is_dir() {
            return Err(CacheDirError::NotADirectory { path: shown });
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let mode = meta.mode() & 0o777;
            if mode & 0o022 != 0 {
                return Err(CacheDirError::NotPrivate { path: shown, mode });
            }
            // Our uid, as the owner of a file we create there.
            let probe = tempfile::NamedTempFile::new_in(dir)
                .map_err(|source| CacheDirError::Create { path: shown.clone(), source })?;
            let ours = probe.as_file().metadata().map(|m| m.uid()).ok();
            if ours != Some(meta.uid()) {
                return Err(CacheDirError::NotOwned { path: shown });
            }
        }
        Ok(CodeCache { dir: dir.to_path_buf(), engine_key: engine_key(engine) })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the compiled form of the wasm with sha256 `digest` lives.
    pub fn path_of(&self, digest: &[u8; 32]) -> PathBuf {
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{hex}-{}.cwasm", self.engine_key))
    }

    /// The cached compiled component, if there is a usable one.
    pub fn load(&self, engine: &Engine, digest: &[u8; 32]) -> Option<Component> {
        let path = self.path_of(digest);
        // Read into memory rather than `deserialize_file`'s mmap: a mapped
        // file truncated behind our back (by anything) would crash the
        // process with SIGBUS; a copy cannot change under us.
        let bytes = fs::read(&path).ok()?;
        // SAFETY: the bytes come from our private cache directory, under a
        // name only `store` writes (temp file + rename), so they are what
        // `Component::serialize` produced; wasmtime checks the header and
        // refuses, without undefined behaviour, artifacts of other versions
        // or configs.
        match unsafe { Component::deserialize(engine, &bytes) } {
            Ok(component) => Some(component),
            Err(error) => {
                tracing::warn!(file = %path.display(), error = %format!("{error:#}"), "dropping an unusable compiled-code cache entry");
                let _ = fs::remove_file(&path);
                None
            }
        }
    }

    /// Writes `component`'s compiled form for `digest`; failures are logged
    /// and otherwise ignored (the cache only saves time).
    pub fn store(&self, digest: &[u8; 32], component: &Component) {
        let path = self.path_of(digest);
        let result = component.serialize().map_err(|e| format!("{e:#}")).and_then(|bytes| {
            let mut file = tempfile::NamedTempFile::new_in(&self.dir).map_err(|e| e.to_string())?;
            file.write_all(&bytes).map_err(|e| e.to_string())?;
            file.as_file().sync_all().map_err(|e| e.to_string())?;
            file.persist(&path).map_err(|e| e.to_string())?;
            Ok(())
        });
        if let Err(error) = result {
            tracing::warn!(file = %path.display(), %error, "could not write the compiled-code cache entry");
        }
    }
}

/// Hex of `Engine::precompile_compatibility_hash`, hashed with sha256 so the
/// key is the same in every run of the same binary and config.
fn engine_key(engine: &Engine) -> String {
    struct Sha(Sha256);
    impl Hasher for Sha {
        fn finish(&self) -> u64 {
            let digest = self.0.clone().finalize();
            u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut hasher = Sha(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.0.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
}
