//! ndis-sim: placeholder.
