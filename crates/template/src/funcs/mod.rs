//! Template functions: Go's builtins, the sprig subset hush implements and External Secrets' own
//! functions (see docs/template.md), in one table: [`FUNCS`] says, for every name, which function
//! set has it and what implements it. The implementations live in one module per kind.
//!
//! Error messages name types and arities, never argument values (they may be secrets).

mod builtins;
mod dicts;
mod encoding;
mod eso;
mod flow;
mod hashes;
mod lists;
mod math;
mod paths;
mod regexp;
mod strings;

pub(crate) use builtins::index1;

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

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

/// Which functions a template may call. Each set includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum FuncSet {
    /// Go builtins only.
    Builtins,
    /// Builtins + sprig `GenericFuncMap()` minus `env`, `expandenv`, `getHostByName`.
    Sprig,
    /// Sprig + External Secrets' own functions.
    ExternalSecrets,
}

/// One call in progress: what an implementation may need besides its arguments.
struct Call<'m> {
    /// The table name, without `must` (one implementation may serve several names).
    name: &'static str,
    /// Called as `mustName`: report errors the plain name ignores.
    must: bool,
    /// The render's budget.
    meter: &'m mut Meter,
}

type NativeFn = fn(Vec<Value>, &mut Call<'_>) -> FResult;

/// What runs when a template calls a name.
#[derive(Clone, Copy)]
enum Imp {
    /// A function of this module.
    Native(NativeFn),
    /// `and` and `or`: evaluated by `exec.rs`, which must not evaluate every argument.
    ExecOnly,
    /// A function of the Go function set that hush does not implement: a parse-time error,
    /// never different bytes.
    Unimplemented,
}

/// One row of the function table.
#[derive(Clone, Copy)]
struct Func {
    name: &'static str,
    /// The smallest function set that has it.
    set: FuncSet,
    imp: Imp,
    /// sprig also has `mustName`, which reports the errors `name` ignores.
    must: bool,
    /// Steps the call costs whatever its arguments (private-key operations, PKCS#12 key
    /// derivation, certificate parsing): work that does not show in the size of its arguments or
    /// result.
    fixed_cost: u64,
    /// Changes the map passed as its first argument (Go maps are references).
    mutates_first_arg: bool,
}

const fn native(name: &'static str, set: FuncSet, f: NativeFn) -> Func {
    Func {
        name,
        set,
        imp: Imp::Native(f),
        must: false,
        fixed_cost: 0,
        mutates_first_arg: false,
    }
}

const fn exec_only(name: &'static str) -> Func {
    Func {
        imp: Imp::ExecOnly,
        ..native(name, FuncSet::Builtins, builtins::not)
    }
}

const fn unimplemented(name: &'static str, set: FuncSet) -> Func {
    Func {
        imp: Imp::Unimplemented,
        ..native(name, set, builtins::not)
    }
}

impl Func {
    const fn must(self) -> Self {
        Func { must: true, ..self }
    }

    const fn cost(self, steps: u64) -> Self {
        Func {
            fixed_cost: steps,
            ..self
        }
    }

    const fn mutates_first_arg(self) -> Self {
        Func {
            mutates_first_arg: true,
            ..self
        }
    }
}

use FuncSet::{Builtins, ExternalSecrets, Sprig};

/// Every function name a template may use, with its set and implementation.
// One row per name on purpose (issue 16 item 3): rows of the same shape are the table, not
// repeated logic.
static FUNCS: &[Func] = &[
    // ---- Go text/template builtins
    exec_only("and"),
    exec_only("or"),
    native("not", Builtins, builtins::not),
    native("len", Builtins, builtins::len),
    native("index", Builtins, builtins::index),
    native("slice", Builtins, builtins::slice).must(),
    native("print", Builtins, builtins::print),
    native("println", Builtins, builtins::println),
    native("printf", Builtins, builtins::printf),
    native("html", Builtins, builtins::html),
    native("js", Builtins, builtins::js),
    native("urlquery", Builtins, builtins::urlquery),
    native("eq", Builtins, builtins::eq),
    native("ne", Builtins, builtins::ne),
    native("lt", Builtins, builtins::compare),
    native("le", Builtins, builtins::compare),
    native("gt", Builtins, builtins::compare),
    native("ge", Builtins, builtins::compare),
    // ---- strings
    native("hello", Sprig, strings::hello),
    native("trim", Sprig, strings::trim),
    native("trimAll", Sprig, strings::trim_all),
    native("trimall", Sprig, strings::trim_all),
    native("trimPrefix", Sprig, strings::trim_prefix),
    native("trimSuffix", Sprig, strings::trim_suffix),
    native("upper", Sprig, strings::upper),
    native("lower", Sprig, strings::lower),
    native("title", Sprig, strings::title_fn),
    native("untitle", Sprig, strings::untitle),
    native("swapcase", Sprig, strings::swapcase),
    native("repeat", Sprig, strings::repeat),
    native("substr", Sprig, strings::substr),
    native("nospace", Sprig, strings::nospace),
    native("trunc", Sprig, strings::trunc),
    native("abbrev", Sprig, strings::abbrev),
    native("abbrevboth", Sprig, strings::abbrevboth),
    native("initials", Sprig, strings::initials),
    native("contains", Sprig, strings::contains),
    native("hasPrefix", Sprig, strings::has_prefix),
    native("hasSuffix", Sprig, strings::has_suffix),
    native("quote", Sprig, strings::quote_each),
    native("squote", Sprig, strings::quote_each),
    native("cat", Sprig, strings::cat),
    native("indent", Sprig, strings::indent),
    native("nindent", Sprig, strings::indent),
    native("replace", Sprig, strings::replace),
    native("plural", Sprig, strings::plural),
    native("snakecase", Sprig, strings::snakecase),
    native("kebabcase", Sprig, strings::kebabcase),
    native("camelcase", Sprig, strings::camelcase),
    native("wrap", Sprig, strings::wrap),
    native("wrapWith", Sprig, strings::wrap_with),
    native("toString", Sprig, strings::to_string),
    native("toStrings", Sprig, strings::to_strings),
    native("split", Sprig, strings::split),
    native("splitn", Sprig, strings::splitn),
    native("splitList", Sprig, strings::split_list),
    native("join", Sprig, strings::join),
    native("sortAlpha", Sprig, strings::sort_alpha),
    // ---- conversion and math
    native("atoi", Sprig, math::atoi),
    native("int", Sprig, math::int),
    native("int64", Sprig, math::int64),
    native("float64", Sprig, math::float64),
    native("toDecimal", Sprig, math::to_decimal),
    native("add", Sprig, math::add),
    native("mul", Sprig, math::mul),
    native("add1", Sprig, math::add1),
    native("sub", Sprig, math::sub),
    native("div", Sprig, math::div_mod),
    native("mod", Sprig, math::div_mod),
    native("max", Sprig, math::max_min),
    native("biggest", Sprig, math::max_min),
    native("min", Sprig, math::max_min),
    native("addf", Sprig, math::addf),
    native("add1f", Sprig, math::add1f),
    native("subf", Sprig, math::decimal_arith),
    native("mulf", Sprig, math::decimal_arith),
    native("divf", Sprig, math::decimal_arith),
    native("maxf", Sprig, math::maxf_minf),
    native("minf", Sprig, math::maxf_minf),
    native("floor", Sprig, math::floor),
    native("ceil", Sprig, math::ceil),
    native("round", Sprig, math::round),
    native("seq", Sprig, math::seq_fn),
    native("until", Sprig, math::until),
    native("untilStep", Sprig, math::until_step_args),
    // ---- defaults, flow, types
    native("default", Sprig, flow::default_fn),
    native("empty", Sprig, flow::empty),
    native("coalesce", Sprig, flow::coalesce),
    native("all", Sprig, flow::all),
    native("any", Sprig, flow::any),
    native("ternary", Sprig, flow::ternary),
    native("fail", Sprig, flow::fail),
    native("typeOf", Sprig, flow::type_of),
    native("typeIs", Sprig, flow::type_is),
    native("typeIsLike", Sprig, flow::type_is),
    native("kindOf", Sprig, flow::kind_of),
    native("kindIs", Sprig, flow::kind_is),
    native("deepEqual", Sprig, flow::deep_equal),
    native("deepCopy", Sprig, flow::deep_copy).must(),
    // ---- encoding
    native("b64enc", Sprig, encoding::b64enc),
    native("b64dec", Sprig, encoding::b64dec),
    native("b32enc", Sprig, encoding::b32enc),
    native("b32dec", Sprig, encoding::b32dec),
    native("hexdec", ExternalSecrets, encoding::hexdec),
    native("filterPEM", ExternalSecrets, eso::filter_pem),
    native("filterCertChain", ExternalSecrets, eso::filter_pem).cost(1000),
    native("certSANs", ExternalSecrets, eso::cert_sans).cost(1000),
    native("pkcs12key", ExternalSecrets, eso::pkcs12).cost(100_000),
    native("pkcs12cert", ExternalSecrets, eso::pkcs12).cost(100_000),
    native("pkcs12keyPass", ExternalSecrets, eso::pkcs12).cost(100_000),
    native("pkcs12certPass", ExternalSecrets, eso::pkcs12).cost(100_000),
    native("pemToPkcs12", ExternalSecrets, eso::pem_to_pkcs12).cost(20_000),
    native("pemToPkcs12Pass", ExternalSecrets, eso::pem_to_pkcs12).cost(20_000),
    native("fullPemToPkcs12", ExternalSecrets, eso::pem_to_pkcs12).cost(20_000),
    native("fullPemToPkcs12Pass", ExternalSecrets, eso::pem_to_pkcs12).cost(20_000),
    native(
        "pemTruststoreToPKCS12",
        ExternalSecrets,
        eso::pem_truststore_to_pkcs12,
    )
    .cost(20_000),
    native(
        "pemTruststoreToPKCS12Pass",
        ExternalSecrets,
        eso::pem_truststore_to_pkcs12,
    )
    .cost(20_000),
    native("rsaDecrypt", ExternalSecrets, eso::rsa_decrypt).cost(100_000),
    native("jwkPublicKeyPem", ExternalSecrets, eso::jwk_public_key_pem).cost(1000),
    native(
        "jwkPrivateKeyPem",
        ExternalSecrets,
        eso::jwk_private_key_pem,
    )
    .cost(1000),
    native("toYaml", ExternalSecrets, encoding::to_yaml),
    native("fromYaml", ExternalSecrets, encoding::from_yaml),
    native("toJson", Sprig, encoding::to_json).must(),
    native("toRawJson", Sprig, encoding::to_json).must(),
    native("toPrettyJson", Sprig, encoding::to_json).must(),
    native("fromJson", Sprig, encoding::from_json).must(),
    // ---- hashes
    native("sha1sum", Sprig, hashes::sha1sum),
    native("sha256sum", Sprig, hashes::sha256sum),
    native("sha512sum", Sprig, hashes::sha512sum),
    native("adler32sum", Sprig, hashes::adler32sum),
    // ---- lists
    native("list", Sprig, lists::list),
    native("tuple", Sprig, lists::list),
    native("first", Sprig, lists::list_transform).must(),
    native("last", Sprig, lists::list_transform).must(),
    native("rest", Sprig, lists::list_transform).must(),
    native("initial", Sprig, lists::list_transform).must(),
    native("reverse", Sprig, lists::list_transform).must(),
    native("uniq", Sprig, lists::list_transform).must(),
    native("compact", Sprig, lists::list_transform).must(),
    native("append", Sprig, lists::append).must(),
    native("push", Sprig, lists::append).must(),
    native("prepend", Sprig, lists::prepend).must(),
    native("concat", Sprig, lists::concat),
    native("without", Sprig, lists::without).must(),
    native("has", Sprig, lists::has).must(),
    native("chunk", Sprig, lists::chunk).must(),
    // ---- dicts
    native("dict", Sprig, dicts::dict),
    native("get", Sprig, dicts::get),
    native("set", Sprig, dicts::set).mutates_first_arg(),
    native("unset", Sprig, dicts::unset).mutates_first_arg(),
    native("hasKey", Sprig, dicts::has_key),
    native("pluck", Sprig, dicts::pluck),
    native("keys", Sprig, dicts::keys),
    native("values", Sprig, dicts::values),
    native("pick", Sprig, dicts::pick_omit),
    native("omit", Sprig, dicts::pick_omit),
    native("dig", Sprig, dicts::dig),
    native("merge", Sprig, dicts::merge)
        .must()
        .mutates_first_arg(),
    native("mergeOverwrite", Sprig, dicts::merge)
        .must()
        .mutates_first_arg(),
    // ---- regex (Go RE2 syntax; the `regex` crate is RE2-compatible)
    native("regexMatch", Sprig, regexp::regex_match).must(),
    native("regexFind", Sprig, regexp::regex_find).must(),
    native("regexFindAll", Sprig, regexp::regex_find_all).must(),
    native("regexReplaceAll", Sprig, regexp::regex_replace).must(),
    native("regexReplaceAllLiteral", Sprig, regexp::regex_replace).must(),
    native("regexSplit", Sprig, regexp::regex_split).must(),
    native("regexQuoteMeta", Sprig, regexp::regex_quote_meta),
    // ---- paths (Go's path package; the os* variants are the same on Linux)
    native("base", Sprig, paths::path_base),
    native("osBase", Sprig, paths::path_base),
    native("dir", Sprig, paths::path_dir),
    native("osDir", Sprig, paths::path_dir),
    native("clean", Sprig, paths::path_clean),
    native("osClean", Sprig, paths::path_clean),
    native("ext", Sprig, paths::path_ext),
    native("osExt", Sprig, paths::path_ext),
    native("isAbs", Sprig, paths::path_is_abs),
    native("osIsAbs", Sprig, paths::path_is_abs),
    // ---- sprig functions hush does not implement: a parse-time error, never different bytes
    unimplemented("date", Sprig),
    unimplemented("date_in_zone", Sprig),
    unimplemented("date_modify", Sprig),
    unimplemented("now", Sprig),
    unimplemented("htmlDate", Sprig),
    unimplemented("htmlDateInZone", Sprig),
    unimplemented("dateInZone", Sprig),
    unimplemented("dateModify", Sprig),
    unimplemented("mustDateModify", Sprig),
    unimplemented("ago", Sprig),
    unimplemented("toDate", Sprig),
    unimplemented("mustToDate", Sprig),
    unimplemented("unixEpoch", Sprig),
    unimplemented("duration", Sprig),
    unimplemented("durationRound", Sprig),
    unimplemented("randAlphaNum", Sprig),
    unimplemented("randAlpha", Sprig),
    unimplemented("randAscii", Sprig),
    unimplemented("randNumeric", Sprig),
    unimplemented("randInt", Sprig),
    unimplemented("randBytes", Sprig),
    unimplemented("shuffle", Sprig),
    unimplemented("uuidv4", Sprig),
    unimplemented("bcrypt", Sprig),
    unimplemented("htpasswd", Sprig),
    unimplemented("genPrivateKey", Sprig),
    unimplemented("derivePassword", Sprig),
    unimplemented("buildCustomCert", Sprig),
    unimplemented("genCA", Sprig),
    unimplemented("genCAWithKey", Sprig),
    unimplemented("genSelfSignedCert", Sprig),
    unimplemented("genSelfSignedCertWithKey", Sprig),
    unimplemented("genSignedCert", Sprig),
    unimplemented("genSignedCertWithKey", Sprig),
    unimplemented("encryptAES", Sprig),
    unimplemented("decryptAES", Sprig),
    unimplemented("semver", Sprig),
    unimplemented("semverCompare", Sprig),
    unimplemented("urlParse", Sprig),
    unimplemented("urlJoin", Sprig),
];

static BY_NAME: LazyLock<HashMap<&'static str, &'static Func>> =
    LazyLock::new(|| FUNCS.iter().map(|f| (f.name, f)).collect());

/// The table row for `name` and whether it was called as `mustName`. sprig's `must` variants are
/// sprig functions, even where the plain name is a builtin (`mustSlice`).
fn resolve(name: &str) -> Option<(&'static Func, bool)> {
    if let Some(f) = BY_NAME.get(name) {
        return Some((f, false));
    }
    let rest = name.strip_prefix("must")?;
    let mut c = rest.chars();
    let first = c.next().filter(char::is_ascii_uppercase)?;
    let base = first.to_ascii_lowercase().to_string() + c.as_str();
    BY_NAME
        .get(base.as_str())
        .filter(|f| f.must)
        .map(|f| (*f, true))
}

/// What `set` says about `name`, for the parser.
pub(crate) fn lookup(set: FuncSet, name: &str) -> crate::parse::FuncLookup {
    use crate::parse::FuncLookup;
    let Some((f, must)) = resolve(name) else {
        return FuncLookup::Unknown;
    };
    let needs = if must { f.set.max(Sprig) } else { f.set };
    if set < needs {
        FuncLookup::Unknown
    } else if let Imp::Unimplemented = f.imp {
        FuncLookup::Unimplemented
    } else {
        FuncLookup::Known
    }
}

/// Whether `name` changes the map passed as its first argument.
pub(crate) fn mutates_first_arg(name: &str) -> bool {
    resolve(name).is_some_and(|(f, _)| f.mutates_first_arg)
}

/// Calls `name` (already checked by the parser to exist in the set).
///
/// `meter` is the render's budget: functions whose result can be much larger than their
/// arguments (`repeat`, `indent`, `printf`, `join`, `replace`, …) check the result's size
/// before building it, and functions that loop (`until`, `seq`, `uniq`, …) pay per round.
pub(crate) fn call(_set: &FuncSet, name: &str, a: Vec<Value>, meter: &mut Meter) -> FResult {
    let Some((f, must)) = resolve(name) else {
        return unreachable_fn();
    };
    if f.fixed_cost > 0 {
        meter.charge(f.fixed_cost)?;
    }
    let Imp::Native(imp) = f.imp else {
        return unreachable_fn();
    };
    imp(
        a,
        &mut Call {
            name: f.name,
            must,
            meter,
        },
    )
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
            hush_gocompat::strconv::parse_int(t).unwrap_or(0)
        }
        _ => 0,
    }
}

/// sprig's `empty`.
fn is_empty(v: &Value) -> bool {
    !v.truthy()
}

fn unreachable_fn() -> FResult {
    Err(ferr("function not available"))
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
