//! Task-queue inputs: tasks (`id,submit,duration,priority,cpu,mem,gpu` CSV, optionally
//! followed by `tenant` and `bid` columns, or a seeded generator) and nodes (`[[node]]` TOML or
//! a generator), with errors that name the file and line (or node and key): task files are read
//! by the history reader's `series::csv::CsvFile`.

use crate::series::csv::{excerpt, CsvError, CsvFile};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};

/// The columns a task file must have, in this order.
pub const TASK_HEADER: [&str; 7] = ["id", "submit", "duration", "priority", "cpu", "mem", "gpu"];

/// Optional columns after [`TASK_HEADER`], in any order: who submitted the task (default
/// [`DEFAULT_TENANT`]) and what an hour of it is worth to them (default 1), for the
/// allocation policies.
pub const OPTIONAL_COLUMNS: [&str; 2] = ["tenant", "bid"];

/// The tenant of a task whose file has no `tenant` column.
pub const DEFAULT_TENANT: &str = "default";

/// A resource vector: CPU cores, memory (any unit, GiB in the generator) and GPUs.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Res {
    /// CPU cores.
    pub cpu: f64,
    /// Memory.
    pub mem: f64,
    /// GPUs.
    pub gpu: f64,
}

impl Res {
    /// The three components, for loops over resources.
    pub fn as_array(&self) -> [f64; 3] {
        [self.cpu, self.mem, self.gpu]
    }

    /// True when every component of `self` is at most `other`'s (with a little slack for
    /// sums of fractions).
    pub fn fits_in(&self, other: &Res) -> bool {
        self.as_array()
            .iter()
            .zip(other.as_array())
            .all(|(a, b)| *a <= b + 1e-9)
    }

    /// `self - other`.
    pub fn minus(&self, other: &Res) -> Res {
        Res {
            cpu: self.cpu - other.cpu,
            mem: self.mem - other.mem,
            gpu: self.gpu - other.gpu,
        }
    }

    /// Every component times `k`.
    pub fn scaled(&self, k: f64) -> Res {
        Res {
            cpu: self.cpu * k,
            mem: self.mem * k,
            gpu: self.gpu * k,
        }
    }

    /// `self + other`.
    pub fn plus(&self, other: &Res) -> Res {
        Res {
            cpu: self.cpu + other.cpu,
            mem: self.mem + other.mem,
            gpu: self.gpu + other.gpu,
        }
    }
}

/// One batch task.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Task {
    /// Unique id; ties between simultaneous events are broken by it.
    pub id: u64,
    /// Submit time, seconds from the start of the run.
    pub submit: f64,
    /// Run time in seconds when it runs uninterrupted.
    pub duration: f64,
    /// Priority: higher runs first under the priority discipline.
    pub priority: i64,
    /// What it occupies on its node while running.
    pub req: Res,
    /// Who submitted it: the allocation policies share capacity between tenants.
    pub tenant: String,
    /// What running it is worth to its tenant (any unit, the same for all tasks): the market
    /// allocation gives scarce capacity to the highest bids.
    pub bid: f64,
}

/// One node of the cluster.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    /// Name, for reports.
    pub name: String,
    /// CPU cores.
    pub cpu: f64,
    /// Memory, in the tasks' unit.
    pub mem: f64,
    /// GPUs.
    #[serde(default)]
    pub gpu: f64,
    /// Weight for weighted round robin; default 1.
    #[serde(default = "one")]
    pub weight: f64,
}

fn one() -> f64 {
    1.0
}

impl Node {
    /// Its capacity as a vector.
    pub fn capacity(&self) -> Res {
        Res {
            cpu: self.cpu,
            mem: self.mem,
            gpu: self.gpu,
        }
    }
}

/// A problem with a task or node file: the file, and the line or node and key.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// The header is wrong.
    #[error("{path}:1: header is '{found}', expected '{}' optionally followed by '{}' and/or '{}'", TASK_HEADER.join(","), OPTIONAL_COLUMNS[0], OPTIONAL_COLUMNS[1])]
    Header {
        /// The file.
        path: PathBuf,
        /// The header as found.
        found: String,
    },
    /// The file cannot be read, is blank, or a row cannot be used: the file, the line and what
    /// is wrong (the history reader's errors, shared).
    #[error(transparent)]
    Csv(#[from] CsvError),
    /// The node file is not valid.
    #[error("{path}: {message}")]
    Nodes {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the node and key.
        message: String,
    },
    /// A `gen:` spec that cannot be read.
    #[error("{0}")]
    Spec(String),
}

/// Reads a task CSV, streamed record by record (a record longer than the reader's cap is an
/// error naming its line). Rows may come in any order (they are sorted by submit time, then
/// id); ids must be unique, times finite and not negative, durations positive, resources ≥ 0.
pub fn read_tasks(path: &Path) -> Result<Vec<Task>, TaskError> {
    tasks_from(CsvFile::open_path(path)?, path)
}

/// Parses task CSV text; `path` is only used in messages.
pub fn parse_tasks(bytes: &[u8], path: &Path) -> Result<Vec<Task>, TaskError> {
    tasks_from(CsvFile::open(bytes, path)?, path)
}

fn tasks_from<R: std::io::Read>(
    mut file: CsvFile<'_, R>,
    path: &Path,
) -> Result<Vec<Task>, TaskError> {
    let row_err = |line: u64, message: String| {
        TaskError::Csv(CsvError::Row {
            path: path.to_path_buf(),
            line,
            message,
        })
    };
    let header = file.header.clone();
    let extra = header.get(TASK_HEADER.len()..).unwrap_or_default();
    let known = |c: &String| OPTIONAL_COLUMNS.contains(&c.as_str());
    let twice = extra
        .iter()
        .enumerate()
        .any(|(i, c)| extra[..i].contains(c));
    if header.len() < TASK_HEADER.len()
        || header[..TASK_HEADER.len()] != TASK_HEADER
        || !extra.iter().all(known)
        || twice
    {
        return Err(TaskError::Header {
            path: path.to_path_buf(),
            found: excerpt(&header.join(",")),
        });
    }
    let column = |name: &str| header.iter().position(|c| c == name);
    let (tenant_col, bid_col) = (column("tenant"), column("bid"));
    let mut tasks = Vec::new();
    let mut seen = std::collections::HashMap::new();
    while let Some((record, line)) = file.next_row()? {
        let num = |i: usize| -> Result<f64, TaskError> {
            let f = &record[i];
            let name = TASK_HEADER[i];
            if f.is_empty() {
                return Err(row_err(line, format!("empty {name}")));
            }
            match f.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(v),
                Ok(_) => Err(row_err(
                    line,
                    format!("{name} '{}' is not finite", excerpt(f)),
                )),
                Err(_) => Err(row_err(
                    line,
                    format!("{name} '{}' is not a number", excerpt(f)),
                )),
            }
        };
        let id: u64 = record[0].parse().map_err(|_| {
            row_err(
                line,
                format!("id '{}' is not a whole number ≥ 0", excerpt(&record[0])),
            )
        })?;
        if let Some(first) = seen.insert(id, line) {
            return Err(row_err(
                line,
                format!("id {id} was already used on line {first}"),
            ));
        }
        let submit = num(1)?;
        let duration = num(2)?;
        let priority: i64 = record[3].parse().map_err(|_| {
            row_err(
                line,
                format!("priority '{}' is not a whole number", excerpt(&record[3])),
            )
        })?;
        let (cpu, mem, gpu) = (num(4)?, num(5)?, num(6)?);
        if submit < 0.0 {
            return Err(row_err(line, format!("submit {submit} is negative")));
        }
        if duration <= 0.0 {
            return Err(row_err(line, format!("duration {duration} must be > 0")));
        }
        for (name, v) in [("cpu", cpu), ("mem", mem), ("gpu", gpu)] {
            if v < 0.0 {
                return Err(row_err(line, format!("{name} {v} is negative")));
            }
        }
        let tenant = match tenant_col {
            Some(c) if record[c].trim().is_empty() => {
                return Err(row_err(line, "empty tenant".into()))
            }
            Some(c) => record[c].trim().to_string(),
            None => DEFAULT_TENANT.to_string(),
        };
        let bid = match bid_col {
            Some(c) => {
                let f = &record[c];
                match f.parse::<f64>() {
                    Ok(v) if v.is_finite() && v >= 0.0 => v,
                    Ok(_) => {
                        return Err(row_err(line, format!("bid '{f}' must be finite and ≥ 0")))
                    }
                    Err(_) => return Err(row_err(line, format!("bid '{f}' is not a number"))),
                }
            }
            None => 1.0,
        };
        tasks.push(Task {
            id,
            submit,
            duration,
            priority,
            req: Res { cpu, mem, gpu },
            tenant,
            bid,
        });
    }
    if tasks.is_empty() {
        return Err(CsvError::Empty {
            path: path.to_path_buf(),
            what: "has a header but no tasks",
        }
        .into());
    }
    sort_tasks(&mut tasks);
    Ok(tasks)
}

fn sort_tasks(tasks: &mut [Task]) {
    tasks.sort_by(|a, b| a.submit.total_cmp(&b.submit).then(a.id.cmp(&b.id)));
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeFile {
    node: Vec<Node>,
}

/// Reads a node TOML file: `[[node]]` tables with `name`, `cpu`, `mem`, optional `gpu` and
/// `weight`.
pub fn read_nodes(path: &Path) -> Result<Vec<Node>, TaskError> {
    let text = std::fs::read_to_string(path).map_err(|error| CsvError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    parse_nodes(&text, path)
}

/// Parses node TOML; `path` is only used in messages.
pub fn parse_nodes(text: &str, path: &Path) -> Result<Vec<Node>, TaskError> {
    let err = |message: String| TaskError::Nodes {
        path: path.to_path_buf(),
        message,
    };
    let file: NodeFile = toml::from_str(text).map_err(|e| err(e.to_string().trim().to_string()))?;
    if file.node.is_empty() {
        return Err(err("no [[node]] entries".into()));
    }
    let mut names = std::collections::HashSet::new();
    for (i, n) in file.node.iter().enumerate() {
        let what = format!("node {} ('{}')", i + 1, n.name);
        if n.name.trim().is_empty() {
            return Err(err(format!("node {}: name must not be empty", i + 1)));
        }
        if !names.insert(n.name.clone()) {
            return Err(err(format!("{what}: name is used twice")));
        }
        for (key, v) in [("cpu", n.cpu), ("mem", n.mem), ("gpu", n.gpu)] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(err(format!("{what}: {key} must be a number ≥ 0, got {v}")));
            }
        }
        if !(n.weight.is_finite() && n.weight > 0.0) {
            return Err(err(format!(
                "{what}: weight must be a number > 0, got {}",
                n.weight
            )));
        }
    }
    Ok(file.node)
}

/// The load the tasks offer the cluster, per resource: the resource-time they request
/// (request × duration, summed) over the capacity-time of the arrival period (first to last
/// submit). This is the realised figure behind the generator's `load`, which is only its
/// expectation. `NaN` for a resource the cluster has none of; `None` when every task arrives
/// at one instant (no arrival period to divide by).
pub fn offered_load(tasks: &[Task], nodes: &[Node]) -> Option<Res> {
    let first = tasks.iter().map(|t| t.submit).fold(f64::INFINITY, f64::min);
    let last = tasks
        .iter()
        .map(|t| t.submit)
        .fold(f64::NEG_INFINITY, f64::max);
    let period = last - first;
    if period.is_nan() || period <= 0.0 {
        return None;
    }
    let asked = tasks
        .iter()
        .fold(Res::default(), |a, t| a.plus(&t.req.scaled(t.duration)));
    let cap = nodes
        .iter()
        .fold(Res::default(), |a, n| a.plus(&n.capacity()));
    let share = |u: f64, c: f64| if c > 0.0 { u / (c * period) } else { f64::NAN };
    Some(Res {
        cpu: share(asked.cpu, cap.cpu),
        mem: share(asked.mem, cap.mem),
        gpu: share(asked.gpu, cap.gpu),
    })
}

/// `gen:N` → `Some(N)`; anything else → `None`.
pub fn gen_count(spec: &str) -> Result<Option<usize>, TaskError> {
    let Some(n) = spec.strip_prefix("gen:") else {
        return Ok(None);
    };
    match n.parse::<usize>() {
        Ok(n) if n > 0 && n <= MAX_GENERATED => Ok(Some(n)),
        _ => Err(TaskError::Spec(format!(
            "'{spec}': expected gen:N with N a whole number from 1 to {MAX_GENERATED}"
        ))),
    }
}

/// Most tasks or nodes `gen:N` makes: ten million tasks are a few GB of simulation state
/// already, and a larger N would only fail to allocate (an abort, not an error).
pub const MAX_GENERATED: usize = 10_000_000;

/// `n` generated nodes: 32 cores and 128 GiB each, every fourth with 4 GPUs; weight = cores.
/// Every eighth node is twice as large so that placements that weigh nodes differ from those
/// that do not.
pub fn generate_nodes(n: usize) -> Vec<Node> {
    (0..n)
        .map(|i| {
            let big = if i % 8 == 7 { 2.0 } else { 1.0 };
            Node {
                name: format!("node-{i:04}"),
                cpu: 32.0 * big,
                mem: 128.0 * big,
                gpu: if i % 4 == 3 { 4.0 } else { 0.0 },
                weight: 32.0 * big,
            }
        })
        .collect()
}

/// `n` tasks from a seeded generator, arriving as a Poisson process sized so that on average
/// they ask for `load` of the cluster's CPU: sizes from 0.5 to 8 cores with 2–8 GiB per core,
/// up to a tenth asking for 1–2 GPUs (only where the cluster has GPUs, and no more than keep
/// the GPUs as loaded as the CPUs), durations log-normal around
/// 10 minutes (heavy-tailed, as batch jobs are, cut at two hours), priorities 0–9.
///
/// Tasks come from three tenants with different mixes (`tenant_of`): `ml` (every GPU task
/// and most memory-heavy ones, bidding high), `web` (mostly short tasks, bidding in the
/// middle) and `batch` (the rest, long-running, bidding low). Tenants and bids are drawn from
/// a second stream of the seed, so every other field is what it was before tenants existed.
pub fn generate_tasks(n: usize, nodes: &[Node], load: f64, seed: u64) -> Vec<Task> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut tenant_rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7e4a_4e75);
    let cluster_cpu: f64 = nodes.iter().map(|n| n.cpu).sum();
    let max_gpu = nodes.iter().map(|n| n.gpu).fold(0.0, f64::max);
    let max_cpu = nodes.iter().map(|n| n.cpu).fold(0.0, f64::max);
    let max_mem = nodes.iter().map(|n| n.mem).fold(0.0, f64::max);
    // Mean cores 2.5ish × mean duration: arrival rate follows from the wanted load.
    let sizes = [0.5, 1.0, 1.0, 2.0, 2.0, 4.0, 8.0];
    let mean_cpu = sizes.iter().sum::<f64>() / sizes.len() as f64;
    let (mu, sigma) = (600f64.ln() - 0.5, 1.0);
    let mean_dur = (mu + sigma * sigma / 2.0).exp();
    let rate = (load.max(0.01) * cluster_cpu) / (mean_cpu * mean_dur);
    // GPU tasks are as many as keep the GPUs as busy as the CPUs (at most a tenth), so a
    // small GPU pool does not become a bottleneck the CPU load setting cannot see.
    let cluster_gpu: f64 = nodes.iter().map(|n| n.gpu).sum();
    // A NaN here would reach `gen_bool`, which panics: the CLI refuses such a load, and a
    // library caller gets no GPU tasks rather than a crash.
    let p_gpu = (load * cluster_gpu / (rate * 1.5 * mean_dur)).clamp(0.0, 0.1);
    let p_gpu = if p_gpu.is_finite() { p_gpu } else { 0.0 };
    let mut t = 0.0;
    (0..n)
        .map(|i| {
            let u: f64 = rng.gen_range(f64::EPSILON..1.0);
            t += -u.ln() / rate;
            let z = normal(&mut rng);
            let duration = (mu + sigma * z).exp().clamp(1.0, 7_200.0);
            let cpu = sizes[rng.gen_range(0..sizes.len())].min(max_cpu.max(0.5));
            let mem = (cpu * f64::from(rng.gen_range(2u32..=8))).min(max_mem.max(1.0));
            let gpu = if max_gpu >= 1.0 && rng.gen_bool(p_gpu) {
                f64::from(rng.gen_range(1u32..=2)).min(max_gpu)
            } else {
                0.0
            };
            let req = Res { cpu, mem, gpu };
            let duration = duration.round().max(1.0);
            let (tenant, base) = tenant_of(&req, duration, &mut tenant_rng);
            // Log-normal spread around the tenant's price, to two decimals.
            let bid = (base * (0.3 * normal(&mut tenant_rng)).exp() * 100.0).round() / 100.0;
            Task {
                id: i as u64,
                submit: (t * 1000.0).round() / 1000.0,
                duration,
                priority: rng.gen_range(0..10),
                req,
                tenant: tenant.to_string(),
                bid,
            }
        })
        .collect()
}

/// The generator's tenant for a task of this shape, and the tenant's base bid: GPU tasks are
/// `ml`'s; memory-heavy ones (≥ 6 GiB per core) `ml`'s half the time; short ones (under five
/// minutes) `web`'s 70 % of the time; the rest `batch`'s. So the tenants differ in what they
/// ask for, which is what makes sharing between them a question.
fn tenant_of(req: &Res, duration: f64, rng: &mut ChaCha8Rng) -> (&'static str, f64) {
    let heavy = req.cpu > 0.0 && req.mem / req.cpu >= 6.0;
    if req.gpu > 0.0 || (heavy && rng.gen_bool(0.5)) {
        ("ml", 3.0)
    } else if duration < 300.0 && rng.gen_bool(0.7) {
        ("web", 2.0)
    } else {
        ("batch", 1.0)
    }
}

/// A standard normal draw (Box–Muller), so the generator needs no extra crate.
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Writes tasks back as CSV in the format [`read_tasks`] reads.
pub fn write_tasks(path: &Path, tasks: &[Task]) -> std::io::Result<()> {
    crate::atomic_file::write_atomic(path, |w| {
        let mut out = csv::Writer::from_writer(w);
        out.write_record(TASK_HEADER.iter().chain(&OPTIONAL_COLUMNS))?;
        for t in tasks {
            out.write_record([
                t.id.to_string(),
                t.submit.to_string(),
                t.duration.to_string(),
                t.priority.to_string(),
                t.req.cpu.to_string(),
                t.req.mem.to_string(),
                t.req.gpu.to_string(),
                t.tenant.clone(),
                t.bid.to_string(),
            ])?;
        }
        out.flush()?;
        Ok(())
    })
}

#[cfg(test)]
mod tests;
