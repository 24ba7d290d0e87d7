//! Hot reload: `strategy_dir` plugins, config edits, strategy swaps under
//! load, the compiled-code cache and contract versions. The server tests run
//! the real binary with its real file watcher on temporary directories and
//! talk to it over loopback HTTP.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use serde_json::Value;
use target_allocator::allocation::{Allocator, StrategyChoice};
use target_allocator::runtime::{CodeCache, LoadError, Runtime, RuntimeConfig, StrategyPre, StrategySource};
use target_allocator::strategies::StrategyCatalog;

use crate::plugin_files::{new_build, write_atomically};
use crate::support::{
    Process, addresses, builtin, collectors, free_port, http_get, load_test_guest, runtime, target,
    test_guest_path, wait_for,
};

// --- helpers -------------------------------------------------------------

/// Bytes of a component built for the suite (`example-rendezvous`, `guest-panic`, ...).
fn component(package: &str) -> Vec<u8> {
    let path = Path::new(env!("TA_TEST_GUESTS_DIR")).join(format!("{package}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

const TARGETS: usize = 300;

/// The allocator config: three collectors, job `web` with 300 targets.
fn config_text(port: u16, plugins: &Path, cache: &Path, strategy: &str, collectors: &[&str]) -> String {
    let targets: Vec<String> = addresses(TARGETS).iter().map(|a| format!("'{a}'")).collect();
    let collectors: Vec<String> = collectors.iter().map(|c| format!("{{id: {c}}}")).collect();
    format!(
        "listen_addr: 127.0.0.1:{port}\nstrategy_dir: {}\nstrategy_cache_dir: {}\nallocation_strategy: {strategy}\n\
         collectors: [{}]\nconfig:\n  scrape_configs:\n    - job_name: web\n      static_configs:\n        - targets: [{}]\n",
        plugins.display(),
        cache.display(),
        collectors.join(", "),
        targets.join(", ")
    )
}

/// A running allocator on a config file it watches.
struct Server {
    process: Process,
    port: u16,
    log: PathBuf,
}

impl Server {
    fn start(config_file: &Path, port: u16) -> Server {
        let log = config_file.with_file_name(format!("allocator-{port}.log"));
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_target-allocator"))
            .arg("--config-file")
            .arg(config_file)
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start the allocator");
        let server = Server { process: Process(child), port, log };
        wait_for("the allocator to be ready", || {
            http_get(port, "/readyz").map(|(s, _)| s == 200).unwrap_or(false)
        });
        wait_for("the first assignment", || server.total("web") == TARGETS);
        server
    }

    fn json(&self, path: &str) -> Value {
        let (status, body) = http_get(self.port, path).unwrap();
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
    }

    fn strategies(&self) -> Value {
        self.json("/strategies")
    }

    fn active(&self) -> (String, String) {
        let s = self.strategies();
        let active = &s["active"]["strategy"];
        (active["name"].as_str().unwrap().to_string(), active["digest"].as_str().unwrap().to_string())
    }

    /// Collector → addresses of `job`, from one snapshot.
    fn assignment(&self, job: &str) -> BTreeMap<String, Vec<String>> {
        let all = self.json(&format!("/jobs/{job}/targets"));
        all.as_object()
            .unwrap()
            .iter()
            .map(|(collector, v)| {
                let mut addresses: Vec<String> = v["targets"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|g| g["targets"][0].as_str().unwrap().to_string())
                    .collect();
                addresses.sort();
                (collector.clone(), addresses)
            })
            .collect()
    }

    fn total(&self, job: &str) -> usize {
        http_get(self.port, &format!("/jobs/{job}/targets"))
            .ok()
            .filter(|(s, _)| *s == 200)
            .and_then(|(_, body)| serde_json::from_str::<Value>(&body).ok())
            .and_then(|v| {
                v.as_object().map(|o| o.values().map(|c| c["targets"].as_array().map_or(0, Vec::len)).sum())
            })
            .unwrap_or(0)
    }

    fn file_status(&self, file: &Path) -> Option<Value> {
        let s = self.strategies();
        s["files"].as_array().unwrap().iter().find(|f| f["path"] == file.display().to_string()).cloned()
    }

    fn strategy(&self, name: &str) -> Option<Value> {
        let s = self.strategies();
        s["strategies"].as_array().unwrap().iter().find(|f| f["name"] == name).cloned()
    }

    fn metrics(&self) -> String {
        http_get(self.port, "/metrics").unwrap().1
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn alive(&mut self) -> bool {
        self.process.0.try_wait().unwrap().is_none()
    }
}

// --- contract versions and the compiled-code cache (library) --------------

#[test]
fn guests_built_against_an_unsupported_contract_are_refused_naming_the_supported_range() {
    for (guest, version) in [("contract-0-2", "0.2.0"), ("contract-0-0-9", "0.0.9")] {
        let error = load_test_guest(&runtime(), guest).unwrap_err();
        assert!(matches!(error, LoadError::UnsupportedContract { .. }), "{guest}: {error}");
        let message = error.to_string();
        assert!(message.contains("supported: ta:allocator@0.1.x"), "{message}");
        assert!(message.contains(&format!("ta:allocator/strategy@{version}")), "{message}");
    }
    // Every built-in implements the one supported contract.
    assert_eq!(builtin("consistent-hashing").contract(), "ta:allocator@0.1.0");
    assert_eq!(target_allocator::runtime::SUPPORTED_CONTRACTS, ["ta:allocator@0.1.0"]);
}

fn cached_runtime(cache: &Path) -> Arc<Runtime> {
    Runtime::new(RuntimeConfig { cache_dir: Some(cache.to_path_buf()), ..RuntimeConfig::default() }).unwrap()
}

#[test]
fn compiled_components_are_cached_on_disk_by_digest_and_engine() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let bytes = component("example-rendezvous");
    let source = || StrategySource::File(PathBuf::from("rendezvous.wasm"));
    let first = StrategyPre::prepare(&cached_runtime(&cache), &bytes, source()).unwrap();
    let entries: Vec<PathBuf> = std::fs::read_dir(&cache).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = &entries[0];
    let name = entry.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with(&format!("{}-", first.digest())) && name.ends_with(".cwasm"), "{name}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777, 0o700);
    }
    // A new process (runtime) loads the entry instead of compiling: the
    // file is not rewritten, and the strategy works the same.
    let written = std::fs::metadata(entry).unwrap().modified().unwrap();
    let second = StrategyPre::prepare(&cached_runtime(&cache), &bytes, source()).unwrap();
    assert_eq!(std::fs::metadata(entry).unwrap().modified().unwrap(), written);
    let input = target_allocator_sdk::testing::fixture(500, 5, 3);
    assert_eq!(first.assign(&input).unwrap(), second.assign(&input).unwrap());
    // A damaged entry is dropped and recompiled, not trusted.
    std::fs::write(entry, b"not compiled code").unwrap();
    let third = StrategyPre::prepare(&cached_runtime(&cache), &bytes, source()).unwrap();
    assert_eq!(third.assign(&input).unwrap(), first.assign(&input).unwrap());
    assert!(std::fs::metadata(entry).unwrap().len() > 1000, "the entry was rewritten");

    // Compiled code offered as a strategy file is refused, never deserialized.
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::copy(entry, plugins.join("sneaky.wasm")).unwrap();
    let mut catalog = StrategyCatalog::with_builtins(cached_runtime(&cache)).unwrap();
    let report = catalog.scan_dir(&plugins, &|_| false);
    assert_eq!(report.errors.len(), 1);
    assert!(report.errors[0].1.contains("precompiled native code"), "{:?}", report.errors);
}

#[cfg(unix)]
#[test]
fn a_cache_directory_others_can_write_is_not_used() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let engine = wasmtime::Engine::default();
    let error = CodeCache::open(&shared, &engine).unwrap_err().to_string();
    assert!(error.contains("writable by other users") && error.contains("shared"), "{error}");
    let link = dir.path().join("link");
    let private = dir.path().join("private");
    std::fs::create_dir(&private).unwrap();
    std::os::unix::fs::symlink(&private, &link).unwrap();
    let error = CodeCache::open(&link, &engine).unwrap_err().to_string();
    assert!(error.contains("not a directory"), "{error}");
    // The runtime then runs without a disk cache rather than failing.
    let runtime = cached_runtime(&shared);
    assert_eq!(runtime.cache_dir(), None);
}

// --- the catalogue's directory scan (library) -----------------------------

#[test]
fn a_directory_scan_loads_replaces_keeps_and_unloads_plugins() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path();
    let mut catalog = StrategyCatalog::with_builtins(runtime()).unwrap();
    let rendezvous = component("example-rendezvous");
    let file = plugins.join("rendezvous.wasm");
    write_atomically(&file, &rendezvous);
    // Not strategies: dot-files, other extensions, ConfigMap internals.
    std::fs::write(plugins.join(".hidden.wasm"), b"junk").unwrap();
    std::fs::write(plugins.join("README"), b"junk").unwrap();
    std::fs::create_dir(plugins.join("..2026_01_01")).unwrap();
    std::fs::write(plugins.join("..2026_01_01").join("x.wasm"), b"junk").unwrap();

    let report = catalog.scan_dir(plugins, &|_| false);
    assert!(report.changed && report.errors.is_empty(), "{:?}", report.errors);
    let loaded = catalog.get("rendezvous").unwrap();
    assert_eq!(loaded.digest(), sha256_hex(&rendezvous));
    assert_eq!(loaded.source(), &StrategySource::File(file.clone()));
    assert_eq!(catalog.files().len(), 1);
    // Unchanged bytes: nothing to do.
    assert!(!catalog.scan_dir(plugins, &|_| false).changed);
    // Selectable by its name, also as a fallback.
    let choice = catalog.choose("per-node", "", Some(("rendezvous", ""))).unwrap();
    assert_eq!(choice.fallback.unwrap().0.digest(), sha256_hex(&rendezvous));

    // A new build replaces it; a broken one is refused and the last good stays.
    let v2 = new_build(&rendezvous, "v2");
    write_atomically(&file, &v2);
    assert!(catalog.scan_dir(plugins, &|_| false).changed);
    assert_eq!(catalog.get("rendezvous").unwrap().digest(), sha256_hex(&v2));
    write_atomically(&file, b"\0asm\x0d\x00\x01\x00garbage");
    let report = catalog.scan_dir(plugins, &|_| false);
    assert!(!report.changed);
    assert_eq!(report.errors.len(), 1);
    assert!(report.errors[0].1.contains("compiling the component failed"), "{:?}", report.errors);
    assert_eq!(catalog.get("rendezvous").unwrap().digest(), sha256_hex(&v2));
    let status = &catalog.files()[0];
    assert_eq!(status.loaded_digest.as_deref(), Some(sha256_hex(&v2).as_str()));
    assert!(status.error.as_deref().unwrap().contains("compiling"));
    // The same broken bytes are not reported again.
    assert!(catalog.scan_dir(plugins, &|_| false).errors.is_empty());

    // Built-in names and names another file provides are refused, naming the conflict.
    write_atomically(&plugins.join("ch.wasm"), &component("strategy-consistent-hashing"));
    write_atomically(&plugins.join("second.wasm"), &new_build(&rendezvous, "second"));
    let report = catalog.scan_dir(plugins, &|_| false);
    let errors: BTreeMap<String, String> = report
        .errors
        .iter()
        .map(|(p, e)| (p.file_name().unwrap().to_string_lossy().into_owned(), e.clone()))
        .collect();
    assert!(errors["ch.wasm"].contains("built-in"), "{errors:?}");
    assert!(errors["second.wasm"].contains("rendezvous.wasm already provides"), "{errors:?}");

    // Deleting the file of a strategy in use keeps it; otherwise it goes.
    std::fs::remove_file(&file).unwrap();
    catalog.scan_dir(plugins, &|name| name == "rendezvous");
    assert!(catalog.get("rendezvous").is_some(), "in use: stays loaded");
    write_atomically(&file, &rendezvous);
    catalog.scan_dir(plugins, &|_| false);
    std::fs::remove_file(&file).unwrap();
    assert!(catalog.scan_dir(plugins, &|_| false).changed);
    assert!(catalog.get("rendezvous").is_none(), "not in use: unloaded");
}

/// Every fault-injection guest dropped into `strategy_dir`: those that fail
/// loading are refused with the reason; the others load (they pass the smoke
/// test) and their faults are contained when they are called.
#[test]
fn fault_guests_in_the_strategy_directory_are_refused_or_contained() {
    let dir = tempfile::tempdir().unwrap();
    let guests = [
        "panic",
        "infinite-loop",
        "unbounded-alloc",
        "bad-index",
        "wrong-length",
        "huge-output",
        "imports-wasi",
        "imports-unknown",
        "contract-0-2",
        "contract-0-0-9",
    ];
    for guest in guests {
        std::fs::copy(test_guest_path(guest), dir.path().join(format!("{guest}.wasm"))).unwrap();
    }
    let mut catalog = StrategyCatalog::with_builtins(runtime()).unwrap();
    let report = catalog.scan_dir(dir.path(), &|_| false);
    let refused: Vec<String> =
        report.errors.iter().map(|(p, _)| p.file_stem().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(refused, ["contract-0-0-9", "contract-0-2", "imports-unknown", "imports-wasi"]);
    let mut allocator = Allocator::new(StrategyChoice::new(builtin("consistent-hashing")));
    allocator.set_collectors(collectors(3));
    allocator.set_job_targets("job", addresses(200).iter().map(|a| target("job", a, &[])).collect());
    for guest in ["panic", "infinite-loop", "unbounded-alloc", "bad-index", "wrong-length", "huge-output"] {
        let strategy = catalog.get(guest).unwrap_or_else(|| panic!("{guest} loads"));
        let error = allocator.try_set_strategy(StrategyChoice::new(strategy)).unwrap_err();
        assert_eq!(error.strategy, guest);
        assert_eq!(error.calls.len(), 1, "one call, then the switch is abandoned");
        assert_eq!(allocator.strategy().primary.name(), "consistent-hashing", "{guest}");
        assert_eq!(allocator.unassigned(), 0);
    }
}

#[test]
fn a_switch_is_one_call_and_a_failing_strategy_leaves_everything_as_it_was() {
    let mut allocator = Allocator::new(StrategyChoice::new(builtin("consistent-hashing")));
    allocator.set_collectors(collectors(4));
    let targets: Vec<_> = addresses(500).iter().map(|a| target("job", a, &[])).collect();
    allocator.set_job_targets("job", targets.clone());
    let before: Vec<_> = targets.iter().map(|t| allocator.collector_of(t.identity).cloned()).collect();

    let panics = Arc::new(load_test_guest(&runtime(), "panic").unwrap());
    let error = allocator.try_set_strategy(StrategyChoice::new(panics)).unwrap_err();
    assert!(error.to_string().contains("deliberate failure on 500 targets"), "{error}");
    let after: Vec<_> = targets.iter().map(|t| allocator.collector_of(t.identity).cloned()).collect();
    assert_eq!(before, after, "the old assignment stays");
    assert_eq!(allocator.strategy().primary.name(), "consistent-hashing");

    let rendezvous = Arc::new(
        StrategyPre::prepare(&runtime(), &component("example-rendezvous"), StrategySource::Builtin).unwrap(),
    );
    let report = allocator.try_set_strategy(StrategyChoice::new(rendezvous)).unwrap();
    assert_eq!(report.calls.len(), 1);
    assert_eq!(report.batch, 500);
    assert!(report.moved > 0 && report.moved < 500, "{}", report.moved);
    assert_eq!(allocator.strategy().primary.name(), "rendezvous");
    assert_eq!(allocator.unassigned(), 0);
}

// --- the server, end to end ------------------------------------------------

/// Add a plugin, select it by editing the config, replace it with a new
/// build, with a broken file, delete it: all without a restart.
#[test]
fn a_plugin_is_added_selected_replaced_refused_and_deleted_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (plugins, cache) = (dir.path().join("plugins"), dir.path().join("cache"));
    std::fs::create_dir(&plugins).unwrap();
    let config = dir.path().join("targetallocator.yaml");
    let port = free_port();
    let collectors = ["c1", "c2", "c3"];
    std::fs::write(&config, config_text(port, &plugins, &cache, "consistent-hashing", &collectors)).unwrap();
    let mut server = Server::start(&config, port);
    let before = server.assignment("web");

    // Added: listed, not active.
    let rendezvous = component("example-rendezvous");
    let file = plugins.join("rendezvous.wasm");
    write_atomically(&file, &rendezvous);
    wait_for("the plugin to be listed", || server.strategy("rendezvous").is_some());
    let listed = server.strategy("rendezvous").unwrap();
    assert_eq!(listed["digest"], sha256_hex(&rendezvous));
    assert_eq!(listed["source"], file.display().to_string());
    assert_eq!(listed["contract"], "ta:allocator@0.1.0");
    assert_eq!(listed["active"], false);

    // Selected by a config edit: the assignment changes, same process.
    write_atomically(&config, config_text(port, &plugins, &cache, "rendezvous", &collectors).as_bytes());
    wait_for("the switch to rendezvous", || server.active().0 == "rendezvous");
    let after = server.assignment("web");
    assert_ne!(before, after, "rendezvous places targets differently");
    assert_eq!(after.values().map(Vec::len).sum::<usize>(), TARGETS);
    assert_eq!(server.strategy("rendezvous").unwrap()["active"], true);
    assert!(
        server.metrics().contains("opentelemetry_allocator_strategy_switches_total{result=\"success\"} 1")
    );

    // A new build of the active plugin becomes active.
    let v2 = new_build(&rendezvous, "v2");
    write_atomically(&file, &v2);
    wait_for("the new build to be active", || server.active().1 == sha256_hex(&v2));
    assert_eq!(server.total("web"), TARGETS);

    // A broken file is refused; the last good build keeps serving.
    write_atomically(&file, b"this is not wasm");
    wait_for("the error to be shown", || server.file_status(&file).is_some_and(|f| !f["error"].is_null()));
    let status = server.file_status(&file).unwrap();
    assert!(status["error"].as_str().unwrap().contains("not a WebAssembly component"), "{status}");
    assert_eq!(status["loaded_digest"], sha256_hex(&v2));
    assert_eq!(server.active(), ("rendezvous".to_string(), sha256_hex(&v2)));
    assert_eq!(server.assignment("web"), after);
    let metric =
        format!("opentelemetry_allocator_strategy_load_errors_total{{file=\"{}\"}} 1", file.display());
    assert!(server.metrics().contains(&metric), "{}", server.metrics());
    assert!(server.log_text().contains("strategy file refused"));

    // Deleted: still active and listed.
    std::fs::remove_file(&file).unwrap();
    wait_for("the file to be forgotten", || server.file_status(&file).is_none());
    assert_eq!(server.active(), ("rendezvous".to_string(), sha256_hex(&v2)));
    assert!(server.strategy("rendezvous").is_some());
    assert_eq!(server.assignment("web"), after);
    assert!(server.alive());
}

fn symlink(target: &str, link: &Path) {
    std::os::unix::fs::symlink(target, link).unwrap();
}

/// Kubernetes' atomic ConfigMap update: the new files land in a fresh
/// `..<timestamp>` directory and the `..data` symlink is swapped over.
fn configmap_swap(volume: &Path, version: &str, files: &[(&str, &[u8])]) {
    let data = volume.join(format!("..{version}"));
    std::fs::create_dir(&data).unwrap();
    for (name, bytes) in files {
        std::fs::write(data.join(name), bytes).unwrap();
    }
    let old = std::fs::read_link(volume.join("..data")).ok();
    symlink(&format!("..{version}"), &volume.join("..data_tmp"));
    std::fs::rename(volume.join("..data_tmp"), volume.join("..data")).unwrap();
    for (name, _) in files {
        if std::fs::symlink_metadata(volume.join(name)).is_err() {
            symlink(&format!("..data/{name}"), &volume.join(name));
        }
    }
    if let Some(old) = old {
        std::fs::remove_dir_all(volume.join(old)).unwrap();
    }
}

#[cfg(unix)]
#[test]
fn configmap_style_symlink_swaps_of_plugins_and_config_are_followed() {
    let dir = tempfile::tempdir().unwrap();
    let (plugins, conf, cache) =
        (dir.path().join("plugins"), dir.path().join("conf"), dir.path().join("cache"));
    std::fs::create_dir(&plugins).unwrap();
    std::fs::create_dir(&conf).unwrap();
    let port = free_port();
    let rendezvous = component("example-rendezvous");
    let text = |strategy: &str| config_text(port, &plugins, &cache, strategy, &["c1", "c2", "c3"]);
    configmap_swap(&plugins, "2026_01_01_v1", &[("rendezvous.wasm", &rendezvous)]);
    configmap_swap(
        &conf,
        "2026_01_01_v1",
        &[("targetallocator.yaml", text("consistent-hashing").as_bytes())],
    );
    let server = Server::start(&conf.join("targetallocator.yaml"), port);
    assert_eq!(server.strategy("rendezvous").unwrap()["digest"], sha256_hex(&rendezvous));

    let v2 = new_build(&rendezvous, "v2");
    configmap_swap(&plugins, "2026_01_02_v2", &[("rendezvous.wasm", &v2)]);
    wait_for("the swapped plugin", || server.strategy("rendezvous").unwrap()["digest"] == sha256_hex(&v2));
    assert_eq!(server.active().0, "consistent-hashing");

    configmap_swap(&conf, "2026_01_02_v2", &[("targetallocator.yaml", text("rendezvous").as_bytes())]);
    wait_for("the swapped config", || server.active() == ("rendezvous".to_string(), sha256_hex(&v2)));
    assert_eq!(server.total("web"), TARGETS);
    // The `..data` directories themselves are never loaded as plugins.
    let files = server.strategies()["files"].as_array().unwrap().len();
    assert_eq!(files, 1);
}

/// Faulty plugins through the server: refused ones are shown with their
/// error; selecting a loaded one that fails on the real batch keeps the old
/// strategy serving and reports why.
#[test]
fn faulty_plugins_never_take_the_server_down() {
    let dir = tempfile::tempdir().unwrap();
    let (plugins, cache) = (dir.path().join("plugins"), dir.path().join("cache"));
    std::fs::create_dir(&plugins).unwrap();
    for guest in ["panic", "infinite-loop", "unbounded-alloc", "bad-index", "contract-0-2", "imports-wasi"] {
        std::fs::copy(test_guest_path(guest), plugins.join(format!("{guest}.wasm"))).unwrap();
    }
    let config = dir.path().join("targetallocator.yaml");
    let port = free_port();
    let text = |strategy: &str| config_text(port, &plugins, &cache, strategy, &["c1", "c2", "c3"]);
    std::fs::write(&config, text("consistent-hashing")).unwrap();
    let mut server = Server::start(&config, port);
    let errors =
        |name: &str| server.file_status(&plugins.join(format!("{name}.wasm"))).unwrap()["error"].clone();
    assert!(errors("contract-0-2").as_str().unwrap().contains("supported: ta:allocator@0.1.x"));
    assert!(errors("imports-wasi").as_str().unwrap().contains("wasi:cli/environment"));
    let before = server.assignment("web");
    for guest in ["panic", "infinite-loop", "unbounded-alloc", "bad-index"] {
        write_atomically(&config, text(guest).as_bytes());
        wait_for("the switch to be refused", || {
            server.strategies()["active"]["last_switch_error"]
                .as_str()
                .is_some_and(|e| e.starts_with(&format!("strategy \"{guest}\" failed")))
        });
        assert_eq!(server.active().0, "consistent-hashing", "{guest}");
        assert_eq!(server.assignment("web"), before, "{guest}");
        assert!(server.alive());
    }
    assert!(
        server.metrics().contains("opentelemetry_allocator_strategy_switches_total{result=\"failure\"} 4")
    );
}

/// Strategies swapped by config edits while clients hammer the target
/// endpoints: no failed request, no empty answer, and every observation of
/// the whole job holds all its targets.
#[test]
fn strategy_swaps_under_concurrent_load_never_serve_a_partial_assignment() {
    let dir = tempfile::tempdir().unwrap();
    let (plugins, cache) = (dir.path().join("plugins"), dir.path().join("cache"));
    std::fs::create_dir(&plugins).unwrap();
    write_atomically(&plugins.join("rendezvous.wasm"), &component("example-rendezvous"));
    let config = dir.path().join("targetallocator.yaml");
    let port = free_port();
    let text = |strategy: &str| config_text(port, &plugins, &cache, strategy, &["c1", "c2", "c3"]);
    std::fs::write(&config, text("consistent-hashing")).unwrap();
    let server = Server::start(&config, port);

    let stop = Arc::new(AtomicBool::new(false));
    let observations = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..4)
        .map(|i| {
            let (stop, observations) = (stop.clone(), observations.clone());
            std::thread::spawn(move || -> Result<(), String> {
                let collector = format!("c{}", i % 3 + 1);
                while !stop.load(Ordering::Relaxed) {
                    let (status, body) =
                        http_get(port, &format!("/jobs/web/targets?collector_id={collector}"))
                            .map_err(|e| format!("request failed: {e}"))?;
                    let slice: Value =
                        serde_json::from_str(&body).map_err(|e| format!("{status} {e}: {body}"))?;
                    if status != 200 || slice.as_array().is_none_or(Vec::is_empty) {
                        return Err(format!("{collector}: {status} {body}"));
                    }
                    // The whole job from one snapshot: all targets, always.
                    let (status, body) =
                        http_get(port, "/jobs/web/targets").map_err(|e| format!("request failed: {e}"))?;
                    let all: Value =
                        serde_json::from_str(&body).map_err(|e| format!("{status} {e}: {body}"))?;
                    let total: usize = all
                        .as_object()
                        .ok_or(format!("not an object: {body}"))?
                        .values()
                        .map(|c| c["targets"].as_array().map_or(0, Vec::len))
                        .sum();
                    if status != 200 || total != TARGETS {
                        return Err(format!("whole job: {status}, {total} targets"));
                    }
                    observations.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            })
        })
        .collect();
    let mut switches = 0;
    for strategy in ["least-weighted", "rendezvous", "consistent-hashing"].iter().cycle().take(6) {
        write_atomically(&config, text(strategy).as_bytes());
        wait_for("the switch", || server.active().0 == *strategy);
        switches += 1;
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().unwrap().unwrap();
    }
    assert_eq!(switches, 6);
    assert!(observations.load(Ordering::Relaxed) > 0);
    let metrics = server.metrics();
    assert!(
        metrics.contains("opentelemetry_allocator_strategy_switches_total{result=\"success\"} 6"),
        "{metrics}"
    );
}

/// Config edits: an invalid config is refused and the old one keeps running;
/// collectors and scrape configs change without a restart.
#[test]
fn config_reloads_apply_valid_changes_and_refuse_invalid_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (plugins, cache) = (dir.path().join("plugins"), dir.path().join("cache"));
    std::fs::create_dir(&plugins).unwrap();
    let config = dir.path().join("targetallocator.yaml");
    let port = free_port();
    let good = config_text(port, &plugins, &cache, "consistent-hashing", &["c1", "c2"]);
    std::fs::write(&config, &good).unwrap();
    let server = Server::start(&config, port);
    let before = server.assignment("web");
    assert_eq!(before.keys().collect::<Vec<_>>(), ["c1", "c2"]);

    // Invalid YAML, then an unknown strategy: both refused, nothing changes.
    write_atomically(&config, b"collectors: [\n");
    wait_for("the refusal", || {
        server.metrics().contains("opentelemetry_allocator_config_last_reload_successful 0")
    });
    let unknown = good.replace("allocation_strategy: consistent-hashing", "allocation_strategy: nope");
    write_atomically(&config, unknown.as_bytes());
    wait_for("the second refusal", || {
        server.metrics().contains("opentelemetry_allocator_config_reloads_total{result=\"failure\"} 2")
    });
    assert_eq!(server.assignment("web"), before);
    assert_eq!(server.active().0, "consistent-hashing");
    let shown = server.strategies()["config_error"].as_str().unwrap().to_string();
    assert!(shown.contains("unknown strategy \"nope\""), "{shown}");
    let log = server.log_text();
    assert!(log.contains("config reload refused") && log.contains("unknown strategy \"nope\""), "{log}");

    // Job `api` added, a restart-only key changed: `web` keeps all its
    // targets at every observation while discovery restarts.
    let api_job = {
        let targets: Vec<String> = (0..30).map(|i| format!("'10.9.0.{i}:80'")).collect();
        format!("    - job_name: api\n      static_configs:\n        - targets: [{}]\n", targets.join(", "))
    };
    let with_api = good.clone() + &api_job + "collector_not_ready_grace_period: 1m\n";
    let watching = Arc::new(AtomicBool::new(true));
    let watcher = {
        let watching = watching.clone();
        std::thread::spawn(move || {
            let mut observations = 0;
            while watching.load(Ordering::Relaxed) {
                let body = http_get(port, "/jobs/web/targets").unwrap().1;
                let all: Value = serde_json::from_str(&body).unwrap();
                let total: usize =
                    all.as_object().unwrap().values().map(|c| c["targets"].as_array().unwrap().len()).sum();
                assert_eq!(total, TARGETS, "job web while discovery restarts");
                observations += 1;
            }
            observations
        })
    };
    write_atomically(&config, with_api.as_bytes());
    wait_for("job api", || server.total("api") == 30);
    watching.store(false, Ordering::Relaxed);
    assert!(watcher.join().unwrap() > 0);
    assert_eq!(server.assignment("web"), before, "kept jobs keep their collectors");
    assert!(server.log_text().contains("collector_not_ready_grace_period"));

    // A third collector, job `web` removed.
    let changed = config_text(port, &plugins, &cache, "consistent-hashing", &["c1", "c2", "c3"])
        .split("config:\n")
        .next()
        .unwrap()
        .to_string()
        + "config:\n  scrape_configs:\n"
        + &api_job;
    write_atomically(&config, changed.as_bytes());
    wait_for("job api with three collectors", || {
        server.total("api") == 30 && server.assignment("api").len() == 3
    });
    wait_for("job web to be gone", || server.total("web") == 0);
    assert_eq!(http_get(port, "/jobs/web/targets?collector_id=c1").unwrap(), (200, "[]\n".to_string()));
    let scrape_configs = server.json("/scrape_configs");
    assert!(scrape_configs.get("api").is_some() && scrape_configs.get("web").is_none(), "{scrape_configs}");
    let jobs = server.json("/jobs");
    assert!(jobs.get("api").is_some() && jobs.get("web").is_none(), "{jobs}");
    let metrics = server.metrics();
    assert!(metrics.contains("opentelemetry_allocator_config_last_reload_successful 1"), "{metrics}");
    assert!(server.strategies()["config_error"].is_null());
    assert!(metrics.contains("opentelemetry_allocator_collectors_discovered 3"), "{metrics}");

    // Dropping `collectors:` would switch to Kubernetes collector discovery:
    // that needs a restart, so the static collectors stay.
    let without_collectors: String = changed
        .lines()
        .map(|l| {
            if l.starts_with("collectors:") {
                "collector_namespace: default\n".into()
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    assert_ne!(without_collectors, changed);
    let reloads = |server: &Server| {
        let metrics = server.metrics();
        let line = metrics
            .lines()
            .find(|l| l.starts_with("opentelemetry_allocator_config_reloads_total{result=\"success\"}"));
        line.and_then(|l| l.split_whitespace().last()?.parse::<u64>().ok()).unwrap_or(0)
    };
    let reloads_before = reloads(&server);
    write_atomically(&config, without_collectors.as_bytes());
    wait_for("the warning", || server.log_text().contains("collectors (set or unset)"));
    wait_for("the reload", || reloads(&server) > reloads_before);
    assert_eq!(server.assignment("api").len(), 3, "the static collectors stay");
    assert_eq!(server.total("api"), 30);
}

/// After a reload, a job whose discovery cannot report every source (here an
/// http_sd endpoint nobody listens on) keeps its targets, then, once the
/// resync deadline passes, serves what its other sources reported.
#[test]
fn a_job_with_a_silent_source_is_resynced_after_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let (plugins, cache) = (dir.path().join("plugins"), dir.path().join("cache"));
    std::fs::create_dir(&plugins).unwrap();
    let config = dir.path().join("targetallocator.yaml");
    let port = free_port();
    let silent = format!("http://127.0.0.1:{}/sd", free_port());
    let good = config_text(port, &plugins, &cache, "consistent-hashing", &["c1", "c2"])
        + &format!("      http_sd_configs:\n        - url: {silent}\n          refresh_interval: 1h\n");
    std::fs::write(&config, &good).unwrap();
    let server = Server::start(&config, port);

    // One more static target: the reload restarts discovery; the static
    // source reports at once, the http_sd one never does.
    let extra = good.replace("        - targets: [", "        - targets: ['10.200.0.1:80', ");
    assert_ne!(extra, good);
    write_atomically(&config, extra.as_bytes());
    wait_for("the reload", || {
        server.metrics().contains("opentelemetry_allocator_config_reloads_total{result=\"success\"} 2")
    });
    assert_eq!(server.total("web"), TARGETS, "the job keeps its targets while its sources resync");
    wait_for("the resync deadline", || server.total("web") == TARGETS + 1);
    let log = server.log_text();
    assert!(log.contains("not every discovery source of the job reported"), "{log}");
}
