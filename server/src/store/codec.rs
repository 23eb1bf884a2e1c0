//! Record encoding of one key's value and expiry for the persistence backends and export files.
