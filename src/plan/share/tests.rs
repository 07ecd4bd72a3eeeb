//! Hand-checked allocations, and the properties every policy keeps.

use super::*;
use proptest::prelude::*;

const GB: f64 = 1e9;

fn c(name: &str, min: u32, want: u32, cpu: f64, mem: f64) -> Claim {
    Claim::new(name, min, want, Resources::new(cpu, mem))
}

/// The DRF paper's example (Ghodsi et al., NSDI 2011, §4): 9 CPUs and 18 GB; user A's tasks
/// need <1 CPU, 4 GB>, user B's <3 CPU, 1 GB>. DRF gives A three tasks (3 CPU, 12 GB: a
/// dominant share of 2/3 in memory) and B two (6 CPU, 2 GB: 2/3 in CPU).
#[test]
fn drf_on_the_papers_two_user_example() {
    let claims = [c("A", 0, 100, 1.0, 4.0 * GB), c("B", 0, 100, 3.0, 1.0 * GB)];
    let got = allocate(Allocation::Fair, &claims, Resources::new(9.0, 18.0 * GB));
    assert_eq!(got.replicas, vec![3, 2]);
}

/// Weights scale the dominant shares: at weight 2, team A may hold twice B's dominant share.
/// One resource, 12 cores of 1-core replicas, both wanting 12: A 8, B 4.
#[test]
fn drf_weights_tilt_the_split() {
    let mut a = c("a", 0, 12, 1.0, 0.0);
    a.weight = 2.0;
    let got = allocate(
        Allocation::Fair,
        &[a, c("b", 0, 12, 1.0, 0.0)],
        Resources::new(12.0, 0.0),
    );
    assert_eq!(got.replicas, vec![8, 4]);
}

/// DRF is between teams: a team of two workloads gets no more than a team of one.
#[test]
fn drf_shares_between_teams_not_workloads() {
    let mut a1 = c("a1", 0, 10, 1.0, 0.0);
    let mut a2 = c("a2", 0, 10, 1.0, 0.0);
    a1.team = "a".into();
    a2.team = "a".into();
    let mut b = c("b1", 0, 10, 1.0, 0.0);
    b.team = "b".into();
    let got = allocate(Allocation::Fair, &[a1, a2, b], Resources::new(10.0, 0.0));
    assert_eq!(got.replicas, vec![3, 2, 5]);
}

/// 6.5 cores. `hi` (priority 100, 1-core replicas, min 1) wants 8; `lo` (priority 0,
/// half-core replicas, min 2) wants 8. Minimums first: 1 + 1 = 2 cores. `hi` grows to 5
/// (6 cores used); its sixth replica does not fit in the half core left, and `lo`'s would,
/// but `lo` stays at its minimum: a lower priority never holds more than its minimum while a
/// higher one is short.
#[test]
fn priority_cuts_the_lower_first_and_never_starves_the_higher() {
    let mut hi = c("hi", 1, 8, 1.0, 0.0);
    hi.priority = 100;
    let lo = c("lo", 2, 8, 0.5, 0.0);
    let got = allocate(
        Allocation::Priority,
        &[lo.clone(), hi.clone()],
        Resources::new(6.5, 0.0),
    );
    assert_eq!(got.replicas, vec![2, 5]);
    // Room for all of `hi`: `lo` gets what is left, 6 of its half cores of 11 − 8 = 3 cores.
    let got = allocate(Allocation::Priority, &[lo, hi], Resources::new(11.0, 0.0));
    assert_eq!(got.replicas, vec![6, 8]);
}

/// Equal priorities share round-robin: 7 cores, two workloads of 1 core wanting 5 each.
#[test]
fn priority_equals_share_evenly() {
    let got = allocate(
        Allocation::Priority,
        &[c("a", 0, 5, 1.0, 0.0), c("b", 0, 5, 1.0, 0.0)],
        Resources::new(7.0, 0.0),
    );
    assert_eq!(got.replicas, vec![4, 3]);
}

/// Bids 5, 3 and 1, each wanting 4 one-core replicas with a minimum of 1, in 7 cores: the
/// minimums take 3, the highest bid the 3 more it wants (4), then the next bid the last one
/// (2); the lowest keeps its minimum. The clearing price is the highest bid not served in
/// full: 3.
#[test]
fn market_serves_the_highest_bids_and_names_the_clearing_price() {
    let mut claims = [
        c("low", 1, 4, 1.0, 0.0),
        c("high", 1, 4, 1.0, 0.0),
        c("mid", 1, 4, 1.0, 0.0),
    ];
    claims[0].bid = 1.0;
    claims[1].bid = 5.0;
    claims[2].bid = 3.0;
    let got = allocate(Allocation::Market, &claims, Resources::new(7.0, 0.0));
    assert_eq!(got.replicas, vec![1, 4, 2]);
    assert_eq!(got.clearing_price, Some(3.0));
}

/// 10 cores of 1-core replicas. Shares: a 0.5 (wants 2), b 0.3 and c 0.2 (want 10 each).
/// Own shares: a 2 (of its 5), b 3, c 2. The 3 cores a leaves go out in proportion to the
/// shares, lowest usage ÷ share first: b (3/0.3 = c's 2/0.2, b first by name) → 4, c → 3,
/// b (4/0.3 < 3/0.2) → 5. So a 2, b 5, c 3, and the pool is full.
#[test]
fn static_shares_redistribute_what_a_team_leaves() {
    let mut claims = [
        c("a", 0, 2, 1.0, 0.0),
        c("b", 0, 10, 1.0, 0.0),
        c("c", 0, 10, 1.0, 0.0),
    ];
    claims[0].share = 0.5;
    claims[1].share = 0.3;
    claims[2].share = 0.2;
    let got = allocate(Allocation::Static, &claims, Resources::new(10.0, 0.0));
    assert_eq!(got.replicas, vec![2, 5, 3]);
    // Everyone wanting more than their share: each gets exactly its share.
    claims[0].want = 10;
    let got = allocate(Allocation::Static, &claims, Resources::new(10.0, 0.0));
    assert_eq!(got.replicas, vec![5, 3, 2]);
}

/// A team without a share gets only what the teams with one leave.
#[test]
fn static_without_a_share_comes_last() {
    let mut a = c("a", 0, 4, 1.0, 0.0);
    a.share = 0.5;
    let got = allocate(
        Allocation::Static,
        &[a.clone(), c("z", 0, 10, 1.0, 0.0)],
        Resources::new(10.0, 0.0),
    );
    assert_eq!(got.replicas, vec![4, 6]);
    a.want = 10;
    let got = allocate(
        Allocation::Static,
        &[a, c("z", 0, 10, 1.0, 0.0)],
        Resources::new(10.0, 0.0),
    );
    assert_eq!(got.replicas, vec![10, 0]);
}

const POLICIES: [Allocation; 4] = [
    Allocation::Priority,
    Allocation::Fair,
    Allocation::Static,
    Allocation::Market,
];

fn arb_claims() -> impl Strategy<Value = Vec<Claim>> {
    prop::collection::vec(
        (
            0u32..4,
            0u32..12,
            0.0f64..4.0,
            0.0f64..8.0,
            -5i32..5,
            0.1f64..4.0,
            0.0f64..0.3,
            0.0f64..10.0,
            0u8..4,
        ),
        1..12,
    )
    .prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(
                |(i, (min, extra, cpu, mem, priority, weight, share, bid, team))| Claim {
                    name: format!("w{i:02}"),
                    team: format!("t{team}"),
                    min,
                    want: min + extra,
                    request: Resources::new(cpu, mem),
                    priority,
                    weight,
                    share,
                    bid,
                },
            )
            .collect()
    })
}

fn wanted(claims: &[Claim]) -> Resources {
    let mut r = Resources::default();
    for c in claims {
        r.add_scaled(&c.request, c.want as f64);
    }
    r
}

proptest! {
    /// When everything wanted fits, every policy grants exactly what was wanted.
    #[test]
    fn no_scarcity_no_change(claims in arb_claims(), spare in 1.0f64..2.0) {
        let w = wanted(&claims);
        let cap = Resources::new(w.cpu * spare, w.memory * spare);
        for p in POLICIES {
            let got = allocate(p, &claims, cap);
            let want: Vec<u32> = claims.iter().map(|c| c.want).collect();
            prop_assert_eq!(&got.replicas, &want, "{}", p);
            prop_assert_eq!(got.clearing_price, None);
        }
    }

    /// Under scarcity: never below the minimum, never above the want, and nothing above the
    /// minimums granted beyond the capacity.
    #[test]
    fn every_policy_keeps_minimums_and_capacity(claims in arb_claims(), frac in 0.0f64..1.0) {
        let w = wanted(&claims);
        let cap = Resources::new(w.cpu * frac, w.memory * frac);
        for p in POLICIES {
            let got = allocate(p, &claims, cap);
            let mut mins = Resources::default();
            let mut used = Resources::default();
            for (c, &n) in claims.iter().zip(&got.replicas) {
                prop_assert!(n >= c.min.min(c.want) && n <= c.want, "{p}: {} got {n}", c.name);
                mins.add_scaled(&c.request, c.min as f64);
                used.add_scaled(&c.request, n as f64);
            }
            let slack = 1e-6;
            prop_assert!(used.cpu <= cap.cpu.max(mins.cpu) + slack, "{p}: cpu {} > {}", used.cpu, cap.cpu);
            prop_assert!(used.memory <= cap.memory.max(mins.memory) + slack, "{p}: mem");
        }
    }

    /// Priority: whenever a workload is short of what it wants, every lower priority holds
    /// only its minimum.
    #[test]
    fn priority_never_starves_a_higher_priority(claims in arb_claims(), frac in 0.0f64..1.0) {
        let w = wanted(&claims);
        let cap = Resources::new(w.cpu * frac, w.memory * frac);
        let got = allocate(Allocation::Priority, &claims, cap).replicas;
        for (hi, &gh) in claims.iter().zip(&got) {
            if gh < hi.want {
                for (lo, &gl) in claims.iter().zip(&got) {
                    if lo.priority < hi.priority {
                        prop_assert_eq!(gl, lo.min.min(lo.want), "{} short, {} above min", hi.name, lo.name);
                    }
                }
            }
        }
    }

    /// Market with replicas of one size is sorting by bid: minimums first, then the highest
    /// bids take all they want, in order, until the replicas run out.
    #[test]
    fn market_is_sorting_by_bid(claims in arb_claims(), slots in 0u32..80) {
        let claims: Vec<Claim> = claims
            .into_iter()
            .map(|c| Claim { request: Resources::new(1.0, 0.0), ..c })
            .collect();
        let got = allocate(Allocation::Market, &claims, Resources::new(slots as f64, 0.0)).replicas;
        let mut order: Vec<usize> = (0..claims.len()).collect();
        order.sort_by(|&a, &b| claims[b].bid.total_cmp(&claims[a].bid).then(claims[a].name.cmp(&claims[b].name)));
        let mut left = slots.saturating_sub(claims.iter().map(|c| c.min).sum());
        let total_want: u32 = claims.iter().map(|c| c.want).sum();
        let mut expect: Vec<u32> = claims.iter().map(|c| c.min).collect();
        if total_want <= slots {
            expect = claims.iter().map(|c| c.want).collect();
        } else {
            for i in order {
                let n = (claims[i].want - claims[i].min).min(left);
                expect[i] += n;
                left -= n;
            }
        }
        prop_assert_eq!(got, expect);
    }
}

fn decision(target: &str, from: u32, to: u32) -> Decision {
    Decision {
        at: 0,
        kind: if to > from {
            DecisionKind::ScaleUp
        } else {
            DecisionKind::Hold
        },
        target: target.into(),
        node: None,
        to_node: None,
        from,
        to,
        raw: to,
        forecast: None,
        current: None,
        guards: Vec::new(),
        reason: "planned".into(),
    }
}

fn spec(name: &str, min: u32, cpu: f64) -> WorkloadSpec {
    let mut s = WorkloadSpec::new(name, name, 10.0, 50);
    s.min_replicas = min;
    s.resources = Resources::new(cpu, 0.0);
    s
}

/// A pool of at most 2 nodes × 4 cores at 100 %: 8 cores. `web` (priority 10) wants 6 of
/// 1 core, `batch` (priority 0, min 1) wants 4: batch is cut to 2, from 3 → a scale-down,
/// with a `capped-priority` guard 4 → 2, the reason naming the policy and the 4 it would have
/// got, and the pool 0.5 node short.
#[test]
fn share_pools_cuts_decisions_and_says_so() {
    let mut pool = PoolSpec::new("gp", Resources::new(4.0, 0.0), 2);
    pool.target_utilization = 1.0;
    pool.allocation = Allocation::Priority;
    let mut web = spec("web", 1, 1.0);
    web.priority = 10;
    let specs = [web, spec("batch", 1, 1.0)];
    let mut ds = vec![decision("web", 4, 6), decision("batch", 3, 4)];
    let report = share_pools(std::slice::from_ref(&pool), &specs, &mut ds);
    assert_eq!(ds[0], decision("web", 4, 6));
    let b = &ds[1];
    assert_eq!((b.kind, b.to), (DecisionKind::ScaleDown, 2), "{b}");
    assert_eq!(
        b.guards,
        vec![Guard {
            kind: GuardKind::CappedPriority,
            before: 4,
            after: 2
        }]
    );
    assert!(
        b.reason
            .contains("capped by priority allocation: would have got 4"),
        "{}",
        b.reason
    );
    assert!(
        b.reason.contains("pool 'gp' short at max_nodes 2"),
        "{}",
        b.reason
    );
    assert_eq!(report.shortfall_nodes, vec![("gp".to_string(), 0.5)]);
    assert_eq!(
        report.cut_replicas,
        vec![("web".into(), 0), ("batch".into(), 2)]
    );

    // `none` (the default) reports the shortfall but cuts nobody.
    pool.allocation = Allocation::None;
    let mut ds = vec![decision("web", 4, 6), decision("batch", 3, 4)];
    let report = share_pools(&[pool], &specs, &mut ds);
    assert_eq!(ds, vec![decision("web", 4, 6), decision("batch", 3, 4)]);
    assert_eq!(report.shortfall_nodes[0].1, 0.5);
}

/// A team over its quota is cut among its own workloads even when the pool has room.
#[test]
fn quotas_cut_a_team_within_a_roomy_pool() {
    let mut pool = PoolSpec::new("gp", Resources::new(100.0, 0.0), 10);
    pool.allocation = Allocation::Fair;
    pool.quotas.insert("a".into(), Resources::new(5.0, 0.0));
    let mut specs = [spec("a1", 1, 1.0), spec("a2", 1, 1.0), spec("b", 1, 1.0)];
    specs[0].team = Some("a".into());
    specs[1].team = Some("a".into());
    let mut ds = vec![
        decision("a1", 1, 4),
        decision("a2", 1, 4),
        decision("b", 1, 9),
    ];
    let report = share_pools(&[pool], &specs, &mut ds);
    let to: Vec<u32> = ds.iter().map(|d| d.to).collect();
    assert_eq!(to, vec![3, 2, 9]);
    assert!(
        ds[0].reason.contains("team 'a' over its quota (5 cpu"),
        "{}",
        ds[0].reason
    );
    assert!(ds[0].guarded_by(GuardKind::CappedFair));
    assert_eq!(report.shortfall_nodes[0].1, 0.0);
}

/// A quota that states cpu only does not limit memory: a team whose workloads request memory
/// is cut by its cpu quota, not to its minimums (a left-out resource once read as a quota of 0).
#[test]
fn a_quota_limits_only_the_resources_it_states() {
    const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
    let mut pool = PoolSpec::new("gp", Resources::new(100.0, 400.0 * GIB), 10);
    pool.allocation = Allocation::Fair;
    pool.quotas.insert("a".into(), Resources::new(5.0, 0.0));
    let mut specs = [spec("a1", 1, 1.0), spec("a2", 1, 1.0), spec("b", 1, 1.0)];
    for s in &mut specs {
        s.resources.memory = GIB;
    }
    specs[0].team = Some("a".into());
    specs[1].team = Some("a".into());
    let mut ds = vec![
        decision("a1", 1, 4),
        decision("a2", 1, 4),
        decision("b", 1, 9),
    ];
    share_pools(&[pool], &specs, &mut ds);
    let to: Vec<u32> = ds.iter().map(|d| d.to).collect();
    assert_eq!(to, vec![3, 2, 9]);
    assert!(
        ds[0].reason.contains("team 'a' over its quota (5 cpu)"),
        "{}",
        ds[0].reason
    );
}

/// Market decisions name the clearing price.
#[test]
fn market_reason_shows_the_clearing_price() {
    let mut pool = PoolSpec::new("gp", Resources::new(4.0, 0.0), 1);
    pool.target_utilization = 1.0;
    pool.allocation = Allocation::Market;
    let mut specs = [spec("rich", 0, 1.0), spec("poor", 0, 1.0)];
    specs[0].bid = 2.5;
    specs[1].bid = 0.4;
    let mut ds = vec![decision("rich", 1, 3), decision("poor", 1, 3)];
    share_pools(&[pool], &specs, &mut ds);
    assert_eq!((ds[0].to, ds[1].to), (3, 1));
    assert!(
        ds[1]
            .reason
            .contains("bid 0.40, clearing price 0.40 (the highest bid not served in full)"),
        "{}",
        ds[1].reason
    );
}

proptest! {
    /// Through `share_pools`, with every policy: a pool big enough for everything wanted
    /// leaves every decision exactly as the planner made it.
    #[test]
    fn share_pools_without_scarcity_changes_nothing(
        wants in prop::collection::vec((0u32..20, 0u32..3, 0.0f64..2.0, -3i32..3), 1..20),
        policy in 0usize..4,
    ) {
        let specs: Vec<WorkloadSpec> = wants
            .iter()
            .enumerate()
            .map(|(i, &(_, min, cpu, prio))| {
                let mut s = spec(&format!("w{i}"), min, cpu);
                s.priority = prio;
                s.team = Some(format!("t{}", i % 3));
                s.bid = i as f64;
                s
            })
            .collect();
        let total: f64 = wants.iter().map(|&(to, min, cpu, _)| to.max(min) as f64 * cpu).sum();
        let mut pool = PoolSpec::new("gp", Resources::new(4.0, 0.0), (total / 4.0).ceil() as u32 + 1);
        pool.target_utilization = 1.0;
        pool.allocation = POLICIES[policy];
        let planned: Vec<Decision> = wants
            .iter()
            .enumerate()
            .map(|(i, &(to, min, _, _))| decision(&format!("w{i}"), 2, to.max(min)))
            .collect();
        let mut ds = planned.clone();
        let report = share_pools(&[pool], &specs, &mut ds);
        prop_assert_eq!(ds, planned);
        prop_assert!(report.cut_replicas.iter().all(|c| c.1 == 0));
        prop_assert_eq!(report.shortfall_nodes[0].1, 0.0);
    }
}

#[test]
fn sharing_keys_are_validated_by_name() {
    let mut w = WorkloadSpec::new("api", "d", 10.0, 5);
    w.weight = 0.0;
    let e = w.validate().unwrap_err().to_string();
    assert!(e.contains("\"api\"") && e.contains("weight"), "{e}");
    w.weight = 1.0;
    w.share = Some(1.5);
    assert!(w.validate().unwrap_err().to_string().contains("share"));
    w.share = None;
    w.bid = f64::NAN;
    assert!(w.validate().unwrap_err().to_string().contains("bid"));
    w.bid = 1.0;
    w.team = Some(" ".into());
    assert!(w.validate().unwrap_err().to_string().contains("team"));

    let mut p = PoolSpec::new("gp", Resources::new(4.0, 0.0), 3);
    p.quotas.insert("a".into(), Resources::new(1.0, 0.0));
    let e = p.validate().unwrap_err().to_string();
    assert!(e.contains("quotas.a") && e.contains("allocation"), "{e}");
    p.allocation = Allocation::Static;
    p.validate().unwrap();

    let mut a = WorkloadSpec::new("a", "d", 1.0, 5);
    a.share = Some(0.7);
    let mut b = WorkloadSpec::new("b", "d", 1.0, 5);
    b.share = Some(0.6);
    let problems = validate_shares(&[a, b], &[p]);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].0, "pool[0].allocation");
    assert!(problems[0].1.contains("1.300"), "{}", problems[0].1);
}

#[test]
fn allocation_parses_from_toml() {
    let p: PoolSpec = toml::from_str(
        "name = 'gp'\ncapacity = { cpu = 4 }\nboot_time = '1m'\nmax_nodes = 3\nallocation = 'fair'\nquotas = { team-a = { cpu = 2, memory = '4Gi' } }\n",
    )
    .unwrap();
    assert_eq!(p.allocation, Allocation::Fair);
    assert_eq!(p.quotas["team-a"].memory, 4.0 * 1024.0 * 1024.0 * 1024.0);
    let e = toml::from_str::<PoolSpec>(
        "name = 'gp'\ncapacity = { cpu = 4 }\nboot_time = '1m'\nmax_nodes = 3\nallocation = 'lottery'\n",
    )
    .unwrap_err();
    assert!(e.to_string().contains("lottery"), "{e}");
}
