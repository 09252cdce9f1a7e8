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
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if line.starts_with(';') || line.starts_with('#') {
            pending.push(line[1..].trim_start().to_owned());
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
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
        let (key, value) = split_key_value(line)
            .ok_or_else(|| Error::parse("INI", n + 1, "expected `key = value`"))?;
        let value = if let Some(v) = value.strip_prefix("\"\"\"") {
            // A multi-line value: up to the closing `"""`.
            let mut acc = String::new();
            let mut rest = v.to_owned();
            loop {
                if let Some(end) = rest.find("\"\"\"") {
                    acc.push_str(&rest[..end]);
                    break;
                }
                acc.push_str(&rest);
                acc.push('\n');
                match lines.next() {
                    Some((_, l)) => rest = l.trim_end_matches('\r').to_owned(),
                    None => return Err(Error::parse("INI", n + 1, "unterminated \"\"\" value")),
                }
            }
            acc
        } else {
            unquote(value)
        };
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

fn split_key_value(line: &str) -> Option<(String, &str)> {
    if let Some(rest) = line.strip_prefix("\"\"\"") {
        let end = rest.find("\"\"\"")?;
        let after = rest[end + 3..].trim_start();
        let v = after.strip_prefix(['=', ':'])?;
        return Some((rest[..end].to_owned(), v.trim()));
    }
    if let Some(rest) = line.strip_prefix('`') {
        let end = rest.find('`')?;
        let after = rest[end + 1..].trim_start();
        let v = after.strip_prefix(['=', ':'])?;
        return Some((rest[..end].to_owned(), v.trim()));
    }
    if let Some(rest) = line.strip_prefix('"') {
        let end = rest.find('"')?;
        let after = rest[end + 1..].trim_start();
        let v = after.strip_prefix(['=', ':'])?;
        return Some((rest[..end].to_owned(), v.trim()));
    }
    let i = line.find(['=', ':'])?;
    Some((line[..i].trim().to_owned(), line[i + 1..].trim()))
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

fn quote_value(v: &str) -> String {
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

fn quote_key(k: &str) -> String {
    if k.contains(['"', '=', ':']) {
        format!("`{k}`")
    } else if k.contains('`') {
        format!("\"\"\"{k}\"\"\"")
    } else {
        k.to_owned()
    }
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
        if !first {
            out.push('\n');
        }
        first = false;
        out.push('[');
        out.push_str(name);
        out.push_str("]\n");
        let keys: Vec<String> = entries
            .iter()
            .filter_map(|i| match i {
                Item::Entry(k, _) => Some(quote_key(k)),
                Item::Comment(_) => None,
            })
            .collect();
        let width = keys.iter().map(|k| k.chars().count()).max().unwrap_or(0);
        for e in entries {
            match e {
                Item::Comment(c) => {
                    out.push_str("; ");
                    out.push_str(c);
                    out.push('\n');
                }
                Item::Entry(k, v) => {
                    let s = v.to_flat_string().ok_or_else(|| {
                        Error::Unsupported(format!(
                            "cannot write the nested value of `{name}.{k}` in the INI format"
                        ))
                    })?;
                    let k = quote_key(k);
                    let pad = width - k.chars().count();
                    out.push_str(&k);
                    out.push_str(&" ".repeat(pad));
                    out.push_str(" = ");
                    out.push_str(&quote_value(&s));
                    out.push('\n');
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys and values that need go-ini's quoting read back unchanged.
    #[test]
    fn quoted_keys_and_values_round_trip() {
        let items = vec![Item::Entry(
            "sec".into(),
            Value::Map(vec![
                Item::Entry("a`b".into(), Value::Str("x".into())),
                Item::Entry("c=d".into(), Value::Str("v;w".into())),
                Item::Entry("e".into(), Value::Str(" padded ".into())),
                Item::Entry("f".into(), Value::Str("two\nlines".into())),
            ]),
        )];
        let text = emit(&items).unwrap_or_default();
        assert_eq!(parse(text.as_bytes()).ok(), Some(items), "{text}");
    }
}
