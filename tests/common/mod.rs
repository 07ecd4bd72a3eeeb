//! Shared integration-test harness: a real Prometheus on a free loopback port with a temporary
//! storage dir (optionally pre-loaded with history through `promtool`), a tiny `/metrics`
//! exporter, and a scriptable fake HTTP server for faults a real server cannot make on demand.
//!
//! Every process and thread started here is stopped by a guard's `Drop`, so a failing
//! (panicking) test leaves nothing running. Nothing listens or connects beyond 127.0.0.1.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

mod port;
pub use port::free_port;

pub const PROMETHEUS: &str = "/usr/bin/prometheus";
pub const PROMTOOL: &str = "/usr/bin/promtool";

/// Panics with the fix when Prometheus is not installed: these tests must not pass silently.
pub fn require_prometheus() {
    for bin in [PROMETHEUS, PROMTOOL] {
        assert!(
            Path::new(bin).exists(),
            "{bin} not found: the collector's integration tests need Debian's prometheus package; \
             run scripts/install-test-deps.sh"
        );
    }
}

/// Wall-clock Unix seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// Writes `text` as `dir/prescale.toml` and loads it, as `prescale` would read it: the tests
/// exercise the collector through the configuration a user writes, not hand-built structs.
pub fn load_config(dir: &Path, text: &str) -> prescale::config::Config {
    let path = dir.join("prescale.toml");
    std::fs::write(&path, text).expect("write config");
    prescale::config::Config::load(&path).expect("valid config")
}

/// The collector for a loaded configuration, as `prescale collect` starts it.
pub async fn connect(
    cfg: &prescale::config::Config,
) -> Result<prescale::collect::Collector, prescale::collect::CollectError> {
    let prometheus = cfg.prometheus.as_ref().expect("a [prometheus] section");
    prescale::collect::Collector::connect(prometheus, &cfg.signals).await
}

/// Kills and reaps its child on drop.
pub struct ChildGuard(pub Option<Child>);

impl ChildGuard {
    pub fn kill(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What a test Prometheus starts with.
#[derive(Default, Clone)]
pub struct PromOptions {
    /// OpenMetrics text to load as history with promtool before the first start.
    pub history: Option<String>,
    /// `host:port` targets to scrape every `scrape_interval` (job `test`).
    pub scrape_targets: Vec<String>,
    /// More scrape jobs: `(job name, targets)`, e.g. a second deployment of the same exporter.
    pub jobs: Vec<(String, Vec<String>)>,
    /// e.g. `1s`.
    pub scrape_interval: Option<String>,
    /// Extra command-line flags.
    pub extra_args: Vec<String>,
    /// `--web.config.file` contents (TLS, basic auth); files it names are relative to the
    /// server's temporary dir, where [`PromOptions::files`] are written.
    pub web_config: Option<String>,
    /// Extra files `(name, contents)` written into the server's dir before start.
    pub files: Vec<(String, String)>,
}

/// A Prometheus server for one test.
pub struct Prometheus {
    pub port: u16,
    dir: tempfile::TempDir,
    opts: PromOptions,
    child: ChildGuard,
}

impl Prometheus {
    pub fn start(opts: PromOptions) -> Prometheus {
        require_prometheus();
        let dir = tempfile::tempdir().expect("tempdir");
        let interval = opts.scrape_interval.clone().unwrap_or_else(|| "1s".into());
        let mut cfg =
            format!("global:\n  scrape_interval: {interval}\n  evaluation_interval: {interval}\n");
        let jobs: Vec<(String, &Vec<String>)> =
            std::iter::once(("test".to_string(), &opts.scrape_targets))
                .chain(opts.jobs.iter().map(|(j, t)| (j.clone(), t)))
                .filter(|(_, t)| !t.is_empty())
                .collect();
        if !jobs.is_empty() {
            cfg.push_str("scrape_configs:\n");
        }
        for (job, targets) in jobs {
            let targets: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
            cfg.push_str(&format!(
                "  - job_name: {job}\n    static_configs:\n      - targets: [{}]\n",
                targets.join(", ")
            ));
        }
        std::fs::write(dir.path().join("prometheus.yml"), cfg).expect("write prometheus.yml");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).expect("mkdir data");
        for (name, text) in &opts.files {
            std::fs::write(dir.path().join(name), text).expect("write file");
        }
        if let Some(web) = &opts.web_config {
            std::fs::write(dir.path().join("web.yml"), web).expect("write web config");
        }
        if let Some(om) = &opts.history {
            let file = dir.path().join("history.om");
            std::fs::write(&file, om).expect("write history");
            let out = Command::new(PROMTOOL)
                .args(["tsdb", "create-blocks-from", "openmetrics"])
                .arg(&file)
                .arg(&data)
                .output()
                .expect("run promtool");
            assert!(
                out.status.success(),
                "promtool create-blocks-from failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let mut p = Prometheus {
            port: free_port(),
            dir,
            opts,
            child: ChildGuard(None),
        };
        p.spawn();
        p
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("prometheus.log"))
            .expect("open log");
        let child = Command::new(PROMETHEUS)
            .arg(format!(
                "--config.file={}",
                self.dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                self.dir.path().join("data").display()
            ))
            .arg("--storage.tsdb.retention.time=3650d")
            .arg(format!("--web.listen-address=127.0.0.1:{}", self.port))
            .args(&self.opts.extra_args)
            .args(self.opts.web_config.as_ref().map(|_| {
                format!(
                    "--web.config.file={}",
                    self.dir.path().join("web.yml").display()
                )
            }))
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        self.child = ChildGuard(Some(child));
        self.wait_ready(Duration::from_secs(30));
    }

    fn wait_ready(&mut self, limit: Duration) {
        let t0 = Instant::now();
        loop {
            match http_get_status(self.addr(), "/-/ready") {
                Some(200) => return,
                // Behind TLS or auth, a plain request gets 400/401: it is up.
                Some(_) if self.opts.web_config.is_some() => return,
                _ => {}
            }
            if let Some(Ok(Some(status))) = self.child.0.as_mut().map(|c| c.try_wait()) {
                panic!("prometheus exited with {status}:\n{}", self.log());
            }
            assert!(
                t0.elapsed() < limit,
                "prometheus not ready after {limit:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        self.child.kill();
    }

    /// Starts again on the same port with the same storage.
    pub fn restart(&mut self) {
        self.child.kill();
        self.spawn();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.child.kill();
        if std::thread::panicking() {
            // Warnings and errors first: a start-up's block compactions alone can fill the
            // last lines (a CI failure showed only those).
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            let bad: Vec<&str> = lines
                .iter()
                .copied()
                .filter(|l| l.contains("level=warn") || l.contains("level=error"))
                .collect();
            eprintln!("--- prometheus log: warnings and errors (last 20) ---");
            for l in &bad[bad.len().saturating_sub(20)..] {
                eprintln!("{l}");
            }
            eprintln!("--- prometheus log (last lines) ---");
            for l in &lines[lines.len().saturating_sub(15)..] {
                eprintln!("{l}");
            }
        }
    }
}

/// Waits until an instant query (URL-safe text, e.g. `test_gauge`) has a result: Prometheus
/// only starts scraping a new target after its discovery settles (~5 s).
pub fn wait_for_data(prom: &Prometheus, query: &str, limit: Duration) {
    let t0 = Instant::now();
    loop {
        if let Some(body) = http_get_body(prom.addr(), &format!("/api/v1/query?query={query}")) {
            if body.contains("\"result\":[{") {
                return;
            }
        }
        assert!(
            t0.elapsed() < limit,
            "no data for {query} after {limit:?}:\n{}",
            prom.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A bare `GET` over HTTP/1.1; returns the body.
pub fn http_get_body(addr: SocketAddr, path: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    Some(text.split_once("\r\n\r\n")?.1.to_string())
}

/// A bare `GET` over HTTP/1.1; returns the status code.
pub fn http_get_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).ok()?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A bundled `timestamp,value` trace: values in file order.
pub fn trace_values(name: &str) -> Vec<f64> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("read trace");
    text.lines()
        .skip(1)
        .map(|l| {
            l.rsplit(',')
                .next()
                .expect("value")
                .trim()
                .parse()
                .expect("number")
        })
        .collect()
}

/// One series of OpenMetrics history: labels text (`series="a"`) and `(ts, value)` samples.
pub struct OmSeries<'a> {
    pub labels: &'a str,
    pub samples: Vec<(i64, f64)>,
}

/// OpenMetrics text for promtool: timestamps in seconds, final `# EOF`.
pub fn openmetrics(metric: &str, series: &[OmSeries]) -> String {
    let mut out = format!("# TYPE {metric} gauge\n");
    for s in series {
        for (ts, v) in &s.samples {
            out.push_str(&format!("{metric}{{{}}} {v} {ts}\n", s.labels));
        }
    }
    out.push_str("# EOF\n");
    out
}

/// A loopback HTTP server on its own thread, answering each request through `handler`
/// (request head → action). Stopped and joined on drop.
pub struct TestServer {
    pub port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    pub requests: Arc<Mutex<Vec<String>>>,
}

/// What the server does with one request.
pub enum Action {
    /// Full response: status, content type, body.
    Respond(u16, &'static str, Vec<u8>),
    /// Headers with a `Content-Length` of the whole body, then only `cut` bytes, then close.
    ShortBody(Vec<u8>, usize),
    /// Headers with this `Content-Length`, then only these bytes, then close (a length claimed,
    /// not sent).
    Claims(u64, Vec<u8>),
    /// No `Content-Length`: body bytes until close (so a client reads a complete, cut body).
    CloseDelimited(Vec<u8>),
    /// Read the request, answer nothing for this long, then close.
    Stall(Duration),
    /// Close without answering.
    Close,
}

impl TestServer {
    pub fn start(handler: impl Fn(&str) -> Action + Send + Sync + 'static) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler = Arc::new(handler);
        let (stop2, reqs2) = (stop.clone(), requests.clone());
        let thread = std::thread::spawn(move || {
            let mut workers: Vec<JoinHandle<()>> = Vec::new();
            while !stop2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (h, r, st) = (handler.clone(), reqs2.clone(), stop2.clone());
                        workers.push(std::thread::spawn(move || serve(conn, &*h, &r, &st)));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            for w in workers {
                let _ = w.join();
            }
        });
        TestServer {
            port,
            stop,
            thread: Some(thread),
            requests,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn request_count(&self) -> usize {
        self.requests.lock().map(|r| r.len()).unwrap_or(0)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    conn: TcpStream,
    handler: &(dyn Fn(&str) -> Action + Send + Sync),
    log: &Mutex<Vec<String>>,
    stop: &AtomicBool,
) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(match conn.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    });
    let mut conn = conn;
    // One request per connection (`Connection: close` on every answer).
    let mut head = String::new();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line == "\r\n" || line == "\n" {
            break;
        }
        head.push_str(&line);
    }
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let request = format!("{head}\r\n{}", String::from_utf8_lossy(&body));
    if let Ok(mut l) = log.lock() {
        l.push(request.clone());
    }
    let reason = |s: u16| match s {
        200 => "OK",
        400 => "Bad Request",
        422 => "Unprocessable Entity",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let _ = match handler(&request) {
        Action::Respond(status, ctype, body) => {
            let _ = write!(
                conn,
                "HTTP/1.1 {status} {}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                reason(status),
                body.len()
            );
            conn.write_all(&body)
        }
        Action::ShortBody(body, cut) => {
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            conn.write_all(&body[..cut.min(body.len())])
        }
        Action::Claims(declared, body) => {
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {declared}\r\nConnection: close\r\n\r\n"
            );
            conn.write_all(&body)
        }
        Action::CloseDelimited(body) => {
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
            );
            conn.write_all(&body)
        }
        Action::Stall(d) => {
            let t0 = Instant::now();
            while t0.elapsed() < d && !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(())
        }
        Action::Close => Ok(()),
    };
    let _ = conn.flush();
    let _ = conn.shutdown(std::net::Shutdown::Both);
}

/// A `/metrics` exporter whose text the test sets; `{scrape}` in it is replaced by the number
/// of the scrape (1, 2, ...), so every scrape gives a new, increasing value.
pub struct Exporter {
    pub server: TestServer,
    pub text: Arc<Mutex<String>>,
}

impl Exporter {
    pub fn start() -> Exporter {
        let text = Arc::new(Mutex::new(String::new()));
        let scrapes = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let t = text.clone();
        let server = TestServer::start(move |_req| {
            let n = scrapes.fetch_add(1, Ordering::SeqCst) + 1;
            let body = t.lock().map(|s| s.clone()).unwrap_or_default();
            let body = body.replace("{scrape}", &n.to_string());
            Action::Respond(200, "text/plain; version=0.0.4", body.into_bytes())
        });
        Exporter { server, text }
    }

    pub fn set(&self, text: impl Into<String>) {
        if let Ok(mut t) = self.text.lock() {
            *t = text.into();
        }
    }

    pub fn target(&self) -> String {
        format!("127.0.0.1:{}", self.server.port)
    }
}

/// Sleeps until `frac` of a second past the next whole second, so polls land just after the
/// step boundary like the live loop's.
pub async fn sleep_to_next_second(frac: f64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    let target = now.floor() + 1.0 + frac;
    tokio::time::sleep(Duration::from_secs_f64(target - now)).await;
}
