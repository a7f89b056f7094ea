//! The content-addressed chart cache shared by all sources.
