//! Set commands (being filled in; registered in command/mod.rs).

use super::CommandSpec;

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[];
