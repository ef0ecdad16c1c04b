//! Protocols recognised by their first bytes or ports only.

use crate::classify::ClassifierSet;

/// Registers the classifiers of enabled parsers.
pub fn register(_set: &mut ClassifierSet, _on: &dyn Fn(&str) -> bool) {}
