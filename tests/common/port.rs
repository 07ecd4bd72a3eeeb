//! Loopback ports for the servers the tests start as child processes (Prometheus,
//! VictoriaMetrics, `prescale run`), which must be told their port before they bind it.
//!
//! Not "bind port 0, read the port, drop the listener": that port comes from the kernel's
//! ephemeral range, the range every outgoing connection's local port is drawn from too. Until
//! the child binds it (a shard may start a minute or more later), any connection of the tests,
//! of Prometheus' scrapes or of the children can take that port, open or in `TIME_WAIT`, and
//! the child's bind then fails with "address in use" (`shard_readback` failed in CI this way:
//! the shard started last never ran a cycle). So ports are handed out *below* the ephemeral
//! range, where the kernel never puts a connection of its own choosing: in turn from a random
//! start (the tests of one binary run in parallel, and the test binaries may run at once), each
//! checked free by binding it.

use std::net::{Ipv4Addr, TcpListener};
use std::sync::atomic::{AtomicU32, Ordering};

/// Ports handed out: the ones just below the ephemeral range.
const SPAN: u16 = 10_000;

/// A loopback port no listener holds now and no outgoing connection can take.
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let (lo, span) = range();
    if NEXT.load(Ordering::Relaxed) == u32::MAX {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let start = (nanos ^ std::process::id().wrapping_mul(2_654_435_761)) % span;
        let _ = NEXT.compare_exchange(u32::MAX, start, Ordering::Relaxed, Ordering::Relaxed);
    }
    for _ in 0..span {
        let port = lo + (NEXT.fetch_add(1, Ordering::Relaxed) % span) as u16;
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return port;
        }
    }
    // Every one taken (never seen): an ephemeral port, with the race described above.
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

/// The first port handed out and how many: the `SPAN` ports below the kernel's ephemeral
/// range (`net.ipv4.ip_local_port_range`, 32768 by default), above the privileged ones.
fn range() -> (u16, u32) {
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    let lo = ephemeral.saturating_sub(SPAN).max(1_024);
    (lo, u32::from(ephemeral.saturating_sub(lo).max(1)))
}
