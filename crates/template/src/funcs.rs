//! Template functions: Go's builtins and the sprig subset hush implements (see docs/template.md).
//!
//! Error messages name types and arities, never argument values (they may be secrets).

use std::collections::BTreeMap;

use base64::Engine as _;
use sha2::Digest as _;

use crate::Budget;
use crate::gofmt::{self, decode_rune, quote};
use crate::limits::Meter;
use crate::value::{Value, sprint, write_value};

/// A function failure: a message without data values, or a budget that ran out.
#[derive(Debug)]
pub(crate) enum FuncError {
    Msg(String),
    Budget(Budget),
}

impl From<Budget> for FuncError {
    fn from(b: Budget) -> Self {
        FuncError::Budget(b)
    }
}

type FResult = Result<Value, FuncError>;

fn ferr(msg: impl Into<String>) -> FuncError {
    FuncError::Msg(msg.into())
}

/// Which functions a template may call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FuncSet {
    /// Go builtins only.
    Builtins,
    /// Builtins + sprig `GenericFuncMap()` minus `env`, `expandenv`, `getHostByName`.
    Sprig,
    /// Sprig + External Secrets' own functions.
    ExternalSecrets,
}

/// Go's text/template builtins.
const BUILTINS: &[&str] = &[
    "and", "or", "not", "len", "index", "slice", "print", "printf", "println", "html", "js",
    "urlquery", "eq", "ne", "lt", "le", "gt", "ge",
];

/// Sprig functions hush implements.
pub(crate) const SPRIG: &[&str] = &[
    // strings
    "trim",
    "trimAll",
    "trimall",
    "trimPrefix",
    "trimSuffix",
    "upper",
    "lower",
    "title",
    "untitle",
    "repeat",
    "substr",
    "nospace",
    "trunc",
    "abbrev",
    "abbrevboth",
    "initials",
    "contains",
    "hasPrefix",
    "hasSuffix",
    "quote",
    "squote",
    "cat",
    "indent",
    "nindent",
    "replace",
    "plural",
    "snakecase",
    "camelcase",
    "kebabcase",
    "swapcase",
    "wrap",
    "wrapWith",
    "toString",
    "toStrings",
    "split",
    "splitList",
    "splitn",
    "join",
    "sortAlpha",
    "hello",
    // conversion and math
    "atoi",
    "int",
    "int64",
    "float64",
    "toDecimal",
    "seq",
    "until",
    "untilStep",
    "add",
    "add1",
    "sub",
    "div",
    "mod",
    "mul",
    "max",
    "min",
    "biggest",
    "addf",
    "add1f",
    "subf",
    "divf",
    "mulf",
    "maxf",
    "minf",
    "floor",
    "ceil",
    "round",
    // defaults, flow, types
    "default",
    "empty",
    "coalesce",
    "all",
    "any",
    "ternary",
    "fail",
    "typeOf",
    "typeIs",
    "typeIsLike",
    "kindOf",
    "kindIs",
    "deepEqual",
    "deepCopy",
    "mustDeepCopy",
    // encoding
    "b64enc",
    "b64dec",
    "b32enc",
    "b32dec",
    "toJson",
    "mustToJson",
    "toPrettyJson",
    "mustToPrettyJson",
    "toRawJson",
    "mustToRawJson",
    "fromJson",
    "mustFromJson",
    // hashes
    "sha1sum",
    "sha256sum",
    "sha512sum",
    "adler32sum",
    // lists
    "list",
    "tuple",
    "first",
    "mustFirst",
    "last",
    "mustLast",
    "rest",
    "mustRest",
    "initial",
    "mustInitial",
    "append",
    "mustAppend",
    "push",
    "mustPush",
    "prepend",
    "mustPrepend",
    "concat",
    "reverse",
    "mustReverse",
    "uniq",
    "mustUniq",
    "without",
    "mustWithout",
    "has",
    "mustHas",
    "compact",
    "mustCompact",
    "chunk",
    "mustChunk",
    "mustSlice",
    // dicts
    "dict",
    "get",
    "set",
    "unset",
    "hasKey",
    "pluck",
    "keys",
    "values",
    "pick",
    "omit",
    "dig",
    "merge",
    "mustMerge",
    "mergeOverwrite",
    "mustMergeOverwrite",
    // regex
    "regexMatch",
    "mustRegexMatch",
    "regexFind",
    "mustRegexFind",
    "regexFindAll",
    "mustRegexFindAll",
    "regexReplaceAll",
    "mustRegexReplaceAll",
    "regexReplaceAllLiteral",
    "mustRegexReplaceAllLiteral",
    "regexSplit",
    "mustRegexSplit",
    "regexQuoteMeta",
    // paths
    "base",
    "dir",
    "clean",
    "ext",
    "isAbs",
    "osBase",
    "osClean",
    "osDir",
    "osExt",
    "osIsAbs",
];

/// Sprig `GenericFuncMap()` functions hush does not implement: a parse-time error, never
/// different bytes.
const SPRIG_UNIMPLEMENTED: &[&str] = &[
    "date",
    "date_in_zone",
    "date_modify",
    "now",
    "htmlDate",
    "htmlDateInZone",
    "dateInZone",
    "dateModify",
    "mustDateModify",
    "ago",
    "toDate",
    "mustToDate",
    "unixEpoch",
    "duration",
    "durationRound",
    "randAlphaNum",
    "randAlpha",
    "randAscii",
    "randNumeric",
    "randInt",
    "randBytes",
    "shuffle",
    "uuidv4",
    "bcrypt",
    "htpasswd",
    "genPrivateKey",
    "derivePassword",
    "buildCustomCert",
    "genCA",
    "genCAWithKey",
    "genSelfSignedCert",
    "genSelfSignedCertWithKey",
    "genSignedCert",
    "genSignedCertWithKey",
    "encryptAES",
    "decryptAES",
    "semver",
    "semverCompare",
    "urlParse",
    "urlJoin",
];

/// External Secrets' own functions (`tplFuncs`) hush does not implement (docs/template.md).
const ESO_UNIMPLEMENTED: &[&str] = &[];

/// External Secrets' own functions hush implements (`hexdec` is in ESO's sprig copy).
const ESO: &[&str] = &[
    "hexdec",
    "toYaml",
    "fromYaml",
    "filterPEM",
    "filterCertChain",
    "certSANs",
    "pkcs12key",
    "pkcs12keyPass",
    "pkcs12cert",
    "pkcs12certPass",
    "pemToPkcs12",
    "pemToPkcs12Pass",
    "fullPemToPkcs12",
    "fullPemToPkcs12Pass",
    "pemTruststoreToPKCS12",
    "pemTruststoreToPKCS12Pass",
    "jwkPublicKeyPem",
    "jwkPrivateKeyPem",
    "rsaDecrypt",
];

/// Sprig functions that modify the map passed as their first argument.
pub(crate) const MUTATES_FIRST_ARG: &[&str] = &[
    "set",
    "unset",
    "merge",
    "mustMerge",
    "mergeOverwrite",
    "mustMergeOverwrite",
];

/// What `set` says about `name`, for the parser.
pub(crate) fn lookup(set: FuncSet, name: &str) -> crate::parse::FuncLookup {
    use crate::parse::FuncLookup;
    if BUILTINS.contains(&name) {
        return FuncLookup::Known;
    }
    let sprig = matches!(set, FuncSet::Sprig | FuncSet::ExternalSecrets);
    let eso = set == FuncSet::ExternalSecrets;
    if (sprig && SPRIG.contains(&name)) || (eso && ESO.contains(&name)) {
        FuncLookup::Known
    } else if (sprig && SPRIG_UNIMPLEMENTED.contains(&name))
        || (eso && ESO_UNIMPLEMENTED.contains(&name))
    {
        FuncLookup::Unimplemented
    } else {
        FuncLookup::Unknown
    }
}

fn arity(args: &[Value], want: usize) -> Result<(), FuncError> {
    if args.len() != want {
        return Err(ferr(format!(
            "wrong number of args: want {want} got {}",
            args.len()
        )));
    }
    Ok(())
}

fn arity_min(args: &[Value], want: usize) -> Result<(), FuncError> {
    if args.len() < want {
        return Err(ferr(format!(
            "wrong number of args: want at least {want} got {}",
            args.len()
        )));
    }
    Ok(())
}

/// A `string` parameter: Go rejects other types (and a missing value) at the call.
fn s_arg(v: &Value) -> Result<&[u8], FuncError> {
    match v {
        Value::Str(s) => Ok(s),
        Value::Nil => Err(ferr("invalid value; expected string")),
        other => Err(ferr(format!(
            "wrong type for value; expected string; got {}",
            other.type_name()
        ))),
    }
}

fn s_string(v: &Value) -> Result<String, FuncError> {
    Ok(String::from_utf8_lossy(s_arg(v)?).into_owned())
}

/// An `int` parameter.
fn i_arg(v: &Value) -> Result<i64, FuncError> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::Nil => Err(ferr("invalid value; expected int")),
        other => Err(ferr(format!(
            "wrong type for value; expected int; got {}",
            other.type_name()
        ))),
    }
}

/// sprig's `strval`: strings as they are, everything else through `fmt.Sprint`.
fn strval(v: &Value) -> Vec<u8> {
    match v {
        Value::Str(s) => s.clone(),
        other => sprint(other),
    }
}

/// spf13/cast `ToInt64`: numbers, bools, numeric strings (base prefixes allowed); else 0.
fn to_i64(v: &Value) -> i64 {
    match v {
        Value::Int(i) | Value::Int64(i) => *i,
        Value::Float(f) => *f as i64,
        Value::Bool(b) => i64::from(*b),
        Value::Str(s) => {
            let t = String::from_utf8_lossy(s);
            let t = t.strip_suffix(".0").unwrap_or(&t);
            parse_go_int(t).unwrap_or(0)
        }
        _ => 0,
    }
}

fn parse_go_int(t: &str) -> Option<i64> {
    let (neg, b) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let l = b.to_ascii_lowercase();
    let v = if let Some(h) = l.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()
    } else if let Some(x) = l.strip_prefix("0b") {
        i64::from_str_radix(x, 2).ok()
    } else if let Some(x) = l.strip_prefix("0o") {
        i64::from_str_radix(x, 8).ok()
    } else if l.len() > 1 && l.starts_with('0') {
        i64::from_str_radix(&l[1..], 8).ok()
    } else if !l.is_empty() && l.bytes().all(|c| c.is_ascii_digit()) {
        l.parse().ok()
    } else {
        None
    }?;
    Some(if neg { -v } else { v })
}

/// spf13/cast `ToFloat64`.
fn to_f64(v: &Value) -> f64 {
    match v {
        Value::Int(i) | Value::Int64(i) => *i as f64,
        Value::Float(f) => *f,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Str(s) => String::from_utf8_lossy(s).parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

/// sprig's `empty`.
fn is_empty(v: &Value) -> bool {
    !v.truthy()
}

fn list_arg(v: &Value, func: &str) -> Result<Vec<Value>, FuncError> {
    match v {
        Value::List(l) => Ok(l.clone()),
        other => Err(ferr(format!("Cannot find {func} on type {}", other.kind()))),
    }
}

/// A `map[string]interface{}` parameter: `map[string]string` is a different Go type.
fn dict_arg(v: &Value) -> Result<&BTreeMap<String, Value>, FuncError> {
    match v {
        Value::Map(m) => Ok(m),
        // A nil map is a valid (empty) map argument.
        Value::Nil => Ok(&EMPTY_MAP),
        other => Err(ferr(format!(
            "wrong type for value; expected map[string]interface {{}}; got {}",
            other.type_name()
        ))),
    }
}

static EMPTY_MAP: BTreeMap<String, Value> = BTreeMap::new();

fn strs(v: Vec<String>) -> Value {
    Value::List(v.into_iter().map(Value::str).collect())
}

/// Compiled regular expressions are bounded (Go's regexp refuses large programs too); a
/// pattern over the bound is a bad pattern.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

fn regex(pat: &Value, meter: &mut Meter) -> Result<regex::bytes::Regex, FuncError> {
    let p = s_string(pat)?;
    meter.charge(REGEX_COMPILE_STEPS)?;
    regex::bytes::RegexBuilder::new(&p)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|_| ferr("error parsing regexp"))
}

/// Steps a regex compilation costs: compiling is far more work than a step.
const REGEX_COMPILE_STEPS: u64 = 1000;

/// Steps of functions whose work does not show in the size of their arguments or result:
/// private-key operations, PKCS#12 key derivation, certificate parsing.
fn fixed_cost(name: &str) -> Option<u64> {
    Some(match name {
        "rsaDecrypt" | "pkcs12key" | "pkcs12cert" | "pkcs12keyPass" | "pkcs12certPass" => 100_000,
        "pemToPkcs12"
        | "pemToPkcs12Pass"
        | "fullPemToPkcs12"
        | "fullPemToPkcs12Pass"
        | "pemTruststoreToPKCS12"
        | "pemTruststoreToPKCS12Pass" => 20_000,
        "jwkPublicKeyPem" | "jwkPrivateKeyPem" | "filterCertChain" | "certSANs" => 1000,
        _ => return None,
    })
}

/// Steps of sorting `n` items (n log n comparisons).
fn sort_cost(n: usize) -> u64 {
    let n = n as u64;
    n.saturating_mul(u64::from(u64::BITS - n.leading_zeros()))
}

/// Calls `name` (already checked by the parser to exist in the set).
///
/// `meter` is the render's budget: functions whose result can be much larger than their
/// arguments (`repeat`, `indent`, `printf`, `join`, `replace`, …) check the result's size
/// before building it, and functions that loop (`until`, `seq`, `uniq`, …) pay per round.
pub(crate) fn call(_set: &FuncSet, name: &str, a: Vec<Value>, meter: &mut Meter) -> FResult {
    let must =
        name.starts_with("must") && name.len() > 4 && name.as_bytes()[4].is_ascii_uppercase();
    let base: String = if must {
        let b = &name[4..];
        let mut c = b.chars();
        c.next()
            .map(|f| f.to_lowercase().collect::<String>() + c.as_str())
            .unwrap_or_default()
    } else {
        name.to_owned()
    };
    if let Some(steps) = fixed_cost(&base) {
        meter.charge(steps)?;
    }
    match base.as_str() {
        // ---- builtins
        "not" => {
            arity(&a, 1)?;
            Ok(Value::Bool(!a[0].truthy()))
        }
        "len" => {
            arity(&a, 1)?;
            Ok(Value::Int(match &a[0] {
                Value::Str(s) => s.len() as i64,
                Value::List(l) => l.len() as i64,
                Value::Map(m) => m.len() as i64,
                Value::StrMap(m) => m.len() as i64,
                Value::Nil => return Err(ferr("len of nil pointer")),
                other => return Err(ferr(format!("len of type {}", other.type_name()))),
            }))
        }
        "index" => {
            arity_min(&a, 1)?;
            if let Value::Nil = a[0] {
                return Err(ferr("index of untyped nil"));
            }
            let mut v = a[0].clone();
            for ix in &a[1..] {
                v = index1(&v, ix)?;
            }
            Ok(v)
        }
        "slice" => {
            arity_min(&a, 1)?;
            if name == "slice" || name == "mustSlice" {
                return sprig_slice(&a);
            }
            unreachable_fn()
        }
        "print" => Ok(Value::Str(gofmt::sprint_args(&a))),
        "println" => Ok(Value::Str(gofmt::sprintln_args(&a))),
        "printf" => {
            arity_min(&a, 1)?;
            Ok(Value::Str(gofmt::sprintf(
                s_arg(&a[0])?,
                &a[1..],
                meter.max_bytes(),
            )?))
        }
        "html" => Ok(Value::Str(html_escape(&eval_args_str(&a)))),
        "js" => Ok(Value::Str(js_escape(&eval_args_str(&a)))),
        "urlquery" => Ok(Value::str(query_escape(&eval_args_str(&a)))),
        "eq" => {
            arity_min(&a, 2)?;
            for b in &a[1..] {
                if go_eq(&a[0], b)? {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }
        "ne" => {
            arity(&a, 2)?;
            Ok(Value::Bool(!go_eq(&a[0], &a[1])?))
        }
        "lt" | "le" | "gt" | "ge" => {
            arity(&a, 2)?;
            let lt = go_lt(&a[0], &a[1])?;
            let eq = !lt && go_eq(&a[0], &a[1])?;
            Ok(Value::Bool(match base.as_str() {
                "lt" => lt,
                "le" => lt || eq,
                "gt" => !lt && !eq,
                _ => !lt,
            }))
        }
        // ---- sprig strings
        "hello" => Ok(Value::str("Hello!")),
        "trim" => str1(&a, |s| s.trim_matches(go_space).to_owned()),
        "trimAll" | "trimall" => {
            arity(&a, 2)?;
            let cut = s_string(&a[0])?;
            let s = s_string(&a[1])?;
            Ok(Value::str(s.trim_matches(|c| cut.contains(c))))
        }
        "trimPrefix" => {
            arity(&a, 2)?;
            let p = s_arg(&a[0])?;
            let s = s_arg(&a[1])?;
            Ok(Value::str(s.strip_prefix(p).unwrap_or(s)))
        }
        "trimSuffix" => {
            arity(&a, 2)?;
            let p = s_arg(&a[0])?;
            let s = s_arg(&a[1])?;
            Ok(Value::str(s.strip_suffix(p).unwrap_or(s)))
        }
        "upper" => str1(&a, |s| s.chars().map(|c| simple_case(c, true)).collect()),
        "lower" => str1(&a, |s| s.chars().map(|c| simple_case(c, false)).collect()),
        "title" => str1(&a, title),
        "untitle" => str1(&a, |s| {
            let mut out = String::new();
            let mut prev_space = true;
            for c in s.chars() {
                out.push(if prev_space { simple_case(c, false) } else { c });
                prev_space = c.is_whitespace();
            }
            out
        }),
        "swapcase" => str1(&a, |s| {
            s.chars()
                .map(|c| {
                    if c.is_uppercase() {
                        c.to_lowercase().collect::<String>()
                    } else {
                        c.to_uppercase().collect()
                    }
                })
                .collect()
        }),
        "repeat" => {
            arity(&a, 2)?;
            let n = i_arg(&a[0])?;
            let s = s_arg(&a[1])?;
            if n < 0 {
                return Err(ferr("negative repeat count"));
            }
            let n = usize::try_from(n).map_err(|_| Budget::OutputBytes)?;
            meter.check_product(n, s.len(), 0)?;
            Ok(Value::Str(s.repeat(n)))
        }
        "substr" => {
            arity(&a, 3)?;
            let start = i_arg(&a[0])?;
            let end = i_arg(&a[1])?;
            let s = s_arg(&a[2])?;
            let len = s.len() as i64;
            // Go slicing panics (a template error) out of bounds.
            let oob = || ferr("slice bounds out of range");
            Ok(Value::Str(if start < 0 {
                s.get(..usize::try_from(end).map_err(|_| oob())?)
                    .ok_or_else(oob)?
                    .to_vec()
            } else if end < 0 || end > len {
                s.get(start as usize..).ok_or_else(oob)?.to_vec()
            } else {
                s.get(start as usize..end as usize)
                    .ok_or_else(oob)?
                    .to_vec()
            }))
        }
        "nospace" => {
            // goutils.DeleteWhiteSpace works byte by byte, reading each byte as a Latin-1 rune.
            arity(&a, 1)?;
            let s = s_arg(&a[0])?;
            let out: String = s
                .iter()
                .map(|&b| char::from(b))
                .filter(|c| !c.is_whitespace())
                .collect();
            Ok(Value::str(out))
        }
        "trunc" => {
            arity(&a, 2)?;
            let c = i_arg(&a[0])?;
            let s = s_arg(&a[1])?;
            let len = s.len() as i64;
            Ok(Value::Str(if c < 0 && len + c > 0 {
                s[(len + c) as usize..].to_vec()
            } else if c >= 0 && len > c {
                s[..c as usize].to_vec()
            } else {
                s.to_vec()
            }))
        }
        "abbrev" => {
            arity(&a, 2)?;
            let w = i_arg(&a[0])?;
            let s = s_string(&a[1])?;
            Ok(Value::str(abbreviate(&s, 0, w)))
        }
        "abbrevboth" => {
            arity(&a, 3)?;
            let l = i_arg(&a[0])?;
            let r = i_arg(&a[1])?;
            let s = s_string(&a[2])?;
            Ok(Value::str(abbreviate(&s, l, r)))
        }
        "initials" => {
            // goutils.Initials works byte by byte, reading each byte as a Latin-1 rune.
            arity(&a, 1)?;
            let mut out = String::new();
            let mut gap = true;
            for &b in s_arg(&a[0])? {
                let c = char::from(b);
                if c.is_whitespace() {
                    gap = true;
                } else if gap {
                    out.push(c);
                    gap = false;
                }
            }
            Ok(Value::str(out))
        }
        "contains" => {
            arity(&a, 2)?;
            let sub = s_arg(&a[0])?;
            let s = s_arg(&a[1])?;
            Ok(Value::Bool(memchr::memmem::find(s, sub).is_some()))
        }
        "hasPrefix" => {
            arity(&a, 2)?;
            Ok(Value::Bool(s_arg(&a[1])?.starts_with(s_arg(&a[0])?)))
        }
        "hasSuffix" => {
            arity(&a, 2)?;
            Ok(Value::Bool(s_arg(&a[1])?.ends_with(s_arg(&a[0])?)))
        }
        "quote" | "squote" => {
            let mut parts = Vec::new();
            for v in &a {
                if matches!(v, Value::Nil) {
                    continue;
                }
                let s = strval(v);
                parts.push(if base == "quote" {
                    quote(&s, false).into_bytes()
                } else {
                    let mut q = b"'".to_vec();
                    q.extend_from_slice(&s);
                    q.push(b'\'');
                    q
                });
            }
            Ok(Value::Str(parts.join(&b' ')))
        }
        "cat" => {
            let parts: Vec<Vec<u8>> = a
                .iter()
                .filter(|v| !matches!(v, Value::Nil))
                .map(strval)
                .collect();
            Ok(Value::Str(parts.join(&b' ')))
        }
        "indent" | "nindent" => {
            arity(&a, 2)?;
            let n = i_arg(&a[0])?;
            let s = s_arg(&a[1])?;
            let n = usize::try_from(n.max(0)).map_err(|_| Budget::OutputBytes)?;
            let lines = memchr::memchr_iter(b'\n', s).count() + 1;
            meter.check_product(lines, n, s.len() + 1)?;
            let pad = vec![b' '; n];
            let mut out = Vec::with_capacity(lines * n + s.len() + 1);
            if base == "nindent" {
                out.push(b'\n');
            }
            out.extend_from_slice(&pad);
            for &c in s {
                out.push(c);
                if c == b'\n' {
                    out.extend_from_slice(&pad);
                }
            }
            Ok(Value::Str(out))
        }
        "replace" => {
            arity(&a, 3)?;
            let old = s_arg(&a[0])?;
            let new = s_arg(&a[1])?;
            let s = s_arg(&a[2])?;
            Ok(Value::Str(replace_all(s, old, new, meter)?))
        }
        "plural" => {
            arity(&a, 3)?;
            let one = s_arg(&a[0])?;
            let many = s_arg(&a[1])?;
            let n = i_arg(&a[2])?;
            Ok(Value::Str(if n == 1 {
                one.to_vec()
            } else {
                many.to_vec()
            }))
        }
        "snakecase" => str1(&a, |s| words_case(s, '_')),
        "kebabcase" => str1(&a, |s| words_case(s, '-')),
        "camelcase" => str1(&a, |s| {
            s.split(['_', '-', ' '])
                .map(|w| {
                    let mut c = w.chars();
                    c.next()
                        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                        .unwrap_or_default()
                })
                .collect()
        }),
        "wrap" => {
            arity(&a, 2)?;
            let n = i_arg(&a[0])?;
            let s = s_arg(&a[1])?;
            Ok(Value::Str(word_wrap(s, n, b"\n", false, meter)?))
        }
        "wrapWith" => {
            arity(&a, 3)?;
            let n = i_arg(&a[0])?;
            let sep = s_arg(&a[1])?;
            let s = s_arg(&a[2])?;
            Ok(Value::Str(word_wrap(s, n, sep, true, meter)?))
        }
        "toString" => {
            arity(&a, 1)?;
            Ok(Value::Str(strval(&a[0])))
        }
        "toStrings" => {
            arity(&a, 1)?;
            Ok(match &a[0] {
                Value::List(l) => Value::List(l.iter().map(|v| Value::Str(strval(v))).collect()),
                Value::Nil => Value::List(Vec::new()),
                other => Value::List(vec![Value::Str(strval(other))]),
            })
        }
        "split" => {
            arity(&a, 2)?;
            let sep = s_arg(&a[0])?;
            let s = s_arg(&a[1])?;
            // map[string]string, as in sprig.
            Ok(Value::StrMap(
                split_bytes(s, sep, None, meter)?
                    .into_iter()
                    .enumerate()
                    .map(|(i, p)| (format!("_{i}"), p))
                    .collect(),
            ))
        }
        "splitn" => {
            arity(&a, 3)?;
            let sep = s_arg(&a[0])?;
            let n = i_arg(&a[1])?;
            let s = s_arg(&a[2])?;
            let parts = if n == 0 {
                Vec::new()
            } else {
                split_bytes(s, sep, usize::try_from(n).ok(), meter)?
            };
            Ok(Value::StrMap(
                parts
                    .into_iter()
                    .enumerate()
                    .map(|(i, p)| (format!("_{i}"), p))
                    .collect(),
            ))
        }
        "splitList" => {
            arity(&a, 2)?;
            let sep = s_arg(&a[0])?;
            let s = s_arg(&a[1])?;
            Ok(Value::List(
                split_bytes(s, sep, None, meter)?
                    .into_iter()
                    .map(Value::Str)
                    .collect(),
            ))
        }
        "join" => {
            arity(&a, 2)?;
            let sep = s_arg(&a[0])?;
            let items: Vec<Vec<u8>> = match &a[1] {
                Value::List(l) => l
                    .iter()
                    .filter(|v| !matches!(v, Value::Nil))
                    .map(strval)
                    .collect(),
                Value::Nil => Vec::new(),
                other => vec![strval(other)],
            };
            let bytes = items
                .iter()
                .map(Vec::len)
                .fold(0usize, usize::saturating_add);
            meter.check_product(items.len().saturating_sub(1), sep.len(), bytes)?;
            Ok(Value::Str(items.join(sep)))
        }
        "sortAlpha" => {
            arity(&a, 1)?;
            match &a[0] {
                Value::List(l) => {
                    let mut v: Vec<Vec<u8>> = l.iter().map(strval).collect();
                    meter.charge(sort_cost(v.len()))?;
                    v.sort();
                    Ok(Value::List(v.into_iter().map(Value::Str).collect()))
                }
                other => Ok(Value::List(vec![Value::Str(strval(other))])),
            }
        }
        // ---- conversion and math
        "atoi" => {
            arity(&a, 1)?;
            let s = s_string(&a[0])?;
            Ok(Value::Int(s.parse().unwrap_or(0)))
        }
        "int" => {
            arity(&a, 1)?;
            Ok(Value::Int(to_i64(&a[0])))
        }
        "int64" => {
            arity(&a, 1)?;
            Ok(Value::Int64(to_i64(&a[0])))
        }
        "float64" => {
            arity(&a, 1)?;
            Ok(Value::Float(to_f64(&a[0])))
        }
        "toDecimal" => {
            arity(&a, 1)?;
            let s = String::from_utf8_lossy(&strval(&a[0])).into_owned();
            Ok(Value::Int64(i64::from_str_radix(&s, 8).unwrap_or(0)))
        }
        "add" => Ok(Value::Int64(
            a.iter().map(to_i64).fold(0i64, i64::wrapping_add),
        )),
        "mul" => {
            arity_min(&a, 1)?;
            Ok(Value::Int64(
                a.iter().map(to_i64).fold(1i64, i64::wrapping_mul),
            ))
        }
        "add1" => {
            arity(&a, 1)?;
            Ok(Value::Int64(to_i64(&a[0]).wrapping_add(1)))
        }
        "sub" => {
            arity(&a, 2)?;
            Ok(Value::Int64(to_i64(&a[0]).wrapping_sub(to_i64(&a[1]))))
        }
        "div" | "mod" => {
            arity(&a, 2)?;
            let d = to_i64(&a[1]);
            if d == 0 {
                return Err(ferr("integer divide by zero"));
            }
            let n = to_i64(&a[0]);
            Ok(Value::Int64(if base == "div" {
                n.wrapping_div(d)
            } else {
                n.wrapping_rem(d)
            }))
        }
        "max" | "biggest" | "min" => {
            arity_min(&a, 1)?;
            let mut r = to_i64(&a[0]);
            for v in &a[1..] {
                let x = to_i64(v);
                r = if base == "min" { r.min(x) } else { r.max(x) };
            }
            Ok(Value::Int64(r))
        }
        "addf" => {
            let mut args = vec![Value::Float(0.0)];
            args.extend(a);
            decimal_op("addf", &args)
        }
        "add1f" => {
            arity(&a, 1)?;
            decimal_op("addf", &[a[0].clone(), Value::Int(1)])
        }
        "subf" | "mulf" | "divf" => {
            arity_min(&a, 1)?;
            decimal_op(&base, &a)
        }
        "maxf" | "minf" => {
            arity_min(&a, 1)?;
            let mut r = to_f64(&a[0]);
            for v in &a[1..] {
                let x = to_f64(v);
                r = if base == "minf" { r.min(x) } else { r.max(x) };
            }
            Ok(Value::Float(r))
        }
        "floor" => {
            arity(&a, 1)?;
            Ok(Value::Float(to_f64(&a[0]).floor()))
        }
        "ceil" => {
            arity(&a, 1)?;
            Ok(Value::Float(to_f64(&a[0]).ceil()))
        }
        "round" => {
            // sprig's round: Modf, then Ceil when the fraction is >= roundOn, else Floor.
            arity_min(&a, 2)?;
            let x = to_f64(&a[0]);
            let p = i_arg(&a[1])?;
            let on = a.get(2).map_or(0.5, to_f64);
            let pow = 10f64.powf(p as f64);
            let digit = pow * x;
            let r = if digit.fract() >= on {
                digit.ceil()
            } else {
                digit.floor()
            };
            Ok(Value::Float(r / pow))
        }
        "seq" => seq(&a, meter),
        "until" => {
            arity(&a, 1)?;
            let n = i_arg(&a[0])?;
            let step = if n < 0 { -1 } else { 1 };
            until_step(0, n, step, meter)
        }
        "untilStep" => {
            arity(&a, 3)?;
            until_step(i_arg(&a[0])?, i_arg(&a[1])?, i_arg(&a[2])?, meter)
        }
        // ---- defaults, flow, types
        "default" => {
            arity_min(&a, 1)?;
            if a.len() < 2 || is_empty(&a[1]) {
                Ok(a[0].clone())
            } else {
                Ok(a[1].clone())
            }
        }
        "empty" => {
            arity(&a, 1)?;
            Ok(Value::Bool(is_empty(&a[0])))
        }
        "coalesce" => Ok(a
            .iter()
            .find(|v| !is_empty(v))
            .cloned()
            .unwrap_or(Value::Nil)),
        "all" => Ok(Value::Bool(a.iter().all(|v| !is_empty(v)))),
        "any" => Ok(Value::Bool(a.iter().any(|v| !is_empty(v)))),
        "ternary" => {
            arity(&a, 3)?;
            match &a[2] {
                Value::Bool(b) => Ok(if *b { a[0].clone() } else { a[1].clone() }),
                _ => Err(ferr("wrong type for value; expected bool")),
            }
        }
        "fail" => {
            arity(&a, 1)?;
            s_arg(&a[0])?;
            Err(ferr("fail called"))
        }
        "typeOf" => {
            arity(&a, 1)?;
            Ok(Value::str(a[0].type_name()))
        }
        "typeIs" | "typeIsLike" => {
            arity(&a, 2)?;
            let t = s_string(&a[0])?;
            let actual = a[1].type_name();
            Ok(Value::Bool(
                t == actual || (base == "typeIsLike" && t == format!("*{actual}")),
            ))
        }
        "kindOf" => {
            arity(&a, 1)?;
            Ok(Value::str(a[0].kind()))
        }
        "kindIs" => {
            arity(&a, 2)?;
            Ok(Value::Bool(s_string(&a[0])? == a[1].kind()))
        }
        "deepEqual" => {
            arity(&a, 2)?;
            Ok(Value::Bool(a[0] == a[1]))
        }
        "deepCopy" => {
            arity(&a, 1)?;
            Ok(a[0].clone())
        }
        // ---- encoding
        "b64enc" => str_bytes(&a, |s| {
            base64::engine::general_purpose::STANDARD
                .encode(s)
                .into_bytes()
        }),
        "b64dec" => {
            arity(&a, 1)?;
            let s = s_arg(&a[0])?;
            // Go's StdEncoding skips CR and LF and accepts non-zero trailing bits.
            let clean: Vec<u8> = s
                .iter()
                .copied()
                .filter(|c| *c != b'\r' && *c != b'\n')
                .collect();
            Ok(Value::Str(match GO_STD_B64.decode(&clean) {
                Ok(d) => d,
                Err(e) => go_b64_error(&e, clean.len()).into_bytes(),
            }))
        }
        "b32enc" => str_bytes(&a, base32_encode),
        "b32dec" => {
            arity(&a, 1)?;
            let s = s_arg(&a[0])?;
            Ok(Value::Str(base32_decode(s).unwrap_or_else(|at| {
                format!("illegal base32 data at input byte {at}").into_bytes()
            })))
        }
        "hexdec" => {
            arity(&a, 1)?;
            let s = s_arg(&a[0])?;
            hex::decode(s)
                .map(Value::Str)
                .map_err(|_| ferr("invalid hex"))
        }
        "filterPEM" | "filterCertChain" => {
            arity(&a, 2)?;
            let (kind, input) = (s_arg(&a[0])?, s_arg(&a[1])?);
            if base == "filterPEM" {
                crate::eso::filter_pem(kind, input).map_err(ferr)
            } else {
                crate::eso::filter_cert_chain(kind, input).map_err(ferr)
            }
        }
        "certSANs" => {
            arity(&a, 1)?;
            crate::eso::cert_sans(s_arg(&a[0])?).map_err(ferr)
        }
        "pkcs12key" | "pkcs12cert" | "pkcs12keyPass" | "pkcs12certPass" => {
            let (pass, input): (&[u8], &[u8]) = if base.ends_with("Pass") {
                arity(&a, 2)?;
                (s_arg(&a[0])?, s_arg(&a[1])?)
            } else {
                arity(&a, 1)?;
                (b"", s_arg(&a[0])?)
            };
            if base.starts_with("pkcs12key") {
                crate::eso::pkcs12_key(pass, input, &base).map_err(ferr)
            } else {
                crate::eso::pkcs12_cert(pass, input, &base).map_err(ferr)
            }
        }
        "pemToPkcs12" | "pemToPkcs12Pass" | "fullPemToPkcs12" | "fullPemToPkcs12Pass" => {
            let pass: &[u8] = if base.ends_with("Pass") {
                arity(&a, 3)?;
                s_arg(&a[2])?
            } else {
                arity(&a, 2)?;
                b""
            };
            let full = base.starts_with("full");
            crate::eso::pem_to_pkcs12(s_arg(&a[0])?, s_arg(&a[1])?, pass, full, &base).map_err(ferr)
        }
        "pemTruststoreToPKCS12" | "pemTruststoreToPKCS12Pass" => {
            let pass: &[u8] = if base.ends_with("Pass") {
                arity(&a, 2)?;
                s_arg(&a[1])?
            } else {
                arity(&a, 1)?;
                b""
            };
            crate::eso::pem_truststore_to_pkcs12(s_arg(&a[0])?, pass, &base).map_err(ferr)
        }
        "rsaDecrypt" => {
            arity(&a, 4)?;
            crate::eso::rsa_decrypt(s_arg(&a[0])?, s_arg(&a[1])?, s_arg(&a[2])?, s_arg(&a[3])?)
                .map_err(ferr)
        }
        "jwkPublicKeyPem" => {
            arity(&a, 1)?;
            crate::eso::jwk_public_pem(s_arg(&a[0])?).map_err(ferr)
        }
        "jwkPrivateKeyPem" => {
            arity(&a, 1)?;
            crate::eso::jwk_private_pem(s_arg(&a[0])?).map_err(ferr)
        }
        "toYaml" => {
            arity(&a, 1)?;
            crate::yaml::to_yaml(&a[0], meter.max_bytes())?
                .map(Value::Str)
                .map_err(ferr)
        }
        "fromYaml" => {
            arity(&a, 1)?;
            crate::yaml::from_yaml(s_arg(&a[0])?).map_err(ferr)
        }
        "toJson" | "toRawJson" | "toPrettyJson" => {
            arity(&a, 1)?;
            let max = meter.max_bytes();
            let out = match base.as_str() {
                "toJson" => crate::json::encode(&a[0], true, false, max),
                "toRawJson" => crate::json::encode(&a[0], false, false, max),
                _ => crate::json::encode(&a[0], true, true, max),
            };
            Ok(Value::Str(out?))
        }
        "fromJson" => {
            arity(&a, 1)?;
            let s = s_arg(&a[0])?;
            match serde_json::from_slice::<serde_json::Value>(s) {
                Ok(j) => Ok(Value::from_json(&j)),
                Err(_) if must => Err(ferr("invalid JSON")),
                Err(_) => Ok(Value::Nil),
            }
        }
        // ---- hashes
        "sha1sum" => str_bytes(&a, |s| hex::encode(sha1::Sha1::digest(s)).into_bytes()),
        "sha256sum" => str_bytes(&a, |s| hex::encode(sha2::Sha256::digest(s)).into_bytes()),
        "sha512sum" => str_bytes(&a, |s| hex::encode(sha2::Sha512::digest(s)).into_bytes()),
        "adler32sum" => str_bytes(&a, |s| adler32(s).to_string().into_bytes()),
        // ---- lists
        "list" | "tuple" => Ok(Value::List(a)),
        "first" | "last" | "rest" | "initial" | "reverse" | "uniq" | "compact" => {
            arity(&a, 1)?;
            if matches!(a[0], Value::Nil) {
                // sprig calls reflect.TypeOf(nil).Kind(): a panic, i.e. an error.
                return Err(ferr(format!("Cannot find {base} on type invalid")));
            }
            let l = list_arg(&a[0], &base)?;
            Ok(match base.as_str() {
                "first" => l.first().cloned().unwrap_or(Value::Nil),
                "last" => l.last().cloned().unwrap_or(Value::Nil),
                "rest" => Value::List(l.get(1..).unwrap_or(&[]).to_vec()),
                "initial" => Value::List(l[..l.len().saturating_sub(1)].to_vec()),
                "reverse" => Value::List(l.into_iter().rev().collect()),
                "uniq" => {
                    // Quadratic, as sprig's: every comparison is paid for.
                    let mut out: Vec<Value> = Vec::new();
                    for v in l {
                        meter.charge(out.len() as u64)?;
                        if !out.contains(&v) {
                            out.push(v);
                        }
                    }
                    Value::List(out)
                }
                _ => Value::List(l.into_iter().filter(|v| !is_empty(v)).collect()),
            })
        }
        "append" | "push" => {
            arity(&a, 2)?;
            let mut l = list_arg(&a[0], "append")?;
            l.push(a[1].clone());
            Ok(Value::List(l))
        }
        "prepend" => {
            arity(&a, 2)?;
            let mut l = list_arg(&a[0], "prepend")?;
            l.insert(0, a[1].clone());
            Ok(Value::List(l))
        }
        "concat" => {
            let mut out = Vec::new();
            for v in &a {
                out.extend(list_arg(v, "concat")?);
            }
            Ok(Value::List(out))
        }
        "without" => {
            arity_min(&a, 1)?;
            let l = list_arg(&a[0], "without")?;
            meter.charge((l.len() as u64).saturating_mul(a.len() as u64))?;
            Ok(Value::List(
                l.into_iter().filter(|v| !a[1..].contains(v)).collect(),
            ))
        }
        "has" => {
            arity(&a, 2)?;
            match &a[1] {
                Value::Nil => Ok(Value::Bool(false)),
                other => {
                    let l = list_arg(other, "has")?;
                    meter.charge(l.len() as u64)?;
                    Ok(Value::Bool(l.contains(&a[0])))
                }
            }
        }
        "chunk" => {
            arity(&a, 2)?;
            let n = i_arg(&a[0])?;
            let l = list_arg(&a[1], "chunk")?;
            if n <= 0 {
                return Ok(Value::List(Vec::new()));
            }
            Ok(Value::List(
                l.chunks(n as usize)
                    .map(|c| Value::List(c.to_vec()))
                    .collect(),
            ))
        }
        // ---- dicts
        "dict" => {
            let mut m = BTreeMap::new();
            for pair in a.chunks(2) {
                let k = String::from_utf8_lossy(&strval(&pair[0])).into_owned();
                m.insert(k, pair.get(1).cloned().unwrap_or(Value::str("")));
            }
            Ok(Value::Map(m))
        }
        "get" => {
            arity(&a, 2)?;
            let m = dict_arg(&a[0])?;
            let k = s_string(&a[1])?;
            Ok(m.get(&k).cloned().unwrap_or(Value::str("")))
        }
        "set" => {
            arity(&a, 3)?;
            let mut m = dict_arg(&a[0])?.clone();
            m.insert(s_string(&a[1])?, a[2].clone());
            Ok(Value::Map(m))
        }
        "unset" => {
            arity(&a, 2)?;
            let mut m = dict_arg(&a[0])?.clone();
            m.remove(&s_string(&a[1])?);
            Ok(Value::Map(m))
        }
        "hasKey" => {
            arity(&a, 2)?;
            Ok(Value::Bool(
                dict_arg(&a[0])?.contains_key(&s_string(&a[1])?),
            ))
        }
        "pluck" => {
            arity_min(&a, 1)?;
            let k = s_string(&a[0])?;
            let mut out = Vec::new();
            for d in &a[1..] {
                if let Some(v) = dict_arg(d)?.get(&k) {
                    out.push(v.clone());
                }
            }
            Ok(Value::List(out))
        }
        "keys" => {
            let mut out = Vec::new();
            for d in &a {
                out.extend(dict_arg(d)?.keys().cloned());
            }
            Ok(strs(out))
        }
        "values" => {
            arity(&a, 1)?;
            Ok(Value::List(dict_arg(&a[0])?.values().cloned().collect()))
        }
        "pick" | "omit" => {
            arity_min(&a, 1)?;
            let m = dict_arg(&a[0])?;
            let names: Vec<String> = a[1..].iter().map(s_string).collect::<Result<_, _>>()?;
            let keep = base == "pick";
            Ok(Value::Map(
                m.iter()
                    .filter(|(k, _)| names.contains(k) == keep)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ))
        }
        "dig" => {
            arity_min(&a, 3)?;
            let n = a.len();
            // sprig type-asserts the last argument: nil is an error here.
            if let Value::Nil = a[n - 1] {
                return Err(ferr("interface conversion: value is nil, not a map"));
            }
            let m = dict_arg(&a[n - 1])?;
            let default = &a[n - 2];
            let mut cur = Value::Map(m.clone());
            for k in &a[..n - 2] {
                let k = s_string(k)?;
                let next = match &cur {
                    Value::Map(m) => m.get(&k).cloned(),
                    _ => return Err(ferr("interface conversion: value is not a map")),
                };
                match next {
                    Some(v) => cur = v,
                    None => return Ok(default.clone()),
                }
            }
            Ok(cur)
        }
        "merge" | "mergeOverwrite" => {
            arity_min(&a, 1)?;
            let mut dst = dict_arg(&a[0])?.clone();
            for src in &a[1..] {
                merge_into(&mut dst, dict_arg(src)?, base == "mergeOverwrite");
            }
            Ok(Value::Map(dst))
        }
        // ---- regex (Go RE2 syntax; the `regex` crate is RE2-compatible)
        "regexMatch" => {
            arity(&a, 2)?;
            let s = s_arg(&a[1])?;
            match regex(&a[0], meter) {
                Ok(re) => Ok(Value::Bool(re.is_match(s))),
                // sprig's regexMatch ignores a bad pattern; mustRegexMatch reports it.
                Err(e @ FuncError::Budget(_)) => Err(e),
                Err(e) if must => Err(e),
                Err(_) => Ok(Value::Bool(false)),
            }
        }
        "regexFind" => {
            arity(&a, 2)?;
            let re = regex(&a[0], meter)?;
            Ok(Value::Str(
                re.find(s_arg(&a[1])?)
                    .map(|m| m.as_bytes().to_vec())
                    .unwrap_or_default(),
            ))
        }
        "regexFindAll" => {
            arity(&a, 3)?;
            let re = regex(&a[0], meter)?;
            let s = s_arg(&a[1])?;
            let n = i_arg(&a[2])?;
            let take = usize::try_from(n).unwrap_or(usize::MAX);
            let mut out = Vec::new();
            for m in re.find_iter(s).take(take) {
                meter.charge(1)?;
                out.push(Value::Str(m.as_bytes().to_vec()));
            }
            Ok(Value::List(out))
        }
        "regexReplaceAll" | "regexReplaceAllLiteral" => {
            arity(&a, 3)?;
            let re = regex(&a[0], meter)?;
            let s = s_arg(&a[1])?;
            let repl = s_arg(&a[2])?;
            let literal = base == "regexReplaceAllLiteral";
            Ok(Value::Str(regex_replace_all(&re, s, repl, literal, meter)?))
        }
        "regexSplit" => {
            arity(&a, 3)?;
            let re = regex(&a[0], meter)?;
            let s = s_arg(&a[1])?;
            let n = i_arg(&a[2])?;
            if n == 0 {
                return Ok(Value::List(Vec::new()));
            }
            Ok(Value::List(
                go_regex_split(&re, s, n, meter)?
                    .into_iter()
                    .map(Value::Str)
                    .collect(),
            ))
        }
        "regexQuoteMeta" => str1(&a, regex::escape),
        // ---- paths (Go's path package; the os* variants are the same on Linux)
        "base" | "osBase" => str1(&a, crate::path::base),
        "dir" | "osDir" => str1(&a, crate::path::dir),
        "clean" | "osClean" => str1(&a, crate::path::clean),
        "ext" | "osExt" => str1(&a, crate::path::ext),
        "isAbs" | "osIsAbs" => {
            arity(&a, 1)?;
            Ok(Value::Bool(s_arg(&a[0])?.starts_with(b"/")))
        }
        _ => unreachable_fn(),
    }
}

/// Go's `Regexp.Split`: empty matches at the start do not produce an empty first element.
/// `regexp.ReplaceAll` (`$1`, `${name}` expanded) or `ReplaceAllLiteral`, refusing a result
/// over the output budget as it grows (every match may add the whole replacement).
fn regex_replace_all(
    re: &regex::bytes::Regex,
    s: &[u8],
    repl: &[u8],
    literal: bool,
    meter: &mut Meter,
) -> Result<Vec<u8>, FuncError> {
    let template = if literal {
        Vec::new()
    } else {
        go_expand_template(repl)
    };
    let mut out = Vec::new();
    let mut last = 0;
    for caps in re.captures_iter(s) {
        let Some(m) = caps.get(0) else { continue };
        meter.charge(1)?;
        out.extend_from_slice(&s[last..m.start()]);
        if literal {
            out.extend_from_slice(repl);
        } else {
            caps.expand(&template, &mut out);
        }
        last = m.end();
        meter.check_len(out.len())?;
    }
    out.extend_from_slice(&s[last..]);
    meter.check_len(out.len())?;
    Ok(out)
}

fn go_regex_split(
    re: &regex::bytes::Regex,
    s: &[u8],
    n: i64,
    meter: &mut Meter,
) -> Result<Vec<Vec<u8>>, Budget> {
    if s.is_empty() {
        return Ok(vec![Vec::new()]);
    }
    let mut out = Vec::new();
    let (mut beg, mut end) = (0, 0);
    for m in re.find_iter(s) {
        if n > 0 && out.len() as i64 == n - 1 {
            break;
        }
        meter.charge(1)?;
        end = m.start();
        if m.end() != 0 {
            out.push(s[beg..end].to_vec());
        }
        beg = m.end();
    }
    if end != s.len() {
        out.push(s[beg..].to_vec());
    }
    Ok(out)
}

/// sprig's `addf`/`subf`/`mulf`/`divf`: shopspring/decimal arithmetic on each operand's shortest
/// decimal form, converted back to the nearest float64 (so `addf 0.1 0.2` is `0.3`). Falls back to
/// float arithmetic when the exact form does not fit in 128 bits.
fn decimal_op(op: &str, a: &[Value]) -> FResult {
    let mut acc = to_f64(&a[0]);
    let mut dec = Dec::from_f64(acc);
    for v in &a[1..] {
        let x = to_f64(v);
        if op == "divf" && x == 0.0 {
            return Err(ferr("decimal division by 0"));
        }
        let dx = Dec::from_f64(x);
        dec = match (dec, dx) {
            (Some(d), Some(e)) => match op {
                "addf" => d.add(e),
                "subf" => d.sub(e),
                "mulf" => d.mul(e),
                _ => d.div16(e),
            },
            _ => None,
        };
        acc = match op {
            "addf" => acc + x,
            "subf" => acc - x,
            "mulf" => acc * x,
            _ => acc / x,
        };
        if dec.is_none() {
            dec = Dec::from_f64(acc);
        }
    }
    Ok(Value::Float(dec.map_or(acc, Dec::to_f64)))
}

/// `m × 10^e`.
#[derive(Clone, Copy)]
struct Dec {
    m: i128,
    e: i32,
}

impl Dec {
    fn from_f64(f: f64) -> Option<Dec> {
        if !f.is_finite() {
            return None;
        }
        let s = format!("{f:e}");
        let (mant, exp) = s.split_once('e')?;
        let exp: i32 = exp.parse().ok()?;
        let (ip, fp) = mant.split_once('.').unwrap_or((mant, ""));
        let m: i128 = format!("{ip}{fp}").parse().ok()?;
        Some(Dec {
            m,
            e: exp - fp.len() as i32,
        })
    }

    fn to_f64(self) -> f64 {
        format!("{}e{}", self.m, self.e).parse().unwrap_or(f64::NAN)
    }

    fn align(self, o: Dec) -> Option<(i128, i128, i32)> {
        let e = self.e.min(o.e);
        let scale = |d: Dec| {
            10i128
                .checked_pow(u32::try_from(d.e - e).ok()?)?
                .checked_mul(d.m)
        };
        Some((scale(self)?, scale(o)?, e))
    }

    fn add(self, o: Dec) -> Option<Dec> {
        let (a, b, e) = self.align(o)?;
        Some(Dec {
            m: a.checked_add(b)?,
            e,
        })
    }

    fn sub(self, o: Dec) -> Option<Dec> {
        let (a, b, e) = self.align(o)?;
        Some(Dec {
            m: a.checked_sub(b)?,
            e,
        })
    }

    fn mul(self, o: Dec) -> Option<Dec> {
        Some(Dec {
            m: self.m.checked_mul(o.m)?,
            e: self.e.checked_add(o.e)?,
        })
    }

    /// `DivRound(o, 16)`: 16 fractional digits, half away from zero.
    fn div16(self, o: Dec) -> Option<Dec> {
        // q = self/o × 10^16 = m1 × 10^(e1 - e2 + 16) / m2
        let shift = self.e - o.e + 16;
        let (num, den) = if shift >= 0 {
            (self.m.checked_mul(10i128.checked_pow(shift as u32)?)?, o.m)
        } else {
            (
                self.m,
                o.m.checked_mul(10i128.checked_pow((-shift) as u32)?)?,
            )
        };
        let q = num / den;
        let r = num % den;
        let q = if r.checked_mul(2)?.abs() >= den.abs() {
            q + num.signum() * den.signum()
        } else {
            q
        };
        Some(Dec { m: q, e: -16 })
    }
}

fn unreachable_fn() -> FResult {
    Err(ferr("function not available"))
}

fn go_space(c: char) -> bool {
    c.is_whitespace()
}

fn str1(a: &[Value], f: impl Fn(&str) -> String) -> FResult {
    arity(a, 1)?;
    let s = s_string(&a[0])?;
    Ok(Value::str(f(&s)))
}

fn str_bytes(a: &[Value], f: impl Fn(&[u8]) -> Vec<u8>) -> FResult {
    arity(a, 1)?;
    Ok(Value::Str(f(s_arg(&a[0])?)))
}

fn eval_args_str(a: &[Value]) -> Vec<u8> {
    // text/template's evalArgs: a single string argument is used as is, else fmt.Sprint.
    if let [Value::Str(s)] = a {
        return s.clone();
    }
    // printableValue turns a missing value into the string "<no value>".
    let a: Vec<Value> = a
        .iter()
        .map(|v| {
            if let Value::Nil = v {
                Value::str("<no value>")
            } else {
                v.clone()
            }
        })
        .collect();
    gofmt::sprint_args(&a)
}

fn title(s: &str) -> String {
    // strings.Title: uppercase letters that follow a separator.
    let mut out = String::new();
    let mut prev = ' ';
    for c in s.chars() {
        let sep = !(prev.is_alphanumeric()
            || prev == '_'
            || (!prev.is_ascii() && !prev.is_whitespace() && !prev.is_ascii_punctuation()));
        out.push(if sep { simple_case(c, true) } else { c });
        prev = c;
    }
    out
}

fn abbreviate(s: &str, offset: i64, width: i64) -> String {
    // goutils.AbbreviateFull.
    let chars: Vec<char> = s.chars().collect();
    let len = chars.len() as i64;
    let ab = "...";
    if width < 4 || (offset > 0 && width < 7) || len <= width {
        return s.to_string();
    }
    let mut offset = offset.min(len);
    if len - offset < width - 3 {
        offset = len - (width - 3);
    }
    if offset <= 4 {
        return chars[..(width - 3) as usize].iter().collect::<String>() + ab;
    }
    if width < 7 {
        return s.to_string();
    }
    if offset + width - 3 < len {
        let inner: String = chars[offset as usize..].iter().collect();
        return ab.to_string() + &abbreviate(&inner, 0, width - 3);
    }
    ab.to_string()
        + &chars[(len - (width - 3)) as usize..]
            .iter()
            .collect::<String>()
}

fn words_case(s: &str, sep: char) -> String {
    // xstrings.ToSnakeCase / ToKebabCase (simplified: split on case changes and non-alnum).
    let mut out = String::new();
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev = if i > 0 { Some(chars[i - 1]) } else { None };
            let next = chars.get(i + 1);
            let boundary = prev.is_some_and(|p| p.is_lowercase() || p.is_ascii_digit())
                || (prev.is_some_and(|p| p.is_uppercase())
                    && next.is_some_and(|n| n.is_lowercase()));
            if boundary && !out.ends_with(sep) {
                out.push(sep);
            }
            out.extend(c.to_lowercase());
        } else if c.is_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with(sep) {
            out.push(sep);
        }
    }
    out.trim_end_matches(sep).to_string()
}

/// goutils.WrapCustom, byte by byte as in Go. Every line adds a separator, so the result is
/// checked against the output budget as it grows.
fn word_wrap(
    s: &[u8],
    n: i64,
    sep: &[u8],
    wrap_long: bool,
    meter: &Meter,
) -> Result<Vec<u8>, Budget> {
    if s.is_empty() {
        return Ok(Vec::new());
    }
    let sep: &[u8] = if sep.is_empty() { b"\n" } else { sep };
    let n = n.max(1) as usize;
    let len = s.len();
    let mut off = 0;
    let mut out = Vec::new();
    while len - off > n {
        meter.check_len(out.len())?;
        if s[off] == b' ' {
            off += 1;
            continue;
        }
        let end = (n + off + 1).min(len);
        match s[off..end].iter().rposition(|&c| c == b' ') {
            Some(i) => {
                out.extend_from_slice(&s[off..off + i]);
                out.extend_from_slice(sep);
                off += i + 1;
            }
            None if wrap_long => {
                out.extend_from_slice(&s[off..off + n]);
                out.extend_from_slice(sep);
                off += n;
            }
            None => {
                let end = n + off;
                match s[end..].iter().position(|&c| c == b' ') {
                    None => {
                        out.extend_from_slice(&s[off..]);
                        off = len;
                    }
                    Some(i) => {
                        out.extend_from_slice(&s[off..end + i]);
                        out.extend_from_slice(sep);
                        off = end + i + 1;
                    }
                }
            }
        }
    }
    out.extend_from_slice(&s[off..]);
    meter.check_len(out.len())?;
    Ok(out)
}

/// `strings.Replace(s, old, new, -1)`; the result's size is known before it is built.
fn replace_all(s: &[u8], old: &[u8], new: &[u8], meter: &Meter) -> Result<Vec<u8>, Budget> {
    if old.is_empty() {
        // strings.Replace with an empty old inserts `new` around every rune.
        let mut runes = 0;
        let mut rest = s;
        while !rest.is_empty() {
            let (_, n) = decode_rune(rest);
            runes += 1;
            rest = &rest[n..];
        }
        meter.check_product(runes + 1, new.len(), s.len())?;
        let mut out = new.to_vec();
        let mut rest = s;
        while !rest.is_empty() {
            let (_, n) = decode_rune(rest);
            out.extend_from_slice(&rest[..n]);
            out.extend_from_slice(new);
            rest = &rest[n..];
        }
        return Ok(out);
    }
    let hits = memchr::memmem::find_iter(s, old).count();
    meter.check_product(hits, new.len(), s.len() - hits * old.len())?;
    let mut out = Vec::with_capacity(s.len() - hits * old.len() + hits * new.len());
    let mut last = 0;
    for at in memchr::memmem::find_iter(s, old) {
        out.extend_from_slice(&s[last..at]);
        out.extend_from_slice(new);
        last = at + old.len();
    }
    out.extend_from_slice(&s[last..]);
    Ok(out)
}

/// strings.SplitN semantics (`n` None = all); one step per piece.
fn split_bytes(
    s: &[u8],
    sep: &[u8],
    n: Option<usize>,
    meter: &mut Meter,
) -> Result<Vec<Vec<u8>>, Budget> {
    let mut out = Vec::new();
    if sep.is_empty() {
        let mut rest = s;
        while !rest.is_empty() {
            meter.charge(1)?;
            if n.is_some_and(|n| out.len() + 1 == n) {
                out.push(rest.to_vec());
                return Ok(out);
            }
            let (_, k) = decode_rune(rest);
            out.push(rest[..k].to_vec());
            rest = &rest[k..];
        }
        return Ok(out);
    }
    let mut start = 0;
    for at in memchr::memmem::find_iter(s, sep) {
        if n.is_some_and(|n| out.len() + 1 == n) {
            break;
        }
        meter.charge(1)?;
        out.push(s[start..at].to_vec());
        start = at + sep.len();
    }
    out.push(s[start..].to_vec());
    Ok(out)
}

/// sprig's `seq`: `untilStep` to one past the end, joined with spaces. The end is computed with
/// Go's wrapping int arithmetic, so `seq 1 <max int>` is empty as in Go.
fn seq(a: &[Value], meter: &mut Meter) -> FResult {
    let p: Vec<i64> = a.iter().map(i_arg).collect::<Result<_, _>>()?;
    let (start, stop, step) = match p.as_slice() {
        [end] => {
            let inc = if *end < 1 { -1 } else { 1 };
            (1, end.wrapping_add(inc), inc)
        }
        [start, end] => {
            let inc = if end < start { -1 } else { 1 };
            (*start, end.wrapping_add(inc), inc)
        }
        [start, step, end] => {
            if end < start && *step > 0 {
                return Ok(Value::str(""));
            }
            let inc = if end < start { -1 } else { 1 };
            (*start, end.wrapping_add(inc), *step)
        }
        _ => return Ok(Value::str("")),
    };
    let Value::List(items) = until_step(start, stop, step, meter)? else {
        return Err(ferr("internal error"));
    };
    let mut out = Vec::new();
    for (k, x) in items.iter().enumerate() {
        if k > 0 {
            out.push(b' ');
        }
        write_value(&mut out, x, false);
        meter.check_len(out.len())?;
    }
    Ok(Value::Str(out))
}

/// sprig's `untilStep`; one step per element. Where Go's int would wrap around (its loop never
/// ends) the call is an error.
fn until_step(start: i64, stop: i64, step: i64, meter: &mut Meter) -> FResult {
    let mut v = Vec::new();
    let down = stop < start;
    if (down && step >= 0) || (!down && step <= 0) {
        return Ok(Value::List(v));
    }
    let mut i = start;
    while (down && i > stop) || (!down && i < stop) {
        meter.charge(1)?;
        v.push(Value::Int(i));
        i = i.checked_add(step).ok_or_else(|| {
            ferr("the sequence passes the end of int (Go's loop would never end)")
        })?;
    }
    Ok(Value::List(v))
}

fn merge_into(dst: &mut BTreeMap<String, Value>, src: &BTreeMap<String, Value>, overwrite: bool) {
    // mergo.Merge: fill keys that are missing or empty in dst; recurse into maps.
    for (k, v) in src {
        match (dst.get_mut(k), v) {
            (Some(Value::Map(d)), Value::Map(s)) => merge_into(d, s, overwrite),
            (Some(d), _) => {
                if overwrite || is_empty(d) {
                    *d = v.clone();
                }
            }
            (None, _) => {
                dst.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Go's `Regexp.Expand` template syntax (`$1`, `${name}`) in the `regex` crate's syntax: the same
/// except that Go treats `$1a` as the group named `1a`, which the crate also does.
fn go_expand_template(repl: &[u8]) -> Vec<u8> {
    repl.to_vec()
}

const GO_STD_B64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireCanonical),
);

/// sprig's b64dec prints the decode error (a position, no data) instead of failing.
fn go_b64_error(e: &base64::DecodeError, len: usize) -> String {
    let i = match e {
        base64::DecodeError::InvalidByte(i, _) | base64::DecodeError::InvalidLastSymbol(i, _) => *i,
        // Go reports the start of the incomplete quantum.
        base64::DecodeError::InvalidLength(n) => n / 4 * 4,
        base64::DecodeError::InvalidPadding => len / 4 * 4,
    };
    format!("illegal base64 data at input byte {i}")
}

/// Go's `unicode.ToUpper`/`ToLower`: one rune to one rune (no "ß" → "SS").
fn simple_case(c: char, upper: bool) -> char {
    let it: Vec<char> = if upper {
        c.to_uppercase().collect()
    } else {
        c.to_lowercase().collect()
    };
    match it.as_slice() {
        [one] => *one,
        // "İ" lowers to "i" plus a combining dot; Go's single-rune mapping gives "i".
        [first, rest @ ..] if rest.iter().all(|m| ('\u{300}'..='\u{36f}').contains(m)) => *first,
        _ => c,
    }
}

fn adler32(s: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &c in s {
        a = (a + u32::from(c)) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

const B32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

fn base32_encode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in s.chunks(5) {
        let mut buf = [0u8; 5];
        buf[..chunk.len()].copy_from_slice(chunk);
        let n = u64::from_be_bytes([0, 0, 0, buf[0], buf[1], buf[2], buf[3], buf[4]]);
        let chars = (chunk.len() * 8).div_ceil(5);
        for i in 0..8 {
            if i < chars {
                out.push(B32[((n >> (35 - 5 * i)) & 31) as usize]);
            } else {
                out.push(b'=');
            }
        }
    }
    out
}

/// base32.StdEncoding.DecodeString; the error is the offending input position.
fn base32_decode(s: &[u8]) -> Result<Vec<u8>, usize> {
    let s: Vec<u8> = s
        .iter()
        .copied()
        .filter(|c| *c != b'\r' && *c != b'\n')
        .collect();
    if let Some(i) = s.iter().position(|c| *c != b'=' && !B32.contains(c)) {
        return Err(i);
    }
    if !s.len().is_multiple_of(8) {
        return Err(s.len() / 8 * 8);
    }
    let mut out = Vec::new();
    for (ci, chunk) in s.chunks(8).enumerate() {
        let pad = chunk.iter().rev().take_while(|c| **c == b'=').count();
        let mut n: u64 = 0;
        for (i, &c) in chunk[..8 - pad].iter().enumerate() {
            let v = B32.iter().position(|&b| b == c).ok_or(ci * 8 + i)? as u64;
            n = (n << 5) | v;
        }
        n <<= 5 * pad as u64;
        let bytes = match pad {
            0 => 5,
            1 => 4,
            3 => 3,
            4 => 2,
            6 => 1,
            _ => return Err(ci * 8),
        };
        let be = n.to_be_bytes();
        out.extend_from_slice(&be[3..3 + bytes]);
    }
    Ok(out)
}

/// text/template's `index` step.
pub(crate) fn index1(v: &Value, ix: &Value) -> FResult {
    match v {
        Value::List(l) => {
            let (Value::Int(i) | Value::Int64(i)) = ix else {
                return Err(ferr(format!(
                    "cannot index slice/array with type {}",
                    ix.type_name()
                )));
            };
            usize::try_from(*i)
                .ok()
                .and_then(|i| l.get(i).cloned())
                .ok_or_else(|| ferr("index out of range"))
        }
        Value::Str(s) => {
            let (Value::Int(i) | Value::Int64(i)) = ix else {
                return Err(ferr(format!(
                    "cannot index slice/array with type {}",
                    ix.type_name()
                )));
            };
            usize::try_from(*i)
                .ok()
                .and_then(|i| s.get(i))
                .map(|b| Value::Int(i64::from(*b)))
                .ok_or_else(|| ferr("index out of range"))
        }
        Value::Map(m) => match ix {
            Value::Str(k) => Ok(m
                .get(String::from_utf8_lossy(k).as_ref())
                .cloned()
                .unwrap_or(Value::Nil)),
            Value::Nil => Ok(Value::Nil),
            other => Err(ferr(format!(
                "value has type {}; should be string",
                other.type_name()
            ))),
        },
        Value::StrMap(m) => match ix {
            // map[string]string: a missing key is the zero value "", never <no value>.
            Value::Str(k) => Ok(Value::Str(
                m.get(String::from_utf8_lossy(k).as_ref())
                    .cloned()
                    .unwrap_or_default(),
            )),
            Value::Nil => Ok(Value::str("")),
            other => Err(ferr(format!(
                "value has type {}; should be string",
                other.type_name()
            ))),
        },
        Value::Nil => Err(ferr("index of untyped nil")),
        other => Err(ferr(format!(
            "can't index item of type {}",
            other.type_name()
        ))),
    }
}

/// sprig's `slice`: lists only.
fn sprig_slice(a: &[Value]) -> FResult {
    let l = match &a[0] {
        Value::List(l) => l,
        other => return Err(ferr(format!("Cannot slice on type {}", other.kind()))),
    };
    let len = l.len() as i64;
    let (start, end) = match a.len() {
        1 => (0, len),
        2 => (to_i64(&a[1]), len),
        _ => (to_i64(&a[1]), to_i64(&a[2])),
    };
    if start < 0 || end > len || start > end {
        return Err(ferr("slice bounds out of range"));
    }
    Ok(Value::List(l[start as usize..end as usize].to_vec()))
}

#[derive(PartialEq)]
enum Basic {
    Bool,
    Int,
    Float,
    Str,
    Other,
}

fn basic(v: &Value) -> Basic {
    match v {
        Value::Bool(_) => Basic::Bool,
        Value::Int(_) | Value::Int64(_) => Basic::Int,
        Value::Float(_) => Basic::Float,
        Value::Str(_) => Basic::Str,
        _ => Basic::Other,
    }
}

/// text/template's `eq` for one pair.
fn go_eq(a: &Value, b: &Value) -> Result<bool, FuncError> {
    let (ka, kb) = (basic(a), basic(b));
    if ka != kb {
        if matches!(a, Value::Nil) || matches!(b, Value::Nil) {
            return Ok(matches!(a, Value::Nil) && matches!(b, Value::Nil));
        }
        return Err(ferr("incompatible types for comparison"));
    }
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => Ok(x == y),
        (Value::Int(x) | Value::Int64(x), Value::Int(y) | Value::Int64(y)) => Ok(x == y),
        (Value::Float(x), Value::Float(y)) => Ok(x == y),
        (Value::Str(x), Value::Str(y)) => Ok(x == y),
        (Value::Nil, Value::Nil) => Ok(true),
        (Value::Nil, _) | (_, Value::Nil) => Ok(false),
        _ => Err(ferr("non-comparable types")),
    }
}

/// text/template's `lt`.
fn go_lt(a: &Value, b: &Value) -> Result<bool, FuncError> {
    match (a, b) {
        (Value::Int(x) | Value::Int64(x), Value::Int(y) | Value::Int64(y)) => Ok(x < y),
        (Value::Float(x), Value::Float(y)) => Ok(x < y),
        (Value::Str(x), Value::Str(y)) => Ok(x < y),
        (Value::Bool(_), Value::Bool(_))
        | (Value::List(_), _)
        | (Value::Map(_), _)
        | (Value::StrMap(_), _) => Err(ferr("invalid type for comparison")),
        _ if basic(a) != basic(b) => Err(ferr("incompatible types for comparison")),
        _ => Err(ferr("invalid type for comparison")),
    }
}

/// template.HTMLEscapeString.
fn html_escape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"&#34;"),
            b'\'' => out.extend_from_slice(b"&#39;"),
            b'&' => out.extend_from_slice(b"&amp;"),
            b'<' => out.extend_from_slice(b"&lt;"),
            b'>' => out.extend_from_slice(b"&gt;"),
            0 => out.extend_from_slice("\u{FFFD}".as_bytes()),
            c => out.push(c),
        }
    }
    out
}

/// template.JSEscapeString.
fn js_escape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let (c, n) = decode_rune(rest);
        let b = rest[0];
        match c {
            Some('\\') => out.extend_from_slice(b"\\\\"),
            Some('\'') => out.extend_from_slice(b"\\'"),
            Some('"') => out.extend_from_slice(b"\\\""),
            Some('<') => out.extend_from_slice(b"\\u003C"),
            Some('>') => out.extend_from_slice(b"\\u003E"),
            Some('&') => out.extend_from_slice(b"\\u0026"),
            Some('=') => out.extend_from_slice(b"\\u003D"),
            Some(c) if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04X}", c as u32).as_bytes())
            }
            Some(c) if c.is_ascii() => out.push(b),
            Some(c) if is_js_print(c) => out.extend_from_slice(&rest[..n]),
            Some(c) => out.extend_from_slice(format!("\\u{:04X}", c as u32).as_bytes()),
            None => out.extend_from_slice(b"\\uFFFD"),
        }
        rest = &rest[n..];
    }
    out
}

fn is_js_print(c: char) -> bool {
    !c.is_control() && !c.is_whitespace()
}

/// url.QueryEscape.
fn query_escape(s: &[u8]) -> String {
    let mut out = String::new();
    for &c in s {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(c as char)
            }
            b' ' => out.push('+'),
            c => out.push_str(&format!("%{c:02X}")),
        }
    }
    out
}
