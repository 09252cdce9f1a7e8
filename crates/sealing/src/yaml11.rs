//! What kubeseal's input decoder (`sigs.k8s.io/yaml` over go-yaml v2) makes of a YAML 1.1 float
//! that lands in a string field. The resolution itself (`yes` is a boolean, `0755` octal, …) is
//! `hush_goyaml::resolve_v2`, shared with hush-template's `fromYaml`.

/// `strconv.FormatFloat(f, 'g', -1, 32)`: how `sigs.k8s.io/yaml` turns a YAML float into the
/// string a string-typed field receives.
pub(crate) fn go_format_float32(f: f64) -> String {
    // Go converts to float32 first; the narrowing is the point.
    #[allow(clippy::cast_possible_truncation)]
    let x = f as f32;
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // Shortest round-trip digits, as Go's 'g' with precision -1.
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let neg = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if neg { "-" } else { "" };
    if !(-4..6).contains(&exp) {
        let (head, tail) = digits.split_at(1);
        let frac = if tail.is_empty() {
            String::new()
        } else {
            format!(".{tail}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{head}{frac}e{esign}{:02}", exp.unsigned_abs());
    }
    if exp < 0 {
        let zeros = "0".repeat(usize::try_from(-exp - 1).unwrap_or(0));
        return format!("{sign}0.{zeros}{digits}");
    }
    let int_len = usize::try_from(exp + 1).unwrap_or(1);
    if digits.len() <= int_len {
        format!("{sign}{digits}{}", "0".repeat(int_len - digits.len()))
    } else {
        let (i, f) = digits.split_at(int_len);
        format!("{sign}{i}.{f}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_floats_like_go_g_32() {
        assert_eq!(go_format_float32(8080.0), "8080");
        assert_eq!(go_format_float32(1000.0), "1000");
        assert_eq!(go_format_float32(1.5), "1.5");
        assert_eq!(go_format_float32(0.5), "0.5");
        assert_eq!(go_format_float32(0.0001), "0.0001");
        assert_eq!(go_format_float32(0.00001), "1e-05");
        assert_eq!(go_format_float32(1_000_000.0), "1e+06");
        assert_eq!(go_format_float32(1_234_567.0), "1.234567e+06");
        assert_eq!(go_format_float32(std::f64::consts::PI), "3.1415927");
        assert_eq!(go_format_float32(-2.5), "-2.5");
        assert_eq!(go_format_float32(123_456.0), "123456");
        assert_eq!(
            go_format_float32(1.844_674_407_370_955_2e19),
            "1.8446744e+19"
        );
    }
}
