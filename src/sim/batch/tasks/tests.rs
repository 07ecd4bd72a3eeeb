use super::*;

fn err(text: &str) -> String {
    parse_tasks(text.as_bytes(), Path::new("tasks.csv"))
        .unwrap_err()
        .to_string()
}

#[test]
fn reads_and_sorts_tasks() {
    let t = parse_tasks(
        b"id,submit,duration,priority,cpu,mem,gpu\n2,10,5,1,1,2,0\n1,10,3,0,0.5,1,1\n0,20,1,0,1,1,0\n",
        Path::new("t.csv"),
    )
    .unwrap();
    assert_eq!(t.iter().map(|t| t.id).collect::<Vec<_>>(), vec![1, 2, 0]);
    assert!(t.iter().all(|t| t.tenant == DEFAULT_TENANT && t.bid == 1.0));
    assert_eq!(
        t[0].req,
        Res {
            cpu: 0.5,
            mem: 1.0,
            gpu: 1.0
        }
    );
}

#[test]
fn tenant_and_bid_columns_are_optional_and_checked() {
    let t = parse_tasks(
        b"id,submit,duration,priority,cpu,mem,gpu,bid,tenant\n1,0,5,0,1,1,0,2.5,team-a\n2,1,5,0,1,1,0,0,team-b\n",
        Path::new("t.csv"),
    )
    .unwrap();
    assert_eq!((t[0].tenant.as_str(), t[0].bid), ("team-a", 2.5));
    assert_eq!((t[1].tenant.as_str(), t[1].bid), ("team-b", 0.0));
    let h = "id,submit,duration,priority,cpu,mem,gpu,tenant,bid\n";
    let e = err(&format!("{h}1,0,5,0,1,1,0,,1\n"));
    assert!(e.contains("tasks.csv:2: empty tenant"), "{e}");
    let e = err(&format!("{h}1,0,5,0,1,1,0,a,-1\n"));
    assert!(
        e.contains("tasks.csv:2: bid '-1' must be finite and ≥ 0"),
        "{e}"
    );
    let e = err(&format!("{h}1,0,5,0,1,1,0,a,lots\n"));
    assert!(e.contains("tasks.csv:2: bid 'lots' is not a number"), "{e}");
    let e = err("id,submit,duration,priority,cpu,mem,gpu,team\n1,0,5,0,1,1,0,a\n");
    assert!(
        e.contains("tasks.csv:1: header is") && e.contains("'tenant'"),
        "{e}"
    );
    let e = err("id,submit,duration,priority,cpu,mem,gpu,bid,bid\n1,0,5,0,1,1,0,1,1\n");
    assert!(e.contains("tasks.csv:1: header is"), "{e}");
}

#[test]
fn generated_tenants_differ_in_mix() {
    let nodes = generate_nodes(20);
    let t = generate_tasks(2000, &nodes, 0.85, 42);
    let of = |name: &str| t.iter().filter(|t| t.tenant == name).collect::<Vec<_>>();
    let (ml, web, batch) = (of("ml"), of("web"), of("batch"));
    assert_eq!(ml.len() + web.len() + batch.len(), t.len());
    assert!(ml.len() > 100 && web.len() > 100 && batch.len() > 100);
    let mean =
        |v: &[&Task], f: fn(&Task) -> f64| v.iter().map(|t| f(t)).sum::<f64>() / v.len() as f64;
    // Every GPU task is ml's; web's tasks are shorter than batch's; ml bids highest.
    assert!(t
        .iter()
        .filter(|t| t.req.gpu > 0.0)
        .all(|t| t.tenant == "ml"));
    assert!(mean(&web, |t| t.duration) < mean(&batch, |t| t.duration) / 2.0);
    assert!(mean(&ml, |t| t.bid) > mean(&web, |t| t.bid));
    assert!(mean(&web, |t| t.bid) > mean(&batch, |t| t.bid));
    assert!(mean(&ml, |t| t.req.mem / t.req.cpu) > mean(&batch, |t| t.req.mem / t.req.cpu));
}

#[test]
fn bad_task_files_name_file_and_line() {
    let h = "id,submit,duration,priority,cpu,mem,gpu\n";
    let e = err("");
    assert!(e.contains("tasks.csv: is empty"), "{e}");
    let e = err(h);
    assert!(e.contains("no tasks"), "{e}");
    let e = err("id,submit,duration\n1,2,3\n");
    assert!(
        e.contains("tasks.csv:1: header is 'id,submit,duration'"),
        "{e}"
    );
    let e = err(&format!("{h}1,0,10,0,1,1,0\nx,0,10,0,1,1,0\n"));
    assert!(e.contains("tasks.csv:3: id 'x'"), "{e}");
    let e = err(&format!("{h}1,0,10,0,1,1,0\n1,5,10,0,1,1,0\n"));
    assert!(
        e.contains("tasks.csv:3: id 1 was already used on line 2"),
        "{e}"
    );
    let e = err(&format!("{h}1,0,abc,0,1,1,0\n"));
    assert!(
        e.contains("tasks.csv:2: duration 'abc' is not a number"),
        "{e}"
    );
    let e = err(&format!("{h}1,0,0,0,1,1,0\n"));
    assert!(e.contains("tasks.csv:2: duration 0 must be > 0"), "{e}");
    let e = err(&format!("{h}1,-1,5,0,1,1,0\n"));
    assert!(e.contains("tasks.csv:2: submit -1 is negative"), "{e}");
    let e = err(&format!("{h}1,0,5,0,-1,1,0\n"));
    assert!(e.contains("cpu -1 is negative"), "{e}");
    let e = err(&format!("{h}1,0,5,0,1,1\n"));
    assert!(e.contains("tasks.csv:2:") && e.contains("fields"), "{e}");
    let e = err(&format!("{h}1,0,5,high,1,1,0\n"));
    assert!(e.contains("priority 'high'"), "{e}");
    let e = err(&format!("{h}1,0,5,0,1,NaN,0\n"));
    assert!(e.contains("mem 'NaN' is not finite"), "{e}");
    let e = read_tasks(Path::new("/nonexistent/t.csv"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("/nonexistent/t.csv"), "{e}");
}

#[test]
fn task_files_are_streamed_and_long_records_refused_by_line() {
    // Read from the file as a stream: a line past the reader's cap is refused with its
    // line (CRLF counted right) and a short excerpt; a long field in a message is cut.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.csv");
    let mut body = b"id,submit,duration,priority,cpu,mem,gpu\r\n1,0,5,0,1,1,0\r\n".to_vec();
    body.extend(std::iter::repeat_n(b'7', 3 << 20));
    body.extend(b",0,5,0,1,1,0\r\n");
    std::fs::write(&p, &body).unwrap();
    let e = read_tasks(&p).unwrap_err().to_string();
    assert!(
        e.contains("t.csv:3: a record longer than 1 MiB"),
        "{e:.300}"
    );
    assert!(e.len() < 300, "{} bytes", e.len());
    let field = "x".repeat(100_000);
    let e = parse_tasks(
        format!("id,submit,duration,priority,cpu,mem,gpu\n1,{field},5,0,1,1,0\n").as_bytes(),
        Path::new("tasks.csv"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("tasks.csv:2: submit 'xxx"), "{e:.300}");
    assert!(e.len() < 200, "{} bytes", e.len());
}

#[test]
fn nodes_parse_and_errors_name_node_and_key() {
    let p = Path::new("nodes.toml");
    let n = parse_nodes("[[node]]\nname = \"a\"\ncpu = 4\nmem = 16\n[[node]]\nname = \"b\"\ncpu = 8\nmem = 32\ngpu = 1\nweight = 2\n", p).unwrap();
    assert_eq!(n.len(), 2);
    assert_eq!(n[0].weight, 1.0);
    assert_eq!(n[1].gpu, 1.0);
    let e = parse_nodes("[[node]]\nname = \"a\"\ncpu = -4\nmem = 16\n", p)
        .unwrap_err()
        .to_string();
    assert!(e.contains("nodes.toml: node 1 ('a'): cpu"), "{e}");
    let e = parse_nodes("[[node]]\nname = \"a\"\ncpu = 4\nmem = 16\ncolour = 1\n", p)
        .unwrap_err()
        .to_string();
    assert!(e.contains("nodes.toml") && e.contains("colour"), "{e}");
    let e = parse_nodes("[[node]]\nname = \"a\"\ncpu = 4\n", p)
        .unwrap_err()
        .to_string();
    assert!(e.contains("mem"), "{e}");
    let e = parse_nodes(
        "[[node]]\nname = \"a\"\ncpu = 4\nmem = 1\n[[node]]\nname = \"a\"\ncpu = 4\nmem = 1\n",
        p,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("used twice"), "{e}");
    let e = parse_nodes("[[node]]\nname = \"a\"\ncpu = 4\nmem = 1\nweight = 0\n", p)
        .unwrap_err()
        .to_string();
    assert!(e.contains("weight"), "{e}");
}

#[test]
fn generator_is_deterministic_and_round_trips() {
    let nodes = generate_nodes(8);
    let a = generate_tasks(500, &nodes, 0.8, 7);
    let b = generate_tasks(500, &nodes, 0.8, 7);
    let c = generate_tasks(500, &nodes, 0.8, 8);
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert!(a.windows(2).all(|w| w[0].submit <= w[1].submit));
    assert!(a
        .iter()
        .all(|t| nodes.iter().any(|n| t.req.fits_in(&n.capacity()))));
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.csv");
    write_tasks(&p, &a).unwrap();
    assert_eq!(read_tasks(&p).unwrap(), a);
    assert_eq!(gen_count("gen:10").unwrap(), Some(10));
    assert_eq!(gen_count("x.csv").unwrap(), None);
    assert!(gen_count("gen:x").is_err());
}
