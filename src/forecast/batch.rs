//! Forecasting many series in one call, the live loop's every-cycle path.
//!
//! Rules, and why:
//! * Results are those of [`Model::forecast_latest`] series by series, to the bit: the same
//!   features (the newest row alone, [`features::latest`], which is `compute`'s row to the
//!   bit, without its full pass), the same calibrated levels, the forest's batched walk
//!   ([`QuantileForest::predict_quantiles_block`]) which shares its merge with the per-row one.
//! * Work goes in chunks of [`CHUNK`] series, in parallel over chunks: each chunk's feature rows
//!   are one contiguous matrix, so the forest walks each tree for the whole chunk while its
//!   nodes are in cache (at 100,000 series the forest streams through the cache once per chunk
//!   instead of once per series).
//! * Series values are read into one per-thread buffer (a ring's tail straight from the ring,
//!   [`Model::forecast_rings`]): at 100,000 series, a copy of every window at once was 460 MB
//!   written and faulted in each cycle before any forecasting started. And only the parts the
//!   features read are read ([`FeatureSpec::latest_reads`](super::FeatureSpec::latest_reads)):
//!   the rest of a week-long tail streamed the whole store through the cache for nothing.
//!
//! [`QuantileForest::predict_quantiles_block`]: super::QuantileForest::predict_quantiles_block

use super::{features, Forecast, Model};
use crate::series::{Ring, SeriesKey};
use rayon::prelude::*;

/// Series per chunk: enough rows that a tree's walk is amortised over many, few enough that
/// the two cores share the work evenly and a chunk's rows stay in cache.
const CHUNK: usize = 128;

impl Model {
    /// Forecasts from the newest value of many series at once. Each input is `(key, values,
    /// start)` as for [`Model::forecast_latest`], whose result each output equals; the output is
    /// in input order.
    pub fn forecast_many(&self, inputs: &[(SeriesKey, Vec<f64>, i64)]) -> Vec<Option<Forecast>> {
        self.forecast_batch(inputs, |(key, values, start), buf| {
            buf.extend_from_slice(values);
            Some((key, *start))
        })
    }

    /// Forecasts from the newest value of each ring, reading the newest
    /// [`history_needed`](super::FeatureSpec::history_needed) values of each straight from the
    /// ring: the same result as [`Model::forecast_many`] on copies of the rings' tails
    /// ([`Ring::tail`]), without the copies. An empty ring gives `None`.
    pub fn forecast_rings(&self, rings: &[(&SeriesKey, &Ring)]) -> Vec<Option<Forecast>> {
        self.forecast_batch(rings, |&(key, ring), buf| {
            Some((key, self.read_ring(ring, buf)?))
        })
    }

    /// One ring's forecast, as [`Model::forecast_rings`] makes it (own models forecast
    /// through here, one series at a time).
    pub fn forecast_ring(&self, key: &SeriesKey, ring: &Ring) -> Option<Forecast> {
        let mut buf = Vec::new();
        let start = self.read_ring(ring, &mut buf)?;
        self.forecast_latest(key, &buf, start)
    }

    /// Puts the ring's newest [`history_needed`](super::FeatureSpec::history_needed) values
    /// into `buf`, read only where the features look
    /// ([`latest_reads`](super::FeatureSpec::latest_reads); the rest `NaN`), and gives the
    /// timestamp of the first; `None` for an empty ring. A ring holds a week for the weekly
    /// features, which read a day and one window a week back: copying every week of 100,000
    /// series each cycle cost a tenth of the cycle.
    fn read_ring(&self, ring: &Ring, buf: &mut Vec<f64>) -> Option<i64> {
        let newest = ring.newest_timestamp()?;
        let n = self.spec.history_needed().min(ring.len());
        ring.tail_parts_into(n, self.spec.latest_reads(n), buf);
        Some(newest - (n as i64 - 1) * ring.step())
    }

    /// The shared batch: `read(item, buf)` puts an item's values into the (empty) buffer and
    /// gives its key and the timestamp of its first value, or `None` for no forecast.
    fn forecast_batch<'a, I: Sync>(
        &self,
        items: &'a [I],
        read: impl Fn(&'a I, &mut Vec<f64>) -> Option<(&'a SeriesKey, i64)> + Sync,
    ) -> Vec<Option<Forecast>> {
        let cal: Vec<f64> = self
            .quantiles
            .iter()
            .map(|&q| self.calibrated_level(q))
            .collect();
        let nf = self.spec.n_features();
        items
            .par_chunks(CHUNK)
            .flat_map_iter(|chunk| {
                let mut buf = Vec::new();
                let mut x = Vec::with_capacity(chunk.len() * nf);
                // Per row: index in the chunk, key, origin, level, base.
                let mut rows = Vec::with_capacity(chunk.len());
                for (i, item) in chunk.iter().enumerate() {
                    buf.clear();
                    let Some((key, start)) = read(item, &mut buf) else {
                        continue;
                    };
                    let n = buf.len();
                    // The newest row alone (`features::latest`): `compute`'s row to the bit.
                    let Some(r) = features::latest(&self.spec, &buf, start, &mut x) else {
                        continue;
                    };
                    let at = start + (n as i64 - 1) * self.spec.step;
                    rows.push((i, key, at, r.level, r.base));
                }
                let mut q = vec![0.0; rows.len() * cal.len()];
                self.forest.predict_quantiles_block(&x, &cal, &mut q);
                let mut out: Vec<Option<Forecast>> = vec![None; chunk.len()];
                let c = cal.len();
                for (j, &(i, key, at, level, base)) in rows.iter().enumerate() {
                    let values = q[j * c..(j + 1) * c]
                        .iter()
                        .map(|&v| self.to_units(v, level, base));
                    out[i] = Some(self.labelled(key, at, values));
                }
                out
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::OnceLock;

    /// The shipped model: the one the live loop and the scale bench run.
    fn shipped() -> &'static Model {
        static M: OnceLock<Model> = OnceLock::new();
        M.get_or_init(|| {
            let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/web.model");
            Model::load(&p).expect("models/web.model loads")
        })
    }

    /// A ring of `cap` slots holding `len` 5-minute values of a daily wave with noise, with a
    /// gap every `gap_every` slots (0 = none); timestamps end at a fixed Monday.
    fn ring(seed: u64, cap: usize, len: usize, gap_every: usize) -> Ring {
        let mut r = Ring::new(300, cap);
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let end = 1_704_067_200 + 7 * 86_400;
        for j in 0..len {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (s >> 11) as f64 / (1u64 << 53) as f64;
            let ts = end - (len - 1 - j) as i64 * 300;
            let hour = (ts % 86_400) as f64 / 3600.0;
            let size = 5.0 + (seed % 50) as f64 * 7.0;
            let v = size * (1.0 + 0.5 * (std::f64::consts::TAU * hour / 24.0).sin() + 0.3 * u);
            let gap = gap_every > 0 && j % gap_every == gap_every - 1;
            r.push(ts, if gap { f64::NAN } else { v });
        }
        r
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]
        /// Both batched paths and one ring at a time give what `forecast_latest` gives on a copy
        /// of each ring's tail,
        /// to the bit, with and without gaps, short and empty histories, across chunks.
        #[test]
        fn batches_equal_one_by_one(
            seed in 0u64..10_000,
            n in 1usize..300,
            cap in 1usize..2100,
            gap_every in 0usize..40,
        ) {
            let m = shipped();
            let need = m.spec.history_needed();
            let keys: Vec<SeriesKey> = (0..n).map(|i| SeriesKey::new(format!("s{i}"))).collect();
            let rings: Vec<Ring> = (0..n)
                .map(|i| {
                    let len = (seed as usize * 7 + i * 131) % (cap + 40);
                    ring(seed + i as u64, cap, len, gap_every)
                })
                .collect();
            let views: Vec<(&SeriesKey, &Ring)> = keys.iter().zip(&rings).collect();
            let copies: Vec<(SeriesKey, Vec<f64>, i64)> = views
                .iter()
                .filter_map(|&(k, r)| {
                    let v = r.tail(need);
                    let start = r.newest_timestamp()? - (v.len() as i64 - 1) * 300;
                    Some((k.clone(), v, start))
                })
                .collect();
            let from_rings = m.forecast_rings(&views);
            let many = m.forecast_many(&copies);
            prop_assert_eq!(from_rings.len(), n);
            let mut c = 0;
            for (i, (k, r)) in views.iter().enumerate() {
                if r.is_empty() {
                    prop_assert!(from_rings[i].is_none());
                    continue;
                }
                let (ck, v, start) = &copies[c];
                prop_assert_eq!(ck, *k);
                let one = m.forecast_latest(k, v, *start);
                prop_assert_eq!(&from_rings[i], &one, "series {}", i);
                prop_assert_eq!(&m.forecast_ring(k, r), &one, "series {}", i);
                prop_assert_eq!(&many[c], &one, "series {}", i);
                c += 1;
            }
        }
    }
}
