//! Random input to the TOML config parser: never a panic, and an error exactly where the input
//! is not valid (checked against an oracle written from the documented bounds, not from the
//! code under test).

use dataplane::config::{ConfigFile, L2fwdSection, PktgenSection};
use proptest::prelude::*;
use std::path::Path;

fn parse(text: &str) -> Result<ConfigFile, dataplane::config::ConfigError> {
    ConfigFile::parse(Path::new("prop.toml"), text)
}

/// Every way the file can be read: none of them may panic.
fn read_all_ways(text: &str) {
    if let Ok(c) = parse(text) {
        let _ = c.section::<L2fwdSection>("l2fwd");
        let _ = c.section::<PktgenSection>("pktgen");
        let _ = c.l2fwd();
    }
}

/// A TOML value of any type, with the edges of each.
fn value() -> impl Strategy<Value = toml::Value> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(toml::Value::Integer),
        prop_oneof![
            Just(0i64),
            Just(1),
            Just(-1),
            Just(86_400),
            Just(86_401),
            Just(60_000),
            Just(60_001),
            Just(65_535),
            Just(65_536),
            Just(31_536_000),
            Just(31_536_001),
            Just(i64::MAX),
            Just(i64::MIN),
            Just(u32::MAX as i64 + 1),
        ]
        .prop_map(toml::Value::Integer),
        any::<f64>().prop_map(toml::Value::Float),
        prop_oneof![
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(0.0),
            Just(-0.0),
            Just(1e-300),
            Just(31_536_000.0),
            Just(31_536_000.5),
        ]
        .prop_map(toml::Value::Float),
        any::<bool>().prop_map(toml::Value::Boolean),
        "(0[xX])?[0-9a-fA-F]{0,18}".prop_map(toml::Value::String),
        prop_oneof![
            Just("none"),
            Just("cpu"),
            Just("dma"),
            Just("auto"),
            Just(""),
            Just(" 0x3 ")
        ]
        .prop_map(|s| toml::Value::String(s.into())),
        ".*".prop_map(toml::Value::String),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop::collection::vec(inner, 0..4).prop_map(toml::Value::Array)
    })
}

const KEYS: &[&str] = &[
    "portmask",
    "stats_period",
    "mac_updating",
    "duration",
    "report",
    "copy",
    "copybreak",
    "dma",
    "dma_timeout_ms",
    "control",
    "allow_fault_injection",
    "grace_ms",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(KEYS).prop_map(str::to_owned),
        1 => "[a-z_]{1,16}",
    ]
}

fn int_in(v: &toml::Value, lo: i64, hi: i64) -> bool {
    matches!(v, toml::Value::Integer(i) if (lo..=hi).contains(i))
}

fn portmask_ok(v: &toml::Value) -> bool {
    match v {
        toml::Value::Integer(i) => *i > 0,
        toml::Value::String(s) => {
            let t = s.trim();
            let d = t
                .strip_prefix("0x")
                .or_else(|| t.strip_prefix("0X"))
                .unwrap_or(t);
            let d = d.strip_prefix('+').unwrap_or(d);
            !d.is_empty()
                && d.chars().all(|c| c.is_ascii_hexdigit())
                && d.trim_start_matches('0').len() <= 16
                && d.chars().any(|c| c != '0')
        }
        _ => false,
    }
}

/// Whether `[l2fwd] key = v` is valid, from the documented types and bounds.
fn valid(key: &str, v: &toml::Value) -> bool {
    use toml::Value::*;
    match key {
        "portmask" => portmask_ok(v),
        "stats_period" => int_in(v, 0, 86_400),
        "mac_updating" | "allow_fault_injection" => matches!(v, Boolean(_)),
        "duration" => {
            let d = match v {
                Integer(i) => *i as f64,
                Float(f) => *f,
                _ => return false,
            };
            d.is_finite() && (0.001..=31_536_000.0).contains(&d)
        }
        "report" | "control" => matches!(v, String(_)),
        "copy" => matches!(v, String(s) if ["none", "cpu", "dma", "auto"].contains(&s.as_str())),
        "copybreak" => int_in(v, 1, 65_535),
        "dma" => matches!(v, Array(a) if a.iter().all(|x| matches!(x, String(_)))),
        "dma_timeout_ms" | "grace_ms" => int_in(v, 1, 60_000),
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_text_never_panics(text in ".*") {
        read_all_ways(&text);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        read_all_ways(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn toml_shaped_text_never_panics(
        lines in prop::collection::vec(
            prop_oneof![
                Just("[l2fwd]".to_owned()),
                Just("[pktgen]".to_owned()),
                Just("eal = [\"-l\", \"0\"]".to_owned()),
                (key(), "[-+0-9a-zA-Z_.\"\\[\\], ]{0,24}").prop_map(|(k, v)| format!("{k} = {v}")),
            ],
            0..8,
        )
    ) {
        read_all_ways(&lines.join("\n"));
    }

    /// A structured [l2fwd] table: accepted exactly when every key is known and every value
    /// has the right type and lies within its bounds.
    #[test]
    fn l2fwd_table_is_accepted_iff_valid(
        mut entries in l2fwd_entries(),
        other in prop::option::weighted(0.1, (key(), value())),
    ) {
        // A second value for a key already there replaces it, as in the table.
        if let Some((k, v)) = other {
            entries.retain(|(e, _)| *e != k);
            entries.push((k, v));
        }
        let mut table = toml::Table::new();
        table.insert(
            "l2fwd".into(),
            toml::Value::Table(entries.clone().into_iter().collect()),
        );
        let text = toml::to_string(&table).expect("a table serialises");
        let expect_ok = entries.iter().all(|(k, v)| valid(k, v));
        let got = parse(&text).and_then(|c| c.l2fwd());
        prop_assert_eq!(got.is_ok(), expect_ok, "{}\n=> {:?}", text, got);
    }
}

/// Mostly values of `key`'s type near its bounds, sometimes anything: so that tables with
/// every value valid, and tables with one value just out of bounds, both come up often.
fn typed_value(key: &'static str) -> BoxedStrategy<toml::Value> {
    use toml::Value::*;
    let ints = |edges: &'static [i64]| {
        prop_oneof![
            prop::sample::select(edges).prop_map(Integer),
            (-2i64..70_000).prop_map(Integer),
        ]
        .boxed()
    };
    let right: BoxedStrategy<toml::Value> = match key {
        "portmask" => prop_oneof![
            "(0[xX])?[0-9a-fA-F]{0,17}".prop_map(String),
            (-2i64..100).prop_map(Integer),
        ]
        .boxed(),
        "stats_period" => ints(&[0, 1, 86_400, 86_401]),
        "copybreak" => ints(&[0, 1, 65_535, 65_536, 4_294_967_296]),
        "dma_timeout_ms" | "grace_ms" => ints(&[0, 1, 60_000, 60_001]),
        "duration" => prop_oneof![
            prop::sample::select(
                &[
                    0.5,
                    0.0,
                    1e-308,
                    0.001,
                    -1.0,
                    31_536_000.0,
                    31_536_000.5,
                    f64::NAN
                ][..]
            )
            .prop_map(Float),
            (-2i64..40_000_000).prop_map(Integer),
        ]
        .boxed(),
        "mac_updating" | "allow_fault_injection" => any::<bool>().prop_map(Boolean).boxed(),
        "copy" => prop::sample::select(&["none", "cpu", "dma", "auto", "fast", ""][..])
            .prop_map(|s| String(s.into()))
            .boxed(),
        "dma" => prop::collection::vec("[a-z_0-9]{0,12}".prop_map(String), 0..3)
            .prop_map(Array)
            .boxed(),
        _ => ".{0,20}".prop_map(String).boxed(),
    };
    prop_oneof![8 => right, 1 => value()].boxed()
}

fn l2fwd_entries() -> impl Strategy<Value = Vec<(String, toml::Value)>> {
    let per_key: Vec<_> = KEYS
        .iter()
        .map(|&k| prop::option::weighted(0.4, typed_value(k)).prop_map(move |v| (k, v)))
        .collect();
    per_key.prop_map(|v| {
        v.into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v)))
            .collect()
    })
}
