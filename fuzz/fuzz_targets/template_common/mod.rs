//! Shared by the template targets: split the input, render with the default budgets, check that
//! what comes out respects them.

use std::collections::BTreeMap;

use hush_crypto::SecretBytes;
use hush_template::{Error, Limits, Options, Preset, Template};

pub fn run(preset: Preset, data: &[u8]) {
    let (text, value) = match data.iter().position(|&b| b == 0xff) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let values = BTreeMap::from([
        ("in".to_owned(), SecretBytes::from(value.to_vec())),
        ("user".to_owned(), SecretBytes::from("admin")),
        ("json".to_owned(), SecretBytes::from(r#"{"a":[1,{"b":"c"}],"d":null}"#)),
        ("yaml".to_owned(), SecretBytes::from("a: &x [1, 2]\nb: *x\n")),
    ]);
    let limits = Limits::default();
    let Ok(t) = Template::parse("fuzz", text, &Options::preset(preset)) else {
        return;
    };
    match t.render(&values) {
        Ok(out) => assert!(out.expose().len() <= limits.max_output_bytes, "output over budget"),
        Err(Error::Budget { .. } | Error::Exec { .. } | Error::Parse { .. }) => {}
        Err(e) => panic!("unexpected error kind: {e}"),
    }
}
