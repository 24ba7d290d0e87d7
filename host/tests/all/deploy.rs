//! The deployment artefacts: `scripts/check-deploy` (kustomize and Helm
//! rendering, Kubernetes schemas, Helm == kustomize, the Dockerfile), and the
//! example config files loaded as the allocator loads them.

use std::path::{Path, PathBuf};
use std::process::Command;

use target_allocator::config::{AllocatorConfig, CliOverrides, Environment, load_config};

use crate::support::catalog;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Fails, with its output, when a check fails or a tool is missing
/// (`scripts/setup --tests` installs them; nothing is skipped).
#[test]
fn check_deploy_script_passes() {
    let output = Command::new(repo().join("scripts/check-deploy"))
        .current_dir(repo())
        .output()
        .expect("scripts/check-deploy runs (python3)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "scripts/check-deploy failed ({}):\n{stdout}\n{stderr}", output.status);
    assert!(stdout.contains("checks passed"), "{stdout}");
}

/// Loads a config file of deploy/ as the allocator would in the pod: the
/// namespace from OTELCOL_NAMESPACE, `strategy_dir` pointing at an existing
/// directory (the ConfigMap mount). No unknown keys, and a strategy the
/// catalogue accepts with its options.
fn load_deploy_config(relative: &str) -> AllocatorConfig {
    let text = std::fs::read_to_string(repo().join(relative)).unwrap();
    assert!(text.contains("strategy_dir: /strategies\n"), "{relative} mounts strategies at /strategies");
    let dir = tempfile::tempdir().unwrap();
    let strategies = dir.path().join("strategies");
    std::fs::create_dir(&strategies).unwrap();
    let file = dir.path().join("targetallocator.yaml");
    std::fs::write(
        &file,
        text.replace("strategy_dir: /strategies\n", &format!("strategy_dir: {}\n", strategies.display())),
    )
    .unwrap();
    let environment =
        Environment { otelcol_namespace: Some("observability".into()), ..Environment::default() };
    let (config, warnings) = load_config(&file, &environment, &CliOverrides::default())
        .unwrap_or_else(|e| panic!("{relative} is refused: {e}"));
    assert_eq!(warnings, Vec::<String>::new(), "{relative}: unknown keys");
    assert_eq!(config.collector_namespace, "observability");
    assert_eq!(config.listen_addr, ":8080", "{relative}: the port the probes and the Service use");
    assert!(config.collectors.is_none(), "{relative}: collectors come from Kubernetes");
    assert!(config.collector_selector.is_some(), "{relative}: a collector_selector");
    let fallback = config.fallback_strategy();
    let fallback_options = fallback.as_deref().map(|f| config.strategy_options(f)).unwrap_or_default();
    catalog()
        .choose(
            &config.allocation_strategy,
            &config.strategy_options(&config.allocation_strategy),
            fallback.as_deref().map(|f| (f, fallback_options.as_str())),
        )
        .unwrap_or_else(|e| panic!("{relative}: allocation_strategy: {e}"));
    config
}

#[test]
fn kustomize_base_config_loads() {
    let config = load_deploy_config("deploy/kustomize/base/targetallocator.yaml");
    assert_eq!(config.allocation_strategy, "consistent-hashing");
    let jobs: Vec<&str> = config.prometheus.scrape_configs.iter().map(|j| j.job_name.as_str()).collect();
    assert_eq!(jobs, ["kubernetes-pods", "kubernetes-nodes"]);
    for job in &config.prometheus.scrape_configs {
        assert!(job.printed.contains_key("kubernetes_sd_configs"), "{}", job.job_name);
        assert!(!job.relabel_rules.is_empty(), "{}", job.job_name);
    }
}

#[test]
fn kustomize_overlay_config_loads() {
    let config = load_deploy_config("deploy/kustomize/overlays/example/targetallocator.yaml");
    assert_eq!(config.allocation_strategy, "per-node");
    assert_eq!(config.fallback_strategy().as_deref(), Some("consistent-hashing"));
}

/// The config file the OpenTelemetry Operator writes for
/// deploy/examples/opentelemetrycollector.yaml (its configmap.go: the
/// receiver's scrape configs with `$$` unescaped, the collector's selector
/// labels under yaml.v2's lower-case `matchlabels`, `matchexpressions: []`)
/// loads without warnings: the image is a drop-in for the operator's.
#[test]
fn operator_generated_config_loads() {
    let cr: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(repo().join("deploy/examples/opentelemetrycollector.yaml")).unwrap(),
    )
    .unwrap();
    let ta = &cr["spec"]["targetAllocator"];
    let scrape_configs = &cr["spec"]["config"]["receivers"]["prometheus"]["config"]["scrape_configs"];
    let name = cr["metadata"]["name"].as_str().unwrap();
    let namespace = cr["metadata"]["namespace"].as_str().unwrap();
    let text = format!(
        "allocation_strategy: {}\ncollector_selector:\n  matchexpressions: []\n  matchlabels:\n    app.kubernetes.io/component: opentelemetry-collector\n    app.kubernetes.io/instance: {namespace}.{name}\n    app.kubernetes.io/managed-by: opentelemetry-operator\n    app.kubernetes.io/part-of: opentelemetry\nconfig:\n  scrape_configs:\n{}filter_strategy: {}\n",
        ta["allocationStrategy"].as_str().unwrap(),
        serde_yaml::to_string(scrape_configs)
            .unwrap()
            .replace("$$", "$")
            .lines()
            .map(|l| format!("  {l}\n"))
            .collect::<String>(),
        ta["filterStrategy"].as_str().unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("targetallocator.yaml");
    std::fs::write(&file, &text).unwrap();
    let environment = Environment { otelcol_namespace: Some(namespace.into()), ..Environment::default() };
    let (config, warnings) = load_config(&file, &environment, &CliOverrides::default())
        .unwrap_or_else(|e| panic!("the operator's config is refused: {e}\n{text}"));
    assert_eq!(warnings, Vec::<String>::new(), "{text}");
    assert_eq!(config.allocation_strategy, "consistent-hashing");
    let job = &config.prometheus.scrape_configs[0];
    assert_eq!(job.job_name, "kubernetes-pods");
    assert_eq!(job.printed["relabel_configs"][1]["replacement"], "$1:$2", "{text}");
}
