//! Unit tests, one group per construct. Cross-checked outputs live in tests/golden.

use std::collections::BTreeMap;

use hush_crypto::SecretBytes;

use crate::{Error, MissingKey, Options, Preset, Template, Value, render};

fn data() -> BTreeMap<String, SecretBytes> {
    [
        ("user", "admin"),
        ("password", "s3cr3t"),
        ("empty", ""),
        ("n", "42"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), SecretBytes::from(v)))
    .collect()
}

fn ss(t: &str) -> String {
    match render(Preset::SealedSecrets, "t", t, &data()) {
        Ok(b) => String::from_utf8(b.expose().to_vec()).unwrap(),
        Err(e) => format!("ERR {e}"),
    }
}

fn eso(t: &str) -> String {
    match render(Preset::ExternalSecrets, "t", t, &data()) {
        Ok(b) => String::from_utf8(b.expose().to_vec()).unwrap(),
        Err(e) => format!("ERR {e}"),
    }
}

#[test]
fn text_and_fields() {
    assert_eq!(ss("a{{ .user }}b"), "aadminb");
    assert_eq!(ss("{{ $.user }}"), "admin");
    assert_eq!(ss("{{ . }}"), "map[empty: n:42 password:s3cr3t user:admin]");
}

#[test]
fn missing_keys_per_preset() {
    assert_eq!(ss("{{ .nope }}"), "<no value>");
    assert_eq!(ss("[{{ index . \"nope\" }}]"), "[]");
    assert!(eso("{{ .nope }}").contains("map has no entry for key \"nope\""));
    let zero = Options::preset(Preset::SealedSecrets).missing_key(MissingKey::Zero);
    let t = Template::parse("t", "[{{ .nope }}]", &zero).unwrap();
    assert_eq!(t.render(&data()).unwrap().expose(), b"[]");
}

#[test]
fn comments_and_trim_markers() {
    assert_eq!(ss("a {{/* c */}} b"), "a  b");
    assert_eq!(ss("a {{- /* c */ -}} b"), "ab");
    assert_eq!(ss("a \n {{- .user -}} \n b"), "aadminb");
    // `{{-3}}` is the number -3, not a trim marker.
    assert_eq!(ss("a {{-3}}"), "a -3");
}

#[test]
fn variables() {
    assert_eq!(ss("{{ $x := .user }}{{ $x = \"o\" }}{{ $x }}"), "o");
    assert_eq!(
        ss("{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}"),
        "2"
    );
    assert!(ss("{{ $nope }}").contains("undefined variable"));
    assert!(ss("{{ if true }}{{ $y := 1 }}{{ end }}{{ $y }}").contains("undefined variable"));
}

#[test]
fn pipelines_and_parens() {
    assert_eq!(ss("{{ .user | upper | printf \"<%s>\" }}"), "<ADMIN>");
    assert_eq!(
        ss("{{ printf \"%s/%s\" (upper .user) (.password | b64enc) }}"),
        "ADMIN/czNjcjN0"
    );
    assert_eq!(ss("{{ (dict \"a\" (dict \"b\" 1)).a.b }}"), "1");
}

#[test]
fn if_else_chains() {
    let t = "{{ if .nope }}1{{ else if .empty }}2{{ else if .user }}3{{ else }}4{{ end }}";
    assert_eq!(ss(t), "3");
    assert_eq!(ss("{{ if and .user (not .empty) }}y{{ end }}"), "y");
}

#[test]
fn with_and_else_with() {
    assert_eq!(ss("{{ with .user }}{{ . }}{{ end }}"), "admin");
    assert_eq!(
        ss("{{ with .empty }}x{{ else with .n }}{{ . }}{{ end }}"),
        "42"
    );
    assert_eq!(ss("{{ with .empty }}x{{ else }}none{{ end }}"), "none");
}

#[test]
fn range_forms() {
    assert_eq!(
        ss("{{ range $k, $v := . }}{{ $k }},{{ end }}"),
        "empty,n,password,user,"
    );
    assert_eq!(
        ss("{{ range $i, $v := list \"a\" \"b\" }}{{ $i }}{{ $v }}{{ end }}"),
        "0a1b"
    );
    assert_eq!(ss("{{ range list }}x{{ else }}e{{ end }}"), "e");
    assert_eq!(
        ss(
            "{{ range list 1 2 3 4 }}{{ if eq . 2 }}{{ continue }}{{ end }}{{ if eq . 4 }}{{ break }}{{ end }}{{ . }}{{ end }}"
        ),
        "13"
    );
    assert_eq!(ss("{{ range 3 }}{{ . }}{{ end }}"), "012");
    assert!(ss("{{ break }}").contains("outside"));
    assert!(
        !ss("{{ range .user }}{{ end }}").contains("admin"),
        "value leaked into error"
    );
}

#[test]
fn define_template_block() {
    assert_eq!(
        ss("{{ define \"x\" }}<{{ . }}>{{ end }}{{ template \"x\" .user }}"),
        "<admin>"
    );
    assert_eq!(ss("{{ block \"b\" .n }}[{{ . }}]{{ end }}"), "[42]");
    assert!(ss("{{ template \"nope\" }}").contains("no such template"));
    assert!(
        ss("{{ define \"r\" }}{{ template \"r\" }}{{ end }}{{ template \"r\" }}").contains("depth")
    );
}

#[test]
fn and_or_short_circuit() {
    // The second operand would fail (index of nil) if evaluated.
    assert_eq!(ss("{{ or .user (index .nope 1) }}"), "admin");
    assert_eq!(ss("{{ and .empty (index .nope 1) }}"), "");
    assert_eq!(ss("{{ and 1 \"x\" }}|{{ or 0 \"\" }}"), "x|");
}

#[test]
fn comparisons() {
    assert_eq!(
        ss("{{ eq .user \"admin\" }} {{ eq 1 2 1 }} {{ ne 1 2 }}"),
        "true true true"
    );
    assert_eq!(
        ss("{{ lt 1 2 }} {{ le 2 2 }} {{ gt \"b\" \"a\" }} {{ ge 1.5 2.5 }}"),
        "true true true false"
    );
    assert!(ss("{{ eq 1 1.0 }}").contains("incompatible types"));
    assert!(ss("{{ lt true false }}").contains("invalid type"));
}

#[test]
fn builtins() {
    assert_eq!(ss("{{ len .user }} {{ len (list 1 2) }}"), "5 2");
    assert_eq!(ss("{{ index (list 1 (list 2 3)) 1 0 }}"), "2");
    assert_eq!(
        ss("{{ print 1 2 \"a\" 3 }}|{{ println \"x\" }}"),
        "1 2a3|x\n"
    );
    assert_eq!(ss("{{ html \"<a&'>\" }}"), "&lt;a&amp;&#39;&gt;");
    assert_eq!(ss("{{ js \"'<\" }}"), "\\'\\u003C");
    assert_eq!(ss("{{ urlquery \"a b&c\" }}"), "a+b%26c");
}

#[test]
fn printf_verbs() {
    assert_eq!(
        ss(
            "{{ printf \"%s %d %v %q %x %5.2f|%-4d|%04d %t\" \"s\" 42 true \"q\" 255 3.14159 7 -7 false }}"
        ),
        "s 42 true \"q\" ff  3.14|7   |-007 false"
    );
    assert_eq!(ss("{{ printf \"%d\" \"x\" }}"), "%!d(string=x)");
    assert_eq!(ss("{{ printf \"%s %s\" \"a\" }}"), "a %!s(MISSING)");
}

#[test]
fn printing_rules() {
    assert_eq!(
        ss("{{ 1.0 }} {{ 1e6 }} {{ 0.00001 }} {{ 'a' }} {{ 0x10 }}"),
        "1 1e+06 1e-05 97 16"
    );
    assert_eq!(
        ss("{{ list 1 \"a\" nil }} {{ dict \"k\" (list) }}"),
        "[1 a <nil>] map[k:[]]"
    );
}

#[test]
fn sprig_samples() {
    assert_eq!(ss("{{ .password | b64enc | b64dec }}"), "s3cr3t");
    assert_eq!(
        ss("{{ toJson . }}"),
        r#"{"empty":"","n":"42","password":"s3cr3t","user":"admin"}"#
    );
    assert_eq!(ss("{{ (fromJson \"{\\\"a\\\":[1,2]}\").a }}"), "[1 2]");
    assert_eq!(
        ss("{{ default \"d\" .empty }} {{ ternary 1 2 false }}"),
        "d 2"
    );
    assert_eq!(
        ss("{{ add .n 1 }} {{ sha256sum \"\" | trunc 8 }}"),
        "43 e3b0c442"
    );
    assert_eq!(
        ss("{{ regexReplaceAll \"(a)(d)\" .user \"$2$1\" }}"),
        "damin"
    );
    assert_eq!(
        ss("{{ $d := dict }}{{ $_ := set $d \"k\" 1 }}{{ $d }}"),
        "map[k:1]"
    );
    // Sprig's dict functions take map[string]interface{}, not the controllers' map[string]string.
    assert!(ss("{{ hasKey . \"user\" }}").contains("wrong type"));
}

#[test]
fn unknown_and_unimplemented_functions_fail_at_parse() {
    let e = Template::parse(
        "k",
        "line1\n  {{ nosuch .x }}",
        &Options::preset(Preset::SealedSecrets),
    )
    .unwrap_err();
    assert!(matches!(e, Error::Parse { .. }));
    assert_eq!(
        e.to_string(),
        "template: k:2:6: function \"nosuch\" not defined"
    );
    let e = Template::parse("k", "{{ now }}", &Options::preset(Preset::SealedSecrets)).unwrap_err();
    assert!(e.to_string().contains("\"now\" is not implemented"), "{e}");
    // Removed by both controllers.
    for f in ["env", "expandenv", "getHostByName"] {
        let t = format!("{{{{ {f} \"X\" }}}}");
        assert!(Template::parse("k", &t, &Options::preset(Preset::ExternalSecrets)).is_err());
    }
    // ESO-only functions are not in the Sealed Secrets set.
    assert!(ss("{{ hexdec \"41\" }}").contains("not defined"));
    assert_eq!(eso("{{ hexdec \"41\" }}"), "A");
}

#[test]
fn custom_delimiters() {
    let o = Options::preset(Preset::ExternalSecrets).delimiters("<<", ">>");
    let t = Template::parse("t", "<< .user >>{{ .user }}<<- \" x\" ->>", &o).unwrap();
    assert_eq!(t.render(&data()).unwrap().expose(), b"admin{{ .user }} x");
}

#[test]
fn errors_never_contain_values() {
    for t in [
        "{{ .user.x }}",
        "{{ range .password }}{{ end }}",
        "{{ .password | int | upper }}",
        "{{ printf 1 }}",
        "{{ index .password 100 }}",
        "{{ fail .password }}",
        "{{ mustFromJson .password }}",
        "{{ .password 1 }}",
        "{{ $x := .password }}{{ $x.y }}",
        "{{ slice .password 1 }}",
    ] {
        let e = render(Preset::SealedSecrets, "t", t, &data()).unwrap_err();
        assert!(!e.to_string().contains("s3cr3t"), "{t}: {e}");
        assert!(!format!("{e:?}").contains("s3cr3t"), "{t}: {e:?}");
    }
    assert!(!format!("{:?}", Value::str("s3cr3t")).contains("s3cr3t"));
}

#[test]
fn errors_carry_name_and_position() {
    let e = render(
        Preset::ExternalSecrets,
        "tls.crt",
        "a\nb {{ .nope }}",
        &data(),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "template: tls.crt:2:6: executing \"tls.crt\": map has no entry for key \"nope\""
    );
}

#[test]
fn binary_values_survive() {
    let mut d = BTreeMap::new();
    d.insert("bin".to_string(), SecretBytes::new(vec![0xff, 0x00, 0xfe]));
    let out = render(
        Preset::SealedSecrets,
        "t",
        "{{ .bin }}|{{ .bin | b64enc }}",
        &d,
    )
    .unwrap();
    assert_eq!(out.expose(), b"\xff\x00\xfe|/wD+");
}

#[test]
fn render_value_with_json_data() {
    let t = Template::parse("t", "{{ .a.b }}", &Options::preset(Preset::SealedSecrets)).unwrap();
    let v = Value::from_json(&serde_json::json!({"a": {"b": 2}}));
    assert_eq!(t.render_value(&v).unwrap().expose(), b"2");
}

mod props {
    use proptest::prelude::*;

    use crate::{Options, Preset, Template, Value};

    fn fragment() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("{{".to_string()),
            Just("}}".to_string()),
            Just("{{- ".to_string()),
            Just(" -}}".to_string()),
            Just("/*".to_string()),
            Just("*/".to_string()),
            Just("$x".to_string()),
            Just(":=".to_string()),
            Just("=".to_string()),
            Just("|".to_string()),
            Just("(".to_string()),
            Just(")".to_string()),
            Just(".a".to_string()),
            Just(".".to_string()),
            Just(" ".to_string()),
            Just("\n".to_string()),
            Just("\"s\"".to_string()),
            Just("`r`".to_string()),
            Just("'c'".to_string()),
            Just("1".to_string()),
            Just("-2.5e3".to_string()),
            Just("0x".to_string()),
            Just(",".to_string()),
            Just("end".to_string()),
            Just("else".to_string()),
            Just("if".to_string()),
            Just("range".to_string()),
            Just("with".to_string()),
            Just("define".to_string()),
            Just("template".to_string()),
            Just("block".to_string()),
            Just("break".to_string()),
            Just("continue".to_string()),
            Just("nil".to_string()),
            Just("true".to_string()),
            Just("printf".to_string()),
            Just("index".to_string()),
            Just("slice".to_string()),
            Just("len".to_string()),
            Just("and".to_string()),
            Just("eq".to_string()),
            Just("list".to_string()),
            Just("dict".to_string()),
            Just("default".to_string()),
            Just("substr".to_string()),
            Just("\"%v%d%q%-5.2f%*s\"".to_string()),
            "[a-zé☃$.|(){}\"'`\\\\ -]{0,6}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn never_panics(parts in prop::collection::vec(fragment(), 0..24)) {
            let text = parts.concat();
            let data = Value::from_json(&serde_json::json!({"a": "x", "b": [1, "y", null], "c": {"d": 1.5}}));
            for preset in [Preset::SealedSecrets, Preset::ExternalSecrets] {
                if let Ok(t) = Template::parse("p", &text, &Options::preset(preset)) {
                    let _ = t.render_value(&data);
                }
            }
        }

        #[test]
        fn never_panics_on_any_text(text in "\\PC{0,64}") {
            let data = Value::Nil;
            if let Ok(t) = Template::parse("p", &text, &Options::preset(Preset::SealedSecrets)) {
                let _ = t.render_value(&data);
            }
        }
    }
}

/// Number literals take `_` only between digits, as Go's strconv does for text/template.
#[test]
fn underscores_in_numbers() {
    assert_eq!(ss("{{ 1_000 }} {{ 0x_ff }} {{ 1_0.5 }}"), "1000 255 10.5");
    for bad in ["{{ 1__0 }}", "{{ 10_ }}", "{{ 1_.5 }}"] {
        assert!(
            ss(bad).contains("illegal number syntax"),
            "{bad}: {}",
            ss(bad)
        );
    }
}
