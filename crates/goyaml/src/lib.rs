//! go-yaml for hush's YAML writers. [`v2`] is go-yaml v2's block writer, shared by kubeseal's
//! `-o yaml` output (hush-sealing) and ESO's `toYaml` (hush-template), which both go through
//! `sigs.k8s.io/yaml`. The free functions are the scalar rules that go-yaml v2 and v3 inherit from
//! libyaml's emitter (`yaml_emitter_analyze_scalar`, `is_printable`, the base-60 float pattern of
//! YAML 1.1), plus v2's YAML 1.1 resolver and key order. The v3 writer (sops' output) stays in
//! hush-sops because the two Go libraries differ in indentation, key order, line folding and tag
//! resolution; what they agree on lives here, once.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod alias;
mod resolve;
pub mod v2;

pub use resolve::{Resolved, resolve as resolve_v2, resolves_to_string as resolves_to_string_v2};

/// Which block-context styles libyaml allows for a string (`yaml_emitter_analyze_scalar`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScalarAnalysis {
    /// The string contains a line break.
    pub multiline: bool,
    /// It may be written plain (unquoted).
    pub plain_allowed: bool,
    /// It may be written single-quoted.
    pub single_quoted_allowed: bool,
    /// It may be written as a literal or folded block.
    pub block_allowed: bool,
}

/// libyaml's line-break characters: CR, LF, NEL, LS, PS.
pub fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// libyaml's `is_printable`: LF, printable ASCII and the BMP minus surrogates, U+FEFF and
/// U+FFFE/FFFF. Characters outside the BMP are not "printable" and get `\U` escapes.
pub fn is_printable(c: char) -> bool {
    let v = u32::from(c);
    v == 0x0A
        || (0x20..=0x7E).contains(&v)
        || (0xA0..=0xD7FF).contains(&v)
        || ((0xE000..=0xFFFD).contains(&v) && v != 0xFEFF)
}

/// libyaml's `IS_BLANKZ`: space, tab, a break, NUL, or the end of the string.
fn is_blankz(c: Option<char>) -> bool {
    c.is_none_or(|c| c == ' ' || c == '\t' || c == '\0' || is_break(c))
}

/// `yaml_emitter_analyze_scalar` for the block context.
pub fn analyze(s: &str) -> ScalarAnalysis {
    if s.is_empty() {
        return ScalarAnalysis {
            multiline: false,
            plain_allowed: true,
            single_quoted_allowed: true,
            block_allowed: false,
        };
    }
    let chars: Vec<char> = s.chars().collect();
    let last = chars.len() - 1;
    let mut block_indicators = s.starts_with("---") || s.starts_with("...");
    let (mut line_breaks, mut special) = (false, false);
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) =
        (false, false, false, false);
    let (mut break_space, mut space_break) = (false, false);
    let (mut previous_space, mut previous_break) = (false, false);
    let mut preceded_by_whitespace = true;
    for (i, &c) in chars.iter().enumerate() {
        let followed_by_whitespace = is_blankz(chars.get(i + 1).copied());
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => block_indicators = true,
                '?' | ':' | '-' if followed_by_whitespace => block_indicators = true,
                _ => {}
            }
        } else {
            match c {
                ':' if followed_by_whitespace => block_indicators = true,
                '#' if preceded_by_whitespace => block_indicators = true,
                _ => {}
            }
        }
        if !is_printable(c) {
            special = true;
        }
        if c == ' ' {
            leading_space |= i == 0;
            trailing_space |= i == last;
            break_space |= previous_break;
            previous_space = true;
            previous_break = false;
        } else if is_break(c) {
            line_breaks = true;
            leading_break |= i == 0;
            trailing_break |= i == last;
            space_break |= previous_space;
            previous_space = false;
            previous_break = true;
        } else {
            previous_space = false;
            previous_break = false;
        }
        preceded_by_whitespace = is_blankz(Some(c));
    }
    let edge_whitespace = leading_space || leading_break || trailing_space || trailing_break;
    ScalarAnalysis {
        multiline: line_breaks,
        plain_allowed: !(edge_whitespace
            || break_space
            || space_break
            || special
            || line_breaks
            || block_indicators),
        single_quoted_allowed: !(break_space || space_break || special),
        block_allowed: !(trailing_space || space_break || special),
    }
}

/// YAML 1.1's sexagesimal float, `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`: both
/// go-yaml versions quote such strings (`1:20`) so that YAML 1.1 readers keep them strings.
pub fn is_base60_float(s: &str) -> bool {
    let b = s.as_bytes();
    let digit_or_underscore = |i: usize| b.get(i).is_some_and(|c| c.is_ascii_digit() || *c == b'_');
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    if !b.get(i).is_some_and(u8::is_ascii_digit) || !s.contains(':') {
        return false;
    }
    while digit_or_underscore(i) {
        i += 1;
    }
    let mut groups = 0;
    while b.get(i) == Some(&b':') {
        i += 1;
        let start = i;
        while i - start < 2 && b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        match &b[start..i] {
            [_] => {}
            [tens, _] if *tens <= b'5' => {}
            _ => return false,
        }
        groups += 1;
    }
    if groups == 0 {
        return false;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        while digit_or_underscore(i) {
            i += 1;
        }
    }
    i == b.len()
}

/// go-yaml v2's map key order (`keyList.Less`), which kubeseal and `sigs.k8s.io/yaml` output
/// follow: letters compare by code point, a non-letter sorts before a letter, and runs of
/// digits compare by numeric value (`a9` < `a10`).
pub fn v2_key_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (ar, br): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let less = |x: bool| if x { Ordering::Less } else { Ordering::Greater };
    let digit_value = |c: char| i64::from(u32::from(c)).wrapping_sub(i64::from(u32::from('0')));
    for i in 0..ar.len().min(br.len()) {
        if ar[i] == br[i] {
            continue;
        }
        let (al, bl) = (ar[i].is_alphabetic(), br[i].is_alphabetic());
        if al && bl {
            return less(ar[i] < br[i]);
        }
        if al || bl {
            return less(bl);
        }
        // Numbers with leading zeros: a non-zero digit before them makes both sides count.
        let (mut an, mut bn): (i64, i64) = (0, 0);
        if ar[i] == '0' || br[i] == '0' {
            let mut j = i;
            while j > 0 && ar[j - 1].is_numeric() {
                j -= 1;
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && ar[ai].is_numeric() {
            an = an.wrapping_mul(10).wrapping_add(digit_value(ar[ai]));
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && br[bi].is_numeric() {
            bn = bn.wrapping_mul(10).wrapping_add(digit_value(br[bi]));
            bi += 1;
        }
        if an != bn {
            return less(an < bn);
        }
        if ai != bi {
            return less(ai < bi);
        }
        return less(ar[i] < br[i]);
    }
    ar.len().cmp(&br.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plain_is_refused_where_libyaml_refuses_it() {
        for s in [
            "- x", "a: b", "a #b", "*x", "&a", "!t", "|", ">", "'q", "\"q", "%", "@", "`", "#",
            "---x", "...x", " lead", "trail ", "a\nb", ":", "? q", "[", "{", ",",
        ] {
            assert!(!analyze(s).plain_allowed, "{s:?}");
        }
        for s in ["hello world", "a:b", "a#b", "-x", "1.2.3", "it's", ""] {
            assert!(analyze(s).plain_allowed, "{s:?}");
        }
    }

    #[test]
    fn styles_for_breaks_and_special_characters() {
        let a = analyze("line1\nline2\n");
        assert!(a.multiline && a.block_allowed && a.single_quoted_allowed && !a.plain_allowed);
        // A space before a break forbids every style but double quotes.
        let a = analyze("a \nb");
        assert!(!a.plain_allowed && !a.single_quoted_allowed && !a.block_allowed);
        // Not printable (tab, astral plane): double quotes only.
        for s in ["a\tb", "\u{1F600}", "\u{FEFF}x"] {
            let a = analyze(s);
            assert!(
                !a.plain_allowed && !a.single_quoted_allowed && !a.block_allowed,
                "{s:?}"
            );
        }
        assert!(!analyze("").block_allowed);
        assert!(!analyze("x ").block_allowed);
    }

    #[test]
    fn base60_floats() {
        for s in ["1:20", "-1:20", "+190:20:30.15", "1_0:5:9", "1:59.", "1:2"] {
            assert!(is_base60_float(s), "{s}");
        }
        for s in [
            "1:60", "1:200", "1", ":20", "a:20", "1:20a", "1:", "1::2", "", "1:2.3.4",
        ] {
            assert!(!is_base60_float(s), "{s}");
        }
    }

    #[test]
    fn v2_natural_key_order() {
        let mut keys = vec!["a10", "a9", "b", "a.b", "A", "a-b", "a", "a010", "a01"];
        keys.sort_by(|a, b| v2_key_cmp(a, b));
        assert_eq!(
            keys,
            vec!["A", "a", "a-b", "a.b", "a01", "a9", "a10", "a010", "b"]
        );
        // The order go-yaml v2 printed for these keys (tools/gotemplate-oracle).
        let mut keys = vec!["a010", "10", "K", "a", "2", "_u", "a10b", "1"];
        keys.sort_by(|a, b| v2_key_cmp(a, b));
        assert_eq!(keys, vec!["_u", "1", "2", "10", "K", "a", "a10b", "a010"]);
    }

    proptest! {
        #[test]
        fn analysis_never_panics_and_plain_implies_single(s in "\\PC{0,40}") {
            let a = analyze(&s);
            prop_assert!(!a.plain_allowed || a.single_quoted_allowed || s.is_empty());
            let _ = is_base60_float(&s);
        }
    }
}
