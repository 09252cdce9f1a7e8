//! INI as sops reads and writes it (go-ini semantics): sections become top-level maps of
//! string values; `;`/`#` comments before a key or section are kept as comments; keys before
//! any section belong to `DEFAULT`. Output aligns `=` per section and separates sections with
//! a blank line.

use crate::tree::{Branch, Item, Value};
use crate::{Error, Result};

/// Parses an INI file into one map of sections.
pub fn parse(src: &[u8]) -> Result<Branch> {
    let text = std::str::from_utf8(src)
        .map_err(|_| Error::parse("INI", 0, "the file is not valid UTF-8"))?;
    let mut sections: Vec<(String, Vec<Item>)> = vec![("DEFAULT".into(), Vec::new())];
    let mut pending: Vec<String> = Vec::new();
    let mut lines = text.split('\n').enumerate();
    while let Some((n, raw)) = lines.next() {
        let line = strip_cr(raw).trim_start();
        if line.trim_end().is_empty() {
            continue;
        }
        if line.starts_with(';') || line.starts_with('#') {
            pending.push(line[1..].trim().to_owned());
            continue;
        }
        if let Some(rest) = line.trim_end().strip_prefix('[') {
            let name = rest
                .strip_suffix(']')
                .ok_or_else(|| Error::parse("INI", n + 1, "unclosed section header"))?
                .trim()
                .to_owned();
            let comments: Vec<Item> = pending.drain(..).map(Item::Comment).collect();
            match sections.iter_mut().find(|(s, _)| *s == name) {
                Some((_, items)) => items.extend(comments),
                None => sections.push((name, comments)),
            }
            continue;
        }
        let (key, value) = read_entry(line, &mut lines.by_ref().map(|(_, l)| l))
            .map_err(|message| Error::parse("INI", n + 1, message))?;
        let comments: Vec<Item> = pending.drain(..).map(Item::Comment).collect();
        let Some((_, items)) = sections.last_mut() else {
            return Err(Error::parse("INI", n + 1, "internal: no section"));
        };
        items.extend(comments);
        if items
            .iter()
            .any(|i| matches!(i, Item::Entry(k, _) if *k == key))
        {
            // go-ini keeps the last value of a repeated key.
            items.retain(|i| !matches!(i, Item::Entry(k, _) if *k == key));
        }
        items.push(Item::Entry(key, Value::Str(value)));
    }
    let mut out = Vec::new();
    for (name, items) in sections {
        if name == "DEFAULT" && !items.iter().any(|i| matches!(i, Item::Entry(..))) {
            continue;
        }
        out.push(Item::Entry(name, Value::Map(items)));
    }
    Ok(out)
}

fn strip_cr(line: &str) -> &str {
    line.strip_suffix('\r').unwrap_or(line)
}

/// Reads one `key = value` entry starting at `line` (left-trimmed, no `\r`); a `"""` value takes
/// the following lines from `more` up to its closing `"""`.
fn read_entry<'a>(
    line: &str,
    more: &mut impl Iterator<Item = &'a str>,
) -> Result<(String, String), &'static str> {
    let (key, value) = split_key_value(line).ok_or("expected `key = value`")?;
    let Some(first) = value.strip_prefix("\"\"\"") else {
        return Ok((key, unquote(value.trim_end())));
    };
    // A multi-line value: every byte up to the closing `"""`.
    let mut acc = String::new();
    let mut rest = first;
    loop {
        if let Some(end) = rest.find("\"\"\"") {
            acc.push_str(&rest[..end]);
            return Ok((key, acc));
        }
        acc.push_str(rest);
        acc.push('\n');
        rest = strip_cr(more.next().ok_or("unterminated \"\"\" value")?);
    }
}

/// Splits a key line into the key and the value (left-trimmed, still quoted).
fn split_key_value(line: &str) -> Option<(String, &str)> {
    for quote in ["\"\"\"", "`", "\""] {
        if let Some(rest) = line.strip_prefix(quote) {
            let end = rest.find(quote)?;
            let after = rest[end + quote.len()..].trim_start();
            let v = after.strip_prefix(['=', ':'])?;
            return Some((rest[..end].to_owned(), v.trim_start()));
        }
    }
    let i = line.find(['=', ':'])?;
    Some((line[..i].trim().to_owned(), line[i + 1..].trim_start()))
}

fn unquote(v: &str) -> String {
    for q in ['`', '"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return v[1..v.len() - 1].to_owned();
        }
    }
    // go-ini strips inline comments starting at `#` or `;`.
    match v.find(['#', ';']) {
        Some(i) => v[..i].trim_end().to_owned(),
        None => v.to_owned(),
    }
}

/// go-ini's quoting of a value.
fn goini_value(v: &str) -> String {
    if v.contains(['\n', '`']) {
        format!("\"\"\"{v}\"\"\"")
    } else if v.contains(['#', ';']) {
        format!("`{v}`")
    } else if v.trim() != v {
        format!("\"{v}\"")
    } else {
        v.to_owned()
    }
}

/// go-ini's quoting of a key.
fn goini_key(k: &str) -> String {
    if k.contains(['"', '=', ':']) {
        format!("`{k}`")
    } else if k.contains('`') {
        format!("\"\"\"{k}\"\"\"")
    } else {
        k.to_owned()
    }
}

/// The ways a key or value can be written: go-ini's choice first (so output matches sops), then
/// the other quotings, for text go-ini's choice would not read back (e.g. a key with `"` and `` ` ``).
fn spellings(text: &str, goini: String) -> [String; 5] {
    [
        goini,
        text.to_owned(),
        format!("`{text}`"),
        format!("\"{text}\""),
        format!("\"\"\"{text}\"\"\""),
    ]
}

/// What the reader makes of `text` as a whole file body of one entry, or `None` when it is not
/// exactly one entry.
fn read_back(text: &str) -> Option<(String, String)> {
    let mut lines = text.split('\n');
    let first = strip_cr(lines.next()?).trim_start();
    if first.trim_end().is_empty() || first.starts_with([';', '#', '[']) {
        return None;
    }
    let entry = read_entry(first, &mut lines).ok()?;
    lines.next().is_none().then_some(entry)
}

/// The key as written, chosen so that the reader reads back exactly `key`.
fn write_key(section: &str, key: &str) -> Result<String> {
    spellings(key, goini_key(key))
        .into_iter()
        .find(|k| read_back(&format!("{k} = v")).is_some_and(|(rk, _)| rk == key))
        .ok_or_else(|| {
            Error::Unsupported(format!(
                "the key `{section}.{key}` cannot be written in the INI format (no quoting reads it back: it has a line break, surrounding spaces, or every quote character); rename it or use another output format (--output-type yaml or json)"
            ))
        })
}

/// The value as written, chosen so that the reader reads back exactly `value`.
fn write_value(section: &str, key: &str, value: &str) -> Result<String> {
    spellings(value, goini_value(value))
        .into_iter()
        .find(|v| read_back(&format!("k = {v}")).is_some_and(|(_, rv)| rv == value))
        .ok_or_else(|| {
            Error::Unsupported(format!(
                "the value of `{section}.{key}` cannot be written in the INI format (no quoting reads it back, e.g. it has both `\"\"\"` and a line break or a carriage return before a line break); use another output format (--output-type yaml or json)"
            ))
        })
}

/// Writes sections (top-level maps of scalars) as INI.
pub fn emit(items: &[Item]) -> Result<String> {
    let mut out = String::new();
    let mut first = true;
    for item in items {
        let Item::Entry(name, v) = item else {
            continue;
        };
        let Value::Map(entries) = v else {
            return Err(Error::Unsupported(format!(
                "INI needs sections: the top-level value `{name}` is not a mapping"
            )));
        };
        if name.trim() != name || name.contains(['\n', '\r']) {
            return Err(Error::Unsupported(format!(
                "the section name {name:?} cannot be written in the INI format (surrounding spaces or a line break); rename it or use another output format"
            )));
        }
        if !first {
            out.push('\n');
        }
        first = false;
        out.push('[');
        out.push_str(name);
        out.push_str("]\n");
        let mut lines: Vec<Option<(String, String)>> = Vec::with_capacity(entries.len());
        for e in entries {
            lines.push(match e {
                Item::Comment(_) | Item::InlineComment(_) => None,
                Item::Entry(k, v) => {
                    let s = v.to_flat_string().ok_or_else(|| {
                        Error::Unsupported(format!(
                            "cannot write the nested value of `{name}.{k}` in the INI format"
                        ))
                    })?;
                    Some((write_key(name, k)?, write_value(name, k, &s)?))
                }
            });
        }
        let width = lines
            .iter()
            .flatten()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        for (e, line) in entries.iter().zip(&lines) {
            match (e, line) {
                (Item::Comment(c) | Item::InlineComment(c), _) => {
                    // One `;` line per comment line, so a multi-line comment stays a comment.
                    for part in c.split('\n') {
                        out.push_str("; ");
                        out.push_str(strip_cr(part));
                        out.push('\n');
                    }
                }
                (Item::Entry(..), Some((k, v))) => {
                    out.push_str(k);
                    out.push_str(&" ".repeat(width - k.chars().count()));
                    out.push_str(" = ");
                    out.push_str(v);
                    out.push('\n');
                }
                (Item::Entry(..), None) => {}
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(entries: Vec<(&str, &str)>) -> Branch {
        vec![Item::Entry(
            "sec".into(),
            Value::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| Item::Entry(k.into(), Value::Str(v.into())))
                    .collect(),
            ),
        )]
    }

    /// Keys and values that need go-ini's quoting read back unchanged.
    #[test]
    fn quoted_keys_and_values_round_trip() {
        let items = section(vec![
            ("a`b", "x"),
            ("c=d", "v;w"),
            ("e", " padded "),
            ("f", "two\nlines"),
            ("g", "first line ends in spaces  \nnext"),
            ("h", "'single quoted'"),
        ]);
        let text = emit(&items).unwrap_or_default();
        assert_eq!(parse(text.as_bytes()).ok(), Some(items), "{text}");
    }

    /// Fuzz finding (sops_ini, crash-7b890e6e): the key `@"`"` has both quote characters, so
    /// go-ini's backtick quoting cut it short and the written line no longer parsed.
    #[test]
    fn key_with_double_quote_and_backtick_reads_back() -> Result<()> {
        let docs = parse(b"@\"`\":")?;
        let text = emit(&docs)?;
        assert_eq!(text, "[DEFAULT]\n@\"`\" = \n");
        assert_eq!(parse(text.as_bytes())?, docs);
        Ok(())
    }

    /// go-ini's own quoting is kept where it reads back, so output stays byte-identical to sops.
    #[test]
    fn goini_quoting_is_preferred() -> Result<()> {
        let text = emit(&section(vec![("a\"b", "x#y"), ("pl", "v")]))?;
        assert_eq!(text, "[sec]\n`a\"b` = `x#y`\npl    = v\n");
        Ok(())
    }

    /// A key or section that no quoting can carry is refused with its path, never mangled.
    #[test]
    fn unwritable_names_are_refused_by_path() {
        let err = emit(&section(vec![("two\nlines", "v")])).err();
        assert!(
            err.as_ref()
                .is_some_and(|e| e.to_string().contains("sec.two\nlines")),
            "{err:?}"
        );
        let err = emit(&section(vec![("k", "a\"\"\"b\nc")])).err();
        assert!(
            err.as_ref()
                .is_some_and(|e| e.to_string().contains("`sec.k`")),
            "{err:?}"
        );
        let bad_section = vec![Item::Entry(" s".into(), Value::Map(Vec::new()))];
        assert!(emit(&bad_section).is_err());
    }

    /// A key that starts like a section header or a comment is quoted instead of being read as one.
    #[test]
    fn keys_that_look_like_headers_or_comments_are_quoted() -> Result<()> {
        let items = section(vec![("[x", "1"), (";y", "2"), ("#z", "3")]);
        let text = emit(&items)?;
        assert_eq!(parse(text.as_bytes())?, items, "{text}");
        Ok(())
    }

    /// A multi-line comment is written as one `;` line per line.
    #[test]
    fn multi_line_comment_stays_comment() -> Result<()> {
        let items = vec![Item::Entry(
            "sec".into(),
            Value::Map(vec![
                Item::Comment("one\ntwo".into()),
                Item::Entry("k".into(), Value::Str("v".into())),
            ]),
        )];
        let text = emit(&items)?;
        assert_eq!(text, "[sec]\n; one\n; two\nk = v\n");
        Ok(())
    }
}
