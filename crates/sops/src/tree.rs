//! The sops tree: documents of ordered maps whose comments are items, as sops keeps them.
//!
//! A [`Branch`] is one document (a map). Map comments are [`Item::Comment`]s between entries,
//! a comment on the same line as a scalar value (`k: v # c`) is an [`Item::InlineComment`] just
//! before its entry; list comments are [`Value::Comment`] elements. `Debug` never shows a scalar's content.

use std::fmt;

use crate::goformat;

/// One document: an ordered map.
pub type Branch = Vec<Item>;

/// An entry of a map: a key with its value, or a comment line (text after `#`).
#[derive(Clone, PartialEq)]
pub enum Item {
    /// `key: value`.
    Entry(String, Value),
    /// A comment line, without the `#`.
    Comment(String),
    /// The comment written after the value of the next entry on its line (`k: v # c`), without
    /// the `#`. It sits before its entry, so comment selection rules see it as sops 3.11 did
    /// (3.11 moved it there as a head comment); sops 3.13 writes it back inline.
    InlineComment(String),
}

/// A value of the tree.
#[derive(Clone, PartialEq)]
pub enum Value {
    /// `null`: never encrypted.
    Null,
    /// A UTF-8 string.
    Str(String),
    /// Bytes that are not UTF-8 (binary store payload, legacy `bytes` type); typed `str`.
    Bytes(Vec<u8>),
    /// A 64-bit integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A timestamp, kept as Go's RFC 3339 (nano) text.
    Time(String),
    /// A nested map.
    Map(Vec<Item>),
    /// A list; comments inside lists are [`Value::Comment`] elements.
    List(Vec<Value>),
    /// A comment inside a list.
    Comment(String),
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("Null"),
            Value::Str(s) => write!(f, "Str(<{} bytes>)", s.len()),
            Value::Bytes(b) => write!(f, "Bytes(<{} bytes>)", b.len()),
            Value::Int(_) => f.write_str("Int(<redacted>)"),
            Value::Float(_) => f.write_str("Float(<redacted>)"),
            Value::Bool(_) => f.write_str("Bool(<redacted>)"),
            Value::Time(_) => f.write_str("Time(<redacted>)"),
            Value::Comment(_) => f.write_str("Comment(<redacted>)"),
            Value::Map(m) => f.debug_list().entries(m).finish(),
            Value::List(l) => f.debug_list().entries(l).finish(),
        }
    }
}

impl fmt::Debug for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Item::Entry(k, v) => f.debug_tuple("Entry").field(k).field(v).finish(),
            Item::Comment(_) => f.write_str("Comment(<redacted>)"),
            Item::InlineComment(_) => f.write_str("InlineComment(<redacted>)"),
        }
    }
}

/// The `type:` of an `ENC[…]` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueType {
    /// `str`.
    Str,
    /// `int`.
    Int,
    /// `float`.
    Float,
    /// `bool`.
    Bool,
    /// `time`.
    Time,
    /// `comment`.
    Comment,
    /// `bytes` (legacy Python sops).
    Bytes,
}

impl ValueType {
    /// The name written after `type:`.
    pub fn as_str(self) -> &'static str {
        match self {
            ValueType::Str => "str",
            ValueType::Int => "int",
            ValueType::Float => "float",
            ValueType::Bool => "bool",
            ValueType::Time => "time",
            ValueType::Comment => "comment",
            ValueType::Bytes => "bytes",
        }
    }

    /// Parses a `type:` name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "str" => ValueType::Str,
            "int" => ValueType::Int,
            "float" => ValueType::Float,
            "bool" => ValueType::Bool,
            "time" => ValueType::Time,
            "comment" => ValueType::Comment,
            "bytes" => ValueType::Bytes,
            _ => return None,
        })
    }
}

impl Value {
    /// Whether this is a scalar leaf (not a map or list).
    pub fn is_leaf(&self) -> bool {
        !matches!(self, Value::Map(_) | Value::List(_))
    }

    /// The `ENC[…]` type and plaintext bytes of a leaf, serialized exactly as sops does
    /// (`ToBytes`). `None` for null, maps and lists.
    pub fn to_plaintext(&self) -> Option<(ValueType, Vec<u8>)> {
        Some(match self {
            Value::Str(s) => (ValueType::Str, s.as_bytes().to_vec()),
            Value::Bytes(b) => (ValueType::Str, b.clone()),
            Value::Int(i) => (ValueType::Int, i.to_string().into_bytes()),
            Value::Float(x) => (ValueType::Float, goformat::format_f(*x).into_bytes()),
            Value::Bool(b) => (
                ValueType::Bool,
                if *b {
                    b"True".to_vec()
                } else {
                    b"False".to_vec()
                },
            ),
            Value::Time(t) => (ValueType::Time, t.as_bytes().to_vec()),
            Value::Comment(c) => (ValueType::Comment, c.as_bytes().to_vec()),
            Value::Null | Value::Map(_) | Value::List(_) => return None,
        })
    }

    /// Appends the MAC bytes of a leaf (sops' `ToBytes`) to `out` without allocating.
    pub(crate) fn write_mac_bytes(&self, out: &mut dyn FnMut(&[u8])) {
        match self {
            Value::Str(s) => out(s.as_bytes()),
            Value::Bytes(b) => out(b),
            Value::Int(i) => out(i.to_string().as_bytes()),
            Value::Float(x) => out(goformat::format_f(*x).as_bytes()),
            Value::Bool(true) => out(b"True"),
            Value::Bool(false) => out(b"False"),
            Value::Time(t) => out(t.as_bytes()),
            Value::Comment(_) | Value::Null | Value::Map(_) | Value::List(_) => {}
        }
    }

    /// Rebuilds a leaf from decrypted plaintext and its `type:`. `None` when the plaintext does
    /// not parse as that type.
    pub fn from_plaintext(ty: ValueType, plaintext: Vec<u8>) -> Option<Value> {
        Some(match ty {
            ValueType::Str => match String::from_utf8(plaintext) {
                Ok(s) => Value::Str(s),
                Err(e) => Value::Bytes(e.into_bytes()),
            },
            ValueType::Bytes => match String::from_utf8(plaintext) {
                Ok(s) => Value::Str(s),
                Err(e) => Value::Bytes(e.into_bytes()),
            },
            ValueType::Int => {
                Value::Int(goformat::parse_int(std::str::from_utf8(&plaintext).ok()?)?)
            }
            ValueType::Float => Value::Float(goformat::parse_float(
                std::str::from_utf8(&plaintext).ok()?,
            )?),
            ValueType::Bool => {
                Value::Bool(goformat::parse_bool(std::str::from_utf8(&plaintext).ok()?)?)
            }
            ValueType::Time => Value::Time(
                hush_gocompat::time::parse_rfc3339(std::str::from_utf8(&plaintext).ok()?)?.nano(),
            ),
            ValueType::Comment => Value::Comment(String::from_utf8(plaintext).ok()?),
        })
    }

    /// A string view of a scalar as the flat stores (dotenv, INI) write it (sops' `ValToString`).
    pub fn to_flat_string(&self) -> Option<String> {
        Some(match self {
            Value::Str(s) => s.clone(),
            Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
            Value::Int(i) => i.to_string(),
            Value::Float(x) => goformat::format_g_upper(*x),
            Value::Bool(b) => b.to_string(),
            Value::Time(t) => t.clone(),
            Value::Null => String::new(),
            Value::Comment(c) => c.clone(),
            Value::Map(_) | Value::List(_) => return None,
        })
    }
}

/// A path step used by `--extract`, `set` and `unset`: a map key or a list index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathStep {
    /// `["key"]`.
    Key(String),
    /// `[0]`.
    Index(usize),
}

/// Parses sops' index syntax `["a"]["b"][0]`.
pub fn parse_index_path(s: &str) -> Option<Vec<PathStep>> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        rest = rest.strip_prefix('[')?;
        if let Some(r) = rest.strip_prefix('"') {
            let mut key = String::new();
            let mut chars = r.char_indices();
            let end;
            loop {
                let (i, c) = chars.next()?;
                match c {
                    '\\' => {
                        let (_, e) = chars.next()?;
                        key.push(e);
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => key.push(c),
                }
            }
            rest = r[end..].trim_start().strip_prefix(']')?;
            out.push(PathStep::Key(key));
        } else if let Some(r) = rest.strip_prefix('\'') {
            let end = r.find('\'')?;
            out.push(PathStep::Key(r[..end].to_owned()));
            rest = r[end + 1..].trim_start().strip_prefix(']')?;
        } else {
            let end = rest.find(']')?;
            let idx: usize = rest[..end].trim().parse().ok()?;
            out.push(PathStep::Index(idx));
            rest = &rest[end + 1..];
        }
        rest = rest.trim_start();
    }
    Some(out)
}

/// Looks up `path` in a document.
pub fn get<'a>(branch: &'a [Item], path: &[PathStep]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let PathStep::Key(k) = first else { return None };
    let v = branch.iter().find_map(|i| match i {
        Item::Entry(key, v) if key == k => Some(v),
        _ => None,
    })?;
    get_value(v, rest)
}

fn get_value<'a>(v: &'a Value, path: &[PathStep]) -> Option<&'a Value> {
    let Some((first, rest)) = path.split_first() else {
        return Some(v);
    };
    match (first, v) {
        (PathStep::Key(_), Value::Map(m)) => get(m, path),
        (PathStep::Index(i), Value::List(l)) => {
            let item = l
                .iter()
                .filter(|v| !matches!(v, Value::Comment(_)))
                .nth(*i)?;
            get_value(item, rest)
        }
        _ => None,
    }
}

/// Sets `path` to `value`, creating missing maps (and appending to lists at their end).
/// Returns whether anything changed.
pub fn set(branch: &mut Vec<Item>, path: &[PathStep], value: Value) -> Result<bool, String> {
    let Some((first, rest)) = path.split_first() else {
        return Err("empty path".into());
    };
    let PathStep::Key(k) = first else {
        return Err("a document's top level is a map: the path must start with a key".into());
    };
    let pos = branch
        .iter()
        .position(|i| matches!(i, Item::Entry(key, _) if key == k));
    let slot = match pos {
        Some(p) => match &mut branch[p] {
            Item::Entry(_, v) => v,
            Item::Comment(_) | Item::InlineComment(_) => {
                return Err("internal: comment at entry position".into());
            }
        },
        None => {
            branch.push(Item::Entry(k.clone(), Value::Null));
            match branch.last_mut() {
                Some(Item::Entry(_, v)) => v,
                _ => return Err("internal: entry not inserted".into()),
            }
        }
    };
    set_value(slot, rest, value)
}

fn set_value(slot: &mut Value, path: &[PathStep], value: Value) -> Result<bool, String> {
    let Some((first, rest)) = path.split_first() else {
        if *slot == value {
            return Ok(false);
        }
        *slot = value;
        return Ok(true);
    };
    match first {
        PathStep::Key(_) => {
            if !matches!(slot, Value::Map(_)) {
                *slot = Value::Map(Vec::new());
            }
            let Value::Map(m) = slot else {
                return Err("internal: not a map".into());
            };
            set(m, path, value)
        }
        PathStep::Index(i) => {
            if !matches!(slot, Value::List(_)) {
                *slot = Value::List(Vec::new());
            }
            let Value::List(l) = slot else {
                return Err("internal: not a list".into());
            };
            let positions: Vec<usize> = l
                .iter()
                .enumerate()
                .filter(|(_, v)| !matches!(v, Value::Comment(_)))
                .map(|(p, _)| p)
                .collect();
            match positions.get(*i) {
                Some(&p) => set_value(&mut l[p], rest, value),
                None => {
                    l.push(Value::Null);
                    let last = l.len() - 1;
                    set_value(&mut l[last], rest, value).map(|_| true)
                }
            }
        }
    }
}

/// Removes the value at `path`. Returns whether it existed.
pub fn unset(branch: &mut Vec<Item>, path: &[PathStep]) -> bool {
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let PathStep::Key(k) = first else {
        return false;
    };
    let Some(pos) = branch
        .iter()
        .position(|i| matches!(i, Item::Entry(key, _) if key == k))
    else {
        return false;
    };
    if rest.is_empty() {
        branch.remove(pos);
        return true;
    }
    match &mut branch[pos] {
        Item::Entry(_, v) => unset_value(v, rest),
        Item::Comment(_) | Item::InlineComment(_) => false,
    }
}

fn unset_value(v: &mut Value, path: &[PathStep]) -> bool {
    match (path.first(), v) {
        (Some(PathStep::Key(_)), Value::Map(m)) => unset(m, path),
        (Some(PathStep::Index(i)), Value::List(l)) => {
            let Some(p) = l
                .iter()
                .enumerate()
                .filter(|(_, v)| !matches!(v, Value::Comment(_)))
                .map(|(p, _)| p)
                .nth(*i)
            else {
                return false;
            };
            if path.len() == 1 {
                l.remove(p);
                true
            } else {
                unset_value(&mut l[p], &path[1..])
            }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_paths() {
        assert_eq!(
            parse_index_path(r#"["a"]["b c"][0]"#),
            Some(vec![
                PathStep::Key("a".into()),
                PathStep::Key("b c".into()),
                PathStep::Index(0)
            ])
        );
        assert_eq!(parse_index_path("[\"a\""), None);
        assert_eq!(parse_index_path("a"), None);
    }

    #[test]
    fn set_and_unset_create_and_remove() {
        let mut b = vec![Item::Entry("x".into(), Value::Int(1))];
        let p = parse_index_path(r#"["k"]["j"]"#).unwrap_or_default();
        assert_eq!(set(&mut b, &p, Value::Str("v".into())), Ok(true));
        assert_eq!(set(&mut b, &p, Value::Str("v".into())), Ok(false));
        assert_eq!(get(&b, &p), Some(&Value::Str("v".into())));
        assert!(unset(&mut b, &p));
        assert!(!unset(&mut b, &p));
    }

    #[test]
    fn debug_hides_values() {
        let v = Value::Map(vec![Item::Entry("k".into(), Value::Str("canary".into()))]);
        assert!(!format!("{v:?}").contains("canary"));
    }
}
