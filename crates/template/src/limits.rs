//! Resource budgets of one template (steps, output bytes, nesting depth) and the meter that
//! enforces them while a template renders.
//!
//! Go's `text/template` has none of these: a template is trusted code there. Here templates come
//! from tenants (a SealedSecret's `spec.template`, an ExternalSecret's `target.template`), so a
//! render that would loop, allocate or recurse without end stops with [`crate::Error::Budget`].

use crate::value::Value;

/// The budgets of one template: its parse and each of its renders.
///
/// ```
/// use hush_template::{Limits, Options, Preset, Template};
///
/// let mut limits = Limits::default();
/// limits.max_steps = 1000;
/// let t = Template::parse("t", "{{ range 1000000 }}x{{ end }}", &Options::preset(Preset::SealedSecrets).limits(limits))?;
/// assert!(matches!(t.render(&Default::default()), Err(hush_template::Error::Budget { .. })));
/// # Ok::<(), hush_template::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Work units one render may use: one per executed action, control structure, range
    /// iteration, template call and function call, plus one per element and per 64 bytes of
    /// every value a render copies or builds. Default [`Limits::DEFAULT_MAX_STEPS`].
    pub max_steps: u64,
    /// Bytes of the rendered output, and of any one string a function builds on the way
    /// (`repeat`, `indent`, `printf` padding, …). Default [`Limits::DEFAULT_MAX_OUTPUT_BYTES`].
    pub max_output_bytes: usize,
    /// Nesting depth: of control structures and parentheses when parsing, of those plus
    /// `{{template}}` calls when rendering, and of lists and maps a render builds. Default
    /// [`Limits::DEFAULT_MAX_DEPTH`].
    pub max_depth: usize,
}

impl Limits {
    /// Default of [`Limits::max_steps`]: far above what Sealed Secrets and External Secrets
    /// templates use (a few thousand steps), about a tenth of a second of work.
    pub const DEFAULT_MAX_STEPS: u64 = 1_000_000;
    /// Default of [`Limits::max_output_bytes`]: 1 MiB, the most a Kubernetes Secret holds.
    pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 1 << 20;
    /// Default of [`Limits::max_depth`].
    pub const DEFAULT_MAX_DEPTH: usize = 100;

    /// The value of one budget, as a number.
    pub fn get(&self, budget: Budget) -> u64 {
        match budget {
            Budget::Steps => self.max_steps,
            Budget::OutputBytes => self.max_output_bytes as u64,
            Budget::Depth => self.max_depth as u64,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_steps: Self::DEFAULT_MAX_STEPS,
            max_output_bytes: Self::DEFAULT_MAX_OUTPUT_BYTES,
            max_depth: Self::DEFAULT_MAX_DEPTH,
        }
    }
}

/// One of the [`Limits`], as named in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Budget {
    /// [`Limits::max_steps`].
    Steps,
    /// [`Limits::max_output_bytes`].
    OutputBytes,
    /// [`Limits::max_depth`].
    Depth,
}

impl Budget {
    /// The command-line flag that sets this budget, the same in every hush binary that renders
    /// templates.
    pub fn flag(self) -> &'static str {
        match self {
            Budget::Steps => "--template-max-steps",
            Budget::OutputBytes => "--template-max-output-bytes",
            Budget::Depth => "--template-max-depth",
        }
    }
}

impl std::fmt::Display for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Budget::Steps => "template step",
            Budget::OutputBytes => "template output bytes",
            Budget::Depth => "template nesting depth",
        })
    }
}

/// Bytes of a string that cost one step when copied or built.
const BYTES_PER_STEP: usize = 64;

/// Counts the steps of one render against its [`Limits`].
pub(crate) struct Meter {
    limits: Limits,
    steps: u64,
}

impl Meter {
    pub(crate) fn new(limits: Limits) -> Self {
        Meter { limits, steps: 0 }
    }

    /// Spends `n` steps.
    pub(crate) fn charge(&mut self, n: u64) -> Result<(), Budget> {
        self.steps = self.steps.saturating_add(n);
        if self.steps > self.limits.max_steps {
            return Err(Budget::Steps);
        }
        Ok(())
    }

    /// Spends the steps of copying or building `bytes` bytes.
    pub(crate) fn charge_bytes(&mut self, bytes: usize) -> Result<(), Budget> {
        self.charge((bytes / BYTES_PER_STEP) as u64)
    }

    /// Spends the steps of copying or building `v`; refuses a value nested deeper than the
    /// depth budget. Called before the copy is made, so a refused value is never copied.
    pub(crate) fn charge_value(&mut self, v: &Value) -> Result<(), Budget> {
        let cost = value_cost(v, 0, self.limits.max_depth)?;
        self.charge(cost)
    }

    /// Refuses a string of `len` bytes (output, or one built by a function).
    pub(crate) fn check_len(&self, len: usize) -> Result<(), Budget> {
        if len > self.limits.max_output_bytes {
            return Err(Budget::OutputBytes);
        }
        Ok(())
    }

    /// Refuses a string that `parts` pieces of `each` bytes plus `rest` bytes would make, before
    /// it is built.
    pub(crate) fn check_product(
        &self,
        parts: usize,
        each: usize,
        rest: usize,
    ) -> Result<(), Budget> {
        let total = parts
            .checked_mul(each)
            .and_then(|n| n.checked_add(rest))
            .ok_or(Budget::OutputBytes)?;
        self.check_len(total)
    }

    pub(crate) fn max_bytes(&self) -> usize {
        self.limits.max_output_bytes
    }

    pub(crate) fn max_depth(&self) -> usize {
        self.limits.max_depth
    }
}

/// Steps to copy `v`: one per element and map entry, one per 64 bytes of strings. Recursion
/// stops at `max_depth`, so a too-deep value is refused without walking it further.
fn value_cost(v: &Value, depth: usize, max_depth: usize) -> Result<u64, Budget> {
    if depth > max_depth {
        return Err(Budget::Depth);
    }
    Ok(match v {
        Value::Str(s) => 1 + (s.len() / BYTES_PER_STEP) as u64,
        Value::List(l) => {
            let mut n = 1u64;
            for x in l {
                n = n.saturating_add(value_cost(x, depth + 1, max_depth)?);
            }
            n
        }
        Value::Map(m) => {
            let mut n = 1u64;
            for (k, x) in m {
                n = n
                    .saturating_add(1 + (k.len() / BYTES_PER_STEP) as u64)
                    .saturating_add(value_cost(x, depth + 1, max_depth)?);
            }
            n
        }
        Value::StrMap(m) => {
            let mut n = 1u64;
            for (k, x) in m {
                n = n.saturating_add(2 + ((k.len() + x.len()) / BYTES_PER_STEP) as u64);
            }
            n
        }
        Value::Nil | Value::Bool(_) | Value::Int(_) | Value::Int64(_) | Value::Float(_) => 1,
    })
}

/// Whether `v` nests deeper than `max_depth` (input data is checked once, before a render).
pub(crate) fn too_deep(v: &Value, max_depth: usize) -> bool {
    value_cost(v, 0, max_depth).is_err()
}
