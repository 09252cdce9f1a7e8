//! The `--template-max-*` flags: the budgets of the Go templates a command renders
//! (`spec.template.data` in `kubeseal --recovery-unseal`, the controllers' templates). Every
//! binary that renders templates takes the same flags, named by [`hush_template::Budget::flag`].

use hush_template::Limits;

/// Template budget flags (docs/security.md, "Budgets and limits").
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Template budgets")]
pub(crate) struct TemplateLimitArgs {
    /// hush: most work units one template render may use (actions, loop rounds, function calls,
    /// one per 64 bytes copied); Go has no limit.
    #[arg(long, value_name = "N", default_value_t = Limits::DEFAULT_MAX_STEPS,
        value_parser = clap::value_parser!(u64).range(1..))]
    template_max_steps: u64,
    /// hush: most bytes a template may render, and the largest string it may build on the way.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::DEFAULT_MAX_OUTPUT_BYTES as u64,
        value_parser = clap::value_parser!(u64).range(1..))]
    template_max_output_bytes: u64,
    /// hush: deepest nesting of template control structures, parentheses, template calls and
    /// built lists/maps.
    #[arg(long, value_name = "N", default_value_t = Limits::DEFAULT_MAX_DEPTH as u64,
        value_parser = clap::value_parser!(u64).range(1..=10_000))]
    template_max_depth: u64,
}

impl TemplateLimitArgs {
    /// The budgets the flags set.
    pub(crate) fn limits(&self) -> Limits {
        let mut limits = Limits::default();
        limits.max_steps = self.template_max_steps;
        limits.max_output_bytes =
            usize::try_from(self.template_max_output_bytes).unwrap_or(usize::MAX);
        limits.max_depth = usize::try_from(self.template_max_depth).unwrap_or(usize::MAX);
        limits
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;
    use hush_template::Budget;

    use super::*;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        t: TemplateLimitArgs,
    }

    #[test]
    fn defaults_and_flags() {
        let cli = Cli::parse_from(["x"]);
        assert_eq!(cli.t.limits(), Limits::default());
        let cli = Cli::parse_from([
            "x",
            Budget::Steps.flag(),
            "5",
            Budget::OutputBytes.flag(),
            "6",
            Budget::Depth.flag(),
            "7",
        ]);
        let l = cli.t.limits();
        assert_eq!((l.max_steps, l.max_output_bytes, l.max_depth), (5, 6, 7));
        assert!(Cli::try_parse_from(["x", "--template-max-depth", "0"]).is_err());
        assert!(Cli::try_parse_from(["x", "--template-max-depth", "100000"]).is_err());
    }
}
