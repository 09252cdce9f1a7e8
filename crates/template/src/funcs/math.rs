//! sprig's conversion and math functions.

use super::*;

pub(super) fn atoi(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity(&a, 1)?;
    let s = s_string(&a[0])?;
    Ok(Value::Int(s.parse().unwrap_or(0)))
}

pub(super) fn int(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity(&a, 1)?;
    Ok(Value::Int(to_i64(&a[0])))
}

pub(super) fn int64(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity(&a, 1)?;
    Ok(Value::Int64(to_i64(&a[0])))
}

pub(super) fn float64(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity(&a, 1)?;
    Ok(Value::Float(to_f64(&a[0])))
}

pub(super) fn to_decimal(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity(&a, 1)?;
    let s = String::from_utf8_lossy(&strval(&a[0])).into_owned();
    Ok(Value::Int64(i64::from_str_radix(&s, 8).unwrap_or(0)))
}

pub(super) fn add(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    Ok(Value::Int64(
        a.iter().map(to_i64).fold(0i64, i64::wrapping_add),
    ))
}

pub(super) fn mul(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity_min(&a, 1)?;
    Ok(Value::Int64(
        a.iter().map(to_i64).fold(1i64, i64::wrapping_mul),
    ))
}

pub(super) fn add1(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity(&a, 1)?;
    Ok(Value::Int64(to_i64(&a[0]).wrapping_add(1)))
}

pub(super) fn sub(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity(&a, 2)?;
    Ok(Value::Int64(to_i64(&a[0]).wrapping_sub(to_i64(&a[1]))))
}

pub(super) fn div_mod(a: Vec<Value>, c: &mut Call<'_>) -> FResult {
    arity(&a, 2)?;
    let d = to_i64(&a[1]);
    if d == 0 {
        return Err(ferr("integer divide by zero"));
    }
    let n = to_i64(&a[0]);
    Ok(Value::Int64(if c.name == "div" {
        n.wrapping_div(d)
    } else {
        n.wrapping_rem(d)
    }))
}

pub(super) fn max_min(a: Vec<Value>, c: &mut Call<'_>) -> FResult {
    arity_min(&a, 1)?;
    let mut r = to_i64(&a[0]);
    for v in &a[1..] {
        let x = to_i64(v);
        r = if c.name == "min" { r.min(x) } else { r.max(x) };
    }
    Ok(Value::Int64(r))
}

pub(super) fn addf(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    let mut args = vec![Value::Float(0.0)];
    args.extend(a);
    decimal_op("addf", &args)
}

pub(super) fn add1f(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity(&a, 1)?;
    decimal_op("addf", &[a[0].clone(), Value::Int(1)])
}

pub(super) fn decimal_arith(a: Vec<Value>, c: &mut Call<'_>) -> FResult {
    arity_min(&a, 1)?;
    decimal_op(c.name, &a)
}

pub(super) fn maxf_minf(a: Vec<Value>, c: &mut Call<'_>) -> FResult {
    arity_min(&a, 1)?;
    let mut r = to_f64(&a[0]);
    for v in &a[1..] {
        let x = to_f64(v);
        r = if c.name == "minf" { r.min(x) } else { r.max(x) };
    }
    Ok(Value::Float(r))
}

pub(super) fn floor(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity(&a, 1)?;
    Ok(Value::Float(to_f64(&a[0]).floor()))
}

pub(super) fn ceil(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity(&a, 1)?;
    Ok(Value::Float(to_f64(&a[0]).ceil()))
}

pub(super) fn round(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
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

pub(super) fn seq_fn(a: Vec<Value>, c: &mut Call<'_>) -> FResult {
    seq(&a, c.meter)
}

pub(super) fn until(a: Vec<Value>, c: &mut Call<'_>) -> FResult {
    arity(&a, 1)?;
    let n = i_arg(&a[0])?;
    let step = if n < 0 { -1 } else { 1 };
    step_range(0, n, step, c.meter)
}

pub(super) fn until_step_args(a: Vec<Value>, c: &mut Call<'_>) -> FResult {
    arity(&a, 3)?;
    step_range(i_arg(&a[0])?, i_arg(&a[1])?, i_arg(&a[2])?, c.meter)
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
    let Value::List(items) = step_range(start, stop, step, meter)? else {
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
fn step_range(start: i64, stop: i64, step: i64, meter: &mut Meter) -> FResult {
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
