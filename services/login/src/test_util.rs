//! The whole sign-in stack in a test: stash, session service, login and demo sites in
//! this process. Behind the `test-util` feature.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::config::LoginConfig;
use crate::directory::NewSite;
use crate::server::{self, Listeners};
use crate::state::Shared;
use tessera_clock::{SharedClock, SystemClock};
use tessera_demo_site::DemoConfig;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use tessera_session_jwt::test_util::SessionHarness;
use tessera_testkit::TestPki;
use tessera_token_stash::test_util::StashHarness;

/// The whole sign-in stack in this process: a stash, the session service and the login
/// service (development mode on `http://localhost:<port>`), with its directory in a
/// temporary SQLite file or a given PostgreSQL database. Stopped on drop.
#[derive(Debug)]
pub struct LoginStack {
    /// The PKI every service uses.
    pub pki: Arc<TestPki>,
    /// The stash.
    pub stash: StashHarness,
    /// The session service.
    pub sessions: SessionHarness,
    /// The login service's state (directory, metrics).
    pub login: Shared,
    /// Where the login service listens.
    pub login_addr: SocketAddr,
    /// Its admin port.
    pub admin_addr: SocketAddr,
    /// `http://localhost:<port>`.
    pub base_url: String,
    config: LoginConfig,
    stops: Vec<oneshot::Sender<()>>,
    tasks: Vec<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

/// A demo site running in the stack.
#[derive(Debug, Clone)]
pub struct DemoSiteHandle {
    /// Its client id.
    pub client_id: String,
    /// `http://localhost:<port>`.
    pub url: String,
}

impl LoginStack {
    /// The stack with an SQLite directory and `adjust`ed login configuration.
    pub async fn start(adjust: impl FnOnce(&mut LoginConfig)) -> anyhow::Result<Self> {
        Self::start_with(None, None, adjust).await
    }

    /// The stack with the directory at `database_url` (SQLite in a temporary folder
    /// when `None`) and `clock` (the system clock when `None`).
    pub async fn start_with(
        database_url: Option<String>,
        clock: Option<SharedClock>,
        adjust: impl FnOnce(&mut LoginConfig),
    ) -> anyhow::Result<Self> {
        Self::start_with_pki(Arc::new(TestPki::new()?), database_url, clock, adjust).await
    }

    /// The stack on a given PKI (to share it with other services of a test, e.g. audit).
    pub async fn start_with_pki(
        pki: Arc<TestPki>,
        database_url: Option<String>,
        clock: Option<SharedClock>,
        adjust: impl FnOnce(&mut LoginConfig),
    ) -> anyhow::Result<Self> {
        let clock = clock.unwrap_or_else(SystemClock::shared);
        let (stash, sessions) = start_backends(pki.clone(), clock.clone()).await?;
        Self::start_on_backends(pki, stash, sessions, database_url, clock, adjust).await
    }

    /// The stack with the stash and the session service running on the runtime
    /// `backends` while the login service runs on the caller's, so a benchmark can read
    /// the login service's CPU apart from theirs (as they would run in pods of their own).
    pub async fn start_with_backends_on(
        backends: &tokio::runtime::Handle,
        adjust: impl FnOnce(&mut LoginConfig),
    ) -> anyhow::Result<Self> {
        let pki = Arc::new(TestPki::new()?);
        let clock = SystemClock::shared();
        let (stash, sessions) = backends
            .spawn(start_backends(pki.clone(), clock.clone()))
            .await??;
        Self::start_on_backends(pki, stash, sessions, None, clock, adjust).await
    }

    async fn start_on_backends(
        pki: Arc<TestPki>,
        stash: StashHarness,
        sessions: SessionHarness,
        database_url: Option<String>,
        clock: SharedClock,
        adjust: impl FnOnce(&mut LoginConfig),
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let http = TcpListener::bind("127.0.0.1:0").await?;
        let login_addr = http.local_addr()?;
        let base_url = format!("http://localhost:{}", login_addr.port());
        let mut config = LoginConfig {
            public_url: base_url.clone(),
            dev_insecure_http: true,
            database_url: database_url.unwrap_or_else(|| {
                format!("sqlite://{}", dir.path().join("directory.db").display())
            }),
            secrets_dir: dir.path().join("secrets"),
            ..LoginConfig::default()
        };
        config.tls.dev_pki_dir = Some(pki.dir().to_owned());
        config.stash.url = format!("https://{}", stash.grpc_addr);
        config.session_jwt.url = format!("https://{}", sessions.grpc_addr);
        adjust(&mut config);
        let running = run_login(config.clone(), clock, http).await?;
        Ok(LoginStack {
            pki,
            stash,
            sessions,
            login: running.state,
            login_addr,
            admin_addr: running.admin_addr,
            base_url,
            config,
            stops: vec![running.stop],
            tasks: vec![running.task],
            _dir: dir,
        })
    }

    /// Starts a second login service in datacenter `datacenter`, as another datacenter
    /// would run it: its own stash (`stash`, peered by the caller), the same directory,
    /// secrets and session service. Its base URL; it stops with the stack.
    pub async fn start_login_in(
        &mut self,
        datacenter: &str,
        stash: &StashHarness,
    ) -> anyhow::Result<String> {
        let http = TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://localhost:{}", http.local_addr()?.port());
        let mut config = self.config.clone();
        config.public_url = base_url.clone();
        config.stash.url = format!("https://{}", stash.grpc_addr);
        config.stash.datacenter = datacenter.to_owned();
        let running = run_login(config, self.login.clock.clone(), http).await?;
        self.stops.push(running.stop);
        self.tasks.push(running.task);
        Ok(base_url)
    }

    /// `base_url` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Adds a user; their id.
    pub async fn add_user(&self, name: &str, password: &str) -> anyhow::Result<String> {
        let id = crate::admin_cli::add_user(
            &self.login.directory,
            name,
            password.to_owned(),
            false,
            self.login.clock.now(),
        )
        .await?
        .ok_or_else(|| anyhow::anyhow!("user exists"))?;
        Ok(id)
    }

    /// Registers a site; its secret.
    pub async fn add_site(
        &self,
        client_id: &str,
        redirect_uri: &str,
        post_logout_uri: Option<&str>,
        backchannel_logout_uri: Option<&str>,
    ) -> anyhow::Result<String> {
        let site = NewSite {
            client_id: crate::admin_cli::client_id(client_id)?,
            display_name: None,
            redirect_uris: vec![redirect_uri.to_owned()],
            post_logout_uris: post_logout_uri.into_iter().map(str::to_owned).collect(),
            backchannel_logout_uri: backchannel_logout_uri.map(str::to_owned),
            id_token_alg: Default::default(),
        };
        Ok(self
            .login
            .directory
            .add_site(&site, self.login.clock.now())
            .await?)
    }

    /// Registers `client_id` and starts a demo site for it on its own port.
    pub async fn start_demo_site(&mut self, client_id: &str) -> anyhow::Result<DemoSiteHandle> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://localhost:{}", listener.local_addr()?.port());
        let secret = self
            .add_site(
                client_id,
                &format!("{url}/callback"),
                Some(&format!("{url}/")),
                Some(&format!("{url}/backchannel-logout")),
            )
            .await?;
        let config = DemoConfig {
            client_id: client_id.to_owned(),
            client_secret: secret,
            public_url: url.clone(),
            login_url: self.base_url.clone(),
            login_api_url: self.base_url.clone(),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let started =
            tessera_demo_site::start(config, listener, self.login.clock.clone(), async move {
                let _ = stopped.await;
            })?;
        self.stops.push(stop);
        self.tasks.push(tokio::spawn(async move {
            if let Err(err) = started.serve().await {
                panic!("demo site failed: {err}");
            }
        }));
        Ok(DemoSiteHandle {
            client_id: client_id.to_owned(),
            url,
        })
    }
}

/// A login service serving on its own task.
struct RunningLogin {
    state: Shared,
    admin_addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

async fn run_login(
    config: LoginConfig,
    clock: SharedClock,
    http: TcpListener,
) -> anyhow::Result<RunningLogin> {
    let listeners = Listeners {
        main: http,
        admin: TcpListener::bind("127.0.0.1:0").await?,
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let started = server::start(config, clock, listeners, async move {
        let _ = stopped.await;
    })
    .await?;
    let (admin_addr, state) = (started.admin_addr, started.handle.clone());
    let task = tokio::spawn(async move {
        if let Err(err) = started.serve().await {
            panic!("login service failed: {err}");
        }
    });
    Ok(RunningLogin {
        state,
        admin_addr,
        stop,
        task,
    })
}

impl Drop for LoginStack {
    fn drop(&mut self) {
        for stop in self.stops.drain(..) {
            let _ = stop.send(());
        }
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// A stash (embedded) and a session service using it, on the current runtime.
async fn start_backends(
    pki: Arc<TestPki>,
    clock: SharedClock,
) -> anyhow::Result<(StashHarness, SessionHarness)> {
    let stash = StashHarness::builder(pki.clone())
        .clock(clock.clone())
        .start()
        .await?;
    let sessions = SessionHarness::start(pki, stash.grpc_addr, Some(clock), |_| {}).await?;
    Ok((stash, sessions))
}
