//! A start-up that waits for the source instead of giving up (issue #10, item 6).
//!
//! [`Collector::connect`] retries a failed start-up check a few times (about half a second)
//! and then fails: right for a one-off command typed by a person, wrong for a daemon, which
//! under Kubernetes would crash-loop for as long as Prometheus is away. The waiting start-up
//! keeps checking with the same capped exponential backoff and full jitter until every signal
//! has been checked or a stop is requested, and says on every failed try what it waits for.
//! Errors that retrying cannot fix (a query Prometheus rejects, a client that cannot be set
//! up, a replay without the signal) still fail at once: waiting would hide them.

use super::{check_signal, unix_now, Backoff, Collector, RetryPolicy};
use crate::collect::config::{PrometheusConfig, SignalConfig};
use crate::collect::source::{PrometheusSource, Source};
use crate::collect::CollectError;
use std::fmt;
use std::time::Duration;
use tokio::sync::watch;

/// How [`Collector::connect_waiting`] spaces its tries: as the polls' default
/// ([`RetryPolicy::default`]), but capped at 10 s, so that prescale is ready within about
/// 10 s of Prometheus' return; a try is one instant query per signal, cheap for any server.
/// `max_attempts` does not apply: the wait ends when the source answers or a stop comes.
pub const STARTUP_BACKOFF: RetryPolicy = RetryPolicy {
    max_attempts: u32::MAX,
    base: Duration::from_millis(250),
    cap: Duration::from_secs(10),
};

/// One failed try of a waiting start-up: what it waits for and why, handed to the caller (the
/// live loop shows it on `/readyz`) and logged. No field ever holds a secret: the target is
/// [`Source::describe`] and the error the client's redacted text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    /// What is waited for, e.g. `Prometheus at http://127.0.0.1:9090`.
    pub target: String,
    /// The signal whose start-up check failed.
    pub signal: String,
    /// Tries so far, this one included (counted over the whole start-up).
    pub attempt: u32,
    /// Why the try failed, e.g. `cannot connect to …: Connection refused`.
    pub error: String,
    /// How long until the next try.
    pub retry_in: Duration,
}

impl fmt::Display for Waiting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "waiting for {} (attempt {}): signal '{}': {}; next try in {:.1} s",
            self.target,
            self.attempt,
            self.signal,
            self.error,
            self.retry_in.as_secs_f64()
        )
    }
}

impl Collector<PrometheusSource> {
    /// [`Collector::connect`] that waits for Prometheus: a check that fails with an error
    /// retrying can fix (refused connection, timeout, 5xx, ...) is tried again after a backoff
    /// per [`STARTUP_BACKOFF`], for as long as it takes, and each failed try is logged and
    /// handed to `on_wait`. Returns `Ok(None)` when `stop` turns true (or its sender is
    /// dropped) before every signal was checked; a query Prometheus rejects still fails at
    /// once. Polls afterwards retry per [`RetryPolicy::default`].
    pub async fn connect_waiting(
        prometheus: &PrometheusConfig,
        signals: &[SignalConfig],
        stop: watch::Receiver<bool>,
        on_wait: impl FnMut(&Waiting),
    ) -> Result<Option<Self>, CollectError> {
        let source = PrometheusSource::new(prometheus).map_err(CollectError::Client)?;
        start_waiting(
            source,
            signals.to_vec(),
            RetryPolicy::default(),
            STARTUP_BACKOFF,
            unix_now,
            stop,
            on_wait,
        )
        .await
    }
}

impl<S: Source> Collector<S> {
    /// [`Collector::with_source`] that waits: retryable check failures are tried again with
    /// `retry`'s backoff (base and cap) beyond `retry.max_attempts`, until the source answers
    /// or `stop` turns true (`Ok(None)`); see [`Collector::connect_waiting`]. Each try checks
    /// at `now()`, so a long wait does not check an old instant.
    pub async fn with_source_waiting(
        source: S,
        signals: Vec<SignalConfig>,
        retry: RetryPolicy,
        now: impl Fn() -> i64,
        stop: watch::Receiver<bool>,
        on_wait: impl FnMut(&Waiting),
    ) -> Result<Option<Self>, CollectError> {
        start_waiting(source, signals, retry, retry, now, stop, on_wait).await
    }
}

/// Checks every signal, waiting out retryable failures with `wait`'s backoff; the collector
/// built then retries its polls per `retry`.
async fn start_waiting<S: Source>(
    source: S,
    signals: Vec<SignalConfig>,
    retry: RetryPolicy,
    wait: RetryPolicy,
    now: impl Fn() -> i64,
    mut stop: watch::Receiver<bool>,
    mut on_wait: impl FnMut(&Waiting),
) -> Result<Option<Collector<S>>, CollectError> {
    if signals.is_empty() {
        return Err(CollectError::NoSignals);
    }
    let mut rng = rand::SeedableRng::from_entropy();
    let mut backoff = Backoff::new(wait);
    let mut attempt = 0u32;
    let mut hints = Vec::with_capacity(signals.len());
    for sig in &signals {
        loop {
            if *stop.borrow() {
                return Ok(None);
            }
            attempt = attempt.saturating_add(1);
            // A try can take up to the client's timeout: a stop must not wait for it.
            let checked = tokio::select! {
                r = check_signal(&source, sig, now()) => r,
                _ = stopped(&mut stop) => return Ok(None),
            };
            match checked {
                Ok(hint) => {
                    hints.push(hint);
                    backoff.reset();
                    break;
                }
                Err(e) if e.is_retryable() => {
                    let w = Waiting {
                        target: source.describe(),
                        signal: sig.name.clone(),
                        attempt,
                        error: e.to_string(),
                        retry_in: backoff.next_delay(&mut rng),
                    };
                    tracing::warn!("{w}");
                    on_wait(&w);
                    tokio::select! {
                        _ = tokio::time::sleep(w.retry_in) => {}
                        _ = stopped(&mut stop) => return Ok(None),
                    }
                }
                Err(error) => {
                    return Err(CollectError::Check {
                        signal: sig.name.clone(),
                        error,
                    })
                }
            }
        }
    }
    Ok(Some(Collector::assemble(
        source, signals, &hints, retry, rng,
    )))
}

/// Completes when a stop is requested or nobody can request one any more.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is dropped here, never held across another await.
    let _ = stop.wait_for(|s| *s).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::config::PrometheusConfig;
    use crate::collect::source::Replay;
    use std::time::Instant;

    /// A loopback port nobody listens on: every connection is refused at once.
    fn refused_port() -> u16 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }

    fn source(port: u16) -> PrometheusSource {
        let cfg = PrometheusConfig {
            url: format!("http://127.0.0.1:{port}"),
            timeout: Duration::from_secs(2),
            auth: crate::collect::Auth::None,
            ca_file: None,
            headers: Vec::new(),
            max_answer_bytes: crate::collect::config::DEFAULT_MAX_ANSWER_BYTES,
        };
        PrometheusSource::new(&cfg).unwrap()
    }

    const FAST: RetryPolicy = RetryPolicy {
        max_attempts: 2,
        base: Duration::from_millis(5),
        cap: Duration::from_millis(20),
    };

    /// `with_source` gives up after `max_attempts`; the waiting start-up goes on trying, says
    /// what it waits for each time, and ends at once, without a collector, when stopped.
    #[tokio::test]
    async fn the_wait_outlives_max_attempts_and_heeds_stop() {
        let port = refused_port();
        let sig = SignalConfig::new("cpu", "up", 60, 3600);
        let gave_up = Collector::with_source(source(port), vec![sig.clone()], FAST, 0).await;
        assert!(gave_up.is_err(), "with_source must still give up");

        let (stop_tx, stop) = watch::channel(false);
        let mut seen: Vec<Waiting> = Vec::new();
        let mut stop_tx = Some(stop_tx);
        let started = Instant::now();
        let r = tokio::time::timeout(
            Duration::from_secs(20),
            Collector::with_source_waiting(
                source(port),
                vec![sig],
                FAST,
                || 1_800_000_000,
                stop,
                |w| {
                    seen.push(w.clone());
                    // Stop once it has outlived max_attempts three times over.
                    if w.attempt == 3 * FAST.max_attempts {
                        if let Some(tx) = stop_tx.take() {
                            tx.send(true).unwrap();
                            // Keep the sender alive: the stop must come from the flag.
                            std::mem::forget(tx);
                        }
                    }
                },
            ),
        )
        .await
        .expect("the wait did not heed the stop within 20 s");
        assert!(matches!(r, Ok(None)), "stopped: no collector, no error");
        assert_eq!(seen.len() as u32, 3 * FAST.max_attempts);
        for (i, w) in seen.iter().enumerate() {
            assert_eq!(w.attempt, i as u32 + 1);
            assert_eq!(w.signal, "cpu");
            assert_eq!(w.target, format!("Prometheus at http://127.0.0.1:{port}"));
            assert!(w.error.contains("cannot connect"), "{}", w.error);
            assert!(w.retry_in <= FAST.cap);
        }
        let text = seen[0].to_string();
        assert!(
            text.starts_with(&format!(
                "waiting for Prometheus at http://127.0.0.1:{port} (attempt 1): signal 'cpu': cannot connect"
            )),
            "{text}"
        );
        assert!(text.contains("; next try in "), "{text}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    /// A stop that comes while a try sleeps ends the wait within the sleep, not after it.
    #[tokio::test]
    async fn a_stop_during_the_backoff_ends_the_wait_at_once() {
        let port = refused_port();
        let slow = RetryPolicy {
            max_attempts: 1,
            base: Duration::from_secs(60),
            cap: Duration::from_secs(60),
        };
        let (stop_tx, stop) = watch::channel(false);
        let waiting = tokio::spawn(Collector::with_source_waiting(
            source(port),
            vec![SignalConfig::new("cpu", "up", 60, 3600)],
            slow,
            || 0,
            stop,
            |_| {},
        ));
        tokio::time::sleep(Duration::from_millis(300)).await;
        let sent = Instant::now();
        stop_tx.send(true).unwrap();
        let r = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("still waiting 5 s after the stop")
            .unwrap();
        assert!(matches!(r, Ok(None)));
        assert!(sent.elapsed() < Duration::from_secs(2));
    }

    /// Retrying cannot make a replay grow a signal: fails at the first try, naming it.
    #[tokio::test]
    async fn an_error_retrying_cannot_fix_fails_at_once() {
        let (_stop_tx, stop) = watch::channel(false);
        let mut tries = 0;
        let e = Collector::with_source_waiting(
            Replay::new(),
            vec![SignalConfig::new("mem", "unused", 60, 3600)],
            FAST,
            || 0,
            stop,
            |_| tries += 1,
        )
        .await
        .err()
        .expect("fails");
        assert_eq!(tries, 0, "no wait for an error retrying cannot fix");
        assert!(e.to_string().contains("signal 'mem'"), "{e}");
    }
}
