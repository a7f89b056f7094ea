//! # componentkit
//!
//! The handler side of the Component orchestration protocols (see DESIGN.md).
