//! kubeseal's `-o yaml` output: the object goes through `sigs.k8s.io/yaml.JSONToYAML`, i.e.
//! go-yaml v2 (`go.yaml.in/yaml/v2` v2.4.3) with its defaults. The writer is
//! [`hush_goyaml::v2`], shared with hush-template's `toYaml`; this module only maps the JSON value
//! onto its nodes.

use serde_json::Value;

use hush_goyaml::v2::{self, Node};

/// Writes a JSON value (a mapping at the root) as go-yaml v2 does.
pub(crate) fn to_string(value: &Value) -> String {
    v2::marshal(&to_node(value))
}

fn to_node(value: &Value) -> Node {
    match value {
        Value::Null => Node::Null,
        Value::Bool(b) => Node::Bool(*b),
        // serde_json's text: Go's for integers (all kubeseal objects hold); for floats Go would
        // print its shortest `%g` form (`1` for 1.0, `1e+21`), kept as before.
        Value::Number(n) => Node::Number(n.to_string()),
        Value::String(s) => Node::Str(s.clone()),
        Value::Array(items) => Node::Seq(items.iter().map(to_node).collect()),
        Value::Object(map) => Node::Map(map.iter().map(|(k, v)| (k.clone(), to_node(v))).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn long_and_multi_line_keys_are_explicit_as_go_yaml_writes_them() {
        // Input and expected output from sigs.k8s.io/yaml v1.4.0 `JSONToYAML` (go-yaml v2).
        let v: Value = serde_json::from_str(INPUT).unwrap();
        assert_eq!(to_string(&v), EXPECTED);
        // And it reads back.
        let back = crate::yaml_in::documents(EXPECTED).unwrap();
        assert_eq!(back, vec![v]);
    }

    const INPUT: &str = r#"{"annotations": {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa": "v1", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb": "v2", "word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word": "v3", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\u000e\u000e\u000e\u000e\u000e\u000e\u000e\u000e\u000e\u000e": "v4", "line1\nline2": "v", "a\nb\n": "v3"}, "m": {"qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq": {"n": "x", "o": "y"}, "rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr": ["a", "b"], "ssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssss": {}, "tttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttt": []}}"#;
    const EXPECTED: &str = "annotations:\n  ? |\n    a\n    b\n  : v3\n  ? aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n  : v1\n  bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb: v2\n  ? |-\n    line1\n    line2\n  : v\n  ? word word word word word word word word word word word word word word word word\n    word word word word word word word word word word word word word word word word\n    word word word word word word word word\n  : v3\n  ? \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\\x0E\\x0E\\x0E\\x0E\\x0E\\x0E\\x0E\\x0E\\x0E\\x0E\"\n  : v4\nm:\n  ? qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq\n  : \"n\": x\n    o: \"y\"\n  ? rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr\n  : - a\n    - b\n  ? ssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssss\n  : {}\n  ? tttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttt\n  : []\n";

    #[test]
    fn quoting_follows_go_yaml_v2() {
        let v = json!({
            "t": "true", "e": "", "n": "123", "o": "0x1F", "f": "1.5e3", "ts": "2024-01-02",
            "b60": "1:20", "plain": "hello world", "colon": "a: b", "star": "*x", "dash": "- x",
            "tab": "a\tb", "multi": "line1\nline2\n", "quote": "it's", "hash": "a #b", "y": "yes",
            "ver": "1.2.3", "null": null, "emoji": "\u{1F600}"
        });
        let out = to_string(&v);
        let expected = "\
b60: \"1:20\"
colon: 'a: b'
dash: '- x'
e: \"\"
emoji: \"\\U0001F600\"
f: \"1.5e3\"
hash: 'a #b'
multi: |
  line1
  line2
\"n\": \"123\"
\"null\": null
o: \"0x1F\"
plain: hello world
quote: it's
star: '*x'
t: \"true\"
tab: \"a\\tb\"
ts: \"2024-01-02\"
ver: 1.2.3
\"y\": \"yes\"
";
        assert_eq!(out, expected);
    }

    #[test]
    fn nested_shapes() {
        let v = json!({"a": {"b": [ {"c": 1, "d": []}, "x" ], "e": {}}, "z": null});
        assert_eq!(
            to_string(&v),
            "a:\n  b:\n  - c: 1\n    d: []\n  - x\n  e: {}\nz: null\n"
        );
    }

    #[test]
    fn folds_long_plain_strings_at_80_columns() {
        let long = "word ".repeat(30).trim_end().to_owned();
        let out = to_string(&json!({ "k": long }));
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines.len() > 1, "{out}");
        assert!(lines[1].starts_with("  word"), "{out}");
        assert!(lines[0].len() > 80 && lines[0].len() <= 86, "{out}");
    }
}
