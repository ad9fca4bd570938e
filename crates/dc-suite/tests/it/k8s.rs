//! The `dc-a` overlay, rendered and run in containers as its manifests say: every
//! readiness and liveness probe answers, and a person signs in through the Ingress
//! routes. A configuration that would not start in a cluster fails here.

use std::path::PathBuf;

use tessera_dc_suite::k8s::{ManifestRun, Rendered};
use tessera_testkit::Browser;

use crate::people::{sign_in_at, SIGNED_IN};

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dc_a_overlay_runs_as_rendered_and_signs_a_person_in() {
    let root = repository();
    let rendered = Rendered::overlay(&root.join("k8s/overlays/dc-a")).expect("dc-a renders");
    // `just images` tags Tessera's images with the workspace's version; the manifests
    // must name that one.
    for workload in rendered.workloads().expect("workloads") {
        let image = workload.container().expect("container")["image"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if let Some(tag) = image
            .strip_prefix("tessera/")
            .and_then(|i| i.split_once(':'))
            .map(|(_, t)| t)
        {
            if workload.name != "redis" {
                assert_eq!(
                    tag,
                    env!("CARGO_PKG_VERSION"),
                    "{} runs {image}",
                    workload.name
                );
            }
        }
    }
    let run = tokio::task::spawn_blocking(move || ManifestRun::start(&root, rendered))
        .await
        .expect("start task")
        .expect("every workload of dc-a starts");

    let passed = run.wait_ready().await.expect("every probe passes");
    for line in &passed {
        println!("{line}");
    }
    // Every workload's two probes: none was left out.
    assert_eq!(passed.len(), 2 * run.pods.len());
    let names: Vec<&str> = run.pods.iter().map(|p| p.workload.name.as_str()).collect();
    for expected in [
        "redis",
        "audit",
        "token-stash",
        "session-jwt",
        "login",
        "demo-site",
    ] {
        assert!(names.contains(&expected), "{expected} runs: {names:?}");
    }

    let routes = run.public_routes().expect("routes");
    let login = origin_of(&routes, "login.");
    let site = origin_of(&routes, "wiki-a.");
    let mut browser = Browser::routed(&routes).expect("browser");
    let page = sign_in_at(&mut browser, &login, &run.directory.password, &site).await;
    assert!(page.contains(SIGNED_IN), "signed in on the site: {page}");

    for (workload, used) in run.memory().expect("memory") {
        println!("memory after a sign-in: {workload}: {used}");
    }
}

fn origin_of(routes: &[(String, String)], host_prefix: &str) -> String {
    routes
        .iter()
        .map(|(origin, _)| origin)
        .find(|origin| origin.starts_with(&format!("https://{host_prefix}")))
        .unwrap_or_else(|| panic!("no Ingress for {host_prefix}*: {routes:?}"))
        .clone()
}
