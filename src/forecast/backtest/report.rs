//! How a backtest is shown: the table on stdout, `report.json` and a chart per series, and
//! the forecasts CSV that the yardstick scores.

use super::{Comparison, Point, Report, Scores};
use crate::chart::{self, Band, Chart, Line};
use std::path::Path;

/// Most origins drawn in a chart.
const CHART_POINTS: usize = 1_000;

/// Writing the forecasts CSV failed; names the file.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {error}")]
pub struct ForecastsCsvError {
    /// The CSV file.
    pub path: std::path::PathBuf,
    /// What the OS (or the CSV writer) said (not a `source`: the message shows it already).
    pub error: std::io::Error,
}

/// Why a backtest report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file or directory could not be written.
    // Not `source`: the text is in this message already, and a source would print it twice.
    #[error("{}: {error}", path.display())]
    Write {
        /// The file or directory.
        path: std::path::PathBuf,
        /// What the OS said.
        error: std::io::Error,
    },
    /// `report.json` could not be serialised.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// A chart could not be drawn.
    #[error(transparent)]
    Chart(#[from] crate::chart::ChartError),
}

impl Scores {
    fn coverage_at(&self, q: f64) -> Option<f64> {
        self.coverage
            .iter()
            .find(|c| (c.0 - q).abs() < 1e-9)
            .map(|c| c.1)
    }

    fn pinball_at(&self, q: f64) -> Option<f64> {
        self.pinball
            .iter()
            .find(|c| (c.0 - q).abs() < 1e-9)
            .map(|c| c.1)
    }
}

impl Report {
    /// The table printed on stdout.
    pub fn table(&self) -> String {
        let mut out = format!(
            "backtest of {} — step {}s, window {}s, last {:.0}% of each series, rolling origin, {}\n",
            self.model,
            self.step,
            self.window,
            self.holdout * 100.0,
            self.online_gain.map_or("no online calibration".to_string(), |g| format!(
                "quantiles calibrated online (gain {g}{})",
                if self.online_median {
                    ", median chosen online"
                } else {
                    ""
                }
            ))
        );
        out.push_str(&format!(
            "{:<44} {:<12} {:>6} {:>7} {:>10} {:>6} {:>6} {:>6} {:>8} {:>8}\n",
            "series",
            "forecaster",
            "points",
            "WAPE",
            "RMSE",
            "MASE",
            "cov90",
            "cov95",
            "pin50",
            "pin90"
        ));
        let fmt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
        let mut block = |c: &Comparison| {
            let mut rows: Vec<(&str, &Scores)> =
                vec![("prescale", &c.model), ("persistence", &c.persistence)];
            if let Some(s) = &c.seasonal {
                rows.push(("seasonal", s));
            }
            for (i, (label, s)) in rows.iter().enumerate() {
                let name = if i == 0 {
                    truncate(&c.name, 44)
                } else {
                    String::new()
                };
                out.push_str(&format!(
                    "{:<44} {:<12} {:>6} {:>7.3} {:>10.4} {:>6.3} {:>6} {:>6} {:>8} {:>8}\n",
                    name,
                    label,
                    s.n,
                    s.wape,
                    s.rmse,
                    s.mase,
                    fmt(s.coverage_at(0.9)),
                    fmt(s.coverage_at(0.95)),
                    fmt(s.pinball_at(0.5)),
                    fmt(s.pinball_at(0.9)),
                ));
            }
            if let Some(note) = &c.seasonal_note {
                out.push_str(&format!("{:<44} (seasonal naive: {note})\n", ""));
            }
        };
        for c in &self.series {
            block(c);
        }
        block(&self.overall);
        let beats = self
            .series
            .iter()
            .filter(|c| c.model.n > 0 && c.model.wape < c.persistence.wape)
            .count();
        out.push_str(&format!(
            "prescale beats persistence on WAPE on {beats} of {} series\n",
            self.series.iter().filter(|c| c.model.n > 0).count()
        ));
        out
    }

    /// Writes `report.json` and one chart per series (actual vs p50 with the p90 band) to
    /// `dir`.
    pub fn write(&self, dir: &Path) -> Result<Vec<std::path::PathBuf>, ReportError> {
        std::fs::create_dir_all(dir).map_err(|error| ReportError::Write {
            path: dir.to_path_buf(),
            error,
        })?;
        let json = dir.join("report.json");
        let text = serde_json::to_vec_pretty(self)?;
        crate::atomic_file::write_atomic(&json, |w| w.write_all(&text)).map_err(|error| {
            ReportError::Write {
                path: json.clone(),
                error,
            }
        })?;
        let mut written = vec![json];
        let i50 = self.levels.iter().position(|&q| (q - 0.5).abs() < 1e-9);
        let i90 = self.levels.iter().position(|&q| (q - 0.9).abs() < 1e-9);
        let (Some(i50), Some(i90)) = (i50, i90) else {
            return Ok(written);
        };
        for c in &self.series {
            let all: Vec<&Point> = self
                .points
                .iter()
                .filter(|p| p.key.as_str() == c.name)
                .collect();
            if all.len() < 2 {
                continue;
            }
            // About one point per pixel column stays legible: long tails show their end.
            let pts = &all[all.len().saturating_sub(CHART_POINTS)..];
            let t0 = pts[0].ts;
            let x: Vec<f64> = pts.iter().map(|p| (p.ts - t0) as f64 / 3600.0).collect();
            let actual: Vec<f64> = pts.iter().map(|p| p.actual).collect();
            let p50: Vec<f64> = pts.iter().map(|p| p.quantiles[i50]).collect();
            let p90: Vec<f64> = pts.iter().map(|p| p.quantiles[i90]).collect();
            let title = if pts.len() < all.len() {
                format!(
                    "{} — peak over next {}s (last {} of {} origins)",
                    c.name,
                    self.window,
                    pts.len(),
                    all.len()
                )
            } else {
                format!("{} — peak over next {}s", c.name, self.window)
            };
            let path = dir.join(format!("{}.png", chart::file_stem(&c.name)));
            chart::draw(
                &Chart {
                    title: &title,
                    x_label: "hours from the first origin shown",
                    y_label: "peak demand",
                    x: &x,
                    bands: vec![Band {
                        label: "p50–p90",
                        lower: &p50,
                        upper: &p90,
                        rgb: (30, 100, 220),
                    }],
                    lines: vec![
                        Line {
                            label: "actual peak",
                            y: &actual,
                            rgb: (20, 20, 20),
                        },
                        Line {
                            label: "p50",
                            y: &p50,
                            rgb: (30, 100, 220),
                        },
                    ],
                },
                &path,
                1200,
                500,
            )?;
            written.push(path);
        }
        Ok(written)
    }

    /// Writes every scored origin's forecast as CSV: `timestamp,p50,p90,p95,p99` (RFC 3339 UTC;
    /// a `series` column follows `timestamp` when there are several series), so anyone can score
    /// the forecasts on their own.
    pub fn write_forecasts_csv(&self, path: &Path) -> Result<(), ForecastsCsvError> {
        let many = self.series.len() > 1;
        let err = |error| ForecastsCsvError {
            path: path.to_path_buf(),
            error,
        };
        crate::atomic_file::check_replaceable(path, "a forecasts CSV prescale wrote", |line| {
            let mut cols = line.split(',');
            cols.next() == Some("timestamp")
                && cols.enumerate().all(|(i, c)| {
                    (i == 0 && c == "series")
                        || c.strip_prefix('p').is_some_and(|l| {
                            !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit() || b == b'.')
                        })
                })
        })
        .map_err(err)?;
        crate::atomic_file::write_atomic(path, |w| {
            let mut out = csv::Writer::from_writer(w);
            let mut header = vec!["timestamp".to_string()];
            if many {
                header.push("series".into());
            }
            header.extend(self.levels.iter().map(|q| format!("p{}", level_name(*q))));
            out.write_record(&header)?;
            for p in &self.points {
                let ts = crate::series::format_timestamp(p.ts);
                let mut rec = vec![ts];
                if many {
                    rec.push(p.key.to_string());
                }
                rec.extend(p.quantiles.iter().map(|v| v.to_string()));
                out.write_record(&rec)?;
            }
            out.flush()
        })
        .map_err(|error| ForecastsCsvError {
            path: path.to_path_buf(),
            error,
        })
    }
}

/// `0.9` → `90`, `0.995` → `99.5`.
pub fn level_name(q: f64) -> String {
    let s = format!("{:.1}", q * 100.0);
    s.trim_end_matches(".0").to_string()
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let cut: String = s.chars().take(n - 1).collect();
        format!("{cut}…")
    }
}
