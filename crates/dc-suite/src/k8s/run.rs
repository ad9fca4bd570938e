//! A rendered overlay run in containers on one network, as a cluster would run it: for
//! each workload one pod's container, from the same image with the same command, args
//! and environment, its ConfigMaps and Secrets mounted as files at the same paths, its
//! claims and empty dirs as writable folders, its security context and resource limits
//! applied, found by the names of the Services that select it. What runs outside the
//! cluster (the directory's PostgreSQL) runs beside it under the Service's name.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{bail, Context as _};
use serde_json::Value;
use tessera_clock::{Clock as _, SystemClock};

use super::manifests::{probes, Probe, Rendered, Workload};
use super::secrets::{self, Secrets};
use crate::deployment::{own_for_service, write};
use crate::docker::{self, Container, ContainerSpec, Network};
use crate::web::Directory;

/// How long every pod of an overlay may take to pass its probes.
const READY_LIMIT: Duration = Duration::from_secs(120);

/// One workload's running container.
#[derive(Debug)]
pub struct Pod {
    /// The workload it runs.
    pub workload: Workload,
    /// Its container.
    pub container: Container,
    /// Its readiness and liveness probes.
    pub probes: Vec<Probe>,
}

/// An overlay running in containers.
#[derive(Debug)]
pub struct ManifestRun {
    /// What was rendered.
    pub rendered: Rendered,
    /// The directory, with the user's password and the registered site.
    pub directory: Directory,
    /// One per workload, StatefulSets first.
    pub pods: Vec<Pod>,
    // Dropped after the pods: a network with a container on it cannot be removed.
    _network: Network,
    _files: tempfile::TempDir,
}

static RUNS: AtomicU32 = AtomicU32::new(0);

impl ManifestRun {
    /// Starts every workload of `rendered` (the repository at `root` supplies the secret
    /// maker). Returns once each container has started; [`ManifestRun::wait_ready`]
    /// waits for the probes.
    pub fn start(root: &Path, rendered: Rendered) -> anyhow::Result<Self> {
        let workloads = rendered.workloads()?;
        let mut images: Vec<String> = workloads
            .iter()
            .map(|w| {
                Ok(w.container()?["image"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned())
            })
            .collect::<anyhow::Result<_>>()?;
        images.push("tessera/postgres:bookworm".into());
        let image_refs: Vec<&str> = images.iter().map(String::as_str).collect();
        docker::require(&image_refs)?;

        let run = format!(
            "tessera-k8s-{}-{}",
            std::process::id(),
            RUNS.fetch_add(1, Ordering::SeqCst)
        );
        let files = tempfile::tempdir()?;
        let network = Network::create(&run)?;

        let external = rendered.external_services()?;
        if external != [("directory".to_owned(), 5432)] {
            bail!("the manifests name external services {external:?}; this run stands in for the directory (PostgreSQL on 5432) only");
        }
        let site = demo_site(&rendered, &workloads)?;
        let directory = Directory::start_with_sites(&run, &network, std::slice::from_ref(&site))?;
        let secrets = secrets::make(root, files.path(), &rendered, &directory, &site.0)?;

        let mut pods = Vec::new();
        for workload in workloads {
            let spec = pod_spec(&run, &network, &rendered, &secrets, files.path(), &workload)?;
            let probes = probes(&workload)?;
            pods.push(Pod {
                container: Container::start(spec)?,
                workload,
                probes,
            });
        }
        Ok(ManifestRun {
            rendered,
            directory,
            pods,
            _network: network,
            _files: files,
        })
    }

    /// Waits until every probe of every pod passes: HTTP 200 for an `httpGet`, a
    /// connection for a `tcpSocket`. Fails with the logs of the pods that did not.
    pub async fn wait_ready(&self) -> anyhow::Result<Vec<String>> {
        let deadline = SystemClock.instant() + READY_LIMIT;
        let mut passed = Vec::new();
        for pod in &self.pods {
            for probe in &pod.probes {
                loop {
                    // A restarting container publishes no port until it runs again.
                    let answer = match pod.container.host_addr(probe.port) {
                        Ok(addr) => probe_once(addr, probe).await,
                        Err(e) => Err(e),
                    };
                    match answer {
                        Ok(()) => break,
                        Err(why) if SystemClock.instant() > deadline => bail!(
                            "{} {}: {} on port {} {} did not pass within {READY_LIMIT:?} ({why}); it printed:\n{}\n\nThe other pods printed:\n{}",
                            pod.workload.kind,
                            pod.workload.name,
                            probe.kind,
                            probe.port,
                            probe.path.as_deref().unwrap_or("(tcp)"),
                            pod.container.logs(),
                            self.logs_but(&pod.workload.name)
                        ),
                        // A pod restarting until what it needs is up, as in a cluster.
                        Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
                    }
                }
                passed.push(format!(
                    "{} {}: {} {}:{} passed",
                    pod.workload.kind,
                    pod.workload.name,
                    probe.kind,
                    probe.port,
                    probe.path.as_deref().unwrap_or("tcp")
                ));
            }
        }
        Ok(passed)
    }

    fn logs_but(&self, name: &str) -> String {
        self.pods
            .iter()
            .filter(|pod| pod.workload.name != name)
            .map(|pod| format!("--- {}:\n{}", pod.workload.name, pod.container.logs()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The routes a person's browser takes: each Ingress host's `https://` origin to the
    /// published port of the pod its Service selects.
    pub fn public_routes(&self) -> anyhow::Result<Vec<(String, String)>> {
        let mut routes = Vec::new();
        for route in self.rendered.ingress_routes()? {
            let port = self.rendered.service_port(&route.service, &route.port)?;
            let pod = self.pod_serving(&route.service)?;
            let addr = pod.container.host_addr(port)?;
            routes.push((format!("https://{}", route.host), format!("http://{addr}")));
        }
        Ok(routes)
    }

    /// The pod Service `service` selects.
    pub fn pod_serving(&self, service: &str) -> anyhow::Result<&Pod> {
        for pod in &self.pods {
            if self
                .rendered
                .services_of(&pod.workload)?
                .iter()
                .any(|s| s == service)
            {
                return Ok(pod);
            }
        }
        bail!("no pod is selected by Service {service}")
    }

    /// Each container's memory in use (`docker stats`), by workload.
    pub fn memory(&self) -> anyhow::Result<Vec<(String, String)>> {
        self.pods
            .iter()
            .map(|pod| {
                let used = docker::docker(&[
                    "stats",
                    "--no-stream",
                    "--format",
                    "{{.MemUsage}}",
                    pod.container.name(),
                ])?;
                Ok((pod.workload.name.clone(), used))
            })
            .collect()
    }
}

async fn probe_once(addr: SocketAddr, probe: &Probe) -> anyhow::Result<()> {
    match &probe.path {
        Some(path) => {
            let answer = tessera_testkit::http_get(addr, path).await?;
            if answer.status != 200 {
                bail!("answered {}", answer.status);
            }
        }
        None => {
            tokio::net::TcpStream::connect(addr).await?;
        }
    }
    Ok(())
}

/// The demo site's client id and public origin, from its container's environment.
fn demo_site(rendered: &Rendered, workloads: &[Workload]) -> anyhow::Result<(String, String)> {
    let site = workloads
        .iter()
        .find(|w| w.name == "demo-site")
        .context("the overlay holds no demo-site: a sign-in needs a site")?;
    let env: BTreeMap<String, String> = environment(rendered, &Secrets::new(), site)?
        .into_iter()
        .collect();
    let get = |key: &str| {
        env.get(key)
            .cloned()
            .with_context(|| format!("demo-site's environment has no {key}"))
    };
    Ok((get("DEMO_CLIENT_ID")?, get("DEMO_PUBLIC_URL")?))
}

/// The container of `workload` as `docker run` options.
fn pod_spec(
    run: &str,
    network: &Network,
    rendered: &Rendered,
    secrets: &Secrets,
    scratch: &Path,
    workload: &Workload,
) -> anyhow::Result<ContainerSpec> {
    let container = workload.container()?;
    let aliases = rendered.services_of(workload)?;
    let Some((alias, more)) = aliases.split_first() else {
        bail!("no Service selects {} {}", workload.kind, workload.name);
    };
    if !more.is_empty() {
        bail!(
            "{}: more than one Service selects it ({aliases:?})",
            workload.name
        );
    }
    let mut args: Vec<String> = strings(&container["command"])?;
    args.extend(strings(&container["args"])?);
    if let Some(arg) = args.iter().find(|a| a.contains("$(")) {
        bail!(
            "{}: argument {arg:?} refers to a variable; this run does not expand them",
            workload.name
        );
    }
    let entrypoint = if container["command"].is_array() && !args.is_empty() {
        Some(args.remove(0))
    } else {
        None
    };
    let ports: Vec<u16> = container["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["containerPort"].as_u64())
        .filter_map(|p| u16::try_from(p).ok())
        .collect();
    let dir = scratch.join(&workload.name);
    let mounts = volumes(&dir, secrets, rendered, workload)?;
    let mut run_options = security_options(workload)?;
    run_options.extend(resource_options(&container["resources"]["limits"])?);
    // A container whose dependency is not up yet exits and is started again, as the
    // kubelet restarts it.
    run_options.extend(["--restart".into(), "on-failure:20".into()]);
    Ok(ContainerSpec {
        name: format!("{run}-{}", workload.name),
        image: container["image"]
            .as_str()
            .context("a container names its image")?
            .to_owned(),
        args,
        network: network.name().to_owned(),
        alias: alias.clone(),
        mounts,
        env: environment(rendered, secrets, workload)?,
        ports,
        entrypoint,
        run_options,
        ..ContainerSpec::default()
    })
}

/// The container's environment: `envFrom` ConfigMaps and Secrets, then `env` (which wins).
fn environment(
    rendered: &Rendered,
    secrets: &Secrets,
    workload: &Workload,
) -> anyhow::Result<Vec<(String, String)>> {
    let container = workload.container()?;
    let mut env = BTreeMap::new();
    for source in container["envFrom"].as_array().into_iter().flatten() {
        if let Some(name) = source["configMapRef"]["name"].as_str() {
            env.extend(rendered.config_map(name)?);
        } else if let Some(name) = source["secretRef"]["name"].as_str() {
            for (key, value) in secret(secrets, name)? {
                env.insert(key.clone(), String::from_utf8(value.clone())?);
            }
        } else {
            bail!(
                "{}: an envFrom source this run does not know: {source}",
                workload.name
            );
        }
    }
    for variable in container["env"].as_array().into_iter().flatten() {
        let name = variable["name"]
            .as_str()
            .context("an env entry has a name")?;
        let value = if let Some(value) = variable["value"].as_str() {
            value.to_owned()
        } else if let Some(reference) = variable["valueFrom"]["secretKeyRef"].as_object() {
            let (secret_name, key) = (str_field(reference, "name")?, str_field(reference, "key")?);
            let value = secret(secrets, secret_name)?
                .get(key)
                .with_context(|| format!("Secret {secret_name} has no key {key}"))?;
            String::from_utf8(value.clone())?
        } else if let Some(reference) = variable["valueFrom"]["configMapKeyRef"].as_object() {
            let (map, key) = (str_field(reference, "name")?, str_field(reference, "key")?);
            rendered
                .config_map(map)?
                .remove(key)
                .with_context(|| format!("ConfigMap {map} has no key {key}"))?
        } else {
            bail!(
                "{}: env {name} comes from a source this run does not know",
                workload.name
            );
        };
        if value.contains("$(") {
            bail!(
                "{}: env {name} refers to a variable; this run does not expand them",
                workload.name
            );
        }
        env.insert(name.to_owned(), value);
    }
    Ok(env.into_iter().collect())
}

/// Each volume mount as a folder of this machine: ConfigMaps and Secrets written out
/// (read-only in the container), claims and empty dirs empty and writable.
fn volumes(
    dir: &Path,
    secrets: &Secrets,
    rendered: &Rendered,
    workload: &Workload,
) -> anyhow::Result<Vec<(String, String)>> {
    let container = workload.container()?;
    let mut mounts = Vec::new();
    for mount in container["volumeMounts"].as_array().into_iter().flatten() {
        let name = mount["name"]
            .as_str()
            .context("a volume mount names its volume")?;
        let path = mount["mountPath"]
            .as_str()
            .context("a volume mount has a path")?;
        if !mount["subPath"].is_null() {
            bail!(
                "{}: volume {name} uses subPath, which this run does not reproduce",
                workload.name
            );
        }
        let host = dir.join(name);
        std::fs::create_dir_all(&host)?;
        let volume = workload.pod["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|v| v["name"] == name);
        let read_only = match volume {
            Some(v) if v["configMap"].is_object() => {
                let map_name = v["configMap"]["name"].as_str().context("configMap name")?;
                let data = rendered.config_map(map_name)?;
                let data = data.into_iter().map(|(k, v)| (k, v.into_bytes())).collect();
                write_items(&host, &data, &v["configMap"]["items"])?;
                true
            }
            Some(v) if v["secret"].is_object() => {
                let secret_name = v["secret"]["secretName"].as_str().context("secretName")?;
                write_items(&host, secret(secrets, secret_name)?, &v["secret"]["items"])?;
                true
            }
            Some(v) if v["emptyDir"].is_object() => false,
            None if workload.claims.iter().any(|c| c == name) => false,
            _ => bail!(
                "{}: volume {name} is of a kind this run does not know",
                workload.name
            ),
        };
        own_for_service(&host)?;
        let inside = if read_only {
            format!("{path}:ro")
        } else {
            path.to_owned()
        };
        mounts.push((host.display().to_string(), inside));
    }
    Ok(mounts)
}

/// Writes `data` into `dir`: every key, or only `items` (key → path) when given.
fn write_items(dir: &Path, data: &BTreeMap<String, Vec<u8>>, items: &Value) -> anyhow::Result<()> {
    let chosen: Vec<(String, String)> = match items.as_array() {
        Some(items) => items
            .iter()
            .map(|i| Ok((str_value(&i["key"])?, str_value(&i["path"])?)))
            .collect::<anyhow::Result<_>>()?,
        None => data.keys().map(|k| (k.clone(), k.clone())).collect(),
    };
    for (key, path) in chosen {
        let value = data
            .get(&key)
            .with_context(|| format!("no key {key} to mount"))?;
        let text =
            String::from_utf8(value.clone()).with_context(|| format!("{key} is not text"))?;
        write(&dir.join(path), &text)?;
    }
    Ok(())
}

/// The pod's and container's security contexts as `docker run` options.
fn security_options(workload: &Workload) -> anyhow::Result<Vec<String>> {
    let pod = &workload.pod["securityContext"];
    let container = &workload.container()?["securityContext"];
    let field = |name: &str| {
        if container[name].is_null() {
            pod[name].clone()
        } else {
            container[name].clone()
        }
    };
    let user = field("runAsUser").as_u64();
    let group = field("runAsGroup").as_u64();
    if field("runAsNonRoot") == true && user.is_none_or(|u| u == 0) {
        bail!(
            "{}: runAsNonRoot without a non-zero runAsUser",
            workload.name
        );
    }
    let mut options = Vec::new();
    if let Some(user) = user {
        options.extend(["--user".into(), format!("{user}:{}", group.unwrap_or(user))]);
    }
    if let Some(fs_group) = pod["fsGroup"].as_u64() {
        options.extend(["--group-add".into(), fs_group.to_string()]);
    }
    if container["readOnlyRootFilesystem"] == true {
        options.push("--read-only".into());
    }
    if container["allowPrivilegeEscalation"] == false {
        options.extend(["--security-opt".into(), "no-new-privileges".into()]);
    }
    for capability in strings(&container["capabilities"]["drop"])? {
        options.extend(["--cap-drop".into(), capability]);
    }
    if !container["capabilities"]["add"].is_null() {
        bail!("{}: adds capabilities", workload.name);
    }
    let seccomp = field("seccompProfile");
    if !seccomp.is_null() && seccomp["type"] != "RuntimeDefault" {
        bail!(
            "{}: a seccomp profile other than RuntimeDefault",
            workload.name
        );
    }
    Ok(options)
}

/// CPU and memory limits as `docker run` options.
fn resource_options(limits: &Value) -> anyhow::Result<Vec<String>> {
    let mut options = Vec::new();
    if let Some(cpu) = limits["cpu"].as_str() {
        let cores = match cpu.strip_suffix('m') {
            Some(milli) => milli.parse::<f64>()? / 1000.0,
            None => cpu.parse::<f64>()?,
        };
        options.extend(["--cpus".into(), format!("{cores}")]);
    }
    if let Some(memory) = limits["memory"].as_str() {
        let bytes = if let Some(mi) = memory.strip_suffix("Mi") {
            mi.parse::<u64>()? << 20
        } else if let Some(gi) = memory.strip_suffix("Gi") {
            gi.parse::<u64>()? << 30
        } else {
            bail!("memory limit {memory}: write it in Mi or Gi");
        };
        options.extend(["--memory".into(), bytes.to_string()]);
    }
    Ok(options)
}

fn secret<'a>(secrets: &'a Secrets, name: &str) -> anyhow::Result<&'a BTreeMap<String, Vec<u8>>> {
    secrets.get(name).with_context(|| {
        format!("Secret {name} is mounted but neither make-secrets.sh, a Certificate nor the directory provides it")
    })
}

fn strings(value: &Value) -> anyhow::Result<Vec<String>> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .map(str_value)
        .collect()
}

fn str_value(value: &Value) -> anyhow::Result<String> {
    value
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("{value} is not a string"))
}

fn str_field<'a>(object: &'a serde_json::Map<String, Value>, key: &str) -> anyhow::Result<&'a str> {
    object
        .get(key)
        .and_then(Value::as_str)
        .with_context(|| format!("no {key} in {object:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_become_docker_options() {
        let limits = serde_json::json!({"cpu": "500m", "memory": "128Mi"});
        assert_eq!(
            resource_options(&limits).expect("limits"),
            ["--cpus", "0.5", "--memory", "134217728"]
        );
        let limits = serde_json::json!({"cpu": "2", "memory": "1Gi"});
        assert_eq!(
            resource_options(&limits).expect("limits"),
            ["--cpus", "2", "--memory", "1073741824"]
        );
        assert!(resource_options(&serde_json::json!({"memory": "128M"})).is_err());
    }

    #[test]
    fn a_root_or_missing_user_under_run_as_non_root_is_refused() {
        let workload = |pod: Value| Workload {
            kind: "Deployment".into(),
            name: "w".into(),
            labels: BTreeMap::new(),
            pod,
            claims: Vec::new(),
        };
        let root = workload(serde_json::json!({
            "securityContext": {"runAsNonRoot": true, "runAsUser": 0},
            "containers": [{"name": "c"}]
        }));
        assert!(security_options(&root).is_err());
        let hardened = workload(serde_json::json!({
            "securityContext": {"runAsNonRoot": true, "runAsUser": 10001, "fsGroup": 10001},
            "containers": [{"name": "c", "securityContext": {
                "readOnlyRootFilesystem": true,
                "allowPrivilegeEscalation": false,
                "capabilities": {"drop": ["ALL"]}
            }}]
        }));
        assert_eq!(
            security_options(&hardened).expect("options"),
            [
                "--user",
                "10001:10001",
                "--group-add",
                "10001",
                "--read-only",
                "--security-opt",
                "no-new-privileges",
                "--cap-drop",
                "ALL"
            ]
        );
    }
}
