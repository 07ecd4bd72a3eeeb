//! Numbers as Prometheus writes them: the `[ts,"value"]` pair's fast path, and decimals with
//! an exact fast path before the standard library's parser (see the parent module's doc for
//! why these are hand-written and what it measured).

use super::super::wire::Point;

/// `[digits,"digits"]` at `i`, parsed in one pass; `None` for anything else (the caller then
/// takes the general path from the same position).
#[inline(always)]
pub(super) fn fast_point(b: &[u8], i: usize) -> Option<(Point, usize)> {
    if *b.get(i)? != b'[' {
        return None;
    }
    let (ts, i) = fast_number(b, i + 1, b',')?;
    if *b.get(i + 1)? != b'"' {
        return None;
    }
    let (value, i) = fast_number(b, i + 2, b'"')?;
    if *b.get(i + 1)? != b']' {
        return None;
    }
    Some((Point { ts, value }, i + 2))
}

/// A plain decimal starting at `i` and ending right before `term`; returns the value and the
/// index of `term`.
#[inline(always)]
fn fast_number(b: &[u8], i: usize, term: u8) -> Option<(f64, usize)> {
    let s = b.get(i..)?;
    let neg = *s.first()? == b'-';
    let mut n = usize::from(neg);
    let mut mantissa: u64 = 0;
    let int_start = n;
    n = digits(s, n, &mut mantissa);
    let int_digits = n - int_start;
    let mut frac = 0;
    if s.get(n) == Some(&b'.') {
        let frac_start = n + 1;
        n = digits(s, frac_start, &mut mantissa);
        frac = n - frac_start;
    }
    if *s.get(n)? != term {
        return None;
    }
    let total = int_digits + frac;
    if total == 0 || total > 19 {
        return None;
    }
    if mantissa <= (1u64 << 53) && frac < POW10.len() {
        let v = mantissa as f64 / POW10[frac];
        return Some((if neg { -v } else { v }, i + n));
    }
    // Long mantissa: the slice is plain ASCII digits, so the standard parser takes it as is.
    let v: f64 = std::str::from_utf8(&s[..n]).ok()?.parse().ok()?;
    Some((v, i + n))
}

/// Accumulates the run of ASCII digits at `n` into `m` (wrapping: callers reject more than 19
/// digits), eight at a time where possible; returns the index after the run.
#[inline(always)]
fn digits(s: &[u8], mut n: usize, m: &mut u64) -> usize {
    while let Some(chunk) = s.get(n..n + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let v = u64::from_le_bytes(w);
        if !is_8_digits(v) {
            break;
        }
        *m = m.wrapping_mul(100_000_000).wrapping_add(parse_8_digits(v));
        n += 8;
    }
    while let Some(&c) = s.get(n) {
        let d = c.wrapping_sub(b'0');
        if d >= 10 {
            break;
        }
        *m = m.wrapping_mul(10).wrapping_add(u64::from(d));
        n += 1;
    }
    n
}

/// True when all eight bytes of `v` are ASCII digits (the SWAR test from fast_float).
#[inline(always)]
fn is_8_digits(v: u64) -> bool {
    let a = v.wrapping_add(0x4646_4646_4646_4646);
    let b = v.wrapping_sub(0x3030_3030_3030_3030);
    (a | b) & 0x8080_8080_8080_8080 == 0
}

/// The value of eight ASCII digits, first digit most significant (little-endian load).
#[inline(always)]
fn parse_8_digits(mut v: u64) -> u64 {
    const MASK: u64 = 0x0000_00FF_0000_00FF;
    const MUL1: u64 = 0x000F_4240_0000_0064;
    const MUL2: u64 = 0x0000_2710_0000_0001;
    v = v.wrapping_sub(0x3030_3030_3030_3030);
    v = v.wrapping_mul(10).wrapping_add(v >> 8);
    let v1 = (v & MASK).wrapping_mul(MUL1);
    let v2 = ((v >> 16) & MASK).wrapping_mul(MUL2);
    u64::from(((v1.wrapping_add(v2)) >> 32) as u32)
}

#[inline]
pub(super) fn memchr_quote(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'"')
}

/// Prometheus' sample value text: Go's float formatting, or `NaN`, `+Inf`, `-Inf`.
#[inline]
pub(super) fn parse_value(s: &[u8]) -> Option<f64> {
    match s {
        b"NaN" => Some(f64::NAN),
        b"+Inf" | b"Inf" => Some(f64::INFINITY),
        b"-Inf" => Some(f64::NEG_INFINITY),
        _ => parse_decimal(s),
    }
}

const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// A decimal number. Plain decimals whose digits fit in 53 bits take Clinger's exact fast path
/// (an exact integer divided by an exact power of ten rounds correctly); anything else goes to
/// the standard library's correctly rounded parser.
#[inline]
pub(super) fn parse_decimal(s: &[u8]) -> Option<f64> {
    let (neg, digits) = match s.first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let mut mantissa: u64 = 0;
    let mut n_digits = 0u32;
    let mut frac_digits = 0usize;
    let mut seen_dot = false;
    let mut simple = !digits.is_empty();
    for &c in digits {
        match c {
            b'0'..=b'9' => {
                if n_digits >= 19 {
                    simple = false;
                    break;
                }
                mantissa = mantissa * 10 + u64::from(c - b'0');
                if mantissa != 0 {
                    n_digits += 1;
                }
                if seen_dot {
                    frac_digits += 1;
                }
            }
            b'.' if !seen_dot => seen_dot = true,
            _ => {
                simple = false;
                break;
            }
        }
    }
    if simple && mantissa <= (1u64 << 53) && frac_digits < POW10.len() && digits != b"." {
        let v = mantissa as f64 / POW10[frac_digits];
        return Some(if neg { -v } else { v });
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}
