//! # componentkit
//!
//! The handler side of the Component orchestration protocols (see DESIGN.md).

pub mod crd;
pub mod handler;
pub mod names;
