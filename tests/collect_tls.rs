//! HTTPS with a custom CA against a real Prometheus serving TLS (`--web.config.file`): trusted
//! through `ca_file`, refused without it.

use crate::common;

use common::*;
use prescale::config::Config;
use std::path::Path;
use std::time::Duration;

/// A test CA and a server certificate for 127.0.0.1 signed by it: (ca.pem, cert.pem, key.pem).
fn certificates() -> (String, String, String) {
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "prescale test CA");
    let ca_key = rcgen::KeyPair::generate().expect("ca key");
    let ca_cert = ca.self_signed(&ca_key).expect("ca cert");
    let server =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("server params");
    let key = rcgen::KeyPair::generate().expect("server key");
    let cert = server
        .signed_by(&key, &ca_cert, &ca_key)
        .expect("server cert");
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

fn config(dir: &Path, url: &str, extra: &str) -> Config {
    let text = format!(
        "[prometheus]\nurl = \"{url}\"\ntimeout = \"5s\"\n{extra}\n\n[[signal]]\nname = \"one\"\n\
         query = \"vector(1)\"\nstep = \"1m\"\nlookback = \"10m\"\n"
    );
    load_config(dir, &text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_custom_ca() {
    let (ca, cert, key) = certificates();
    let prom = Prometheus::start(PromOptions {
        web_config: Some(
            "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n".into(),
        ),
        files: vec![("server.pem".into(), cert), ("server.key".into(), key)],
        ..PromOptions::default()
    });
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("ca.pem"), ca).expect("ca");
    let url = format!("https://127.0.0.1:{}", prom.port);

    let test = async {
        // Trusted through ca_file.
        let cfg = config(dir.path(), &url, "ca_file = \"ca.pem\"");
        let mut c = connect(&cfg).await.expect("TLS start-up");
        let r = c.backfill(now()).await;
        assert!(r.ok(), "{r:?}");
        assert_eq!(r.signals[0].appended, 11);

        // Not trusted without it: the start-up check fails and says why.
        let cfg = config(dir.path(), &url, "");
        let e = connect(&cfg).await.err().expect("untrusted").to_string();
        assert!(e.contains("certificate"), "{e}");
    };
    tokio::time::timeout(Duration::from_secs(60), test)
        .await
        .expect("in time");
}
