//! Go standard-library behaviour that several hush crates must reproduce byte for byte, in one
//! place: [`strconv`] (integer parsing as YAML resolvers and spf13/cast read numbers), [`json`]
//! (`encoding/json`'s `Marshal` of decoded JSON, as ESO's providers and client-go's JSONPath
//! print objects) and [`time`] (the timestamp layouts go-yaml resolves, RFC 3339). Each function
//! is tested against the Go toolchain's output (`tests/` tables, produced by the Go programs
//! quoted there). YAML-specific rules live in hush-goyaml.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod json;
pub mod strconv;
pub mod time;
