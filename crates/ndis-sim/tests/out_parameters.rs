//! Out-parameters written late (placeholder).
