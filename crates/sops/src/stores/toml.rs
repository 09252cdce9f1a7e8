//! TOML, an addition (sops has no TOML store): tables become maps, arrays of tables lists of
//! maps, `#` comment lines before a key or table header become comments. Metadata lives in a
//! `[sops]` table, as in JSON. Selected with `--input-type toml` / `--output-type toml` only, so
//! `.toml` files stay binary as in sops.

use crate::tree::{Branch, Item, Value};
use crate::{Error, Result};

/// Parses a TOML document.
pub fn parse(src: &[u8]) -> Result<Branch> {
    let text = std::str::from_utf8(src)
        .map_err(|_| Error::parse("TOML", 0, "the file is not valid UTF-8"))?;
    let doc: toml_edit::DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
        let line = e.span().map_or(0, |s| super::line_at(src, s.start));
        Error::parse("TOML", line, e.message().to_owned())
    })?;
    Ok(table_items(doc.as_table()))
}

fn comments(prefix: Option<&toml_edit::RawString>, out: &mut Vec<Item>) {
    if let Some(text) = prefix.and_then(toml_edit::RawString::as_str) {
        for line in text.lines() {
            if let Some(c) = line.trim_start().strip_prefix('#') {
                out.push(Item::Comment(c.to_owned()));
            }
        }
    }
}

fn table_items(t: &toml_edit::Table) -> Vec<Item> {
    let mut out = Vec::new();
    for (k, item) in t.iter() {
        match item {
            toml_edit::Item::Table(sub) => comments(sub.decor().prefix(), &mut out),
            _ => comments(t.key(k).and_then(|key| key.leaf_decor().prefix()), &mut out),
        }
        if let Some(v) = item_value(item) {
            out.push(Item::Entry(k.to_owned(), v));
        }
    }
    out
}

fn item_value(item: &toml_edit::Item) -> Option<Value> {
    Some(match item {
        toml_edit::Item::None => return None,
        toml_edit::Item::Value(v) => value(v),
        toml_edit::Item::Table(t) => Value::Map(table_items(t)),
        toml_edit::Item::ArrayOfTables(a) => {
            Value::List(a.iter().map(|t| Value::Map(table_items(t))).collect())
        }
    })
}

fn value(v: &toml_edit::Value) -> Value {
    match v {
        toml_edit::Value::String(s) => Value::Str(s.value().clone()),
        toml_edit::Value::Integer(i) => Value::Int(*i.value()),
        toml_edit::Value::Float(f) => Value::Float(*f.value()),
        toml_edit::Value::Boolean(b) => Value::Bool(*b.value()),
        toml_edit::Value::Datetime(d) => {
            let text = d.value().to_string();
            match hush_gocompat::time::parse_rfc3339(&text) {
                Some(t) => Value::Time(t.nano()),
                None => Value::Str(text),
            }
        }
        toml_edit::Value::Array(a) => Value::List(a.iter().map(value).collect()),
        toml_edit::Value::InlineTable(t) => Value::Map(
            t.iter()
                .map(|(k, v)| Item::Entry(k.to_owned(), value(v)))
                .collect(),
        ),
    }
}

/// Puts each map's plain values before its tables, as TOML requires and as the file will be read
/// back, so the MAC (computed in tree order) matches what a reader walks. Comments move with the
/// entry they precede.
pub fn normalize(items: &mut Vec<Item>) {
    let mut units: Vec<(bool, Vec<Item>)> = Vec::new();
    let mut pending: Vec<Item> = Vec::new();
    for mut it in items.drain(..) {
        match &mut it {
            Item::Comment(_) | Item::InlineComment(_) => pending.push(it),
            Item::Entry(_, v) => {
                normalize_value(v);
                let table = is_table(v);
                pending.push(it);
                units.push((table, std::mem::take(&mut pending)));
            }
        }
    }
    units.sort_by_key(|(table, _)| *table);
    items.extend(units.into_iter().flat_map(|(_, u)| u));
    items.extend(pending);
}

fn normalize_value(v: &mut Value) {
    match v {
        Value::Map(m) => normalize(m),
        Value::List(l) => l.iter_mut().for_each(normalize_value),
        _ => {}
    }
}

fn is_table(v: &Value) -> bool {
    match v {
        Value::Map(_) => true,
        Value::List(l) => {
            let mut vals = l
                .iter()
                .filter(|v| !matches!(v, Value::Comment(_)))
                .peekable();
            vals.peek().is_some() && vals.all(|v| matches!(v, Value::Map(_)))
        }
        _ => false,
    }
}

/// Writes a document as TOML. `null` has no TOML form and is refused with its key path.
pub fn emit(items: &[Item]) -> Result<String> {
    let mut items = items.to_vec();
    normalize(&mut items);
    let mut doc = toml_edit::DocumentMut::new();
    fill(doc.as_table_mut(), &items, "")?;
    Ok(doc.to_string())
}

fn comment_prefix(pending: &mut Vec<String>) -> String {
    let s: String = pending.iter().map(|c| format!("#{c}\n")).collect();
    pending.clear();
    s
}

fn fill(t: &mut toml_edit::Table, items: &[Item], path: &str) -> Result<()> {
    let mut pending: Vec<String> = Vec::new();
    for it in items {
        match it {
            Item::Comment(c) | Item::InlineComment(c) => pending.push(c.clone()),
            Item::Entry(k, v) => {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                let item = to_item(v, &p)?;
                let is_table = matches!(item, toml_edit::Item::Table(_));
                t.insert(k, item);
                if !pending.is_empty() {
                    let prefix = comment_prefix(&mut pending);
                    if is_table {
                        if let Some(sub) = t.get_mut(k).and_then(toml_edit::Item::as_table_mut) {
                            sub.decor_mut().set_prefix(format!("\n{prefix}"));
                        }
                    } else if let Some(mut key) = t.key_mut(k) {
                        key.leaf_decor_mut().set_prefix(prefix);
                    }
                }
            }
        }
    }
    Ok(())
}

fn to_item(v: &Value, path: &str) -> Result<toml_edit::Item> {
    Ok(match v {
        Value::Map(m) => {
            let mut t = toml_edit::Table::new();
            fill(&mut t, m, path)?;
            toml_edit::Item::Table(t)
        }
        Value::List(l) if is_table(v) => {
            let mut a = toml_edit::ArrayOfTables::new();
            for v in l {
                if let Value::Map(m) = v {
                    let mut t = toml_edit::Table::new();
                    fill(&mut t, m, path)?;
                    a.push(t);
                }
            }
            toml_edit::Item::ArrayOfTables(a)
        }
        v => toml_edit::Item::Value(to_value(v, path)?),
    })
}

fn to_value(v: &Value, path: &str) -> Result<toml_edit::Value> {
    Ok(match v {
        Value::Str(s) | Value::Comment(s) => s.as_str().into(),
        Value::Int(i) => (*i).into(),
        Value::Float(f) => (*f).into(),
        Value::Bool(b) => (*b).into(),
        Value::Time(t) => match t.parse::<toml_edit::Datetime>() {
            Ok(d) => d.into(),
            Err(_) => t.as_str().into(),
        },
        Value::Bytes(_) => {
            return Err(Error::Unsupported(format!(
                "TOML cannot hold the binary value at `{path}`"
            )));
        }
        Value::Null => {
            return Err(Error::Unsupported(format!(
                "TOML has no null: the value at `{path}` cannot be written"
            )));
        }
        Value::List(l) => {
            let mut a = toml_edit::Array::new();
            for v in l.iter().filter(|v| !matches!(v, Value::Comment(_))) {
                a.push(to_value(v, path)?);
            }
            toml_edit::Value::Array(a)
        }
        Value::Map(m) => {
            let mut t = toml_edit::InlineTable::new();
            for it in m {
                if let Item::Entry(k, v) = it {
                    t.insert(k, to_value(v, &format!("{path}.{k}"))?);
                }
            }
            toml_edit::Value::InlineTable(t)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_comments_tables_and_arrays() {
        let src = "# top\ntitle = \"x\"\nn = 5\nf = 1.5\nok = true\nwhen = 2024-01-02T03:04:05Z\n\n# the db\n[db]\nuser = \"admin\"\nports = [1, 2]\n\n[[servers]]\nname = \"a\"\n\n[[servers]]\nname = \"b\"\n";
        let b = parse(src.as_bytes()).unwrap_or_default();
        assert_eq!(b.len(), 9, "{b:?}");
        let out = emit(&b).unwrap_or_default();
        assert_eq!(parse(out.as_bytes()).ok(), Some(b), "{out}");
        assert!(out.contains("# the db\n[db]"), "{out}");
        assert!(emit(&[Item::Entry("a".into(), Value::Null)]).is_err());
        assert!(parse(b"a = ").is_err());
    }
}
