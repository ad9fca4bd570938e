//! A rendered Kubernetes overlay, read as the cluster would read it: its workloads with
//! their pod templates, the Services that select them, the ConfigMaps, Certificates and
//! Ingress rules they rely on. Anything this reading does not understand is an error,
//! not a guess, so a manifest the container run cannot reproduce fails loudly.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context as _};
use serde_json::Value;

/// Every object `kubectl kustomize` printed for one overlay.
#[derive(Debug, Clone)]
pub struct Rendered {
    objects: Vec<Value>,
}

/// A Deployment or StatefulSet: what one of its pods runs.
#[derive(Debug, Clone)]
pub struct Workload {
    /// `Deployment` or `StatefulSet`.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Its pod template's labels.
    pub labels: BTreeMap<String, String>,
    /// Its pod template's `spec`.
    pub pod: Value,
    /// The names of its volume claim templates (StatefulSets).
    pub claims: Vec<String>,
}

impl Workload {
    /// Its one container (Tessera's pods hold exactly one).
    pub fn container(&self) -> anyhow::Result<&Value> {
        match self.pod["containers"].as_array().map(Vec::as_slice) {
            Some([container]) => Ok(container),
            _ => bail!(
                "{} {}: expected exactly one container",
                self.kind,
                self.name
            ),
        }
    }

    /// The container port named or numbered `port`.
    pub fn container_port(&self, port: &Value) -> anyhow::Result<u16> {
        let container = self.container()?;
        if let Some(number) = port.as_u64() {
            return u16::try_from(number).context("port out of range");
        }
        let name = port.as_str().context("a port is a number or a name")?;
        container["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"] == name)
            .and_then(|p| p["containerPort"].as_u64())
            .and_then(|n| u16::try_from(n).ok())
            .with_context(|| format!("{}: no container port named {name}", self.name))
    }
}

/// A probe of a container: an HTTP GET of `path`, or a TCP connect when `path` is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// `readinessProbe` or `livenessProbe`.
    pub kind: &'static str,
    /// The container port it checks.
    pub port: u16,
    /// The HTTP path, for an `httpGet` probe.
    pub path: Option<String>,
}

/// A cert-manager Certificate: the Secret it fills and the one identity it names.
#[derive(Debug, Clone)]
pub struct CertificateSpec {
    /// The Secret cert-manager writes (`tls.crt`, `tls.key`, `ca.crt`).
    pub secret_name: String,
    /// Its URI SAN, `spiffe://tessera/<service>`.
    pub uri: String,
}

/// An Ingress rule: the public host and the Service and port it leads to.
#[derive(Debug, Clone)]
pub struct IngressRoute {
    /// The public host, e.g. `login.tessera.example`.
    pub host: String,
    /// The Service's name.
    pub service: String,
    /// The Service port, by name or number.
    pub port: Value,
}

impl Rendered {
    /// Renders `overlay` (a folder with a kustomization) with `kubectl kustomize`.
    pub fn overlay(overlay: &Path) -> anyhow::Result<Self> {
        let output = Command::new("kubectl")
            .arg("kustomize")
            .arg(overlay)
            .output()
            .context("cannot run kubectl: install it (its kustomize renders the overlays; no cluster is used)")?;
        if !output.status.success() {
            bail!(
                "kubectl kustomize {} failed: {}",
                overlay.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Self::from_yaml(&String::from_utf8_lossy(&output.stdout))
    }

    /// Reads a stream of YAML documents.
    pub fn from_yaml(text: &str) -> anyhow::Result<Self> {
        let mut objects = Vec::new();
        for document in serde_yaml::Deserializer::from_str(text) {
            let value: Value = serde::Deserialize::deserialize(document)
                .context("the rendered manifests are not YAML objects")?;
            if !value.is_null() {
                objects.push(value);
            }
        }
        Ok(Rendered { objects })
    }

    /// Every object of `kind`.
    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.objects.iter().filter(move |o| o["kind"] == kind)
    }

    /// The data of ConfigMap `name`.
    pub fn config_map(&self, name: &str) -> anyhow::Result<BTreeMap<String, String>> {
        let map = self
            .of_kind("ConfigMap")
            .find(|o| o["metadata"]["name"] == name)
            .with_context(|| format!("no ConfigMap {name} in the rendered manifests"))?;
        string_map(&map["data"])
    }

    /// Every Deployment and StatefulSet.
    pub fn workloads(&self) -> anyhow::Result<Vec<Workload>> {
        let mut workloads = Vec::new();
        for object in self
            .of_kind("StatefulSet")
            .chain(self.of_kind("Deployment"))
        {
            let template = &object["spec"]["template"];
            workloads.push(Workload {
                kind: object["kind"].as_str().unwrap_or_default().to_owned(),
                name: name_of(object)?,
                labels: string_map(&template["metadata"]["labels"])?,
                pod: template["spec"].clone(),
                claims: object["spec"]["volumeClaimTemplates"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c["metadata"]["name"].as_str().map(str::to_owned))
                    .collect(),
            });
        }
        Ok(workloads)
    }

    /// The names of the Services that select `workload`'s pods. Fails if one of them
    /// serves a port other than the container's (the run finds pods by Service name at
    /// their own ports).
    pub fn services_of(&self, workload: &Workload) -> anyhow::Result<Vec<String>> {
        let mut names = Vec::new();
        for service in self.of_kind("Service") {
            let selector = string_map(&service["spec"]["selector"])?;
            if selector.is_empty()
                || !selector
                    .iter()
                    .all(|(k, v)| workload.labels.get(k) == Some(v))
            {
                continue;
            }
            // Containers are found by the Service's name on one network, at the
            // container's own ports: a Service must not move a port.
            for port in service["spec"]["ports"].as_array().into_iter().flatten() {
                let target = workload.container_port(&port["targetPort"])?;
                if port["port"].as_u64() != Some(u64::from(target)) {
                    bail!(
                        "Service {} maps port {} to {target}; the manifests keep Service and container ports equal",
                        name_of(service)?,
                        port["port"]
                    );
                }
            }
            names.push(name_of(service)?);
        }
        Ok(names)
    }

    /// The Services of type ExternalName (what runs outside the cluster), with their
    /// first port.
    pub fn external_services(&self) -> anyhow::Result<Vec<(String, u16)>> {
        self.of_kind("Service")
            .filter(|s| s["spec"]["type"] == "ExternalName")
            .map(|s| {
                let port = s["spec"]["ports"][0]["port"]
                    .as_u64()
                    .and_then(|p| u16::try_from(p).ok())
                    .context("an ExternalName Service names its port")?;
                Ok((name_of(s)?, port))
            })
            .collect()
    }

    /// Every Certificate, checked to be what Tessera's services need: one SPIFFE URI,
    /// usable by a server and a client.
    pub fn certificates(&self) -> anyhow::Result<Vec<CertificateSpec>> {
        self.of_kind("Certificate")
            .map(|c| {
                let name = name_of(c)?;
                let spec = &c["spec"];
                let uris: Vec<&str> = spec["uris"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                let [uri] = uris.as_slice() else {
                    bail!("Certificate {name} must name exactly one URI SAN, not {uris:?}");
                };
                if !uri.starts_with("spiffe://tessera/") {
                    bail!("Certificate {name}: {uri} is not a spiffe://tessera/ identity");
                }
                let usages: Vec<&str> = spec["usages"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                for needed in ["server auth", "client auth"] {
                    if !usages.contains(&needed) {
                        bail!("Certificate {name} lacks the usage {needed:?}");
                    }
                }
                Ok(CertificateSpec {
                    secret_name: spec["secretName"]
                        .as_str()
                        .with_context(|| format!("Certificate {name} names no secretName"))?
                        .to_owned(),
                    uri: (*uri).to_owned(),
                })
            })
            .collect()
    }

    /// Every Ingress rule.
    pub fn ingress_routes(&self) -> anyhow::Result<Vec<IngressRoute>> {
        let mut routes = Vec::new();
        for ingress in self.of_kind("Ingress") {
            for rule in ingress["spec"]["rules"].as_array().into_iter().flatten() {
                let host = rule["host"]
                    .as_str()
                    .context("an Ingress rule names its host")?;
                for path in rule["http"]["paths"].as_array().into_iter().flatten() {
                    let service = &path["backend"]["service"];
                    let port = &service["port"];
                    routes.push(IngressRoute {
                        host: host.to_owned(),
                        service: service["name"]
                            .as_str()
                            .context("an Ingress path names its Service")?
                            .to_owned(),
                        port: if port["name"].is_string() {
                            port["name"].clone()
                        } else {
                            port["number"].clone()
                        },
                    });
                }
            }
        }
        Ok(routes)
    }

    /// The port `service` serves as `port` (a name or a number).
    pub fn service_port(&self, service: &str, port: &Value) -> anyhow::Result<u16> {
        let object = self
            .of_kind("Service")
            .find(|s| s["metadata"]["name"] == service)
            .with_context(|| format!("no Service {service}"))?;
        object["spec"]["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"] == *port || p["port"] == *port)
            .and_then(|p| p["port"].as_u64())
            .and_then(|p| u16::try_from(p).ok())
            .with_context(|| format!("Service {service} has no port {port}"))
    }
}

/// The readiness and liveness probes of `workload`'s container.
pub fn probes(workload: &Workload) -> anyhow::Result<Vec<Probe>> {
    let container = workload.container()?;
    let mut probes = Vec::new();
    for kind in ["readinessProbe", "livenessProbe"] {
        let probe = &container[kind];
        if probe.is_null() {
            bail!("{}: the container has no {kind}", workload.name);
        }
        let (port, path) = if probe["httpGet"].is_object() {
            let get = &probe["httpGet"];
            let path = get["path"]
                .as_str()
                .context("an httpGet probe names its path")?;
            (&get["port"], Some(path.to_owned()))
        } else if probe["tcpSocket"].is_object() {
            (&probe["tcpSocket"]["port"], None)
        } else {
            bail!("{}: {kind} is neither httpGet nor tcpSocket", workload.name);
        };
        probes.push(Probe {
            kind,
            port: workload.container_port(port)?,
            path,
        });
    }
    Ok(probes)
}

fn name_of(object: &Value) -> anyhow::Result<String> {
    object["metadata"]["name"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("a {} without a name", object["kind"]))
}

/// A map of strings (labels, selectors, ConfigMap data); absent is empty.
pub fn string_map(value: &Value) -> anyhow::Result<BTreeMap<String, String>> {
    let Some(object) = value.as_object() else {
        return Ok(BTreeMap::new());
    };
    object
        .iter()
        .map(|(k, v)| {
            let text = v.as_str().with_context(|| format!("{k} is not a string"))?;
            Ok((k.clone(), text.to_owned()))
        })
        .collect()
}
