//! One test suite run against every compiled backend.
