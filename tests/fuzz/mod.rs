//! The harness of `tests/fuzz_readers.rs`: a counting allocator, the case budget, the checks
//! every reader must pass, and byte-level mutations shared by the generators.
//!
//! Allocation is counted per thread: cargo runs the readers' tests in parallel, and each
//! reader runs on the test's own thread (the Prometheus client on a current-thread runtime),
//! so a thread-local peak is that reader's peak and no other test's allocations leak into it.

#![allow(dead_code)]

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Instant;

/// The system allocator, counting live bytes and their peak per thread.
pub struct Counting;

/// Inside [`peak_of`], an allocation that would take the thread this far above where it
/// started is refused, which aborts the test binary ("memory allocation of N bytes failed"):
/// a reader that reads `/dev/zero` to its end or sizes a buffer by a length field must fail
/// the run, not take the shared machine's memory with it.
pub const HARD_CAP: isize = 256 << 20;

thread_local! {
    // `const` cells without destructors: touching them never allocates, so the allocator can
    // use them without recursing into itself.
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
    /// `LIVE` when the current [`peak_of`] began; `None` outside one.
    static BASE: Cell<Option<isize>> = const { Cell::new(None) };
}

fn add(delta: isize) {
    // `try_with`: allocations during thread teardown, after the cells are gone, go uncounted.
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

/// False when growing this thread's live bytes by `size` would pass [`HARD_CAP`] inside a
/// measured region.
fn allowed(size: usize) -> bool {
    let base = BASE.try_with(Cell::get).ok().flatten();
    let live = LIVE.try_with(Cell::get).unwrap_or(0);
    match base {
        Some(b) => (live - b).saturating_add(size as isize) <= HARD_CAP,
        None => true,
    }
}

// SAFETY: every call is forwarded to `System` with the same arguments; counting only touches
// thread-local cells, which neither allocate nor unwind.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !allowed(layout.size()) {
            return std::ptr::null_mut();
        }
        let p = System.alloc(layout);
        if !p.is_null() {
            add(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !allowed(layout.size()) {
            return std::ptr::null_mut();
        }
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            add(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        add(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !allowed(new_size.saturating_sub(layout.size())) {
            return std::ptr::null_mut();
        }
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            add(new_size as isize - layout.size() as isize);
        }
        p
    }
}

/// Runs `f` and returns its result with the most bytes it had allocated at once on this
/// thread, above what was live when it started.
pub fn peak_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    BASE.with(|b| b.set(Some(base)));
    // Cleared again even when `f` panics, so the proptest runner's own work is not capped.
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            let _ = BASE.try_with(|b| b.set(None));
        }
    }
    let reset = Reset;
    let out = f();
    drop(reset);
    let peak = PEAK.with(Cell::get);
    (out, (peak - base).max(0) as usize)
}

/// What a reader may allocate for an input of `input` bytes: a constant factor of the data
/// (parsed numbers, keys and maps cost several times their text) plus room for fixed buffers.
/// A reader that sizes anything by what the data *claims* (a length field, a timestamp span, a
/// previous array's length) rather than by what it holds goes past this.
pub fn alloc_bound(input: usize) -> usize {
    64 * input + (1 << 20)
}

/// Longest line any error message may have: a path, a key and a short excerpt fit; a whole
/// body, field or line of a large input does not.
pub const MAX_MESSAGE_LINE: usize = 1024;

/// Checks the properties every reader's error must have: it names `source` (a file path, a URL)
/// and quotes no long stretch of input.
pub fn check_error(message: &str, source: &str) -> Result<(), TestCaseError> {
    prop_assert!(
        message.contains(source),
        "error does not name its source {source:?}: {}",
        short(message)
    );
    for line in message.lines() {
        prop_assert!(
            line.chars().count() <= MAX_MESSAGE_LINE,
            "error line of {} characters (at most {MAX_MESSAGE_LINE}): {}",
            line.chars().count(),
            short(line)
        );
    }
    Ok(())
}

/// Checks the allocation bound for an input of `input` bytes.
pub fn check_peak(peak: usize, input: usize) -> Result<(), TestCaseError> {
    prop_assert!(
        peak <= alloc_bound(input),
        "peak allocation {peak} bytes for {input} bytes of input (bound {})",
        alloc_bound(input)
    );
    Ok(())
}

/// The start of `text`, for assertion messages that must stay readable.
pub fn short(text: &str) -> String {
    let head: String = text.chars().take(300).collect();
    if head.len() < text.len() {
        format!("{head}… ({} bytes)", text.len())
    } else {
        head
    }
}

/// Cases per reader: `PRESCALE_FUZZ_CASES` (the long campaign of `scripts/fuzz.sh`), else a
/// default that keeps the whole file well under a minute in the debug test build, times the
/// reader's `weight` (readers whose cases are costly run fewer).
pub fn cases(weight: f64) -> u32 {
    let base: f64 = std::env::var("PRESCALE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    (base * weight).ceil().max(1.0) as u32
}

/// Default `PRESCALE_FUZZ_CASES`.
pub const DEFAULT_CASES: f64 = 256.0;

/// Runs `cases(weight)` cases of `strategy` through `test`, as `proptest!` would (failures
/// shrunk, persisted next to `source`, i.e. `proptest-regressions/fuzz_readers.txt`, and
/// replayed first on later runs), then prints `fuzz <reader>: <cases> cases in <seconds> s`
/// (the campaign's summary lines; shown with `--nocapture`).
pub fn run<S: Strategy>(
    reader: &str,
    source: &'static str,
    weight: f64,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    let config = Config {
        cases: cases(weight),
        max_shrink_iters: 2_000,
        source_file: Some(source),
        // `Direct`, relative to the package root where cargo runs tests: `SourceParallel`
        // looks for a lib.rs beside the source and, in tests/, finds none.
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/fuzz_readers.txt",
        ))),
        ..Config::default()
    };
    let n = config.cases;
    let start = Instant::now();
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let result = runner.run(&strategy, test);
    let secs = start.elapsed().as_secs_f64();
    match result {
        Ok(()) => eprintln!("fuzz {reader}: {n} cases in {secs:.1} s, no failure"),
        Err(e) => {
            eprintln!("fuzz {reader}: FAILED after {secs:.1} s");
            // The minimal failing input, cut so a huge field does not flood the log.
            let text = e.to_string();
            let head: String = text.chars().take(8_000).collect();
            panic!("{reader}: {head}");
        }
    }
}

/// One byte-level change to an input.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Cut the input at this fraction of its length.
    Truncate(f64),
    /// Set the byte at this fraction of the length.
    Flip(f64, u8),
    /// Insert these bytes at this fraction of the length.
    Insert(f64, Bytes),
    /// Delete this many bytes from this fraction of the length.
    Delete(f64, usize),
}

/// Bytes that break text formats in interesting ways, for [`Mutation::Insert`].
pub fn nasty_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"\0".to_vec()),
        Just(vec![0u8; 300]),
        Just(b"\"".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b",".to_vec()),
        Just(b"\n".to_vec()),
        Just("\u{feff}".as_bytes().to_vec()),
        Just(vec![0xff, 0xfe]),
        Just(b"\\u0000".to_vec()),
        (1usize..20_000).prop_map(|n| vec![b'x'; n]),
        (1usize..5_000).prop_map(|n| vec![b'9'; n]),
        proptest::collection::vec(any::<u8>(), 1..16),
    ]
}

/// A random mutation.
pub fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => (0.0f64..1.0).prop_map(Mutation::Truncate),
        3 => (0.0f64..1.0, any::<u8>()).prop_map(|(at, b)| Mutation::Flip(at, b)),
        4 => (0.0f64..1.0, nasty_bytes()).prop_map(|(at, b)| Mutation::Insert(at, Bytes(b))),
        1 => (0.0f64..1.0, 1usize..40).prop_map(|(at, n)| Mutation::Delete(at, n)),
    ]
}

/// `bytes` with `m` applied.
pub fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let at = |f: f64, len: usize| ((f * len as f64) as usize).min(len);
    match m {
        Mutation::Truncate(f) => {
            let n = at(*f, bytes.len());
            bytes.truncate(n);
        }
        Mutation::Flip(f, b) => {
            if !bytes.is_empty() {
                let i = at(*f, bytes.len() - 1);
                bytes[i] = *b;
            }
        }
        Mutation::Insert(f, ins) => {
            let i = at(*f, bytes.len());
            bytes.splice(i..i, ins.iter().copied());
        }
        Mutation::Delete(f, n) => {
            let i = at(*f, bytes.len());
            let j = (i + n).min(bytes.len());
            bytes.drain(i..j);
        }
    }
}

pub mod config;
pub mod text;
pub mod wire;

/// Input bytes whose `Debug` is one escaped line, cut at 2,000 bytes: a failing case's report
/// must stay readable when the input holds 20,000 `x`s.
#[derive(Clone)]
pub struct Bytes(pub Vec<u8>);

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let head = &self.0[..self.0.len().min(2_000)];
        write!(f, "b\"{}\"", head.escape_ascii())?;
        if head.len() < self.0.len() {
            write!(f, "… ({} bytes)", self.0.len())?;
        }
        Ok(())
    }
}

impl std::ops::Deref for Bytes {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}
