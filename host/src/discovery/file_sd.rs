//! `file_sd_configs`: target groups from JSON or YAML files, re-read when a
//! watched directory changes (notify) and every `refresh_interval` (volumes
//! such as Kubernetes ConfigMaps are not always reported by inotify).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::Watcher;
use std::sync::mpsc::Sender;

use tokio::sync::mpsc;

use super::target_group::parse_target_groups;
use super::{DiscoveryUpdate, SourceKey};
use crate::allocation::TargetGroup;
use crate::config::FileSdConfig;

/// Collapses bursts of file events (an editor's save, a ConfigMap swap).
const EVENT_DEBOUNCE: Duration = Duration::from_millis(200);

/// Runs one `file_sd_configs` entry until the receiver is dropped.
pub async fn run_file_sd(source: SourceKey, config: FileSdConfig, updates: Sender<DiscoveryUpdate>) {
    let (wake_tx, mut wake_rx) = mpsc::channel::<()>(1);
    // The watcher lives as long as this task; events only wake the loop.
    let _watcher = watch_directories(&config.files, wake_tx);
    let mut last_good: BTreeMap<PathBuf, Vec<Arc<TargetGroup>>> = BTreeMap::new();
    let mut last_sent: Option<Vec<Arc<TargetGroup>>> = None;
    loop {
        let files = expand_globs(&config.files);
        last_good.retain(|path, _| files.contains(path));
        for path in &files {
            match read_groups(path).await {
                Ok(groups) => {
                    // An unchanged file keeps its groups' identity, so nothing downstream re-processes them.
                    let previous = last_good.get(path);
                    if previous.is_none_or(|p| !p.iter().map(|g| &**g).eq(groups.iter())) {
                        last_good.insert(path.clone(), groups.into_iter().map(Arc::new).collect());
                    }
                }
                Err(message) => {
                    // Keep the file's previous groups: a half-written file must not drop targets.
                    tracing::warn!(job = %source.job, file = %path.display(), "file_sd: {message}; keeping the previous targets of this file");
                }
            }
        }
        let groups: Vec<Arc<TargetGroup>> = last_good.values().flatten().cloned().collect();
        if last_sent.as_ref() != Some(&groups) {
            last_sent = Some(groups.clone());
            if updates.send(DiscoveryUpdate { source: source.clone(), groups }).is_err() {
                return;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(config.refresh_interval) => {}
            Some(()) = wake_rx.recv() => {
                tokio::time::sleep(EVENT_DEBOUNCE).await;
                while wake_rx.try_recv().is_ok() {}
            }
        }
    }
}

async fn read_groups(path: &Path) -> Result<Vec<TargetGroup>, String> {
    let text = tokio::fs::read_to_string(path).await.map_err(|e| format!("cannot read: {e}"))?;
    let is_yaml = matches!(path.extension().and_then(|e| e.to_str()), Some("yml" | "yaml"));
    let groups = if is_yaml {
        let value: serde_json::Value =
            serde_yaml::from_str(&text).map_err(|e| format!("invalid YAML: {e}"))?;
        parse_target_groups(&value.to_string())
    } else {
        parse_target_groups(&text)
    };
    groups.map_err(|e| e.to_string())
}

/// Files matching the configured paths, whose last element may hold `*` and `?`.
pub fn expand_globs(patterns: &[String]) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for pattern in patterns {
        let path = Path::new(pattern);
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if !name.contains(['*', '?']) {
            if path.is_file() {
                files.push(path.to_path_buf());
            }
            continue;
        }
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            if let Some(candidate) = file_name.to_str()
                && wildcard_match(name, candidate)
                && entry.path().is_file()
            {
                files.push(entry.path());
            }
        }
    }
    files.sort();
    files.dedup();
    files
}

fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

fn watch_directories(patterns: &[String], wake: mpsc::Sender<()>) -> Option<notify::RecommendedWatcher> {
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok() {
            let _ = wake.try_send(());
        }
    })
    .map_err(|e| tracing::warn!("file_sd: cannot watch files ({e}); relying on refresh_interval"))
    .ok()?;
    for pattern in patterns {
        let dir = Path::new(pattern).parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if let Err(e) = watcher.watch(dir, notify::RecursiveMode::NonRecursive) {
            tracing::warn!(dir = %dir.display(), "file_sd: cannot watch ({e}); relying on refresh_interval");
        }
    }
    Some(watcher)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addresses(group: &TargetGroup) -> Vec<&str> {
        group.targets.iter().map(|t| t.get("__address__").unwrap()).collect()
    }

    #[test]
    fn wildcards_match_file_names() {
        assert!(wildcard_match("*.json", "a.json"));
        assert!(wildcard_match("tg_?.yml", "tg_1.yml"));
        assert!(!wildcard_match("tg_?.yml", "tg_10.yml"));
        assert!(wildcard_match("*", ""));
        assert!(!wildcard_match("*.json", "a.yaml"));
    }

    #[tokio::test]
    async fn reads_json_and_yaml_and_names_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = dir.path().join("a.yml");
        std::fs::write(&yaml, "- targets: ['x:1']\n  labels:\n    env: prod\n").unwrap();
        let groups = read_groups(&yaml).await.unwrap();
        assert_eq!(addresses(&groups[0]), ["x:1"]);
        assert_eq!(groups[0].labels.get("env"), Some("prod"));
        let json = dir.path().join("b.json");
        std::fs::write(&json, r#"[{"targets": ["y:2"]}]"#).unwrap();
        assert_eq!(addresses(&read_groups(&json).await.unwrap()[0]), ["y:2"]);
        std::fs::write(&json, r#"[{"targets": "y:2"}]"#).unwrap();
        assert!(read_groups(&json).await.unwrap_err().contains("not a list of target groups"));
        std::fs::write(&yaml, "- targets: [").unwrap();
        assert!(read_groups(&yaml).await.unwrap_err().contains("invalid YAML"));
    }

    // Multi-threaded: the test blocks on a std channel while the task runs.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_broken_file_keeps_its_previous_groups_and_a_deleted_one_drops_them() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.json");
        std::fs::write(&file, r#"[{"targets": ["a:1"]}]"#).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let source = SourceKey { job: "j".into(), source: "file_sd/0".into() };
        let config = FileSdConfig {
            files: vec![file.display().to_string()],
            refresh_interval: Duration::from_millis(100),
        };
        let task = tokio::spawn(run_file_sd(source, config, tx));
        let next = || rx.recv_timeout(Duration::from_secs(10)).expect("an update").groups;
        assert_eq!(addresses(&next()[0]), ["a:1"]);
        std::fs::write(&file, "[{").unwrap();
        // Several rescans read the broken file: the groups stay, so nothing is sent.
        assert!(rx.recv_timeout(Duration::from_millis(600)).is_err());
        std::fs::write(&file, r#"[{"targets": ["b:1"]}]"#).unwrap();
        assert_eq!(addresses(&next()[0]), ["b:1"]);
        std::fs::remove_file(&file).unwrap();
        assert!(next().is_empty());
        task.abort();
    }

    #[test]
    fn globs_expand_in_the_last_element_only() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["a.json", "b.json", "c.yaml"] {
            std::fs::write(dir.path().join(name), "[]").unwrap();
        }
        let pattern = dir.path().join("*.json").display().to_string();
        let plain = dir.path().join("c.yaml").display().to_string();
        let missing = dir.path().join("nope.json").display().to_string();
        let files = expand_globs(&[pattern, plain, missing]);
        let names: Vec<_> = files.iter().map(|f| f.file_name().unwrap().to_str().unwrap()).collect();
        assert_eq!(names, ["a.json", "b.json", "c.yaml"]);
    }
}
