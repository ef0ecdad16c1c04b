//! dns (in progress).

use crate::classify::ClassifierSet;

/// Registers the classifiers.
pub fn register(_set: &mut ClassifierSet) {}
