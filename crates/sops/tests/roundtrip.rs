//! Property tests: every store reads back what it writes, and encrypt → decrypt is the
//! identity with matching MACs, for generated trees (unicode, quotes, colons, newlines, numbers,
//! booleans, nesting, comments).

#![allow(clippy::expect_used, clippy::unwrap_used)] // Tests fail loudly.

use hush_crypto::{DataKey, Entropy};
use hush_sops::crypt::{self, CryptConfig, IvStash};
use hush_sops::metadata::Metadata;
use hush_sops::stores::{self, Format};
use hush_sops::tree::{Branch, Item, Value};
use proptest::prelude::*;

struct Counter(u64);

impl Entropy for Counter {
    fn fill(&mut self, dest: &mut [u8]) -> hush_crypto::Result<()> {
        for b in dest.iter_mut() {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            *b = (self.0 >> 33) as u8;
        }
        Ok(())
    }
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 _:#'\"\\-\\.,\\[\\]{}&*!|>%@`?]{0,12}",
        "[a-z]{1,5}\n[a-z ]{0,5}\n?",
        "\\PC{0,8}",
        Just("yes".to_owned()),
        Just("42".to_owned()),
        Just("2024-01-02".to_owned()),
        Just("null".to_owned()),
        Just(" lead".to_owned()),
        Just("trail ".to_owned()),
        Just("tab\there".to_owned()),
    ]
}

fn key() -> impl Strategy<Value = String> {
    "[a-zA-Z_][a-zA-Z0-9_ -]{0,7}"
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        text().prop_map(Value::Str),
        any::<i64>().prop_map(Value::Int),
        any::<bool>().prop_map(Value::Bool),
        // Non-integral finite floats (an integral float reads back as an int, as in sops).
        (-1.0e9f64..1.0e9)
            .prop_filter("non-integral", |f| f.fract() != 0.0)
            .prop_map(Value::Float),
        Just(Value::Null),
    ]
}

fn map_of(inner: impl Strategy<Value = Value> + Clone) -> impl Strategy<Value = Vec<Item>> {
    prop::collection::vec(
        prop_oneof![
            4 => (key(), inner, prop::option::weighted(0.3, "[a-z ]{0,10}"))
                .prop_map(|(k, v, c)| {
                    // An inline comment only stays inline after a one-line scalar.
                    let one_line = match &v {
                        Value::Map(_) | Value::List(_) => false,
                        Value::Str(s) => !s.contains(['\n', '\r', '\u{85}', '\u{2028}', '\u{2029}']),
                        _ => true,
                    };
                    let c = c.filter(|_| one_line).map(|c| Item::InlineComment(format!(" {c}")));
                    c.into_iter().chain([Item::Entry(k, v)]).collect::<Vec<_>>()
                }),
            1 => "[a-z ]{0,10}".prop_map(|c| vec![Item::Comment(format!(" {c}"))]),
        ],
        0..6,
    )
    .prop_map(|items| {
        let mut seen = std::collections::HashSet::new();
        items
            .into_iter()
            .filter(|group| match group.last() {
                Some(Item::Entry(k, _)) => seen.insert(k.clone()),
                _ => true,
            })
            .flatten()
            .collect()
    })
}

fn value() -> impl Strategy<Value = Value> + Clone {
    leaf().prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..4).prop_map(Value::List),
            map_of(inner)
                .prop_filter("has an entry", |m| m
                    .iter()
                    .any(|i| matches!(i, Item::Entry(..))))
                .prop_map(Value::Map),
        ]
    })
}

fn doc() -> impl Strategy<Value = Branch> {
    map_of(value()).prop_filter("has an entry", |m| {
        m.iter().any(|i| matches!(i, Item::Entry(..)))
    })
}

fn strip_comments(v: &Value) -> Value {
    match v {
        Value::Map(m) => Value::Map(
            m.iter()
                .filter_map(|i| match i {
                    Item::Entry(k, v) => Some(Item::Entry(k.clone(), strip_comments(v))),
                    Item::Comment(_) | Item::InlineComment(_) => None,
                })
                .collect(),
        ),
        Value::List(l) => Value::List(
            l.iter()
                .filter(|v| !matches!(v, Value::Comment(_)))
                .map(strip_comments)
                .collect(),
        ),
        v => v.clone(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn yaml_reads_back_what_it_writes(docs in prop::collection::vec(doc(), 1..3)) {
        let text = stores::emit_plain(Format::Yaml, &docs, None).expect("emit");
        let back = stores::load_plain(Format::Yaml, &text)
            .unwrap_or_else(|e| panic!("{e}\n{}", String::from_utf8_lossy(&text)));
        prop_assert_eq!(&back, &docs, "{}", String::from_utf8_lossy(&text));
    }

    #[test]
    fn json_reads_back_what_it_writes(d in doc()) {
        let d = match strip_comments(&Value::Map(d)) { Value::Map(m) => m, _ => unreachable!() };
        let text = stores::emit_plain(Format::Json, std::slice::from_ref(&d), None).expect("emit");
        let back = stores::load_plain(Format::Json, &text).expect("parse");
        prop_assert_eq!(&back[0], &d);
    }

    #[test]
    fn toml_reads_back_what_it_writes(d in doc()) {
        fn no_null(v: &Value) -> bool {
            match v {
                Value::Null => false,
                Value::Map(m) => m.iter().all(|i| match i { Item::Entry(_, v) => no_null(v), Item::Comment(_) | Item::InlineComment(_) => true }),
                Value::List(l) => l.iter().all(no_null),
                _ => true,
            }
        }
        let mut d = match strip_comments(&Value::Map(d)) { Value::Map(m) => m, _ => unreachable!() };
        prop_assume!(no_null(&Value::Map(d.clone())));
        stores::toml::normalize(&mut d);
        let text = stores::emit_plain(Format::Toml, std::slice::from_ref(&d), None).expect("emit");
        let back = stores::load_plain(Format::Toml, &text)
            .unwrap_or_else(|e| panic!("{e}\n{}", String::from_utf8_lossy(&text)));
        prop_assert_eq!(&back[0], &d, "{}", String::from_utf8_lossy(&text));
    }

    #[test]
    fn dotenv_reads_back_what_it_writes(
        entries in prop::collection::vec(("[A-Z_][A-Z0-9_]{0,6}", "[^\n\\\\]{0,12}"), 1..6)
    ) {
        let mut seen = std::collections::HashSet::new();
        let d: Branch = entries
            .into_iter()
            .filter(|(k, _)| seen.insert(k.clone()))
            .map(|(k, v)| Item::Entry(k, Value::Str(v)))
            .collect();
        let text = stores::emit_plain(Format::Dotenv, std::slice::from_ref(&d), None).expect("emit");
        let back = stores::load_plain(Format::Dotenv, &text).expect("parse");
        prop_assert_eq!(&back[0], &d);
    }

    #[test]
    fn encrypt_then_decrypt_is_identity(docs in prop::collection::vec(doc(), 1..3), seed in any::<u64>()) {
        let key = DataKey::from_bytes([7; 32]);
        let rule = Metadata::default_rule();
        let config = CryptConfig { rule: Some(&rule), mac_only_encrypted: seed % 2 == 0 };
        let mut enc = docs.clone();
        let mac = crypt::encrypt_tree(&mut enc, &key, &config, &mut Counter(seed), None).expect("encrypt");
        // Through the YAML store and back, as on disk.
        let text = stores::emit_plain(Format::Yaml, &enc, None).expect("emit");
        let mut back = stores::load_plain(Format::Yaml, &text).expect("parse");
        let mut stash = IvStash::default();
        let mac2 = crypt::decrypt_tree(&mut back, &key, &config, Some(&mut stash)).expect("decrypt");
        prop_assert_eq!(&mac, &mac2);
        prop_assert_eq!(&back, &docs);
        // Re-encrypting with the stash (IVs kept for unchanged values) still round-trips.
        let mac3 = crypt::encrypt_tree(&mut back, &key, &config, &mut Counter(seed ^ 1), Some(&stash)).expect("re-encrypt");
        prop_assert_eq!(&mac3, &mac);
        let mac4 = crypt::decrypt_tree(&mut back, &key, &config, None).expect("decrypt again");
        prop_assert_eq!(&mac4, &mac);
        prop_assert_eq!(&back, &docs);
    }

    #[test]
    fn parsers_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        for f in [Format::Yaml, Format::Json, Format::Dotenv, Format::Ini, Format::Binary, Format::Toml] {
            let _ = stores::load_plain(f, &bytes);
            let _ = stores::load_encrypted(f, &bytes);
        }
    }
}

/// sops 3.13's shape for `k: v # c`: the comment stays on the value's line, plaintext and
/// encrypted (`k: ENC[…] #ENC[…,type:comment]`); a head comment (sops 3.11's shape) stays a
/// head comment; comments after keys without a scalar on the line stay above them.
#[test]
fn inline_comments_stay_inline_golden() {
    let src = "\
# head
a: 1 # one
b:
    c: 'x y'   # quoted
    # own line
    d: true #tight
    e: # after key
        f: g
list:
    - h
s: |-
    two
    lines
";
    let expected = "\
# head
a: 1 # one
b:
    c: x y # quoted
    # own line
    d: true #tight
    # after key
    e:
        f: g
list:
    - h
s: |-
    two
    lines
";
    let docs = stores::load_plain(Format::Yaml, src.as_bytes()).expect("parse");
    let out = stores::emit_plain(Format::Yaml, &docs, None).expect("emit");
    assert_eq!(String::from_utf8_lossy(&out), expected);

    let key = DataKey::from_bytes([9; 32]);
    let rule = Metadata::default_rule();
    let config = CryptConfig {
        rule: Some(&rule),
        mac_only_encrypted: false,
    };
    let mut enc = docs.clone();
    let mac = crypt::encrypt_tree(&mut enc, &key, &config, &mut Counter(3), None).expect("encrypt");
    let text = String::from_utf8(stores::emit_plain(Format::Yaml, &enc, None).expect("emit"))
        .expect("utf-8");
    let line_of = |key: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(key))
            .unwrap_or_else(|| panic!("no {key} line in\n{text}"))
    };
    for key in ["a: ENC[", "c: ENC[", "d: ENC["] {
        let line = line_of(key);
        assert!(
            line.contains(" #ENC[AES256_GCM,") && line.ends_with(",type:comment]"),
            "{line}"
        );
    }
    assert!(!text.contains("one") && !text.contains("quoted"), "{text}");
    let mut back = stores::load_plain(Format::Yaml, text.as_bytes()).expect("parse encrypted");
    let mac2 = crypt::decrypt_tree(&mut back, &key, &config, None).expect("decrypt");
    assert_eq!(mac, mac2);
    let out = stores::emit_plain(Format::Yaml, &back, None).expect("emit");
    assert_eq!(String::from_utf8_lossy(&out), expected);
}

/// A decrypted inline comment that is not one line (only a crafted file has one) goes above its
/// entry instead of breaking the YAML.
#[test]
fn multi_line_inline_comment_becomes_a_head_comment() {
    let docs = vec![vec![
        Item::InlineComment(" a\n b".into()),
        Item::Entry("k".into(), Value::Str("v".into())),
        Item::InlineComment(" c".into()),
        Item::Entry("m".into(), Value::Str("two\nlines".into())),
    ]];
    let out = stores::emit_plain(Format::Yaml, &docs, None).expect("emit");
    assert_eq!(
        String::from_utf8_lossy(&out),
        "# a\n# b\nk: v\n# c\nm: |-\n    two\n    lines\n"
    );
}

/// Inputs the fuzzer (fuzz/fuzz_targets/sops_yaml.rs) found whose output did not read back.
#[test]
fn fuzz_findings_read_back() {
    // Properties on the first key's line are the key's; the mapping starts at them.
    let docs = stores::load_plain(Format::Yaml, b"&k a: 1\nb: *k\n").unwrap();
    let out = stores::emit_plain(Format::Yaml, &docs, None).unwrap();
    assert_eq!(String::from_utf8_lossy(&out), "a: 1\nb: a\n");
    for input in [&b"<< :\n:`:\n::"[..]] {
        let Ok(docs) = stores::load_plain(Format::Yaml, input) else {
            continue;
        };
        let out = stores::emit_plain(Format::Yaml, &docs, None).unwrap();
        let again = stores::load_plain(Format::Yaml, &out);
        assert!(
            again.is_ok(),
            "{:?} was written as {:?}, which reads as {again:?}",
            String::from_utf8_lossy(input),
            String::from_utf8_lossy(&out)
        );
    }
}

/// go-yaml v3, so sops 3.11, writes a sequence item that starts with a line break as `- |4` with
/// its lines two columns short of what the indicator says, and then cannot read its own output
/// ("did not find expected '-' indicator"). hush writes the same bytes and refuses them the same
/// way (fuzz finding sops_yaml; docs/compatibility.md).
#[test]
fn a_sequence_item_starting_with_a_break_is_written_as_sops_writes_it() {
    let docs = stores::load_plain(Format::Yaml, b"k:\n- |+\n\n  x\n").unwrap();
    let out = stores::emit_plain(Format::Yaml, &docs, None).unwrap();
    // sops 3.11: `sops encrypt --unencrypted-regex '.*'` of the same file.
    assert_eq!(String::from_utf8_lossy(&out), "k:\n    - |4\n\n      x\n");
    assert!(stores::load_plain(Format::Yaml, &out).is_err());
}
