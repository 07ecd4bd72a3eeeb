//! The bounded live buffer: one slot per step, oldest overwritten first.

use super::{Series, SeriesKey};

/// Largest timestamp magnitude a ring distinguishes (2^61 s, some 73 billion years): far beyond
/// any real sample, and small enough that differences and offsets of slots fit in `i64`.
const MAX_ABS_TS: i64 = 1 << 61;

/// A bounded ring of `f32` values on a fixed step, aligned to a grid of multiples of `step`
/// seconds since the Unix epoch. Memory is fixed by the capacity given at construction (4
/// bytes a slot plus a small header), never by how long the process has been up.
///
/// `f32` is deliberate: load samples carry far fewer than 7 significant digits of meaning, and
/// halving the footprint is what lets 10,000 series of a week's history fit comfortably.
#[derive(Debug, Clone)]
pub struct Ring {
    step: i64,
    /// Slot index (in grid units since the epoch) of the newest value; `None` while empty.
    newest: Option<i64>,
    /// Number of slots filled (gap or value), at most `buf.len()`.
    len: usize,
    buf: Box<[f32]>,
}

/// What [`Ring::push`] did with a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    /// A new newest value; `gaps` empty slots were opened between it and the previous one.
    Appended {
        /// Steps left as gaps between the previous newest value and this one.
        gaps: usize,
    },
    /// The slot already existed and now holds this value (a re-fetched or late sample).
    Replaced,
    /// Older than everything the ring still holds: ignored.
    TooOld,
}

impl Ring {
    /// A ring of `capacity` slots (at least 1) of `step` seconds (at least 1).
    pub fn new(step: i64, capacity: usize) -> Self {
        Ring {
            step: step.max(1),
            newest: None,
            len: 0,
            buf: vec![f32::NAN; capacity.max(1)].into_boxed_slice(),
        }
    }

    /// Seconds per slot.
    pub fn step(&self) -> i64 {
        self.step
    }

    /// Slots this ring can hold.
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Slots currently held (gaps included).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True before the first sample.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes this ring occupies, header included (for the memory figures the collector reports).
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + std::mem::size_of_val(&*self.buf)
    }

    /// Timestamp of the newest slot.
    pub fn newest_timestamp(&self) -> Option<i64> {
        self.newest.map(|s| s * self.step)
    }

    /// Timestamp of the oldest slot still held.
    pub fn oldest_timestamp(&self) -> Option<i64> {
        self.newest.map(|s| (s - self.len as i64 + 1) * self.step)
    }

    /// The grid slot a timestamp belongs to: the nearest multiple of the step. Timestamps are
    /// clamped to ±[`MAX_ABS_TS`] first: an answer's `1e300` arrives as `i64::MAX`, and no slot
    /// arithmetic here may overflow on it.
    fn slot_of(&self, ts: i64) -> i64 {
        (ts.clamp(-MAX_ABS_TS, MAX_ABS_TS) + self.step / 2).div_euclid(self.step)
    }

    fn index(&self, slot: i64) -> usize {
        slot.rem_euclid(self.buf.len() as i64) as usize
    }

    /// Stores `value` at the slot of `ts`. A sample newer than the newest opens gap slots up to
    /// it (old slots fall out); one inside the held range replaces that slot; one older than the
    /// oldest held slot is refused. A value that is not finite as an `f32` (NaN, ±Inf, or
    /// beyond ±3.4e38) is stored as a gap: every reader of the ring takes NaN for one.
    pub fn push(&mut self, ts: i64, value: f64) -> PushOutcome {
        let slot = self.slot_of(ts);
        let v = value as f32;
        let v = if v.is_finite() { v } else { f32::NAN };
        let cap = self.buf.len();
        match self.newest {
            None => {
                let i = self.index(slot);
                self.buf[i] = v;
                self.newest = Some(slot);
                self.len = 1;
                PushOutcome::Appended { gaps: 0 }
            }
            Some(newest) if slot > newest => {
                let ahead = (slot - newest) as usize;
                // Clear the slots we skip over; past a full lap every slot is cleared once.
                for s in 1..ahead.min(cap + 1) {
                    let i = self.index(newest + s as i64);
                    self.buf[i] = f32::NAN;
                }
                let i = self.index(slot);
                self.buf[i] = v;
                self.newest = Some(slot);
                self.len = (self.len + ahead).min(cap);
                PushOutcome::Appended { gaps: ahead - 1 }
            }
            Some(newest) => {
                let oldest = newest - self.len as i64 + 1;
                if slot < oldest {
                    return PushOutcome::TooOld;
                }
                let i = self.index(slot);
                self.buf[i] = v;
                PushOutcome::Replaced
            }
        }
    }

    /// Value at `ts`'s slot, if held (a gap is `Some(NaN)`).
    pub fn get(&self, ts: i64) -> Option<f64> {
        let newest = self.newest?;
        let slot = self.slot_of(ts);
        let oldest = newest - self.len as i64 + 1;
        (oldest..=newest)
            .contains(&slot)
            .then(|| f64::from(self.buf[self.index(slot)]))
    }

    /// The newest `n` slots (fewer if fewer are held), oldest first, gaps as `NaN`.
    pub fn tail(&self, n: usize) -> Vec<f64> {
        let mut out = Vec::with_capacity(n.min(self.len));
        self.tail_into(n, &mut out);
        out
    }

    /// Like [`Ring::tail`], reusing `out`'s allocation (the live loop calls this every cycle).
    pub fn tail_into(&self, n: usize, out: &mut Vec<f64>) {
        out.clear();
        let Some(newest) = self.newest else { return };
        let n = n.min(self.len);
        out.reserve(n);
        let (a, b) = self.runs(newest - n as i64 + 1, n);
        out.extend(a.iter().map(|&v| f64::from(v)));
        out.extend(b.iter().map(|&v| f64::from(v)));
    }

    /// The newest `n` values as [`tail_into`](Self::tail_into) gives them, except that only
    /// the `parts` (index ranges into those values, clipped to them) are read from the ring;
    /// every other value is `NaN`. The live loop holds a week per series for the weekly
    /// features, which read a day before the origin and one window a week back: copying the
    /// whole week of every series each cycle streamed the entire store through the cache.
    pub fn tail_parts_into(
        &self,
        n: usize,
        parts: impl IntoIterator<Item = std::ops::Range<usize>>,
        out: &mut Vec<f64>,
    ) {
        out.clear();
        let Some(newest) = self.newest else { return };
        let n = n.min(self.len);
        out.resize(n, f64::NAN);
        let first = newest - n as i64 + 1;
        for r in parts {
            let (lo, hi) = (r.start.min(n), r.end.min(n));
            if lo >= hi {
                continue;
            }
            let (a, b) = self.runs(first + lo as i64, hi - lo);
            for (o, &v) in out[lo..hi].iter_mut().zip(a.iter().chain(b)) {
                *o = f64::from(v);
            }
        }
    }

    /// How many of the newest `n` slots (at most those held) are values, counted back from the
    /// newest to the last gap: [`tail`](Self::tail)`(n)` ends in that many finite values. Read
    /// on the buffer, back to the gap only, without copying: the live loop asks this of every
    /// reactive series each cycle over the whole history its features need (a week at a
    /// 5-minute step), and copying that tail to count its end streamed it all through the cache.
    pub fn finite_tail_len(&self, n: usize) -> usize {
        let Some(newest) = self.newest else { return 0 };
        let n = n.min(self.len);
        let (a, b) = self.runs(newest - n as i64 + 1, n);
        let finite_back = |run: &[f32]| run.iter().rev().take_while(|v| v.is_finite()).count();
        let in_b = finite_back(b);
        if in_b < b.len() {
            in_b
        } else {
            in_b + finite_back(a)
        }
    }

    /// The `n` slots from `first` on (all held), as at most two runs of the buffer (before
    /// and after the wrap): one remainder per copy instead of one per slot, which the live
    /// loop would pay for every value of every series each cycle.
    fn runs(&self, first: i64, n: usize) -> (&[f32], &[f32]) {
        let i = self.index(first);
        if i + n <= self.buf.len() {
            (&self.buf[i..i + n], &self.buf[..0])
        } else {
            (&self.buf[i..], &self.buf[..i + n - self.buf.len()])
        }
    }

    /// Everything held, as a [`Series`] (start = oldest held slot).
    pub fn to_series(&self, key: SeriesKey) -> Series {
        Series {
            key,
            start: self.oldest_timestamp().unwrap_or(0),
            step: self.step,
            values: self.tail(self.len),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn appends_gaps_and_wraps() {
        let mut r = Ring::new(60, 4);
        assert_eq!(r.push(600, 1.0), PushOutcome::Appended { gaps: 0 });
        assert_eq!(r.push(660, 2.0), PushOutcome::Appended { gaps: 0 });
        assert_eq!(r.push(840, 5.0), PushOutcome::Appended { gaps: 2 });
        let t = r.tail(10);
        assert_eq!(t.len(), 4);
        assert_eq!(t[0], 2.0);
        assert!(t[1].is_nan() && t[2].is_nan());
        assert_eq!(t[3], 5.0);
        assert_eq!(r.oldest_timestamp(), Some(660));
        assert_eq!(r.push(600, 9.0), PushOutcome::TooOld);
        assert_eq!(r.push(720, 3.0), PushOutcome::Replaced);
        assert_eq!(r.get(720), Some(3.0));
        // A jump of more than a whole lap leaves only the new value.
        assert_eq!(r.push(60 * 100, 7.0), PushOutcome::Appended { gaps: 85 });
        let t = r.tail(4);
        assert!(t[..3].iter().all(|v| v.is_nan()));
        assert_eq!(t[3], 7.0);
    }

    #[test]
    fn small_footprint() {
        let r = Ring::new(300, 2016);
        assert!(r.memory_bytes() as f64 / 2016.0 <= 4.1);
    }

    /// The live loop's count before [`Ring::finite_tail_len`] (on a copy of the tail): the
    /// finite values at the end of `values`, back to the last gap.
    fn unbroken(values: &[f64]) -> usize {
        values.iter().rev().take_while(|v| v.is_finite()).count()
    }

    #[test]
    fn a_value_beyond_f32_is_a_gap_not_an_infinity() {
        let mut r = Ring::new(60, 4);
        r.push(0, 1.0);
        r.push(60, 1e39);
        r.push(120, -f64::MAX);
        assert!(r.get(60).unwrap().is_nan() && r.get(120).unwrap().is_nan());
        assert_eq!(r.finite_tail_len(10), 0);
        let t = r.tail(3);
        assert_eq!(t[0], 1.0);
        assert!(t[1].is_nan() && t[2].is_nan(), "{t:?}");
    }

    #[test]
    fn finite_tail_stops_at_the_last_gap() {
        let mut r = Ring::new(60, 5);
        assert_eq!(r.finite_tail_len(10), 0);
        for (k, v) in [1.0, f64::NAN, 2.0, 3.0].into_iter().enumerate() {
            r.push(60 * k as i64, v);
        }
        assert_eq!(r.finite_tail_len(10), 2);
        assert_eq!(r.finite_tail_len(1), 1);
        assert_eq!(r.finite_tail_len(0), 0);
        // Across the wrap: slots 3..=7 are held, the newest in buffer slots 0..=2.
        for k in 4..8 {
            r.push(60 * k, k as f64);
        }
        assert_eq!(r.finite_tail_len(10), 5);
        // A gap before the wrap: the run goes through the newest part into the older one.
        assert_eq!(r.push(60 * 3, f64::NAN), PushOutcome::Replaced);
        assert_eq!(r.finite_tail_len(10), 4);
        r.push(60 * 9, f64::NAN);
        assert_eq!(r.finite_tail_len(10), 0);
    }

    proptest! {
        /// Whatever order samples arrive in, the ring holds exactly the newest value written to
        /// each of the last `cap` slots, and gaps everywhere else.
        #[test]
        fn matches_a_map(cap in 1usize..40, pushes in proptest::collection::vec((0i64..120, -1e6f64..1e6), 1..200)) {
            let mut r = Ring::new(10, cap);
            let mut model = std::collections::BTreeMap::new();
            let mut newest: Option<i64> = None;
            let first_slot = pushes[0].0;
            for &(slot, v) in &pushes {
                let oldest_ok = newest
                    .map(|n| slot >= first_slot.max(n - cap as i64 + 1))
                    .unwrap_or(true);
                let newer = newest.map(|n| slot > n).unwrap_or(true);
                if newer || oldest_ok {
                    model.insert(slot, v as f32);
                }
                if newer { newest = Some(slot); }
                r.push(slot * 10, v);
            }
            let n = newest.unwrap();
            let tail = r.tail(cap);
            let first = n - tail.len() as i64 + 1;
            prop_assert!(first > n - cap as i64);
            for (k, got) in tail.iter().enumerate() {
                let slot = first + k as i64;
                match model.get(&slot) {
                    Some(&want) => prop_assert_eq!(*got as f32, want),
                    None => prop_assert!(got.is_nan()),
                }
            }
            // Every shorter tail is the newest part of it, slot for slot what `get` reads
            // (bits, gaps included), across the wrap of the buffer.
            for m in 0..cap + 2 {
                let t = r.tail(m);
                prop_assert_eq!(t.len(), m.min(tail.len()));
                let off = tail.len() - t.len();
                for (k, v) in t.iter().enumerate() {
                    let want = r.get((first + (off + k) as i64) * 10);
                    prop_assert_eq!(Some(v.to_bits()), want.map(f64::to_bits));
                }
                // The parts of it alone: those values to the bit, NaN between them, whatever
                // the parts (overlapping, empty, past the end).
                let parts = [m / 3..m / 2, m.saturating_sub(2)..m + 5, 1..1];
                let mut p = Vec::new();
                r.tail_parts_into(m, parts.clone(), &mut p);
                prop_assert_eq!(p.len(), t.len());
                for (k, (got, full)) in p.iter().zip(&t).enumerate() {
                    if parts.iter().any(|r| r.contains(&k)) {
                        prop_assert_eq!(got.to_bits(), full.to_bits());
                    } else {
                        prop_assert!(got.is_nan());
                    }
                }
            }
        }

        /// The finite run at the end, counted on the ring, is what the live loop counted on a
        /// copy of the tail, for every `n`: on rings with gaps (skipped slots, non-finite
        /// samples, values too large for `f32`), late writes, and wraps of the buffer.
        #[test]
        fn finite_tail_len_counts_as_the_copy_did(
            cap in 1usize..40,
            pushes in proptest::collection::vec(
                (-3i64..4, prop_oneof![
                    6 => -1e6f64..1e6,
                    2 => Just(f64::NAN),
                    1 => Just(f64::INFINITY),
                    1 => Just(1e300),
                ]),
                0..150,
            ),
        ) {
            let mut r = Ring::new(10, cap);
            let mut at = 0i64;
            for &(d, v) in &pushes {
                r.push((at + d) * 10, v);
                at = at.max(at + d);
            }
            for n in 0..cap + 3 {
                prop_assert_eq!(r.finite_tail_len(n), unbroken(&r.tail(n)), "n = {}", n);
            }
        }
    }
}
