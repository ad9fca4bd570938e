use std::net::SocketAddr;

use tokio::net::TcpListener;

use crate::ServeError;

/// The two sockets a service serves on, bound by the caller so tests can use port 0 and
/// peers can learn each other's addresses before either starts.
#[derive(Debug)]
pub struct Listeners {
    /// The service's own surface: gRPC over mutual TLS, or public HTTP.
    pub main: TcpListener,
    /// The admin port: health, readiness, metrics.
    pub admin: TcpListener,
}

impl Listeners {
    /// Binds `main` and `admin`; an address in use is refused naming the setting
    /// (`listen`, `admin_listen`) to change.
    pub async fn bind(main: SocketAddr, admin: SocketAddr) -> Result<Self, ServeError> {
        Ok(Listeners {
            main: bind(main, "listen").await?,
            admin: bind(admin, "admin_listen").await?,
        })
    }

    /// Both on loopback port 0.
    pub async fn loopback() -> Result<Self, ServeError> {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        Self::bind(any, any).await
    }

    /// The bound addresses: main, then admin.
    pub fn addrs(&self) -> Result<(SocketAddr, SocketAddr), ServeError> {
        let addr = |listener: &TcpListener| {
            listener
                .local_addr()
                .map_err(|e| ServeError::Bind(format!("cannot read the bound address: {e}")))
        };
        Ok((addr(&self.main)?, addr(&self.admin)?))
    }
}

async fn bind(addr: SocketAddr, key: &str) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr).await.map_err(|e| {
        ServeError::Bind(format!(
            "{key}: cannot listen on {addr}: {e}; choose a free address"
        ))
    })
}
