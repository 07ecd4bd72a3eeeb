//! The election loop: one attempt (GET, then create or update) every retry period, its
//! result published to the [`Leadership`] handle and to `/metrics`, and the release at the
//! end.
//!
//! The loop stops only when [`Elector::release`] is called, after the live loop has finished
//! its last cycle: stopping on SIGTERM directly would hand the Lease over while this replica
//! might still be acting in that cycle.

use super::lease::{CallError, LeaseApi};
use super::machine::{self, Next};
use super::{LeaderConfig, LeaderError, Leadership};
use crate::kubernetes::KubernetesConfig;
use k8s_openapi::api::coordination::v1::Lease;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::oneshot;

/// Told every published state (leader or not, the Lease's transitions): the run loop points it
/// at `/metrics`. A callback, not the exporter itself, so that election sits below every stage
/// that asks it and imports none of them.
pub type OnChange = Arc<dyn Fn(bool, i64) + Send + Sync>;

/// A running election: its [`Leadership`] handle, and the way to end it.
pub struct Elector {
    leadership: Leadership,
    release: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Elector {
    /// Whether this replica may act, asked right before each action.
    pub fn leadership(&self) -> Leadership {
        self.leadership.clone()
    }

    /// Stops renewing and, if this replica holds the Lease, hands it back (empty holder) so
    /// another replica takes over at its next retry. Bounded by one request timeout.
    pub async fn release(mut self) {
        if let Some(tx) = self.release.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Elector {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Builds the client from `[kubernetes]`, makes a first attempt (so a lone replica leads from
/// its first cycle) and starts the loop. An unreachable API server is not an error here: the
/// loop keeps trying and this replica follows meanwhile.
pub async fn start(
    cfg: &LeaderConfig,
    kube: &KubernetesConfig,
    on_change: OnChange,
) -> Result<Elector, LeaderError> {
    let mut client_cfg = kube.client_config().await?;
    // The election times its own retries; the client's hidden ones would blur the deadline.
    client_cfg.default_retry = false;
    let namespace = cfg
        .namespace
        .clone()
        .unwrap_or_else(|| client_cfg.default_namespace.clone());
    let client = kube::Client::try_from(client_cfg)
        .map_err(|e| LeaderError::Client(crate::kubernetes::error_text(&e)))?;
    let api: kube::Api<Lease> = kube::Api::namespaced(client, &namespace);
    tracing::info!(
        "leader election: Lease {namespace}/{} as '{}' (lease {:?}, renew deadline {:?}, retry {:?})",
        cfg.name,
        cfg.identity,
        cfg.lease_duration,
        cfg.renew_deadline,
        cfg.retry_period
    );
    let mut run = Loop {
        machine: machine::Elector::new(
            cfg.identity.clone(),
            cfg.lease_duration,
            cfg.renew_deadline,
        ),
        api: LeaseApi::new(api, cfg.name.clone(), cfg.request_timeout()),
        leadership: Leadership::new(),
        on_change,
        retry: cfg.retry_period,
        lease: format!("{namespace}/{}", cfg.name),
        last_error: None,
        said_leading: Arc::default(),
    };
    run.publish(Instant::now());
    run.attempt().await;
    let leadership = run.leadership.clone();
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(run.run(rx));
    Ok(Elector {
        leadership,
        release: Some(tx),
        task: Some(task),
    })
}

/// The loop's state.
struct Loop {
    machine: machine::Elector,
    api: LeaseApi,
    leadership: Leadership,
    on_change: OnChange,
    retry: Duration,
    /// `namespace/name`, for the log.
    lease: String,
    /// The last failure logged, so a long outage logs once, not every retry.
    last_error: Option<String>,
    /// Whether this replica last said it leads (log and `/metrics`), so that the step-down is
    /// said exactly once, by whichever notices it first: the watchdog at the deadline, or an
    /// attempt.
    said_leading: Arc<AtomicBool>,
}

impl Loop {
    /// Attempts every retry period until asked to release; then releases.
    async fn run(mut self, mut release: oneshot::Receiver<()>) {
        loop {
            let now = Instant::now();
            let pause = if self.machine.is_leader(now) {
                self.retry
            } else {
                // Followers spread their tries (by up to a tenth), so replicas started
                // together do not all ask at once; and one whose leader stopped renewing asks
                // again right after the Lease expires (client-go waits up to a retry more).
                let jittered = self.retry.mul_f64(1.0 + 0.1 * rand::random::<f64>());
                match self.machine.expires_in(now) {
                    Some(e) => jittered.min(e + Duration::from_millis(10)),
                    None => jittered,
                }
            };
            // Watched in the pause as in the attempt: renewals that failed can let leadership
            // lapse between two attempts, and `/metrics` must say so then, not a retry later.
            let watchdog = self.watchdog();
            tokio::select! {
                _ = &mut release => break,
                _ = tokio::time::sleep(pause) => {}
                _ = watchdog => {}
            }
            tokio::select! {
                _ = &mut release => break,
                _ = self.attempt_watched() => {}
            }
        }
        self.release().await;
    }

    /// One attempt; if it is still running when leadership lapses, the step-down is logged
    /// and exported then, not when the request finally fails.
    async fn attempt_watched(&mut self) {
        let watchdog = self.watchdog();
        tokio::select! {
            _ = self.attempt() => {}
            _ = watchdog => {}
        }
    }

    /// Logs and exports the step-down when leadership lapses unrenewed (at once if it
    /// already has and nobody said so), then never resolves.
    fn watchdog(&self) -> impl std::future::Future<Output = ()> + 'static {
        let deadline = self.machine.leading_until();
        let leadership = self.leadership.clone();
        let on_change = self.on_change.clone();
        let lease = self.lease.clone();
        let said = self.said_leading.clone();
        async move {
            if let Some(t) = deadline {
                tokio::time::sleep_until(t.into()).await;
                if said.swap(false, Ordering::SeqCst) {
                    tracing::warn!(
                        "leader election: could not renew Lease {lease} within the renew \
                         deadline: stopped acting"
                    );
                    on_change(false, i64::from(leadership.transitions()));
                }
            }
            std::future::pending::<()>().await
        }
    }

    /// GET, decide, write; publishes the result.
    async fn attempt(&mut self) {
        let started = Instant::now();
        let was = self.machine.is_leader(started);
        let result = self.try_acquire_or_renew(started).await;
        let now = Instant::now();
        match result {
            Ok(()) => self.last_error = None,
            Err(e) => {
                self.machine.follow(now);
                let text = e.to_string();
                if self.last_error.as_deref() != Some(text.as_str()) {
                    tracing::warn!("leader election: Lease {}: {text}", self.lease);
                }
                self.last_error = Some(text);
            }
        }
        let is = self.machine.is_leader(now);
        if is && !was {
            tracing::info!(
                "leader election: '{}' acquired Lease {} (transitions {}): acting",
                self.machine.identity(),
                self.lease,
                self.machine.transitions()
            );
        }
        self.publish(now);
    }

    async fn try_acquire_or_renew(&mut self, started: Instant) -> Result<(), CallError> {
        let got = self.api.get().await?;
        let now = Instant::now();
        self.machine.observe(got, now);
        // Publish at once: an observation can end leadership (another holder).
        self.publish(now);
        let written = match self.machine.next(now, SystemTime::now()) {
            Next::Follow { holder, expires_in } => {
                tracing::debug!("leader election: '{holder}' leads; expires in {expires_in:?}");
                return Ok(());
            }
            Next::Create(record) => self.api.create(&record).await?,
            Next::Update {
                record,
                resource_version,
            } => self.api.update(&record, &resource_version).await?,
        };
        let (record, version) = written;
        self.machine
            .succeeded(record, version, started, Instant::now());
        Ok(())
    }

    /// Copies the machine's state to the handle and the gauges, and says a step-down that
    /// the watchdog has not said yet.
    fn publish(&self, now: Instant) {
        let until = self.machine.leading_until().filter(|t| now < *t);
        self.leadership.set(until, self.machine.transitions());
        if until.is_some() {
            self.said_leading.store(true, Ordering::SeqCst);
        } else if self.said_leading.swap(false, Ordering::SeqCst) {
            match self.machine.holder() {
                Some(h) if h == self.machine.identity() => tracing::warn!(
                    "leader election: could not renew Lease {} within the renew deadline: \
                     stopped acting",
                    self.lease
                ),
                h => tracing::warn!(
                    "leader election: '{}' lost Lease {} (holder now {}): stopped acting",
                    self.machine.identity(),
                    self.lease,
                    h.unwrap_or("none")
                ),
            }
        }
        (self.on_change)(
            self.leadership.is_leader(),
            i64::from(self.machine.transitions()),
        );
    }

    /// Hands the Lease back if this replica holds it. Leadership ends first.
    async fn release(&mut self) {
        // Handing the Lease back is said as such below, not as a lost Lease.
        self.said_leading.store(false, Ordering::SeqCst);
        let Some((record, version)) = self.machine.release(SystemTime::now()) else {
            self.publish(Instant::now());
            return;
        };
        self.publish(Instant::now());
        match self.api.update(&record, &version).await {
            Ok(_) => tracing::info!(
                "leader election: released Lease {} for another replica to take over",
                self.lease
            ),
            Err(e) => tracing::warn!(
                "leader election: releasing Lease {}: {e}; another replica takes over when it \
                 expires",
                self.lease
            ),
        }
    }
}
