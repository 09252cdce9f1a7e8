//! sprig's path functions (Go's `path` package; the `os*` variants are the same on Linux).

use super::*;

pub(super) fn path_base(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    str1(&a, crate::path::base)
}

pub(super) fn path_dir(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    str1(&a, crate::path::dir)
}

pub(super) fn path_clean(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    str1(&a, crate::path::clean)
}

pub(super) fn path_ext(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    str1(&a, crate::path::ext)
}

pub(super) fn path_is_abs(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity(&a, 1)?;
    Ok(Value::Bool(s_arg(&a[0])?.starts_with(b"/")))
}
