//! dotenv as sops reads it: one `KEY=VALUE` per line, key and value verbatim (no trimming, no
//! quote handling), `\n` in a value is a newline, `#` lines are comments, blank lines skipped.

use crate::tree::{Branch, Item, Value};
use crate::{Error, Result};

/// Parses a dotenv file.
pub fn parse(src: &[u8]) -> Result<Branch> {
    let text = std::str::from_utf8(src)
        .map_err(|_| Error::parse("dotenv", 0, "the file is not valid UTF-8"))?;
    let mut items = Vec::new();
    for (n, line) in text.split('\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        if let Some(c) = line.strip_prefix('#') {
            items.push(Item::Comment(c.to_owned()));
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(Error::parse(
                "dotenv",
                n + 1,
                "invalid dotenv input line: expected KEY=VALUE",
            ));
        };
        items.push(Item::Entry(
            k.to_owned(),
            Value::Str(v.replace("\\n", "\n")),
        ));
    }
    Ok(items)
}

/// Writes a dotenv file; nested values are refused.
pub fn emit(items: &[Item]) -> Result<String> {
    let mut out = String::new();
    for item in items {
        match item {
            Item::Comment(c) | Item::InlineComment(c) => {
                out.push('#');
                out.push_str(c);
                out.push('\n');
            }
            Item::Entry(k, v) => {
                let s = v.to_flat_string().ok_or_else(|| {
                    Error::Unsupported(format!(
                        "cannot write the nested value of `{k}` in the dotenv format"
                    ))
                })?;
                out.push_str(k);
                out.push('=');
                out.push_str(&s.replace('\n', "\\n"));
                out.push('\n');
            }
        }
    }
    Ok(out)
}
