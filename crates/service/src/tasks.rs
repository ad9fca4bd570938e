use std::future::Future;

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A service's background tasks (purges, reloads, followers). Each gets a [`StopSignal`]
/// and is expected to return soon after it fires; [`Tasks::stop`] fires it and waits for
/// them all. Dropping the set without stopping aborts whatever still runs, so a task can
/// never outlive the service that owns it (mini-redis's shutdown, in small).
#[derive(Debug)]
pub struct Tasks {
    stop: watch::Sender<bool>,
    running: Vec<(&'static str, JoinHandle<()>)>,
}

impl Default for Tasks {
    fn default() -> Self {
        Tasks {
            stop: watch::channel(false).0,
            running: Vec::new(),
        }
    }
}

impl Tasks {
    /// The signal a task watches to know the service is stopping.
    pub fn signal(&self) -> StopSignal {
        StopSignal(self.stop.subscribe())
    }

    /// Starts `task`, made from this set's stop signal, on the current runtime.
    pub fn spawn<F>(&mut self, name: &'static str, task: impl FnOnce(StopSignal) -> F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let running = tokio::spawn(task(self.signal()));
        self.running.push((name, running));
    }

    /// Tells every task to stop and waits for each to return.
    pub async fn stop(mut self) {
        self.stop.send_replace(true);
        for (name, task) in self.running.drain(..) {
            if let Err(err) = task.await {
                if err.is_panic() {
                    tracing::error!(task = name, "background task panicked");
                }
            }
        }
    }
}

impl Drop for Tasks {
    fn drop(&mut self) {
        self.stop.send_replace(true);
        for (_, task) in &self.running {
            task.abort();
        }
    }
}

/// Fires once when the service stops.
#[derive(Debug, Clone)]
pub struct StopSignal(watch::Receiver<bool>);

impl StopSignal {
    /// Resolves when the service is stopping (at once if it already is).
    pub async fn stopped(&mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}
