//! The alias expansion budget of hush's YAML readers (SealedSecrets and Secrets, sops files,
//! ESO's `fromYaml`): an alias copies its anchor's whole value, so a few lines of `&a`/`*a` can
//! expand to gigabytes (the "billion laughs"). Each reader charges every alias with the size of
//! the value it copies *before* copying it.
//!
//! Two rules, both checked at every alias:
//!
//! - **Against the input, as go-yaml does** (`allowedAliasRatio` in go-yaml v2.4+/v3's decoder):
//!   once more than 100 nodes came from aliases and the document has more than 1000, aliases may
//!   make up at most 99% of its nodes up to 400,000 nodes, sliding down to 10% at 4,000,000 and
//!   beyond. hush applies the same rule to bytes too (scalar text plus one per node, thresholds
//!   in bytes), since go-yaml counts a 1 MiB scalar as one node.
//! - **Absolutely:** at most [`MAX_ALIAS_NODES`] nodes and [`MAX_ALIAS_BYTES`] bytes from aliases
//!   per document, whatever its size.

use std::fmt;

/// Most nodes that aliases may add to one document.
pub const MAX_ALIAS_NODES: u64 = 1_000_000;
/// Most bytes (scalar text plus one per node) that aliases may add to one document.
pub const MAX_ALIAS_BYTES: u64 = 16 << 20;

/// go-yaml's `alias_ratio_range_low`: below this many decoded nodes, 99% may come from aliases.
const RATIO_RANGE_LOW: u64 = 400_000;
/// go-yaml's `alias_ratio_range_high`: from this many on, 10%.
const RATIO_RANGE_HIGH: u64 = 4_000_000;

/// The size of a node and everything under it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Size {
    /// Nodes (scalars, sequences, mappings, keys included).
    pub nodes: u64,
    /// Bytes: scalar text plus one per node.
    pub bytes: u64,
    /// Levels of collections (0 for a scalar): an alias placed at depth d makes the document
    /// d + depth deep, which the readers bound as they bound nesting in the text.
    pub depth: usize,
}

impl Size {
    /// One node with `text_len` bytes of scalar text (0 for a collection).
    pub fn node(text_len: usize) -> Size {
        Size {
            nodes: 1,
            bytes: text_len as u64 + 1,
            depth: 0,
        }
    }

    /// Both counts added (the deeper of the two depths).
    #[must_use]
    pub fn plus(self, other: Size) -> Size {
        Size {
            nodes: self.nodes.saturating_add(other.nodes),
            bytes: self.bytes.saturating_add(other.bytes),
            depth: self.depth.max(other.depth),
        }
    }

    /// This collection with `child` added inside it.
    #[must_use]
    pub fn with_child(self, child: Size) -> Size {
        Size {
            depth: self.depth.max(child.depth + 1),
            ..self.plus(child)
        }
    }
}

/// Counts one document's nodes, read and expanded; reset it at each document.
#[derive(Debug, Clone, Default)]
pub struct AliasBudget {
    read: Size,
    expanded: Size,
}

/// Why an alias was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AliasError {
    /// Aliases make up more of the document than go-yaml's ratio allows.
    Ratio {
        /// `"nodes"` or `"bytes"`.
        unit: &'static str,
        /// From aliases so far.
        expanded: u64,
        /// In the document so far, aliases included.
        total: u64,
    },
    /// Aliases added more than the absolute bound.
    Total {
        /// `"nodes"` or `"bytes"`.
        unit: &'static str,
        /// The bound.
        limit: u64,
    },
}

impl fmt::Display for AliasError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AliasError::Ratio {
                unit,
                expanded,
                total,
            } => write!(
                f,
                "document contains excessive aliasing: {expanded} of its {total} {unit} come from \
                 aliases (go-yaml's bound); write the values out or use fewer aliases"
            ),
            AliasError::Total { unit, limit } => write!(
                f,
                "aliases expand the document by more than {limit} {unit}; write the values out \
                 or use fewer aliases"
            ),
        }
    }
}

impl std::error::Error for AliasError {}

impl AliasBudget {
    /// A budget for a new document.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts a node read from the text itself (an alias reference counts here once too, as in
    /// go-yaml).
    pub fn read(&mut self, size: Size) {
        self.read = self.read.plus(size);
    }

    /// Charges an alias that copies a value of `size`; call before copying it.
    pub fn expand(&mut self, size: Size) -> Result<(), AliasError> {
        self.expanded = self.expanded.plus(size);
        let total = self.read.plus(self.expanded);
        if self.expanded.nodes > MAX_ALIAS_NODES {
            return Err(AliasError::Total {
                unit: "nodes",
                limit: MAX_ALIAS_NODES,
            });
        }
        if self.expanded.bytes > MAX_ALIAS_BYTES {
            return Err(AliasError::Total {
                unit: "bytes",
                limit: MAX_ALIAS_BYTES,
            });
        }
        for (unit, expanded, total) in [
            ("nodes", self.expanded.nodes, total.nodes),
            ("bytes", self.expanded.bytes, total.bytes),
        ] {
            if expanded > 100 && total > 1000 && excessive(expanded, total) {
                return Err(AliasError::Ratio {
                    unit,
                    expanded,
                    total,
                });
            }
        }
        Ok(())
    }
}

/// go-yaml's test: `aliasCount/decodeCount > allowedAliasRatio(decodeCount)`.
fn excessive(expanded: u64, total: u64) -> bool {
    (expanded as f64) / (total as f64) > allowed_ratio(total)
}

/// go-yaml's `allowedAliasRatio`.
fn allowed_ratio(total: u64) -> f64 {
    if total <= RATIO_RANGE_LOW {
        0.99
    } else if total >= RATIO_RANGE_HIGH {
        0.10
    } else {
        let range = (RATIO_RANGE_HIGH - RATIO_RANGE_LOW) as f64;
        0.99 - 0.89 * ((total - RATIO_RANGE_LOW) as f64 / range)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_documents_may_alias_a_lot() {
        let mut b = AliasBudget::new();
        b.read(Size {
            nodes: 20,
            bytes: 200,
            depth: 1,
        });
        // 100 aliases of a 10-node value: 1000 of 1020 nodes, under 99%.
        for _ in 0..99 {
            b.expand(Size {
                nodes: 10,
                bytes: 100,
                depth: 1,
            })
            .unwrap();
        }
    }

    #[test]
    fn the_laughs_are_refused_by_ratio() {
        let mut b = AliasBudget::new();
        b.read(Size {
            nodes: 30,
            bytes: 300,
            depth: 1,
        });
        let mut size = Size::node(3);
        let err = (0..20)
            .find_map(|_| {
                // Each level: ten aliases of the level below.
                size = Size {
                    nodes: size.nodes * 10 + 1,
                    bytes: size.bytes * 10 + 1,
                    depth: size.depth + 1,
                };
                b.expand(size).err()
            })
            .unwrap();
        assert!(matches!(err, AliasError::Ratio { .. }), "{err}");
    }

    #[test]
    fn large_scalars_are_refused_by_bytes() {
        // Few nodes, so go-yaml's node rule passes; the bytes do not.
        let mut b = AliasBudget::new();
        b.read(Size {
            nodes: 2000,
            bytes: 1_000_000,
            depth: 1,
        });
        let err = (0..200)
            .find_map(|_| b.expand(Size::node(999_999)).err())
            .unwrap();
        assert_eq!(
            err.to_string().split(':').next(),
            Some("document contains excessive aliasing")
        );
    }

    #[test]
    fn the_absolute_bound_holds_for_huge_inputs() {
        let mut b = AliasBudget::new();
        b.read(Size {
            nodes: 100_000_000,
            bytes: 10_000_000_000,
            depth: 1,
        });
        let err = (0..100)
            .find_map(|_| {
                b.expand(Size {
                    nodes: 10,
                    bytes: 1 << 20,
                    depth: 1,
                })
                .err()
            })
            .unwrap();
        assert_eq!(
            err,
            AliasError::Total {
                unit: "bytes",
                limit: MAX_ALIAS_BYTES
            }
        );
    }

    #[test]
    fn ratio_matches_go_yaml() {
        assert_eq!(allowed_ratio(1000), 0.99);
        assert_eq!(allowed_ratio(4_000_000), 0.10);
        assert!((allowed_ratio(2_200_000) - 0.545).abs() < 1e-9);
    }
}
