//! Template bombs: every render ends within its budgets (steps, output bytes, nesting depth)
//! with an error that names the budget and its flag, never a panic, a hang or an unbounded
//! allocation. Each case runs on its own thread with a deadline, so a regression fails here
//! instead of hanging the suite.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::Duration;

use hush_crypto::SecretBytes;
use hush_template::{Budget, Error, Limits, Options, Preset, Template};

/// Far more than any case needs in a debug build; only a runaway render gets near it.
const DEADLINE: Duration = Duration::from_secs(60);

fn render_with(preset: Preset, limits: Limits, text: &str) -> Result<Vec<u8>, Error> {
    let text = text.to_owned();
    let (tx, rx) = mpsc::channel();
    // A thread with a 1 MiB stack, half what the controllers' worker threads have: the depth
    // budget must keep parsing and rendering inside it.
    std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(move || {
            let data = BTreeMap::from([("k".to_owned(), SecretBytes::from("v"))]);
            let r = Template::parse("t", &text, &Options::preset(preset).limits(limits))
                .and_then(|t| t.render(&data))
                .map(|o| o.expose().to_vec());
            let _ = tx.send(r);
        })
        .unwrap();
    rx.recv_timeout(DEADLINE)
        .expect("the render did not finish within the deadline (or panicked)")
}

fn render(text: &str) -> Result<Vec<u8>, Error> {
    render_with(Preset::SealedSecrets, Limits::default(), text)
}

fn assert_budget(text: &str, want: Budget) {
    assert_budget_in(
        &[Preset::SealedSecrets, Preset::ExternalSecrets],
        text,
        want,
    );
}

fn assert_budget_in(presets: &[Preset], text: &str, want: Budget) {
    for &preset in presets {
        match render_with(preset, Limits::default(), text) {
            Err(e @ Error::Budget { budget, .. }) => {
                assert_eq!(budget, want, "{text}: {e}");
                let msg = e.to_string();
                assert!(msg.contains(want.flag()), "{msg}");
                assert!(msg.contains(&want.to_string()), "{msg}");
            }
            Err(e) => panic!("{text}: want the {want} budget, got {e}"),
            Ok(out) => panic!("{text}: want the {want} budget, got {} bytes", out.len()),
        }
    }
}

#[test]
fn endless_ranges_run_out_of_steps() {
    assert_budget("{{ range 9223372036854775807 }}{{ end }}", Budget::Steps);
    assert_budget(
        "{{ range until 1048576 }}{{ range until 1048576 }}{{ end }}{{ end }}",
        Budget::Steps,
    );
    assert_budget(
        "{{ range $i := until 1000 }}{{ range until 1000 }}{{ $i }}{{ end }}{{ end }}",
        Budget::Steps,
    );
}

#[test]
fn doubling_values_run_out_of_steps() {
    // Each round copies the list twice: 2^40 elements without a budget.
    assert_budget(
        "{{ $l := list 1 }}{{ range until 40 }}{{ $l = concat $l $l }}{{ end }}{{ len $l }}",
        Budget::Steps,
    );
    // The same with a string that doubles: bytes are charged too.
    assert_budget(
        r#"{{ $s := "xxxxxxxxxxxxxxxx" }}{{ range until 40 }}{{ $s = print $s $s }}{{ end }}"#,
        Budget::OutputBytes,
    );
}

#[test]
fn copies_of_a_large_value_are_charged() {
    // One 512 KiB string referenced 100000 times: 50 GB of copying without a budget.
    assert_budget(
        "{{ $s := repeat 524288 \"x\" }}{{ range until 100000 }}{{ $t := $s }}{{ end }}",
        Budget::Steps,
    );
    assert_budget(
        "{{ $s := repeat 524288 \"x\" }}{{ range until 100000 }}{{ sha256sum $s }}{{ end }}",
        Budget::Steps,
    );
}

#[test]
fn amplifying_functions_check_their_result_first() {
    for t in [
        "{{ repeat 1000000000 \"x\" }}",
        "{{ repeat 9223372036854775807 \"xy\" }}",
        "{{ \"a\\nb\\nc\" | indent 1000000000 }}",
        "{{ \"a\" | nindent 9223372036854775807 }}",
        "{{ printf \"%9999999d\" 1 }}",
        "{{ printf \"%.9999999d\" 1 }}",
        "{{ printf \"%.9999999f\" 1.5 }}",
        "{{ printf \"%999999v\" (until 100) }}",
        "{{ replace \"\" (repeat 10000 \"y\") (repeat 1000 \"x\") }}",
        "{{ replace \"x\" (repeat 10000 \"y\") (repeat 1000 \"x\") }}",
        "{{ regexReplaceAll \"\" (repeat 1000 \"x\") (repeat 10000 \"y\") }}",
        "{{ join (repeat 100000 \"s\") (until 1000) }}",
        "{{ wrapWith 1 (repeat 100000 \"s\") (repeat 1000 \"x \") }}",
        "{{ range until 100000 }}0123456789abcdefghijklmnopqrstuv{{ end }}",
    ] {
        assert_budget(t, Budget::OutputBytes);
    }
    // 150 maps 95 deep: small values whose indented text is far larger (9 KiB each).
    let wide = " $l".repeat(150);
    for encode in ["toPrettyJson", "toYaml"] {
        assert_budget_in(
            &[Preset::ExternalSecrets],
            &format!(
                "{{{{ $l := dict }}}}{{{{ range until 95 }}}}{{{{ $l = dict \"a\" $l }}}}{{{{ end }}}}{{{{ {encode} (list{wide}) }}}}"
            ),
            Budget::OutputBytes,
        );
    }
}

#[test]
fn deep_nesting_is_refused_before_the_stack_runs_out() {
    let ifs = "{{ if 1 }}".repeat(10_000) + &"{{ end }}".repeat(10_000);
    assert_budget(&ifs, Budget::Depth);
    let parens = "{{ ".to_owned() + &"(".repeat(10_000) + "1" + &")".repeat(10_000) + " }}";
    assert_budget(&parens, Budget::Depth);
    let defines = "{{ define \"x\" }}".to_owned()
        + &"{{ with 1 }}".repeat(10_000)
        + &"{{ end }}".repeat(10_001);
    assert_budget(&defines, Budget::Depth);
    // Recursion through {{template}}, and nesting spread over template calls.
    assert_budget(
        "{{ define \"r\" }}{{ template \"r\" }}{{ end }}{{ template \"r\" }}",
        Budget::Depth,
    );
    let level = "{{ if 1 }}".repeat(50) + "{{ template \"r\" }}" + &"{{ end }}".repeat(50);
    assert_budget(
        &format!("{{{{ define \"r\" }}}}{level}{{{{ end }}}}{{{{ template \"r\" }}}}"),
        Budget::Depth,
    );
    // Values nested by a loop, then walked by toJson, printing and comparison.
    for walk in ["toJson $d", "$d", "eq $d $d", "deepCopy $d"] {
        assert_budget(
            &format!(
                "{{{{ $d := dict }}}}{{{{ range until 5000 }}}}{{{{ $d = dict \"a\" $d }}}}{{{{ end }}}}{{{{ {walk} }}}}"
            ),
            Budget::Depth,
        );
    }
}

#[test]
fn overflowing_sequences_end() {
    // Go's loops wrap around the end of int and never stop.
    let e = render("{{ untilStep 9223372036854775806 9223372036854775807 5 }}").unwrap_err();
    assert!(e.to_string().contains("passes the end of int"), "{e}");
    let e = render("{{ untilStep -9223372036854775807 -9223372036854775808 -5 }}").unwrap_err();
    assert!(e.to_string().contains("passes the end of int"), "{e}");
    // seq computes its end as Go does (wrapping): empty, as in Go.
    assert_eq!(
        render("{{ seq 9223372036854775806 9223372036854775807 }}").unwrap(),
        b""
    );
    assert_eq!(render("{{ seq 9223372036854775807 }}").unwrap(), b"");
    assert_budget("{{ seq 1 1 9223372036854775806 }}", Budget::Steps);
}

#[test]
fn long_precisions_are_exact_and_linear() {
    // `%.70000f` used to panic in Rust's formatter; a long zero padding used to be quadratic.
    let out = render("{{ printf \"%.70000f\" 1.5 }}").unwrap();
    assert_eq!(out.len(), 70_002);
    assert!(out.starts_with(b"1.5000"));
    let out = render("{{ printf \"%.1000000d\" 7 }}").unwrap();
    assert_eq!(out.len(), 1_000_000);
    assert!(out.ends_with(b"07"));
    let out = render("{{ printf \"%.70000e\" 1.25 }}").unwrap();
    assert!(out.starts_with(b"1.25000") && out.ends_with(b"e+00"));
}

#[test]
fn variable_and_text_counts_do_not_make_parsing_quadratic() {
    // 200000 declarations and 200000 lines: linear lexing, parsing and lookups.
    let decls = "{{ $a := 1 }}\n".repeat(200_000) + "{{ $a }}";
    let mut limits = Limits::default();
    limits.max_steps = 100_000_000;
    let out = render_with(Preset::SealedSecrets, limits, &decls).unwrap();
    assert_eq!(out.len(), 200_001);
}

#[test]
fn budgets_are_configurable_and_named() {
    let mut limits = Limits::default();
    limits.max_steps = 50;
    let e = render_with(
        Preset::ExternalSecrets,
        limits,
        "{{ range until 100 }}x{{ end }}",
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "template: t:1:10: exceeded the template step budget of 50 (raise it with \
         --template-max-steps)"
    );
    let mut limits = Limits::default();
    limits.max_output_bytes = 3;
    let e = render_with(Preset::SealedSecrets, limits, "abcd").unwrap_err();
    assert!(
        matches!(
            e,
            Error::Budget {
                budget: Budget::OutputBytes,
                limit: 3,
                ..
            }
        ),
        "{e}"
    );
    let mut limits = Limits::default();
    limits.max_depth = 2;
    assert!(
        render_with(
            Preset::SealedSecrets,
            limits,
            "{{ if 1 }}{{ if 1 }}x{{ end }}{{ end }}"
        )
        .is_ok()
    );
    let e = render_with(
        Preset::SealedSecrets,
        limits,
        "{{ if 1 }}{{ if 1 }}{{ if 1 }}x{{ end }}{{ end }}{{ end }}",
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Budget {
                budget: Budget::Depth,
                limit: 2,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn ordinary_templates_stay_far_inside_the_defaults() {
    // A thousand keys, each formatted and encoded, as a large ESO template would.
    let data: BTreeMap<String, SecretBytes> = (0..1000)
        .map(|i| {
            (
                format!("key{i:04}"),
                SecretBytes::from("value-".repeat(20).as_str()),
            )
        })
        .collect();
    let t = Template::parse(
        "t",
        "{{ range $k, $v := . }}{{ $k | upper }}={{ $v | b64enc | quote }}\n{{ end }}{{ toJson . | sha256sum }}",
        &Options::preset(Preset::ExternalSecrets),
    )
    .unwrap();
    let out = t.render(&data).unwrap();
    assert!(out.expose().len() > 100_000);
}

#[test]
fn indexing_large_data_costs_no_copy_of_it() {
    // 1 MiB of data (ESO's dataFrom of a large secret) indexed 2000 times: `.` is a reference in
    // Go, and `index .` must not pay for a copy of the whole map each time.
    let data: BTreeMap<String, SecretBytes> = (0..256)
        .map(|i| {
            (
                format!("key-{i:03}"),
                SecretBytes::from("v".repeat(4096).as_str()),
            )
        })
        .collect();
    let text = "{{ index . \"key-001\" | len }}".repeat(2000)
        + "{{ $m := . }}{{ index $m \"key-002\" | len }}";
    let t = Template::parse("t", &text, &Options::preset(Preset::ExternalSecrets)).unwrap();
    let out = t.render(&data).unwrap();
    assert_eq!(out.expose().len(), 4 * 2001);
}
