//! # componentkit
//!
//! The handler side of the Component orchestration protocols (see DESIGN.md).

pub mod api;
pub mod backoff;
pub mod clock;
pub mod controller;
pub mod crd;
pub mod decision;
pub mod engine;
pub mod handler;
pub mod kube_api;
pub mod leader;
pub mod memory;
pub mod mergepatch;
pub mod names;
pub mod status;
pub mod testing;
