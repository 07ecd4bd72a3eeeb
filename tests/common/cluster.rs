//! A synthetic Kubernetes cluster as kube-state-metrics would describe it: 40 nodes in three
//! pools, 30 Deployments and 2 StatefulSets (about 600 pods), a DaemonSet pod on every node and
//! a finished Job pod; changes made to it as people and the scheduler would (a Deployment
//! scaled by hand, a node removed with its pods rescheduled, pods moved); and its series as
//! OpenMetrics text for promtool.

use std::collections::BTreeMap;
use std::fmt::Write;

pub const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
/// The node label naming the pool, as Kubernetes writes it.
pub const POOL_LABEL: &str = "eks.amazonaws.com/nodegroup";

#[derive(Clone, Debug)]
pub struct Node {
    pub name: String,
    pub pool: &'static str,
    pub cpu: f64,
    pub memory: f64,
    pub unschedulable: bool,
}

#[derive(Clone, Debug)]
pub struct Workload {
    /// "deployment" or "statefulset".
    pub kind: &'static str,
    pub namespace: &'static str,
    pub name: String,
    pub replicas: u32,
    pub pool: &'static str,
    pub cpu: f64,
    pub memory: f64,
    /// Current ReplicaSet (Deployments).
    pub rs: String,
}

#[derive(Clone, Debug)]
pub struct Pod {
    pub namespace: String,
    pub name: String,
    pub node: Option<String>,
    pub created_by_kind: &'static str,
    pub created_by_name: String,
    pub phase: &'static str,
    pub cpu: f64,
    pub memory: f64,
}

#[derive(Clone, Debug)]
pub struct Cluster {
    pub nodes: Vec<Node>,
    pub workloads: Vec<Workload>,
    pub pods: Vec<Pod>,
    next_pod: u64,
}

const POOLS: [(&str, usize, f64, f64); 3] = [
    ("general", 20, 7.91, 28.0 * GIB),
    ("compute", 12, 15.89, 28.0 * GIB),
    ("highmem", 8, 7.91, 60.0 * GIB),
];

impl Cluster {
    pub fn new() -> Self {
        let mut c = Cluster {
            nodes: Vec::new(),
            workloads: Vec::new(),
            pods: Vec::new(),
            next_pod: 0,
        };
        for (pool, n, cpu, memory) in POOLS {
            for i in 0..n {
                c.nodes.push(Node {
                    name: format!("{pool}-{i:02}"),
                    pool,
                    cpu,
                    memory,
                    unschedulable: pool == "general" && i == 19,
                });
            }
        }
        let namespaces = ["shop", "ads", "data"];
        for i in 0..30 {
            let pool = POOLS[i % 3].0;
            let name = if i == 0 {
                "web".to_string()
            } else if i == 1 {
                "api".to_string()
            } else {
                format!("svc{i:02}")
            };
            c.workloads.push(Workload {
                kind: "deployment",
                namespace: namespaces[i % 3],
                rs: format!("{name}-5d{i:02}c"),
                name,
                replicas: if i == 0 { 20 } else { 10 + (i as u32 * 7) % 21 },
                pool: if i == 1 { "compute" } else { pool },
                cpu: 0.1 + (i % 5) as f64 * 0.05,
                memory: (256 + (i % 4) * 128) as f64 * 1024.0 * 1024.0,
            });
        }
        for (name, n) in [("db", 3), ("cache", 5)] {
            c.workloads.push(Workload {
                kind: "statefulset",
                namespace: "data",
                name: name.into(),
                replicas: n,
                pool: "highmem",
                cpu: 1.0,
                memory: 4.0 * GIB,
                rs: String::new(),
            });
        }
        for w in 0..c.workloads.len() {
            for _ in 0..c.workloads[w].replicas {
                c.add_pod(w, true);
            }
        }
        for n in 0..c.nodes.len() {
            let node = c.nodes[n].name.clone();
            c.pods.push(Pod {
                namespace: "kube-system".into(),
                name: format!("kube-proxy-{node}"),
                node: Some(node),
                created_by_kind: "DaemonSet",
                created_by_name: "kube-proxy".into(),
                phase: "Running",
                cpu: 0.1,
                memory: 128.0 * 1024.0 * 1024.0,
            });
        }
        c.pods.push(Pod {
            namespace: "data".into(),
            name: "backup-28409-x".into(),
            node: Some("highmem-00".into()),
            created_by_kind: "Job",
            created_by_name: "backup-28409".into(),
            phase: "Succeeded",
            cpu: 2.0,
            memory: 8.0 * GIB,
        });
        c
    }

    pub fn pod_count(&self) -> usize {
        self.pods.len()
    }

    /// Adds one pod of workload `w`, on the schedulable node of its pool holding the fewest
    /// pods (by name on ties), or unscheduled when `place` is false.
    fn add_pod(&mut self, w: usize, place: bool) {
        let wl = self.workloads[w].clone();
        let node = place.then(|| self.emptiest(wl.pool, None)).flatten();
        let (kind, creator, name) = if wl.kind == "deployment" {
            self.next_pod += 1;
            (
                "ReplicaSet",
                wl.rs.clone(),
                format!("{}-{:05x}", wl.rs, self.next_pod),
            )
        } else {
            let k = self
                .pods
                .iter()
                .filter(|p| p.created_by_name == wl.name)
                .count();
            ("StatefulSet", wl.name.clone(), format!("{}-{k}", wl.name))
        };
        self.pods.push(Pod {
            namespace: wl.namespace.into(),
            name,
            phase: if node.is_some() { "Running" } else { "Pending" },
            node,
            created_by_kind: kind,
            created_by_name: creator,
            cpu: wl.cpu,
            memory: wl.memory,
        });
    }

    fn emptiest(&self, pool: &str, except: Option<&str>) -> Option<String> {
        self.nodes
            .iter()
            .filter(|n| n.pool == pool && !n.unschedulable && Some(n.name.as_str()) != except)
            .min_by_key(|n| {
                (
                    self.pods
                        .iter()
                        .filter(|p| p.node.as_deref() == Some(&n.name))
                        .count(),
                    n.name.clone(),
                )
            })
            .map(|n| n.name.clone())
    }

    pub fn workload(&self, name: &str) -> usize {
        self.workloads
            .iter()
            .position(|w| w.name == name)
            .expect("a workload")
    }

    /// A person scales a Deployment up by hand: `placed` new pods get nodes, the rest wait.
    pub fn scale_by_hand(&mut self, name: &str, to: u32, placed: u32) {
        let w = self.workload(name);
        let from = self.workloads[w].replicas;
        self.workloads[w].replicas = to;
        for k in from..to {
            self.add_pod(w, k - from < placed);
        }
    }

    /// A node disappears; its Deployment pods are replaced (new names) on the rest of its pool.
    pub fn remove_node(&mut self, name: &str) {
        let i = self
            .nodes
            .iter()
            .position(|n| n.name == name)
            .expect("a node");
        self.nodes.remove(i);
        let gone: Vec<Pod> = self
            .pods
            .iter()
            .filter(|p| p.node.as_deref() == Some(name))
            .cloned()
            .collect();
        self.pods.retain(|p| p.node.as_deref() != Some(name));
        for p in gone {
            if p.created_by_kind == "ReplicaSet" {
                let w = self
                    .workloads
                    .iter()
                    .position(|w| w.rs == p.created_by_name)
                    .unwrap();
                self.add_pod(w, true);
            }
        }
    }

    /// The scheduler moves `n` pods of `name` from `from` to `to` (new pods, as a rollout would).
    pub fn move_pods(&mut self, name: &str, n: usize, from: &str, to: &str) {
        let w = self.workload(name);
        let rs = self.workloads[w].rs.clone();
        let mut moved = 0;
        for p in &mut self.pods {
            if moved < n && p.created_by_name == rs && p.node.as_deref() == Some(from) {
                self.next_pod += 1;
                p.name = format!("{rs}-{:05x}", self.next_pod);
                p.node = Some(to.to_string());
                moved += 1;
            }
        }
        assert_eq!(moved, n, "{name} has {n} pods on {from}");
    }

    /// What the planner should see: per node (name → (pool, unschedulable, replicas per
    /// workload)), replicas per workload, and per pool the allocatable of its schedulable
    /// nodes (all alike within a pool here, so the smallest is also the most common, which is
    /// what the planner takes).
    pub fn truth(&self) -> Truth {
        let mut nodes = BTreeMap::new();
        for n in &self.nodes {
            let mut reps: BTreeMap<String, u32> = BTreeMap::new();
            for p in self
                .pods
                .iter()
                .filter(|p| p.node.as_deref() == Some(&n.name) && p.phase != "Succeeded")
            {
                if let Some(w) = self.owner(p) {
                    *reps.entry(w).or_insert(0) += 1;
                }
            }
            nodes.insert(n.name.clone(), (n.pool.to_string(), n.unschedulable, reps));
        }
        let replicas = self
            .workloads
            .iter()
            .map(|w| (w.name.clone(), w.replicas))
            .collect();
        let mut pools: BTreeMap<String, (f64, f64)> = BTreeMap::new();
        for n in self.nodes.iter().filter(|n| !n.unschedulable) {
            let e = pools
                .entry(n.pool.to_string())
                .or_insert((f64::MAX, f64::MAX));
            e.0 = e.0.min(n.cpu);
            e.1 = e.1.min(n.memory);
        }
        Truth {
            nodes,
            replicas,
            pools,
        }
    }

    fn owner(&self, p: &Pod) -> Option<String> {
        self.workloads
            .iter()
            .find(|w| match p.created_by_kind {
                "ReplicaSet" => w.rs == p.created_by_name,
                "StatefulSet" => w.kind == "statefulset" && w.name == p.created_by_name,
                _ => false,
            })
            .map(|w| w.name.clone())
    }

    /// Appends this state's samples at every `step` in `[from, to)` to `om`, one family each.
    pub fn write_samples(&self, om: &mut Families, from: i64, to: i64, step: i64) {
        let mut series: Vec<(&'static str, String, f64)> = Vec::new();
        let pool_label = format!("label_{}", POOL_LABEL.replace(['.', '/', '-'], "_"));
        let job = "job=\"kube-state-metrics\"";
        for w in &self.workloads {
            let (spec, avail) = if w.kind == "deployment" {
                (
                    "kube_deployment_spec_replicas",
                    "kube_deployment_status_replicas_available",
                )
            } else {
                (
                    "kube_statefulset_replicas",
                    "kube_statefulset_status_replicas_available",
                )
            };
            let l = format!(
                "{job},namespace=\"{}\",{}=\"{}\"",
                w.namespace, w.kind, w.name
            );
            series.push((spec, l.clone(), w.replicas as f64));
            let running = self
                .pods
                .iter()
                .filter(|p| self.owner(p).as_deref() == Some(&w.name) && p.phase == "Running")
                .count();
            series.push((avail, l, running as f64));
            if w.kind == "deployment" {
                series.push((
                    "kube_replicaset_owner",
                    format!("{job},namespace=\"{}\",replicaset=\"{}\",owner_kind=\"Deployment\",owner_name=\"{}\",owner_is_controller=\"true\"", w.namespace, w.rs, w.name),
                    1.0,
                ));
            }
        }
        for p in &self.pods {
            let id = format!("{job},namespace=\"{}\",pod=\"{}\"", p.namespace, p.name);
            series.push((
                "kube_pod_info",
                format!(
                    "{id},node=\"{}\",created_by_kind=\"{}\",created_by_name=\"{}\",host_ip=\"10.0.0.1\",uid=\"u-{}\"",
                    p.node.as_deref().unwrap_or(""), p.created_by_kind, p.created_by_name, p.name
                ),
                1.0,
            ));
            for phase in ["Pending", "Running", "Succeeded", "Failed", "Unknown"] {
                series.push((
                    "kube_pod_status_phase",
                    format!("{id},phase=\"{phase}\""),
                    if phase == p.phase { 1.0 } else { 0.0 },
                ));
            }
            let node = p.node.as_deref().unwrap_or("");
            // Two containers, requests split between them, as the query must sum them.
            for (c, share) in [("app", 0.75), ("sidecar", 0.25)] {
                series.push((
                    "kube_pod_container_resource_requests",
                    format!(
                        "{id},container=\"{c}\",node=\"{node}\",resource=\"cpu\",unit=\"core\""
                    ),
                    p.cpu * share,
                ));
                series.push((
                    "kube_pod_container_resource_requests",
                    format!(
                        "{id},container=\"{c}\",node=\"{node}\",resource=\"memory\",unit=\"byte\""
                    ),
                    p.memory * share,
                ));
            }
        }
        for n in &self.nodes {
            let l = format!("{job},node=\"{}\"", n.name);
            series.push((
                "kube_node_status_allocatable",
                format!("{l},resource=\"cpu\",unit=\"core\""),
                n.cpu,
            ));
            series.push((
                "kube_node_status_allocatable",
                format!("{l},resource=\"memory\",unit=\"byte\""),
                n.memory,
            ));
            series.push((
                "kube_node_status_allocatable",
                format!("{l},resource=\"pods\",unit=\"integer\""),
                110.0,
            ));
            series.push((
                "kube_node_spec_unschedulable",
                l.clone(),
                if n.unschedulable { 1.0 } else { 0.0 },
            ));
            series.push((
                "kube_node_labels",
                format!(
                    "{l},{pool_label}=\"{}\",label_kubernetes_io_os=\"linux\"",
                    n.pool
                ),
                1.0,
            ));
        }
        for (metric, labels, v) in series {
            let text = om.0.entry(metric).or_default();
            let mut t = from;
            while t < to {
                let _ = writeln!(text, "{metric}{{{labels}}} {v} {t}");
                t += step;
            }
        }
    }
}

/// What the planner's view must equal.
#[derive(Debug, PartialEq)]
pub struct Truth {
    pub nodes: BTreeMap<String, (String, bool, BTreeMap<String, u32>)>,
    pub replicas: BTreeMap<String, u32>,
    pub pools: BTreeMap<String, (f64, f64)>,
}

/// OpenMetrics text being built, one family per metric (families must not interleave).
#[derive(Default)]
pub struct Families(pub BTreeMap<&'static str, String>);

impl Families {
    /// Appends `metric{labels} v t` samples of another family (a demand signal).
    pub fn push(
        &mut self,
        metric: &'static str,
        labels: &str,
        samples: impl IntoIterator<Item = (i64, f64)>,
    ) {
        let text = self.0.entry(metric).or_default();
        for (t, v) in samples {
            let _ = writeln!(text, "{metric}{{{labels}}} {v} {t}");
        }
    }

    pub fn text(&self) -> String {
        let mut out = String::new();
        for (m, body) in &self.0 {
            let _ = writeln!(out, "# TYPE {m} gauge");
            out.push_str(body);
        }
        out.push_str("# EOF\n");
        out
    }
}

/// `[[workload]]` entries for every workload of the cluster, all reading `demand`.
pub fn workloads_toml(c: &Cluster, demand: &str) -> String {
    let mut s = String::new();
    for w in &c.workloads {
        let _ = write!(
            s,
            "[[workload]]\nname = \"{}\"\ndemand = '{demand}'\nreplica_capacity = 10\nmin_replicas = 1\nmax_replicas = 100\nboot_time = \"2m\"\nscale_down_window = \"0s\"\n{} = \"{}/{}\"\n\n",
            w.name, w.kind, w.namespace, w.name
        );
    }
    s
}
