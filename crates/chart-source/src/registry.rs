//! The source registry: one entry per source type, routing a SourceSpec to its factory.
