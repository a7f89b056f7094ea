//! Classic HTTP chart repository source (index.yaml + .tgz).

pub mod constraint;
pub mod index;

pub use constraint::Constraint;
pub use index::{IndexEntry, RepoIndex};
