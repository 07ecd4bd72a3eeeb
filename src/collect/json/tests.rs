use super::*;
use proptest::prelude::*;

#[test]
fn decimals_match_std() {
    for s in [
        "0",
        "1",
        "-1",
        "12.5",
        "0.1",
        "0.30000000000000004",
        "1e3",
        "1.5E-7",
        "+2",
        "123456789012345678901234",
        "9007199254740993",
        "1700000000",
        "1700000000.123",
        "0.000000000000000000000001",
    ] {
        let want: f64 = s.parse().unwrap();
        assert_eq!(parse_decimal(s.as_bytes()), Some(want), "{s}");
    }
    for s in ["", "-", ".", "1.2.3", "abc", "1e", "--1"] {
        assert_eq!(parse_decimal(s.as_bytes()), s.parse::<f64>().ok(), "{s}");
    }
}

proptest! {
    #[test]
    fn any_float_round_trips(v in proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL | proptest::num::f64::ZERO) {
        // Go prints shortest round-trip text; so does Rust's Display.
        let s = v.to_string();
        prop_assert_eq!(parse_decimal(s.as_bytes()), Some(v));
    }

    #[test]
    fn fast_points_match_std(ts in 0u64..4_000_000_000, frac in 0u32..1000, v in any::<f64>().prop_filter("finite", |v| v.is_finite())) {
        let pair = format!("[{ts}.{frac:03},\"{v}\"]");
        let want = Point { ts: format!("{ts}.{frac:03}").parse().unwrap(), value: v };
        // The fast path either declines (very long digit strings) or agrees with std.
        if let Some((p, next)) = fast_point(format!("{pair},").as_bytes(), 0) {
            prop_assert_eq!(next, pair.len());
            prop_assert_eq!(p, want);
        }
        let body = format!(r#"{{"status":"success","data":{{"resultType":"matrix","result":[{{"metric":{{}},"values":[{pair},{pair}]}}]}}}}"#);
        let Some(QueryData::Matrix(m)) = parse_envelope(body.as_bytes()).unwrap().data else {
            panic!("not a matrix")
        };
        prop_assert_eq!(&m[0].values, &vec![want, want]);
    }

    #[test]
    fn never_panics(body in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse_envelope(&body);
    }

    #[test]
    fn never_panics_on_mangled_answers(cut in 0usize..200, flip in 0usize..200, byte in any::<u8>()) {
        let mut body = br#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"a":"b\u00e9"},"values":[[1,"1.5"],[2,"NaN"]]}]},"warnings":["w"]}"#.to_vec();
        let n = body.len();
        body[flip % n] = byte;
        body.truncate(cut.min(n));
        let _ = parse_envelope(&body);
    }
}

#[test]
fn reads_envelopes() {
    let e = parse_envelope(br#" {"status":"success","infos":[{"x":[1,true,null]}],"data":{"result":[{"metric":{"k":"v\"\u00e9\ud83d\ude00"},"value":[1.5,"2"],"histogram":{}}],"resultType":"vector"}} "#).unwrap();
    assert_eq!(e.status.as_deref(), Some("success"));
    let Some(QueryData::Vector(v)) = e.data else {
        panic!("not a vector")
    };
    assert_eq!(v[0].metric["k"], "v\"é😀");
    assert_eq!(
        v[0].value,
        Some(Point {
            ts: 1.5,
            value: 2.0
        })
    );

    let e = parse_envelope(
        br#"{"status":"error","errorType":"bad_data","error":"parse error","data":null}"#,
    )
    .unwrap();
    assert_eq!(e.error.as_deref(), Some("parse error"));
    assert!(e.data.is_none());

    let t = parse_envelope(br#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"2"#).unwrap_err();
    assert!(t.truncated, "{}", t.message);
    let m = parse_envelope(br#"{"status":"success"}x"#).unwrap_err();
    assert!(!m.truncated);
    let deep = "[".repeat(1000);
    let d = parse_envelope(format!(r#"{{"x":{deep}"#).as_bytes()).unwrap_err();
    assert!(d.message.contains("nested"), "{}", d.message);
}
