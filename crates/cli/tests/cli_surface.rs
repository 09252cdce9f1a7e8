//! The command-line surface: completion scripts loaded in real shells (bash, zsh, fish), man
//! pages rendered by groff, and (needs peers) each persona's flags checked against the real
//! sops and kubeseal help: every upstream flag is there or listed here as missing with a reason,
//! and every flag hush adds says `hush:` in its help.

#![allow(clippy::expect_used, clippy::unwrap_used)] // Tests fail loudly.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn hush() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hush"))
}

/// A directory with persona links to hush.
fn personas() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = hush()
        .args(["install-links"])
        .arg(dir.path())
        .output()
        .expect("install-links");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    dir
}

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).expect("utf-8")
}

fn write_script(dir: &Path, name: &str, script: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, script).expect("write script");
    p
}

/// Sources `script` in a clean bash and completes `words` (the last one is being typed) with the
/// function the script registered for `words[0]`.
fn bash_complete(script: &Path, words: &[&str]) -> Vec<String> {
    const DRIVER: &str = r#"
source "$1" || exit 90
spec=$(complete -p "$2") || exit 91
fn=$(printf '%s' "$spec" | sed -E 's/.* -F ([^ ]+) .*/\1/')
shift
COMP_WORDS=("$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
COMP_LINE="${COMP_WORDS[*]}"; COMP_POINT=${#COMP_LINE}
"$fn" "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}" 2>/dev/null
printf '%s\n' "${COMPREPLY[@]}"
"#;
    let o = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", DRIVER, "driver"])
        .arg(script)
        .args(words)
        .output()
        .expect("bash");
    ok(o).lines().map(str::to_owned).collect()
}

#[test]
fn bash_completion_of_hush_and_every_persona_completes_commands_and_flags() {
    let tmp = tempfile::tempdir().unwrap();
    let links = personas();
    let hush_script = write_script(
        tmp.path(),
        "hush.bash",
        &ok(hush().args(["completion", "bash"]).output().unwrap()),
    );
    let got = bash_complete(&hush_script, &["hush", "co"]);
    assert!(got.contains(&"completion".to_owned()), "{got:?}");
    assert!(got.contains(&"controller".to_owned()), "{got:?}");
    let got = bash_complete(&hush_script, &["hush", "sops", "exec-f"]);
    assert_eq!(got, ["exec-file"]);
    let got = bash_complete(&hush_script, &["hush", "seal", "--recovery-u"]);
    assert_eq!(got, ["--recovery-unseal"]);

    // `sops completion bash` (upstream's command) and `hush completion bash sops` agree.
    let sops_script = ok(Command::new(links.path().join("sops"))
        .args(["completion", "bash"])
        .output()
        .unwrap());
    let via_hush = ok(hush()
        .args(["completion", "bash", "sops"])
        .output()
        .unwrap());
    assert_eq!(sops_script, via_hush);
    let sops_script = write_script(tmp.path(), "sops.bash", &sops_script);
    let got = bash_complete(&sops_script, &["sops", "encrypt", "--input-t"]);
    assert_eq!(got, ["--input-type"]);
    let got = bash_complete(&sops_script, &["sops", "up"]);
    assert_eq!(got, ["updatekeys"]);

    let kubeseal = write_script(
        tmp.path(),
        "kubeseal.bash",
        &ok(hush()
            .args(["completion", "bash", "kubeseal"])
            .output()
            .unwrap()),
    );
    let got = bash_complete(&kubeseal, &["kubeseal", "--fetch-c"]);
    assert_eq!(got, ["--fetch-cert"]);
    let got = bash_complete(&kubeseal, &["kubeseal", "--scope", ""]);
    assert_eq!(got, ["strict", "namespace-wide", "cluster-wide"]);

    let avp = ok(Command::new(links.path().join("argocd-vault-plugin"))
        .args(["completion", "bash"])
        .output()
        .unwrap());
    let avp = write_script(tmp.path(), "avp.bash", &avp);
    let got = bash_complete(&avp, &["argocd-vault-plugin", "gen"]);
    assert_eq!(got, ["generate"]);

    let ksops = write_script(
        tmp.path(),
        "ksops.bash",
        &ok(hush()
            .args(["completion", "bash", "ksops"])
            .output()
            .unwrap()),
    );
    let got = bash_complete(&ksops, &["ksops", "--he"]);
    assert_eq!(got, ["--help"]);
}

#[test]
fn completion_refuses_an_unknown_shell_or_command() {
    let o = hush().args(["completion", "tcsh"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("tcsh"));
    let o = hush()
        .args(["completion", "bash", "vault"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("vault"));
}

#[test]
#[ignore = "needs zsh and fish (scripts/dev-env.sh installs them)"]
fn zsh_and_fish_load_the_scripts() {
    let tmp = tempfile::tempdir().unwrap();
    for cmd in ["hush", "sops", "kubeseal", "argocd-vault-plugin", "ksops"] {
        let zsh = write_script(
            tmp.path(),
            &format!("_{cmd}"),
            &ok(hush().args(["completion", "zsh", cmd]).output().unwrap()),
        );
        // compinit, then the script registers its function for the command.
        let o = Command::new("zsh")
            .args(["-f", "-c"])
            .arg(format!(
                "autoload -U compinit && compinit -u -D && source {} && print -r -- ${{_comps[{cmd}]}}",
                zsh.display()
            ))
            .output()
            .expect("zsh (scripts/dev-env.sh installs it)");
        assert_eq!(
            ok(o).trim(),
            format!("_{cmd}"),
            "zsh did not register {cmd}"
        );
    }
    let fish = write_script(
        tmp.path(),
        "hush.fish",
        &ok(hush().args(["completion", "fish"]).output().unwrap()),
    );
    // `complete -C` asks fish for the completions of a command line.
    let o = Command::new("fish")
        .args(["--no-config", "-c"])
        .arg(format!(
            "source {}; complete -C 'hush sops exec-f'; complete -C 'hush seal --sco'",
            fish.display()
        ))
        .output()
        .expect("fish (scripts/dev-env.sh installs it)");
    let out = ok(o);
    assert!(out.lines().any(|l| l.starts_with("exec-file")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("--scope")), "{out}");
}

#[test]
fn man_pages_cover_every_command_and_render_without_warnings() {
    let tmp = tempfile::tempdir().unwrap();
    let listed = ok(hush()
        .args(["man", "--out-dir"])
        .arg(tmp.path())
        .output()
        .unwrap());
    let files: Vec<&str> = listed.lines().collect();
    let names = ok(hush().args(["man", "--list"]).output().unwrap());
    assert_eq!(files.len(), names.lines().count());
    for name in [
        "hush",
        "hush-sops",
        "hush-seal",
        "sops",
        "sops-exec-file",
        "kubeseal",
    ] {
        assert!(
            tmp.path().join(format!("{name}.1")).is_file(),
            "no {name}.1 in {listed}"
        );
    }
    // groff, as `man` runs it: no warnings, and the text has the flags.
    for (page, needle) in [
        ("kubeseal.1", "--recovery-unseal"),
        ("sops-exec-file.1", "--no-fifo"),
        ("hush-completion.1", "powershell"),
    ] {
        let o = Command::new("groff")
            // -P-cbou: plain text, no bold or underline overstrikes.
            .args(["-man", "-Tutf8", "-ww", "-P-cbou"])
            .arg(tmp.path().join(page))
            .output()
            .expect("groff");
        assert!(
            o.stderr.is_empty(),
            "{page}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let text = String::from_utf8_lossy(&o.stdout).replace('\u{2010}', "-");
        assert!(text.contains(needle), "{page} lacks {needle}: {text}");
    }
    // One page on standard output equals the written file.
    let one = hush().args(["man", "sops"]).output().unwrap();
    assert_eq!(
        one.stdout,
        std::fs::read(tmp.path().join("sops.1")).unwrap()
    );
    let o = hush().args(["man", "nope"]).output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("hush man --list"));
}

// ----------------------------------------------------------------------------------------------
// Flags against the real tools.

fn peers() -> HashMap<String, String> {
    hush_testkit::peers().unwrap_or_else(|e| panic!("{e:#}"))
}

/// Long flags in a help text: `--name` at the start of an option line (after `-x, ` or
/// spaces), with the first words of its description.
fn help_flags(help: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let lines: Vec<&str> = help.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start();
        let t = match t.strip_prefix('-') {
            Some(rest) if !rest.starts_with('-') && rest.len() > 3 && &rest[1..3] == ", " => {
                &rest[3..]
            }
            _ => t,
        };
        let Some(rest) = t.strip_prefix("--") else {
            continue;
        };
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        if name.is_empty() {
            continue;
        }
        // clap: `--flag <V>  description` or the description on the next line.
        let desc = match rest.split_once("  ") {
            Some((_, d)) if !d.trim().is_empty() => d.trim().to_owned(),
            _ => lines.get(i + 1).map_or("", |l| l.trim()).to_owned(),
        };
        out.entry(format!("--{name}")).or_insert(desc);
    }
    out
}

fn help_of(bin: &Path, args: &[&str]) -> String {
    let o = Command::new(bin).args(args).arg("--help").output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        !text.trim().is_empty(),
        "{} {args:?} --help printed nothing",
        bin.display()
    );
    text
}

/// Upstream sops flags hush does not have, each with the reason (docs/compatibility.md).
const SOPS_MISSING: &[(&str, &str)] = &[];

/// sops commands hush does not have, with the reason.
const SOPS_MISSING_COMMANDS: &[(&str, &str)] = &[];

const SOPS_COMMANDS: &[&str] = &[
    "",
    "encrypt",
    "decrypt",
    "edit",
    "rotate",
    "updatekeys",
    "set",
    "unset",
    "exec-env",
    "exec-file",
    "filestatus",
    "groups add",
    "groups delete",
    "completion",
    "keyservice",
    "publish",
];

#[test]
#[ignore = "needs scripts/dev-env.sh peers (sops)"]
fn sops_persona_has_every_flag_of_real_sops_and_marks_its_own() {
    let real = PathBuf::from(
        peers()
            .get("HUSH_PEER_SOPS")
            .expect("HUSH_PEER_SOPS missing; run scripts/dev-env.sh"),
    );
    let links = personas();
    let ours = links.path().join("sops");
    let missing: BTreeSet<&str> = SOPS_MISSING.iter().map(|(f, _)| *f).collect();
    let missing_cmds: BTreeSet<&str> = SOPS_MISSING_COMMANDS.iter().map(|(c, _)| *c).collect();
    let mut upstream_all = BTreeSet::new();
    let mut hush_all = BTreeMap::new();
    let mut problems = Vec::new();
    for cmd in SOPS_COMMANDS {
        let words: Vec<&str> = cmd.split_whitespace().collect();
        let upstream = help_flags(&help_of(&real, &words));
        upstream_all.extend(upstream.keys().cloned());
        if missing_cmds.contains(cmd) {
            continue;
        }
        let hush_flags = help_flags(&help_of(&ours, &words));
        for flag in upstream.keys() {
            if !hush_flags.contains_key(flag) && !missing.contains(flag.as_str()) {
                problems.push(format!("sops {cmd}: upstream flag {flag} is missing"));
            }
        }
        hush_all.extend(hush_flags);
    }
    for (flag, desc) in &hush_all {
        if !upstream_all.contains(flag) && !desc.starts_with("hush") {
            problems.push(format!(
                "{flag} is hush's own but its help does not say `hush:`: {desc}"
            ));
        }
    }
    for flag in &missing {
        if hush_all.contains_key(*flag) {
            problems.push(format!("{flag} is listed as missing but hush has it"));
        }
        if !upstream_all.contains(*flag) {
            problems.push(format!(
                "{flag} is listed as missing but sops has no such flag"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Upstream kubeseal flags hush does not have, each with the reason.
const KUBESEAL_MISSING: &[(&str, &str)] = &[];

#[test]
#[ignore = "needs scripts/dev-env.sh peers (kubeseal)"]
fn kubeseal_persona_has_every_flag_of_real_kubeseal_and_marks_its_own() {
    let real = PathBuf::from(
        peers()
            .get("HUSH_PEER_KUBESEAL")
            .expect("HUSH_PEER_KUBESEAL missing; run scripts/dev-env.sh"),
    );
    let links = personas();
    let upstream = help_flags(&help_of(&real, &[]));
    let ours = help_flags(&help_of(&links.path().join("kubeseal"), &[]));
    // klog's flags are accepted but hidden (kubeseal lists them; they do nothing in either).
    let klog = [
        "--add_dir_header",
        "--alsologtostderr",
        "--alsologtostderrthreshold",
        "--legacy_stderr_threshold_behavior",
        "--log_backtrace_at",
        "--log_dir",
        "--log_file",
        "--log_file_max_size",
        "--logtostderr",
        "--one_output",
        "--skip_headers",
        "--skip_log_headers",
        "--stderrthreshold",
        "--v",
        "--vmodule",
    ];
    let missing: BTreeSet<&str> = KUBESEAL_MISSING.iter().map(|(f, _)| *f).collect();
    let mut problems = Vec::new();
    for flag in upstream.keys() {
        if !ours.contains_key(flag)
            && !missing.contains(flag.as_str())
            && !klog.contains(&flag.as_str())
        {
            problems.push(format!("kubeseal flag {flag} is missing"));
        }
    }
    for (flag, desc) in &ours {
        if !upstream.contains_key(flag) && !desc.starts_with("hush") {
            problems.push(format!(
                "{flag} is hush's own but its help does not say `hush:`: {desc}"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
